/**
 * Real HTTP/2 backends for upstream-client tests, on 127.0.0.1 and port 0:
 *
 * - {@link startH2Server}: a `node:http2` server (cleartext h2c or h2 over TLS) or a `node:https` HTTP/1.1-only
 *   TLS server, each in a child Bun process (so its memory and event loop are separate from the client under
 *   test). Behaviour is chosen by path (see {@link H2ServerStats} and the route table in `serve()`), and a
 *   control HTTP server in the child reports counters and takes commands (stall/resume, GOAWAY).
 * - {@link startRawH2Server}: an in-process TCP server speaking just enough HTTP/2 frames to misbehave on purpose
 *   (REFUSED_STREAM, GOAWAY that excludes the stream, a reset after the response head, silence), or to record
 *   exactly which frames the client put on the wire.
 *
 * Readiness is a JSON line on the child's stdout, awaited with a deadline.
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Subprocess } from 'bun';
import { waitUntil } from './wait.ts';

export { waitUntil };

/** How a child server listens. */
export interface H2ServerOptions {
  /** `h2c` cleartext HTTP/2, `h2` HTTP/2 over TLS, `h1-tls` HTTP/1.1-only over TLS. */
  mode: 'h2c' | 'h2' | 'h1-tls';
  /** Certificate and key files (PEM) for the TLS modes. */
  certPath?: string;
  /** Key file (PEM) for the TLS modes. */
  keyPath?: string;
  /** SETTINGS_MAX_CONCURRENT_STREAMS the server advertises. Default 1000. */
  maxConcurrentStreams?: number;
  /** Port to listen on; 0 (default) picks one. Used by {@link H2Server.restart}. */
  port?: number;
}

/** Counters kept by a child server. */
export interface H2ServerStats {
  /** HTTP/2 sessions (TCP connections for `h1-tls`) accepted since start. */
  sessions: number;
  /** Sessions open now. */
  openSessions: number;
  /** Requests seen. */
  requests: number;
  /** Streams open now. */
  activeStreams: number;
  /** Most streams open at once since start. */
  maxActiveStreams: number;
  /** Bytes of the current `/upload` read by the handler so far. */
  uploadReceived: number;
  /** Bytes of the current `/download` accepted by `stream.write` so far. */
  downloadWritten: number;
  /** Streams that closed with a non-zero RST_STREAM code, by path. */
  resets: { path: string; rstCode: number }[];
  /** Paths of streams open now. */
  openPaths: string[];
  /** HTTP versions of requests seen (`2.0` or `1.1`). */
  versions: string[];
  /** SNI names seen on HTTP/2 TLS sessions (empty string when none was sent); not kept for `h1-tls`. */
  serverNames: string[];
}

/** A running child server. */
export interface H2Server {
  /** Traffic port. */
  readonly port: number;
  /** Counters from the child. */
  stats(): Promise<H2ServerStats>;
  /** Sends a control command: `stall` (stop reading uploads / writing downloads), `resume`, `goaway` (graceful close of every session). */
  command(cmd: 'stall' | 'resume' | 'goaway'): Promise<void>;
  /** Kills the child and starts a new one on the same port (a server restart). */
  restart(): Promise<void>;
  /** Kills the child. */
  stop(): Promise<void>;
}

/** Reads stdout lines of `proc` until one parses as JSON with `event: "listening"`, with a deadline. */
async function readReady(proc: Subprocess<'ignore', 'pipe', 'inherit'>, timeoutMs: number): Promise<{ port: number; control: number }> {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const deadline = setTimeout(() => proc.kill(), timeoutMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error('test server exited before it was ready');
      buf += decoder.decode(value, { stream: true });
      const nl = buf.indexOf('\n');
      if (nl < 0) continue;
      const rec = JSON.parse(buf.slice(0, nl)) as { event: string; port: number; control: number };
      if (rec.event === 'listening') return { port: rec.port, control: rec.control };
      buf = buf.slice(nl + 1);
    }
  } finally {
    clearTimeout(deadline);
    reader.releaseLock();
  }
}

