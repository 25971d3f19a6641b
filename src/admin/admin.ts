/**
 * The admin listener: plain HTTP, bound to 127.0.0.1 by default, never on the traffic port.
 * `/healthz` (process alive), `/readyz` (ready for traffic; 503 while starting or draining), `/status`
 * (JSON: generation, listeners, pools, backends with health and load, reload counts, audit trail) and
 * `POST /reload` (re-read the config file; answers with the result). An optional bearer token guards all.
 * `POST /reload` is refused when the request carries an `Origin` other than the admin listener's own, so a web
 * page open in the operator's browser cannot trigger it.
 * With the telemetry wired in: `/metrics`, `/stats`, `/config` and `/dashboard` (see {@link startAdmin}).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Server } from 'bun';
import { isLoopback } from '../config/parse.ts';
import type { AdminConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { bindFailureReason } from '../lib/bind-error.ts';
import type { AdminObservability } from '../observability/telemetry.ts';
import { parseAuthority } from '../proxy/request-target.ts';
import { DASHBOARD_HTML } from './dashboard.ts';

/** What the admin endpoints read from the running process. */
export interface AdminSource {
  /** True when listeners are bound, config loaded and first health checks done, and not draining. */
  ready(): boolean | Promise<boolean>;
  /** The /status document. */
  status(): unknown;
  /** Re-reads the config file (trigger `admin`); resolves with the result (`ok`, and `errors` when refused). */
  reload(trigger: 'admin', meta: { client?: string }): Promise<{ ok: boolean }>;
}

/**
 * Whether `req` carries `Authorization: Bearer <token>` (always true without a token). The scheme is
 * case-insensitive (RFC 9110 section 11.1); the token is compared in constant time (whatever its length), as
 * bytes: the header's as received (Bun hands them over one character per byte), the configured one in UTF-8.
 */
export function tokenOk(req: Request, token: string | undefined): boolean {
  if (!token) return true;
  const got = req.headers.get('authorization') ?? '';
  const space = got.indexOf(' ');
  if (space < 0 || got.slice(0, space).toLowerCase() !== 'bearer') return false;
  // Only SP and HTAB are trimmed: String.trim() would also strip 0xA0, the last byte of UTF-8 `à` or `†`.
  const a = Buffer.from(got.slice(space + 1).replace(/^[ \t]+|[ \t]+$/g, ''), 'latin1');
  const b = Buffer.from(token, 'utf8');
  // Compared as SHA-256 digests (equal lengths), so the time taken does not tell the token's length either.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/**
 * DNS-rebinding guard: a loopback admin listener answers only requests whose Host is `localhost` or an IP address
 * (with any port), or has no Host. A web page whose name an attacker re-pointed at 127.0.0.1 sends its own
 * name as Host, so it gets 403 instead of reloads and metrics; `Origin` checks alone cannot tell, because
 * such a page is same-origin with itself.
 */
export function adminHostAllowed(host: string | null): boolean {
  if (host === null || host === '') return true;
  const name = parseAuthority(host)?.host; // lower case, port and trailing dot removed, IPv6 in brackets
  return name !== undefined && (name === 'localhost' || name.startsWith('[') || isIP(name) === 4);
}

function json(value: unknown, status = 200): Response {
  return new Response(`${JSON.stringify(value, null, 2)}\n`, { status, headers: { 'content-type': 'application/json' } });
}

/**
 * Starts the admin listener. With `obs` it also serves `/metrics` (Prometheus), `/stats` (dashboard JSON),
 * `/config` (effective config, secrets redacted) and `/dashboard` (the live page; static HTML without data, so
 * it is served without the token and sends the token itself on its `/stats` requests). The port is bound
 * without `SO_REUSEPORT` (Bun sets it unless told not to), so a port any other socket holds, another Spooky's
 * admin or a traffic listener, is refused with a SpookyError instead of being shared at random.
 */
export function startAdmin(cfg: AdminConfig, source: AdminSource, obs?: AdminObservability): Server<unknown> {
  try {
    return serveAdmin(cfg, source, obs);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new SpookyError('config_invalid', `cannot listen on admin ${cfg.address}:${cfg.port}: ${bindFailureReason(e)} (${why})`, { cause: e });
  }
}

function serveAdmin(cfg: AdminConfig, source: AdminSource, obs?: AdminObservability): Server<unknown> {
  const reload = async (req: Request, server: Server<unknown>): Promise<Response> => {
    if (req.method !== 'POST') return new Response('405 method not allowed; use POST\n', { status: 405, headers: { allow: 'POST' } });
    const origin = req.headers.get('origin');
    if (origin !== null && origin !== new URL(req.url).origin) return new Response('403 cross-origin reload refused\n', { status: 403 });
    const result = await source.reload('admin', { client: server.requestIP(req)?.address ?? '' });
    return json(result, result.ok ? 200 : 422);
  };
  // The Host guard protects the loopback default from pages in the operator's browser. An admin listener
  // bound beyond loopback is reached by names the operator chooses (a scraper's service name): it takes any
  // Host, and its protection is `admin.token` (never sent by a browser on its own).
  const loopbackOnly = isLoopback(cfg.address);
  return Bun.serve({
    hostname: cfg.address,
    port: cfg.port,
    reusePort: false,
    development: false,
    async fetch(req, server) {
      if (loopbackOnly && !adminHostAllowed(req.headers.get('host')))
        return new Response('403 the admin listener answers only for localhost and IP addresses\n', { status: 403 });
      const path = new URL(req.url, 'http://admin').pathname;
      if (path !== '/reload' && req.method !== 'GET' && req.method !== 'HEAD')
        return new Response('405 method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } });
      if (obs && path === '/dashboard') {
        return new Response(DASHBOARD_HTML, {
          headers: {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            'x-frame-options': 'DENY',
            // the page may talk to this listener only, and load nothing from anywhere
            'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
          },
        });
      }
      if (!tokenOk(req, cfg.token)) return new Response('401 unauthorized\n', { status: 401, headers: { 'www-authenticate': 'Bearer' } });
      if (obs) {
        switch (path) {
          case '/metrics': {
            const m = await obs.metrics();
            return new Response(m.body, { headers: { 'content-type': m.contentType } });
          }
          case '/stats':
            return new Response(JSON.stringify(await obs.stats()), { headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
          case '/config':
            return json(await obs.config());
        }
      }
      switch (path) {
        case '/healthz':
          return new Response('ok\n');
        case '/readyz':
          return (await source.ready()) ? new Response('ready\n') : new Response('not ready\n', { status: 503 });
        case '/status':
          return json(await source.status());
        case '/reload':
          return reload(req, server);
        default:
          return new Response('404 not found\n', { status: 404 });
      }
    },
    error() {
      return new Response('500 internal error\n', { status: 500 });
    },
  });
}
