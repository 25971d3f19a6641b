import { describe, expect, test } from 'bun:test';
import {
  ChunkedDecoder,
  checkFieldValue,
  DECODE_ERROR,
  DECODE_MORE,
  FRAMING_CHUNKED,
  FRAMING_NONE,
  isToken,
  parseContentLength,
  parseResponseHead,
  type ResponseHead,
  serializeRequestHead,
} from './http1-parser.ts';

/** Parses a head given with its blank line (as on the wire); the parser wants it without. */
function parse(raw: string): ResponseHead | string {
  expect(raw.endsWith('\r\n\r\n')).toBe(true);
  return parseResponseHead(raw.slice(0, -2));
}

function ok(raw: string): ResponseHead {
  const r = parse(raw);
  if (typeof r === 'string') throw new Error(`unexpected parse error: ${r}`);
  return r;
}

describe('parseResponseHead', () => {
  test('status line, headers in order, lower-cased names, trimmed values', () => {
    const h = ok('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A:  a b \t\r\nx-empty:\r\ncontent-length: 5\r\n\r\n');
    expect(h.status).toBe(200);
    expect(h.minor).toBe(1);
    expect(h.headers).toEqual([
      ['content-type', 'text/plain'],
      ['x-a', 'a b'],
      ['x-empty', ''],
      ['content-length', '5'],
    ]);
    expect(h.contentLength).toBe(5);
    expect(h.chunked).toBe(false);
    expect(h.keepAlive).toBe(true);
  });

  test.each([
    ['HTTP/1.1 204 No Content\r\n\r\n', 204],
    ['HTTP/1.1 404 \r\n\r\n', 404], // empty reason
    ['HTTP/1.1 500\r\n\r\n', 500], // no reason, no space
    ['HTTP/1.0 200 OK\r\n\r\n', 200],
    ['HTTP/1.1 599 Whatever it is\r\n\r\n', 599],
    ['HTTP/1.1 200 caf\u00e9\r\n\r\n', 200], // obs-text in reason
  ])('accepts %j', (raw, status) => {
    expect(ok(raw).status).toBe(status);
  });

  test.each([
    ['HTTP/2 200 OK\r\n\r\n', 'version'],
    ['HTTP/1.1 20 OK\r\n\r\n', 'status'],
    ['HTTP/1.1 2000 OK\r\n\r\n', 'status line'],
    ['HTTP/1.1 099 OK\r\n\r\n', 'status'],
    ['HTTP/1.1 abc OK\r\n\r\n', 'status'],
    ['HTTP/1.1  200 OK\r\n\r\n', 'status'],
    ['http/1.1 200 OK\r\n\r\n', 'version'],
    ['HTTP/1.1 200 O\x00K\r\n\r\n', 'reason'],
    ['HTTP/1.1 200 OK\r\nfoo: bar\r\n baz\r\n\r\n', 'obs-fold'],
    ['HTTP/1.1 200 OK\r\n\tfoo: bar\r\n\r\n', 'obs-fold'],
    ['HTTP/1.1 200 OK\r\nfoo \tx: bar\r\n\r\n', 'whitespace, then more name, before the colon'],
    ['HTTP/1.1 200 OK\r\nfo o: bar\r\n\r\n', 'space in name'],
    ['HTTP/1.1 200 OK\r\n: bar\r\n\r\n', 'empty name'],
    ['HTTP/1.1 200 OK\r\nfoo bar\r\n\r\n', 'no colon'],
    ['HTTP/1.1 200 OK\r\nf\u00e9e: bar\r\n\r\n', 'non-token name'],
    ['HTTP/1.1 200 OK\r\nfoo: b\x00ar\r\n\r\n', 'NUL in value'],
    ['HTTP/1.1 200 OK\r\nfoo: b\nar\r\n\r\n', 'bare LF in value'],
    ['HTTP/1.1 200 OK\r\nfoo: b\rar\r\n\r\n', 'bare CR in value'],
    ['HTTP/1.1 200 OK\r\nfoo: b\x7far\r\n\r\n', 'DEL in value'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n', 'conflicting content-length'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n', 'conflicting content-length list'],
    ['HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n', 'negative content-length'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 0x10\r\n\r\n', 'hex content-length'],
    ['HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n', 'empty content-length'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 1 2\r\n\r\n', 'spaced content-length'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999\r\n\r\n', 'huge content-length'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n', 'TE and CL'],
    ['HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n', 'CL and TE'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n', 'TE gzip'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n', 'TE chunked twice'],
    ['HTTP/1.1 200 OK\r\ntransfer-encoding: identity\r\n\r\n', 'TE identity'],
    ['HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', 'TE in HTTP/1.0 (RFC 9112 §6.1: framing faulty)'],
    ['HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n', 'TE in keep-alive HTTP/1.0'],
  ])('rejects %j (%s)', (raw) => {
    expect(typeof parse(raw)).toBe('string');
  });

  test('whitespace between a field name and its colon is removed (RFC 9112 §5.1: a proxy MUST remove it)', () => {
    expect(ok('HTTP/1.1 200 OK\r\nX-A \t: 1\r\ncontent-length : 2\r\n\r\n').headers).toEqual([
      ['x-a', '1'],
      ['content-length', '2'],
    ]);
    expect(ok('HTTP/1.1 200 OK\r\ncontent-length : 2\r\n\r\n').contentLength).toBe(2);
  });

  test('content-length with leading zeros (1*DIGIT): only significant digits count against the limit', () => {
    expect(ok('HTTP/1.1 200 OK\r\ncontent-length: 0000000000000002\r\n\r\n').contentLength).toBe(2);
    expect(typeof parse('HTTP/1.1 200 OK\r\ncontent-length: 0001234567890123456\r\n\r\n')).toBe('string');
  });

  test('identical repeated content-length values are accepted (RFC 9110 §8.6)', () => {
    expect(ok('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nContent-Length: 5\r\n\r\n').contentLength).toBe(5);
    expect(ok('HTTP/1.1 200 OK\r\ncontent-length: 5 , 5\r\n\r\n').contentLength).toBe(5);
  });

  test('transfer-encoding chunked, any case', () => {
    const h = ok('HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n');
    expect(h.chunked).toBe(true);
    expect(h.contentLength).toBe(-1);
  });

  test.each([
    ['HTTP/1.1 200 OK\r\n\r\n', true],
    ['HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n', false],
    ['HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\n\r\n', false],
    ['HTTP/1.1 200 OK\r\nconnection: upgrade\r\n\r\n', true],
    ['HTTP/1.0 200 OK\r\n\r\n', false],
    ['HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\n', true],
    ['HTTP/1.0 200 OK\r\nconnection: foo , keep-alive\r\n\r\n', true],
  ])('keep-alive of %j is %p', (raw, keepAlive) => {
    expect(ok(raw).keepAlive).toBe(keepAlive);
  });
});

describe('parseContentLength', () => {
  test.each([
    ['0', 0],
    ['42', 42],
    ['007', 7],
    ['42,42', 42],
    ['42, 42,\t42', 42],
    ['999999999999999', 999999999999999],
    ['', -1],
    ['4 2', -1],
    ['42,', -1],
    [',42', -1],
    ['42,43', -1],
    ['+1', -1],
    ['1e3', -1],
    ['1234567890123456', -1],
    ['00000000000000000042', 42],
    ['0001234567890123456', -1],
  ])('%j -> %p', (v, n) => {
    expect(parseContentLength(v)).toBe(n);
  });
});

describe('ChunkedDecoder', () => {
  function decodeAll(wire: string, splitEvery = 0): { body: string; end: number } | { error: string } {
    const buf = Buffer.from(wire, 'latin1');
    const d = new ChunkedDecoder();
    const out: string[] = [];
    const sink = { onBodyData: (b: Buffer, s: number, e: number) => out.push(b.toString('latin1', s, e)) };
    const step = splitEvery > 0 ? splitEvery : buf.length;
    for (let pos = 0; pos < buf.length; pos += step) {
      // feed a fresh buffer per piece, like separate socket reads
      const piece = Buffer.from(buf.subarray(pos, Math.min(buf.length, pos + step)));
      const r = d.decode(piece, 0, piece.length, sink);
      if (r === DECODE_ERROR) return { error: d.error };
      if (r !== DECODE_MORE) return { body: out.join(''), end: pos + r };
    }
    return { error: 'incomplete' };
  }

  const wires: [string, string][] = [
    ['5\r\nhello\r\n0\r\n\r\n', 'hello'],
    ['5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', 'hello world'],
    ['A\r\n0123456789\r\n0\r\n\r\n', '0123456789'],
    ['a;name=value\r\n0123456789\r\n0;last\r\n\r\n', '0123456789'],
    ['5 ;ext\r\nhello\r\n0\r\n\r\n', 'hello'],
    ['5\r\nhello\r\n0\r\nx-trailer: 1\r\nx-other: 2\r\n\r\n', 'hello'],
    ['0\r\n\r\n', ''],
    ['000\r\n\r\n', ''],
    ['0000000000000002\r\nok\r\n0000000000000000\r\n\r\n', 'ok'], // leading zeros: chunk-size is 1*HEXDIG
  ];

  test.each(wires)('decodes %j whole', (wire, body) => {
    expect(decodeAll(wire)).toEqual({ body, end: wire.length });
  });

  test.each(wires)('decodes %j fed one byte at a time', (wire, body) => {
    expect(decodeAll(wire, 1)).toEqual({ body, end: wire.length });
  });

  test('reports where the body ends when more bytes follow', () => {
    const wire = '3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK';
    expect(decodeAll(wire)).toEqual({ body: 'abc', end: 13 });
  });

  test.each([
    ['x\r\n', 'size'],
    ['\r\n', 'empty size'],
    ['5\nhello\r\n0\r\n\r\n', 'bare LF after size'],
    ['5\r\nhelloX\r\n0\r\n\r\n', 'missing CRLF after data'],
    ['5\r\nhello\rX', 'CR without LF after data'],
    ['1000000000000\r\n', 'size too large'],
    ['0001000000000000\r\n', 'size too large behind leading zeros'],
    ['5;a\nb\r\n', 'LF in extension'],
    ['0\r\n bad\r\n\r\n', 'folded trailer'],
    ['0\r\nx: y\n\r\n', 'bare LF in trailer'],
    ['0\r\n\rX', 'bad final CRLF'],
  ])('rejects %j (%s)', (wire) => {
    expect(decodeAll(wire)).toHaveProperty('error');
  });

  test('hands out data as views of the input, without copying', () => {
    const buf = Buffer.from('5\r\nhello\r\n0\r\n\r\n');
    const views: Uint8Array[] = [];
    new ChunkedDecoder().decode(buf, 0, buf.length, { onBodyData: (b, s, e) => views.push(b.subarray(s, e)) });
    expect(views).toHaveLength(1);
    expect(views[0]!.buffer).toBe(buf.buffer);
  });
});

describe('serializeRequestHead', () => {
  const hs: [string, string][] = [
    ['host', 'example.test'],
    ['x-a', 'b'],
  ];

  test('request line, headers in order, framing', () => {
    expect(serializeRequestHead('GET', '/p?q=1', hs, FRAMING_NONE, 'd')).toEqual({
      ok: true,
      head: 'GET /p?q=1 HTTP/1.1\r\nhost: example.test\r\nx-a: b\r\n\r\n',
    });
    expect(serializeRequestHead('POST', '/', hs, 12, 'd')).toEqual({
      ok: true,
      head: 'POST / HTTP/1.1\r\nhost: example.test\r\nx-a: b\r\ncontent-length: 12\r\n\r\n',
    });
    expect(serializeRequestHead('PUT', '/', hs, FRAMING_CHUNKED, 'd')).toEqual({
      ok: true,
      head: 'PUT / HTTP/1.1\r\nhost: example.test\r\nx-a: b\r\ntransfer-encoding: chunked\r\n\r\n',
    });
  });

  test('adds the default host when none is given', () => {
    expect(serializeRequestHead('GET', '*', [], FRAMING_NONE, '127.0.0.1:8080')).toEqual({
      ok: true,
      head: 'GET * HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n',
    });
  });

  test('obs-text values become latin1 bytes', () => {
    const r = serializeRequestHead('GET', '/', [['x-n', 'caf\u00e9']], FRAMING_NONE, 'h');
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.head).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(r.head as Uint8Array).toString('latin1')).toBe('GET / HTTP/1.1\r\nx-n: caf\u00e9\r\nhost: h\r\n\r\n');
    }
  });

  test.each([
    ['GE T', '/', [], 'method'],
    ['', '/', [], 'empty method'],
    ['GET', '/a b', [], 'space in target'],
    ['GET', '/a\r\nx: y', [], 'CRLF in target'],
    ['GET', '', [], 'empty target'],
    ['GET', '/\u00e9', [], 'non-ASCII target'],
    ['GET', '/', [['x-a', 'b\r\nx-injected: 1']], 'CRLF in value'],
    ['GET', '/', [['x-a', 'b\nc']], 'LF in value'],
    ['GET', '/', [['x-a', 'b\rc']], 'CR in value'],
    ['GET', '/', [['x-a', 'b\x00c']], 'NUL in value'],
    ['GET', '/', [['x-a', '\u0100']], 'char above U+00FF'],
    ['GET', '/', [['x-a', 'b\r']], 'CR at the end of a value (before the line end)'],
    ['GET', '/', [['x-a', 'b\r\n']], 'CRLF at the end of a value (an empty line: the head would end there)'],
    ['GET', '/', [['x-a', 'b\x7f']], 'DEL in value'],
    [
      'GET',
      '/',
      [
        ['x-a', 'caf\u00e9'],
        ['x-b', 'c\r\nx-injected: 1'],
      ],
      'obs-text in one value, CRLF in another',
    ],
    ['GET', '/', [['x a', 'b']], 'space in name'],
    ['GET', '/', [['x-a:', 'b']], 'colon in name'],
    ['GET', '/', [['', 'b']], 'empty name'],
    ['GET', '/', [['x\r\ny', 'b']], 'CRLF in name'],
    ['POST', '/', [['content-length', '5']], 'caller content-length'],
    ['POST', '/', [['Transfer-Encoding', 'chunked']], 'caller transfer-encoding'],
  ] as [string, string, [string, string][], string][])('refuses %j %j %j (%s)', (method, target, headers) => {
    expect(serializeRequestHead(method, target, headers, FRAMING_NONE, 'h').ok).toBe(false);
  });
});

