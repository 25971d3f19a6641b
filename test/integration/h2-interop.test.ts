/**
 * Interop of Spooky's own HTTP/2 client with nghttp2, the reference implementation (Debian's `nghttp2-server`,
 * `nghttpd --no-tls`, installed by `.ci/run`): the other HTTP/2 tests talk to Bun's `node:http2` server or to
 * a raw frame server of ours, so this one checks the client against a peer that neither Bun nor Spooky wrote.
 * Through Spooky over HTTP/3: small and multi-megabyte downloads (flow control with the peer's WINDOW_UPDATEs),
 * an echoed upload, HEAD, a 404, and 100 concurrent requests multiplexed over one connection; and the same
 * client over TLS (h2 by ALPN, certificate verified against a `ca_file`) to an nghttpd that speaks only h2.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificate } from '../support/certs.ts';
import { startNghttpd } from '../support/nghttpd.ts';
import { request, type SpookyProcess, startSpooky } from '../support/process.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('HTTP/2 client interop with nghttp2 (nghttpd)', () => {
  let nghttpd: { kill(): void } | undefined;
  let nghttpdTls: { kill(): void } | undefined;
  let spooky: SpookyProcess;
  const big = new Uint8Array(3_000_000).map((_, i) => (i * 7 + (i >> 9)) & 0xff);

  beforeAll(async () => {
    const docs = mkdtempSync(join(tmpdir(), 'spooky-nghttpd-'));
    writeFileSync(join(docs, 'small.txt'), 'hello from nghttpd\n');
    writeFileSync(join(docs, 'big.bin'), big);
    writeFileSync(join(docs, 'upload'), '');
    mkdirSync(join(docs, 'tls')); // the TLS pool is routed by the /tls/ prefix, which reaches nghttpd unchanged
    writeFileSync(join(docs, 'tls', 'small.txt'), 'hello from nghttpd\n');
    writeFileSync(join(docs, 'tls', 'big.bin'), big);
    const { cert, key } = await testCertificate();
    const plain = await startNghttpd(['--no-tls', '--echo-upload', '-a', '127.0.0.1', '-d', docs, '0']);
    nghttpd = plain.proc;
    const tls = await startNghttpd(['-a', '127.0.0.1', '-d', docs, '0', key, cert], 'nghttpd (TLS) listening');
    nghttpdTls = tls.proc;
    const port = plain.port;
    const tlsPort = tls.port;
    spooky = await startSpooky(`
limits: { max_request_body_bytes: 10000000 }
upstream:
  ng:
    route: { path_prefix: / }
    backends: [{ id: ng, address: "h2c://127.0.0.1:${port}" }]
  ngtls:
    route: { path_prefix: /tls/ }
    tls: { ca_file: "${cert}" }
    backends: [{ id: ngtls, address: "https://127.0.0.1:${tlsPort}" }]
  untrusted:
    route: { path_prefix: /untrusted/ }
    backends: [{ id: untrusted, address: "https://127.0.0.1:${tlsPort}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    nghttpd?.kill();
    nghttpdTls?.kill();
  });

  test('over TLS: h2 chosen by ALPN, the certificate verified, a 3 MB download intact', async () => {
    const small = await request(`${spooky.url}/tls/small.txt`);
    expect(small.status).toBe(200);
    expect(await small.text()).toBe('hello from nghttpd\n');
    const res = await request(`${spooky.url}/tls/big.bin`);
    expect(res.status).toBe(200);
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(sha256(big));
    // both came over the TLS pool's own connection (the h2c nghttpd serves the same files)
    expect(await connectionsOpened('ngtls')).toBeGreaterThanOrEqual(1);
    // the same backend without its CA in the pool's trust: the handshake is refused, the client gets 502
    const untrusted = await request(`${spooky.url}/untrusted/small.txt`);
    expect(untrusted.status).toBe(502);
    await untrusted.arrayBuffer();
  });

  test('a small file: 200 with the body and the headers nghttpd sent', async () => {
    const res = await request(`${spooky.url}/small.txt`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello from nghttpd\n');
    expect(res.headers.get('content-length')).toBe('19');
    expect(res.headers.get('server') ?? '').toContain('nghttpd');
  });

  test('a 3 MB download arrives complete and intact (many times the peer window)', async () => {
    const res = await request(`${spooky.url}/big.bin`);
    expect(res.status).toBe(200);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body.byteLength).toBe(big.byteLength);
    expect(sha256(body)).toBe(sha256(big));
  });

  test('a 1 MB upload is sent with flow control and echoed back intact', async () => {
    const payload = big.subarray(0, 1_000_000);
    const res = await request(`${spooky.url}/upload`, { method: 'POST', body: payload });
    expect(res.status).toBe(200);
    const echoed = new Uint8Array(await res.arrayBuffer());
    expect(echoed.byteLength).toBe(payload.byteLength);
    expect(sha256(echoed)).toBe(sha256(payload));
  });

  test('HEAD has no body; a missing file is the backend 404, passed through', async () => {
    const head = await request(`${spooky.url}/big.bin`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    const missing = await request(`${spooky.url}/nope`);
    expect(missing.status).toBe(404);
    await missing.arrayBuffer();
  });

  test('100 concurrent requests are multiplexed over one connection to the backend', async () => {
    const before = await connectionsOpened();
    expect(before).toBeGreaterThanOrEqual(1); // the earlier tests' connection (and proof that /status reports it)
    const results = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await request(`${spooky.url}/small.txt`);
        return `${res.status} ${await res.text()}`;
      }),
    );
    expect(new Set(results)).toEqual(new Set(['200 hello from nghttpd\n']));
    expect((await connectionsOpened()) - before).toBeLessThanOrEqual(1);
  });

  /** Connections pool `pool`'s backend has opened, from the admin `/status`. */
  async function connectionsOpened(pool = 'ng'): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${spooky.adminPort}/status`);
    const body = (await res.json()) as { pools: { name: string; backends: { connections: { connectionsOpened: number } }[] }[] };
    return body.pools.find((p) => p.name === pool)?.backends[0]?.connections.connectionsOpened ?? -1;
  }
});
