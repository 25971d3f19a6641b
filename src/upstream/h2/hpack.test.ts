import { describe, expect, test } from 'bun:test';
import { ByteWriter } from './bytes.ts';
import { encodeField, HpackDecoder, HpackError, writeInt } from './hpack.ts';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.ts';

/** Bytes from a hex string with optional spaces. */
function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Flat decoder output as pairs. */
function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe('HPACK integers (RFC 7541 C.1)', () => {
  test.each([
    [10, 5, '0a'],
    [1337, 5, '1f9a0a'],
    [42, 8, '2a'],
    [31, 5, '1f00'],
    [127, 7, '7f00'],
    [128, 7, '7f01'],
  ])('%d with a %d-bit prefix -> %s', (value, prefix, expected) => {
    const w = new ByteWriter(8);
    writeInt(w, 0, prefix, value);
    expect(Buffer.from(w.copy()).toString('hex')).toBe(expected);
  });
});

describe('Huffman code (RFC 7541 Appendix B)', () => {
  test('the rebuilt canonical code matches entries of the RFC table', () => {
    const expected: [number, number, number][] = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [2, 0xfffffe2, 28],
      [9, 0xffffea, 24],
      [10, 0x3ffffffc, 30],
      [13, 0x3ffffffd, 30],
      [22, 0x3ffffffe, 30],
      [32, 0x14, 6],
      [33, 0x3f8, 10],
      [35, 0xffa, 12],
      [48, 0x0, 5],
      [58, 0x5c, 7],
      [60, 0x7ffc, 15],
      [65, 0x21, 6],
      [88, 0xfc, 8],
      [92, 0x7fff0, 19],
      [97, 0x3, 5],
      [124, 0x7fc, 11],
      [125, 0x3ffd, 14],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, length] of expected) {
      expect([sym, HUFFMAN_CODES[sym], HUFFMAN_LENGTHS[sym]]).toEqual([sym, code, length]);
    }
  });

  test('the code is complete (Kraft sum exactly 1) and every symbol has a code', () => {
    let sum = 0;
    for (let sym = 0; sym <= 256; sym++) {
      const length = HUFFMAN_LENGTHS[sym] as number;
      expect(length).toBeGreaterThanOrEqual(5);
      sum += 2 ** -length;
    }
    expect(sum).toBe(1);
  });

  test('every byte value round-trips', () => {
    let s = '';
    for (let b = 0; b < 256; b++) s += String.fromCharCode(b);
    s += s.split('').reverse().join('');
    const buf = new Uint8Array(huffmanEncodedLength(s));
    expect(huffmanEncode(s, buf, 0)).toBe(buf.length);
    expect(huffmanDecode(buf, 0, buf.length)).toBe(s);
  });

  test('invalid input: padding longer than 7 bits, padding not all ones, an EOS symbol', () => {
    // 'a' is 00011 (5 bits); 0x1f = 00011|111 is valid.
    expect(huffmanDecode(Uint8Array.of(0x1f), 0, 1)).toBe('a');
    // A whole byte of padding (8 bits of ones) after a full byte.
    expect(huffmanDecode(Uint8Array.of(0x1f, 0xff), 0, 2)).toBeUndefined();
    // Padding with a zero bit.
    expect(huffmanDecode(Uint8Array.of(0x1e), 0, 1)).toBeUndefined();
    // EOS: 30 ones.
    expect(huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xff), 0, 4)).toBeUndefined();
  });
});

/** RFC 7541 C.3 (requests without Huffman) and C.4 (the same with Huffman). */
const REQUESTS: { name: string; blocks: string[] }[] = [
  {
    name: 'C.3 without Huffman',
    blocks: [
      '828684410f7777772e6578616d706c652e636f6d',
      '828684be58086e6f2d6361636865',
      '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
    ],
  },
  {
    name: 'C.4 with Huffman',
    blocks: ['828684418cf1e3c2e5f23a6ba0ab90f4ff', '828684be5886a8eb10649cbf', '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf'],
  },
];

const REQUEST_HEADERS: [string, string][][] = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
];

