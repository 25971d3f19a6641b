/**
 * Watching a body stream while it is proxied: {@link teeBody} hands every chunk on unchanged (one chunk per
 * pull, nothing queued, so backpressure and cancellation pass straight through) and shows it to an observer;
 * {@link BodyCapture} is such an observer that copies at most a fixed number of bytes and counts the rest.
 */

/** How a watched body stream ended. */
export type TeeOutcome = 'end' | 'error' | 'cancel';

/** Sees the chunks of a body as they pass. Must be cheap and must not throw. */
export interface TeeObserver {
  /** A chunk is about to be handed on. */
  chunk(bytes: Uint8Array): void;
  /** The stream is over (called once): read to the end, failed, or cancelled by its consumer. */
  end(outcome: TeeOutcome): void;
}

/**
 * A stream with the same chunks as `source`, shown to `observer` on the way. It reads from `source` only when
 * its own consumer asks (high-water mark 0), and a cancel is passed on to `source`.
 */
export function teeBody(source: ReadableStream<Uint8Array>, observer: TeeObserver): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let over = false;
  const end = (outcome: TeeOutcome): void => {
    if (over) return;
    over = true;
    observer.end(outcome);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: Awaited<ReturnType<typeof reader.read>>;
        try {
          result = await reader.read();
        } catch (e) {
          end('error');
          controller.error(e);
          return;
        }
        if (result.done) {
          end('end');
          controller.close();
          return;
        }
        observer.chunk(result.value);
        controller.enqueue(result.value);
      },
      cancel(reason) {
        end('cancel');
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Copies the first `max` bytes of a body and counts all of them. */
export class BodyCapture implements TeeObserver {
  /** Body bytes seen so far. */
  bytes = 0;
  /** Copies of the kept parts (memory grows with what is kept, never to `max` up front). */
  private readonly parts: Uint8Array[] = [];
  private kept = 0;
  private done: ((capture: BodyCapture, outcome: TeeOutcome) => void) | undefined;

  /** A capture keeping at most `max` bytes. */
  constructor(
    /** Most bytes kept. */
    readonly max: number,
    /** Called once when the body is over. */
    onEnd?: (capture: BodyCapture, outcome: TeeOutcome) => void,
  ) {
    this.done = onEnd;
  }

  /** Counts a chunk and copies what still fits under the cap (the chunk's memory may be reused later). */
  chunk(bytes: Uint8Array): void {
    this.bytes += bytes.byteLength;
    const room = this.max - this.kept;
    if (room <= 0 || bytes.byteLength === 0) return;
    const n = Math.min(room, bytes.byteLength);
    this.parts.push(bytes.slice(0, n));
    this.kept += n;
  }

  /** The body is over; calls `onEnd` once. */
  end(outcome: TeeOutcome): void {
    const done = this.done;
    this.done = undefined;
    done?.(this, outcome);
  }

  /** The bytes kept (at most `max`). */
  captured(): Uint8Array {
    if (this.parts.length === 1) return this.parts[0] as Uint8Array;
    const out = new Uint8Array(this.kept);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }

  /** True when more bytes were seen than kept. */
  get truncated(): boolean {
    return this.bytes > this.kept;
  }
}
