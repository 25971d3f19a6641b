/**
 * HTTP/2 upstream client over `node:http2` (Bun's implementation), cleartext (h2c, prior knowledge) or over TLS
 * (h2 via ALPN) with a fallback to HTTP/1.1 for HTTPS backends that do not offer h2.
 *
 * Connections. The transport keeps one session per backend and multiplexes every request over it. A further
 * session is opened only while every usable session is at the peer's `SETTINGS_MAX_CONCURRENT_STREAMS`
 * (up to `maxSessions`; beyond that requests wait for a free stream slot). A session that received GOAWAY, failed
 * or closed never gets a new stream; the next request opens a fresh one (transparent reconnect). Sessions idle
 * (no streams) for `idleTimeoutMs` are closed gracefully.
 *
 * The transport opens the TCP (and TLS) socket itself and hands it to `http2.connect` through
 * `createConnection`, so one connect timeout covers TCP, TLS and the peer's first SETTINGS frame, and every
 * failure before that point is a retryable `upstream_connect_failed`. For h2c that socket is a
 * {@link CoalescingSocket}, so the frames of every stream opened in one event-loop turn leave in one write (Bun
 * would otherwise write and flush once per stream); TLS sockets are `node:tls` ones, written per stream.
 *
 * HTTP/1.1 fallback (HTTPS only). The TLS handshake offers ALPN `h2, http/1.1`. When the backend picks anything but
 * `h2` (including no ALPN at all), the probe socket is closed and requests go to an {@link Http1Transport} for the
 * same origin and TLS policy. The decision is remembered per transport (that is, per backend) for
 * `protocolRecheckMs`; after that, the next request runs one new probe handshake, so a backend that gains (or
 * loses) h2 is noticed. While h2 is in use, every reconnect is itself a probe.
 *
 * Bun specifics this relies on (measured on Bun 1.4.5): a stream's `'end'` also fires when the connection dies
 * mid-body, so a response body is reported complete only on `'close'` with `rstCode === 0` after `'end'`; streams
 * above a GOAWAY's last stream id fail with `ERR_HTTP2_GOAWAY_SESSION` / `REFUSED_STREAM`; a stream is paused and
 * resumed by `pause()`/`resume()`, and WINDOW_UPDATEs follow consumption, so backpressure reaches the backend.
 *
 * Small bodies. When the response declares a `content-length` of at most {@link SMALL_BODY_BYTES} (or ends the
 * stream with its headers), the exchange collects the DATA frames and hands the response over only once the stream
 * closed cleanly: `body` is then one `Uint8Array` (or null), and `onEnd` has already run. The response-header
 * timeout keeps covering this wait. A backend that sends the head in time but not the rest of the small body by
 * then does not fail the request: the response is handed over with a streaming body that starts with the bytes
 * received so far (from then on it behaves like any streamed body). A body longer or shorter than its
 * `content-length` is an `upstream_protocol_error` (never buffered past the declared length). Larger or unknown
 * lengths are streamed with backpressure.
 *
 * Per-request cost. The hot path allocates one exchange object per request and no closures: stream listeners are
 * shared functions that find the exchange on the stream, and the exchange itself is the body stream's source and
 * the abort listener. Timers are not per request either: every exchange waiting for its response sits in one list
 * per transport, swept by one timer, which fires expired deadlines and polls `signal.aborted` every
 * {@link ABORT_POLL_MS} for exchanges younger than {@link ABORT_LISTEN_AFTER_MS}; older ones (and every response
 * handed over with a body still to come) get a real abort listener. A response is handed over only after checking the
 * signal, so a short exchange never touches the signal's listener list, and an abort is noticed within the poll
 * interval.
 */
import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { SpookyError } from '../errors.ts';
import { CoalescingSocket } from './coalescing-socket.ts';
import { type Http1PoolOptions, Http1Transport } from './http1.ts';
import {
  type ExchangeEnd,
  type ExchangeOptions,
  SMALL_BODY_BYTES,
  type Transport,
  type TransportStats,
  type UpstreamRequest,
  type UpstreamResponse,
} from './transport.ts';

const {
  NGHTTP2_CANCEL,
  NGHTTP2_NO_ERROR,
  NGHTTP2_PROTOCOL_ERROR,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_COMPRESSION_ERROR,
  NGHTTP2_FRAME_SIZE_ERROR,
  NGHTTP2_FLAG_END_STREAM,
} = http2.constants;

/**
 * Milliseconds between checks of `signal.aborted` for exchanges that have no abort listener (yet): the longest an
 * abort of a young exchange can go unnoticed while it waits for its response (a response that completes is checked
 * before it is handed over).
 */
export const ABORT_POLL_MS = 10;

/**
 * Milliseconds after which an exchange still waiting for its response gets a real abort listener instead of being
 * polled. Short exchanges (nearly all) never touch the signal's listener list.
 */
export const ABORT_LISTEN_AFTER_MS = 250;

/** TLS policy towards one backend. */
export interface UpstreamTlsOptions {
  /** SNI name to send (and to check the certificate against); undefined sends none and checks against `host`. */
  serverName?: string;
  /** Extra trusted CA certificates, PEM. Undefined: the runtime's default roots. */
  ca?: string;
  /** Verify the backend certificate chain and name. */
  rejectUnauthorized: boolean;
}

/** Where a transport connects: host (name or IP literal, IPv6 without brackets), port, and TLS when set. */
export interface UpstreamOrigin {
  /** Host name or IP literal. */
  host: string;
  /** TCP port. */
  port: number;
  /** TLS policy; undefined means cleartext (h2c). */
  tls?: UpstreamTlsOptions;
}

/** Tuning of {@link Http2Transport}. Every field is optional. */
export interface Http2TransportOptions {
  /** Most HTTP/2 sessions (TCP connections) to the backend at once. Default `8`. */
  maxSessions?: number;
  /** Milliseconds a session with no streams stays open. Default `60000`. */
  idleTimeoutMs?: number;
  /** Per-stream receive window in bytes (`SETTINGS_INITIAL_WINDOW_SIZE`): the most a paused response buffers. Default `262144`. */
  streamWindowBytes?: number;
  /** Response body queue of the web stream, in bytes, before the HTTP/2 stream is paused. Default `65536`. */
  bodyHighWaterMark?: number;
  /** Milliseconds an "HTTP/1.1 only" ALPN result is trusted before the next request probes again. Default `60000`. */
  protocolRecheckMs?: number;
  /** Options of the HTTP/1.1 fallback transport (HTTPS backends without h2). */
  http1?: Http1PoolOptions;
  /** Builds the HTTP/1.1 fallback transport. Default: `new Http1Transport(origin, http1)`. */
  http1Factory?: (origin: UpstreamOrigin) => Transport;
}