const REQUEST_TABLES: { entries: [string, string][]; size: number }[] = [
  { entries: [[':authority', 'www.example.com']], size: 57 },
  {
    entries: [
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    size: 110,
  },
  {
    entries: [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    size: 164,
  },
];

describe('HPACK decoding of the RFC 7541 request examples', () => {
  for (const { name, blocks } of REQUESTS) {
    test(name, () => {
      const d = new HpackDecoder();
      blocks.forEach((block, i) => {
        expect(pairs(d.decode(hex(block)))).toEqual(REQUEST_HEADERS[i] as [string, string][]);
        expect(d.entries()).toEqual((REQUEST_TABLES[i] as { entries: [string, string][] }).entries);
        expect(d.tableSize).toBe((REQUEST_TABLES[i] as { size: number }).size);
      });
    });
  }
});

/** RFC 7541 C.5 (responses without Huffman) and C.6 (with Huffman), both with a 256-byte table. */
const RESPONSES: { name: string; blocks: string[] }[] = [
  {
    name: 'C.5 without Huffman',
    blocks: [
      '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d',
      '4803333037c1c0bf',
      '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31',
    ],
  },
  {
    name: 'C.6 with Huffman',
    blocks: [
      '488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3',
      '4883640effc1c0bf',
      '88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007',
    ],
  },
];

const DATE_1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE_2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';

const RESPONSE_HEADERS: [string, string][][] = [
  [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', DATE_1],
    ['location', LOCATION],
  ],
  [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', DATE_1],
    ['location', LOCATION],
  ],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', DATE_2],
    ['location', LOCATION],
    ['content-encoding', 'gzip'],
    ['set-cookie', COOKIE],
  ],
];

const RESPONSE_TABLES: { entries: [string, string][]; size: number }[] = [
  {
    entries: [
      ['location', LOCATION],
      ['date', DATE_1],
      ['cache-control', 'private'],
      [':status', '302'],
    ],
    size: 222,
  },
  {
    entries: [
      [':status', '307'],
      ['location', LOCATION],
      ['date', DATE_1],
      ['cache-control', 'private'],
    ],
    size: 222,
  },
  {
    entries: [
      ['set-cookie', COOKIE],
      ['content-encoding', 'gzip'],
      ['date', DATE_2],
    ],
    size: 215,
  },
];

describe('HPACK decoding of the RFC 7541 response examples (eviction)', () => {
  for (const { name, blocks } of RESPONSES) {
    test(name, () => {
      const d = new HpackDecoder(256);
      // The encoder's first block announces the smaller table as a size update; the examples start at 256.
      d.decode(Uint8Array.of(0x3f, 0xe1, 0x01)); // size update to 256
      blocks.forEach((block, i) => {
        expect(pairs(d.decode(hex(block)))).toEqual(RESPONSE_HEADERS[i] as [string, string][]);
        expect(d.entries()).toEqual((RESPONSE_TABLES[i] as { entries: [string, string][] }).entries);
        expect(d.tableSize).toBe((RESPONSE_TABLES[i] as { size: number }).size);
      });
    });
  }
});

describe('HPACK decoder errors and limits', () => {
  test.each([
    ['index 0', '80'],
    ['static index out of range', 'ff00'],
    ['truncated integer', '1fff'],
    ['string longer than the block', '0a0568656c'],
    ['invalid Huffman string', '0a81fe'],
    ['size update above the settings limit', '3fe21f'],
  ])('%s -> HpackError', (_name, block) => {
    expect(() => new HpackDecoder().decode(hex(block))).toThrow(HpackError);
  });

  test('a size update after a field is an error; at the start it evicts', () => {
    const d = new HpackDecoder();
    d.decode(hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572')); // custom-key: custom-header, indexed
    expect(d.tableSize).toBe(55);
    expect(() => d.decode(hex('8220'))).toThrow(HpackError);
    const d2 = new HpackDecoder();
    d2.decode(hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572'));
    expect(pairs(d2.decode(hex('2082')))).toEqual([[':method', 'GET']]);
    expect(d2.tableSize).toBe(0);
  });

  test('never-indexed and without-indexing literals are not added to the table (C.2.2, C.2.3)', () => {
    const d = new HpackDecoder();
    expect(pairs(d.decode(hex('040c2f73616d706c652f70617468')))).toEqual([[':path', '/sample/path']]);
    expect(pairs(d.decode(hex('100870617373776f726406736563726574')))).toEqual([['password', 'secret']]);
    expect(d.tableSize).toBe(0);
  });

  test('the header list limit: the list comes back empty and flagged, the dynamic table still in step', () => {
    const d = new HpackDecoder(4096, 40);
    expect(d.decode(hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572'))).toEqual([]);
    expect(d.listTooLarge).toBe(true);
    // The entry the over-limit block added is there for the next block (index 62), which is under the limit again.
    const next = new HpackDecoder(4096, 200);
    next.decode(hex('400a637573746f6d2d6b65790d637573746f6d2d686561646572'));
    expect(next.decode(Uint8Array.of(0x80 | 62))).toEqual(['custom-key', 'custom-header']);
    expect(d.decode(Uint8Array.of(0x84))).toEqual([':path', '/']); // 38 bytes: under the limit
    expect(d.listTooLarge).toBe(false);
  });
});

describe('HPACK encoder', () => {
  test('static matches are indexed, other fields literal without indexing, and all decode back', () => {
    const fields: [string, string][] = [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'example.test'],
      [':path', '/a?b=c'],
      ['accept-encoding', 'gzip, deflate'],
      ['user-agent', 'x'.repeat(300)],
      ['x-custom', 'value with spaces and \t tab'],
      ['x-latin1', '\u00e9\u00ff'],
    ];
    const w = new ByteWriter(16);
    for (const [n, v] of fields) encodeField(w, n, v);
    const block = w.copy();
    expect(block[0]).toBe(0x82); // :method GET
    expect(block[1]).toBe(0x87); // :scheme https
    expect(block[2]).toBe(0x01); // :authority, literal without indexing, static name 1
    const d = new HpackDecoder();
    expect(pairs(d.decode(block))).toEqual(fields);
    expect(d.tableSize).toBe(0);
  });
});
