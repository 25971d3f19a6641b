/**
 * A bare Bun HTTP/3 server that forwards every request through one of Spooky's upstream transports, with none
 * of Spooky's request path: `bun bench/transport-h3.ts CERT KEY http1|h2c BACKEND_PORT`. Prints `{"port":N}`.
 *
 * Each request is sent to the backend with a fixed, typical proxied header set ({@link typicalProxyHeaders});
 * the answer is passed on with the backend's headers plus `via`, and the answers of one event-loop turn are
 * handed to Bun together (`nextBatch`), as Spooky does. So `bench/proxy.ts` can split Spooky's CPU per request
 * into this (Bun's HTTP/3 server, the transport, the upstream syscalls, the response) and the rest, which is
 * Spooky's request path: target parsing, routing, header hygiene, trace context, metrics, logging hooks.
 */
import { nextBatch } from '../src/proxy/next-batch.ts';
import { Http1Transport } from '../src/upstream/http1.ts';
import { Http2Transport } from '../src/upstream/http2.ts';
import type { Transport } from '../src/upstream/transport.ts';
import { typicalProxyHeaders } from '../test/support/typical-headers.ts';
import { serveH3Only } from './support.ts';

const [cert = '', key = '', kind = 'http1', backendPort = '0'] = process.argv.slice(2);
const origin = { host: '127.0.0.1', port: Number(backendPort) };
const transport: Transport = kind === 'h2c' ? new Http2Transport(origin) : new Http1Transport(origin);
const host = `127.0.0.1:${backendPort}`;
const options = { connectTimeoutMs: 5000, responseHeaderTimeoutMs: 30_000 };
let n = 0;

serveH3Only(cert, key, async (req) => {
  const headers: [string, string][] = [['host', host], ...typicalProxyHeaders(n++, host)];
  const up = await transport.request({ method: 'GET', target: '/x', headers, body: null, signal: req.signal }, options);
  const out = new Headers();
  for (const [name, value] of up.headers) out.append(name, value);
  out.set('via', '1.1 spooky');
  const response = new Response(up.body, { status: up.status, headers: out });
  await nextBatch();
  return response;
});
