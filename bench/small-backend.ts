/** A small-response backend for benchmarks: `bun bench/small-backend.ts http1|h2c`. Prints `{"port":N}`. */
const mode = process.argv[2] ?? 'http1';
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  development: false,
  http2: mode === 'h2c',
  http1: mode !== 'h2c',
  fetch: () => new Response('hello from the backend\n'),
});
console.log(JSON.stringify({ port: server.port }));
