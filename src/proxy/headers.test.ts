import { describe, expect, test } from 'bun:test';
import type { HostPolicyConfig } from '../config/types.ts';
import { compileTrust } from '../lib/cidr.ts';
import {
  buildUpstreamHeaders,
  clientAddressFrom,
  forwardedNode,
  type HeaderSource,
  isSaneRequestId,
  parseContentLength,
  requestIdOf,
  sanitizeResponseHeaders,
  type UpstreamHeaderInput,
} from './headers.ts';

const trusted = compileTrust(['10.0.0.0/8', '2001:db8:ffff::/48']);
const TRUSTED_PEER = '10.0.0.5';
const CLIENT = '203.0.113.7';

/** A header source that, unlike `Headers`, can hold invalid names and values. */
function rawHeaders(list: [string, string][]): HeaderSource {
  return {
    get: (name: string) => {
      const vs = list.filter(([n]) => n === name).map(([, v]) => v);
      return vs.length === 0 ? null : vs.join(', ');
    },
    toJSON: () => {
      const o: Record<string, string | string[]> = {};
      for (const [n, v] of list) {
        const had = o[n];
        if (n === 'set-cookie') o[n] = [...((had as string[] | undefined) ?? []), v];
        else o[n] = had === undefined ? v : `${had}, ${v}`;
      }
      return o;
    },
  };
}

function input(headers: Record<string, string> | HeaderSource, over: Partial<UpstreamHeaderInput> = {}): UpstreamHeaderInput {
  return {
    headers: typeof (headers as HeaderSource).get === 'function' ? (headers as HeaderSource) : new Headers(headers as Record<string, string>),
    clientIp: CLIENT,
    listenerProto: 'https',
    authority: 'Example.com:8443',
    host: 'example.com',
    hostPolicy: { mode: 'pass-through' },
    backendAuthority: '10.1.1.1:8080',
    trusted,
    via: '3 spooky',
    requestId: 'gen-id',
    ...over,
  };
}

function build(headers: Record<string, string> | HeaderSource, over: Partial<UpstreamHeaderInput> = {}) {
  const r = buildUpstreamHeaders(input(headers, over));
  if (!r.ok) throw new Error(`unexpected failure: ${r.reason}`);
  return { ...r, map: new Map(r.headers), names: r.headers.map(([n]) => n) };
}

describe('buildUpstreamHeaders: hop-by-hop', () => {
  test.each<[string, Record<string, string>, string[], string[]]>([
    // [name, incoming, expected present, expected absent]
    [
      'RFC 9110 list and proxy-* removed',
      {
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        'transfer-encoding': 'chunked',
        upgrade: 'websocket',
        'proxy-authorization': 'Basic eA==',
        'proxy-authenticate': 'Basic',
        trailer: 'x-checksum',
        'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA',
        accept: '*/*',
      },
      ['accept'],
      [
        'connection',
        'keep-alive',
        'proxy-connection',
        'te',
        'transfer-encoding',
        'upgrade',
        'proxy-authorization',
        'proxy-authenticate',
        'trailer',
        'http2-settings',
      ],
    ],
    [
      'headers named in Connection removed',
      { connection: 'close, X-Secret , x-other', 'x-secret': '1', 'x-other': '2', 'x-kept': '3' },
      ['x-kept'],
      ['x-secret', 'x-other'],
    ],
    ['empty Connection tokens ignored', { connection: ' , ', accept: '*/*' }, ['accept'], ['connection']],
    ['authorization and cookies pass', { authorization: 'Bearer t', cookie: 'a=1; b=2' }, ['authorization', 'cookie'], []],
  ])('%s', (_n, incoming, present, absent) => {
    const r = build(incoming);
    for (const p of present) expect(r.map.has(p)).toBe(true);
    for (const a of absent) expect(r.map.has(a)).toBe(false);
  });

  test('Connection cannot strip Spooky-managed headers', () => {
    const r = build(
      {
        connection: 'x-forwarded-for, via, x-request-id, host, forwarded, x-forwarded-host, x-forwarded-proto',
        'x-forwarded-for': '198.51.100.1',
        via: '1.1 edge',
        'x-request-id': 'abc',
      },
      { clientIp: TRUSTED_PEER },
    );
    expect(r.map.get('host')).toBe('Example.com:8443');
    expect(r.map.get('x-forwarded-for')).toBe(`198.51.100.1, ${TRUSTED_PEER}`);
    expect(r.map.get('via')).toBe('1.1 edge, 3 spooky');
    expect(r.map.get('x-request-id')).toBe('abc');
    expect(r.map.has('forwarded')).toBe(true);
  });

  test('pseudo-headers that leaked are dropped', () => {
    const r = build(
      rawHeaders([
        [':path', '/x'],
        [':authority', 'a'],
        ['accept', '*/*'],
      ]),
    );
    expect(r.names).not.toContain(':path');
    expect(r.names).not.toContain(':authority');
    expect(r.map.get('accept')).toBe('*/*');
  });

  test('order: host first, client headers in order, managed headers last', () => {
    const r = build(
      rawHeaders([
        ['b-second', '2'],
        ['a-first', '1'],
        ['host', 'ignored'],
      ]),
    );
    expect(r.names).toEqual([
      'host',
      'b-second',
      'a-first',
      'x-forwarded-for',
      'x-forwarded-proto',
      'x-forwarded-host',
      'forwarded',
      'via',
      'x-request-id',
    ]);
  });
});

