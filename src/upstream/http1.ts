/**
 * HTTP/1.1 upstream client over `Bun.connect` sockets (TCP, or TLS via Bun.connect's `tls` option) with a
 * keep-alive pool per backend. Chosen over `fetch` (its pool keeps at most 64 idle sockets in total, so it
 * churns connections above 64 concurrent requests) and `node:http` (about 160 µs CPU per request in Bun).
 *
 * Shape: one {@link Http1Transport} per backend owns a `Pool` of connections (`Conn`); each request is an
 * `Exchange` attached to one connection at a time. All sockets share one handler object and find their
 * `Conn` through `socket.data`; an exchange is itself the underlying source of its response body stream and
 * the listener of its abort signal; response-header timeouts are two sorted lists per pool with one timer
 * each (not a timer per request). The hot path allocates no closures of its own beyond the promise.
 *
 * Lifecycle of a connection: connecting -> active (one exchange) -> idle (in the LIFO pool) -> active ... ->
 * closed. It goes back to the pool only when the response body was read to its end AND the request body was
 * fully sent AND the response allowed keep-alive AND no stray bytes followed the response; otherwise it is
 * closed.
 *
 * Abort signals are subscribed to lazily: when an exchange has to wait for a new connection or a queue slot,
 * uploads a body, streams a body over more than one read, or has waited 100 ms for its response head. Until
 * then `signal.aborted` is checked at each step, so a quick exchange never pays for add/removeEventListener,
 * and an abort while waiting for the head of a quick request is noticed within 100 ms.
 *
 * HTTPS backends, including an HTTP/2 transport falling back to http/1.1 after ALPN: construct
 * `new Http1Transport({ host, port, tls: { serverName, ca, rejectUnauthorized } })`. Every connection is
 * opened with `Bun.connect({ tls: { serverName, ca, rejectUnauthorized, ALPNProtocols: 'http/1.1' } })`
 * (ALPN offers only http/1.1; SNI defaults to `host` unless it is an IP). There is deliberately no way to
 * hand over an already-negotiated socket (the h2 transport's `node:tls` sockets cannot join a Bun.connect
 * pool); the price is one extra TLS handshake for the first connection after the fallback.
 */

import type { Socket, SocketHandler, TLSOptions } from 'bun';
import { SpookyError } from '../errors.ts';
import { MAX_TIMER_MS } from '../lib/clock.ts';
import { IDEMPOTENT_METHODS } from '../lib/http-syntax.ts';
import {
  ChunkedDecoder,
  type ChunkSink,
  DECODE_ERROR,
  DECODE_MORE,
  FRAMING_CHUNKED,
  FRAMING_NONE,
  HEAD_END,
  MAX_HEAD_BYTES,
  parseResponseHead,
  type ResponseHead,
  serializeRequestHead,
} from './http1-parser.ts';
import {
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

/** Where an {@link Http1Transport} connects. */
export interface Http1Origin {
  /** Host name or IP address to connect to. */
  host: string;
  /** TCP port. */
  port: number;
  /** Present for HTTPS backends. */
  tls?: {
    /** SNI name and the name the certificate is checked against; default: `host` when it is not an IP. */
    serverName?: string;
    /** PEM CA certificate(s) to trust instead of the system roots. */
    ca?: string;
    /** PEM client certificate (chain) presented to the backend, with {@link key}. Default: none. */
    cert?: string;
    /** PEM private key of {@link cert}. */
    key?: string;
    /** When true, a certificate that does not verify fails the connect (`upstream_connect_failed`). */
    rejectUnauthorized: boolean;
  };
}

/** Pool tuning of an {@link Http1Transport}. */
export interface Http1PoolOptions {
  /** Most idle keep-alive connections kept; extra ones are closed when released. Default 1024 (so a burst of up to 1024 concurrent requests does not churn connections). */
  maxIdlePerBackend?: number;
  /** Milliseconds an idle connection is kept before it is closed (checked by one sweep timer). Default 60000. */
  idleTimeoutMs?: number;
  /** Most connections (connecting, active and idle) at once; requests beyond it wait. Default Infinity. */
  maxConnections?: number;
}

/** A blank line after a bare LF, for spotting a head with bare-LF line endings (see `onData`). */
const LF_LF = Buffer.from('\n\n', 'latin1');
const LF_CRLF = Buffer.from('\n\r\n', 'latin1');

/** Response body queue size (bytes) above which the socket is paused until the consumer pulls. */
const BODY_HIGH_WATER_MARK = 64 * 1024;
/**
 * Milliseconds an exchange may wait for its response head before it subscribes to its abort signal (until
 * then, an abort is noticed when this passes or at the next protocol step). Saves add/removeEventListener
 * for the common quick exchange.
 */
const ABORT_GRACE_MS = 100;
/** First request-body chunks up to this size are copied into one write with the head (or chunk framing). */
const COALESCE_LIMIT = 16 * 1024;
/** After a failed write with a request in flight, how long the backend's answer and close are waited for (ms). */
const WRITE_FAILED_GRACE_MS = 1000;
/** Methods that get `content-length: 0` when they have no body. */
const NEEDS_LENGTH = new Set(['POST', 'PUT', 'PATCH']);
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

const C_CONNECTING = 0;
const C_ACTIVE = 1;
const C_IDLE = 2;
const C_CLOSED = 3;

const P_QUEUED = 0; // waiting for a connection
const P_HEAD = 1; // attached to a connection, waiting for the final response head
const P_BODY = 2; // response delivered, body streaming
const P_DONE = 3;

const M_NONE = 0;
const M_LENGTH = 1;
const M_CHUNKED = 2;
const M_EOF = 3;

/**
 * What one queued body chunk counts beyond its bytes: the chunk object and its queue entry cost memory of their
 * own (about 100 to 200 bytes), so a backend sending 1-byte chunks cannot make the queue hold 64 Ki objects
 * (several MB) per response before the socket is paused.
 */
const CHUNK_OVERHEAD = 256;

function byteSize(chunk?: Uint8Array): number {
  return chunk === undefined ? 0 : chunk.byteLength + CHUNK_OVERHEAD;
}
const BODY_STRATEGY: QueuingStrategy<Uint8Array> = { highWaterMark: BODY_HIGH_WATER_MARK, size: byteSize };

function noop(): void {}

function defaultReader(s: ReadableStream<Uint8Array>) {
  return s.getReader();
}
/** Reader of a request body. */
type BodyReader = ReturnType<typeof defaultReader>;

/** Bytes of `d` after the first `n` (head strings are ASCII, so string length equals byte length). */
function remainder(d: string | Uint8Array, n: number): Uint8Array {
  return typeof d === 'string' ? Buffer.from(d, 'latin1').subarray(n) : d.subarray(n);
}

/** Concatenates a head (string or bytes) and further parts into one buffer for a single write. */
function joinParts(parts: (string | Uint8Array)[]): Buffer {
  let total = 0;
  for (const p of parts) total += typeof p === 'string' ? p.length : p.byteLength;
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  for (const p of parts) {
    if (typeof p === 'string') o += out.write(p, o, 'latin1');
    else {
      out.set(p, o);
      o += p.byteLength;
    }
  }
  return out;
}

/** Slices up to this many bytes are copied by {@link view} rather than shared. */
const COPY_LIMIT = 512;

/**
 * `b[start, end)` as a plain Uint8Array. Short slices are copied: a small read comes as a typed array whose
 * bytes live in the GC heap, and asking it for its `.buffer` (as any view must) first moves them out, which
 * costs several times the copy (about 430 against 35 ns for a 23-byte body after a 150-byte read). Longer
 * ones are views, no copy (cheaper than `Buffer#subarray` in Bun).
 */
function view(b: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n <= COPY_LIMIT) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = b[start + i] as number;
    return out;
  }
  return new Uint8Array(b.buffer, b.byteOffset + start, n);
}

