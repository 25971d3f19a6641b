/**
 * WebSocket proxying (RFC 6455) on the TCP listener: an HTTP/1.1 `GET` with `Upgrade: websocket` is routed like
 * any request, the backend's WebSocket is opened first (see `upstream/websocket-dial.ts`), and only then is the
 * client's connection upgraded, so a backend that refuses or cannot be reached gives the client a plain HTTP
 * answer. A {@link WebSocketTunnel} then relays messages both ways until either side closes, and carries the
 * close code across. HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220) WebSockets are not offered: Bun's servers have no
 * extended CONNECT, and browsers fall back to HTTP/1.1 for WebSockets.
 */
import type { Server, ServerWebSocket, WebSocketHandler } from 'bun';
import { asSpookyError, SpookyError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import { isToken } from '../lib/http-syntax.ts';
import type { HeaderLookup } from '../lib/request-fields.ts';
import type { RequestRecord } from '../observability/access-log.ts';
import type { PoolRuntime } from '../runtime/generation.ts';
import type { PoolMember } from '../upstream/endpoint.ts';
import type { WebSocketDial } from '../upstream/transport.ts';
import { connectionTokens, hostForAttempt } from './headers.ts';

/** Largest message accepted from a client, in bytes (Bun closes the connection with 1009 above it): 16 MiB. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/**
 * Bytes that may wait to be sent to one side (the client's send queue in Bun, or the backend socket's
 * `bufferedAmount`) before the session is closed with 1013 ("try again later"): 16 MiB. Neither of Bun's
 * WebSocket ends can pause reading, so this bounds what a slow reader can make Spooky hold.
 */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** Seconds without traffic before Bun pings the client (and closes the connection if the ping goes unanswered). */
export const IDLE_TIMEOUT_S = 120;

/** Close codes an endpoint may send (RFC 6455 section 7.4): 1000-1003, 1007-1014, 3000-4999. */
function sendable(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** True when the comma-separated header value `value` lists `token` (lower case), in any case. */
function listsToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  const tokens: string[] = [];
  connectionTokens(value, tokens);
  return tokens.includes(token);
}

/**
 * True for a WebSocket opening handshake (RFC 6455 section 4.1): `GET` with `websocket` among the `Upgrade`
 * tokens and `upgrade` among the `Connection` tokens. Other upgrades (h2c, TLS) are not followed: their
 * headers are removed as hop-by-hop and the request is forwarded as a plain one.
 */
export function isWebSocketUpgrade(method: string, fields: Pick<HeaderLookup, 'get'>): boolean {
  return method === 'GET' && listsToken(fields.get('upgrade'), 'websocket') && listsToken(fields.get('connection'), 'upgrade');
}

/** A `Sec-WebSocket-Key`: base64 of 16 bytes (RFC 6455 section 4.1). */
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * What is wrong with a client's opening handshake, checked before any backend is contacted: a key that is
 * not base64 of 16 bytes, a version other than 13, or a `Sec-WebSocket-Protocol` that is not a list of distinct
 * tokens. Undefined when it is sound.
 */
export function handshakeProblem(fields: Pick<HeaderLookup, 'get'>): string | undefined {
  if (!KEY.test(fields.get('sec-websocket-key') ?? '')) return 'missing or invalid Sec-WebSocket-Key';
  if ((fields.get('sec-websocket-version') ?? '').trim() !== '13') return 'unsupported Sec-WebSocket-Version (13 is supported)';
  const offered = fields.get('sec-websocket-protocol');
  if (offered !== null) {
    const names = offered.split(',').map((p) => p.trim());
    // Distinct regardless of case: Bun's WebSocket client refuses `chat, CHAT`.
    // Each an RFC 9110 token (RFC 6455 section 4.1).
    if (names.some((n) => !isToken(n)) || new Set(names.map((n) => n.toLowerCase())).size !== names.length)
      return 'invalid Sec-WebSocket-Protocol (a list of distinct tokens)';
  }
  return undefined;
}

/** Handshake fields Bun's WebSocket client makes itself; never copied from the client's request. */
const HANDSHAKE_FIELDS = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

/**
 * The headers of the backend handshake and the offered subprotocols: `headers` (already cleaned of hop-by-hop
 * fields, with the forwarding fields set) without the client's handshake fields, and the tokens of its
 * `Sec-WebSocket-Protocol` (offered to the backend in the client's order).
 */
export function handshakeFields(
  headers: readonly [string, string][],
  fields: Pick<HeaderLookup, 'get'>,
): { headers: [string, string][]; protocols: string[] } {
  const protocols = (fields.get('sec-websocket-protocol') ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  return { headers: headers.filter((h) => !HANDSHAKE_FIELDS.has(h[0])), protocols };
}

/** How a session ended, for its access-log line. */
export interface TunnelEnd {
  /** Message payload bytes from the client to the backend. */
  bytesIn: number;
  /** Message payload bytes from the backend to the client. */
  bytesOut: number;
  /** Who closed first. */
  closedBy: 'client' | 'backend' | 'spooky';
  /** The close code that side gave (1005: none, 1006: the connection broke without a close frame). */
  code: number;
  /** Set when the session did not end with a close handshake: the failure to log. */
  error?: SpookyError;
}

const open = new Set<WebSocketTunnel>();

/**
 * One proxied WebSocket session: the backend socket (Bun's client) and, once upgraded, the client's
 * ServerWebSocket. Messages from the backend that arrive before the upgrade completes are queued.
 */
export class WebSocketTunnel {
  private client: ServerWebSocket<WebSocketTunnel> | null = null;
  private early: (string | ArrayBuffer)[] | null = [];
  /** A close decided before the client's connection was upgraded: sent once it is (after the early messages). */
  private pendingClose: { code?: number; reason?: string } | null = null;
  private bytesIn = 0;
  private bytesOut = 0;
  private ended = false;

  /** Relays between `backend` (open) and the client of `server` once upgraded; `onEnd` runs once at the end. */
  constructor(
    private readonly backend: WebSocket,
    /** The TCP server the client is on (for closing the sessions of one listener). */
    readonly server: Server<unknown>,
    private readonly onEnd: (end: TunnelEnd) => void,
  ) {
    open.add(this);
    backend.onmessage = (e: MessageEvent) => this.fromBackend(e.data as string | ArrayBuffer);
    backend.onclose = (e: CloseEvent) => this.backendClosed(e.code, e.reason);
    backend.onerror = () => {}; // a close event follows
  }

  /** The client's connection is upgraded: deliver what the backend sent meanwhile, and a close decided meanwhile. */
  opened(ws: ServerWebSocket<WebSocketTunnel>): void {
    this.client = ws;
    const early = this.early ?? [];
    this.early = null;
    for (const m of early) ws.send(m);
    const pending = this.pendingClose;
    if (pending !== null) ws.close(pending.code, pending.reason);
  }

  /** Closes the client's side now, or once it is upgraded. */
  private closeClient(code?: number, reason?: string): void {
    if (this.client !== null) this.client.close(code, reason);
    else this.pendingClose = { ...(code !== undefined ? { code } : {}), ...(reason !== undefined ? { reason } : {}) };
  }

  private fromBackend(m: string | ArrayBuffer): void {
    if (this.ended) return;
    this.bytesOut += typeof m === 'string' ? Buffer.byteLength(m) : m.byteLength;
    if (this.early !== null) this.early.push(m);
    else this.toClient(m);
  }

  private toClient(m: string | ArrayBuffer): void {
    const ws = this.client;
    if (ws === null || this.ended) return;
    ws.send(m);
    if (ws.getBufferedAmount() > MAX_QUEUED_BYTES)
      this.endBoth(
        'spooky',
        1013,
        'client too slow',
        new SpookyError('client_timeout', 'the client did not read its WebSocket messages (16 MiB queued)'),
      );
  }

  /** A message from the client. */
  fromClient(m: string | Buffer): void {
    if (this.ended) return;
    this.bytesIn += typeof m === 'string' ? Buffer.byteLength(m) : m.byteLength;
    this.backend.send(m);
    if (this.backend.bufferedAmount > MAX_QUEUED_BYTES)
      this.endBoth(
        'spooky',
        1013,
        'backend too slow',
        new SpookyError('upstream_timeout', 'the backend did not read its WebSocket messages (16 MiB queued)'),
      );
  }

  /** The client closed (or its connection broke: 1006). */
  clientClosed(code: number, reason: string): void {
    if (this.ended) return;
    this.finish({ closedBy: 'client', code });
    // A client that vanished (1006) is a "going away" for the backend.
    if (sendable(code)) this.backend.close(code, reason);
    else if (code === 1005) this.backend.close();
    else this.backend.close(1001, 'client went away');
  }

  private backendClosed(code: number, reason: string): void {
    if (this.ended) return;
    const broke = code === 1006;
    this.finish(
      broke
        ? { closedBy: 'backend', code, error: new SpookyError('upstream_reset', 'the backend WebSocket connection broke without a close frame') }
        : { closedBy: 'backend', code },
    );
    if (sendable(code)) this.closeClient(code, reason);
    else if (code === 1005) this.closeClient();
    else this.closeClient(1014, 'backend connection broke'); // 1014: bad gateway
  }

  /** Closes both sides with `code` (Spooky's decision: shutdown, a slow reader). */
  endBoth(by: TunnelEnd['closedBy'], code: number, reason: string, error?: SpookyError): void {
    if (this.ended) return;
    this.finish(error ? { closedBy: by, code, error } : { closedBy: by, code });
    this.backend.close(code, reason);
    this.closeClient(code, reason);
  }

  private finish(end: Pick<TunnelEnd, 'closedBy' | 'code' | 'error'>): void {
    this.ended = true;
    open.delete(this);
    this.onEnd({ ...end, bytesIn: this.bytesIn, bytesOut: this.bytesOut });
  }
}

/** The `websocket` handlers of the TCP listener's Bun server: every session's data is its tunnel. */
export const TUNNEL_HANDLERS: WebSocketHandler<WebSocketTunnel> = {
  maxPayloadLength: MAX_MESSAGE_BYTES,
  idleTimeout: IDLE_TIMEOUT_S,
  backpressureLimit: MAX_QUEUED_BYTES,
  closeOnBackpressureLimit: true,
  perMessageDeflate: false,
  sendPings: true,
  open(ws) {
    ws.data.opened(ws);
  },
  message(ws, message) {
    ws.data.fromClient(message);
  },
  close(ws, code, reason) {
    ws.data.clientClosed(code, reason);
  },
};

/**
 * Closes every open session (of `server` only, when given) with `code` and `reason` on both sides, as
 * Spooky's decision (1001 "going away" at shutdown). Returns how many were open.
 */
export function closeTunnels(code: number, reason: string, server?: Server<unknown>): number {
  let n = 0;
  for (const t of [...open]) {
    if (server !== undefined && t.server !== server) continue;
    n++;
    t.endBoth('spooky', code, reason);
  }
  return n;
}

/** Sessions open now. */
export function openTunnels(): number {
  return open.size;
}

/** What {@link forwardWebSocket} needs from the request path (the handler's state and callbacks). */
export interface WebSocketForward {
  /** The client's handshake request. */
  req: Request;
  /** The TCP server it came on (for the upgrade). */
  server: Server<unknown>;
  /** Its header fields. */
  fields: Pick<HeaderLookup, 'get'>;
  /** The cleaned upstream request headers (hop-by-hop removed, forwarding fields set, route rules applied). */
  headers: [string, string][];
  /** The origin-form target for the backend (rewritten when the route says so). */
  target: string;
  /** The routed pool. */
  pool: PoolRuntime;
  /** The request id (sent to the client). */
  requestId: string;
  /** `Alt-Svc` value for answers over TCP. */
  altSvc: string | undefined;
  /** The request's access-log record (attempts, backend, bytes and the close are filled in). */
  rec: RequestRecord;
  /** Time source. */
  clock: Clock;
  /** Milliseconds the backend connect plus handshake may take. */
  timeoutMs: number;
  /** The first backend to try. */
  pick(): PoolMember | undefined;
  /** Another backend after `tried` failed to connect with `err`, if the retry policy allows one. */
  retry(tried: PoolMember, err: SpookyError | undefined): PoolMember | undefined;
  /** Ends the request with an error answer (and its log line). */
  fail(err: SpookyError, extra?: Record<string, string>): Response;
  /** Writes the request's log line with `status`. */
  finish(status: number, error?: SpookyError): void;
}

/**
 * Forwards a WebSocket handshake (see the module comment): checks it, opens the backend's socket (another backend
 * when the connect fails), then upgrades the client and starts the tunnel. Resolves with undefined once upgraded
 * (Bun answers 101), else with the answer to send: 400 for an unsound handshake, the backend's refusal status,
 * or the error's status.
 */
export async function forwardWebSocket(f: WebSocketForward): Promise<Response | undefined> {
  const { req, rec, clock, pool } = f;
  const problem = handshakeProblem(f.fields);
  if (problem !== undefined) return f.fail(new SpookyError('bad_request', problem), { 'sec-websocket-version': '13' });
  const handshake = handshakeFields(f.headers, f.fields);
  let lastError: SpookyError | undefined;
  let member = f.pick();
  for (;;) {
    if (!member) return f.fail(lastError ?? new SpookyError('no_healthy_backend', `pool ${pool.name} has no available backend`));
    rec.attempts++;
    rec.backend = member.id;
    const endpoint = member.endpoint;
    const startedAt = endpoint.begin();
    let dial: WebSocketDial;
    try {
      dial = await endpoint.transport.openWebSocket({
        target: f.target,
        headers: hostForAttempt(handshake.headers, pool.config.host_policy, endpoint.authority),
        protocols: handshake.protocols,
        timeoutMs: f.timeoutMs,
        signal: req.signal,
      });
    } catch (e) {
      const err = asSpookyError(e);
      endpoint.end(startedAt, err.code === 'upstream_timeout' ? clock.now() : undefined, err, 0);
      lastError = err;
      // A connect failure, or a backend whose max_connections are all in use: another backend may take it.
      // (A full backend is retried like any idempotent GET: nothing was sent.)
      if (err.code === 'queue_full') member = f.retry(member, undefined);
      else member = err.code === 'upstream_connect_failed' && err.retryable ? f.retry(member, err) : undefined;
      if (member) continue;
      return f.fail(err);
    }
    const at = clock.now();
    if (!dial.ok) {
      // The backend answered the handshake with another status (401, 403, 404, ...): passed on, body-less.
      endpoint.end(startedAt, at, undefined, dial.status);
      f.finish(dial.status);
      const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'x-request-id': f.requestId };
      if (f.altSvc) headers['alt-svc'] = f.altSvc;
      return new Response(`${dial.status} the backend refused the WebSocket upgrade\n`, { status: dial.status, headers });
    }
    const up = dial.socket;
    let upgraded = false;
    const tunnel = new WebSocketTunnel(up, f.server, (end) => {
      endpoint.end(startedAt, at, undefined, 101);
      if (!upgraded) return; // the refusal below is this request's log line
      rec.bytes_in = end.bytesIn;
      rec.bytes_out = end.bytesOut;
      rec.websocket_close = { by: end.closedBy, code: end.code };
      f.finish(101, end.error);
    });
    const headers: Record<string, string> = { 'x-request-id': f.requestId };
    if (up.protocol !== '') headers['sec-websocket-protocol'] = up.protocol;
    upgraded = !req.signal.aborted && f.server.upgrade(req, { data: tunnel, headers });
    if (!upgraded) {
      tunnel.endBoth('spooky', 1001, 'client gone');
      return f.fail(
        req.signal.aborted
          ? new SpookyError('client_aborted', 'the client went away during the WebSocket handshake')
          : new SpookyError('bad_request', 'invalid WebSocket handshake'),
      );
    }
    return undefined;
  }
}