/** Connection-specific header fields that HTTP/2 forbids (RFC 9113 §8.2.2); dropped if present. */
const FORBIDDEN_H2_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'content-length',
]);

/** Error codes from node:http2 that mean the stream was never processed by the backend. */
const UNPROCESSED_ERROR_CODES = new Set(['ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_INVALID_SESSION']);

/** Error codes `session.request()` throws for a header it refuses to send. */
const BAD_HEADER_CODES = new Set([
  'ERR_HTTP2_INVALID_CONNECTION_HEADERS',
  'ERR_HTTP2_INVALID_HEADER_VALUE',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_HTTP2_HEADER_SINGLE_VALUE',
  'ERR_INVALID_CHAR',
  'ERR_HTTP2_INVALID_PSEUDOHEADER',
]);

/** Error codes from node:http2 that mean the backend spoke invalid HTTP/2. */
const PROTOCOL_ERROR_CODES = new Set([
  'ERR_HTTP2_ERROR',
  'ERR_HTTP2_INVALID_HEADER_VALUE',
  'ERR_HTTP2_INVALID_INFO_STATUS',
  'ERR_HTTP2_STATUS_INVALID',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_PROTOCOL_ERROR',
]);

/** One HTTP/2 connection and its bookkeeping. */
class Session {
  /** Streams open on this session now. */
  active = 0;
  /** Peer's SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxStreams: number;
  /** False once GOAWAY, an error or close was seen: no new streams. */
  usable = true;
  /** Set once 'close' was handled. */
  closed = false;
  /** Idle timer (armed while `active === 0`). */
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** `performance.now()` when the session last became idle. */
  idleSince = 0;

  constructor(
    readonly h2: ClientHttp2Session,
    maxStreams: number | undefined,
  ) {
    this.maxStreams = maxStreams ?? 100;
  }

  /** True when a new stream may go to this session now. */
  hasCapacity(): boolean {
    return this.usable && !this.h2.closed && !this.h2.destroyed && this.active < this.maxStreams;
  }
}

/** A request parked until a stream slot (or a session) frees up. */
interface SlotWaiter {
  wake: () => void;
  /** Set when the request gave up (aborted); such a waiter is skipped. */
  gone: boolean;
}

/** Result of finding a place for a request. */
type Route = Session | 'h1';

/** What the ALPN probe found. */
type Negotiated = 'h2' | 'http/1.1';

function noop(): void {}

/** Wraps `fn` so it runs at most once. */
function once(fn: ExchangeEnd | undefined): ExchangeEnd {
  let done = false;
  return (err) => {
    if (done) return;
    done = true;
    fn?.(err);
  };
}

/** Size of a body chunk for the byte-counting queuing strategy. */
function chunkBytes(chunk: Uint8Array | undefined): number {
  return chunk?.byteLength ?? 0;
}

/** Text of an unknown error for messages. */
function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** `code` property of an error, if any. */
function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A retryable connect failure: nothing reached the backend. */
function connectFailed(message: string, cause?: unknown): SpookyError {
  return new SpookyError('upstream_connect_failed', message, { retryable: true, cause });
}

/**
 * HTTP/2 {@link Transport} for one backend: h2c when `origin.tls` is undefined, else h2 over TLS with an
 * automatic HTTP/1.1 fallback (see the module comment for the connection and fallback policy).
 */
export class Http2Transport implements Transport {
  private readonly origin: UpstreamOrigin;
  private readonly authorityUrl: string;
  private readonly defaultAuthority: string;
  private readonly scheme: 'http' | 'https';
  private readonly maxSessions: number;
  private readonly idleTimeoutMs: number;
  private readonly streamWindowBytes: number;
  private readonly bodyHighWaterMark: number;
  private readonly protocolRecheckMs: number;
  private readonly http1Factory: (origin: UpstreamOrigin) => Transport;

  private readonly sessions: Session[] = [];
  /** The connect in progress, shared by every request that waits for a session. */
  private connecting: Promise<Route> | undefined;
  /** Requests waiting for a stream slot while every session is full and no more may be opened. */
  private slotWaiters: SlotWaiter[] = [];
  private h1: Transport | undefined;
  /** Last ALPN result (undefined before the first TLS handshake; always 'h2' for h2c). */
  private negotiated: Negotiated | undefined;
  /** `performance.now()` after which an 'http/1.1' result is probed again. */
  private h1Until = 0;
  private isClosed = false;
  private opened = 0;
  /** What every exchange of this transport shares. */
  private readonly ctx: ExchangeContext;

  /**
   * @param origin backend host, port and TLS policy (cleartext h2c when `tls` is undefined)
   * @param opts tuning; see {@link Http2TransportOptions}
   */
  constructor(origin: UpstreamOrigin, opts: Http2TransportOptions = {}) {
    this.origin = origin;
    this.scheme = origin.tls ? 'https' : 'http';
    const hostPart = isIP(origin.host) === 6 ? `[${origin.host}]` : origin.host;
    this.defaultAuthority = `${hostPart}:${origin.port}`;
    this.authorityUrl = `${this.scheme}://${this.defaultAuthority}`;
    this.maxSessions = Math.max(1, opts.maxSessions ?? 8);
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.streamWindowBytes = opts.streamWindowBytes ?? 256 * 1024;
    this.bodyHighWaterMark = opts.bodyHighWaterMark ?? 64 * 1024;
    this.protocolRecheckMs = opts.protocolRecheckMs ?? 60_000;
    this.ctx = {
      authority: this.defaultAuthority,
      bodyStrategy: { highWaterMark: this.bodyHighWaterMark, size: chunkBytes },
      sweeper: new Sweeper(),
      release: (s) => this.release(s),
    };
    const http1Opts = opts.http1;
    this.http1Factory = opts.http1Factory ?? ((o) => new Http1Transport(o, http1Opts));
    if (!origin.tls) this.negotiated = 'h2';
  }

  /** The protocol the backend chose in the last TLS handshake (`h2` for h2c); undefined before the first one. */
  get protocol(): Negotiated | undefined {
    return this.negotiated;
  }

