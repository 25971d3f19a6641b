/**
 * Baselines for the proxy benchmark: a Bun HTTP/3 server that answers by itself.
 * `bun bench/direct-h3.ts CERT KEY [sync|async]`: `sync` answers from the handler at once; `async` answers
 * after one event-loop turn (`setTimeout(0)`), as any proxy must while it waits for its backend.
 * Prints `{"port":N}` when ready.
 */
const [cert = '', key = '', mode = 'sync'] = process.argv.slice(2);
const body = new TextEncoder().encode('hello from the backend\n');
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  tls: { cert: Bun.file(cert), key: Bun.file(key) },
  http3: true,
  http1: false,
  http2: false,
  development: false,
  fetch:
    mode === 'async'
      ? () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response(body)), 0))
      : () => new Response(body),
});
console.log(JSON.stringify({ port: server.port }));
