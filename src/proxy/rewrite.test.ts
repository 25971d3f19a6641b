import { describe, expect, test } from 'bun:test';
import { pathRewriter, replacePrefix } from './rewrite.ts';

describe('replacePrefix', () => {
  const cases: [string, string, string, string][] = [
    // path, matched prefix, replacement, result
    ['/api/users', '/api/', '/', '/users'],
    ['/api/', '/api/', '/', '/'],
    ['/api/users', '/api', '/', '/users'],
    ['/api', '/api', '/', '/'],
    ['/apix', '/api', '/', '/x'], // path_prefix is a string prefix, as in routing
    ['/api/users', '/api', '/v2', '/v2/users'],
    ['/api/users', '/api/', '/v2', '/v2/users'],
    ['/api/users', '/api/', '/v2/', '/v2/users'],
    ['/users', '/', '/v1', '/v1/users'],
    ['/users', '/', '/v1/', '/v1/users'],
    ['/', '/', '/v1', '/v1/'],
    ['/old/a/b', '/old/', '/new/', '/new/a/b'],
    ['/old%2Fx', '/old', '/new', '/new%2Fx'],
  ];
  for (const [path, prefix, to, want] of cases) test(`${path} with ${prefix} -> ${to}`, () => expect(replacePrefix(path, prefix, to)).toBe(want));
});

describe('pathRewriter', () => {
  test('none without a rewrite', () => expect(pathRewriter(undefined, '/api')).toBeUndefined());
  test('a whole-path rewrite replaces every path but *', () => {
    const f = pathRewriter({ path: '/healthz' }, undefined);
    expect([f?.('/a/b'), f?.('/'), f?.('*')]).toEqual(['/healthz', '/healthz', '*']);
  });
  test('a prefix that ends inside a segment cannot glue a dot segment onto the replacement', () => {
    const f = pathRewriter({ prefix: '/v1/' }, '/api');
    expect([f?.('/api/x'), f?.('/api../admin'), f?.('/api.'), f?.('/api..'), f?.('/api.x/y')]).toEqual([
      '/v1/x',
      undefined,
      undefined,
      undefined,
      '/v1/.x/y',
    ]);
  });
  test('a prefix rewrite leaves * and a path outside the prefix alone', () => {
    const f = pathRewriter({ prefix: '/' }, '/api/');
    expect([f?.('/api/x'), f?.('*'), f?.('/other')]).toEqual(['/x', '*', '/other']);
  });
});
