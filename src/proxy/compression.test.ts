import { describe, expect, test } from 'bun:test';
import * as zlib from 'node:zlib';
import { type CompressionConfig, type ContentCoding, DEFAULT_COMPRESSIBLE_TYPES } from '../config/types.ts';
import {
  compressBytes,
  compressible,
  compressStream,
  encodeHeaders,
  negotiateEncoding,
  planCompression,
  typeMatches,
  varyOnAcceptEncoding,
} from './compression.ts';

const ALL: ContentCoding[] = ['zstd', 'br', 'gzip'];

describe('negotiateEncoding', () => {
  test.each([
    [null, ALL, undefined], // no Accept-Encoding: identity only
    ['', ALL, undefined],
    ['identity', ALL, undefined],
    ['gzip, deflate, br, zstd', ALL, 'zstd'], // Chrome: all alike, the server's order decides
    ['gzip, deflate, br, zstd', ['gzip', 'br'], 'gzip'],
    ['gzip, deflate, br', ALL, 'br'],
    ['gzip;q=0.5, br;q=0.8', ALL, 'br'],
    ['GZIP', ALL, 'gzip'], // case-insensitive
    ['x-gzip', ALL, 'gzip'],
    ['br;q=0, gzip', ALL, 'gzip'], // q=0: not acceptable
    ['*', ALL, 'zstd'],
    ['*;q=0.1, gzip;q=0.5', ALL, 'gzip'],
    ['*, zstd;q=0', ALL, 'br'],
    ['deflate', ALL, undefined],
    ['gzip;q=2, br', ALL, 'br'], // an invalid weight ignores that member
    ['gzip;q=-1, br;q=0.1', ALL, 'br'],
    ['gzip;q=0e0, br;q=0.1', ALL, 'br'],
    ['gzip;q=0.1234, br;q=0.1', ALL, 'br'], // more than three decimals
    ['gzip;q=1.000, br;q=0.999', ALL, 'gzip'],
    ['gzip ; q = 0.3 , zstd;q=0.2', ALL, 'gzip'],
    [' , ,gzip', ALL, 'gzip'],
  ] as const)('%p offered %p -> %p', (header, offered, want) => {
    expect(negotiateEncoding(header, offered)).toBe(want);
  });
});

describe('typeMatches', () => {
  test.each([
    ['text/html', true],
    ['text/event-stream', true],
    ['application/json', true],
    ['application/problem+json', true],
    ['application/atom+xml', true],
    ['application/jsonx', false],
    ['image/png', false],
    ['image/svg+xml', true],
    ['application/octet-stream', false],
    ['textual/html', false],
  ])('%s -> %p', (type, want) => {
    expect(typeMatches(type, DEFAULT_COMPRESSIBLE_TYPES)).toBe(want);
  });
});

describe('compressible', () => {
  const policy: CompressionConfig = { encodings: ALL, min_bytes: 1024, types: [...DEFAULT_COMPRESSIBLE_TYPES] };
  const h = (fields: Record<string, string>) => new Headers({ 'content-type': 'application/json; charset=utf-8', ...fields });
  test.each([
    ['a JSON answer of unknown length', 'GET', 200, {}, true],
    ['declared at the minimum', 'GET', 200, { 'content-length': '1024' }, true],
    ['declared below the minimum', 'GET', 200, { 'content-length': '1023' }, false],
    ['HEAD', 'HEAD', 200, {}, false],
    ['204', 'GET', 204, {}, false],
    ['304', 'GET', 304, {}, false],
    ['206 (a range of the backend bytes)', 'GET', 206, {}, false],
    ['an error page', 'GET', 500, {}, true],
    ['already gzip', 'GET', 200, { 'content-encoding': 'gzip' }, false],
    ['identity encoding', 'GET', 200, { 'content-encoding': 'identity' }, true],
    ['no-transform', 'GET', 200, { 'cache-control': 'public, no-transform' }, false],
    ['no-transformx is not no-transform', 'GET', 200, { 'cache-control': 'no-transformx' }, true],
    ['an image', 'GET', 200, { 'content-type': 'image/png' }, false],
    ['upper-case type', 'GET', 200, { 'content-type': 'Text/HTML' }, true],
  ] as const)('%s -> %p', (_what, method, status, fields, want) => {
    expect(compressible(method, status, h(fields), policy)).toBe(want);
  });
  test('no content-type: not compressed', () => {
    expect(compressible('GET', 200, new Headers(), policy)).toBe(false);
  });
});