/** Starts a child server (see {@link H2ServerOptions}) and waits until it listens (10 s deadline). */
export async function startH2Server(opts: H2ServerOptions): Promise<H2Server> {
  let cfg: H2ServerOptions = { ...opts };
  let proc: Subprocess<'ignore', 'pipe', 'inherit'>;
  let control = 0;
  let port = 0;
  const spawn = async () => {
    proc = Bun.spawn([process.execPath, import.meta.path, JSON.stringify(cfg)], {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'inherit',
    });
    const ready = await readReady(proc, 10_000);
    port = ready.port;
    control = ready.control;
  };
  await spawn();
  const stopChild = async () => {
    proc.kill('SIGKILL');
    await proc.exited;
  };
  return {
    get port() {
      return port;
    },
    async stats() {
      const res = await fetch(`http://127.0.0.1:${control}/stats`);
      return (await res.json()) as H2ServerStats;
    },
    async command(cmd) {
      const res = await fetch(`http://127.0.0.1:${control}/${cmd}`, { method: 'POST' });
      await res.text();
    },
    async restart() {
      await stopChild();
      cfg = { ...cfg, port };
      // The old listener is gone once the process exited; retry briefly in case the port is still settling.
      const deadline = performance.now() + 5000;
      for (;;) {
        try {
          await spawn();
          return;
        } catch (err) {
          if (performance.now() > deadline) throw err;
          await Bun.sleep(20);
        }
      }
    },
    stop: stopChild,
  };
}

/** Frees a port: listens on port 0 and closes again, so connecting to it is refused. */
export async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

// ---- raw HTTP/2 misbehaviour server (in-process) --------------------------------------------------------------

/** What a {@link startRawH2Server} does with each request (HEADERS frame). */
export type RawBehaviour =
  /** RST_STREAM(REFUSED_STREAM): the request was not processed. */
  | 'refuse'
  /** GOAWAY(last stream id 0): the request is above the last processed stream. */
  | 'goaway-unprocessed'
  /** Response head 200, 5 bytes of body, then RST_STREAM(INTERNAL_ERROR). */
  | 'reset-after-head'
  /** Accepts TCP but never sends a byte (not even SETTINGS). */
  | 'silent'
  /** Never answers; records every stream frame the client sends (see {@link RawH2Server.frames}). */
  | 'record'
  /** Answers with a DATA frame on stream 0 (a connection PROTOCOL_ERROR). */
  | 'malformed'
  /** Answers 200 with the header block split over HEADERS and two CONTINUATION frames, then `ok`. */
  | 'continuation'
  /** Sends PING `pingpong` first and answers 200 `pong` only once the client acknowledged it. */
  | 'ping'
  /** RST_STREAM(HTTP_1_1_REQUIRED): the backend wants the request over HTTP/1.1. */
  | 'http1-required'
  /** GOAWAY(last stream id 0, HTTP_1_1_REQUIRED). */
  | 'goaway-http1-required'
  /** Answers with the bytes the `respond` callback of {@link startRawH2Server} builds for the stream. */
  | 'custom';

/** Options of {@link startRawH2Server}. */
export interface RawH2ServerOptions {
  /**
   * Serve over TLS with these PEM texts, offering ALPN `h2, http/1.1`. A connection that does not pick h2 gets
   * HTTP/1.1: every request is answered 200 with the body `h1 METHOD PATH BODY_BYTES` (keep-alive).
   */
  tls?: { cert: string; key: string };
}

/** A frame a {@link startRawH2Server} received on a stream. */
export interface RawFrame {
  /** Frame type name: DATA, HEADERS, RST_STREAM, WINDOW_UPDATE, ... (or the number). */
  type: string;
  /** Stream id. */
  streamId: number;
  /** Payload length. */
  length: number;
  /** END_STREAM flag (DATA and HEADERS). */
  endStream: boolean;
  /** Error code of RST_STREAM. */
  code?: number;
}

const FRAME_NAMES: Record<number, string> = { 0: 'DATA', 1: 'HEADERS', 2: 'PRIORITY', 3: 'RST_STREAM', 8: 'WINDOW_UPDATE', 9: 'CONTINUATION' };