  /** Sends one request; see {@link Transport.request}. `opts.onEnd` runs exactly once, also when this rejects. */
  request(req: UpstreamRequest, opts: ExchangeOptions): Promise<UpstreamResponse> {
    const invalid = validate(req);
    if (invalid) {
      opts.onEnd?.(invalid);
      return Promise.reject(invalid);
    }
    // Hot path: a session with a free stream slot right now. No async function, no extra promise.
    const route = req.signal.aborted ? undefined : this.pick();
    if (route instanceof Session) {
      const stream = this.openStream(route, req);
      if (!(stream instanceof SpookyError)) return this.exchange(route, stream, req, opts, opts.onEnd);
      if (stream.code !== 'upstream_connect_failed') {
        opts.onEnd?.(stream);
        return Promise.reject(stream);
      }
      return this.requestSlow(req, opts, 1);
    }
    return this.requestSlow(req, opts, 0);
  }

  /** {@link request} when no session can take the stream at once: waits, connects, retries, or falls back. */
  private async requestSlow(req: UpstreamRequest, opts: ExchangeOptions, firstAttempt: number): Promise<UpstreamResponse> {
    const onEnd = once(opts.onEnd);
    // A few attempts cover the race of a session that dies between being picked and opening the stream;
    // every such failure happens before anything was sent.
    for (let attempt = firstAttempt; ; attempt++) {
      let route: Route;
      try {
        if (req.signal.aborted) throw abortedError(req.signal);
        route = this.pick() ?? (await this.acquire(req.signal, opts.connectTimeoutMs));
        if (req.signal.aborted) {
          // Fired in the same turn the wait ended: nothing was sent yet; give the reserved slot back.
          if (route instanceof Session) this.release(route);
          throw abortedError(req.signal);
        }
      } catch (err) {
        const e = err instanceof SpookyError ? err : connectFailed(describe(err), err);
        onEnd(e);
        throw e;
      }
      if (route === 'h1') {
        const h1 = this.h1;
        if (h1) return h1.request(req, { ...opts, onEnd });
        if (attempt < 2) continue; // the fallback was retired meanwhile (the backend gained h2)
        const e = connectFailed(`no connection to ${this.defaultAuthority}`);
        onEnd(e);
        throw e;
      }
      const stream = this.openStream(route, req);
      if (stream instanceof SpookyError) {
        if (stream.code === 'upstream_connect_failed' && attempt < 2) continue;
        onEnd(stream);
        throw stream;
      }
      return this.exchange(route, stream, req, opts, onEnd);
    }
  }

  /** Counters: sessions (and HTTP/1.1 fallback connections) opened, open now, idle now. */
  stats(): TransportStats {
    let open = 0;
    let idle = 0;
    for (const s of this.sessions) {
      open++;
      if (s.active === 0) idle++;
    }
    const st: TransportStats = { connectionsOpened: this.opened, connectionsOpen: open, connectionsIdle: idle };
    if (this.h1) {
      const h = this.h1.stats();
      st.connectionsOpened += h.connectionsOpened;
      st.connectionsOpen += h.connectionsOpen;
      st.connectionsIdle += h.connectionsIdle;
    }
    return st;
  }

  /** Closes every session gracefully (in-flight streams finish, then the connection closes); later requests fail. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const s of [...this.sessions]) {
      s.usable = false;
      this.closeSession(s);
    }
    this.wakeAll();
    this.h1?.close();
  }

  // ---- session selection -------------------------------------------------------------------------------------

  /**
   * A session (or the HTTP/1.1 fallback) that can take a request right now, without waiting. A returned session
   * has one stream slot reserved (`active` counted already), so requests resuming in the same tick cannot
   * overbook it; {@link openStream} takes the reservation over or gives it back.
   */
  private pick(): Route | undefined {
    if (this.isClosed) return undefined;
    // While an HTTP/1.1 decision is fresh, or a re-probe is already running, requests take the fallback.
    if (this.negotiated === 'http/1.1' && this.h1 && (this.connecting || performance.now() < this.h1Until)) return 'h1';
    for (const s of this.sessions) {
      if (s.hasCapacity()) {
        // The idle timer stays armed: it checks `active` when it fires (no timer calls per request).
        s.active++;
        return s;
      }
    }
    return undefined;
  }

  /** Waits for a session with a free stream slot, opening one when allowed. Rejects only with SpookyError. */
  private async acquire(signal: AbortSignal, connectTimeoutMs: number): Promise<Route> {
    const deadline = performance.now() + connectTimeoutMs;
    for (;;) {
      if (this.isClosed) throw connectFailed(`transport to ${this.defaultAuthority} is closed`);
      if (signal.aborted) throw abortedError(signal);
      const ready = this.pick();
      if (ready) return ready;
      if (!this.connecting && this.usableCount() < this.maxSessions) {
        const p = this.connect(connectTimeoutMs);
        this.connecting = p;
        const clear = () => {
          if (this.connecting === p) this.connecting = undefined;
        };
        p.then(clear, clear);
      }
      if (this.connecting) {
        const route = await abortable(this.connecting, signal);
        if (route === 'h1') return 'h1';
        continue; // the new session may be full already; pick again
      }
      // Every session is full and no more may be opened: wait for a free stream slot, at most until the
      // connect deadline (nothing was sent, so the caller may try another backend).
      const left = deadline - performance.now();
      if (left <= 0) {
        throw connectFailed(`no free HTTP/2 stream to ${this.defaultAuthority} within ${connectTimeoutMs} ms (${this.maxSessions} sessions full)`);
      }
      const waiter: SlotWaiter = { wake: noop, gone: false };
      let slotTimer: ReturnType<typeof setTimeout> | undefined;
      const woken = new Promise<void>((resolve) => {
        waiter.wake = resolve;
        slotTimer = timer(left, resolve);
      });
      this.slotWaiters.push(waiter);
      try {
        await abortable(woken, signal);
      } finally {
        waiter.gone = true;
        clearTimeout(slotTimer);
      }
    }
  }

  private usableCount(): number {
    let n = 0;
    for (const s of this.sessions) if (s.usable && !s.closed) n++;
    return n;
  }

  private wakeOne(): void {
    if (this.slotWaiters.length === 0) return; // the common case: nobody waits
    for (;;) {
      const w = this.slotWaiters.shift();
      if (!w) return;
      if (w.gone) continue;
      w.wake();
      return;
    }
  }

  private wakeAll(): void {
    const ws = this.slotWaiters;
    if (ws.length === 0) return;
    this.slotWaiters = [];
    for (const w of ws) if (!w.gone) w.wake();
  }

  // ---- connecting --------------------------------------------------------------------------------------------

