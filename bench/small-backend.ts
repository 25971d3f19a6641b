/**
 * A backend for benchmarks: `bun bench/small-backend.ts http1|h2c [HTML_BYTES]`. Prints `{"port":N}`. Answers a
 * short plain-text line, or with HTML_BYTES an HTML page of about that size (text that compresses as pages do).
 */
const mode = process.argv[2] ?? 'http1';
const htmlBytes = Number(process.argv[3] ?? 0);
const words = ['proxy', 'backend', 'route', 'stream', 'header', 'quic', 'latency', 'pool', 'health', 'config'];
let html = '<!doctype html><html><head><title>bench</title></head><body>';
for (let i = 0; html.length < htmlBytes; i++) html += `<p class="row-${i % 7}">${words[i % 10]} ${i} ${words[(i * 3) % 10]} item</p>\n`;
const page = `${html}</body></html>`;
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  development: false,
  http2: mode === 'h2c',
  http1: mode !== 'h2c',
  fetch: () =>
    htmlBytes > 0 ? new Response(page, { headers: { 'content-type': 'text/html; charset=utf-8' } }) : new Response('hello from the backend\n'),
});
console.log(JSON.stringify({ port: server.port }));
