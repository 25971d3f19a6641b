/**
 * The admin listener: plain HTTP, bound to 127.0.0.1 by default, never on the traffic port.
 * `/healthz` (process alive), `/readyz` (ready for traffic; 503 while starting or draining) and `/status`
 * (JSON: generation, listeners, pools, backends with health and load). An optional bearer token guards all.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Server } from 'bun';
import type { AdminConfig } from '../config/types.ts';

/** What the admin endpoints read from the running process. */
export interface AdminSource {
  /** True when listeners are bound, config loaded and first health checks done, and not draining. */
  ready(): boolean;
  /** The /status document. */
  status(): unknown;
}

function tokenOk(req: Request, token: string | undefined): boolean {
  if (!token) return true;
  const got = req.headers.get('authorization') ?? '';
  const want = `Bearer ${token}`;
  const a = Buffer.from(got);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

function json(value: unknown, status = 200): Response {
  return new Response(`${JSON.stringify(value, null, 2)}\n`, { status, headers: { 'content-type': 'application/json' } });
}

/** Starts the admin listener. */
export function startAdmin(cfg: AdminConfig, source: AdminSource): Server<unknown> {
  return Bun.serve({
    hostname: cfg.address,
    port: cfg.port,
    development: false,
    fetch(req) {
      if (!tokenOk(req, cfg.token)) return new Response('401 unauthorized\n', { status: 401, headers: { 'www-authenticate': 'Bearer' } });
      const path = new URL(req.url, 'http://admin').pathname;
      switch (path) {
        case '/healthz':
          return new Response('ok\n');
        case '/readyz':
          return source.ready() ? new Response('ready\n') : new Response('not ready\n', { status: 503 });
        case '/status':
          return json(source.status());
        default:
          return new Response('404 not found\n', { status: 404 });
      }
    },
    error() {
      return new Response('500 internal error\n', { status: 500 });
    },
  });
}