  /**
   * Opens a TCP (+TLS) connection and an HTTP/2 session on it, or decides on the HTTP/1.1 fallback.
   * Resolves once the peer's SETTINGS arrived. Rejects with a retryable `upstream_connect_failed`.
   */
  private connect(timeoutMs: number): Promise<Route> {
    const { host, port } = this.origin;
    const tlsOpts = this.origin.tls;
    return new Promise<Route>((resolve, reject) => {
      let settled = false;
      let socket: Duplex | undefined;
      let h2: ClientHttp2Session | undefined;
      const fail = (err: SpookyError) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        h2?.destroy();
        socket?.destroy();
        reject(err);
      };
      const connectTimer = timer(timeoutMs, () => fail(connectFailed(`connect to ${this.defaultAuthority} timed out after ${timeoutMs} ms`)));
      const onSocketError = (err: unknown) => fail(connectFailed(`connect to ${this.defaultAuthority} failed: ${describe(err)}`, err));

      const startSession = (sock: Duplex) => {
        this.opened++;
        const session = http2.connect(this.authorityUrl, {
          createConnection: () => sock,
          settings: { enablePush: false, initialWindowSize: this.streamWindowBytes },
        });
        h2 = session;
        // Late errors surface through 'close' on the session and its streams; never let one go unhandled.
        session.on('error', noop);
        const onEarlyError = (err: unknown) => fail(connectFailed(`HTTP/2 handshake with ${this.defaultAuthority} failed: ${describe(err)}`, err));
        const onEarlyClose = () => fail(connectFailed(`${this.defaultAuthority} closed the connection during the HTTP/2 handshake`));
        session.once('error', onEarlyError);
        session.once('close', onEarlyClose);
        session.once('remoteSettings', (settings) => {
          session.off('error', onEarlyError);
          session.off('close', onEarlyClose);
          sock.off('error', onSocketError);
          if (settled) {
            session.destroy();
            return;
          }
          settled = true;
          clearTimeout(connectTimer);
          if (this.isClosed) {
            session.destroy();
            reject(connectFailed(`transport to ${this.defaultAuthority} is closed`));
            return;
          }
          resolve(this.adopt(session, settings));
        });
      };

      if (!tlsOpts) {
        // Cleartext: a socket that coalesces the frames of one event-loop turn into one write (see its module).
        CoalescingSocket.connect(host, port).then((sock) => {
          if (settled) {
            sock.destroy();
            return;
          }
          socket = sock;
          sock.on('error', noop);
          sock.once('error', onSocketError);
          startSession(sock);
        }, onSocketError);
        return;
      }
      const options: tls.ConnectionOptions = {
        host,
        port,
        ALPNProtocols: ['h2', 'http/1.1'],
        rejectUnauthorized: tlsOpts.rejectUnauthorized,
      };
      if (tlsOpts.serverName) options.servername = tlsOpts.serverName;
      if (tlsOpts.ca !== undefined) options.ca = tlsOpts.ca;
      const tsock = tls.connect(options);
      socket = tsock;
      tsock.on('error', noop);
      tsock.once('error', onSocketError);
      tsock.once('secureConnect', () => {
        if (settled) return;
        if (tlsOpts.rejectUnauthorized && !tsock.authorized) {
          onSocketError(tsock.authorizationError ?? new Error('certificate not authorized'));
          return;
        }
        tsock.setNoDelay(true);
        if (tsock.alpnProtocol === 'h2') {
          this.negotiated = 'h2';
          if (this.h1) {
            // The backend gained h2: retire the fallback pool (its in-flight requests finish).
            const old = this.h1;
            this.h1 = undefined;
            this.opened += old.stats().connectionsOpened;
            old.close();
          }
          startSession(tsock);
          return;
        }
        // The backend does not speak h2 over TLS: route to HTTP/1.1 (the probe connection is not reused).
        this.opened++;
        settled = true;
        clearTimeout(connectTimer);
        tsock.destroy();
        this.negotiated = 'http/1.1';
        this.h1Until = performance.now() + this.protocolRecheckMs;
        if (this.isClosed) {
          reject(connectFailed(`transport to ${this.defaultAuthority} is closed`));
          return;
        }
        this.h1 ??= this.http1Factory(this.origin);
        this.wakeAll();
        resolve('h1');
      });
    });
  }

  /** Registers a freshly handshaken session and wires its lifecycle. */
  private adopt(h2: ClientHttp2Session, settings: http2.Settings): Session {
    const s = new Session(h2, settings.maxConcurrentStreams ?? h2.remoteSettings.maxConcurrentStreams);
    this.sessions.push(s);
    h2.on('remoteSettings', (settings) => {
      if (settings.maxConcurrentStreams !== undefined) s.maxStreams = settings.maxConcurrentStreams;
      this.wakeAll();
    });
    h2.on('goaway', () => {
      s.usable = false;
      if (s.active === 0) this.closeSession(s);
      this.wakeAll();
    });
    h2.on('error', () => {
      // Streams report their own failures; the session is finished for new work.
      s.usable = false;
    });
    h2.once('close', () => {
      s.usable = false;
      s.closed = true;
      if (s.idleTimer) clearTimeout(s.idleTimer);
      const i = this.sessions.indexOf(s);
      if (i >= 0) this.sessions.splice(i, 1);
      this.wakeAll();
    });
    this.markIdle(s);
    return s;
  }

  private closeSession(s: Session): void {
    if (s.idleTimer) {
      clearTimeout(s.idleTimer);
      s.idleTimer = undefined;
    }
    if (s.h2.closed || s.h2.destroyed) return;
    try {
      s.h2.close(); // graceful: GOAWAY, in-flight streams finish, then the socket closes
    } catch {
      s.h2.destroy();
    }
  }

  private markIdle(s: Session): void {
    s.idleSince = performance.now();
    if (s.idleTimer || this.idleTimeoutMs <= 0 || !Number.isFinite(this.idleTimeoutMs)) return;
    const arm = (ms: number) => {
      s.idleTimer = setTimeout(() => {
        s.idleTimer = undefined;
        if (s.closed || s.active > 0) return;
        const left = s.idleSince + this.idleTimeoutMs - performance.now();
        if (left > 1) {
          arm(left);
          return;
        }
        s.usable = false;
        this.closeSession(s);
      }, ms);
      s.idleTimer.unref?.();
    };
    arm(this.idleTimeoutMs);
  }

  // ---- one exchange ------------------------------------------------------------------------------------------

  /** Builds the HTTP/2 header block from the request. */
  private headersFor(req: UpstreamRequest): OutgoingHttpHeaders {
    const headers: OutgoingHttpHeaders = {
      ':method': req.method,
      ':path': req.target,
      ':scheme': this.scheme,
      ':authority': this.defaultAuthority,
    };
    let sawHost = false;
    for (const [name, value] of req.headers) {
      if (name === 'host') {
        if (!sawHost) headers[':authority'] = value;
        sawHost = true;
        continue;
      }
      if (FORBIDDEN_H2_HEADERS.has(name) || name.charCodeAt(0) === 58 /* ':' */) continue;
      if (name === 'te' && value.toLowerCase() !== 'trailers') continue;
      const prev = headers[name];
      if (prev === undefined) headers[name] = value;
      else if (Array.isArray(prev)) prev.push(value);
      else headers[name] = [String(prev), value];
    }
    if (req.contentLength !== undefined) headers['content-length'] = String(req.contentLength);
    return headers;
  }

  /** Gives back a stream slot of `s` (stream closed, or a reservation that was not used). */
  private release(s: Session): void {
    s.active--;
    if (s.active === 0) {
      if (!s.usable) this.closeSession(s);
      else this.markIdle(s);
    }
    this.wakeOne();
  }

  /** Opens a stream on `s` (which has a slot reserved by {@link pick}), or returns a retryable error when the session refused it synchronously. */
  private openStream(s: Session, req: UpstreamRequest): ClientHttp2Stream | SpookyError {
    try {
      // The slot is given back by the exchange's 'close' handler.
      return s.h2.request(this.headersFor(req), { endStream: req.body === null });
    } catch (err) {
      if (BAD_HEADER_CODES.has(errCode(err) ?? '')) {
        // A header the HTTP/2 client rejects: not the session's fault, and a retry would fail the same way.
        this.release(s);
        return new SpookyError('bad_request', `request cannot be sent over HTTP/2: ${describe(err)}`, { cause: err });
      }
      s.usable = false;
      this.release(s);
      return connectFailed(`HTTP/2 session to ${this.defaultAuthority} cannot open streams: ${describe(err)}`, err);
    }
  }

  /** Drives one stream: request body, deadline, response head and body, and the single `onEnd` (see {@link Exchange}). */
  private exchange(
    s: Session,
    stream: ClientHttp2Stream,
    req: UpstreamRequest,
    opts: ExchangeOptions,
    onEnd: ExchangeEnd | undefined,
  ): Promise<UpstreamResponse> {
    const ex = new Exchange(this.ctx, s, stream, req, onEnd, opts.responseHeaderTimeoutMs);
    captureTarget = ex;
    const head = new Promise<UpstreamResponse>(captureResolvers);
    captureTarget = undefined;
    (stream as TaggedStream)[kExchange] = ex;
    stream.on('response', onStreamResponse);
    stream.on('data', onStreamData);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    this.ctx.sweeper.add(ex);
    if (req.body) ex.upload(req.body);
    return head;
  }
}

