/** Baseline (a): a Bun HTTP/3 server that answers by itself. Prints `{"port":N}` when ready. */
const [cert = '', key = ''] = process.argv.slice(2);
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  tls: { cert: Bun.file(cert), key: Bun.file(key) },
  http3: true,
  development: false,
  fetch: () => new Response('hello from the backend\n'),
});
console.log(JSON.stringify({ port: server.port }));
