import { describe, expect, test } from 'bun:test';
import { ByteWriter } from './bytes.ts';
import type { ByteChannel } from './channel.ts';
import { CLIENT_PREFACE, Flag, FrameReader, FrameType, Setting, writeSettings } from './frames.ts';
import { HpackDecoder, HpackEncoder, MAX_INDEXED_PATH } from './hpack.ts';
import { H2Session, type SessionListener, type StreamHandler } from './session.ts';

/** Hex of bytes. */
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Encodes one block of `fields` with `enc`. */
function block(enc: HpackEncoder, fields: [string, string][]): Uint8Array {
  const w = new ByteWriter(64);
  enc.beginBlock(w);
  for (const [n, v] of fields) enc.field(w, n, v);
  enc.endBlock(w);
  return w.copy();
}

/** Flat decoder output as pairs. */
function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

/** A typical request as the proxy forwards it: stable fields plus per-request ids. */
function typicalRequest(i: number): [string, string][] {
  return [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':authority', 'api.example.com'],
    [':path', `/v1/items/${i % 10}`],
    ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'],
    ['accept', 'application/json, text/plain, */*'],
    ['accept-encoding', 'gzip, deflate, br'],
    ['accept-language', 'en-US,en;q=0.5'],
    ['x-forwarded-for', '203.0.113.7'],
    ['x-forwarded-proto', 'https'],
    ['x-forwarded-host', 'api.example.com'],
    ['forwarded', 'for=203.0.113.7;proto=https;host=api.example.com'],
    ['via', '2 spooky'],
    ['x-request-id', `0190a1b2-c3d4-7e5f-8a9b-${String(i).padStart(12, '0')}`],
    ['traceparent', `00-${i.toString(16).padStart(32, '0')}-${(i + 1).toString(16).padStart(16, '0')}-01`],
  ];
}