describe('headers', () => {
  test('Vary gains accept-encoding once; * stays', () => {
    const cases: Array<[string | null, string]> = [
      [null, 'accept-encoding'],
      ['origin', 'origin, accept-encoding'],
      ['Accept-Encoding', 'Accept-Encoding'],
      ['*', '*'],
    ];
    for (const [before, after] of cases) {
      const headers = new Headers(before === null ? {} : { vary: before });
      varyOnAcceptEncoding(headers);
      expect(headers.get('vary')).toBe(after);
    }
  });
  test('an encoded answer: coding set, length, ranges and digests gone, strong ETag weakened', () => {
    const headers = new Headers({
      'content-length': '5000',
      'accept-ranges': 'bytes',
      etag: '"abc"',
      'content-digest': 'sha-256=:x:',
      'repr-digest': 'sha-256=:y:',
    });
    encodeHeaders(headers, 'br');
    expect(Object.fromEntries(headers)).toEqual({ 'content-encoding': 'br', etag: 'W/"abc"' });
    const weak = new Headers({ etag: 'W/"x"' });
    encodeHeaders(weak, 'gzip');
    expect(weak.get('etag')).toBe('W/"x"');
  });
});

describe('planCompression', () => {
  const policy: CompressionConfig = { encodings: ALL, min_bytes: 1024, types: [...DEFAULT_COMPRESSIBLE_TYPES] };
  const plan = (method: string, status: number, fields: Record<string, string>, accept: string | null) => {
    const headers = new Headers(fields);
    const coding = planCompression(method, status, headers, policy, accept);
    return { coding, headers: Object.fromEntries(headers) };
  };
  const json = { 'content-type': 'application/json', 'content-length': '5000', etag: '"v1"' };
  test.each([
    [
      'GET, accepted: body compressed',
      'GET',
      200,
      json,
      'gzip',
      { coding: 'gzip', headers: { 'content-type': 'application/json', etag: 'W/"v1"', 'content-encoding': 'gzip', vary: 'accept-encoding' } },
    ],
    ['GET, not accepted: Vary only', 'GET', 200, json, null, { coding: undefined, headers: { ...json, vary: 'accept-encoding' } }],
    [
      'HEAD: the fields of its GET, no body to compress',
      'HEAD',
      200,
      json,
      'br',
      { coding: undefined, headers: { 'content-type': 'application/json', etag: 'W/"v1"', 'content-encoding': 'br', vary: 'accept-encoding' } },
    ],
    [
      '304: the Vary and weak ETag of its 200',
      'GET',
      304,
      { etag: '"v1"' },
      'zstd',
      { coding: undefined, headers: { etag: 'W/"v1"', vary: 'accept-encoding' } },
    ],
    [
      '304 for a client that accepts none: Vary, ETag kept',
      'GET',
      304,
      { etag: '"v1"' },
      null,
      { coding: undefined, headers: { etag: '"v1"', vary: 'accept-encoding' } },
    ],
    [
      '304 of a type not compressed: untouched',
      'GET',
      304,
      { etag: '"v1"', 'content-type': 'image/png' },
      'gzip',
      { coding: undefined, headers: { etag: '"v1"', 'content-type': 'image/png' } },
    ],
    ['an image: untouched', 'GET', 200, { 'content-type': 'image/png' }, 'gzip', { coding: undefined, headers: { 'content-type': 'image/png' } }],
  ] as const)('%s', (_what, method, status, fields, accept, want) => {
    expect(plan(method, status, fields, accept)).toEqual(want as never);
  });
});

