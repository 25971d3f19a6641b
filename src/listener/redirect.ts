/**
 * The plain-HTTP redirect listener (`http_redirect`): every request on it gets `308 Permanent Redirect` to the
 * same host and target over HTTPS on Spooky's TLS port, as Caddy does by default and nginx with
 * `return 301 https://$host$request_uri`. 308 keeps the method and body, unlike 301. Nothing is proxied on it.
 */
import type { Server } from 'bun';
import type { HttpRedirectConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { parseRequestTarget } from '../proxy/request-target.ts';

/** One answered request, for the access log. */
export interface RedirectRecord {
  /** Client address. */
  client: string;
  /** Method. */
  method: string;
  /** Routing host (lower case, no port), '' when it was invalid. */
  host: string;
  /** Normalised path, '' when the target was invalid. */
  path: string;
  /** 308, 400 for a request without a valid Host or target, 414 for a target over `limits.max_uri_bytes`. */
  status: number;
  /** Why a 400 or 414 was given. */
  error_detail?: string;
}

/**
 * The answer to `req` on the redirect listener: 308 with `Location: https://host[:httpsPort]/target` (the port is
 * left out when it is 443), 400 when the Host header or the target is invalid (a redirect to a host the request
 * did not validly name would be made up), or 414 for a target over `maxUriBytes`.
 */
export function redirectAnswer(
  req: Request,
  httpsPort: number,
  maxUriBytes: number,
): { response: Response; host: string; path: string; error?: string } {
  const target = parseRequestTarget(req.url, req.headers.get('host'), req.method);
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  // A request with a body is answered without reading it; the connection closes after the answer.
  if (req.headers.has('content-length') || req.headers.has('transfer-encoding')) headers.connection = 'close';
  if (!target.ok) return { response: new Response('400 bad request\n', { status: 400, headers }), host: '', path: '', error: target.reason };
  if (target.target.length > maxUriBytes)
    return {
      response: new Response('414 request target too long\n', { status: 414, headers }),
      host: target.host,
      path: target.path.slice(0, 256),
      error: `request target of ${target.target.length} bytes (limits.max_uri_bytes)`,
    };
  const location = `https://${target.host}${httpsPort === 443 ? '' : `:${httpsPort}`}${target.target === '*' ? '/' : target.target}`;
  headers.location = location;
  return { response: new Response(`308 ${location}\n`, { status: 308, headers }), host: target.host, path: target.path };
}

/**
 * Binds the redirect listener of `cfg` (with `SO_REUSEPORT`, so a reload can bind the new one before the old one
 * goes, and workers share the port); `httpsPort()` gives the port to send clients to and `maxUriBytes()` the
 * longest target, both read per request. Throws a `config_invalid` SpookyError when the port cannot be bound.
 */
export function startRedirect(
  cfg: HttpRedirectConfig,
  address: string,
  httpsPort: () => number,
  maxUriBytes: () => number,
  onAnswer: (rec: RedirectRecord) => void,
): Server<unknown> {
  try {
    return Bun.serve({
      hostname: address,
      port: cfg.port,
      reusePort: true,
      development: false,
      // Not 0: Bun would answer a request with a body 413 itself. The body is never read (see redirectAnswer).
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      fetch(req, server) {
        const a = redirectAnswer(req, httpsPort(), maxUriBytes());
        const rec: RedirectRecord = {
          client: server.requestIP(req)?.address ?? '',
          method: req.method,
          host: a.host,
          path: a.path,
          status: a.response.status,
        };
        if (a.error !== undefined) rec.error_detail = a.error;
        onAnswer(rec);
        return a.response;
      },
      error: () => new Response('500 internal error\n', { status: 500 }),
    });
  } catch (e) {
    throw new SpookyError('config_invalid', `cannot listen for http_redirect on ${address}:${cfg.port}: ${(e as Error).message}`, { cause: e });
  }
}