/** Deterministic pseudo-random numbers. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

describe('HPACK encoder: RFC 7541 Appendix C.3 (requests without Huffman coding)', () => {
  test('three requests on one connection encode byte for byte as in the RFC, with the same table', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    const c31 = block(enc, [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(hexOf(c31)).toBe('828684410f7777772e6578616d706c652e636f6d');
    dec.decode(c31);
    expect(enc.tableSize).toBe(57);
    const c32 = block(enc, [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    expect(hexOf(c32)).toBe('828684be58086e6f2d6361636865');
    dec.decode(c32);
    expect(enc.tableSize).toBe(110);
    const c33 = block(enc, [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    expect(hexOf(c33)).toBe('828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565');
    expect(pairs(dec.decode(c33))).toEqual([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    expect(enc.tableSize).toBe(164);
    expect(enc.entries()).toEqual([
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ]);
    expect(enc.entries()).toEqual(dec.entries());
  });
});

describe('HPACK encoder: round trips', () => {
  test('thousands of random blocks with eviction decode back, and both tables stay identical', () => {
    const r = rng(7);
    const names = ['user-agent', 'accept', 'x-custom', 'x-forwarded-for', 'cookie', ':path', 'via', 'x-a', 'referer', 'authorization'];
    for (const cap of [4096, 512, 100, 0]) {
      const enc = new HpackEncoder(cap);
      const dec = new HpackDecoder();
      for (let b = 0; b < 2000; b++) {
        const fields: [string, string][] = [];
        const n = 1 + r(12);
        for (let i = 0; i < n; i++) {
          const name = names[r(names.length)] as string;
          const value = `v${r(40)}`.repeat(1 + r(8)); // repeats often, sometimes long
          fields.push([name, value]);
        }
        expect(pairs(dec.decode(block(enc, fields)))).toEqual(fields);
        expect(enc.tableSize).toBe(dec.tableSize);
        expect(enc.tableSize).toBeLessThanOrEqual(cap);
        if (b % 97 === 0) expect(enc.entries()).toEqual(dec.entries());
      }
      expect(enc.entries()).toEqual(dec.entries());
      if (cap === 0) expect(enc.entries()).toEqual([]);
    }
  });

  test('a repeated typical proxy request is a fraction of the first one', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    const sizes: number[] = [];
    for (let i = 0; i < 500; i++) {
      const fields = typicalRequest(i);
      const b = block(enc, fields);
      sizes.push(b.length);
      expect(pairs(dec.decode(b))).toEqual(fields);
    }
    const first = sizes[0] as number;
    const later = Math.max(...sizes.slice(20));
    // The per-request ids (x-request-id, traceparent: about 110 bytes) are sent in full every time.
    expect(first).toBeGreaterThan(400);
    expect(later).toBeLessThan(140);
    expect(enc.bytesEncoded).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(enc.blocksEncoded).toBe(500);
  });
});

describe('HPACK encoder: table size updates', () => {
  test('a smaller peer SETTINGS_HEADER_TABLE_SIZE is announced at the start of the next block and evicts', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    dec.decode(block(enc, typicalRequest(1)));
    expect(dec.tableSize).toBeGreaterThan(200);
    enc.setPeerTableSize(100);
    const b = block(enc, typicalRequest(2));
    expect(hexOf(b.subarray(0, 2))).toBe('3f45'); // size update to 100 (31 + 69)
    expect(pairs(dec.decode(b))).toEqual(typicalRequest(2));
    expect(enc.maxTableSize).toBe(100);
    expect(dec.tableSize).toBeLessThanOrEqual(100);
    expect(enc.entries()).toEqual(dec.entries());
    // Only one update per change.
    const again = block(enc, typicalRequest(3));
    expect((again[0] as number) & 0xe0).not.toBe(0x20);
    dec.decode(again);
  });

  test('a peer table size of 0 empties the table and nothing is indexed afterwards', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    dec.decode(block(enc, typicalRequest(1)));
    enc.setPeerTableSize(0);
    for (let i = 2; i < 6; i++) {
      const b = block(enc, typicalRequest(i));
      if (i === 2) expect(b[0]).toBe(0x20);
      else expect((b[0] as number) & 0xe0).not.toBe(0x20);
      expect(pairs(dec.decode(b))).toEqual(typicalRequest(i));
      expect(dec.tableSize).toBe(0);
      expect(enc.tableSize).toBe(0);
    }
  });

  test('a shrink and a grow between two blocks send the smallest size, then the final one (RFC 7541 §4.2)', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    dec.decode(block(enc, typicalRequest(1)));
    enc.setPeerTableSize(0);
    enc.setPeerTableSize(4096);
    const b = block(enc, [[':method', 'GET']]);
    expect(hexOf(b)).toBe('203fe11f82'); // update to 0, update to 4096, :method GET
    dec.decode(b);
    expect(dec.tableSize).toBe(0);
    expect(enc.tableSize).toBe(0);
  });

  test('a peer size above our cap changes nothing; a cap below the default is announced in the first block', () => {
    const enc = new HpackEncoder();
    enc.setPeerTableSize(65536);
    expect(hexOf(block(enc, [[':method', 'GET']]))).toBe('82');
    const small = new HpackEncoder(256);
    const dec = new HpackDecoder();
    const b = block(small, typicalRequest(1));
    expect(hexOf(b.subarray(0, 3))).toBe('3fe101'); // update to 256
    dec.decode(b);
    expect(dec.tableSize).toBeLessThanOrEqual(256);
    expect(small.entries()).toEqual(dec.entries());
  });
});

describe('HPACK encoder: indexing policy', () => {
  /** Representation of the only field in a block: 'indexed', 'incremental', 'without' or 'never'. */
  function kind(b: Uint8Array): string {
    const first = b[0] as number;
    if (first & 0x80) return 'indexed';
    if ((first & 0xc0) === 0x40) return 'incremental';
    if ((first & 0xf0) === 0x10) return 'never';
    return 'without';
  }

  test('sensitive fields are never indexed; longer cookies are', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    for (const [n, v] of [
      ['authorization', 'Bearer abc.def.ghi'],
      ['proxy-authorization', 'Basic dXNlcjpwYXNz'],
      ['cookie', 'sid=1234567'],
    ] as [string, string][]) {
      for (let i = 0; i < 2; i++) {
        const b = block(enc, [[n, v]]);
        expect(kind(b)).toBe('never');
        expect(pairs(dec.decode(b))).toEqual([[n, v]]);
      }
    }
    expect(dec.entries()).toEqual([]);
    const cookie = 'session=0123456789abcdef0123';
    const first = block(enc, [['cookie', cookie]]);
    expect(kind(first)).toBe('incremental');
    expect(first[0]).toBe(0x60); // name by static index 32
    expect(hexOf(block(enc, [['cookie', cookie]]))).toBe('be');
  });

  test('per-request fields, long paths and fields too large for the table are sent without indexing', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    const unindexed: [string, string][] = [
      ['x-request-id', 'abc'],
      ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
      ['tracestate', 'congo=t61rcWkgMzE'],
      ['content-length', '1234'],
      [':path', `/${'p'.repeat(MAX_INDEXED_PATH)}`],
      ['x-big', 'x'.repeat(3000)],
    ];
    for (const f of unindexed) {
      for (let i = 0; i < 2; i++) {
        const b = block(enc, [f]);
        expect(kind(b)).toBe('without');
        expect(pairs(dec.decode(b))).toEqual([f]);
      }
    }
    expect(dec.entries()).toEqual([]);
    const path = `/${'p'.repeat(MAX_INDEXED_PATH - 1)}`;
    expect(kind(block(enc, [[':path', path]]))).toBe('incremental');
    expect(hexOf(block(enc, [[':path', path]]))).toBe('be');
  });

  test('a name already in the dynamic table is referenced by index in a literal', () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    const b1 = block(enc, [['x-tenant', 'a']]);
    const b2 = block(enc, [['x-tenant', 'b']]);
    expect(hexOf(b2)).toBe('7e0162'); // incremental, name index 62, value "b"
    dec.decode(b1);
    expect(pairs(dec.decode(b2))).toEqual([['x-tenant', 'b']]);
  });
});