const decode: Record<ContentCoding, (b: Uint8Array) => Uint8Array> = {
  gzip: (b) => zlib.gunzipSync(b),
  br: (b) => zlib.brotliDecompressSync(b),
  zstd: (b) => zlib.zstdDecompressSync(b),
};
const text = new TextEncoder().encode(JSON.stringify(Array.from({ length: 500 }, (_, i) => ({ id: i, name: `item ${i}` }))));

describe('compressBytes and compressStream', () => {
  test.each(ALL)('%s: one call round-trips and shrinks', (coding) => {
    const out = compressBytes(text, coding);
    expect(out.byteLength).toBeLessThan(text.byteLength / 4);
    expect(Buffer.from(decode[coding](out)).equals(Buffer.from(text))).toBe(true);
  });

  test.each(ALL)('%s: each chunk is decodable as soon as it went through (no wait for the end)', async (coding) => {
    let feed!: ReadableStreamDefaultController<Uint8Array>;
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        feed = c;
      },
    });
    const reader = compressStream(source, coding).getReader();
    const received: Uint8Array[] = [];
    const events = ['data: one\n\n', 'data: two\n\n', 'data: three\n\n'];
    for (const [i, ev] of events.entries()) {
      feed.enqueue(new TextEncoder().encode(ev));
      const { value } = await reader.read();
      received.push(value as Uint8Array);
      // What arrived so far decodes to every event sent so far (a streaming decoder, as a browser's).
      const partial = decodePartial(coding, Buffer.concat(received));
      expect(partial).toBe(events.slice(0, i + 1).join(''));
    }
    feed.close();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received.push(value);
    }
    const all = Buffer.concat(received);
    expect(new TextDecoder().decode(decode[coding](all))).toBe(events.join(''));
  });

  test.each(ALL)('%s: a chunk whose output overfills the readable buffer still goes through (no stall)', async (coding) => {
    // 512 KiB of random hex: compresses to about half, far more than zlib's 16 KiB readable highWaterMark.
    const random = crypto.getRandomValues(new Uint8Array(256 * 1024));
    const chunk = new TextEncoder().encode(Buffer.from(random).toString('hex'));
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(chunk);
        c.enqueue(chunk);
        c.close();
      },
    });
    const out = await Promise.race([new Response(compressStream(source, coding)).bytes(), Bun.sleep(5000).then(() => 'stalled' as const)]);
    expect(out).not.toBe('stalled');
    expect(Buffer.from(decode[coding](out as Uint8Array)).equals(Buffer.concat([chunk, chunk]))).toBe(true);
  });

  test('cancelling the compressed stream cancels the source', async () => {
    let cancelled: unknown;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(text);
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const reader = compressStream(source, 'gzip').getReader();
    await reader.read();
    await reader.cancel('client gone');
    expect(cancelled).toBe('client gone');
  });

  test('an error of the source errors the compressed stream', async () => {
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(text);
        c.error(new Error('backend reset'));
      },
    });
    const reader = compressStream(source, 'zstd').getReader();
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) break;
      })(),
    ).rejects.toThrow('backend reset');
  });
});

/** Decodes a stream prefix the way a streaming client does (what is complete so far, no error for the missing end). */
function decodePartial(coding: ContentCoding, bytes: Buffer): string {
  const opts = { finishFlush: coding === 'br' ? zlib.constants.BROTLI_OPERATION_FLUSH : zlib.constants.Z_SYNC_FLUSH };
  if (coding === 'gzip') return zlib.gunzipSync(bytes, opts).toString();
  if (coding === 'br') return zlib.brotliDecompressSync(bytes, opts).toString();
  return zlib.zstdDecompressSync(bytes, { finishFlush: zlib.constants.ZSTD_e_flush } as zlib.ZstdOptions).toString();
}
