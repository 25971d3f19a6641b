/**
 * The raw-HTTP/3 bad-input corpus (issue 5): malformed requests sent with `node:quic` (test/support/raw-h3-client.ts,
 * its own process) to one Spooky process in front of a raw TCP backend that records every byte it receives.
 * For each case: what the client sees (a Spooky or Bun status, a connection close by lsquic, a refusal by the
 * client library itself, or no answer), what reached the backend (nothing, never a complete request, or a
 * sanitised form), and that a normal request right afterwards is served. The README table "HTTP/3 bad-input
 * corpus" lists the same outcomes.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type SpookyProcess, startSpooky } from '../support/process.ts';
import { type RawH3Case, type RawH3Outcome, type RawH3Result, runRawH3 } from '../support/raw-h3-client.ts';
import { type RawRequest, type RawServer, startRawServer } from '../support/raw-http-server.ts';
import { waitUntil } from '../support/wait.ts';

type Fields = [string, string][];
const AUTHORITY = 'corpus.test';

/** What the client must see. */
type Seen =
  | { status: number; by: 'spooky' | 'bun' } // an HTTP answer; `spooky` ones carry x-request-id and have an access-log line
  | { closed: number } // the connection was closed with this HTTP/3 error code (270 H3_MESSAGE_ERROR, 512 QPACK_DECOMPRESSION_FAILED)
  | { refused: string } // node:quic refused to send it (error code)
  | { timeout: true }; // no answer before the client's deadline

/** What the backend must have received. */
type Reached =
  | 'nothing' // not one byte of this request
  | 'incomplete' // possibly a head and part of the body, but never a complete request, and the connection was closed
  | ((req: RawRequest) => void); // exactly one complete request, checked by the function

interface CorpusCase {
  name: string;
  /** The fields to send: the normal request (`GET /c/<name>` to corpus.test, with `x-case`) changed by `edit`. */
  edit?: (f: Fields) => Fields;
  body?: string[];
  fin?: boolean;
  pauseMs?: number;
  timeoutMs?: number;
  seen: Seen;
  reached: Reached;
}

const without =
  (name: string) =>
  (f: Fields): Fields =>
    f.filter(([n]) => n !== name);
const set =
  (name: string, value: string) =>
  (f: Fields): Fields =>
    f.map(([n, v]): [string, string] => (n === name ? [n, value] : [n, v]));
const add =
  (...more: Fields) =>
  (f: Fields): Fields => [...f, ...more];
const post = (cl?: string) => (f: Fields) => (cl === undefined ? set(':method', 'POST')(f) : add(['content-length', cl])(set(':method', 'POST')(f)));
const pipe =
  (...fs: ((f: Fields) => Fields)[]) =>
  (f: Fields): Fields =>
    fs.reduce((acc, g) => g(acc), f);
const many = (n: number, name = (i: number) => `x-h${i}`): Fields => Array.from({ length: n }, (_, i): [string, string] => [name(i), 'v']);

const spooky400: Seen = { status: 400, by: 'spooky' };
const message: Seen = { closed: 270 };
/** The backend got the request as a plain GET of /c/<name>, with `check` on top. */
const plainGet =
  (name: string, check: (r: RawRequest) => void = () => {}) =>
  (r: RawRequest): void => {
    expect(r.line).toBe(`GET /c/${name} HTTP/1.1`);
    check(r);
  };