function isIp(host: string): boolean {
  return host.includes(':') || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/** One pooled socket. */
class Conn {
  readonly t: Pool;
  socket: Socket<Conn> | null = null;
  state = C_CONNECTING;
  /** The exchange using this connection now. */
  ex: Exchange | null = null;
  /** Exchanges completed on it (a reused connection may have been closed by the server meanwhile). */
  served = 0;
  idleSince = 0;
  /** Reading paused because the response body consumer is behind. */
  paused = false;
  /** True once established (counted in connectionsOpen). */
  opened = false;
  /** Bytes `socket.write` did not take yet; flushed on `drain`. */
  wq: (string | Uint8Array)[] | null = null;

  constructor(t: Pool) {
    this.t = t;
  }

  onOpen(s: Socket<Conn>): void {
    this.socket = s;
    if (this.state === C_CLOSED) {
      s.terminate(); // gave up on it (timeout, abort) before it connected
      return;
    }
    if (!this.t.isTls) this.ready();
  }

  onHandshake(s: Socket<Conn>, ok: boolean, err: Error | null): void {
    if (this.state !== C_CONNECTING) return;
    // Bun reports ok=false for an unverified certificate even with rejectUnauthorized: false (for example a
    // name mismatch), so the decision is ours: verified (ok and authorized) or verification not wanted.
    if (this.t.rejectUnauthorized && !(ok && s.authorized)) {
      this.failConnect(err ?? new Error('TLS certificate not verified'));
      return;
    }
    this.ready();
  }

  private ready(): void {
    this.state = C_ACTIVE;
    this.opened = true;
    const t = this.t;
    t.opened++;
    t.openCount++;
    const ex = this.ex;
    if (ex === null) t.release(this);
    else ex.attach(this);
  }

  private failConnect(err: Error): void {
    const ex = this.ex;
    this.ex = null;
    this.kill(false);
    if (ex !== null) ex.onConnectFailed(err);
  }

  onData(buf: Buffer): void {
    const ex = this.ex;
    if (ex === null || this.state !== C_ACTIVE) {
      this.kill(false); // bytes nobody asked for: the connection cannot be trusted any more
      return;
    }
    if (ex.headPendingOn(this)) {
      // Bytes before this request's head was written: left over from an earlier response, so they must not be
      // read as this one's. The connection is dropped; the exchange sees it closed unanswered.
      this.ex = null;
      this.kill(false);
      ex.onConnClosed(this, new Error('the backend sent bytes before the request was written'));
      return;
    }
    ex.onData(buf);
  }

  onDrain(): void {
    const q = this.wq;
    const s = this.socket;
    if (q === null || s === null) return;
    while (q.length > 0) {
      const d = q[0]!;
      const len = typeof d === 'string' ? d.length : d.byteLength;
      const n = s.write(d);
      if (n === len) {
        q.shift();
        continue;
      }
      if (n > 0) q[0] = remainder(d, n);
      return; // n < 0: closed; the close handler deals with it
    }
    this.wq = null;
    const ex = this.ex;
    if (ex !== null) ex.onDrained();
  }

  /** A handler threw or the TLS session failed: the connection cannot be trusted any more. */
  onError(err: Error): void {
    if (this.state === C_CONNECTING) {
      this.failConnect(err);
      return;
    }
    const ex = this.ex;
    this.ex = null;
    this.kill(false);
    if (ex !== null) ex.fail(new SpookyError('upstream_reset', `socket error: ${err.message}`, { cause: err }));
  }

  /**
   * `socket.write` said the socket is closed: handle it like the close event, and make sure it is. Except while an
   * exchange is uploading a body here: a backend may answer early and close without reading the rest of the
   * upload (a `413`), and that answer can still be waiting to be read. Then writing stops, reading goes on, and
   * the close event ends the exchange after the answer, or {@link WRITE_FAILED_GRACE_MS} later at the latest.
   */
  writeFailed(): void {
    const s = this.socket;
    const ex = this.ex;
    if (ex?.uploading() && this.state === C_ACTIVE && s !== null && s.readyState > 0) {
      this.wq = null;
      const grace = setTimeout(() => {
        if (this.state === C_CLOSED) return;
        this.onClose(undefined);
        if (s.readyState > 0) s.terminate();
      }, WRITE_FAILED_GRACE_MS);
      grace.unref?.();
      return;
    }
    this.onClose(undefined);
    if (s !== null && s.readyState > 0) s.terminate();
  }

  /** The socket closed (or failed to connect). */
  onClose(err: Error | undefined): void {
    if (this.state === C_CLOSED) return;
    const was = this.state;
    const ex = this.ex;
    this.ex = null;
    this.markClosed();
    if (ex === null) return;
    if (was === C_CONNECTING) ex.onConnectFailed(err ?? new Error('connection closed during connect'));
    else ex.onConnClosed(this, err);
  }

  /**
   * Writes `d`, queueing what the socket does not take. Returns false when the socket is closed (then the
   * caller must treat the connection as gone).
   */
  send(d: string | Uint8Array): boolean {
    if (this.wq !== null) {
      this.wq.push(d);
      return true;
    }
    const n = this.socket!.write(d);
    const len = typeof d === 'string' ? d.length : d.byteLength;
    if (n === len) return true;
    if (n < 0) return false;
    this.wq = [remainder(d, n)];
    return true;
  }

  /** Closes the connection: gracefully (FIN) or at once (RST). Idempotent. */
  kill(graceful: boolean): void {
    if (this.state === C_CLOSED) return;
    this.markClosed();
    const s = this.socket;
    if (s !== null) {
      if (graceful) s.end();
      else s.terminate();
    }
  }

  private markClosed(): void {
    const was = this.state;
    this.state = C_CLOSED;
    this.wq = null;
    const t = this.t;
    if (was === C_IDLE) t.idleCount--;
    if (this.opened) t.openCount--;
    t.total--;
    t.onSlotFreed();
  }
}

/** Shared by every socket of every transport; the connection is `socket.data`. */
const HANDLERS: SocketHandler<Conn> = {
  open(s) {
    s.data.onOpen(s);
  },
  handshake(s, ok, err) {
    s.data.onHandshake(s, ok, err);
  },
  data(s, d) {
    s.data.onData(d);
  },
  drain(s) {
    s.data.onDrain();
  },
  close(s, err) {
    s.data.onClose(err);
  },
  connectError(s, err) {
    s.data.onClose(err);
  },
  error(s, err) {
    s.data.onError(err);
  },
};

function connectTimedOut(ex: Exchange): void {
  ex.timer = null;
  ex.fail(new SpookyError('upstream_connect_failed', 'connect timed out', { retryable: true }));
}
function acquireTimedOut(ex: Exchange): void {
  ex.timer = null;
  ex.fail(new SpookyError('upstream_connect_failed', 'no connection free within the connect timeout', { retryable: true }));
}
/** Exchanges whose (bodiless) request head waits for {@link writeQueuedHeads}. */
let queuedHeads: Exchange[] = [];

/**
 * Writes the heads of the bodiless requests attached in this event-loop turn, one after the other in the check
 * phase. Still one write per connection, but back to back instead of interleaved with the proxy's other work:
 * measured with `bench/proxy.ts`, about 10% less CPU per proxied request (probably because the backend then
 * wakes once for the batch rather than once per request), for less than one event-loop turn of added latency.
 */
function writeQueuedHeads(): void {
  const list = queuedHeads;
  queuedHeads = [];
  for (let i = 0; i < list.length; i++) (list[i] as Exchange).writeQueuedHead();
}

function writeHeadIfPending(ex: Exchange): void {
  ex.flushHeadAlone();
}

function protocolError(msg: string): SpookyError {
  return new SpookyError('upstream_protocol_error', msg);
}

/** A request body stream failure: keep our own errors, blame anything else on the client. */
function bodyError(e: unknown): SpookyError {
  if (e instanceof SpookyError) return e;
  return new SpookyError('client_aborted', `request body failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/**
 * Exchanges waiting for a deadline, sorted by it (a doubly linked list through the exchanges, so insert at the
 * tail and remove are O(1) when timeouts are equal, as they usually are), with one timer for the earliest
 * deadline. Replaces a setTimeout/clearTimeout pair per request. The timer is only moved earlier, never
 * cleared on removal: when it fires with nothing due, it re-arms for the new head.
 */
class DeadlineList {
  private head: Exchange | null = null;
  private tail: Exchange | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Number.POSITIVE_INFINITY;

  insert(ex: Exchange, at: number): void {
    ex.dlList = this;
    ex.dlAt = at;
    let after = this.tail;
    while (after !== null && after.dlAt > at) after = after.dlPrev;
    ex.dlPrev = after;
    if (after === null) {
      ex.dlNext = this.head;
      if (this.head !== null) this.head.dlPrev = ex;
      this.head = ex;
    } else {
      ex.dlNext = after.dlNext;
      if (after.dlNext !== null) after.dlNext.dlPrev = ex;
      after.dlNext = ex;
    }
    if (ex.dlNext === null) this.tail = ex;
    if (at < this.timerAt) this.schedule(at);
  }

  remove(ex: Exchange): void {
    const prev = ex.dlPrev;
    const next = ex.dlNext;
    if (prev === null) this.head = next;
    else prev.dlNext = next;
    if (next === null) this.tail = prev;
    else next.dlPrev = prev;
    ex.dlList = null;
    ex.dlPrev = null;
    ex.dlNext = null;
  }

  private schedule(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(fireDeadlines, Math.min(MAX_TIMER_MS, Math.max(0, at - performance.now())), this);
    this.timer.unref(); // waiting exchanges keep the process alive through their sockets
  }

  /** Timer: hands every due exchange its deadline, then re-arms for the earliest one left. */
  fire(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let ex = this.head;
    while (ex !== null && ex.dlAt <= now) {
      this.remove(ex);
      ex.onDeadline(this);
      ex = this.head;
    }
    if (ex !== null) this.schedule(ex.dlAt);
  }
}

function fireDeadlines(list: DeadlineList): void {
  list.fire();
}

/** One request/response exchange. Also the response body's underlying source and the abort listener. */
class Exchange implements ChunkSink, EventListenerObject {
  readonly t: Pool;
  readonly req: UpstreamRequest;
  readonly opts: ExchangeOptions;
  readonly promise: Promise<UpstreamResponse>;
  private readonly resolveFn: (r: UpstreamResponse) => void;
  private readonly rejectFn: (e: SpookyError) => void;
  head: string | Uint8Array = '';
  /** Declared request content-length, or -1 (chunked / none). */
  declared = -1;
  chunked = false;
  conn: Conn | null = null;
  phase = P_QUEUED;
  timer: ReturnType<typeof setTimeout> | null = null;
  retried = false;
  /** Any response byte arrived on the current connection. */
  private gotBytes = false;
  private ended = false;
  private listening = false;
  private headerDeadline = 0;
  /** Deadline list membership (see {@link DeadlineList}). */
  dlList: DeadlineList | null = null;
  dlPrev: Exchange | null = null;
  dlNext: Exchange | null = null;
  dlAt = 0;
  // request body
  private reqDone = false;
  private headWritten = false;
  /** The connection a bodiless request's head is queued for (see {@link writeQueuedHeads}), else null. */
  private headQueuedOn: Conn | null = null;
  private reader: BodyReader | null = null;
  private bodySent = 0;
  private drainWaiter: (() => void) | null = null;
  // response
  /** Bytes of a response head that arrived in pieces (valid up to headLen). */
  private headBuf: Buffer | null = null;
  private headLen = 0;
  private mode = M_NONE;
  private remaining = 0;
  private decoder: ChunkedDecoder | null = null;
  /** Short decoded chunks of the current read not pushed yet: the read's buffer and [start, end) pairs in it. */
  private runBuf: Buffer | null = null;
  /** Made on the first short chunk: most exchanges never have one. */
  private run: number[] | null = null;
  private runBytes = 0;
  private keepAlive = false;
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null;

  constructor(t: Pool, req: UpstreamRequest, opts: ExchangeOptions) {
    this.t = t;
    this.req = req;
    this.opts = opts;
    const { promise, resolve, reject } = Promise.withResolvers<UpstreamResponse>();
    this.promise = promise;
    this.resolveFn = resolve;
    this.rejectFn = reject;
  }

  /**
   * Subscribes to the abort signal (idempotent). Done lazily: only for exchanges that wait for a connection,
   * upload a body, stream a body over several reads, or have waited {@link ABORT_GRACE_MS} for the head.
   * A quick small exchange never pays for add/removeEventListener; `signal.aborted` is checked at each step.
   */
  listen(): void {
    if (this.listening || this.phase === P_DONE) return;
    this.listening = true;
    this.req.signal.addEventListener('abort', this);
  }

  /** Abort signal fired. */
  handleEvent(): void {
    this.fail(new SpookyError('client_aborted', 'request aborted'));
  }

  /** Starts this exchange's own timer (connect / queue wait); no timer for a non-finite or huge `ms`. */
  arm(ms: number, fn: (ex: Exchange) => void): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = ms < MAX_TIMER_MS ? setTimeout(fn, Math.max(0, ms), this) : null;
  }

  private disarm(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const list = this.dlList;
    if (list !== null) list.remove(this);
  }

  /** Starts the exchange on an established connection. */
  attach(c: Conn): void {
    this.disarm();
    this.conn = c;
    c.ex = this;
    c.state = C_ACTIVE;
    this.phase = P_HEAD;
    this.gotBytes = false;
    this.headBuf = null;
    this.headLen = 0;
    const body = this.req.body;
    if (body === null) {
      this.reqDone = true;
      this.headWritten = true;
      // Written in the check phase, together with every other head of this event-loop turn (see writeQueuedHeads).
      this.headQueuedOn = c;
      queuedHeads.push(this);
      if (queuedHeads.length === 1) setImmediate(writeQueuedHeads);
      this.armHeaderTimer();
      return;
    }
    this.listen();
    let reader: BodyReader;
    try {
      reader = defaultReader(body);
    } catch (e) {
      this.fail(new SpookyError('internal', 'request body is not readable', { cause: e }));
      return;
    }
    this.reader = reader;
    // The head goes out together with the first body chunk when that chunk is ready in this turn of the
    // event loop; otherwise alone, so a slow or 100-continue-waiting client does not hold the head back.
    setImmediate(writeHeadIfPending, this);
    void this.pump(reader);
  }

  /** True while this exchange's head waits to be written on `c` (see {@link writeQueuedHeads}). */
  headPendingOn(c: Conn): boolean {
    return this.headQueuedOn === c;
  }

  /**
   * Writes the queued head of a bodiless request, unless the exchange left that connection since it was queued
   * (failed, cancelled, or moved to a fresh connection, which queued it again).
   */
  writeQueuedHead(): void {
    const c = this.headQueuedOn;
    this.headQueuedOn = null;
    if (c === null || this.conn !== c || c.ex !== this || c.state !== C_ACTIVE || this.phase !== P_HEAD) return;
    if (!c.send(this.head)) c.writeFailed();
  }

  /** True while this exchange is sending a request body after its head (the backend may have answered already). */
  uploading(): boolean {
    return this.headWritten && this.bodySent > 0 && this.phase !== P_DONE;
  }

  /** setImmediate fallback: write the head without body bytes. */
  flushHeadAlone(): void {
    const c = this.conn;
    if (this.headWritten || this.phase !== P_HEAD || c === null) return;
    this.headWritten = true;
    if (!c.send(this.head)) c.writeFailed();
  }

  private async pump(reader: BodyReader): Promise<void> {
    try {
      for (;;) {
        const r = await reader.read();
        const c = this.conn;
        if (this.phase === P_DONE || c === null || this.reader !== reader) return;
        if (r.done) {
          this.reader = null;
          this.endBody(c);
          return;
        }
        let chunk: Uint8Array = r.value;
        if (!(chunk instanceof Uint8Array)) {
          if ((chunk as unknown) instanceof ArrayBuffer) chunk = new Uint8Array(chunk as unknown as ArrayBuffer);
          else throw new SpookyError('bad_request', 'request body chunk is not bytes');
        }
        const len = chunk.byteLength;
        if (len === 0) continue;
        this.bodySent += len;
        if (this.declared >= 0 && this.bodySent > this.declared) {
          throw new SpookyError('bad_request', 'request body longer than its content-length');
        }
        let ok: boolean;
        if (this.chunked) {
          const prefix = `${len.toString(16)}\r\n`;
          if (!this.headWritten) {
            this.headWritten = true;
            ok =
              len <= COALESCE_LIMIT
                ? c.send(joinParts([this.head, prefix, chunk, CRLF]))
                : c.send(joinParts([this.head, prefix])) && c.send(chunk) && c.send(CRLF);
          } else if (len <= COALESCE_LIMIT) {
            ok = c.send(joinParts([prefix, chunk, CRLF]));
          } else {
            ok = c.send(prefix) && c.send(chunk) && c.send(CRLF);
          }
        } else if (!this.headWritten) {
          this.headWritten = true;
          ok = len <= COALESCE_LIMIT ? c.send(joinParts([this.head, chunk])) : c.send(this.head) && c.send(chunk);
        } else {
          ok = c.send(chunk);
        }
        if (!ok) {
          c.writeFailed();
          return;
        }
        if (c.wq !== null) {
          // Backpressure: read nothing more until the socket took everything.
          await new Promise<void>((resolve) => {
            this.drainWaiter = resolve;
          });
          if (this.phase === P_DONE || this.conn !== c) return;
        }
      }
    } catch (e) {
      this.fail(bodyError(e));
    }
  }

  private endBody(c: Conn): void {
    if (this.declared >= 0 && this.bodySent !== this.declared) {
      this.fail(new SpookyError('bad_request', 'request body shorter than its content-length'));
      return;
    }
    let ok = true;
    if (!this.headWritten) {
      this.headWritten = true;
      const h = this.head;
      if (!this.chunked) ok = c.send(h);
      else ok = typeof h === 'string' ? c.send(h + LAST_CHUNK) : c.send(joinParts([h, LAST_CHUNK]));
    } else if (this.chunked) {
      ok = c.send(LAST_CHUNK);
    }
    if (!ok) {
      c.writeFailed();
      return;
    }
    this.reqDone = true;
    if (this.phase === P_HEAD) this.armHeaderTimer();
  }

  /**
   * Starts the response-header timeout: the exchange goes on one of the transport's deadline lists (no timer
   * of its own). While listening is deferred, it first waits {@link ABORT_GRACE_MS} on the grace list, then
   * on the header list until the real deadline.
   */
  private armHeaderTimer(): void {
    const ms = this.opts.responseHeaderTimeoutMs;
    const now = performance.now();
    this.headerDeadline = ms < MAX_TIMER_MS ? now + Math.max(0, ms) : Number.POSITIVE_INFINITY;
    if (!this.listening && ms > ABORT_GRACE_MS) this.t.graceWait.insert(this, now + ABORT_GRACE_MS);
    else if (this.headerDeadline !== Number.POSITIVE_INFINITY) this.t.headerWait.insert(this, this.headerDeadline);
  }

  /** Deadline list callback: the grace period or the header timeout passed. */
  onDeadline(list: DeadlineList): void {
    if (this.req.signal.aborted) {
      this.fail(new SpookyError('client_aborted', 'request aborted'));
      return;
    }
    if (list === this.t.headerWait) {
      this.fail(new SpookyError('upstream_timeout', 'no response headers within the response header timeout'));
      return;
    }
    // Grace over: the response is not quick, so subscribe to the abort signal and wait for the deadline.
    this.listen();
    if (this.headerDeadline !== Number.POSITIVE_INFINITY) this.t.headerWait.insert(this, this.headerDeadline);
  }

  onDrained(): void {
    const w = this.drainWaiter;
    if (w !== null) {
      this.drainWaiter = null;
      w();
    }
  }

  onConnectFailed(err: Error): void {
    this.conn = null;
    this.fail(new SpookyError('upstream_connect_failed', `connect to ${this.t.label} failed: ${err.message}`, { retryable: true, cause: err }));
  }

  /** The connection closed while this exchange was using it. */
  onConnClosed(c: Conn, err: Error | undefined): void {
    this.conn = null;
    if (this.phase === P_HEAD) {
      if (!this.gotBytes && c.served > 0 && this.req.body === null && IDEMPOTENT_METHODS.has(this.req.method) && !this.retried && !this.t.closed) {
        // A reused keep-alive connection the server had closed: most likely nothing was processed, so an
        // idempotent request is tried on a fresh connection once (a POST without a body may have been
        // processed: it is not sent twice).
        this.retried = true;
        this.disarm();
        this.phase = P_QUEUED;
        this.t.acquire(this, true);
        return;
      }
      if (this.gotBytes && err === undefined) this.fail(protocolError('connection closed inside the response head'));
      else this.fail(new SpookyError('upstream_reset', `connection closed before the response${err ? `: ${err.message}` : ''}`, { cause: err }));
      return;
    }
    if (this.phase === P_BODY) {
      if (this.mode === M_EOF && err === undefined) {
        this.keepAlive = false;
        this.responseComplete();
        return;
      }
      this.fail(
        new SpookyError('upstream_reset', `connection closed before the end of the response body${err ? `: ${err.message}` : ''}`, { cause: err }),
      );
    }
  }

  onData(buf: Buffer): void {
    this.gotBytes = true;
    if (this.phase === P_BODY) {
      this.onBody(buf, 0);
      return;
    }
    if (this.phase !== P_HEAD) return;
    let b = buf;
    let pos = 0;
    let from = 0;
    const buffered = this.headBuf !== null;
    if (buffered) {
      from = this.headLen > 3 ? this.headLen - 3 : 0; // CRLFCRLF may straddle the old and the new bytes
      b = this.appendHead(buf);
    }
    let head: ResponseHead;
    for (;;) {
      const idx = b.indexOf(HEAD_END, from);
      if (idx < 0) {
        if (b.length - pos > MAX_HEAD_BYTES) {
          this.fail(protocolError('response head too large'));
          return;
        }
        // A blank line with a bare LF: a head that will never end in CRLFCRLF (every LF of a valid head
        // follows a CR, so neither pattern can occur in one still incomplete). Fail now, not at the timeout.
        if (b.indexOf(LF_LF, pos) >= 0 || b.indexOf(LF_CRLF, pos) >= 0) {
          this.fail(protocolError('response head has bare LF line endings'));
          return;
        }
        this.keepHeadBytes(b, pos, buffered);
        return;
      }
      if (idx + 4 - pos > MAX_HEAD_BYTES) {
        this.fail(protocolError('response head too large'));
        return;
      }
      const parsed = parseResponseHead(b.toString('latin1', pos, idx + 2));
      if (typeof parsed === 'string') {
        this.fail(protocolError(parsed));
        return;
      }
      pos = idx + 4;
      from = pos;
      if (parsed.status >= 600) {
        // A client cannot be sent a status outside 100..599 (RFC 9110 section 15): the backend is broken.
        this.fail(protocolError(`status ${parsed.status} is outside 100..599`));
        return;
      }
      if (parsed.status >= 200) {
        head = parsed;
        break;
      }
      if (parsed.status === 101) {
        this.fail(protocolError('unexpected 101 switching protocols'));
        return;
      }
      // 100 Continue, 103 Early Hints, ...: skipped
    }
    // Body bytes in `b` may be views of the head buffer; it is dropped here, never written again.
    this.headBuf = null;
    this.headLen = 0;
    this.onHead(head, b, pos);
    if ((this.phase as number) !== P_BODY) return;
    if (pos < b.length) this.onBody(b, pos);
    // The body goes on over more reads: from now on an abort must be noticed at once.
    if ((this.phase as number) === P_BODY) this.listen();
  }

  /** Appends a read to the partial-head buffer (grown by doubling, so a head split in many reads costs O(n)). */
  private appendHead(buf: Buffer): Buffer {
    let hb = this.headBuf!;
    const len = this.headLen;
    const need = len + buf.length;
    if (need > hb.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, hb.length * 2));
      hb.copy(grown, 0, 0, len);
      hb = grown;
      this.headBuf = grown;
    }
    buf.copy(hb, len);
    this.headLen = need;
    return hb.subarray(0, need);
  }

  /** Keeps `b[pos..]`, an incomplete head, for the next read. */
  private keepHeadBytes(b: Buffer, pos: number, buffered: boolean): void {
    const n = b.length - pos;
    if (buffered) {
      // `b` is a view of the head buffer: move the unparsed rest to its front
      if (pos > 0) this.headBuf!.copyWithin(0, pos, pos + n);
      this.headLen = n;
      return;
    }
    const hb = Buffer.allocUnsafeSlow(Math.max(4096, n * 2));
    b.copy(hb, 0, pos);
    this.headBuf = hb;
    this.headLen = n;
  }

  /** The final head arrived; `b[pos..]` are the bytes after it. */
  private onHead(h: ResponseHead, b: Buffer, pos: number): void {
    this.disarm();
    if (this.req.signal.aborted) {
      this.fail(new SpookyError('client_aborted', 'request aborted'));
      return;
    }
    const s = h.status;
    const avail = b.length - pos;
    this.keepAlive = h.keepAlive;
    let mode = M_NONE;
    if (this.req.method === 'HEAD' || s === 204 || s === 304) mode = M_NONE;
    else if (h.chunked) mode = M_CHUNKED;
    else if (h.contentLength > 0) {
      mode = M_LENGTH;
      this.remaining = h.contentLength;
    } else if (h.contentLength < 0) {
      mode = M_EOF;
      this.keepAlive = false;
    }
    this.mode = mode;
    if (mode === M_NONE) {
      // Stray bytes after a body-less response, or a 204 whose head announces a body anyway: if the body came
      // after all, later bytes on this connection would be read as the next request's response, so it is not
      // reused. (On HEAD and 304 a length or chunked coding describes the representation, as RFC 9110 allows;
      // bytes that arrive on an idle connection, or before the next head was written, close it.)
      if (avail > 0 || (s === 204 && this.req.method !== 'HEAD' && (h.chunked || h.contentLength > 0))) this.keepAlive = false;
      this.phase = P_DONE;
      this.responseComplete();
      this.resolveFn({ status: s, headers: h.headers, body: null, version: '1.1' });
      return;
    }
    const cl = h.contentLength;
    if (mode === M_LENGTH && cl <= SMALL_BODY_BYTES && avail >= cl) {
      // The whole (small) body came with the head: hand it over as bytes, no stream (see the contract).
      if (avail > cl) this.keepAlive = false; // stray bytes after the body
      const body = pos === 0 && avail === cl ? b : view(b, pos, pos + cl);
      this.remaining = 0;
      this.phase = P_DONE;
      this.responseComplete();
      this.resolveFn({ status: s, headers: h.headers, body, version: '1.1' });
      return;
    }
    if (mode === M_CHUNKED) this.decoder = new ChunkedDecoder();
    this.phase = P_BODY;
    const body = new ReadableStream<Uint8Array>(this as Bun.UnderlyingSource<Uint8Array>, BODY_STRATEGY);
    this.resolveFn({ status: s, headers: h.headers, body, version: '1.1' });
  }

  private onBody(b: Buffer, pos: number): void {
    const end = b.length;
    switch (this.mode) {
      case M_LENGTH: {
        const avail = end - pos;
        const rem = this.remaining;
        if (avail < rem) {
          this.remaining = rem - avail;
          this.push(pos === 0 ? b : view(b, pos, end));
          return;
        }
        this.remaining = 0;
        this.push(pos === 0 && avail === rem ? b : view(b, pos, pos + rem));
        if (avail > rem) this.keepAlive = false;
        this.responseComplete();
        return;
      }
      case M_CHUNKED: {
        const r = this.decoder!.decode(b, pos, end, this);
        this.flushRun();
        if (r === DECODE_MORE) return;
        if (r === DECODE_ERROR) {
          this.fail(protocolError(this.decoder!.error));
          return;
        }
        if (r < end) this.keepAlive = false;
        this.responseComplete();
        return;
      }
      case M_EOF:
        this.push(pos === 0 ? b : view(b, pos, end));
        return;
    }
  }

  /**
   * {@link ChunkSink}: decoded chunk data. Short chunks (which {@link view} would copy one by one anyway) are
   * gathered and pushed as one copy when the read is decoded, or before the next long chunk: one read of many
   * tiny chunks becomes one array, not thousands. Long chunks go on as views, as before.
   */
  onBodyData(buf: Buffer, start: number, end: number): void {
    if (end - start > COPY_LIMIT) {
      this.flushRun();
      this.push(start === 0 && end === buf.length ? buf : view(buf, start, end));
      return;
    }
    if (this.runBuf !== buf) this.flushRun();
    this.runBuf = buf;
    (this.run ??= []).push(start, end);
    this.runBytes += end - start;
  }

  /** Pushes the short chunks gathered by {@link onBodyData}, as one array. */
  private flushRun(): void {
    const b = this.runBuf;
    if (b === null) return;
    const run = this.run as number[];
    const out = new Uint8Array(this.runBytes);
    let at = 0;
    for (let i = 0; i < run.length; i += 2) {
      const e = run[i + 1] as number;
      for (let j = run[i] as number; j < e; j++) out[at++] = b[j] as number;
    }
    this.runBuf = null;
    run.length = 0;
    this.runBytes = 0;
    this.push(out);
  }

  private push(chunk: Uint8Array): void {
    const ctl = this.controller;
    if (ctl === null || this.phase !== P_BODY) return;
    ctl.enqueue(chunk);
    if (ctl.desiredSize! <= 0) {
      const c = this.conn;
      if (c !== null && !c.paused && c.socket !== null) {
        c.paused = true;
        c.socket.pause();
      }
    }
  }

  /** ReadableStream source: keeps the controller. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.controller = controller;
  }

  /** ReadableStream source: the consumer wants more; resume reading if paused. */
  pull(): void {
    const c = this.conn;
    if (c?.paused && this.phase === P_BODY) {
      c.paused = false;
      c.socket!.resume();
    }
  }

  /** ReadableStream source: the consumer gave up; the connection cannot be reused. */
  cancel(): void {
    this.controller = null;
    if (this.phase === P_BODY) this.fail(new SpookyError('client_aborted', 'response body cancelled'));
  }

  /** The response was read to its end (or had no body). */
  private responseComplete(): void {
    this.phase = P_DONE;
    const ctl = this.controller;
    if (ctl !== null) {
      this.controller = null;
      ctl.close();
    }
    this.disarm();
    const c = this.conn;
    this.conn = null;
    if (c !== null) {
      c.ex = null;
      c.served++;
      if (c.paused) {
        c.paused = false;
        c.socket!.resume();
      }
      if (!this.reqDone || c.wq !== null) {
        // The backend answered before taking the whole upload: stop sending, drop the connection.
        c.kill(false);
      } else if (this.keepAlive) {
        this.t.release(c);
      } else {
        c.kill(true);
      }
    }
    this.stopUpload(undefined);
    this.end(undefined);
  }

  private stopUpload(err: SpookyError | undefined): void {
    const r = this.reader;
    if (r !== null) {
      this.reader = null;
      r.cancel(err).then(noop, noop);
    }
    this.onDrained();
  }

  /** Ends the exchange with an error: rejects or errors the body, destroys the connection. Idempotent. */
  fail(err: SpookyError): void {
    const prev = this.phase;
    if (prev === P_DONE) return;
    this.phase = P_DONE;
    this.disarm();
    if (prev === P_QUEUED) this.t.dequeue(this);
    const c = this.conn;
    this.conn = null;
    if (c !== null) {
      c.ex = null;
      c.kill(false);
    }
    if (prev === P_BODY) {
      const ctl = this.controller;
      if (ctl !== null) {
        this.controller = null;
        ctl.error(err);
      }
    } else {
      this.rejectFn(err);
    }
    this.stopUpload(err);
    this.end(err);
  }

  private end(err: SpookyError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    if (this.listening) this.req.signal.removeEventListener('abort', this);
    const cb = this.opts.onEnd;
    if (cb === undefined) return;
    try {
      cb(err);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }
}

/** The connections and state of one backend; {@link Http1Transport} is its public face. */
class Pool {
  /** `host:port`, for messages. */
  readonly label: string;
  /** True for HTTPS origins. */
  readonly isTls: boolean;
  /** True when TLS certificates must verify. */
  readonly rejectUnauthorized: boolean;
  /** True after {@link close}. */
  closed = false;
  /** Connections opened since start. */
  opened = 0;
  /** Established connections now. */
  openCount = 0;
  /** Idle connections now. */
  idleCount = 0;
  /** Connections connecting, active or idle now (what maxConnections limits, with {@link upgraded}). */
  total = 0;
  /** WebSocket connections open now (outside the pool, but inside maxConnections). */
  upgraded = 0;

  private readonly origin: Http1Origin;
  private readonly tlsOptions: TLSOptions | undefined;
  private readonly defaultHost: string;
  private readonly maxIdle: number;
  private readonly idleTimeoutMs: number;
  private readonly maxConnections: number;
  /** LIFO; entries whose state is no longer idle are skipped and swept out lazily. */
  private readonly idle: Conn[] = [];
  private readonly waiters: Exchange[] = [];
  /** Exchanges waiting for response headers (deadline: the header timeout). */
  readonly headerWait = new DeadlineList();
  /** Exchanges in their abort-listening grace period (deadline: grace over). */
  readonly graceWait = new DeadlineList();
  private sweepTimer: ReturnType<typeof setInterval> | null = null;

  constructor(origin: Http1Origin, opts: Http1PoolOptions) {
    this.origin = origin;
    this.isTls = origin.tls !== undefined;
    this.rejectUnauthorized = origin.tls?.rejectUnauthorized ?? false;
    this.label = `${origin.host}:${origin.port}`;
    const bracketed = origin.host.includes(':') ? `[${origin.host}]` : origin.host;
    const defaultPort = this.isTls ? 443 : 80;
    this.defaultHost = origin.port === defaultPort ? bracketed : `${bracketed}:${origin.port}`;
    if (origin.tls !== undefined) {
      const serverName = origin.tls.serverName ?? (isIp(origin.host) ? undefined : origin.host);
      this.tlsOptions = {
        rejectUnauthorized: origin.tls.rejectUnauthorized,
        ALPNProtocols: '\x08http/1.1',
        ...(serverName !== undefined ? { serverName } : {}),
        ...(origin.tls.ca !== undefined ? { ca: origin.tls.ca } : {}),
        ...(origin.tls.cert !== undefined && origin.tls.key !== undefined ? { cert: origin.tls.cert, key: origin.tls.key } : {}),
      };
    }
    this.maxIdle = opts.maxIdlePerBackend ?? 1024;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.maxConnections = opts.maxConnections ?? Number.POSITIVE_INFINITY;
  }

  request(req: UpstreamRequest, opts: ExchangeOptions): Promise<UpstreamResponse> {
    const ex = new Exchange(this, req, opts);
    if (this.closed) {
      ex.fail(new SpookyError('upstream_connect_failed', 'transport is closed', { retryable: true }));
      return ex.promise;
    }
    if (req.signal.aborted) {
      ex.fail(new SpookyError('client_aborted', 'request aborted'));
      return ex.promise;
    }
    let framing: number;
    const body = req.body;
    const cl = req.contentLength;
    if (cl !== undefined && !(Number.isSafeInteger(cl) && cl >= 0)) {
      ex.fail(new SpookyError('bad_request', 'invalid content-length'));
      return ex.promise;
    }
    if (body === null) {
      if (cl !== undefined && cl !== 0) {
        ex.fail(new SpookyError('bad_request', 'content-length declared without a body'));
        return ex.promise;
      }
      framing = cl === 0 || NEEDS_LENGTH.has(req.method) ? 0 : FRAMING_NONE;
    } else if (cl !== undefined) {
      framing = cl;
      ex.declared = cl;
    } else {
      framing = FRAMING_CHUNKED;
      ex.chunked = true;
    }
    if (req.method === 'CONNECT') {
      ex.fail(new SpookyError('bad_request', 'CONNECT is not supported upstream'));
      return ex.promise;
    }
    const head = serializeRequestHead(req.method, req.target, req.headers, framing, this.defaultHost);
    if (!head.ok) {
      ex.fail(new SpookyError('bad_request', head.reason));
      return ex.promise;
    }
    ex.head = head.head;
    this.acquire(ex, false);
    return ex.promise;
  }

  /** Finds a connection for `ex`: an idle one (unless `fresh`), a new one, or a place in the queue. */
  acquire(ex: Exchange, fresh: boolean): void {
    if (!fresh) {
      const c = this.popIdle();
      if (c !== null) {
        ex.attach(c);
        return;
      }
    }
    if (this.total + this.upgraded < this.maxConnections) {
      this.connect(ex);
      return;
    }
    this.waiters.push(ex);
    ex.arm(ex.opts.connectTimeoutMs, acquireTimedOut);
    ex.listen();
  }

  private popIdle(): Conn | null {
    const idle = this.idle;
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (c.state !== C_IDLE) continue;
      const s = c.socket;
      if (s === null || s.readyState <= 0) {
        c.kill(false);
        continue;
      }
      this.idleCount--;
      c.state = C_ACTIVE;
      return c;
    }
    return null;
  }

  private connect(ex: Exchange): void {
    const c = new Conn(this);
    c.ex = ex;
    ex.conn = c;
    this.total++;
    ex.arm(ex.opts.connectTimeoutMs, connectTimedOut);
    ex.listen();
    try {
      Bun.connect<Conn>({
        hostname: this.origin.host,
        port: this.origin.port,
        ...(this.tlsOptions !== undefined ? { tls: this.tlsOptions } : {}),
        data: c,
        socket: HANDLERS,
      }).then(undefined, (err: unknown) => c.onClose(err instanceof Error ? err : new Error(String(err))));
    } catch (err) {
      c.onClose(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** An exchange is done with `c` and it may be reused. */
  release(c: Conn): void {
    if (c.state !== C_ACTIVE) return;
    if (this.closed) {
      // Closing: a request that was already waiting still gets this connection; then it goes.
      const w = this.waiters.shift();
      if (w !== undefined) w.attach(c);
      else c.kill(true);
      return;
    }
    const w = this.waiters.shift();
    if (w !== undefined) {
      w.attach(c);
      return;
    }
    if (this.idleCount >= this.maxIdle) {
      c.kill(true);
      return;
    }
    c.state = C_IDLE;
    c.idleSince = performance.now();
    this.idle.push(c);
    this.idleCount++;
    if (this.sweepTimer === null) {
      const period = Math.max(10, Math.min(1000, this.idleTimeoutMs / 4));
      this.sweepTimer = setInterval(sweepPool, period, this);
      this.sweepTimer.unref();
    }
  }

  /** A connection slot became free: start a connection for the first waiter. */
  onSlotFreed(): void {
    if (this.closed) {
      // No connection is left that could serve the requests still waiting: they fail (retryable).
      if (this.total === 0) this.failWaiters();
      return;
    }
    if (this.waiters.length === 0 || this.total + this.upgraded >= this.maxConnections) return;
    const w = this.waiters.shift()!;
    this.connect(w);
  }

  /**
   * Takes a connection slot for a WebSocket: true when one is free, or an idle keep-alive connection could be
   * closed to free one. The caller gives it back with {@link releaseUpgrade} when the socket closes.
   */
  reserveUpgrade(): boolean {
    if (this.closed) return false;
    if (this.total + this.upgraded >= this.maxConnections) {
      const idle = this.popIdle();
      if (idle === null) return false;
      idle.kill(false); // its slot goes to the WebSocket
    }
    this.upgraded++;
    return true;
  }

  /** A WebSocket connection closed: its slot goes to the first waiter, if any. */
  releaseUpgrade(): void {
    this.upgraded--;
    this.onSlotFreed();
  }

  /** Removes a queued exchange (it failed while waiting). */
  dequeue(ex: Exchange): void {
    const i = this.waiters.indexOf(ex);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  /** Closes connections idle longer than idleTimeoutMs and compacts the idle list. */
  sweep(): void {
    const limit = performance.now() - this.idleTimeoutMs;
    const idle = this.idle;
    let w = 0;
    for (let i = 0; i < idle.length; i++) {
      const c = idle[i]!;
      if (c.state !== C_IDLE) continue;
      if (c.idleSince <= limit) {
        c.kill(true);
        continue;
      }
      idle[w++] = c;
    }
    idle.length = w;
    if (w === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  stats(): TransportStats {
    return { connectionsOpened: this.opened, connectionsOpen: this.openCount, connectionsIdle: this.idleCount };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
    const idle = this.idle.splice(0);
    for (const c of idle) if (c.state === C_IDLE) c.kill(true);
    // Requests already waiting for a connection are served by the connections still in use as they free up
    // (a reload that changes max_connections replaces the pool without failing them); with none, they fail.
    if (this.total === 0) this.failWaiters();
  }

  private failWaiters(): void {
    const waiters = this.waiters.splice(0);
    for (const w of waiters) w.fail(new SpookyError('upstream_connect_failed', 'transport is closed', { retryable: true }));
  }
}

function sweepPool(t: Pool): void {
  t.sweep();
}

/**
 * The HTTP/1.1 {@link Transport} of one backend: a keep-alive pool of `Bun.connect` sockets (LIFO idle list,
 * one sweep timer for idle timeouts) and a strict HTTP/1.1 client with streaming bodies and backpressure in
 * both directions. See the module comment for TLS and the HTTP/2 fallback. Idle keep-alive sockets keep the
 * process alive until {@link close} (or their idle timeout).
 */
export class Http1Transport implements Transport {
  private readonly pool: Pool;
  private readonly origin: Http1Origin;

  /** A pool for one backend; no connection is opened until the first request. */
  constructor(origin: Http1Origin, opts: Http1PoolOptions = {}) {
    this.origin = origin;
    this.pool = new Pool(origin, opts);
  }

  /**
   * Opens a WebSocket to this backend (see {@link Transport.openWebSocket}) on a connection outside the pool that
   * counts against `maxConnections` while it is open (an idle keep-alive connection is closed to make room).
   */
  openWebSocket(req: WebSocketRequest): Promise<WebSocketDial> {
    const pool = this.pool;
    if (!pool.reserveUpgrade())
      // Busy, not broken: `queue_full` is not charged to the backend's health (another backend is tried).
      return Promise.reject(
        new SpookyError('queue_full', `max_connections reached at ${this.origin.host}:${this.origin.port}: no connection free for a WebSocket`),
      );
    return holdWhileOpen(dialWebSocket(this.origin, req), () => pool.releaseUpgrade());
  }

  /**
   * Sends one request; resolves with the response head once it arrived. Rejects only with a SpookyError
   * (see {@link Transport.request}); `opts.onEnd` is called exactly once, also when this rejects. It may run
   * before the caller's `await` resumes. A response whose whole body (content-length up to
   * SMALL_BODY_BYTES) arrived together with the head gets `body` as a Uint8Array, and the exchange is already
   * over; a response with a content-length of 0 has `body: null`, like HEAD, 204 and 304 responses; any other
   * body is a stream.
   */
  request(req: UpstreamRequest, opts: ExchangeOptions): Promise<UpstreamResponse> {
    return this.pool.request(req, opts);
  }

  /** Counters: connections opened since start, open now, idle now. */
  stats(): TransportStats {
    return this.pool.stats();
  }

  /** Closes idle connections now and each active one when its exchange ends; later requests are refused. */
  close(): void {
    this.pool.close();
  }
}