describe('buildUpstreamHeaders: malformed fields are rejected', () => {
  test.each<[string, [string, string][], string]>([
    ['LF in value', [['x-a', 'a\nb']], 'CR, LF or NUL'],
    ['CR in value', [['x-a', 'a\rb']], 'CR, LF or NUL'],
    ['NUL in value', [['x-a', 'a\0b']], 'CR, LF or NUL'],
    ['CRLF injection', [['x-a', 'v\r\nx-injected: 1']], 'CR, LF or NUL'],
    ['space in name', [['x a', '1']], 'invalid header name'],
    ['colon in name', [['x:a', '1']], 'invalid header name'],
    ['empty name', [['', '1']], 'invalid header name'],
    ['non-ASCII name', [['x-é', '1']], 'invalid header name'],
  ])('%s', (_n, list, reason) => {
    const r = buildUpstreamHeaders(input(rawHeaders(list)));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe('bad_request');
      expect(r.reason).toContain(reason);
    }
  });

  test('other control characters and a tab pass', () => {
    expect(build(rawHeaders([['x-a', 'a\tb\u0001c']])).map.get('x-a')).toBe('a\tb\u0001c');
  });
});

describe('buildUpstreamHeaders: content-length', () => {
  test.each<[string, [string, string][], number | undefined | 'error']>([
    ['absent', [], undefined],
    ['zero', [['content-length', '0']], 0],
    ['plain', [['content-length', '1234']], 1234],
    ['identical duplicates (joined)', [['content-length', '5, 5']], 5],
    [
      'identical duplicates (separate)',
      [
        ['content-length', '5'],
        ['content-length', '5'],
      ],
      5,
    ],
    ['conflicting', [['content-length', '5, 6']], 'error'],
    ['negative', [['content-length', '-1']], 'error'],
    ['not a number', [['content-length', 'abc']], 'error'],
    ['plus sign', [['content-length', '+5']], 'error'],
    ['empty', [['content-length', '']], 'error'],
    ['empty element', [['content-length', '5,']], 'error'],
    ['too large', [['content-length', '99999999999999999']], 'error'],
    [
      'with transfer-encoding: left to the transfer coding',
      [
        ['content-length', '5'],
        ['transfer-encoding', 'chunked'],
      ],
      undefined,
    ],
  ])('%s', (_n, list, want) => {
    const r = buildUpstreamHeaders(input(rawHeaders(list)));
    if (want === 'error') {
      expect(r.ok).toBe(false);
      return;
    }
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.contentLength).toBe(want);
      expect(r.headers.some(([n]) => n === 'content-length' || n === 'transfer-encoding')).toBe(false);
    }
  });

  test.each<[string, number]>([
    ['0', 0],
    ['42', 42],
    [' 42 ', 42],
    ['42,42, 42', 42],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
    ['9007199254740992', -1],
    ['42,43', -1],
    ['4 2', -1],
    ['', -1],
    [',', -1],
  ])('parseContentLength(%p) = %p', (v, n) => expect(parseContentLength(v)).toBe(n));
});

