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
 * failure before that point is a retryable `upstream_connect_failed`.
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
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { isIP } from 'node:net';
import net from 'node:net';
import tls from 'node:tls';
import { SpookyError } from '../errors.ts';
import { type Http1PoolOptions, Http1Transport } from './http1.ts';
import type {
  ExchangeEnd,
  ExchangeOptions,
  Transport,
  TransportStats,
  UpstreamRequest,
  UpstreamResponse,
} from './transport.ts';

const {
  NGHTTP2_CANCEL,
  NGHTTP2_NO_ERROR,
  NGHTTP2_PROTOCOL_ERROR,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_COMPRESSION_ERROR,
  NGHTTP2_FRAME_SIZE_ERROR,
} = http2.constants;

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
    const http1Opts = opts.http1;
    this.http1Factory = opts.http1Factory ?? ((o) => new Http1Transport(o, http1Opts));
    if (!origin.tls) this.negotiated = 'h2';
  }

  /** The protocol the backend chose in the last TLS handshake (`h2` for h2c); undefined before the first one. */
  get protocol(): Negotiated | undefined {
    return this.negotiated;
  }

  /** Sends one request; see {@link Transport.request}. `opts.onEnd` runs exactly once, also when this rejects. */
  async request(req: UpstreamRequest, opts: ExchangeOptions): Promise<UpstreamResponse> {
    const onEnd = once(opts.onEnd);
    const invalid = validate(req);
    if (invalid) {
      onEnd(invalid);
      throw invalid;
    }
    // A few attempts cover the race of a session that dies between being picked and opening the stream;
    // every such failure happens before anything was sent.
    for (let attempt = 0; ; attempt++) {
      let route: Route;
      try {
        if (req.signal.aborted) throw abortedError(req.signal);
        route = this.pick() ?? (await this.acquire(req.signal, opts.connectTimeoutMs));
      } catch (err) {
        const e = err instanceof SpookyError ? err : connectFailed(describe(err), err);
        onEnd(e);
        throw e;
      }
      if (route === 'h1') {
        return (this.h1 as Transport).request(req, { ...opts, onEnd });
      }
      const stream = this.openStream(route, req);
      if (stream instanceof SpookyError) {
        if (attempt < 2) continue;
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
        s.active++;
        if (s.idleTimer) {
          clearTimeout(s.idleTimer);
          s.idleTimer = undefined;
        }
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
      let timer: ReturnType<typeof setTimeout> | undefined;
      const woken = new Promise<void>((resolve) => {
        waiter.wake = resolve;
        timer = setTimeout(resolve, left);
      });
      this.slotWaiters.push(waiter);
      try {
        await abortable(woken, signal);
      } finally {
        waiter.gone = true;
        clearTimeout(timer);
      }
    }
  }

  private usableCount(): number {
    let n = 0;
    for (const s of this.sessions) if (s.usable && !s.closed) n++;
    return n;
  }

  private wakeOne(): void {
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
      let socket: net.Socket | undefined;
      let h2: ClientHttp2Session | undefined;
      const fail = (err: SpookyError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        h2?.destroy();
        socket?.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(connectFailed(`connect to ${this.defaultAuthority} timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onSocketError = (err: unknown) =>
        fail(connectFailed(`connect to ${this.defaultAuthority} failed: ${describe(err)}`, err));

      const startSession = (sock: net.Socket) => {
        this.opened++;
        const session = http2.connect(this.authorityUrl, {
          createConnection: () => sock,
          settings: { enablePush: false, initialWindowSize: this.streamWindowBytes },
        });
        h2 = session;
        // Late errors surface through 'close' on the session and its streams; never let one go unhandled.
        session.on('error', noop);
        const onEarlyError = (err: unknown) =>
          fail(connectFailed(`HTTP/2 handshake with ${this.defaultAuthority} failed: ${describe(err)}`, err));
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
          clearTimeout(timer);
          if (this.isClosed) {
            session.destroy();
            reject(connectFailed(`transport to ${this.defaultAuthority} is closed`));
            return;
          }
          resolve(this.adopt(session, settings));
        });
      };

      if (!tlsOpts) {
        socket = net.connect({ host, port });
        socket.on('error', noop);
        socket.once('error', onSocketError);
        socket.once('connect', () => {
          if (settled) return;
          (socket as net.Socket).setNoDelay(true);
          startSession(socket as net.Socket);
        });
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
          startSession(tsock);
          return;
        }
        // The backend does not speak h2 over TLS: route to HTTP/1.1 (the probe connection is not reused).
        this.opened++;
        settled = true;
        clearTimeout(timer);
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
      const stream = s.h2.request(this.headersFor(req), { endStream: req.body === null });
      stream.once('close', () => this.release(s));
      return stream;
    } catch (err) {
      s.usable = false;
      this.release(s);
      const code = errCode(err);
      if (code === 'ERR_HTTP2_INVALID_CONNECTION_HEADERS' || code === 'ERR_HTTP2_INVALID_HEADER_VALUE' || code === 'ERR_INVALID_HTTP_TOKEN' || code === 'ERR_HTTP2_HEADER_SINGLE_VALUE') {
        // A header the HTTP/2 client rejects: not the session's fault, and a retry would fail the same way.
        if (!s.closed && !s.h2.closed && !s.h2.destroyed) s.usable = true;
        return new SpookyError('bad_request', `request cannot be sent over HTTP/2: ${describe(err)}`, { cause: err });
      }
      return connectFailed(`HTTP/2 session to ${this.defaultAuthority} cannot open streams: ${describe(err)}`, err);
    }
  }

  /** Drives one stream: request body, timers, response head and body, and the single `onEnd`. */
  private exchange(
    s: Session,
    stream: ClientHttp2Stream,
    req: UpstreamRequest,
    opts: ExchangeOptions,
    onEnd: ExchangeEnd,
  ): Promise<UpstreamResponse> {
    const { signal } = req;
    const authority = this.defaultAuthority;
    const hwm = this.bodyHighWaterMark;
    return new Promise<UpstreamResponse>((resolve, reject) => {
      let gotHead = false;
      let finished = false;
      let ended = false; // 'end' seen on the response side
      let localError: SpookyError | undefined; // set when we cancel the stream ourselves
      let streamError: unknown;
      let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
      let paused = false;
      let reader: { cancel(reason?: unknown): Promise<void> } | undefined;
      let uploading = req.body !== null;

      const headerTimer = setTimeout(() => {
        cancel(new SpookyError('upstream_timeout', `no response headers from ${authority} within ${opts.responseHeaderTimeoutMs} ms`));
      }, opts.responseHeaderTimeoutMs);

      /** Ends the exchange exactly once: timers, listeners, head promise, body stream, request body, onEnd. */
      const finish = (err?: SpookyError) => {
        if (finished) return;
        finished = true;
        clearTimeout(headerTimer);
        signal.removeEventListener('abort', onAbort);
        if (reader && uploading) {
          uploading = false;
          reader.cancel(err).catch(() => {});
        }
        if (!gotHead) {
          const e = err ?? new SpookyError('upstream_reset', `stream to ${authority} closed before response headers`);
          onEnd(e);
          reject(e);
          return;
        }
        if (controller) {
          try {
            if (err) controller.error(err);
            else controller.close();
          } catch {
            // the consumer cancelled already
          }
        }
        onEnd(err);
      };

      /** Resets the stream with CANCEL and ends the exchange with `err`. */
      const cancel = (err: SpookyError) => {
        if (finished) return;
        localError = err;
        try {
          if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
        } catch {
          stream.destroy();
        }
        finish(err);
      };

      const onAbort = () => cancel(abortedError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) queueMicrotask(onAbort); // fired while this request waited for a session

      stream.on('error', (err) => {
        streamError ??= err;
      });

      stream.once('close', () => {
        if (finished) return;
        if (localError) {
          finish(localError);
          return;
        }
        const code = stream.rstCode;
        if (gotHead && ended && (code === NGHTTP2_NO_ERROR || code === undefined) && streamError === undefined) {
          finish();
          return;
        }
        finish(classify(stream, streamError, gotHead, authority));
      });

      stream.on('headers', () => {
        // 1xx informational responses are consumed here.
      });

      stream.once('response', (headers) => {
        if (finished) return;
        gotHead = true;
        clearTimeout(headerTimer);
        const status = Number(headers[':status']);
        const list: [string, string][] = [];
        for (const name of Object.keys(headers)) {
          if (name.charCodeAt(0) === 58) continue;
          const v = headers[name];
          if (v === undefined) continue;
          if (Array.isArray(v)) for (const x of v) list.push([name.toLowerCase(), x]);
          else list.push([name.toLowerCase(), String(v)]);
        }
        // No body for HEAD, 204 and 304, and when the backend ended the stream with the headers.
        const noBody = req.method === 'HEAD' || status === 204 || status === 304 || stream.endAfterHeaders;
        stream.on('end', () => {
          ended = true;
        });
        if (noBody) {
          // Drain whatever arrives; the exchange ends when the stream closes.
          stream.resume();
          resolve({ status, headers: list, body: null });
          return;
        }
        const body = new ReadableStream<Uint8Array>(
          {
            start: (c) => {
              controller = c;
            },
            pull: () => {
              if (paused) {
                paused = false;
                stream.resume();
              }
            },
            cancel: () => {
              controller = undefined;
              cancel(new SpookyError('client_aborted', 'response body cancelled by the consumer'));
            },
          },
          { highWaterMark: hwm, size: (chunk) => chunk?.byteLength ?? 0 },
        );
        stream.on('data', (chunk: Buffer) => {
          const c = controller;
          if (!c || finished) return;
          c.enqueue(chunk);
          if ((c.desiredSize ?? 0) <= 0 && !paused) {
            paused = true;
            stream.pause();
          }
        });
        resolve({ status, headers: list, body });
      });

      // Request body: pulled from the web stream only as fast as the HTTP/2 stream drains.
      if (req.body) {
        const r = req.body.getReader();
        reader = r;
        void (async () => {
          for (;;) {
            let chunk: Awaited<ReturnType<typeof r.read>>;
            try {
              chunk = await r.read();
            } catch (err) {
              // The client's body failed (client gone, body limit hit): that ends the exchange.
              if (!uploading || finished) return;
              uploading = false;
              cancel(err instanceof SpookyError ? err : new SpookyError('client_aborted', `request body failed: ${describe(err)}`, { cause: err }));
              return;
            }
            if (!uploading || finished) return;
            // A closed stream is reported by its 'close' handler.
            if (stream.destroyed || stream.closed) return;
            if (chunk.done) break;
            const value = chunk.value;
            if (value.byteLength === 0) continue;
            if (!stream.write(value)) {
              await waitDrain(stream);
              if (!uploading || finished || stream.destroyed) return;
            }
          }
          uploading = false;
          stream.end();
        })();
      }
    });
  }
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
