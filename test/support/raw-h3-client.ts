/**
 * A raw HTTP/3 client for bad-input tests: one QUIC connection (ALPN `h3`, self-signed certificates accepted)
 * per request, exactly the header list the caller chooses, optional body chunks with or without FIN, and the
 * outcome as the client saw it (response, stream reset, connection close, client-side refusal or timeout).
 *
 * Built on `node:quic` inside Bun (experimental). What it cannot send, because Bun's `node:quic` refuses or
 * rewrites it before anything leaves the process (`buildNgHeaderString` in Bun's `internal/quic/http2util`):
 * - header **names are lower-cased** (an upper-case name cannot be sent);
 * - **pseudo-headers always go first**, in one block (a pseudo-header after a regular field cannot be sent);
 * - an **unknown pseudo-header** (`:foo`) → `ERR_HTTP2_INVALID_PSEUDOHEADER`;
 * - a **repeated pseudo-header** or a repeated single-value field (`content-length`, `host`, `authorization`,
 *   ...) → `ERR_HTTP2_HEADER_SINGLE_VALUE`;
 * - a **name that is not a token** (space, `:` inside, ...) → `ERR_INVALID_HTTP_TOKEN`;
 * - **NUL** in any value (also pseudo-header values) → `ERR_INVALID_CHAR`;
 * - **connection-specific fields** (`connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`,
 *   `upgrade`, `http2-settings`, `te` other than `trailers`) → `ERR_HTTP2_INVALID_CONNECTION_HEADERS`.
 * Such a request comes back as `{ kind: 'refused', code }`. Writing raw frames instead is not possible either:
 * with ALPN `h3` every stream write is framed as DATA by the client's HTTP/3 layer.
 *
 * Its own process ({@link runRawH3}), because `node:quic` and fetch's HTTP/3 client interfere within one
 * process (see h3-load-client.ts), and a test file shares its process with the others:
 *   bun test/support/raw-h3-client.ts --port N [--host 127.0.0.1] [--timeout-ms 5000] [--after /path]
 *       [--concurrency 1]  < cases.json
 * reads a JSON array of {@link RawH3Case}, sends them (`--concurrency` at a time; each on a fresh connection, so
 * a connection error of one case cannot affect another), and prints one `{"event":"outcome",...}` line per case
 * ({@link RawH3Result}) and `{"event":"done"}`. With `--after`, each case is followed by a normal GET of that
 * path on another fresh connection, whose status is reported as `after`.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** One request to send. */
export interface RawH3Request {
  /** Header fields in order, pseudo-headers included (`[':method', 'GET']`); repeated names are allowed. */
  headers: [string, string][];
  /** Body chunks (UTF-8), each written as it comes; none → the HEADERS frame ends the stream. */
  body?: string[];
  /** Whether the stream ends (FIN) after the body. Default true; false keeps it open until the deadline. */
  fin?: boolean;
  /** Pause between body chunks, in ms (so each chunk is its own DATA frame, seen apart). Default 0. */
  pauseMs?: number;
  /** Deadline for this request, in ms, instead of the run's. */
  timeoutMs?: number;
}

/** A named request of a corpus. */
export interface RawH3Case extends RawH3Request {
  /** Unique name, reported back with the outcome. */
  name: string;
}

/** What the client saw. */
export type RawH3Outcome =
  | { kind: 'response'; status: number; headers: Record<string, string>; body: string; bodyError?: string }
  | { kind: 'reset'; code: string; message: string }
  | { kind: 'closed'; code: string; message: string }
  | { kind: 'refused'; code: string; message: string }
  | { kind: 'timeout' };

/** The outcome of one case, and the status of the normal request sent after it (when asked for). */
export interface RawH3Result {
  name: string;
  outcome: RawH3Outcome;
  after?: number | string;
}

interface QuicStream {
  onheaders: ((headers: Record<string, string>) => void) | null;
  onreset: ((err: unknown) => void) | null;
  sendHeaders(headers: Record<string, string | string[]>, opts: { terminal: boolean }): boolean;
  setBody(body: AsyncIterable<Uint8Array>): void;
  destroy(err?: unknown): void;
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array | Uint8Array[]>;
}
interface QuicSession {
  opened: Promise<unknown>;
  closed: Promise<unknown>;
  createBidirectionalStream(): Promise<QuicStream>;
  close(): Promise<unknown>;
  destroy(err?: unknown): void;
}
type QuicModule = { connect(addr: unknown, opts: unknown): Promise<QuicSession> };