describe('buildUpstreamHeaders: host policy', () => {
  test.each<[string, HostPolicyConfig, string]>([
    ['pass-through: client authority as sent', { mode: 'pass-through' }, 'Example.com:8443'],
    ['rewrite: policy host', { mode: 'rewrite', host: 'internal.svc' }, 'internal.svc'],
    ['rewrite without host: client authority', { mode: 'rewrite' }, 'Example.com:8443'],
    ['upstream: backend authority', { mode: 'upstream' }, '10.1.1.1:8080'],
  ])('%s', (_n, hostPolicy, want) => {
    const r = build({ host: 'client-sent.example' }, { hostPolicy });
    expect(r.map.get('host')).toBe(want);
    expect(r.headers.filter(([n]) => n === 'host').length).toBe(1);
  });
});

describe('buildUpstreamHeaders: forwarding headers and trust', () => {
  const spoof = {
    'x-forwarded-for': '198.51.100.1, 10.9.9.9',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'spoofed.example',
    forwarded: 'for=198.51.100.1;proto=http',
    via: '1.1 edge',
    'x-request-id': 'client-id-1',
  };
  type Row = [string, Record<string, string>, string, Record<string, string>];
  test.each<Row>([
    [
      'untrusted peer: everything replaced',
      spoof,
      CLIENT,
      {
        'x-forwarded-for': CLIENT,
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'Example.com:8443',
        forwarded: `for=${CLIENT};proto=https;host="Example.com:8443"`,
        via: '1.1 edge, 3 spooky',
        'x-request-id': 'gen-id',
      },
    ],
    [
      'trusted peer: chain appended, values kept',
      spoof,
      TRUSTED_PEER,
      {
        'x-forwarded-for': `198.51.100.1, 10.9.9.9, ${TRUSTED_PEER}`,
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'spoofed.example',
        forwarded: `for=198.51.100.1;proto=http, for=${TRUSTED_PEER};proto=https;host="Example.com:8443"`,
        via: '1.1 edge, 3 spooky',
        'x-request-id': 'client-id-1',
      },
    ],
    [
      'trusted peer without incoming headers: set fresh',
      {},
      TRUSTED_PEER,
      {
        'x-forwarded-for': TRUSTED_PEER,
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'Example.com:8443',
        forwarded: `for=${TRUSTED_PEER};proto=https;host="Example.com:8443"`,
        via: '3 spooky',
        'x-request-id': 'gen-id',
      },
    ],
    [
      'IPv4-mapped trusted peer is written as IPv4',
      { 'x-forwarded-for': '198.51.100.1' },
      `::ffff:${TRUSTED_PEER}`,
      { 'x-forwarded-for': `198.51.100.1, ${TRUSTED_PEER}`, forwarded: `for=${TRUSTED_PEER};proto=https;host="Example.com:8443"` },
    ],
    [
      'IPv6 peer: bare in XFF, quoted and bracketed in Forwarded',
      {},
      '2001:db8::1',
      { 'x-forwarded-for': '2001:db8::1', forwarded: 'for="[2001:db8::1]";proto=https;host="Example.com:8443"' },
    ],
    [
      'trusted IPv6 peer appends',
      { 'x-forwarded-for': '198.51.100.1', forwarded: 'for=198.51.100.1' },
      '2001:db8:ffff::9',
      {
        'x-forwarded-for': '198.51.100.1, 2001:db8:ffff::9',
        forwarded: 'for=198.51.100.1, for="[2001:db8:ffff::9]";proto=https;host="Example.com:8443"',
      },
    ],
    ['trusted peer, insane request id replaced', { 'x-request-id': 'has space' }, TRUSTED_PEER, { 'x-request-id': 'gen-id' }],
    ['trusted peer, overlong request id replaced', { 'x-request-id': 'a'.repeat(129) }, TRUSTED_PEER, { 'x-request-id': 'gen-id' }],
    ['trusted peer, empty XFF treated as absent', { 'x-forwarded-for': '' }, TRUSTED_PEER, { 'x-forwarded-for': TRUSTED_PEER }],
  ])('%s', (_n, incoming, clientIp, want) => {
    const r = build(incoming, { clientIp });
    for (const [k, v] of Object.entries(want)) expect(r.map.get(k)).toBe(v);
    for (const k of Object.keys(want)) expect(r.headers.filter(([n]) => n === k).length).toBe(1);
    if (want['x-request-id'] !== undefined) expect(r.requestId).toBe(want['x-request-id']);
  });

  test('other forwarding claims pass only from a trusted proxy', () => {
    const claims = {
      'x-real-ip': '6.6.6.6',
      'true-client-ip': '6.6.6.6',
      'x-client-ip': '6.6.6.6',
      'client-ip': '6.6.6.6',
      'x-forwarded-port': '8443',
      'x-forwarded-prefix': '/evil',
      'x-forwarded-server': 'edge',
      'x-original-forwarded-for': '6.6.6.6',
      'x-other': 'kept',
    };
    const untrusted = build(claims, { clientIp: CLIENT });
    for (const name of Object.keys(claims)) expect(untrusted.map.has(name)).toBe(name === 'x-other');
    const trusted = build(claims, { clientIp: TRUSTED_PEER });
    for (const [name, value] of Object.entries(claims)) expect(trusted.map.get(name)).toBe(value);
  });

  test('underscore spellings of managed headers and claims are removed from everyone (CGI reads them as ours)', () => {
    const spoofed = {
      x_forwarded_for: '6.6.6.6',
      x_forwarded_proto: 'http',
      X_Forwarded_Host: 'evil.test',
      x_real_ip: '6.6.6.6',
      true_client_ip: '6.6.6.6',
      client_ip: '6.6.6.6',
      x_request_id: 'forged',
      x_custom_thing: 'kept',
    };
    for (const clientIp of [CLIENT, TRUSTED_PEER]) {
      const r = build(spoofed, { clientIp });
      for (const name of Object.keys(spoofed)) expect(r.map.has(name.toLowerCase())).toBe(name === 'x_custom_thing');
      expect(r.map.get('x-forwarded-for')).toBe(clientIp);
    }
  });

  test('host parameter is a bare token when it can be', () => {
    expect(build({}, { authority: 'example.com' }).map.get('forwarded')).toBe(`for=${CLIENT};proto=https;host=example.com`);
    expect(build({}, { authority: '[::1]:8443' }).map.get('forwarded')).toBe(`for=${CLIENT};proto=https;host="[::1]:8443"`);
  });

  test.each<[string, string]>([
    ['10.0.0.1', '10.0.0.1'],
    ['2001:db8::1', '"[2001:db8::1]"'],
    ['', 'unknown'],
  ])('forwardedNode(%p) = %p', (ip, node) => expect(forwardedNode(ip)).toBe(node));

  test.each<[string, boolean]>([
    ['0f8fad5b-d9cb-469f-a165-70867728950e', true],
    ['abc.DEF_1:2+3/4=', true],
    ['a'.repeat(128), true],
    ['a'.repeat(129), false],
    ['', false],
    ['a b', false],
    ['a"b', false],
    ['é', false],
  ])('isSaneRequestId(%p) = %p', (v, ok) => expect(isSaneRequestId(v)).toBe(ok));

  test.each<[string, string | null, string, string]>([
    ["a trusted proxy's sane id is the id", 'front-42', TRUSTED_PEER, 'front-42'],
    ["an untrusted client's id is replaced", 'front-42', CLIENT, 'generated'],
    ['no incoming id', null, TRUSTED_PEER, 'generated'],
    ["a trusted proxy's id that is not sane", 'a b', TRUSTED_PEER, 'generated'],
    ['no peer address', 'front-42', '', 'generated'],
  ])('requestIdOf: %s', (_name, incoming, peer, want) => {
    expect(requestIdOf(incoming, peer, trusted, () => 'generated')).toBe(want);
    // The forwarded header always carries the same id.
    const built = build(incoming === null ? {} : { 'x-request-id': incoming }, {
      clientIp: peer,
      requestId: requestIdOf(incoming, peer, trusted, () => 'generated'),
    });
    expect(built.requestId).toBe(want);
    expect(built.map.get('x-request-id')).toBe(want);
  });
});

