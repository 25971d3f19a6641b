import { describe, expect, test } from 'bun:test';
import { canonicalIp, clientKey, compileTrust, parseCidr, parseIPv4, parseIPv6, unmapIPv4 } from './cidr.ts';

describe('parseIPv4', () => {
  test.each<[string, number]>([
    ['0.0.0.0', 0],
    ['10.0.0.1', 0x0a000001],
    ['255.255.255.255', 0xffffffff],
    ['192.168.1.20', 0xc0a80114],
    ['256.0.0.1', -1],
    ['1.2.3', -1],
    ['1.2.3.4.5', -1],
    ['01.2.3.4', -1], // leading zero: octal ambiguity refused
    ['1..3.4', -1],
    ['1.2.3.', -1],
    ['1.2.3.4 ', -1],
    ['', -1],
    ['a.b.c.d', -1],
    ['1234.1.1.1', -1],
  ])('%p -> %p', (s, n) => expect(parseIPv4(s)).toBe(n));
});

describe('parseIPv6', () => {
  test.each<[string, number[] | null]>([
    ['::', [0, 0, 0, 0, 0, 0, 0, 0]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 1]],
    ['1::', [1, 0, 0, 0, 0, 0, 0, 0]],
    ['2001:db8::1', [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]],
    ['2001:DB8:0:0:1:0:0:1', [0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]],
    ['::ffff:10.0.0.1', [0, 0, 0, 0, 0, 0xffff, 0x0a00, 1]],
    ['1:2:3:4:5:6:7:8', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['1:2:3:4:5:6:1.2.3.4', [1, 2, 3, 4, 5, 6, 0x102, 0x304]],
    ['1:2:3:4:5:6:7:8:9', null],
    ['1:2:3:4:5:6:7', null],
    ['::1:2:3:4:5:6:7:8', null],
    ['1::2::3', null],
    [':::', null],
    ['1:::2', null],
    [':1::', null],
    ['1:', null],
    ['12345::', null],
    ['g::', null],
    ['1:2:3:4:5:6:7:1.2.3.4', null],
    ['::1.2.3', null],
    ['', null],
  ])('%p', (s, g) => expect(parseIPv6(s)).toEqual(g));
});

describe('canonicalIp', () => {
  test.each<[string, string | null]>([
    ['10.0.0.1', '10.0.0.1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::FFFF:a00:1', '10.0.0.1'],
    ['[2001:DB8::1]', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first longest run wins
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['fe80::1%eth0', 'fe80::1'],
    ['::', '::'],
    ['1::', '1::'],
    ['::1', '::1'],
    ['[10.0.0.1]', null],
    ['fe80::1%', null],
    ['not-an-ip', null],
    ['', null],
  ])('%p -> %p', (s, c) => expect(canonicalIp(s)).toBe(c));
});

describe('unmapIPv4', () => {
  test.each<[string, string]>([
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:10.1.2.3', '10.1.2.3'],
    ['::ffff:999.0.0.1', '::ffff:999.0.0.1'],
    ['::1', '::1'],
    ['10.0.0.1', '10.0.0.1'],
    ['2001:db8::1', '2001:db8::1'],
  ])('%p -> %p', (s, out) => expect(unmapIPv4(s)).toBe(out));
});

describe('parseCidr', () => {
  test.each<[string, boolean]>([
    ['10.0.0.0/8', true],
    ['10.1.2.3/8', true], // host bits ignored
    ['10.0.0.1', true],
    ['0.0.0.0/0', true],
    ['10.0.0.0/33', false],
    ['10.0.0.0/', false],
    ['10.0.0.0/08', false],
    ['10.0.0.0/a', false],
    ['2001:db8::/32', true],
    ['::/0', true],
    ['::1', true],
    ['2001:db8::/129', false],
    ['fe80::1%eth0', false],
    ['example.com', false],
    ['', false],
  ])('%p valid=%p', (s, ok) => expect(parseCidr(s) !== null).toBe(ok));

  test('mapped IPv6 range with prefix >= 96 is IPv4', () => {
    expect(parseCidr('::ffff:10.0.0.0/104')).toEqual({ v: 4, net: 0x0a000000, mask: 0xff000000, prefix: 8 });
  });
});

describe('compileTrust', () => {
  const trust = compileTrust(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1', '::ffff:172.16.0.0/108']);
  test.each<[string, boolean]>([
    ['10.0.0.1', true],
    ['10.255.255.255', true],
    ['11.0.0.1', false],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['::ffff:10.0.0.1', true], // mapped is IPv4
    ['::ffff:a00:1', true],
    ['[::ffff:10.0.0.1]', true],
    ['172.16.3.4', true], // from the mapped entry
    ['172.32.0.1', false],
    ['2001:db8:1::5', true],
    ['2001:db9::5', false],
    ['[2001:db8::1]', true],
    ['::1', true],
    ['::2', false],
    ['fe80::1%eth0', false],
    ['garbage', false],
    ['', false],
  ])('%p -> %p', (ip, want) => expect(trust(ip)).toBe(want));

  test('empty list trusts nobody', () => {
    const none = compileTrust([]);
    expect(none('10.0.0.1')).toBe(false);
    expect(none('::1')).toBe(false);
  });

  test('IPv6 ranges do not match IPv4, IPv4 ranges do not match IPv6', () => {
    const all6 = compileTrust(['::/0']);
    expect(all6('10.0.0.1')).toBe(false);
    expect(all6('2001:db8::1')).toBe(true);
    const all4 = compileTrust(['0.0.0.0/0']);
    expect(all4('::ffff:1.2.3.4')).toBe(true);
    expect(all4('2001:db8::1')).toBe(false);
  });

  test('prefix boundaries', () => {
    const t = compileTrust(['192.168.0.0/23', '2001:db8:0:8000::/49']);
    expect(t('192.168.1.255')).toBe(true);
    expect(t('192.168.2.0')).toBe(false);
    expect(t('2001:db8:0:ffff::1')).toBe(true);
    expect(t('2001:db8:0:7fff::1')).toBe(false);
  });

  test('an invalid entry throws, naming it', () => {
    expect(() => compileTrust(['10.0.0.0/8', 'bogus'])).toThrow('bogus');
  });
});

describe('clientKey', () => {
  test.each<[string, string]>([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002::9', '2001:db8:1:2::/64'],
    ['::1', '::/64'],
    ['not-an-ip', 'not-an-ip'],
    ['', ''],
  ])('%s -> %s', (ip, want) => {
    expect(clientKey(ip)).toBe(want);
  });
});