/** A running raw server. */
export interface RawH2Server {
  /** Listening port on 127.0.0.1. */
  readonly port: number;
  /** Connections accepted. */
  readonly connections: () => number;
  /** Stream frames received (kept for the `record` behaviour). */
  readonly frames: () => RawFrame[];
  /** Payloads of the PING acknowledgements received, as text. */
  readonly pingAcks: () => string[];
  /** HTTP/2 requests (HEADERS frames opening a stream) received. */
  readonly h2Requests: () => number;
  /** HTTP/1.1 requests answered (TLS only, on connections that did not pick h2). */
  readonly http1Requests: () => number;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Builds one HTTP/2 frame. */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId & 0x7fffffff, 5);
  b.set(payload, 9);
  return b;
}

/** `n` as 4 bytes, big-endian (frame fields such as error codes and stream ids). */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/**
 * Starts an in-process TCP server that speaks minimal HTTP/2 and misbehaves as told. `respond` builds the answer
 * (raw frames, see {@link frame}) to the request on stream `id` for the `custom` behaviour.
 */
export async function startRawH2Server(
  behaviour: RawBehaviour,
  respond?: (id: number) => Uint8Array | Promise<Uint8Array>,
  opts: RawH2ServerOptions = {},
): Promise<RawH2Server> {
  let conns = 0;
  let h2Requests = 0;
  let http1Requests = 0;
  const frames: RawFrame[] = [];
  const pingAcks: string[] = [];
  const sockets = new Set<net.Socket>();
  const onConnection = (sock: net.Socket) => {
    conns++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    if (behaviour === 'silent') return;
    if (opts.tls && (sock as tls.TLSSocket).alpnProtocol !== 'h2') {
      serveHttp1(sock, () => http1Requests++);
      return;
    }
    sock.write(frame(0x4, 0, 0, new Uint8Array(0))); // our SETTINGS (empty)
    let buf = Buffer.alloc(0);
    let prefaceSeen = false;
    let pingStream = 0;
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!prefaceSeen) {
        if (buf.length < 24) return;
        buf = buf.subarray(24);
        prefaceSeen = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) return;
        const type = buf[3] as number;
        const flags = buf[4] as number;
        const id = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (behaviour === 'record' && id !== 0) {
          frames.push({
            type: FRAME_NAMES[type] ?? String(type),
            streamId: id,
            length: len,
            endStream: (type === 0x0 || type === 0x1) && (flags & 0x1) !== 0,
            ...(type === 0x3 ? { code: payload.readUInt32BE(0) } : {}),
          });
        }
        if (type === 0x4 && (flags & 0x1) === 0) sock.write(frame(0x4, 0x1, 0, new Uint8Array(0))); // SETTINGS ACK
        if (type === 0x6 && (flags & 0x1) === 0) sock.write(frame(0x6, 0x1, 0, new Uint8Array(8))); // PING ACK
        if (type === 0x6 && (flags & 0x1) !== 0) {
          pingAcks.push(payload.toString('latin1'));
          if (behaviour === 'ping' && pingStream !== 0) {
            sock.write(frame(0x1, 0x4, pingStream, Uint8Array.of(0x88)));
            sock.write(frame(0x0, 0x1, pingStream, Buffer.from('pong')));
            pingStream = 0;
          }
        }
        if (type !== 0x1) continue; // HEADERS starts a request
        h2Requests++;
        if (behaviour === 'refuse') sock.write(frame(0x3, 0, id, u32(0x7)));
        else if (behaviour === 'http1-required') sock.write(frame(0x3, 0, id, u32(0xd)));
        else if (behaviour === 'goaway-http1-required') sock.write(frame(0x7, 0, 0, Buffer.concat([u32(0), u32(0xd)])));
        else if (behaviour === 'goaway-unprocessed') sock.write(frame(0x7, 0, 0, Buffer.concat([u32(0), u32(0)])));
        else if (behaviour === 'reset-after-head') {
          // HPACK: 0x88 is the static-table entry ":status: 200".
          sock.write(frame(0x1, 0x4, id, Uint8Array.of(0x88)));
          sock.write(frame(0x0, 0, id, Buffer.from('hello')));
          setTimeout(() => sock.write(frame(0x3, 0, id, u32(0x2))), 20);
        } else if (behaviour === 'malformed') {
          sock.write(frame(0x0, 0, 0, Buffer.from('oops')));
        } else if (behaviour === 'continuation') {
          // :status 200 (static 8), then `x-long: y * 100` as a literal with a new name, cut into three pieces.
          const block = Buffer.concat([Uint8Array.of(0x88, 0x00, 0x06), Buffer.from('x-long'), Uint8Array.of(100), Buffer.alloc(100, 0x79)]);
          sock.write(
            Buffer.concat([
              frame(0x1, 0x0, id, block.subarray(0, 5)),
              frame(0x9, 0x0, id, block.subarray(5, 50)),
              frame(0x9, 0x4, id, block.subarray(50)),
              frame(0x0, 0x1, id, Buffer.from('ok')),
            ]),
          );
        } else if (behaviour === 'custom') {
          const out = respond?.(id);
          if (out instanceof Uint8Array) sock.write(out);
          else if (out) void out.then((b) => sock.write(b));
        } else if (behaviour === 'ping') {
          pingStream = id;
          sock.write(frame(0x6, 0x0, 0, Buffer.from('pingpong')));
        }
      }
    });
  };
  const srv = opts.tls
    ? tls.createServer({ cert: opts.tls.cert, key: opts.tls.key, ALPNProtocols: ['h2', 'http/1.1'] }, onConnection)
    : net.createServer(onConnection);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    connections: () => conns,
    frames: () => frames,
    pingAcks: () => pingAcks,
    h2Requests: () => h2Requests,
    http1Requests: () => http1Requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