// ---- one exchange -------------------------------------------------------------------------------------------

/** What an {@link Exchange} shares with its transport. */
interface ExchangeContext {
  /** `host:port` for messages. */
  readonly authority: string;
  /** Queuing strategy of streamed response bodies (byte-counted high-water mark). */
  readonly bodyStrategy: QueuingStrategy<Uint8Array>;
  /** Deadlines and lazy abort listeners. */
  readonly sweeper: Sweeper;
  /** Gives back the stream slot of a session (the stream closed). */
  readonly release: (s: Session) => void;
}

/** Exchange states (see {@link Exchange.state}). */
const WAIT_HEAD = 0;
/** Head received; collecting a small body before handing the response over. */
const COLLECT = 1;
/** Head handed over with a streaming body. */
const STREAMING = 2;
/** Head handed over without a body; the stream is drained until it closes. */
const NO_BODY = 3;

/** Reader of a request body stream (the part the upload uses). */
interface BodyReader {
  read(): Promise<{ done: true; value?: Uint8Array } | { done: false; value: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

/** Placeholder header list of an exchange before its head arrived (never mutated). */
const NO_HEADERS: [string, string][] = [];

/** Key of the exchange on its stream, so the shared stream listeners find it. */
const kExchange = Symbol('spooky.h2.exchange');

/** A stream carrying its exchange. */
type TaggedStream = ClientHttp2Stream & { [kExchange]?: Exchange };

/** Exchange whose promise is being created (read by {@link captureResolvers}); avoids a closure per request. */
let captureTarget: Exchange | undefined;

/** Promise executor that stores the resolvers on {@link captureTarget}. */
function captureResolvers(resolve: (r: UpstreamResponse) => void, reject: (e: unknown) => void): void {
  const ex = captureTarget as Exchange;
  ex.resolve = resolve;
  ex.reject = reject;
}

function onStreamResponse(this: TaggedStream, headers: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number): void {
  this[kExchange]?.onResponse(headers, flags);
}

function onStreamData(this: TaggedStream, chunk: Buffer): void {
  this[kExchange]?.onData(chunk);
}

function onStreamError(this: TaggedStream, err: unknown): void {
  const ex = this[kExchange];
  if (ex && ex.streamError === undefined) ex.streamError = err;
}

function onStreamClose(this: TaggedStream): void {
  this[kExchange]?.onClose();
}

/**
 * One request/response on one HTTP/2 stream: request body upload, the head deadline, the response head, the body
 * (collected when small, else streamed with backpressure), cancellation and the single `onEnd`. It is also the
 * response body's underlying source (`start`/`pull`/`cancel`), the abort listener (`handleEvent`), and a node of
 * the {@link Sweeper} list, so a request allocates no closures.
 */
class Exchange implements EventListenerObject {
  /** Sweeper list links. */
  prev: Exchange | undefined = undefined;
  next: Exchange | undefined = undefined;
  /** In the sweeper list. */
  linked = false;
  /** `performance.now()` when the sweeper started tracking it. */
  started = 0;
  /** `performance.now()` by which the head (and a small body) must have arrived. */
  deadline = Number.POSITIVE_INFINITY;
  /** The abort listener is attached. */
  watching = false;
  /** {@link WAIT_HEAD}, {@link COLLECT}, {@link STREAMING} or {@link NO_BODY}. */
  state = WAIT_HEAD;
  finished = false;
  /** Set when we reset the stream ourselves. */
  localError: SpookyError | undefined = undefined;
  /** First error the stream emitted. */
  streamError: unknown = undefined;
  status = 0;
  headers: [string, string][] = NO_HEADERS;
  /** COLLECT: declared body length, or -1 when the stream ended with the head (body null). */
  declared = 0;
  /** COLLECT: bytes received so far. */
  received = 0;
  /** COLLECT: the first chunk, and any further ones. */
  first: Uint8Array | undefined = undefined;
  more: Uint8Array[] | undefined = undefined;
  controller: ReadableStreamDefaultController<Uint8Array> | undefined = undefined;
  paused = false;
  /** Reader of the request body while it is being sent. */
  reader: BodyReader | undefined = undefined;
  uploading = false;
  resolve: (r: UpstreamResponse) => void = noop;
  reject: (e: unknown) => void = noop;

  constructor(
    readonly ctx: ExchangeContext,
    readonly session: Session,
    readonly stream: ClientHttp2Stream,
    readonly req: UpstreamRequest,
    readonly onEnd: ExchangeEnd | undefined,
    readonly timeoutMs: number,
  ) {}

  // ---- stream events

  onResponse(headers: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number): void {
    // 1xx informational responses arrive as 'headers' events and are not forwarded; 'response' is the final head.
    if (this.finished || this.state !== WAIT_HEAD) return;
    const status = Number(headers[':status']);
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      // A client cannot be sent a final status outside 200..599 (RFC 9110 section 15): the backend is broken.
      this.reset(new SpookyError('upstream_protocol_error', `${this.ctx.authority} sent :status ${String(headers[':status'])}`));
      return;
    }
    this.status = status;
    this.headers = headerList(headers);
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      // Nothing follows the head: hand it over (body null) once the stream closed cleanly.
      this.state = COLLECT;
      this.declared = -1;
      return;
    }
    if (this.req.method === 'HEAD' || status === 204 || status === 304) {
      // No body by definition; drain whatever arrives, the exchange ends when the stream closes.
      this.handOver(null);
      return;
    }
    const length = smallLength(headers['content-length']);
    if (length >= 0) {
      this.state = COLLECT;
      this.declared = length;
      return;
    }
    this.handOverStream();
  }

