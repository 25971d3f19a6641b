import { describe, expect, test } from 'bun:test';
import { normalisePath, parseAuthority, parseRequestTarget } from './request-target.ts';

describe('normalisePath', () => {
  test.each<[string, string | null]>([
    // already normal (fast path)
    ['/', '/'],
    ['/api/v1/users', '/api/v1/users'],
    ['/a/b/', '/a/b/'],
    ["/a:b@c!$&'()*+,;=-._~", "/a:b@c!$&'()*+,;=-._~"],
    ['/...', '/...'],
    ['/a.b/.c/..d', '/a.b/.c/..d'],
    // traversal
    ['/a/../../etc', '/etc'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/..', '/'],
    ['/a/..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/b/../', '/a/'],
    ['/a/./b/.', '/a/b/'],
    ['/./', '/'],
    ['/%2e%2e/', '/'],
    ['/%2e%2e/etc', '/etc'],
    ['/a/%2E%2E/b', '/b'],
    ['/a/.%2e/b', '/b'],
    ['/a/%2e./b', '/b'],
    ['/a/%2e/b', '/a/b'],
    ['/a/..%2f..%2fetc', '/a/..%2F..%2Fetc'], // %2F is not a separator
    ['/a%2F..%2Fb', '/a%2F..%2Fb'],
    // encoded unreserved decoded, others upper-cased
    ['/%41%42c', '/ABc'],
    ['/%7e/%7Euser', '/~/~user'],
    ['/%2d%2E%5f', '/-._'],
    ['/a%2fb', '/a%2Fb'],
    ['/a%3a%40b', '/a%3A%40b'], // reserved chars keep their escape
    ['/a%20b', '/a%20b'],
    ['/%c3%a9', '/%C3%A9'],
    ['/%0a', '/%0A'], // only %00 is refused; other escapes pass encoded
    // slashes merged
    ['//a//b', '/a/b'],
    ['///', '/'],
    ['/a//', '/a/'],
    ['//..//a', '/a'],
    // characters not allowed raw get encoded
    ['/café', '/caf%C3%A9'],
    ['/a\\b', '/a%5Cb'],
    ['/a|b{c}^`"<>', '/a%7Cb%7Bc%7D%5E%60%22%3C%3E'],
    ['/😀', '/%F0%9F%98%80'],
    // refused
    ['/a%00b', null],
    ['/a%zz', null],
    ['/a%4', null],
    ['/a%', null],
    ['/a\u0000b', null],
    ['/a\rb', null],
    ['/a\nb', null],
    ['/a\tb', null],
    ['/a\u007fb', null],
    ['/a b', null],
    ['/a#frag', null],
    ['a/b', null],
    ['', null],
  ])('%p -> %p', (input, want) => {
    const got = normalisePath(input);
    if (want === null) expect(typeof got).toBe('object');
    else expect(got).toBe(want);
  });

  test('works on a slice of a larger string', () => {
    expect(normalisePath('https://h/a/../b?x', 9, 16)).toBe('/b');
    expect(normalisePath('xx/a/b?', 2, 6)).toBe('/a/b');
  });
});

describe('parseAuthority', () => {
  test.each<[string, { host: string; port: number } | null]>([
    ['example.com', { host: 'example.com', port: -1 }],
    ['Example.COM', { host: 'example.com', port: -1 }],
    ['example.com:8443', { host: 'example.com', port: 8443 }],
    ['example.com.', { host: 'example.com', port: -1 }],
    ['example.com.:443', { host: 'example.com', port: 443 }],
    ['under_score.internal', { host: 'under_score.internal', port: -1 }],
    ['localhost', { host: 'localhost', port: -1 }],
    ['10.0.0.1', { host: '10.0.0.1', port: -1 }],
    ['10.0.0.1:80', { host: '10.0.0.1', port: 80 }],
    ['[::1]', { host: '[::1]', port: -1 }],
    ['[2001:DB8:0::1]:8443', { host: '[2001:db8::1]', port: 8443 }],
    ['[::ffff:10.0.0.1]', { host: '[::ffff:a00:1]', port: -1 }],
    ['', null],
    ['a b', null],
    ['a\r\nb', null],
    ['a\tb', null],
    ['user@host', null],
    ['user:pw@host', null],
    ['a, b', null],
    ['a..b', null],
    ['.a', null],
    ['.', null],
    ['a..', null],
    ['example.com:', null],
    ['example.com:0', null],
    ['example.com:65536', null],
    ['example.com:123456', null],
    ['example.com:80x', null],
    ['example.com:80:80', null],
    ['ex%41mple.com', null],
    ['exa/mple.com', null],
    ['bücher.de', null],
    ['256.0.0.1', null],
    ['1.2.3', null],
    ['127.1', null],
    ['[::1', null],
    ['[::1]x', null],
    ['[fe80::1%25eth0]', null],
    ['[v1.fe]', null],
    ['[1.2.3.4]', null],
    [`${'a'.repeat(64)}.com`, null],
    [`${'a'.repeat(63)}.com`, { host: `${'a'.repeat(63)}.com`, port: -1 }],
    [`${'abcdefgh.'.repeat(28)}com`, null], // 255 characters
  ])('%p', (a, want) => expect(parseAuthority(a)).toEqual(want));
});

type Ok = { host: string; authority: string; path: string; rawQuery: string; target: string };

describe('parseRequestTarget', () => {
  test.each<[string, string, string | null, string | undefined, Partial<Ok> | string]>([
    // [name, rawUrl, host header, method, expected fields or error reason substring]
    [
      'Bun absolute url from Host',
      'https://example.com/a/b?x=1',
      'example.com',
      'GET',
      { host: 'example.com', authority: 'example.com', path: '/a/b', rawQuery: '?x=1', target: '/a/b?x=1' },
    ],
    ['origin-form', '/a?b', 'example.com', 'GET', { path: '/a', rawQuery: '?b', target: '/a?b' }],
    [
      'uppercase host lowered, authority as sent',
      'https://example.com/',
      'Example.COM',
      'GET',
      { host: 'example.com', authority: 'Example.COM', path: '/' },
    ],
    ['host with port', 'https://example.com:8443/x', 'example.com:8443', 'GET', { host: 'example.com', authority: 'example.com:8443' }],
    [
      'default port dropped by Bun still matches',
      'https://example.com/x',
      'Example.com:443',
      'GET',
      { host: 'example.com', authority: 'Example.com:443' },
    ],
    ['http default port', 'http://example.com/x', 'example.com:80', 'GET', { host: 'example.com' }],
    ['IPv6 host', 'https://[2001:db8::1]:8443/x', '[2001:DB8::1]:8443', 'GET', { host: '[2001:db8::1]', authority: '[2001:DB8::1]:8443' }],
    ['IPv6 compared by value', 'https://[::1]/x', '[0:0::1]', 'GET', { host: '[::1]' }],
    ['trailing dot host', 'https://example.com./x', 'example.com.', 'GET', { host: 'example.com' }],
    ['absolute-form: path and query only', 'https://example.com/p?q', 'example.com', 'GET', { path: '/p', target: '/p?q' }],
    ['absolute-form with no path', 'https://example.com', 'example.com', 'GET', { path: '/', target: '/' }],
    ['absolute-form with query and no path', 'https://example.com?q=1', 'example.com', 'GET', { path: '/', rawQuery: '?q=1', target: '/?q=1' }],
    ['absolute-form, scheme case-insensitive', 'HTTPS://EXAMPLE.com/x', 'example.com', 'GET', { path: '/x' }],
    ['absolute-form other host', 'https://other.host/x', 'example.com', 'GET', 'differs from Host'],
    ['absolute-form other port', 'https://example.com:8443/x', 'example.com', 'GET', 'differs from Host'],
    ['absolute-form userinfo', 'https://user@example.com/x', 'example.com', 'GET', 'userinfo'],
    ['absolute-form bad authority', 'https://exa mple.com/x', 'example.com', 'GET', 'invalid authority'],
    ['unsupported scheme', 'ftp://example.com/x', 'example.com', 'GET', 'scheme'],
    ['authority-form', 'example.com:443', 'example.com', 'CONNECT', 'neither'],
    ['relative without slash', 'a/b', 'example.com', 'GET', 'neither'],
    ['empty target', '', 'example.com', 'GET', 'empty'],
    ['* for OPTIONS', '*', 'example.com', 'OPTIONS', { path: '*', target: '*', rawQuery: '' }],
    ['* without method', '*', 'example.com', undefined, { path: '*', target: '*' }],
    ['* for GET', '*', 'example.com', 'GET', 'OPTIONS'],
    ['traversal', 'https://example.com/a/../../etc', 'example.com', 'GET', { path: '/etc', target: '/etc' }],
    ['encoded traversal', '/%2e%2e/%2E%2e/etc?x=%2e', 'example.com', 'GET', { path: '/etc', rawQuery: '?x=%2e', target: '/etc?x=%2e' }],
    ['encoded unreserved', '/%7Euser/%41', 'example.com', 'GET', { path: '/~user/A' }],
    ['query escapes kept as sent', '/p?a=%2f&b=%zz&c', 'example.com', 'GET', { rawQuery: '?a=%2f&b=%zz&c' }],
    ['query non-ASCII encoded', '/p?q=é', 'example.com', 'GET', { rawQuery: '?q=%C3%A9', target: '/p?q=%C3%A9' }],
    // Browsers send these raw (the WHATWG query set encodes only controls, space, " # < >), and signatures or cache
    // keys over the raw query must see what the client sent, as behind nginx and Envoy.
    ['query brackets kept as sent', '/s?a[]=1&b[k]=2', 'example.com', 'GET', { rawQuery: '?a[]=1&b[k]=2', target: '/s?a[]=1&b[k]=2' }],
    ['query punctuation kept as sent', '/s?f=x|y&q={"k":1}&s=a^b`c\\d<e>', 'example.com', 'GET', { rawQuery: '?f=x|y&q={"k":1}&s=a^b`c\\d<e>' }],
    ['query ASCII kept, non-ASCII encoded', '/s?a[é]', 'example.com', 'GET', { rawQuery: '?a[%C3%A9]' }],
    ['query with ? and /', '/p?a=/x?y', 'example.com', 'GET', { rawQuery: '?a=/x?y' }],
    ['bare ?', '/p?', 'example.com', 'GET', { path: '/p', rawQuery: '?', target: '/p?' }],
    ['query control char', '/p?a=\nb', 'example.com', 'GET', 'control'],
    ['query space', '/p?a b', 'example.com', 'GET', 'space'],
    ['fragment', 'https://example.com/x#f', 'example.com', 'GET', 'fragment'],
    ['fragment in query', '/x?a#f', 'example.com', 'GET', 'fragment'],
    ['fragment after authority', 'https://example.com#f', 'example.com', 'GET', 'fragment'],
    ['%00 in path', '/a%00', 'example.com', 'GET', '%00'],
    ['missing host', '/x', null, 'GET', 'missing Host'],
    ['empty host', '/x', '', 'GET', 'missing Host'],
    ['host with space', '/x', 'a b', 'GET', 'invalid Host'],
    ['host with CRLF', '/x', 'a\r\nb', 'GET', 'invalid Host'],
    ['host with userinfo', '/x', 'user@host', 'GET', 'invalid Host'],
    ['two Host headers joined', 'https://a/x', 'a, b', 'GET', 'invalid Host'],
  ])('%s', (_name, rawUrl, host, method, want) => {
    const got = parseRequestTarget(rawUrl, host, method);
    if (typeof want === 'string') {
      expect(got.ok).toBe(false);
      if (!got.ok) {
        expect(got.code).toBe('bad_request');
        expect(got.reason).toContain(want);
      }
    } else {
      expect(got.ok).toBe(true);
      expect(got).toMatchObject(want);
    }
  });
});