/**
 * Answers HTTP/1.1 on `sock` (keep-alive): every request, once its `content-length` body (if any) arrived, gets
 * 200 with the body `h1 METHOD PATH BODY_BYTES`; `counted` runs for each.
 */
function serveHttp1(sock: net.Socket, counted: () => void): void {
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      buf = buf.subarray(end + 4 + length);
      const [method, path] = head.split(' ');
      counted();
      const body = `h1 ${method} ${path} ${length}`;
      sock.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    }
  });
}

// ---- the child server ---------------------------------------------------------------------------------------

/**
 * Routes (query parameters in brackets):
 * - `/echo`: 200 with JSON `{ method, path, authority, scheme, headers, bodyBytes }` after reading the body;
 *   response headers `x-echo: 1` and two `set-cookie` fields.
 * - `/slow[?ms=N]`: 200 `slow` after N ms (default 200).
 * - `/upload`: reads the body (counted in `uploadReceived`, paused while stalled); answers `{ bytes, sum }` where
 *   `sum` is the rolling hash `h = h * 31 + byte (mod 2^32)` over every byte, in order.
 * - `/download?bytes=N`: N bytes (byte i is `i % 251`), honouring `write()` backpressure; paused while stalled.
 * - `/status/NNN`: that status and no body.
 * - `/hang`: never answers (the stream stays open until the client resets it).
 * - `/early-hints`: a 103 informational response, then 200 `final`.
 * - `/reset-before`: resets the stream (INTERNAL_ERROR) before any response.
 * - `/reset-after`: response head and 5 bytes, then resets the stream (INTERNAL_ERROR).
 * - `/stall-body?bytes=N&first=K&ms=M`: head with `content-length: N` and the first K bytes (byte i is `i % 251`)
 *   at once, the rest M ms later (default N=1000, K=10, M=500).
 * - `/bad-length?declared=D&actual=A`: head with `content-length: D`, then A bytes (a lying backend).
 * - `/no-length?bytes=N`: N bytes without a `content-length` (default 11).
 */
