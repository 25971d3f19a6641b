/**
 * Response compression end to end: a real backend (Bun.serve in this process) behind Spooky, clients over
 * HTTP/3 and HTTP/2 that ask for codings and decode what they get.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import * as zlib from 'node:zlib';
import { type LogRecord, request, type SpookyProcess, startSpooky } from '../support/process.ts';

const BIG = JSON.stringify(Array.from({ length: 4000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] }))); // ~150 KB
const MID = `<!doctype html><p>${'hello compression '.repeat(1500)}</p>`; // ~27 KB: read whole by Spooky first
const SMALL = JSON.stringify({ ok: true, pad: 'x'.repeat(300) });
// 4 MB of text that compresses only to about half (hex of random bytes): chunks whose output fills zlib's buffer.
const HEX = Array.from({ length: 32 }, () => Buffer.from(crypto.getRandomValues(new Uint8Array(64 * 1024))).toString('hex')).join('');
let release: () => void = () => {};
let backend: ReturnType<typeof Bun.serve>;
let spooky: SpookyProcess;

beforeAll(async () => {
  backend = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req) {
      const p = new URL(req.url).pathname;
      const json = { 'content-type': 'application/json' };
      if (p.endsWith('/big') && req.headers.get('if-none-match') === 'W/"v1"') return new Response(null, { status: 304, headers: { etag: '"v1"' } });
      if (p.endsWith('/big')) return new Response(BIG, { headers: { ...json, etag: '"v1"', 'accept-ranges': 'bytes' } });
      if (p.endsWith('/mid')) return new Response(MID, { headers: { 'content-type': 'text/html; charset=utf-8', vary: 'origin' } });
      if (p.endsWith('/hex')) return new Response(HEX, { headers: { 'content-type': 'text/plain' } });
      if (p.endsWith('/small')) return new Response(SMALL, { headers: json });
      if (p.endsWith('/png')) return new Response(new Uint8Array(5000).fill(7), { headers: { 'content-type': 'image/png' } });
      if (p.endsWith('/gz')) return new Response(Bun.gzipSync(Buffer.from(BIG)), { headers: { ...json, 'content-encoding': 'gzip' } });
      if (p.endsWith('/no-transform')) return new Response(BIG, { headers: { ...json, 'cache-control': 'no-transform' } });
      if (p.endsWith('/events')) {
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        return new Response(
          new ReadableStream({
            async start(c) {
              c.enqueue(new TextEncoder().encode('data: one\n\n'));
              await gate;
              c.enqueue(new TextEncoder().encode('data: two\n\n'));
              c.close();
            },
          }),
          { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } },
        );
      }
      return new Response('not found', { status: 404 });
    },
  });
  spooky = await startSpooky(`upstream:
  packed:
    route: { path_prefix: /c/, compression: {} }
    backends: [{ id: a, address: "http://127.0.0.1:${backend.port}" }]
  gzip_only:
    route: { path_prefix: /g/, compression: { encodings: [gzip], min_bytes: 100 } }
    backends: [{ id: a, address: "http://127.0.0.1:${backend.port}" }]
  plain:
    route: { path_prefix: /p/ }
    backends: [{ id: a, address: "http://127.0.0.1:${backend.port}" }]
`);
});
afterAll(async () => {
  await spooky?.stop();
  backend?.stop(true);
});

const CHROME = 'gzip, deflate, br, zstd';
const decode = (coding: string | null, bytes: Uint8Array): string => {
  const b = Buffer.from(bytes);
  if (coding === 'gzip') return zlib.gunzipSync(b).toString();
  if (coding === 'br') return zlib.brotliDecompressSync(b).toString();
  if (coding === 'zstd') return zlib.zstdDecompressSync(b).toString();
  return b.toString();
};
const accessFor = (path: string, nth = 0): Promise<LogRecord> => {
  let seen = 0;
  return spooky.child.waitFor((r) => r.event === 'access' && r.path === path && seen++ === nth, 8000, `access line ${path}`);
};

describe('compression', () => {
  test('a browser-like client gets zstd over HTTP/3: smaller, decodes to the original, Vary and a weak ETag', async () => {
    const res = await request(`${spooky.url}/c/big`, { headers: { 'accept-encoding': CHROME } });
    const bytes = await res.bytes();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBe('zstd');
    expect(res.headers.get('vary')).toBe('accept-encoding');
    expect(res.headers.get('etag')).toBe('W/"v1"');
    expect(res.headers.get('accept-ranges')).toBeNull();
    expect(bytes.byteLength).toBeLessThan(BIG.length / 5);
    expect(decode('zstd', bytes)).toBe(BIG);
    const line = await accessFor('/c/big');
    expect(line.encoding).toBe('zstd');
    expect(line.bytes_out).toBe(bytes.byteLength); // what left, not what the backend sent
  });

  test.each([
    ['gzip', 'gzip'],
    ['br;q=0.9, gzip;q=0.5', 'br'],
    ['zstd;q=0, gzip', 'gzip'],
  ])('Accept-Encoding %p -> %s (a body Spooky reads whole first, and one it streams)', async (accept, coding) => {
    for (const path of ['/c/mid', '/c/big']) {
      const res = await request(`${spooky.url}${path}`, { headers: { 'accept-encoding': accept } });
      expect(res.headers.get('content-encoding')).toBe(coding);
      expect(decode(coding, await res.bytes())).toBe(path === '/c/mid' ? MID : BIG);
    }
  });

  test.each(['zstd', 'br', 'gzip'])('%s: a large, poorly compressible body goes through whole over HTTP/3, HTTP/2 and HTTP/1.1', async (coding) => {
    for (const protocol of ['http3', 'http2', 'http1.1'] as const) {
      const res = await request(`${spooky.url}/c/hex`, { protocol, headers: { 'accept-encoding': coding }, signal: AbortSignal.timeout(15_000) });
      expect(res.headers.get('content-encoding')).toBe(coding);
      expect(decode(coding, await res.bytes()) === HEX).toBe(true);
    }
  });

  test('the same over HTTP/2 and HTTP/1.1 on the TCP port; a backend Vary keeps its value', async () => {
    for (const protocol of ['http2', 'http1.1'] as const) {
      const res = await request(`${spooky.url}/c/mid`, { protocol, headers: { 'accept-encoding': 'br' } });
      expect(res.headers.get('content-encoding')).toBe('br');
      expect(res.headers.get('vary')).toBe('origin, accept-encoding');
      expect(decode('br', await res.bytes())).toBe(MID);
    }
  });

  test('sent as they came: no Accept-Encoding (with Vary), small, an image, already gzip, no-transform, a route without compression', async () => {
    const plain = await request(`${spooky.url}/c/mid`);
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(plain.headers.get('vary')).toBe('origin, accept-encoding'); // caches must still tell the two apart
    expect(await plain.text()).toBe(MID);
    for (const path of ['/c/small', '/c/png', '/c/no-transform', '/p/big']) {
      const res = await request(`${spooky.url}${path}`, { headers: { 'accept-encoding': CHROME } });
      expect([path, res.headers.get('content-encoding')]).toEqual([path, null]);
      await res.arrayBuffer();
    }
    const gz = await request(`${spooky.url}/c/gz`, { headers: { 'accept-encoding': CHROME } });
    expect(gz.headers.get('content-encoding')).toBe('gzip'); // the backend's own, untouched
    expect(decode('gzip', await gz.bytes())).toBe(BIG);

    // Under a route's own min_bytes and codings.
    const small = await request(`${spooky.url}/g/small`, { headers: { 'accept-encoding': CHROME } });
    expect(small.headers.get('content-encoding')).toBe('gzip');
    expect(decode('gzip', await small.bytes())).toBe(SMALL);
  });

  test('HEAD gets the fields its GET gets; a 304 the Vary and weak ETag of the 200 it stands for', async () => {
    const head = await request(`${spooky.url}/c/big`, { method: 'HEAD', headers: { 'accept-encoding': CHROME } });
    expect(head.status).toBe(200);
    expect([head.headers.get('content-encoding'), head.headers.get('vary'), head.headers.get('etag')]).toEqual(['zstd', 'accept-encoding', 'W/"v1"']);
    expect(head.headers.get('content-length')).not.toBe(String(BIG.length)); // not the uncompressed length
    // A cache revalidates its compressed copy with the weak ETag it got; the backend's 304 carries a strong one.
    const revalidated = await request(`${spooky.url}/c/big`, { headers: { 'accept-encoding': CHROME, 'if-none-match': 'W/"v1"' } });
    expect(revalidated.status).toBe(304);
    expect([revalidated.headers.get('vary'), revalidated.headers.get('etag')]).toEqual(['accept-encoding', 'W/"v1"']);
  });

  test('a stream is compressed as it comes: the first event arrives before the backend sends the second', async () => {
    const res = await request(`${spooky.url}/c/events`, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.headers.get('content-encoding')).toBe('gzip');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const got: Uint8Array[] = [];
    const inflater = (bytes: Buffer) => zlib.gunzipSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString();
    const deadline = Date.now() + 5000;
    while (!inflater(Buffer.concat(got)).includes('data: one') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      got.push(value);
    }
    expect(inflater(Buffer.concat(got))).toBe('data: one\n\n');
    release();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got.push(value);
    }
    expect(zlib.gunzipSync(Buffer.concat(got)).toString()).toBe('data: one\n\ndata: two\n\n');
  });
});