  onData(chunk: Buffer): void {
    if (this.finished) return;
    if (this.state === COLLECT) {
      const received = this.received + chunk.byteLength;
      if (received > this.declared) {
        this.reset(
          new SpookyError('upstream_protocol_error', `${this.ctx.authority} sent more response body than its content-length (${this.declared})`),
        );
        return;
      }
      this.received = received;
      if (this.first === undefined) this.first = chunk;
      else (this.more ??= []).push(chunk);
      return;
    }
    const c = this.controller;
    if (this.state !== STREAMING || !c) return; // NO_BODY: drained
    c.enqueue(chunk);
    if ((c.desiredSize ?? 0) <= 0 && !this.paused) {
      this.paused = true;
      this.stream.pause();
    }
  }

  onClose(): void {
    const stream = this.stream;
    this.ctx.release(this.session);
    (stream as TaggedStream)[kExchange] = undefined;
    if (this.finished) return;
    if (this.localError) {
      this.finish(this.localError);
      return;
    }
    const code = stream.rstCode;
    // Bun also emits 'end' when the connection dies mid-body; only a clean close (rstCode 0) after the
    // readable side ended is a complete response.
    const clean =
      this.state !== WAIT_HEAD && stream.readableEnded && (code === NGHTTP2_NO_ERROR || code === undefined) && this.streamError === undefined;
    if (!clean) {
      this.finish(classify(stream, this.streamError, this.state !== WAIT_HEAD, this.ctx.authority));
      return;
    }
    if (this.state !== COLLECT) {
      this.finish();
      return;
    }
    // A complete small response: end the exchange first, then hand the whole body over.
    let body: Uint8Array | null = null;
    if (this.declared >= 0) {
      if (this.received !== this.declared) {
        this.finish(
          new SpookyError(
            'upstream_protocol_error',
            `${this.ctx.authority} sent ${this.received} bytes of response body for a content-length of ${this.declared}`,
          ),
        );
        return;
      }
      body = this.takeBody();
    }
    if (!this.watching && this.req.signal.aborted) {
      // The abort fired while the signal was only polled: report it as a listener would have.
      this.finish(abortedError(this.req.signal));
      return;
    }
    this.settle();
    this.onEnd?.();
    this.resolve({ status: this.status, headers: this.headers, body });
  }

  // ---- deadline and abort (called by the sweeper and the signal)

  /** The head deadline passed: no head -> `upstream_timeout`; a small body still incomplete -> hand over a stream. */
  expire(): void {
    if (this.finished) return;
    if (this.state === WAIT_HEAD && this.uploading) {
      // Still sending the request body (a slow client): the head wait starts once the body is sent, as on
      // HTTP/1.1, so a slow upload is not the backend's timeout. The end of the upload sets a new deadline.
      this.deadline = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.state === WAIT_HEAD) {
      this.reset(new SpookyError('upstream_timeout', `no response headers from ${this.ctx.authority} within ${this.timeoutMs} ms`));
      return;
    }
    if (this.state !== COLLECT) return;
    if (this.declared < 0) this.handOver(null);
    else this.handOverStream();
  }

  /**
   * Attaches the abort listener (the sweeper calls this once the exchange ran for a while, the hand-over of a
   * body still to come calls it too). Returns false, having reset the exchange, when the signal fired already.
   */
  watch(): boolean {
    if (this.watching || this.finished) return true;
    const signal = this.req.signal;
    if (signal.aborted) {
      this.reset(abortedError(signal));
      return false;
    }
    this.watching = true;
    signal.addEventListener('abort', this);
    return true;
  }

  private unwatch(): void {
    this.watching = false;
    this.req.signal.removeEventListener('abort', this);
  }

  /** The signal fired. */
  handleEvent(): void {
    this.reset(abortedError(this.req.signal));
  }

  // ---- response body source (ReadableStream underlying source)

  /** Underlying source: keeps the controller and queues what was collected before the hand-over. */
  start(c: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = c;
    const first = this.first;
    if (first === undefined) return;
    c.enqueue(first);
    if (this.more) for (const chunk of this.more) c.enqueue(chunk);
    this.first = undefined;
    this.more = undefined;
    if ((c.desiredSize ?? 0) <= 0 && !this.paused) {
      this.paused = true;
      this.stream.pause();
    }
  }

  /** Underlying source: the consumer wants more; resume the HTTP/2 stream (which sends WINDOW_UPDATEs). */
  pull(): void {
    if (this.paused) {
      this.paused = false;
      this.stream.resume();
    }
  }

  /** Underlying source: the consumer cancelled the body. */
  cancel(): void {
    this.controller = undefined;
    this.reset(new SpookyError('client_aborted', 'response body cancelled by the consumer'));
  }

  // ---- ending

