/**
 * Tells a request body of unknown length that is really none from one that is coming.
 *
 * Bun's HTTP/3 server hands every request other than GET and HEAD a body stream, even when the client ended the
 * stream with its HEADERS frame (`curl --http3 -X DELETE` does, with no `content-length`). Forwarded as it is,
 * such a request reaches an HTTP/1.1 backend as an empty chunked upload (`transfer-encoding: chunked`, then
 * `0\r\n\r\n`), and the proxy cannot send it again to another backend, since a body it has started reading
 * cannot be replayed. The same request over HTTP/1.1 or HTTP/2 arrives without a body at all.
 *
 * So the first read of such a body is started at once and looked at if it completes before the event loop's
 * next turn: a stream that has already ended is no body. Otherwise (data, or nothing yet) the body is passed on
 * unchanged in content, that first read included; a client that sends its body later is not waited for.
 */
import type { ChunkRead } from './request-body.ts';

/** Resolves on the event loop's next turn (after the I/O already delivered in this one). */
function nextTurn(): Promise<undefined> {
  return new Promise((resolve) => setImmediate(resolve, undefined));
}

/**
 * `body` as it should be forwarded: null when the client had already ended it empty, else a stream of the same
 * chunks (the first read, already started, is its first chunk). Call only for a body of unknown length.
 */
export async function bodyOrNone(body: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array> | null> {
  const reader = body.getReader();
  let first: Promise<ChunkRead> | undefined = reader.read() as Promise<ChunkRead>;
  // A failed first read is not "ended": it stays the first read, and whoever pulls the body sees the error.
  const ready = await Promise.race([first.catch(() => undefined), nextTurn()]);
  if (ready?.done === true) {
    reader.releaseLock();
    return null;
  }
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const pending = first;
        first = undefined;
        const r = await (pending ?? (reader.read() as Promise<ChunkRead>));
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