describe('serializeRequestHead over random values', () => {
  // Whatever shortcut the serializer takes, its verdict and bytes must be those of checking every value on its own
  // (checkFieldValue): random values drawn from the characters that matter, seeded so a failure repeats.
  const alphabet = ['a', ' ', '\t', '\r', '\n', '\x00', '\x7f', '\u00e9', '\u0100', ':'];
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const value = (): string => Array.from({ length: next(4) }, () => alphabet[next(alphabet.length)]).join('');
  test('5000 random header sets', () => {
    for (let round = 0; round < 5000; round++) {
      const headers: [string, string][] = Array.from({ length: 1 + next(3) }, (_, i) => [`x-${i}`, value()]);
      const r = serializeRequestHead('GET', '/', headers, FRAMING_NONE, 'h');
      const checks = headers.map(([, v]) => checkFieldValue(v));
      const bad = headers.findIndex((_, i) => (checks[i] as number) < 0);
      if (bad >= 0) {
        expect(r).toEqual({ ok: false, reason: `invalid value for header x-${bad}` });
        continue;
      }
      const text = `GET / HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}host: h\r\n\r\n`;
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      if (checks.some((c) => c > 0x7f)) expect(Buffer.from(r.head as Uint8Array).toString('latin1')).toBe(text);
      else expect(r.head).toBe(text);
    }
  });
});

describe('token and value checks', () => {
  test('isToken', () => {
    expect(isToken("!#$%&'*+-.^_`|~09azAZ")).toBe(true);
    for (const bad of ['', 'a b', 'a:b', 'a"b', 'a(b', 'é', 'a\tb', 'a/b', 'a@b']) expect(isToken(bad)).toBe(false);
  });

  test('checkFieldValue', () => {
    const plain = checkFieldValue('a\tb c');
    expect(plain).toBeGreaterThanOrEqual(0);
    expect(plain).toBeLessThanOrEqual(0x7f);
    expect(checkFieldValue('')).toBe(0);
    expect(checkFieldValue('\u00ff')).toBeGreaterThan(0x7f);
    for (const bad of ['\r', '\n', '\x00', '\x1f', '\x7f', '\u0100']) expect(checkFieldValue(`a${bad}b`)).toBe(-1);
  });
});