describe('clientAddressFrom', () => {
  test.each<[string, string, string | null, string]>([
    // [name, peer, x-forwarded-for, expected]
    ['untrusted peer: the peer, XFF ignored', CLIENT, '198.51.100.1', CLIENT],
    ['trusted peer without XFF: the peer', TRUSTED_PEER, null, TRUSTED_PEER],
    ['trusted peer: rightmost untrusted', TRUSTED_PEER, '198.51.100.1, 198.51.100.2', '198.51.100.2'],
    ['trusted proxies skipped', TRUSTED_PEER, '198.51.100.1, 10.0.0.7, 10.0.0.8', '198.51.100.1'],
    ['spoofed left part ignored', TRUSTED_PEER, '1.1.1.1, 198.51.100.9', '198.51.100.9'],
    ['all trusted: the leftmost', TRUSTED_PEER, '10.0.0.1, 10.0.0.2', '10.0.0.1'],
    ['garbage stops the walk at the last trusted', TRUSTED_PEER, '198.51.100.1, unknown, 10.0.0.7', '10.0.0.7'],
    ['garbage right next to the peer', TRUSTED_PEER, '198.51.100.1, bogus', TRUSTED_PEER],
    ['empty elements skipped', TRUSTED_PEER, '198.51.100.1, , ', '198.51.100.1'],
    ['ports stripped', TRUSTED_PEER, '198.51.100.1:5555', '198.51.100.1'],
    ['bracketed IPv6 with port', TRUSTED_PEER, '[2001:DB8::5]:443', '2001:db8::5'],
    ['bare IPv6 canonicalised', TRUSTED_PEER, '2001:0db8:0:0::5', '2001:db8::5'],
    ['mapped peer is unmapped and trusted', `::ffff:${TRUSTED_PEER}`, '198.51.100.1', '198.51.100.1'],
    ['mapped untrusted peer is unmapped', `::ffff:${CLIENT}`, null, CLIENT],
    ['trusted IPv6 peer', '2001:db8:ffff::1', '198.51.100.1', '198.51.100.1'],
  ])('%s', (_n, peer, xff, want) => {
    const h = new Headers();
    if (xff !== null) h.set('x-forwarded-for', xff);
    expect(clientAddressFrom(peer, h, trusted)).toBe(want);
  });

  test.each<[string, string, string, string | null, string]>([
    // [name, peer, forwarded, x-forwarded-for, expected]
    ['Forwarded from a trusted peer: rightmost untrusted for=', TRUSTED_PEER, 'for=198.51.100.1;proto=https, for=198.51.100.2', null, '198.51.100.2'],
    ['Forwarded: trusted nodes skipped, names case-insensitive', TRUSTED_PEER, 'for=198.51.100.1, FOR=10.0.0.7;by=10.0.0.1', null, '198.51.100.1'],
    ['Forwarded: quoted IPv6 with port', TRUSTED_PEER, 'for="[2001:DB8::5]:443"', null, '2001:db8::5'],
    ['Forwarded: quoted IPv4 with port', TRUSTED_PEER, 'for="198.51.100.1:8080"', null, '198.51.100.1'],
    ['Forwarded: unknown stops the walk at the last trusted', TRUSTED_PEER, 'for=198.51.100.1, for=unknown, for=10.0.0.7', null, '10.0.0.7'],
    ['Forwarded: an obfuscated node stops it', TRUSTED_PEER, 'for=198.51.100.1, for=_hidden', null, TRUSTED_PEER],
    ['Forwarded: an element without for= stops it', TRUSTED_PEER, 'for=198.51.100.1, proto=https', null, TRUSTED_PEER],
    ['Forwarded: a quoted comma does not split', TRUSTED_PEER, 'for=198.51.100.1;host="a,b"', null, '198.51.100.1'],
    ['Forwarded: doubled and trailing commas are no elements', TRUSTED_PEER, 'for=198.51.100.1, ,', null, '198.51.100.1'],
    ['Forwarded from an untrusted peer is ignored', CLIENT, 'for=198.51.100.1', null, CLIENT],
    ['X-Forwarded-For wins when both are sent', TRUSTED_PEER, 'for=198.51.100.1', '198.51.100.2', '198.51.100.2'],
  ])('%s', (_n, peer, forwarded, xff, want) => {
    const h = new Headers({ forwarded });
    if (xff !== null) h.set('x-forwarded-for', xff);
    expect(clientAddressFrom(peer, h, trusted)).toBe(want);
  });
});