/** A channel that records what the session writes. */
class FakeChannel implements ByteChannel {
  written: Uint8Array[] = [];
  write(bytes: Uint8Array, length: number): boolean {
    this.written.push(bytes.slice(0, length));
    return true;
  }
  end(): void {}
  destroy(): void {}
}

const noHandler: StreamHandler = { onHeaders() {}, onData() {}, onReset() {}, onWritable() {} };
const noListener: SessionListener = { onReady() {}, onSettings() {}, onStreamClosed() {}, onGoaway() {}, onClosed() {} };

describe('HPACK encoder in the session', () => {
  test('blocks shrink after the first; a new SETTINGS_HEADER_TABLE_SIZE is acknowledged before the block announcing it', () => {
    const channel = new FakeChannel();
    const session = new H2Session(channel, noListener, { streamWindowBytes: 65_535 });
    session.start();
    const peer = (settings: [number, number][]) => {
      const w = new ByteWriter();
      writeSettings(w, settings);
      session.onBytes(w.copy());
    };
    peer([]);
    const fields = (i: number) => typicalRequest(i).flat();
    const sizes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = session.headerBlockStats.bytes;
      session.openRequest(fields(i), true, noHandler);
      sizes.push(session.headerBlockStats.bytes - before);
    }
    peer([[Setting.HEADER_TABLE_SIZE, 0]]);
    session.openRequest(fields(3), true, noHandler);
    session.flush();
    expect(sizes[1] as number).toBeLessThan((sizes[0] as number) / 3);

    // Decode everything the peer received, in order, with one decoder as the peer would.
    const bytes = Buffer.concat(channel.written).subarray(CLIENT_PREFACE.length);
    const dec = new HpackDecoder();
    const seen: string[] = [];
    new FrameReader({
      onFrame: (type, flags, _id, buf, start, end) => {
        if (type === FrameType.SETTINGS && flags & Flag.ACK) seen.push('ack');
        if (type === FrameType.HEADERS) {
          const first = buf[start] as number;
          seen.push(first === 0x20 ? 'headers+update0' : 'headers');
          dec.decode(buf, start, end);
        }
        return true;
      },
      onOversizedFrame: () => {
        throw new Error('oversized frame');
      },
    }).push(bytes);
    expect(seen).toEqual(['ack', 'headers', 'headers', 'headers', 'ack', 'headers+update0']);
    expect(dec.tableSize).toBe(0);
    expect(session.headerBlockStats.blocks).toBe(4);
  });
});
