/**
 * HTTP/2 upstream client, cleartext (h2c, prior knowledge) or over TLS (h2 via ALPN) with a fallback to HTTP/1.1
 * for HTTPS backends that do not offer h2. The protocol itself is our own lean client in `./h2/` (framing,
 * HPACK, sessions with flow control); this module maps requests onto its streams.
 *
 * Connections. The transport keeps one session per backend and multiplexes every request over it. A further
 * session is opened only while every usable session is at the peer's `SETTINGS_MAX_CONCURRENT_STREAMS`
 * (up to `maxSessions`; beyond that requests wait for a free stream slot). A session that received GOAWAY, failed
 * or closed never gets a new stream; the next request opens a fresh one (transparent reconnect). Sessions idle
 * (no streams) for `idleTimeoutMs` are closed gracefully.
 *
 * The transport opens the socket itself: h2c over a `Bun.connect` TCP socket, h2 over a `node:tls` socket (see
 * `./h2/channel.ts` for why TLS is not `Bun.connect`). One connect timeout covers TCP, TLS and the peer's first
 * SETTINGS frame, and every failure before that point is a retryable `upstream_connect_failed`. The session
 * coalesces its writes, so the frames of every stream opened in one event-loop turn leave in one write.
 *
 * HTTP/1.1 fallback (HTTPS only). The TLS handshake offers ALPN `h2, http/1.1`. When the backend picks anything but
 * `h2` (including no ALPN at all), the probe socket is closed and requests go to an {@link Http1Transport} for the
 * same origin and TLS policy. The decision is remembered per transport (that is, per backend) for
 * `protocolRecheckMs`; after that, the next request runs one new probe handshake, so a backend that gains (or
 * loses) h2 is noticed. While h2 is in use, every reconnect is itself a probe. A backend that declines a stream
 * with HTTP_1_1_REQUIRED (RST_STREAM before the head, or GOAWAY) is switched to HTTP/1.1 the same way; the
 * declined request is sent again over HTTP/1.1 when it has no body. Until a request started after the last such
 * refusal is answered over h2, requests with a body stay on HTTP/1.1 even once the decision is due for a re-check
 * (a second refusal would find their body partly read). h2c has nothing to fall back to: `upstream_reset`.
 *
 * Streams. A request whose stream the backend refused (REFUSED_STREAM), that a GOAWAY excluded, or that was never
 * written before the connection died, was not processed (RFC 9113 §8.7): without a body it is sent once more (on
 * another session when this one is going away), and if that fails too, or when it has a body, it fails with a
 * retryable `upstream_connect_failed`, which the proxy may retry on another backend. A response
 * body is complete when the backend ends its stream; a body whose length differs from its `content-length`, a
 * `:status` outside 200..599 (after any 1xx, which are consumed), or any protocol violation is an
 * `upstream_protocol_error`. A response that completes while the request body is still being sent ends the upload
 * (RST_STREAM(CANCEL)). Flow control follows consumption: a paused body stops crediting its stream, so the backend
 * stops after one stream window.
 *
 * Small bodies. When the response declares a `content-length` of at most {@link SMALL_BODY_BYTES} (or ends the
 * stream with its headers), the exchange collects the DATA frames and hands the response over only once the stream
 * ended cleanly: `body` is then one `Uint8Array` (or null), and `onEnd` has already run. The response-header
 * timeout keeps covering this wait. A backend that sends the head in time but not the rest of the small body by
 * then does not fail the request: the response is handed over with a streaming body that starts with the bytes
 * received so far (from then on it behaves like any streamed body). Larger or unknown lengths are streamed with
 * backpressure.
 *
 * Per-request cost. The hot path allocates one exchange and one stream object per request and no closures: the
 * exchange is the stream's event handler, the body stream's source and the abort listener. Timers are not per
 * request either: every exchange waiting for its response sits in one list per transport, swept by one timer, which
 * fires expired deadlines and polls `signal.aborted` every {@link ABORT_POLL_MS} for exchanges younger than
 * {@link ABORT_LISTEN_AFTER_MS}; older ones (and every response handed over with a body still to come) get a real
 * abort listener. A response is handed over only after checking the signal, so a short exchange never touches the
 * signal's listener list, and an abort is noticed within the poll interval.
 */

import { isIP } from 'node:net';
import tls from 'node:tls';
import { SpookyError } from '../errors.ts';
import { MAX_TIMER_MS } from '../lib/clock.ts';
import { TCHAR } from '../lib/http-syntax.ts';
import { type ByteChannel, connectTcp, type TcpChannel, type TlsChannel, tlsChannel } from './h2/channel.ts';
import { ErrorCode } from './h2/frames.ts';
import { requestFields } from './h2/request-head.ts';
import { H2Session, type H2Stream, type SessionListener, type StreamFailure, type StreamHandler } from './h2/session.ts';
import { type Http1PoolOptions, Http1Transport } from './http1.ts';
import {
  type ExchangeEnd,
  type ExchangeOptions,
  SMALL_BODY_BYTES,
  type Transport,
  type TransportStats,
  type UpstreamRequest,
  type UpstreamResponse,
  type WebSocketDial,
  type WebSocketRequest,
} from './transport.ts';
import { dialWebSocket, holdWhileOpen } from './websocket-dial.ts';

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
  /** Client certificate (chain) presented to the backend, PEM, with {@link key}. Undefined: none. */
  cert?: string;
  /** Private key of {@link cert}, PEM. */
  key?: string;
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
  /** Most WebSocket connections (each an HTTP/1.1 connection of its own) open at once. Default: no limit. */
  maxWebSockets?: number;
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

/** What a {@link Session} reports to its transport. */
interface SessionOwner {
  /** Gives back a stream slot. */
  release(s: Session): void;
  /** Wakes every request waiting for a slot (limits changed, a session went away). */
  wakeAll(): void;
  /** The session received GOAWAY. */
  goaway(s: Session): void;
  /** The session's connection is gone. */
  closed(s: Session): void;
}

