/**
 * A real backend for integration tests, run as its own process:
 *   bun test/support/backend-server.ts --name a [--port N] [--protocol http1|h2c|h2] [--cert F --key F]
 * Prints one JSON line `{"event":"ready","port":N}` when listening. Endpoints (matched at the end of the path,
 * so a route prefix in front does not matter: `/api/health` is `/health`):
 *   /health           200 "ok" (or 503 after POST /admin/unhealthy, 200 again after POST /admin/healthy)
 *   /big?bytes=N      N bytes of body, streamed in 64 KiB chunks
 *   /upload           (POST) counts the streamed request body, answers {"bytes":N}
 *   /slow?ms=N        answers after N ms
 *   /status/N         answers with status N
 *   /hang             never answers
 *   /stall            sends the headers and one chunk, then nothing more
 *   /stats            {"requests":N}: requests served so far, other than /stats, /health and /admin/*
 *   /admin/fail?status=N  (POST) from now on answers N to every other request; status 0 turns it off
 *   /interop/page     an HTML page with 20 images from /interop/res/N.svg that reports, once loaded, each
 *                     resource's nextHopProtocol and serving backend (Server-Timing) into <pre id="result">
 *   anything else     JSON echo: backend name, method, path, headers
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'backend' },
    port: { type: 'string', default: '0' },
    protocol: { type: 'string', default: 'http1' },
    cert: { type: 'string' },
    key: { type: 'string' },
  },
});
const name = values.name as string;
let healthy = true;
let failStatus = 0;
let served = 0;
const CHUNK = new Uint8Array(64 * 1024).fill(120);

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4" fill="orange"/></svg>';
const images = Array.from({ length: 20 }, (_, i) => `<img src="/interop/res/${i}.svg">`).join('');
const INTEROP_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>interop</title></head><body>${images}
<pre id="result">pending</pre>
<script>
window.addEventListener('load', () => {
  const entries = performance.getEntriesByType('resource').filter((e) => e.name.includes('/interop/res/'));
  const nav = performance.getEntriesByType('navigation')[0];
  const pick = (e) => ({ name: new URL(e.name).pathname, protocol: e.nextHopProtocol, backend: (e.serverTiming.find((t) => t.name === 'backend') || {}).description || null });
  document.getElementById('result').textContent = JSON.stringify({ page: pick(nav), resources: entries.map(pick) });
});
</script></body></html>`;

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(values.port),
  development: false,
  http2: values.protocol !== 'http1',
  http1: values.protocol !== 'h2c',
  ...(values.protocol === 'h2' ? { tls: { cert: Bun.file(values.cert as string), key: Bun.file(values.key as string) } } : {}),
  idleTimeout: 60,
  async fetch(req) {
    const url = new URL(req.url);
    const full = url.pathname;
    const m =
      /\/(health|admin\/unhealthy|admin\/healthy|admin\/fail|stats|hang|stall|big|upload|slow|cookies|status\/\d+|interop\/page|interop\/res\/[^/]*)$/.exec(
        full,
      );
    const p = m ? `/${m[1]}` : full;
    if (p === '/stats') return Response.json({ backend: name, requests: served });
    if (p === '/admin/fail') {
      failStatus = Number(url.searchParams.get('status') ?? '0');
      return new Response('ok');
    }
    if (p !== '/health' && !p.startsWith('/admin/')) {
      served++;
      if (failStatus > 0) {
        if (req.body) await req.arrayBuffer();
        return new Response(`failing with ${failStatus} from ${name}`, { status: failStatus, headers: { 'x-backend': name } });
      }
    }
    if (p === '/hang') return new Promise<Response>(() => {});
    if (p === '/stall') {
      return new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode('first chunk\n'));
          },
          pull() {
            return new Promise<void>(() => {});
          },
        }),
        { headers: { 'x-backend': name } },
      );
    }
    if (p === '/health') return new Response(healthy ? 'ok' : 'down', { status: healthy ? 200 : 503 });
    if (p === '/admin/unhealthy') {
      healthy = false;
      return new Response('ok');
    }
    if (p === '/admin/healthy') {
      healthy = true;
      return new Response('ok');
    }
    if (p === '/big') {
      let left = Number(url.searchParams.get('bytes') ?? '0');
      return new Response(
        new ReadableStream<Uint8Array>(
          {
            pull(c) {
              if (left <= 0) return c.close();
              const n = Math.min(left, CHUNK.length);
              left -= n;
              c.enqueue(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
            },
          },
          { highWaterMark: 0 },
        ),
        { headers: { 'x-backend': name } },
      );
    }
    if (p === '/upload') {
      let bytes = 0;
      if (req.body) for await (const c of req.body) bytes += c.byteLength;
      return Response.json({ backend: name, bytes }, { headers: { 'x-backend': name } });
    }
    if (p === '/slow') {
      await Bun.sleep(Number(url.searchParams.get('ms') ?? '1000'));
      return new Response(`slow from ${name}`, { headers: { 'x-backend': name } });
    }
    if (p === '/interop/page')
      return new Response(INTEROP_PAGE, { headers: { 'content-type': 'text/html; charset=utf-8', 'server-timing': `backend;desc="${name}"` } });
    if (p.startsWith('/interop/res/')) {
      return new Response(SVG, {
        headers: { 'content-type': 'image/svg+xml', 'cache-control': 'no-store', 'server-timing': `backend;desc="${name}"` },
      });
    }
    if (p === '/cookies') {
      // Two Set-Cookie lines (one with a comma in it) and a field sent twice, for the response header tests.
      const h = new Headers({ 'x-backend': name });
      h.append('set-cookie', 'a=1; Path=/');
      h.append('set-cookie', 'b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT');
      h.append('cache-control', 'no-cache');
      h.append('cache-control', 'no-store');
      return new Response('cookies', { headers: h });
    }
    if (p.startsWith('/status/')) {
      const status = Number(p.slice(8));
      return new Response(status === 204 || status === 304 ? null : `status ${status} from ${name}`, { status, headers: { 'x-backend': name } });
    }
    const body = req.body ? await req.text() : '';
    return Response.json(
      { backend: name, method: req.method, path: full + url.search, headers: Object.fromEntries(req.headers), body },
      { headers: { 'x-backend': name, 'set-cookie': 'a=1' } },
    );
  },
});
console.log(JSON.stringify({ event: 'ready', port: server.port, name }));
process.on('SIGTERM', () => {
  server.stop(true);
  process.exit(0);
});