describe('sanitizeResponseHeaders', () => {
  test('hop-by-hop, Connection-named and alt-svc removed; set-cookie kept separate; Via appended', () => {
    const h = sanitizeResponseHeaders(
      [
        ['content-type', 'text/plain'],
        ['Connection', 'close, X-Internal'],
        ['x-internal', 'secret'],
        ['keep-alive', 'timeout=5'],
        ['transfer-encoding', 'chunked'],
        ['upgrade', 'h2c'],
        ['proxy-authenticate', 'Basic'],
        ['trailer', 'x-sum'],
        ['alt-svc', 'h3=":443"'],
        ['set-cookie', 'a=1; Path=/'],
        ['Set-Cookie', 'b=2, with comma; Expires=Wed, 21 Oct 2026 07:28:00 GMT'],
        ['content-length', '12'],
        ['x-app', 'yes'],
      ],
      { via: '1.1 spooky' },
    );
    expect([...new Set(h.keys())].sort()).toEqual(['content-length', 'content-type', 'set-cookie', 'via', 'x-app']);
    expect(h.getSetCookie()).toEqual(['a=1; Path=/', 'b=2, with comma; Expires=Wed, 21 Oct 2026 07:28:00 GMT']);
    expect(h.get('via')).toBe('1.1 spooky');
    expect(h.get('content-length')).toBe('12');
  });

  test.each<[string, [string, string][], string]>([
    ['no Via from backend', [], '2 spooky'],
    ['one Via', [['via', '1.1 backend-proxy']], '1.1 backend-proxy, 2 spooky'],
    [
      'two Via lines',
      [
        ['via', '1.0 a'],
        ['Via', '1.1 b'],
      ],
      '1.0 a, 1.1 b, 2 spooky',
    ],
  ])('Via: %s', (_n, list, want) => expect(sanitizeResponseHeaders(list, { via: '2 spooky' }).get('via')).toBe(want));

  test('pseudo-headers and malformed fields are dropped, not thrown', () => {
    const h = sanitizeResponseHeaders(
      [
        [':status', '200'],
        ['bad name', 'x'],
        ['x-crlf', 'a\r\nb'],
        ['x-nul', 'a\0b'],
        ['x-ctl', 'a\u0001b'],
        ['x-del', 'a\u007fb'],
        ['x-tab', 'a\tb'],
        ['x-ok', 'fine'],
      ],
      { via: '3 spooky' },
    );
    expect([...h.keys()].sort()).toEqual(['via', 'x-ok', 'x-tab']);
  });

  test('repeated non-cookie headers are joined', () => {
    const h = sanitizeResponseHeaders(
      [
        ['cache-control', 'no-cache'],
        ['cache-control', 'no-store'],
      ],
      { via: '3 spooky' },
    );
    expect(h.get('cache-control')).toBe('no-cache, no-store');
  });
});

describe('buildUpstreamHeaders: repeated set-cookie in a request', () => {
  test('forwarded field by field, in order; dropped when Connection nominates it', () => {
    const list: [string, string][] = [
      ['set-cookie', 'a=1'],
      ['x-a', '1'],
      ['set-cookie', 'b=2'],
    ];
    const r = buildUpstreamHeaders(input(rawHeaders(list)));
    expect(r.ok && r.headers.filter(([n]) => n === 'set-cookie').map(([, v]) => v)).toEqual(['a=1', 'b=2']);
    const real = buildUpstreamHeaders(input(new Headers(list)));
    expect(real.ok && real.headers.filter(([n]) => n === 'set-cookie').map(([, v]) => v)).toEqual(['a=1', 'b=2']);
    const dropped = buildUpstreamHeaders(input(rawHeaders([...list, ['connection', 'set-cookie']])));
    expect(dropped.ok && dropped.headers.some(([n]) => n === 'set-cookie')).toBe(false);
  });
});