const CASES: CorpusCase[] = [
  // control: the normal request of each case, unchanged
  { name: 'control-get', seen: { status: 200, by: 'spooky' }, reached: plainGet('control-get') },
  {
    name: 'control-post',
    edit: post('5'),
    body: ['hello'],
    seen: { status: 200, by: 'spooky' },
    reached: (r) => expect([r.line, r.body.toString()]).toEqual(['POST /c/control-post HTTP/1.1', 'hello']),
  },
  // pseudo-headers (RFC 9114 §4.3.1)
  { name: 'no-method', edit: without(':method'), seen: spooky400, reached: 'nothing' },
  { name: 'empty-method', edit: set(':method', ''), seen: spooky400, reached: 'nothing' },
  { name: 'method-with-space', edit: set(':method', 'GE T'), seen: spooky400, reached: 'nothing' },
  { name: 'extension-method', edit: set(':method', 'FOO'), seen: spooky400, reached: 'nothing' },
  {
    name: 'extension-method-with-body',
    edit: pipe(set(':method', 'FOO'), add(['content-length', '3'])),
    body: ['abc'],
    seen: spooky400,
    reached: 'nothing',
  },
  { name: 'method-with-crlf', edit: set(':method', 'GET\r\nx-injected: 1'), seen: message, reached: 'nothing' },
  { name: 'lower-case-method', edit: set(':method', 'get'), seen: { status: 200, by: 'spooky' }, reached: plainGet('lower-case-method') },
  { name: 'no-path', edit: without(':path'), seen: { status: 404, by: 'bun' }, reached: 'nothing' },
  { name: 'empty-path', edit: set(':path', ''), seen: { status: 404, by: 'bun' }, reached: 'nothing' },
  { name: 'no-scheme', edit: without(':scheme'), seen: { status: 200, by: 'spooky' }, reached: plainGet('no-scheme') },
  {
    name: 'scheme-http',
    edit: set(':scheme', 'http'),
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('scheme-http', (r) => expect(r.headers.get('x-forwarded-proto')).toBe('https')),
  },
  { name: 'no-authority-no-host', edit: without(':authority'), seen: spooky400, reached: 'nothing' },
  {
    name: 'host-instead-of-authority',
    edit: pipe(without(':authority'), add(['host', AUTHORITY])),
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('host-instead-of-authority', (r) => expect(r.headers.get('host')).toBe(AUTHORITY)),
  },
  {
    name: 'host-differs-from-authority',
    edit: add(['host', 'other.test']),
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('host-differs-from-authority', (r) => expect(r.headers.get('host')).toBe(AUTHORITY)),
  },
  { name: 'duplicate-path', edit: add([':path', '/other']), seen: { refused: 'ERR_HTTP2_HEADER_SINGLE_VALUE' }, reached: 'nothing' },
  { name: 'duplicate-method', edit: add([':method', 'POST']), seen: { refused: 'ERR_HTTP2_HEADER_SINGLE_VALUE' }, reached: 'nothing' },
  { name: 'unknown-pseudo-header', edit: add([':foo', 'x']), seen: { refused: 'ERR_HTTP2_INVALID_PSEUDOHEADER' }, reached: 'nothing' },
  {
    // node:quic always sends the pseudo-headers first, so this arrives well-formed
    name: 'pseudo-header-after-regular',
    edit: (f) => [['x-first', '1'], ...f],
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('pseudo-header-after-regular', (r) => expect(r.headers.get('x-first')).toBe('1')),
  },
  // request targets
  {
    name: 'absolute-form-same-authority',
    edit: set(':path', `https://${AUTHORITY}/c/absolute-form-same-authority?q=1`),
    seen: { status: 200, by: 'spooky' },
    reached: (r) => expect(r.line).toBe('GET /c/absolute-form-same-authority?q=1 HTTP/1.1'),
  },
  { name: 'absolute-form-other-authority', edit: set(':path', 'https://evil.test/c/x'), seen: spooky400, reached: 'nothing' },
  {
    name: 'asterisk-with-options',
    edit: pipe(set(':method', 'OPTIONS'), set(':path', '*')),
    seen: { status: 404, by: 'spooky' },
    reached: 'nothing',
  },
  { name: 'asterisk-with-get', edit: set(':path', '*'), seen: spooky400, reached: 'nothing' },
  { name: 'path-without-slash', edit: set(':path', 'c/x'), seen: spooky400, reached: 'nothing' },
  { name: 'path-with-fragment', edit: set(':path', '/c/x#frag'), seen: spooky400, reached: 'nothing' },
  {
    name: 'path-with-space',
    edit: set(':path', '/c/path-with-space/a b'),
    seen: { status: 200, by: 'spooky' },
    reached: (r) => expect(r.line).toBe('GET /c/path-with-space/a%20b HTTP/1.1'),
  },
  {
    name: 'path-with-dot-segments',
    edit: set(':path', '/c/x/../../c/path-with-dot-segments'),
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('path-with-dot-segments'),
  },
  {
    name: 'path-with-tab',
    edit: set(':path', '/c/path-with-tab/a\tb'),
    seen: { status: 200, by: 'spooky' },
    reached: (r) => expect(r.line).toBe('GET /c/path-with-tab/ab HTTP/1.1'),
  },
  {
    name: 'path-with-control-char',
    edit: set(':path', '/c/path-with-control-char/a\x01b'),
    seen: { status: 200, by: 'spooky' },
    reached: (r) => expect(r.line).toBe('GET /c/path-with-control-char/a%01b HTTP/1.1'),
  },
  {
    name: 'path-with-raw-utf8',
    edit: set(':path', '/c/path-with-raw-utf8/\u00e9'),
    seen: { status: 200, by: 'spooky' },
    reached: (r) => expect(r.line).toBe('GET /c/path-with-raw-utf8/%EF%BF%BD HTTP/1.1'),
  },
  { name: 'path-with-crlf', edit: set(':path', '/c/x\r\nx-injected: 1'), seen: message, reached: 'nothing' },
  { name: 'authority-with-crlf', edit: set(':authority', `${AUTHORITY}\r\nx-injected: 1`), seen: message, reached: 'nothing' },
  { name: 'authority-with-userinfo', edit: set(':authority', `user@${AUTHORITY}`), seen: spooky400, reached: 'nothing' },
  // field names (RFC 9114 §4.2)
  {
    // node:quic lower-cases names before sending
    name: 'upper-case-name',
    edit: add(['X-Upper', 'v']),
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('upper-case-name', (r) => expect(r.head).toContain('\r\nx-upper: v')),
  },
  { name: 'name-with-space', edit: add(['x bad', 'v']), seen: { refused: 'ERR_INVALID_HTTP_TOKEN' }, reached: 'nothing' },
  { name: 'name-with-colon', edit: add(['x:bad', 'v']), seen: { refused: 'ERR_INVALID_HTTP_TOKEN' }, reached: 'nothing' },
  // field values
  { name: 'value-with-cr', edit: add(['x-bad', 'a\rb']), seen: message, reached: 'nothing' },
  { name: 'value-with-lf', edit: add(['x-bad', 'a\nb']), seen: message, reached: 'nothing' },
  { name: 'value-with-crlf-injection', edit: add(['x-bad', 'a\r\nx-injected: 1']), seen: message, reached: 'nothing' },
  { name: 'value-with-nul', edit: add(['x-bad', 'a\0b']), seen: { refused: 'ERR_INVALID_CHAR' }, reached: 'nothing' },
  { name: 'value-with-control-char', edit: add(['x-bad', 'a\x01b']), seen: spooky400, reached: 'nothing' },
  {
    name: 'value-with-outer-spaces',
    edit: add(['x-bad', '  a  ']),
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('value-with-outer-spaces', (r) => expect(r.head).toContain('\r\nx-bad: a\r\n')),
  },
  // connection-specific fields (RFC 9114 §4.2)
  { name: 'connection', edit: add(['connection', 'close']), seen: { refused: 'ERR_HTTP2_INVALID_CONNECTION_HEADERS' }, reached: 'nothing' },
  { name: 'keep-alive', edit: add(['keep-alive', 'timeout=5']), seen: { refused: 'ERR_HTTP2_INVALID_CONNECTION_HEADERS' }, reached: 'nothing' },
  {
    name: 'proxy-connection',
    edit: add(['proxy-connection', 'keep-alive']),
    seen: { refused: 'ERR_HTTP2_INVALID_CONNECTION_HEADERS' },
    reached: 'nothing',
  },
  {
    name: 'transfer-encoding',
    edit: pipe(post(), add(['transfer-encoding', 'chunked'])),
    body: ['5\r\nhello\r\n0\r\n\r\n'],
    seen: { refused: 'ERR_HTTP2_INVALID_CONNECTION_HEADERS' },
    reached: 'nothing',
  },
  { name: 'upgrade', edit: add(['upgrade', 'websocket']), seen: { refused: 'ERR_HTTP2_INVALID_CONNECTION_HEADERS' }, reached: 'nothing' },
  { name: 'te-gzip', edit: add(['te', 'gzip']), seen: { refused: 'ERR_HTTP2_INVALID_CONNECTION_HEADERS' }, reached: 'nothing' },
  {
    name: 'te-trailers',
    edit: add(['te', 'trailers']),
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('te-trailers', (r) => expect(r.headers.has('te')).toBe(false)),
  },
  // content-length
  { name: 'content-length-conflicting-list', edit: post('3, 4'), body: ['abc'], seen: message, reached: 'nothing' },
  { name: 'content-length-repeated-list', edit: post('3, 3'), body: ['abc'], seen: message, reached: 'nothing' },
  { name: 'content-length-not-a-number', edit: post('abc'), body: ['abc'], seen: message, reached: 'nothing' },
  { name: 'content-length-negative', edit: post('-1'), body: ['abc'], seen: message, reached: 'nothing' },
  {
    name: 'content-length-twice',
    edit: pipe(post('3'), add(['content-length', '3'])),
    body: ['abc'],
    seen: { refused: 'ERR_HTTP2_HEADER_SINGLE_VALUE' },
    reached: 'nothing',
  },
  { name: 'content-length-on-get', edit: add(['content-length', '3']), body: ['abc'], seen: spooky400, reached: 'nothing' },
  // sizes
  { name: 'header-value-20k', edit: add(['x-big', 'a'.repeat(20_000)]), seen: { status: 431, by: 'bun' }, reached: 'nothing' },
  { name: 'header-value-40k', edit: add(['x-big', 'a'.repeat(40_000)]), seen: { closed: 512 }, reached: 'nothing' },
  {
    // 4 pseudo-headers + x-case + 123 = 128 fields: the most Bun answers
    name: 'fields-128',
    edit: add(...many(123)),
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('fields-128', (r) => expect(r.headers.get('x-h122')).toBe('v')),
  },
  { name: 'fields-129', edit: add(...many(124)), timeoutMs: 2000, seen: { timeout: true }, reached: 'nothing' },
  { name: 'same-field-129-times', edit: add(...many(124, () => 'x-same')), timeoutMs: 2000, seen: { timeout: true }, reached: 'nothing' },
  // bodies against content-length
  { name: 'body-longer-than-content-length', edit: post('3'), body: ['abcdef'], seen: message, reached: 'nothing' },
  {
    // the first DATA frame completes the declared length; the extra byte comes 300 ms later
    name: 'body-longer-after-complete-length',
    edit: post('1000'),
    body: ['a'.repeat(1000), 'b'],
    pauseMs: 300,
    seen: message,
    reached: 'incomplete',
  },
  { name: 'body-shorter-than-content-length', edit: post('6'), body: ['abc'], seen: message, reached: 'incomplete' },
  { name: 'body-shorter-without-fin', edit: post('6'), body: ['abc'], fin: false, timeoutMs: 1500, seen: { timeout: true }, reached: 'incomplete' },
  {
    // Bun drops DATA frames on a GET
    name: 'body-on-get-without-content-length',
    body: ['abc'],
    seen: { status: 200, by: 'spooky' },
    reached: plainGet('body-on-get-without-content-length', (r) => expect(r.body.length).toBe(0)),
  },
];