const BODY_CAP = 64 * 1024;

function describe(e: unknown): { code: string; message: string } {
  const err = e as { code?: unknown; message?: unknown } | undefined;
  return { code: typeof err?.code === 'string' ? err.code : 'unknown', message: String(err?.message ?? e).slice(0, 500) };
}

/** node:quic takes an object: repeated names become one array value (sent as separate fields, in order). */
function headerObject(list: [string, string][]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [name, value] of list) {
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

function toBytes(c: Uint8Array | Uint8Array[]): Buffer {
  return Array.isArray(c)
    ? Buffer.concat(c.map((x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength)))
    : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

/**
 * Sends one request on a fresh QUIC connection to `host:port` and resolves with what happened within
 * `timeoutMs` (never rejects). The connection is closed afterwards.
 */
export async function rawH3Request(quic: QuicModule, host: string, port: number, req: RawH3Request, timeoutMs: number): Promise<RawH3Outcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), timeoutMs);
  });
  let release: () => void = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  let session: QuicSession | undefined;
  try {
    session = await quic.connect(
      { address: host, port },
      { alpn: 'h3', rejectUnauthorized: false, verifyPeer: 'manual', servername: 'localhost', reuseEndpoint: false },
    );
    const s = session;
    // The connection's end, as an outcome: a close with an error is the server refusing at connection level.
    const closed = s.closed.then(
      (): RawH3Outcome => ({ kind: 'closed', code: 'none', message: 'connection closed' }),
      (e): RawH3Outcome => ({ kind: 'closed', ...describe(e) }),
    );
    const opened = await Promise.race([s.opened.then(() => 'open' as const), expired, closed]);
    if (opened === 'timeout') return { kind: 'timeout' };
    if (opened !== 'open') return opened;
    let stream: QuicStream;
    try {
      stream = await s.createBidirectionalStream();
    } catch (e) {
      return { kind: 'refused', ...describe(e) };
    }
    let resetInfo: { code: string; message: string } | undefined;
    const reset = new Promise<RawH3Outcome>((r) => {
      stream.onreset = (e) => {
        resetInfo = describe(e);
        r({ kind: 'reset', ...resetInfo });
      };
    });
    const head = new Promise<Record<string, string>>((r) => {
      stream.onheaders = r;
    });
    const chunks = req.body ?? [];
    const fin = req.fin ?? true;
    try {
      stream.sendHeaders(headerObject(req.headers), { terminal: chunks.length === 0 && fin });
    } catch (e) {
      return { kind: 'refused', ...describe(e) };
    }
    if (chunks.length > 0 || !fin) {
      const enc = new TextEncoder();
      stream.setBody(
        (async function* () {
          for (let i = 0; i < chunks.length; i++) {
            if (i > 0 && req.pauseMs) await Bun.sleep(req.pauseMs);
            yield enc.encode(chunks[i] as string);
          }
          if (!fin) await held;
        })(),
      );
    }
    // Read the body concurrently, so a reset or close that comes instead of headers is seen too.
    const parts: Buffer[] = [];
    let size = 0;
    const read = (async (): Promise<string | undefined> => {
      try {
        for await (const c of stream) {
          const b = toBytes(c);
          if (size < BODY_CAP) parts.push(b);
          size += b.length;
        }
        return undefined;
      } catch (e) {
        const d = describe(e);
        return `${d.code}: ${d.message}`;
      }
    })();
    const first = await Promise.race([head.then((h) => ({ h })), reset, closed, expired, read.then((err) => ({ readEnd: err }))]);
    if (first === 'timeout') return { kind: 'timeout' };
    if ('kind' in first) return first;
    let headers: Record<string, string>;
    if ('readEnd' in first) {
      // The stream ended before any headers: a reset (or the connection closing).
      const late = await Promise.race([head.then((h) => ({ h })), reset, closed, Bun.sleep(200).then(() => undefined)]);
      if (late === undefined)
        return { kind: 'reset', code: resetInfo?.code ?? 'stream_ended', message: first.readEnd ?? 'stream ended without a response' };
      if ('kind' in late) return late;
      headers = late.h;
    } else {
      headers = first.h;
    }
    const bodyErr = await Promise.race([read, expired]);
    const body = Buffer.concat(parts).toString('utf8').slice(0, BODY_CAP);
    const out: RawH3Outcome = { kind: 'response', status: Number(headers[':status']), headers: { ...headers }, body };
    if (bodyErr === 'timeout') out.bodyError = 'timeout';
    else if (bodyErr !== undefined) out.bodyError = bodyErr;
    return out;
  } catch (e) {
    return { kind: 'refused', ...describe(e) };
  } finally {
    clearTimeout(timer);
    release();
    if (session) {
      const s = session;
      await Promise.race([s.close().catch(() => {}), Bun.sleep(500)]);
      try {
        s.destroy();
      } catch {}
    }
  }
}