/** One HTTP/2 connection and the transport's bookkeeping of it. */
class Session implements SessionListener {
  /** Streams open on this session now, plus slots reserved by `pick()`. */
  active = 0;
  /** False once GOAWAY, an error or close was seen: no new streams. */
  usable = true;
  /** Set once the connection is gone. */
  closed = false;
  /** Idle timer (armed while `active === 0`). */
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** `performance.now()` when the session last became idle. */
  idleSince = 0;
  /** The protocol session. */
  readonly h2: H2Session;
  /** Set while connecting: told once whether the handshake (first SETTINGS) succeeded. */
  onHandshake: ((failure?: StreamFailure) => void) | undefined = undefined;
  /** Set once the transport adopted it. */
  owner: SessionOwner | undefined = undefined;

  constructor(channel: ByteChannel, streamWindowBytes: number) {
    this.h2 = new H2Session(channel, this, { streamWindowBytes });
  }

  /** Peer's SETTINGS_MAX_CONCURRENT_STREAMS. */
  get maxStreams(): number {
    return this.h2.peerMaxConcurrentStreams;
  }

  /** True when a new stream may go to this session now. */
  hasCapacity(): boolean {
    return this.usable && this.active < this.h2.peerMaxConcurrentStreams && this.h2.canOpen();
  }

  onReady(): void {
    const cb = this.onHandshake;
    this.onHandshake = undefined;
    cb?.();
  }

  onSettings(): void {
    this.owner?.wakeAll();
  }

  onStreamClosed(): void {
    this.owner?.release(this);
  }

  onGoaway(): void {
    this.usable = false;
    this.owner?.goaway(this);
  }

