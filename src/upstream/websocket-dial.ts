/**
 * Opens a WebSocket (RFC 6455) to a backend with Bun's WebSocket client: `ws://` for a cleartext backend,
 * `wss://` with the backend's TLS policy (CA, SNI name, client certificate, verification) otherwise. The
 * handshake is always HTTP/1.1, whatever protocol the backend's ordinary requests use. Bun's client does the
 * framing, masking and ping/pong; this module turns its outcomes into Spooky's terms: open, refused with a
 * status, or a SpookyError.
 */
import { SpookyError } from '../errors.ts';
import type { UpstreamOrigin } from './http2.ts';
import type { WebSocketDial, WebSocketRequest } from './transport.ts';

/** Bun's message for a handshake answered with another status than 101. */
const REFUSED = /Expected 101 status code: (\d{3})/;

/** Bun's client option bag (its constructor takes headers, protocols and TLS options; not in the DOM type). */
interface BunWebSocketOptions {
  headers: Record<string, string>;
  protocols?: string[];
  tls?: { rejectUnauthorized: boolean; ca?: string; cert?: string; key?: string; serverName?: string };
}

/** The `ws://` or `wss://` URL of `target` on `origin` (IPv6 literals bracketed). */
export function webSocketUrl(origin: UpstreamOrigin, target: string): string {
  const host = origin.host.includes(':') ? `[${origin.host}]` : origin.host;
  return `${origin.tls ? 'wss' : 'ws'}://${host}:${origin.port}${target}`;
}

/**
 * Sends the handshake of `req` to `origin` and resolves once it is decided: `{ ok: true, socket }` with the
 * open socket (binary messages as ArrayBuffer), or `{ ok: false, status }` when the backend answered with
 * another status than 101. Rejects with `upstream_connect_failed` (retryable: no request was sent) when the
 * connection or its TLS handshake failed, `upstream_timeout` after `req.timeoutMs`, `upstream_protocol_error`
 * for an invalid handshake answer, `client_aborted` when `req.signal` fires first (the socket is closed), and
 * `bad_request` when Bun refuses to send the request's headers or subprotocols.
 */
export function dialWebSocket(origin: UpstreamOrigin, req: WebSocketRequest): Promise<WebSocketDial> {
  const headers: Record<string, string> = {};
  for (const [name, value] of req.headers) headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  const options: BunWebSocketOptions = { headers };
  if (req.protocols.length > 0) options.protocols = req.protocols;
  const tls = origin.tls;
  if (tls !== undefined) {
    options.tls = { rejectUnauthorized: tls.rejectUnauthorized };
    if (tls.ca !== undefined) options.tls.ca = tls.ca;
    if (tls.cert !== undefined && tls.key !== undefined) {
      options.tls.cert = tls.cert;
      options.tls.key = tls.key;
    }
    if (tls.serverName !== undefined) options.tls.serverName = tls.serverName;
  }
  const url = webSocketUrl(origin, req.target);
  return new Promise<WebSocketDial>((resolve, reject) => {
    if (req.signal.aborted) {
      reject(new SpookyError('client_aborted', 'the client went away before the WebSocket handshake'));
      return;
    }
    let socket: WebSocket;
    try {
      socket = new WebSocket(url, options as unknown as string[]);
    } catch (e) {
      // Bun checks the URL, headers and subprotocols here: what it refuses came from the request.
      reject(new SpookyError('bad_request', `WebSocket handshake not sendable: ${(e as Error).message}`, { cause: e }));
      return;
    }
    socket.binaryType = 'arraybuffer';
    let settled = false;
    const abandon = (): void => {
      if (!settle()) return;
      socket.close();
      reject(new SpookyError('client_aborted', 'the client went away during the WebSocket handshake'));
    };
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      req.signal.removeEventListener('abort', abandon);
      socket.onopen = null;
      socket.onerror = null;
      socket.onclose = null;
      return true;
    };
    const timer = setTimeout(() => {
      if (!settle()) return;
      socket.close();
      reject(new SpookyError('upstream_timeout', `no WebSocket handshake answer within ${req.timeoutMs} ms`));
    }, req.timeoutMs);
    req.signal.addEventListener('abort', abandon);
    socket.onopen = () => {
      if (settle()) resolve({ ok: true, socket });
    };
    const failed = (message: string) => {
      if (!settle()) return;
      const refused = REFUSED.exec(message);
      if (refused) resolve({ ok: false, status: Number(refused[1]) });
      else if (/Failed to connect|TLS handshake failed|ECONNREFUSED|connection refused/i.test(message))
        reject(new SpookyError('upstream_connect_failed', `WebSocket to ${url}: ${message}`, { retryable: true }));
      else reject(new SpookyError('upstream_protocol_error', `WebSocket handshake with ${url} failed: ${message}`));
    };
    socket.onerror = (e) => failed((e as ErrorEvent).message ?? 'error');
    socket.onclose = (e) => failed(`closed during the handshake (code ${e.code})`);
  });
}

/**
 * `dial` with a connection slot held while its socket is open: `release` runs once, when the socket closes, or
 * at once when the dial failed or the backend refused the upgrade.
 */
export function holdWhileOpen(dial: Promise<WebSocketDial>, release: () => void): Promise<WebSocketDial> {
  return dial.then(
    (d) => {
      if (d.ok) d.socket.addEventListener('close', release, { once: true });
      else release();
      return d;
    },
    (e: unknown) => {
      release();
      throw e;
    },
  );
}
