/**
 * The HTTP/2 client's HPACK dynamic table against real decoders: several hundred requests with the header set the
 * proxy typically forwards, over one connection, to nghttpd (nghttp2, the reference HPACK decoder; a table that
 * drifted from ours fails the connection with COMPRESSION_ERROR or turns paths into 404s) and to a `node:http2`
 * server (which also checks every header it received). The transport's header byte counter shows the repeated
 * requests' header blocks are a fraction of the first one's.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Http2Transport } from '../../src/upstream/http2.ts';
import type { UpstreamRequest } from '../../src/upstream/transport.ts';
import { startNghttpd } from '../support/nghttpd.ts';
import { typicalProxyHeaders } from '../support/typical-headers.ts';

const REQUESTS = 400;

/** Request `i` with the typical proxy header set (stable fields, a few paths, per-request ids). */
function typicalRequest(i: number): UpstreamRequest {
  return {
    method: 'GET',
    target: `/f${i % 10}.txt`,
    headers: [['host', 'api.example.com'], ...typicalProxyHeaders(i, 'api.example.com', `203.0.113.${i % 3}`)],
    body: null,
    signal: new AbortController().signal,
  };
}

/**
 * Sends {@link REQUESTS} requests (in waves of 50 concurrent ones) over one connection; returns the bodies and the
 * header block bytes of the first request and of all the later ones.
 */
async function run(port: number): Promise<{ bodies: string[]; first: number; later: number; connections: number }> {
  const t = new Http2Transport({ host: '127.0.0.1', port });
  const opts = { connectTimeoutMs: 5000, responseHeaderTimeoutMs: 10_000 };
  const get = async (i: number) => {
    const res = await t.request(typicalRequest(i), opts);
    const body = res.body instanceof Uint8Array ? res.body : new Uint8Array(await new Response(res.body).arrayBuffer());
    return `${res.status} ${new TextDecoder().decode(body)}`;
  };
  try {
    const bodies = [await get(0)];
    const first = t.stats().requestHeaderBytes ?? 0;
    for (let wave = 1; wave < REQUESTS; wave += 50) {
      const ids = Array.from({ length: Math.min(50, REQUESTS - wave) }, (_, k) => wave + k);
      bodies.push(...(await Promise.all(ids.map(get))));
    }
    const st = t.stats();
    expect(st.requestHeaderBlocks).toBe(REQUESTS);
    return { bodies, first, later: (st.requestHeaderBytes ?? 0) - first, connections: st.connectionsOpened };
  } finally {
    t.close();
  }
}

describe('HTTP/2 client HPACK dynamic table against nghttpd and node:http2', () => {
  let nghttpd: { kill(): void } | undefined;
  let ngPort = 0;
  let node: http2.Http2Server;
  let nodePort = 0;
  let nodeErrors = 0;

  beforeAll(async () => {
    const docs = mkdtempSync(join(tmpdir(), 'spooky-hpack-'));
    for (let i = 0; i < 10; i++) writeFileSync(join(docs, `f${i}.txt`), `file ${i}`);
    const ng = await startNghttpd(['--no-tls', '-a', '127.0.0.1', '-d', docs, '0']);
    nghttpd = ng.proc;
    ngPort = ng.port;

    node = http2.createServer();
    node.on('stream', (st: http2.ServerHttp2Stream, headers) => {
      st.on('error', () => {});
      // Echo the path and check every field against what request i carries.
      const id = String(headers['x-request-id'] ?? '');
      const i = Number(id.slice(-12));
      const want = typicalRequest(i);
      let ok = headers[':path'] === want.target && headers[':authority'] === 'api.example.com';
      for (const [n, v] of want.headers) if (n !== 'host' && headers[n] !== v) ok = false;
      if (!ok) nodeErrors++;
      st.respond({ ':status': ok ? 200 : 400 });
      st.end(`${headers[':path']}`);
    });
    await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', () => resolve()));
    nodePort = (node.address() as AddressInfo).port;
  });
  afterAll(() => {
    nghttpd?.kill();
    node?.close();
  });

  test(`nghttpd: ${REQUESTS} requests over one connection all succeed; repeated header blocks are small`, async () => {
    const { bodies, first, later, connections } = await run(ngPort);
    expect(connections).toBe(1);
    expect(bodies).toEqual(bodies.map((_, i) => `200 file ${i % 10}`));
    expect(first).toBeGreaterThan(350);
    expect(average(later)).toBeLessThan(first / 3);
  });

  test(`node:http2: ${REQUESTS} requests over one connection arrive with every header intact`, async () => {
    const { bodies, first, later, connections } = await run(nodePort);
    expect(connections).toBe(1);
    expect(nodeErrors).toBe(0);
    expect(bodies).toEqual(bodies.map((_, i) => `200 /f${i % 10}.txt`));
    expect(average(later)).toBeLessThan(first / 3);
  });
});

/** Average header block bytes of the requests after the first. */
function average(later: number): number {
  return later / (REQUESTS - 1);
}
