import { describe, expect, test } from 'bun:test';
import { clientAccess } from './client-access.ts';

describe('clientAccess', () => {
  test('no rules: every address passes, and no predicate is built', () => {
    expect(clientAccess(undefined)).toBeUndefined();
    expect(clientAccess({ allow: [], deny: [] })).toBeUndefined();
  });

  const cases: Array<[string, { allow: string[]; deny: string[] }, Record<string, boolean>]> = [
    [
      'allow only',
      { allow: ['10.0.0.0/8', '192.168.1.7'], deny: [] },
      { '10.1.2.3': true, '192.168.1.7': true, '192.168.1.8': false, '127.0.0.1': false },
    ],
    ['deny only', { allow: [], deny: ['203.0.113.0/24'] }, { '203.0.113.9': false, '198.51.100.1': true, '::1': true }],
    ['deny wins over allow', { allow: ['10.0.0.0/8'], deny: ['10.0.5.0/24'] }, { '10.0.4.1': true, '10.0.5.1': false, '11.0.0.1': false }],
    [
      'IPv6 networks',
      { allow: ['2001:db8::/32'], deny: ['2001:db8:bad::/48'] },
      { '2001:db8:1::1': true, '2001:db8:bad::1': false, '2001:db9::1': false },
    ],
    ['an IPv4-mapped IPv6 client is its IPv4 address', { allow: ['127.0.0.0/8'], deny: [] }, { '::ffff:127.0.0.1': true, '::ffff:10.0.0.1': false }],
    ['what is not an address is never allowed (and not denied)', { allow: ['0.0.0.0/0'], deny: [] }, { unknown: false, '': false }],
    ['deny-only refuses what is not an address too', { allow: [], deny: ['192.0.2.1'] }, { '1.2.3.4': true, '192.0.2.1': false, unknown: false }],
  ];
  test.each(cases)('%s', (_what, rules, want) => {
    const allowed = clientAccess(rules);
    expect(allowed).toBeDefined();
    const got = Object.fromEntries(Object.keys(want).map((ip) => [ip, allowed?.(ip)]));
    expect(got).toEqual(want);
  });
});