  /** Hands the head over with `body` null (the exchange goes on until the stream closes). */
  private handOver(body: null): void {
    if (!this.watch()) return;
    this.state = NO_BODY;
    this.ctx.sweeper.remove(this);
    this.first = undefined;
    this.more = undefined;
    this.resolve({ status: this.status, headers: this.headers, body });
  }

  /** Hands the head over with a streaming body that starts with whatever was collected. */
  private handOverStream(): void {
    if (!this.watch()) return;
    this.state = STREAMING;
    this.ctx.sweeper.remove(this);
    const body = new ReadableStream<Uint8Array>(this, this.ctx.bodyStrategy); // start() queues the collected chunks
    this.resolve({ status: this.status, headers: this.headers, body });
  }

  /** The collected small body as one Uint8Array. */
  private takeBody(): Uint8Array {
    const first = this.first;
    const more = this.more;
    this.first = undefined;
    this.more = undefined;
    if (first === undefined) return new Uint8Array(0);
    if (more === undefined) return first;
    const out = new Uint8Array(this.received);
    out.set(first, 0);
    let at = first.byteLength;
    for (const chunk of more) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    return out;
  }

  /** Resets the stream with RST_STREAM(CANCEL) and ends the exchange with `err`. */
  reset(err: SpookyError): void {
    if (this.finished) return;
    this.localError = err;
    resetStream(this.stream);
    this.finish(err);
  }

  /** Marks the exchange over: no deadline, no abort listener, no further request body. */
  private settle(err?: SpookyError): void {
    this.finished = true;
    this.ctx.sweeper.remove(this);
    if (this.watching) this.unwatch();
    const reader = this.reader;
    if (reader && this.uploading) {
      this.uploading = false;
      reader.cancel(err).catch(noop);
    }
  }

  /** Ends the exchange exactly once: deadline, abort listener, head promise, body stream, request body, onEnd. */
  private finish(err?: SpookyError): void {
    if (this.finished) return;
    this.settle(err);
    if (this.state === WAIT_HEAD || this.state === COLLECT) {
      this.first = undefined;
      this.more = undefined;
      const e = err ?? new SpookyError('upstream_reset', `stream to ${this.ctx.authority} closed before response headers`);
      this.onEnd?.(e);
      this.reject(e);
      return;
    }
    const c = this.controller;
    if (c) {
      try {
        if (err) c.error(err);
        else c.close();
      } catch {
        // the consumer cancelled already
      }
    }
    this.onEnd?.(err);
  }

  // ---- request body

  /** Sends the request body, pulled from the web stream only as fast as the HTTP/2 stream drains. */
  upload(source: ReadableStream<Uint8Array>): void {
    let r: BodyReader;
    try {
      r = source.getReader();
    } catch (err) {
      this.reset(new SpookyError('bad_request', `request body cannot be read: ${describe(err)}`, { cause: err }));
      return;
    }
    this.reader = r;
    this.uploading = true;
    void this.pump(r);
  }

  private async pump(r: BodyReader): Promise<void> {
    const stream = this.stream;
    for (;;) {
      let chunk: Awaited<ReturnType<BodyReader['read']>>;
      try {
        chunk = await r.read();
      } catch (err) {
        // The client's body failed (client gone, body limit hit): that ends the exchange.
        if (!this.uploading || this.finished) return;
        this.uploading = false;
        this.reset(err instanceof SpookyError ? err : new SpookyError('client_aborted', `request body failed: ${describe(err)}`, { cause: err }));
        return;
      }
      if (!this.uploading || this.finished) return;
      // A closed stream is reported by its 'close' handler.
      if (stream.destroyed || stream.closed) return;
      if (chunk.done) break;
      const value = chunk.value;
      if (value.byteLength === 0) continue;
      if (!stream.write(value)) {
        await waitDrain(stream);
        if (!this.uploading || this.finished || stream.destroyed) return;
      }
    }
    this.uploading = false;
    stream.end();
    // The response head is due `timeoutMs` after the whole body was sent (see expire()).
    if (this.timeoutMs > 0 && this.state === WAIT_HEAD) this.ctx.sweeper.setDeadline(this, performance.now() + this.timeoutMs);
  }
}

/**
 * The exchanges of one transport that wait for their head (or small body), oldest first, swept by one timer. The
 * sweep fires expired deadlines; it polls `signal.aborted` of the exchanges that have no abort listener and attaches
 * one to those older than {@link ABORT_LISTEN_AFTER_MS} (a cursor marks the oldest exchange without a listener;
 * every one before it has one). While such exchanges exist the sweep runs every {@link ABORT_POLL_MS}; otherwise
 * only at the earliest deadline. Adding and removing are O(1) and touch no timer unless the sweep must run earlier
 * than planned, or the list becomes empty (then the timer is cleared: it keeps the process alive only while
 * exchanges are pending).
 */
class Sweeper {
  private head: Exchange | undefined = undefined;
  private tail: Exchange | undefined = undefined;
  /** Oldest exchange in the list without an abort listener (every one before it has one). */
  private unwatched: Exchange | undefined = undefined;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** `performance.now()` when the armed timer fires (Infinity when none is armed). */
  private at = Number.POSITIVE_INFINITY;
  /** A lower bound of the deadlines in the list. */
  private minDeadline = Number.POSITIVE_INFINITY;
  private readonly run = () => this.sweep();

  /** Starts tracking `ex`: its deadline (`ex.timeoutMs` from now, none when not positive) and its signal. */
  add(ex: Exchange): void {
    const now = performance.now();
    ex.started = now;
    let due = now + ABORT_POLL_MS;
    if (ex.timeoutMs > 0) {
      const deadline = now + ex.timeoutMs;
      ex.deadline = deadline;
      if (deadline < this.minDeadline) this.minDeadline = deadline;
      if (deadline < due) due = deadline;
    }
    ex.linked = true;
    ex.prev = this.tail;
    if (this.tail) this.tail.next = ex;
    else this.head = ex;
    this.tail = ex;
    this.unwatched ??= ex;
    if (due < this.at) this.arm(due, now);
  }

  /** Stops tracking `ex` (no-op when it is not tracked). */
  remove(ex: Exchange): void {
    if (!ex.linked) return;
    ex.linked = false;
    const { prev, next } = ex;
    if (this.unwatched === ex) this.unwatched = next;
    if (prev) prev.next = next;
    else this.head = next;
    if (next) next.prev = prev;
    else this.tail = prev;
    ex.prev = undefined;
    ex.next = undefined;
    if (!this.head && this.timer !== undefined) {
      // Nothing left to watch: no timer may keep the process alive.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.at = Number.POSITIVE_INFINITY;
      this.minDeadline = Number.POSITIVE_INFINITY;
    }
  }