async function serve(cfg: H2ServerOptions): Promise<void> {
  // A handler bug must not take the test server down silently mid-test; report it on stderr instead.
  process.on('uncaughtException', (err) => console.error('h2 test server:', err));
  const stats: H2ServerStats = {
    sessions: 0,
    openSessions: 0,
    requests: 0,
    activeStreams: 0,
    maxActiveStreams: 0,
    uploadReceived: 0,
    downloadWritten: 0,
    resets: [],
    openPaths: [],
    versions: [],
    serverNames: [],
  };
  let stalled = false;
  const stallWaiters: (() => void)[] = [];
  const unstalled = () => (stalled ? new Promise<void>((r) => stallWaiters.push(r)) : Promise.resolve());
  const sessions = new Set<http2.ServerHttp2Session>();
  const tlsOpts = cfg.mode === 'h2c' ? undefined : { cert: readFileSync(cfg.certPath as string), key: readFileSync(cfg.keyPath as string) };

  const onStream = (st: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders) => {
    st.on('error', () => {});
    const url = new URL(String(h[':path'] ?? '/'), 'http://x');
    const path = url.pathname;
    stats.requests++;
    stats.versions.push('2.0');
    stats.activeStreams++;
    stats.maxActiveStreams = Math.max(stats.maxActiveStreams, stats.activeStreams);
    stats.openPaths.push(path);
    st.on('close', () => {
      stats.activeStreams--;
      const i = stats.openPaths.indexOf(path);
      if (i >= 0) stats.openPaths.splice(i, 1);
      if (st.rstCode) stats.resets.push({ path, rstCode: st.rstCode });
    });
    if (path === '/echo') {
      let bodyBytes = 0;
      st.on('data', (c: Buffer) => {
        bodyBytes += c.length;
      });
      st.on('end', () => {
        // Bun's server also ends the readable side when the client resets the stream.
        if (st.destroyed || st.closed || st.rstCode) return;
        const headers: Record<string, string | string[] | undefined> = {};
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) headers[k] = v;
        st.respond({ ':status': 200, 'content-type': 'application/json', 'x-echo': '1', 'set-cookie': ['a=1', 'b=2'] });
        st.end(JSON.stringify({ method: h[':method'], path: h[':path'], authority: h[':authority'], scheme: h[':scheme'], headers, bodyBytes }));
      });
      return;
    }
    if (path === '/slow') {
      const ms = Number(url.searchParams.get('ms') ?? 200);
      st.resume();
      setTimeout(() => {
        if (st.closed || st.destroyed) return;
        st.respond({ ':status': 200 });
        st.end('slow');
      }, ms);
      return;
    }
    if (path === '/upload') {
      stats.uploadReceived = 0;
      let sum = 0;
      st.on('data', (c: Buffer) => {
        stats.uploadReceived += c.length;
        for (let i = 0; i < c.length; i++) sum = (Math.imul(sum, 31) + (c[i] as number)) >>> 0;
        if (stalled) {
          st.pause();
          void unstalled().then(() => st.resume());
        }
      });
      st.on('end', () => {
        if (st.destroyed || st.closed || st.rstCode) return;
        st.respond({ ':status': 200, 'content-type': 'application/json' });
        st.end(JSON.stringify({ bytes: stats.uploadReceived, sum }));
      });
      return;
    }
    if (path === '/download') {
      const total = Number(url.searchParams.get('bytes') ?? 1024 * 1024);
      stats.downloadWritten = 0;
      st.respond({ ':status': 200, 'content-length': String(total) });
      const chunkSize = 16 * 1024;
      let sent = 0;
      const pump = async () => {
        while (sent < total) {
          if (stalled) await unstalled();
          if (st.closed || st.destroyed) return;
          const n = Math.min(chunkSize, total - sent);
          const chunk = Buffer.allocUnsafe(n);
          for (let i = 0; i < n; i++) chunk[i] = (sent + i) % 251;
          sent += n;
          stats.downloadWritten = sent;
          if (!st.write(chunk))
            await new Promise<void>((r) => {
              const done = () => {
                st.off('drain', done);
                st.off('close', done);
                r();
              };
              st.on('drain', done);
              st.on('close', done);
            });
        }
        st.end();
      };
      void pump();
      return;
    }
    if (path.startsWith('/status/')) {
      st.respond({ ':status': Number(path.slice(8)) }, { endStream: true });
      return;
    }
    if (path === '/hang') {
      st.resume();
      return;
    }
    if (path === '/early-hints') {
      st.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload' });
      setTimeout(() => {
        if (st.closed || st.destroyed) return;
        st.respond({ ':status': 200 });
        st.end('final');
      }, 20);
      return;
    }
    if (path === '/reset-before') {
      st.destroy(new Error('reset before head'));
      return;
    }
    if (path === '/stall-body') {
      const total = Number(url.searchParams.get('bytes') ?? 1000);
      const first = Math.min(total, Number(url.searchParams.get('first') ?? 10));
      const ms = Number(url.searchParams.get('ms') ?? 500);
      const bytes = Buffer.allocUnsafe(total);
      for (let i = 0; i < total; i++) bytes[i] = i % 251;
      st.respond({ ':status': 200, 'content-length': String(total) });
      st.write(bytes.subarray(0, first));
      setTimeout(() => {
        if (st.closed || st.destroyed) return;
        st.end(bytes.subarray(first));
      }, ms);
      return;
    }
    if (path === '/bad-length') {
      const declared = Number(url.searchParams.get('declared') ?? 10);
      const actual = Number(url.searchParams.get('actual') ?? 20);
      st.respond({ ':status': 200, 'content-length': String(declared) });
      st.end(Buffer.alloc(actual, 0x61));
      return;
    }
    if (path === '/no-length') {
      st.respond({ ':status': 200 });
      st.end(Buffer.alloc(Number(url.searchParams.get('bytes') ?? 11), 0x61));
      return;
    }
    if (path === '/reset-after') {
      st.respond({ ':status': 200 });
      st.write('hello');
      setTimeout(() => st.destroy(new Error('reset after head')), 20);
      return;
    }
    st.respond({ ':status': 404 });
    st.end('not found');
  };

  const onSession = (s: http2.ServerHttp2Session) => {
    stats.sessions++;
    stats.openSessions++;
    sessions.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      stats.openSessions--;
      sessions.delete(s);
    });
    const sock = s.socket as unknown as { servername?: string | false };
    if (tlsOpts) stats.serverNames.push(typeof sock.servername === 'string' ? sock.servername : '');
  };

  const settings = { maxConcurrentStreams: cfg.maxConcurrentStreams ?? 1000 };
  let listener: net.Server;
  if (cfg.mode === 'h2c') {
    const srv = http2.createServer({ settings });
    srv.on('session', onSession);
    srv.on('stream', onStream);
    listener = srv;
  } else if (cfg.mode === 'h2') {
    const srv = http2.createSecureServer({ ...tlsOpts, settings });
    srv.on('session', onSession);
    srv.on('stream', onStream);
    listener = srv;
  } else {
    const srv = https.createServer({ ...tlsOpts }, (req, res) => {
      stats.requests++;
      stats.versions.push(req.httpVersion);
      let bodyBytes = 0;
      req.on('data', (c: Buffer) => {
        bodyBytes += c.length;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.setHeader('x-echo', '1');
        res.end(
          JSON.stringify({
            method: req.method,
            path: req.url,
            authority: req.headers.host,
            headers: req.headers,
            bodyBytes,
            version: req.httpVersion,
          }),
        );
      });
    });
    srv.on('connection', () => {
      stats.sessions++;
    });
    listener = srv;
  }
  await new Promise<void>((resolve) => listener.listen(cfg.port ?? 0, '127.0.0.1', () => resolve()));

  const controlServer = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    development: false,
    fetch(req) {
      const p = new URL(req.url).pathname;
      if (p === '/stats') return Response.json(stats);
      if (p === '/stall') stalled = true;
      else if (p === '/resume') {
        stalled = false;
        for (const w of stallWaiters.splice(0)) w();
      } else if (p === '/goaway') for (const s of sessions) s.close();
      return new Response('ok');
    },
  });
  const port = (listener.address() as net.AddressInfo).port;
  process.stdout.write(`${JSON.stringify({ event: 'listening', port, control: controlServer.port })}\n`);
}

if (import.meta.main) {
  await serve(JSON.parse(process.argv[2] ?? '{"mode":"h2c"}') as H2ServerOptions);
}
