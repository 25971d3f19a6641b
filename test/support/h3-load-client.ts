/**
 * A continuous HTTP/3 load client for reload and shutdown tests, run as its own process:
 *   bun --experimental-http3-fetch test/support/h3-load-client.ts --port N (--sessions N | --fetch-loops N)
 *       [--path /] [--pause-ms 2] [--timeout-ms 5000] [--reconnect]
 *
 * It opens `--sessions` separate QUIC connections with `node:quic` (each one loops GET requests over its own
 * connection, so a dropped connection is seen: the session closes) and `--fetch-loops` loops of Bun's
 * `fetch` over HTTP/3 (which share one connection per process). A request fails when it errors, times out,
 * or answers anything but 200. Prints `{"event":"ready",...}` once every loop had one good answer, and on
 * SIGTERM stops, waits for requests in flight, prints `{"event":"summary",...}` (requests, failures with
 * samples, dropped connections, backends seen, certificate fingerprints seen) and exits 0.
 * With `--reconnect`, a dropped session is counted and replaced by a new connection. With `--progress-ms N`,
 * a `{"event":"progress",...}` line with the counts so far is printed every N ms. `--fetch-protocol http2`
 * (or `http1.1`) makes the fetch loops use TCP instead (needs `--experimental-http2-fetch` for http2).
 * It exits by itself after `--max-ms` (default 120000), so a test that dies cannot leave it running.
 *
 * Use either `--sessions` or `--fetch-loops` in one process, not both: measured on Bun 1.4.5, `node:quic`
 * sessions and `fetch`'s HTTP/3 client in the same process interfere (sessions die at once with "QUIC
 * transport error 1"), while separate processes of each kind run side by side without a failure.
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    sessions: { type: 'string', default: '0' },
    'fetch-loops': { type: 'string', default: '0' },
    path: { type: 'string', default: '/' },
    'pause-ms': { type: 'string', default: '2' },
    'timeout-ms': { type: 'string', default: '5000' },
    reconnect: { type: 'boolean', default: false },
    'progress-ms': { type: 'string', default: '0' },
    'fetch-protocol': { type: 'string', default: 'http3' },
    'max-ms': { type: 'string', default: '120000' },
  },
});
const host = values.host as string;
const port = Number(values.port);
const path = values.path as string;
const pauseMs = Number(values['pause-ms']);
const timeoutMs = Number(values['timeout-ms']);
if (Number(values.sessions) > 0 && Number(values['fetch-loops']) > 0) {
  console.error('h3-load-client: use --sessions or --fetch-loops, not both (see the comment at the top)');
  process.exit(2);
}

interface QuicStream {
  onheaders: (headers: Record<string, string>) => void;
  sendHeaders(headers: Record<string, string>, opts: { terminal: boolean }): void;
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array | Uint8Array[]>;
}
interface QuicSession {
  opened: Promise<unknown>;
  closed: Promise<unknown>;
  peerCertificate?: { fingerprint256: string };
  createBidirectionalStream(): Promise<QuicStream>;
  close(): Promise<unknown>;
}
const quic = (await import('node:quic' as string)) as { connect(addr: unknown, opts: unknown): Promise<QuicSession> };

let stopping = false;
let requests = 0;
let failures = 0;
let droppedSessions = 0;
let sessionsOpened = 0;
const failureSamples: string[] = [];
const backends: Record<string, number> = {};
const fingerprints: Record<string, number> = {};

function fail(what: string): void {
  failures++;
  if (failureSamples.length < 10) failureSamples.push(what);
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${timeoutMs} ms: ${what}`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function quicGet(session: QuicSession): Promise<{ status: number; backend: string }> {
  const stream = await session.createBidirectionalStream();
  const headers = new Promise<Record<string, string>>((resolve) => {
    stream.onheaders = resolve;
  });
  stream.sendHeaders({ ':method': 'GET', ':path': path, ':scheme': 'https', ':authority': `${host}:${port}` }, { terminal: true });
  for await (const _ of stream) {
    // drain the body
  }
  const h = await headers;
  return { status: Number(h[':status']), backend: h['x-backend'] ?? '-' };
}

async function openSession(): Promise<QuicSession> {
  const session = await quic.connect(
    { address: host, port },
    { alpn: 'h3', rejectUnauthorized: false, verifyPeer: 'manual', servername: 'localhost', reuseEndpoint: false },
  );
  await session.opened;
  sessionsOpened++;
  const fp = session.peerCertificate?.fingerprint256 ?? 'unknown';
  fingerprints[fp] = (fingerprints[fp] ?? 0) + 1;
  return session;
}

let firstOk = 0;
const loops = Number(values.sessions) + Number(values['fetch-loops']);
let readyPrinted = false;
function ok(backend: string, first: { v: boolean }): void {
  requests++;
  backends[backend] = (backends[backend] ?? 0) + 1;
  if (first.v) return;
  first.v = true;
  firstOk++;
  if (firstOk === loops && !readyPrinted) {
    readyPrinted = true;
    console.log(JSON.stringify({ event: 'ready', sessions: sessionsOpened }));
  }
}

async function sessionLoop(): Promise<void> {
  const first = { v: false };
  let session = await openSession();
  let closed = false;
  let closedSignal: Promise<never> = new Promise(() => {});
  const watch = (s: QuicSession) => {
    closed = false;
    closedSignal = new Promise<never>((_, reject) => {
      const done = () => {
        closed = true;
        reject(new Error('connection closed by the server'));
      };
      s.closed.then(done, done);
    });
    closedSignal.catch(() => {});
  };
  watch(session);
  while (!stopping) {
    if (closed) {
      droppedSessions++;
      if (!values.reconnect) return;
      session = await openSession();
      watch(session);
    }
    try {
      const r = await withTimeout(Promise.race([quicGet(session), closedSignal]), 'quic request');
      if (r.status === 200) ok(r.backend, first);
      else {
        requests++;
        fail(`quic status ${r.status}`);
      }
    } catch (e) {
      requests++;
      if (!stopping) fail(`quic: ${(e as Error).message}`);
    }
    if (pauseMs) await Bun.sleep(pauseMs);
  }
  if (!closed) await session.close().catch(() => {});
}

async function fetchLoop(): Promise<void> {
  const first = { v: false };
  while (!stopping) {
    try {
      const res = await fetch(`https://${host}:${port}${path}`, {
        protocol: values['fetch-protocol'],
        tls: { rejectUnauthorized: false },
        signal: AbortSignal.timeout(timeoutMs),
      } as RequestInit);
      await res.arrayBuffer();
      if (res.status === 200) ok(res.headers.get('x-backend') ?? '-', first);
      else {
        requests++;
        fail(`fetch status ${res.status}`);
      }
    } catch (e) {
      requests++;
      fail(`fetch: ${(e as Error).message}`);
    }
    if (pauseMs) await Bun.sleep(pauseMs);
  }
}

function counts() {
  return {
    requests,
    failures,
    failure_samples: failureSamples,
    dropped_sessions: droppedSessions,
    sessions_opened: sessionsOpened,
    backends,
    fingerprints,
  };
}
if (Number(values['progress-ms']) > 0)
  setInterval(() => console.log(JSON.stringify({ event: 'progress', ...counts() })), Number(values['progress-ms']));

const all = [...Array.from({ length: Number(values.sessions) }, sessionLoop), ...Array.from({ length: Number(values['fetch-loops']) }, fetchLoop)];
function finish(code: number): void {
  console.log(JSON.stringify({ event: 'summary', ...counts() }));
  process.exit(code);
}
process.on('SIGTERM', async () => {
  stopping = true;
  // Requests in flight end within `--timeout-ms`; do not wait longer than that.
  setTimeout(() => finish(0), timeoutMs + 500);
  await Promise.allSettled(all);
  finish(0);
});
setTimeout(() => finish(3), Number(values['max-ms'])).unref();