  /** Makes the sweep run at `at` (earlier than planned so far). */
  /** Gives a tracked exchange a new deadline (no-op when it is not tracked any more). */
  setDeadline(ex: Exchange, deadline: number): void {
    if (!ex.linked) return;
    ex.deadline = deadline;
    if (deadline < this.minDeadline) this.minDeadline = deadline;
    if (deadline < this.at) this.arm(deadline, performance.now());
  }

  private arm(at: number, now: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.at = at;
    this.timer = setTimeout(this.run, Math.min(Math.max(0, at - now), MAX_TIMER_MS));
  }

  private sweep(): void {
    this.timer = undefined;
    this.at = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let aborted: Exchange[] | undefined;
    // Old enough for a real listener (a prefix from the cursor, the list being oldest first).
    const listenBy = now - ABORT_LISTEN_AFTER_MS;
    let ex = this.unwatched;
    for (; ex && ex.started <= listenBy; ex = ex.next) {
      if (ex.req.signal.aborted) (aborted ??= []).push(ex);
      else ex.watch();
    }
    this.unwatched = ex;
    // Younger ones: poll.
    for (; ex; ex = ex.next) if (ex.req.signal.aborted) (aborted ??= []).push(ex);
    let expired: Exchange[] | undefined;
    if (this.minDeadline <= now) {
      let min = Number.POSITIVE_INFINITY;
      for (let e = this.head; e; e = e.next) {
        if (e.deadline <= now) (expired ??= []).push(e);
        else if (e.deadline < min) min = e.deadline;
      }
      this.minDeadline = min;
    }
    // Acting on an exchange unlinks it, so act only after the walks.
    if (aborted) for (const e of aborted) e.watch(); // resets it: the signal fired
    if (expired) for (const e of expired) e.expire();
    if (!this.head) return; // remove() has reset the state
    const next = this.unwatched ? Math.min(this.minDeadline, now + ABORT_POLL_MS) : this.minDeadline;
    if (next < Number.POSITIVE_INFINITY) this.arm(next, now);
  }
}

/** The response header list from node:http2's header object: names lower case, pseudo-headers dropped. */
function headerList(headers: IncomingHttpHeaders): [string, string][] {
  const list: [string, string][] = [];
  const names = Object.keys(headers);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    const v = headers[name];
    if (v === undefined) continue;
    const lower = name.toLowerCase();
    if (typeof v === 'string') list.push([lower, v]);
    else if (Array.isArray(v)) for (const x of v) list.push([lower, x]);
    else list.push([lower, String(v)]);
  }
  return list;
}

/** A `content-length` value as a number when it is valid and at most {@link SMALL_BODY_BYTES}; else -1. */
function smallLength(v: string | string[] | undefined): number {
  if (typeof v !== 'string' || v.length === 0 || v.length > 6) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n <= SMALL_BODY_BYTES ? n : -1;
}

/**
 * Resets `stream` with RST_STREAM(CANCEL). Not `stream.close(NGHTTP2_CANCEL)`: while the request body is still
 * being sent, Bun's `close()` first ends the writable side, so the backend would see END_STREAM (a truncated
 * body that looks complete) before the reset. `destroy()` with an `ABORT_ERR` error sends only RST_STREAM(CANCEL)
 * (checked on the wire with Bun 1.4.5); the error it re-emits on the stream is ignored by the exchange.
 */
function resetStream(stream: ClientHttp2Stream): void {
  if (stream.destroyed) return;
  const err = Object.assign(new Error('stream cancelled by the proxy'), { name: 'AbortError', code: 'ABORT_ERR' });
  stream.destroy(err);
}

/** Largest delay timers accept (a larger one would fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `setTimeout(fn, ms)`, clamped; none at all when `ms` is not a positive number (no timeout). */
function timer(ms: number, fn: () => void): ReturnType<typeof setTimeout> | undefined {
  if (!(ms > 0)) return undefined;
  return setTimeout(fn, Math.min(ms, MAX_TIMER_MS));
}

/** A request this transport cannot send at all, or undefined. */
function validate(req: UpstreamRequest): SpookyError | undefined {
  if (req.method === 'CONNECT') return new SpookyError('bad_request', 'CONNECT is not supported upstream');
  const cl = req.contentLength;
  if (cl !== undefined) {
    if (!(Number.isSafeInteger(cl) && cl >= 0)) return new SpookyError('bad_request', 'invalid content-length');
    if (req.body === null && cl !== 0) return new SpookyError('bad_request', 'content-length declared without a body');
  }
  return undefined;
}

/** Waits until `stream` can take more data (or is gone). */
function waitDrain(stream: ClientHttp2Stream): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** The error for a fired abort signal: its reason when that is a SpookyError, else `client_aborted`. */
function abortedError(signal: AbortSignal): SpookyError {
  const reason: unknown = signal.reason;
  if (reason instanceof SpookyError) return reason;
  return new SpookyError('client_aborted', 'request aborted', { cause: reason });
}

/** Races `p` against `signal`; rejects with {@link abortedError} when the signal fires first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortedError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Maps a stream that closed abnormally to a SpookyError. */
function classify(stream: ClientHttp2Stream, err: unknown, gotHead: boolean, authority: string): SpookyError {
  const rst = stream.rstCode;
  const code = errCode(err);
  const detail = err !== undefined ? describe(err) : `RST_STREAM code ${rst ?? 'unknown'}`;
  if (!gotHead) {
    // REFUSED_STREAM and streams above a GOAWAY's last stream id were not processed (RFC 9113 §8.7): safe to retry.
    if (rst === NGHTTP2_REFUSED_STREAM || (code !== undefined && UNPROCESSED_ERROR_CODES.has(code)) || stream.id === undefined) {
      return connectFailed(`${authority} did not process the request: ${detail}`, err);
    }
  }
  if (
    (code !== undefined && PROTOCOL_ERROR_CODES.has(code) && rst !== NGHTTP2_CANCEL) ||
    rst === NGHTTP2_PROTOCOL_ERROR ||
    rst === NGHTTP2_COMPRESSION_ERROR ||
    rst === NGHTTP2_FRAME_SIZE_ERROR
  ) {
    return new SpookyError('upstream_protocol_error', `HTTP/2 protocol error with ${authority}: ${detail}`, { cause: err });
  }
  return new SpookyError('upstream_reset', `${authority} reset the stream${gotHead ? ' during the response body' : ''}: ${detail}`, { cause: err });
}