/** Options of {@link runRawH3}. */
export interface RunRawH3Options {
  host?: string;
  /** Deadline per request. Default 5000 ms. */
  timeoutMs?: number;
  /** Path of a normal GET sent after each case (its status is `after`). */
  afterPath?: string;
  /** Cases sent at the same time (each on its own connections). Default 1. */
  concurrency?: number;
  /** Deadline for the whole run. Default: the sum over cases of (its deadline + the after-request's + 1 s), + 10 s. */
  totalMs?: number;
}

/** Runs `cases` against `port` in a child process (see the top of this file) and resolves with one result per case. */
export async function runRawH3(port: number, cases: RawH3Case[], opts: RunRawH3Options = {}): Promise<RawH3Result[]> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const args = [process.execPath, resolve(import.meta.dir, 'raw-h3-client.ts'), '--port', String(port), '--timeout-ms', String(timeoutMs)];
  if (opts.host) args.push('--host', opts.host);
  if (opts.afterPath) args.push('--after', opts.afterPath);
  if (opts.concurrency) args.push('--concurrency', String(opts.concurrency));
  const proc = Bun.spawn(args, { stdin: new Blob([JSON.stringify(cases)]), stdout: 'pipe', stderr: 'pipe' });
  const total = opts.totalMs ?? cases.reduce((n, c) => n + (c.timeoutMs ?? timeoutMs) + timeoutMs + 1000, 10_000);
  const killer = setTimeout(() => proc.kill('SIGKILL'), total);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(killer);
  const results: RawH3Result[] = [];
  let done = false;
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as { event: string } & RawH3Result;
    if (rec.event === 'outcome') results.push({ name: rec.name, outcome: rec.outcome, ...(rec.after !== undefined ? { after: rec.after } : {}) });
    if (rec.event === 'done') done = true;
  }
  if (!done) throw new Error(`raw-h3-client did not finish (exit ${proc.exitCode}); ${results.length} outcomes; stderr: ${err.slice(-2000)}`);
  return results;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      'timeout-ms': { type: 'string', default: '5000' },
      after: { type: 'string' },
      concurrency: { type: 'string', default: '1' },
    },
  });
  const host = values.host as string;
  const port = Number(values.port);
  const timeoutMs = Number(values['timeout-ms']);
  const quic = (await import('node:quic' as string)) as QuicModule;
  const cases = JSON.parse(await Bun.stdin.text()) as RawH3Case[];
  const runOne = async (c: RawH3Case): Promise<void> => {
    const outcome = await rawH3Request(quic, host, port, c, c.timeoutMs ?? timeoutMs);
    const result: RawH3Result = { name: c.name, outcome };
    if (values.after) {
      const a = await rawH3Request(
        quic,
        host,
        port,
        {
          headers: [
            [':method', 'GET'],
            [':scheme', 'https'],
            [':authority', `127.0.0.1:${port}`],
            [':path', values.after],
          ],
        },
        timeoutMs,
      );
      result.after = a.kind === 'response' ? a.status : a.kind;
    }
    console.log(JSON.stringify({ event: 'outcome', ...result }));
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) await runOne(cases[next++] as RawH3Case);
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(values.concurrency)) }, worker));
  console.log(JSON.stringify({ event: 'done' }));
  process.exit(0);
}