  onClosed(_session: H2Session, failure: StreamFailure | undefined): void {
    this.usable = false;
    this.closed = true;
    const cb = this.onHandshake;
    if (cb) {
      this.onHandshake = undefined;
      cb(failure ?? { kind: 'closed', code: ErrorCode.NO_ERROR, message: 'connection closed during the HTTP/2 handshake' });
      return;
    }
    this.owner?.closed(this);
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

/** `opts` with the response-header wait cut to what is left until `deadline` (a `performance.now()`; Infinity: as is). */
function within(opts: ExchangeOptions, deadline: number): ExchangeOptions {
  if (!Number.isFinite(deadline)) return opts;
  return { ...opts, responseHeaderTimeoutMs: Math.max(1, Math.ceil(deadline - performance.now())) };
}

/** A retryable connect failure: nothing reached the backend. */
function connectFailed(message: string, cause?: unknown): SpookyError {
  return new SpookyError('upstream_connect_failed', message, { retryable: true, cause });
}

/**
 * Header fields of the request being opened (checked in prepareStream, encoded by the session in exchange, both
 * synchronously, so one list serves all).
 */
const headFields: string[] = [];

/**
 * HTTP/2 {@link Transport} for one backend: h2c when `origin.tls` is undefined, else h2 over TLS with an
 * automatic HTTP/1.1 fallback (see the module comment for the connection and fallback policy).
 */
export class Http2Transport implements Transport {
  private readonly origin: UpstreamOrigin;
  private readonly defaultAuthority: string;
  private readonly scheme: 'http' | 'https';
  private readonly maxSessions: number;
  private readonly maxWebSockets: number;
  /** WebSocket connections open now. */
  private webSockets = 0;
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
  /** Request header blocks and their bytes of sessions already closed. */
  private closedHeaderBlocks = 0;
  private closedHeaderBytes = 0;
  /** What every exchange of this transport shares. */
  private readonly ctx: ExchangeContext;
  /** What every session of this transport reports to. */
  private readonly owner: SessionOwner;

  /**
   * @param origin backend host, port and TLS policy (cleartext h2c when `tls` is undefined)
   * @param opts tuning; see {@link Http2TransportOptions}
   */
  constructor(origin: UpstreamOrigin, opts: Http2TransportOptions = {}) {
    this.origin = origin;
    this.scheme = origin.tls ? 'https' : 'http';
    const hostPart = isIP(origin.host) === 6 ? `[${origin.host}]` : origin.host;
    this.defaultAuthority = `${hostPart}:${origin.port}`;
    this.maxSessions = Math.max(1, opts.maxSessions ?? 8);
    this.maxWebSockets = opts.maxWebSockets ?? Number.POSITIVE_INFINITY;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.streamWindowBytes = opts.streamWindowBytes ?? 256 * 1024;
    this.bodyHighWaterMark = opts.bodyHighWaterMark ?? 64 * 1024;
    this.protocolRecheckMs = opts.protocolRecheckMs ?? 60_000;
    this.ctx = {
      authority: this.defaultAuthority,
      bodyStrategy: { highWaterMark: this.bodyHighWaterMark, size: chunkBytes },
      sweeper: new Sweeper(),
      retryUnprocessed: (ex) => this.retryUnprocessed(ex),
      requireHttp1: () => this.requireHttp1(),
      http1Required: false,
      http1Switches: 0,
      h2Answered: () => this.h2Answered(),
    };
    this.owner = {
      release: (s) => this.release(s),
      wakeAll: () => this.wakeAll(),
      goaway: (s) => {
        if (s.h2.goawayCode === ErrorCode.HTTP_1_1_REQUIRED) this.requireHttp1();
        if (s.active === 0) this.closeSession(s);
        this.wakeAll();
      },
      closed: (s) => {
        if (s.idleTimer) clearTimeout(s.idleTimer);
        const i = this.sessions.indexOf(s);
        if (i >= 0) {
          this.sessions.splice(i, 1);
          const hb = s.h2.headerBlockStats;
          this.closedHeaderBlocks += hb.blocks;
          this.closedHeaderBytes += hb.bytes;
        }
        this.wakeAll();
      },
    };
    const http1Opts = opts.http1;
    this.http1Factory = opts.http1Factory ?? ((o) => new Http1Transport(o, http1Opts));
    if (!origin.tls) this.negotiated = 'h2';
  }

  /** The protocol the backend chose in the last TLS handshake (`h2` for h2c); undefined before the first one. */
  get protocol(): Negotiated | undefined {
    return this.negotiated;
  }

  /**
   * Opens a WebSocket to this backend (see {@link Transport.openWebSocket}): an HTTP/1.1 handshake on a connection
   * of its own, at most `maxWebSockets` of them open at once.
   */
  openWebSocket(req: WebSocketRequest): Promise<WebSocketDial> {
    if (this.webSockets >= this.maxWebSockets)
      // Busy, not broken: `queue_full` is not charged to the backend's health (another backend is tried).
      return Promise.reject(new SpookyError('queue_full', `max_connections (${this.maxWebSockets}) WebSockets open to ${this.defaultAuthority}`));
    this.webSockets++;
    return holdWhileOpen(dialWebSocket(this.origin, req), () => {
      this.webSockets--;
    });
  }

  /** Sends one request; see {@link Transport.request}. `opts.onEnd` runs exactly once, also when this rejects. */
  request(req: UpstreamRequest, opts: ExchangeOptions): Promise<UpstreamResponse> {
    const invalid = validate(req);
    if (invalid) {
      opts.onEnd?.(invalid);
      return Promise.reject(invalid);
    }
    // Hot path: a session with a free stream slot right now. No async function, no extra promise.
    const route = req.signal.aborted ? undefined : this.pickFor(req);
    if (route instanceof Session) {
      const refused = this.prepareStream(route, req);
      if (refused === undefined) return this.exchange(route, req, opts, opts.onEnd);
      if (refused.code !== 'upstream_connect_failed') {
        opts.onEnd?.(refused);
        return Promise.reject(refused);
      }
      return this.requestSlow(req, opts, 1);
    }
    return this.requestSlow(req, opts, 0);
  }

  /**
   * A body-less request whose stream the backend refused (REFUSED_STREAM), or that a GOAWAY excluded, was not
   * processed (RFC 9113 section 8.7), and one declined with HTTP_1_1_REQUIRED was not either: it is sent once
   * more (over HTTP/1.1 after HTTP_1_1_REQUIRED), on another session when this one is going away,
   * so a backend that closes connections gracefully (reloads, a request limit per connection) causes no
   * error. The exchange's promise and `onEnd` are handed to the second try. A request with a body is not
   * retried here (its body stream may be partly read); the proxy's own retry policy decides about it.
   */
  private retryUnprocessed(ex: Exchange): void {
    // The second try keeps the first one's response-header deadline, so a refusal that came late does not
    // double the wait; one that came after the deadline ends the request now.
    if (ex.deadline <= performance.now()) {
      const e = headerTimeout(this.defaultAuthority, ex.opts.responseHeaderTimeoutMs);
      ex.opts.onEnd?.(e); // the first try never called opts.onEnd
      ex.reject(e);
      return;
    }
    const h1 = this.h1;
    if (ex.declinedForHttp1 && h1 !== undefined) {
      // Declined with HTTP_1_1_REQUIRED: straight to HTTP/1.1, whatever the re-check period says.
      h1.request(ex.req, within(ex.opts, ex.deadline)).then(ex.resolve, ex.reject);
      return;
    }
    this.requestSlow(ex.req, ex.opts, 0, ex.deadline).then(ex.resolve, ex.reject); // the first try never called opts.onEnd
  }

  /**
   * {@link request} when no session can take the stream at once: waits, connects, retries, or falls back.
   * `retryDeadline` is set for the second try of an unprocessed request: the `performance.now()` by which its
   * response head must have come (Infinity without a header timeout).
   */
  private async requestSlow(req: UpstreamRequest, opts: ExchangeOptions, firstAttempt: number, retryDeadline?: number): Promise<UpstreamResponse> {
    const onEnd = once(opts.onEnd);
    // A few attempts cover the race of a session that dies between being picked and opening the stream;
    // every such failure happens before anything was sent.
    // A second try must not outlive the first one's deadline, not even while it waits for a connection.
    const deadline = retryDeadline !== undefined && Number.isFinite(retryDeadline) ? retryDeadline : undefined;
    const timedOut = (): boolean => deadline !== undefined && deadline <= performance.now();
    const late = (): SpookyError => headerTimeout(this.defaultAuthority, opts.responseHeaderTimeoutMs);
    for (let attempt = firstAttempt; ; attempt++) {
      let route: Route;
      try {
        if (req.signal.aborted) throw abortedError(req.signal);
        if (timedOut()) throw late();
        route = this.pickFor(req) ?? (await this.acquireBy(req.signal, opts.connectTimeoutMs, deadline, late));
        if (req.signal.aborted || timedOut()) {
          // Fired (or the deadline passed) while waiting: nothing was sent yet; give the reserved slot back.
          if (route instanceof Session) this.release(route);
          throw req.signal.aborted ? abortedError(req.signal) : late();
        }
      } catch (err) {
        let e = err instanceof SpookyError ? err : connectFailed(describe(err), err);
        if (e.code === 'upstream_connect_failed' && timedOut()) e = late();
        onEnd(e);
        throw e;
      }
      if (route === 'h1') {
        const h1 = this.h1;
        if (h1) {
          return h1.request(req, within({ ...opts, onEnd }, deadline ?? Number.POSITIVE_INFINITY));
        }
        if (attempt < 2) continue; // the fallback was retired meanwhile (the backend gained h2)
        const e = connectFailed(`no connection to ${this.defaultAuthority}`);
        onEnd(e);
        throw e;
      }
      const refused = this.prepareStream(route, req);
      if (refused !== undefined) {
        if (refused.code === 'upstream_connect_failed' && attempt < 2) continue;
        onEnd(refused);
        throw refused;
      }
      return this.exchange(route, req, opts, onEnd, retryDeadline);
    }
  }

  /**
   * {@link acquire} for a request whose wait ends at `deadline` (when set) with the error `late()`: only this
   * request stops waiting then; the connection it may have started (and others may wait for) keeps the
   * configured connect timeout.
   */
  private async acquireBy(signal: AbortSignal, connectTimeoutMs: number, deadline: number | undefined, late: () => SpookyError): Promise<Route> {
    if (deadline === undefined) return this.acquire(signal, connectTimeoutMs);
    const bound = new AbortController();
    const follow = () => bound.abort(signal.reason);
    signal.addEventListener('abort', follow, { once: true });
    const timer = setTimeout(() => bound.abort(late()), Math.max(0, deadline - performance.now()));
    try {
      return await this.acquire(bound.signal, connectTimeoutMs);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', follow);
    }
  }

  /** Counters: sessions (and HTTP/1.1 fallback connections) opened, open now, idle now. */
  stats(): TransportStats {
    let open = 0;
    let idle = 0;
    let blocks = this.closedHeaderBlocks;
    let bytes = this.closedHeaderBytes;
    for (const s of this.sessions) {
      open++;
      if (s.active === 0) idle++;
      const hb = s.h2.headerBlockStats;
      blocks += hb.blocks;
      bytes += hb.bytes;
    }
    const st: TransportStats = {
      connectionsOpened: this.opened,
      connectionsOpen: open,
      connectionsIdle: idle,
      requestHeaderBlocks: blocks,
      requestHeaderBytes: bytes,
    };
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
   * overbook it; {@link prepareStream} and {@link exchange} take the reservation over or give it back.
   */
  private pick(): Route | undefined {
    if (this.isClosed) return undefined;
    // While an HTTP/1.1 decision is fresh, or a re-probe is already running, requests take the fallback.
    if (this.negotiated === 'http/1.1' && this.h1 && (this.connecting || performance.now() < this.h1Until)) return 'h1';
    const sessions = this.sessions;
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i] as Session;
      if (s.hasCapacity()) {
        // The idle timer stays armed: it checks `active` when it fires (no timer calls per request).
        s.active++;
        return s;
      }
    }
    return undefined;
  }

  /**
   * {@link pick} for `req`: while the backend asked for HTTP/1.1 (HTTP_1_1_REQUIRED), a request with a body
   * always takes the HTTP/1.1 pool, since a refusal would find its body partly read and could not be sent again;
   * only body-less requests re-probe h2 once the decision is {@link Http2TransportOptions.protocolRecheckMs} old.
   */
  private pickFor(req: UpstreamRequest): Route | undefined {
    if (this.ctx.http1Required && req.body !== null && this.h1 && !this.isClosed) return 'h1';
    return this.pick();
  }

  /**
   * The backend answered with HTTP_1_1_REQUIRED (RST_STREAM before the response head, or GOAWAY). Over TLS, requests
   * go to the HTTP/1.1 pool from now on, as after an ALPN answer without h2 (re-checked after `protocolRecheckMs`),
   * and every HTTP/2 session stops taking streams (its streams in flight finish). Returns `h2c` for h2c, where
   * there is no HTTP/1.1 to fall back to, and `closed` when this transport was closed (a reload replaced it).
   */
  private requireHttp1(): Http1Switch {
    if (!this.origin.tls) return 'h2c';
    if (this.isClosed) return 'closed';
    const ctx = this.ctx;
    ctx.http1Switches++;
    ctx.http1Required = true;
    this.negotiated = 'http/1.1';
    this.h1Until = performance.now() + this.protocolRecheckMs;
    this.h1 ??= this.http1Factory(this.origin);
    for (const s of this.sessions) {
      if (!s.usable) continue;
      s.usable = false;
      if (s.active === 0) this.closeSession(s);
    }
    this.wakeAll();
    return 'switched';
  }

  /** A request started after the last HTTP_1_1_REQUIRED got its response over h2: the backend serves h2 again. */
  private h2Answered(): void {
    this.ctx.http1Required = false;
    this.retireHttp1();
  }

  /** Retires the HTTP/1.1 fallback pool (its requests in flight finish); its connections stay counted as opened. */
  private retireHttp1(): void {
    const old = this.h1;
    if (old === undefined) return;
    this.h1 = undefined;
    this.opened += old.stats().connectionsOpened;
    old.close();
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
      let tcp: TcpChannel | undefined;
      let tsock: tls.TLSSocket | undefined;
      let session: Session | undefined;
      const fail = (err: SpookyError) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        session?.h2.destroy();
        tcp?.destroy();
        tsock?.destroy();
        reject(err);
      };
      const connectTimer = timer(timeoutMs, () => fail(connectFailed(`connect to ${this.defaultAuthority} timed out after ${timeoutMs} ms`)));
      const onSocketError = (err: unknown) => fail(connectFailed(`connect to ${this.defaultAuthority} failed: ${describe(err)}`, err));

      const startSession = (channel: TcpChannel | TlsChannel) => {
        this.opened++;
        const s = new Session(channel, this.streamWindowBytes);
        session = s;
        s.onHandshake = (failure) => {
          if (failure) {
            fail(connectFailed(`HTTP/2 handshake with ${this.defaultAuthority} failed: ${failure.message}`));
            return;
          }
          tsock?.off('error', onSocketError);
          if (settled) {
            s.h2.destroy();
            return;
          }
          settled = true;
          clearTimeout(connectTimer);
          if (this.isClosed) {
            s.h2.destroy();
            reject(connectFailed(`transport to ${this.defaultAuthority} is closed`));
            return;
          }
          resolve(this.adopt(s));
        };
        // The preface goes out before any received byte is looked at.
        s.h2.start();
        channel.attach(s.h2);
      };

      if (!tlsOpts) {
        connectTcp(host, port).then((channel) => {
          if (settled) {
            channel.destroy();
            return;
          }
          tcp = channel;
          startSession(channel);
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
      if (tlsOpts.cert !== undefined && tlsOpts.key !== undefined) {
        options.cert = tlsOpts.cert;
        options.key = tlsOpts.key;
      }
      const sock = tls.connect(options);
      tsock = sock;
      sock.on('error', noop);
      sock.once('error', onSocketError);
      sock.once('secureConnect', () => {
        if (settled) return;
        if (tlsOpts.rejectUnauthorized && !sock.authorized) {
          onSocketError(sock.authorizationError ?? new Error('certificate not authorized'));
          return;
        }
        sock.setNoDelay(true);
        if (sock.alpnProtocol === 'h2') {
          this.negotiated = 'h2';
          // The backend gained h2: retire the fallback pool (its in-flight requests finish). After an
          // HTTP_1_1_REQUIRED, ALPN says h2 all along; the pool stays until a request is answered over h2.
          if (!this.ctx.http1Required) this.retireHttp1();
          startSession(tlsChannel(sock));
          return;
        }
        // The backend does not speak h2 over TLS: route to HTTP/1.1 (the probe connection is not reused).
        this.opened++;
        settled = true;
        clearTimeout(connectTimer);
        sock.destroy();
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

  /** Registers a freshly handshaken session. */
  private adopt(s: Session): Session {
    s.owner = this.owner;
    this.sessions.push(s);
    this.markIdle(s);
    return s;
  }

  private closeSession(s: Session): void {
    if (s.idleTimer) {
      clearTimeout(s.idleTimer);
      s.idleTimer = undefined;
    }
    s.h2.close(); // graceful: GOAWAY, in-flight streams finish, then the socket closes
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

  /** Gives back a stream slot of `s` (stream closed, or a reservation that was not used). */
  private release(s: Session): void {
    s.active--;
    if (s.active === 0) {
      if (!s.usable) this.closeSession(s);
      else this.markIdle(s);
    }
    this.wakeOne();
  }

  /**
   * Checks the request and collects its header fields into {@link headFields} for a stream on `s` (which has a slot reserved by
   * {@link pick}). On failure gives the slot back and returns the error: `bad_request` for a request HTTP/2
   * cannot carry (the session is fine), a retryable `upstream_connect_failed` when the session cannot open
   * streams any more.
   */
  private prepareStream(s: Session, req: UpstreamRequest): SpookyError | undefined {
    const bad = requestFields(req, this.scheme, this.defaultAuthority, headFields);
    if (bad !== undefined) {
      this.release(s);
      return new SpookyError('bad_request', `request cannot be sent over HTTP/2: ${bad}`);
    }
    if (!s.h2.canOpen()) {
      s.usable = false;
      this.release(s);
      return connectFailed(`HTTP/2 session to ${this.defaultAuthority} cannot open streams`);
    }
    return undefined;
  }

  /**
   * Opens the stream prepared by {@link prepareStream} and drives it: request body, deadline, response head and
   * body, and the single `onEnd` (see {@link Exchange}).
   */
  private exchange(
    s: Session,
    req: UpstreamRequest,
    opts: ExchangeOptions,
    onEnd: ExchangeEnd | undefined,
    retryDeadline?: number,
  ): Promise<UpstreamResponse> {
    const ex = new Exchange(this.ctx, req, onEnd, opts, retryDeadline !== undefined);
    if (retryDeadline !== undefined) ex.headDeadline = retryDeadline;
    captureTarget = ex;
    const head = new Promise<UpstreamResponse>(captureResolvers);
    captureTarget = undefined;
    // The slot reserved by pick() now belongs to the stream; the session gives it back when the stream closes.
    // The session HPACK-encodes the fields as it writes the HEADERS frame (encoder state follows the byte stream).
    ex.stream = s.h2.openRequest(headFields, req.body === null, ex);
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
  /** Sends the request of an exchange the backend did not process once more, on a usable session. */
  readonly retryUnprocessed: (ex: Exchange) => void;
  /** The backend answered a stream with HTTP_1_1_REQUIRED: over TLS the transport switches to HTTP/1.1. */
  readonly requireHttp1: () => Http1Switch;
  /** Set while requests go over HTTP/1.1 because the backend asked for it (see {@link Http2Transport}). */
  http1Required: boolean;
  /** How many times the backend asked for HTTP/1.1; an exchange notes the count it started under. */
  http1Switches: number;
  /** An exchange started after the last switch got a response over h2: the backend serves h2 again. */
  readonly h2Answered: () => void;
}

/** What {@link ExchangeContext.requireHttp1} did: switched to HTTP/1.1, or could not (h2c, or the transport is closed). */
type Http1Switch = 'switched' | 'h2c' | 'closed';

/**
 * Milliseconds a body-less answer (HEAD, 204, 304) may leave its stream open after the head before the stream is
 * reset and the exchange ends (a backend normally ends it with the head or right after).
 */
export const NO_BODY_DRAIN_MS = 1000;

/** Exchange states (see {@link Exchange.state}). */
const WAIT_HEAD = 0;
/** Head received; collecting a small body before handing the response over. */
const COLLECT = 1;
/** Head handed over with a streaming body. */
const STREAMING = 2;
/** Head handed over without a body; the stream is drained until it ends. */
const NO_BODY = 3;

/** Reader of a request body stream (the part the upload uses). */
interface BodyReader {
  read(): Promise<{ done: true; value?: Uint8Array } | { done: false; value: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

/** Placeholder header list of an exchange before its head arrived (never mutated). */
const NO_HEADERS: [string, string][] = [];

/** The handler of a stream whose exchange is over: every event is ignored, as the exchange would (see `settle`). */
const FINISHED: StreamHandler = { onHeaders: noop, onData: noop, onReset: noop, onWritable: noop };

/** Exchange whose promise is being created (read by {@link captureResolvers}); avoids a closure per request. */
let captureTarget: Exchange | undefined;

/** Promise executor that stores the resolvers on {@link captureTarget}. */
function captureResolvers(resolve: (r: UpstreamResponse) => void, reject: (e: unknown) => void): void {
  const ex = captureTarget as Exchange;
  ex.resolve = resolve;
  ex.reject = reject;
}

/** Promise executor that stores the resolver on {@link captureTarget} as its upload's wake-up. */
function captureWritable(resolve: () => void): void {
  (captureTarget as Exchange).writable = resolve;
}

/**
 * One request/response on one HTTP/2 stream: request body upload, the head deadline, the response head, the body
 * (collected when small, else streamed with backpressure), cancellation and the single `onEnd`. It is also the
 * stream's event handler, the response body's underlying source (`start`/`pull`/`cancel`), the abort listener
 * (`handleEvent`), and a node of the {@link Sweeper} list, so a request allocates no closures.
 */
class Exchange implements EventListenerObject, StreamHandler {
  /** Sweeper list links. */
  prev: Exchange | undefined = undefined;
  next: Exchange | undefined = undefined;
  /** In the sweeper list. */
  linked = false;
  /** `performance.now()` when the sweeper started tracking it. */
  started = 0;
  /** `performance.now()` by which the head (and a small body) must have arrived. */
  deadline = Number.POSITIVE_INFINITY;
  /** A deadline the head must meet whatever the timeout says: the first try's, for a second try. */
  headDeadline = Number.POSITIVE_INFINITY;
  /** The abort listener is attached. */
  watching = false;
  /** {@link WAIT_HEAD}, {@link COLLECT}, {@link STREAMING} or {@link NO_BODY}. */
  state = WAIT_HEAD;
  finished = false;
  /** The HTTP/2 stream (set right after construction). */
  stream!: H2Stream;
  status = 0;
  headers: [string, string][] = NO_HEADERS;
  /** Declared `content-length` (COLLECT: -1 when the stream ended with the head; STREAMING: -1 when unknown). */
  declared = 0;
  /** Body bytes received so far. */
  received = 0;
  /** COLLECT: the first chunk, and any further ones. */
  first: Uint8Array | undefined = undefined;
  more: Uint8Array[] | undefined = undefined;
  controller: ReadableStreamDefaultController<Uint8Array> | undefined = undefined;
  paused = false;
  /** Reader of the request body while it is being sent. */
  reader: BodyReader | undefined = undefined;
  uploading = false;
  /** Wakes the upload waiting for the stream to take more data. */
  writable: (() => void) | undefined = undefined;
  resolve: (r: UpstreamResponse) => void = noop;
  reject: (e: unknown) => void = noop;
  /** {@link ExchangeContext.http1Switches} when this exchange started. */
  readonly switches: number;
  /** The backend declined this request with HTTP_1_1_REQUIRED (a second try goes over HTTP/1.1). */
  declinedForHttp1 = false;

  constructor(
    readonly ctx: ExchangeContext,
    readonly req: UpstreamRequest,
    readonly onEnd: ExchangeEnd | undefined,
    readonly opts: ExchangeOptions,
    /** This is already the second try of a request the backend did not process (see `retryUnprocessed`). */
    readonly retried: boolean,
  ) {
    this.switches = ctx.http1Switches;
  }

  // ---- stream events

  onHeaders(fields: string[], endStream: boolean): void {
    if (this.finished) return;
    if (this.state !== WAIT_HEAD) {
      // Trailers: not forwarded; they end the body. A pseudo-header in them makes the response malformed (RFC
      // 9113 section 8.1).
      for (let i = 0; i < fields.length; i += 2) {
        if ((fields[i] as string).charCodeAt(0) === 58 /* ':' */) {
          this.protocolError(`${this.ctx.authority} sent a pseudo-header in the trailers`);
          return;
        }
      }
      if (endStream) this.complete();
      else this.protocolError('HEADERS in the middle of the response body');
      return;
    }
    let statusText: string | undefined;
    let length = -1;
    const list: [string, string][] = [];
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      const value = fields[i + 1] as string;
      if (name.charCodeAt(0) === 58 /* ':' */) {
        if (name !== ':status' || statusText !== undefined || list.length > 0) {
          this.protocolError(`malformed response header block (pseudo-header ${name})`);
          return;
        }
        statusText = value;
        continue;
      }
      const problem = responseFieldProblem(name, value);
      if (problem !== undefined) {
        this.protocolError(`${this.ctx.authority} sent a malformed response: ${problem}`);
        return;
      }
      if (name === 'content-length') {
        // Digits only, and repeats must agree (RFC 9110 section 8.6), as on HTTP/1.1.
        const n = parseLength(value);
        if (n < 0 || (length >= 0 && n !== length)) {
          this.protocolError(`${this.ctx.authority} sent an invalid content-length ${JSON.stringify(value)}`);
          return;
        }
        length = n;
      }
      list.push([name, value]);
    }
    const status = statusCode(statusText);
    if (status >= 100 && status <= 199 && status !== 101) {
      // 1xx informational responses are consumed; the final response follows.
      if (endStream) this.protocolError(`${this.ctx.authority} ended the stream with a ${status} response`);
      return;
    }
    if (!(status >= 200 && status <= 599)) {
      // A client cannot be sent a final status outside 200..599 (RFC 9110 section 15): the backend is broken.
      this.protocolError(`${this.ctx.authority} sent :status ${String(statusText)}`);
      return;
    }
    const bodyless = this.req.method === 'HEAD' || status === 204 || status === 304;
    if (endStream && length > 0 && !bodyless) {
      // The stream ends with the head, so the declared body can never come (RFC 9113 section 8.1.1).
      this.protocolError(`${this.ctx.authority} ended the stream with its head despite a content-length of ${length}`);
      return;
    }
    this.status = status;
    this.headers = list;
    // A request started since the backend last asked for HTTP/1.1 was answered over h2: it serves h2 again.
    if (this.ctx.http1Required && this.switches === this.ctx.http1Switches) this.ctx.h2Answered();
    if (endStream) {
      // Nothing follows the head: hand it over (body null) now that the stream ended.
      this.state = COLLECT;
      this.declared = -1;
      this.complete();
      return;
    }
    if (bodyless) {
      // No body by definition; drain whatever arrives, the exchange ends when the stream does.
      this.handOver(null);
      return;
    }
    if (length >= 0 && length <= SMALL_BODY_BYTES) {
      this.state = COLLECT;
      this.declared = length;
      return;
    }
    this.declared = length;
    this.handOverStream();
  }

  onData(chunk: Uint8Array, endStream: boolean): void {
    if (this.finished) return;
    const n = chunk.byteLength;
    if (this.state === WAIT_HEAD) {
      this.protocolError(`${this.ctx.authority} sent DATA before the response headers`);
      return;
    }
    if (n > 0) {
      const received = this.received + n;
      if (this.state !== NO_BODY && this.declared >= 0 && received > this.declared) {
        this.protocolError(`${this.ctx.authority} sent more response body than its content-length (${this.declared})`);
        return;
      }
      this.received = received;
      if (this.state === COLLECT) {
        if (this.first === undefined) this.first = chunk;
        else (this.more ??= []).push(chunk);
      } else if (this.state === STREAMING) {
        const c = this.controller;
        if (c) {
          c.enqueue(chunk);
          if ((c.desiredSize ?? 0) <= 0 && !this.paused) {
            this.paused = true;
            this.stream.pause();
          }
        }
      }
    }
    if (endStream) this.complete();
  }

  onReset(failure: StreamFailure): void {
    if (this.finished) return;
    if (this.state === WAIT_HEAD && failure.code === ErrorCode.HTTP_1_1_REQUIRED && (failure.kind === 'reset' || failure.kind === 'refused')) {
      // The backend declined the request on HTTP/2 before answering it (RFC 9113 section 7). Over TLS the
      // transport switches to HTTP/1.1, and a body-less request is sent again there (see `finish`).
      const outcome = this.ctx.requireHttp1();
      if (outcome !== 'h2c') {
        // Switched: sent again over HTTP/1.1 when it has no body. Closed (a reload replaced this transport): the
        // proxy's retry policy may send it again; nothing was processed either way.
        this.declinedForHttp1 = outcome === 'switched';
        this.finish(connectFailed(`${this.ctx.authority} requires HTTP/1.1 (HTTP_1_1_REQUIRED)`));
        return;
      }
      this.finish(
        new SpookyError(
          'upstream_reset',
          `${this.ctx.authority} requires HTTP/1.1 (HTTP_1_1_REQUIRED), which h2c cannot fall back to: address the backend as http:// instead`,
        ),
      );
      return;
    }
    this.finish(classify(failure, this.state !== WAIT_HEAD, this.ctx.authority));
  }

  onWritable(): void {
    const w = this.writable;
    if (w) {
      this.writable = undefined;
      w();
    }
  }

  /** The backend ended the stream: the response is complete. */
  private complete(): void {
    const stream = this.stream;
    if (!stream.localEnded && !stream.closed) {
      // Still sending the request body: the backend does not want the rest.
      stream.reset(ErrorCode.CANCEL);
    }
    if (this.state !== NO_BODY && this.declared >= 0 && this.received !== this.declared) {
      this.finish(
        new SpookyError(
          'upstream_protocol_error',
          `${this.ctx.authority} sent ${this.received} bytes of response body for a content-length of ${this.declared}`,
        ),
      );
      return;
    }
    if (this.state !== COLLECT) {
      this.finish();
      return;
    }
    // A complete small response: end the exchange first, then hand the whole body over.
    const body = this.declared >= 0 ? this.takeBody() : null;
    if (!this.watching && this.req.signal.aborted) {
      // The abort fired while the signal was only polled: report it as a listener would have.
      this.finish(abortedError(this.req.signal));
      return;
    }
    this.settle();
    this.onEnd?.();
    this.resolve({ status: this.status, headers: this.headers, body, version: '2' });
  }

  /** The backend broke the protocol on this stream: RST_STREAM(PROTOCOL_ERROR) and `upstream_protocol_error`. */
  private protocolError(message: string): void {
    this.resetWith(new SpookyError('upstream_protocol_error', message), ErrorCode.PROTOCOL_ERROR);
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
      this.reset(headerTimeout(this.ctx.authority, this.opts.responseHeaderTimeoutMs));
      return;
    }
    if (this.state === NO_BODY) {
      // A body-less answer (HEAD, 204, 304) whose stream the backend did not end: the client has its whole
      // answer, so the exchange ends without an error and the stream is reset.
      this.stream.reset(ErrorCode.CANCEL);
      this.finish();
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

  /** Underlying source: the consumer wants more; resume crediting the HTTP/2 stream (WINDOW_UPDATEs). */
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

  /** Hands the head over with `body` null (the exchange goes on until the stream ends). */
  private handOver(body: null): void {
    if (!this.watch()) return;
    this.state = NO_BODY;
    // The stream should end with (or right after) the head; a backend that leaves it open gets NO_BODY_DRAIN_MS,
    // then the stream is reset (see expire), so the exchange (and the proxy's concurrency slot) ends.
    this.ctx.sweeper.setDeadline(this, performance.now() + NO_BODY_DRAIN_MS);
    this.first = undefined;
    this.more = undefined;
    this.resolve({ status: this.status, headers: this.headers, body, version: '2' });
  }

  /** Hands the head over with a streaming body that starts with whatever was collected. */
  private handOverStream(): void {
    if (!this.watch()) return;
    this.state = STREAMING;
    this.ctx.sweeper.remove(this);
    const body = new ReadableStream<Uint8Array>(this, this.ctx.bodyStrategy); // start() queues the collected chunks
    this.resolve({ status: this.status, headers: this.headers, body, version: '2' });
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
    this.resetWith(err, ErrorCode.CANCEL);
  }

  private resetWith(err: SpookyError, code: number): void {
    if (this.finished) return;
    this.stream.reset(code);
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
    this.onWritable(); // an upload waiting for the stream sees the exchange over
    // From here on every handler call would be a no-op; the stream stops pointing back at this exchange. With the
    // link, a stream that outlived a young-generation collection (it was in flight) kept its exchange, request,
    // response and body alive through the next ones, and the old generation filled: under the benchmark's h2c
    // load 17-23 full collections and 380-430 ms of GC in 5 s, against 7-9 and 110-120 ms without it.
    const stream = this.stream as H2Stream | undefined;
    if (stream !== undefined) stream.handler = FINISHED;
  }

  /** Ends the exchange exactly once: deadline, abort listener, head promise, body stream, request body, onEnd. */
  private finish(err?: SpookyError): void {
    if (this.finished) return;
    this.settle(err);
    if (this.state === WAIT_HEAD || this.state === COLLECT) {
      this.first = undefined;
      this.more = undefined;
      const e = err ?? new SpookyError('upstream_reset', `stream to ${this.ctx.authority} closed before response headers`);
      // A second try may itself be declined with HTTP_1_1_REQUIRED: its HTTP/1.1 resend cannot be declined again.
      if (
        this.state === WAIT_HEAD &&
        e.code === 'upstream_connect_failed' &&
        (!this.retried || this.declinedForHttp1) &&
        this.req.body === null &&
        !this.req.signal.aborted
      ) {
        this.ctx.retryUnprocessed(this); // not processed by the backend: once more, with this promise and onEnd
        return;
      }
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

  /** Sends the request body, pulled from the web stream only as fast as the HTTP/2 stream takes it. */
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
      // A closed stream is reported through the stream's handler.
      if (stream.closed) return;
      if (chunk.done) break;
      const value = chunk.value;
      if (value.byteLength === 0) continue;
      if (!stream.write(value)) {
        captureTarget = this;
        const writable = new Promise<void>(captureWritable);
        captureTarget = undefined;
        await writable;
        if (!this.uploading || this.finished || stream.closed) return;
      }
    }
    this.uploading = false;
    stream.end();
    // The response head is due `opts.responseHeaderTimeoutMs` after the whole body was sent (see expire()).
    if (this.opts.responseHeaderTimeoutMs > 0 && this.state === WAIT_HEAD)
      this.ctx.sweeper.setDeadline(this, performance.now() + this.opts.responseHeaderTimeoutMs);
  }
}

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

  /** Starts tracking `ex`: its deadline (`ex.opts.responseHeaderTimeoutMs` from now, none when not positive) and its signal. */
  add(ex: Exchange): void {
    const now = performance.now();
    ex.started = now;
    let due = now + ABORT_POLL_MS;
    if (ex.opts.responseHeaderTimeoutMs > 0) {
      const deadline = Math.min(now + ex.opts.responseHeaderTimeoutMs, ex.headDeadline);
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

  /** Gives a tracked exchange a new deadline (no-op when it is not tracked any more). */
  setDeadline(ex: Exchange, deadline: number): void {
    if (!ex.linked) return;
    ex.deadline = deadline;
    if (deadline < this.minDeadline) this.minDeadline = deadline;
    if (deadline < this.at) this.arm(deadline, performance.now());
  }

  /** Makes the sweep run at `at` (earlier than planned so far). */
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

/** Connection-specific fields, which make an HTTP/2 response malformed (RFC 9113 §8.2.2; `te` is for requests only). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

/**
 * Why a regular response field is malformed (RFC 9113 §8.2), or undefined: a name that is empty, upper case or
 * not a token, a value with NUL, CR or LF, or a connection-specific field.
 */
function responseFieldProblem(name: string, value: string): string | undefined {
  const n = name.length;
  if (n === 0) return 'an empty header name';
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return `response header name ${JSON.stringify(name)} is not lower case`;
    if (c >= 128 || TCHAR[c] === 0) return `invalid response header name ${JSON.stringify(name)}`;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return `NUL, CR or LF in the value of ${name}`;
  }
  if (CONNECTION_SPECIFIC.has(name)) return `connection-specific header ${name}`;
  return undefined;
}

/** A `:status` value as a number when it is three digits, else NaN. */
function statusCode(v: string | undefined): number {
  if (v === undefined || v.length !== 3) return Number.NaN;
  const a = v.charCodeAt(0) - 48;
  const b = v.charCodeAt(1) - 48;
  const c = v.charCodeAt(2) - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return Number.NaN;
  return a * 100 + b * 10 + c;
}

/** A `content-length` value as a number (at most 15 significant digits); -1 when absent or not a plain decimal number. */
function parseLength(v: string | undefined): number {
  if (v === undefined || v.length === 0) return -1;
  let n = 0;
  let significant = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    if ((significant > 0 || d > 0) && ++significant > 15) return -1; // leading zeros are digits too (1*DIGIT)
    n = n * 10 + d;
  }
  return n;
}

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

/** The response head did not come within `ms` (the configured `response_header_ms`). */
function headerTimeout(authority: string, ms: number): SpookyError {
  return new SpookyError('upstream_timeout', `no response headers from ${authority} within ${ms} ms`);
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

/** Maps a stream that ended abnormally to a SpookyError. */
function classify(failure: StreamFailure, gotHead: boolean, authority: string): SpookyError {
  const { kind, code, message } = failure;
  // REFUSED_STREAM and streams above a GOAWAY's last stream id were not processed (RFC 9113 §8.7): safe to retry.
  if (!gotHead && kind === 'refused') return connectFailed(`${authority} did not process the request: ${message}`);
  if (
    kind === 'protocol' ||
    (kind === 'reset' && (code === ErrorCode.PROTOCOL_ERROR || code === ErrorCode.COMPRESSION_ERROR || code === ErrorCode.FRAME_SIZE_ERROR))
  ) {
    return new SpookyError('upstream_protocol_error', `HTTP/2 protocol error with ${authority}: ${message}`);
  }
  if (kind === 'closed')
    return new SpookyError('upstream_reset', `connection to ${authority} lost${gotHead ? ' during the response body' : ''}: ${message}`);
  return new SpookyError('upstream_reset', `${authority} reset the stream${gotHead ? ' during the response body' : ''}: ${message}`);
}