function describeOutcome(o: RawH3Outcome): string {
  return JSON.stringify(o.kind === 'response' ? { ...o, body: o.body.slice(0, 200) } : o);
}

describe('raw HTTP/3 bad-input corpus', () => {
  let backend: RawServer;
  let spooky: SpookyProcess;
  const rawByConnection: string[] = [];
  const complete: RawRequest[] = [];
  const results = new Map<string, RawH3Result>();

  beforeAll(async () => {
    backend = startRawServer({
      onData: (conn, data) => {
        rawByConnection[conn.id] = (rawByConnection[conn.id] ?? '') + data.toString('latin1');
      },
      onRequest: (conn, req) => {
        complete.push(req);
        conn.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-from: backend\r\n\r\nok');
      },
    });
    spooky = await startSpooky(`
upstream:
  corpus:
    route: { path_prefix: / }
    backends: [{ id: recorder, address: "http://127.0.0.1:${backend.port}" }]
`);
    const cases: RawH3Case[] = CASES.map((c) => {
      const base: Fields = [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':authority', AUTHORITY],
        [':path', `/c/${c.name}`],
        ['x-case', c.name],
      ];
      const out: RawH3Case = { name: c.name, headers: c.edit ? c.edit(base) : base };
      if (c.body) out.body = c.body;
      if (c.fin !== undefined) out.fin = c.fin;
      if (c.pauseMs) out.pauseMs = c.pauseMs;
      if (c.timeoutMs) out.timeoutMs = c.timeoutMs;
      return out;
    });
    for (const r of await runRawH3(spooky.port, cases, { timeoutMs: 10_000, afterPath: '/c/after', concurrency: 4 })) results.set(r.name, r);
  }, 120_000);

  afterAll(async () => {
    await spooky?.stop();
    backend?.stop();
  });

  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (name, c) => {
    const r = results.get(name);
    expect(r).toBeDefined();
    const o = (r as RawH3Result).outcome;
    const what = `${name}: ${describeOutcome(o)}`;
    // what the client saw
    const seen = c.seen;
    if ('status' in seen) {
      expect(o.kind === 'response' && o.status, what).toBe(seen.status);
      if (o.kind === 'response' && seen.by === 'spooky' && seen.status >= 400) {
        // Spooky's own refusal: an x-request-id and an access-log line with an error code
        const id = o.headers['x-request-id'];
        expect(id, what).toBeString();
        const line = await spooky.child.waitFor((l) => l.request_id === id, 10_000, `access-log line of ${name}`);
        expect(line.status).toBe(seen.status);
        expect(line.error).toBeString();
      }
      if (o.kind === 'response' && seen.by === 'bun') expect(o.headers['x-request-id'], what).toBeUndefined();
    } else if ('closed' in seen) {
      expect(o.kind, what).toBe('closed');
      expect('message' in o && o.message, what).toContain(`error ${seen.closed}`);
    } else if ('refused' in seen) {
      expect(o.kind === 'refused' && o.code, what).toBe(seen.refused);
    } else {
      expect(o.kind, what).toBe('timeout');
    }
    // Spooky still serves: a normal request right afterwards
    expect((r as RawH3Result).after, `normal request after ${name}`).toBe(200);
    // what the backend received
    const marker = `\r\nx-case: ${name}\r\n`;
    const mine = complete.filter((q) => q.headers.get('x-case') === name);
    if (c.reached === 'nothing') {
      expect(
        rawByConnection.some((t) => t?.includes(marker)),
        `${name} reached the backend`,
      ).toBe(false);
    } else if (c.reached === 'incomplete') {
      expect(mine.length, `${name} reached the backend complete`).toBe(0);
      // whatever part of it went out, that upstream connection was closed
      await waitUntil(
        () => backend.connections.every((conn) => !rawByConnection[conn.id]?.includes(marker) || conn.closed),
        10_000,
        `the upstream connection carrying ${name} to close`,
      );
    } else {
      expect(mine.length, `${name} reached the backend once`).toBe(1);
      c.reached(mine[0] as RawRequest);
    }
  });

  test('the shorter body without FIN was logged as 499 when the client went away', async () => {
    await spooky.child.waitFor((l) => l.path === '/c/body-shorter-without-fin' && l.status === 499, 10_000, '499 line');
  });

  test('Spooky is still running', () => {
    expect(spooky.child.proc.exitCode).toBeNull();
  });
});
