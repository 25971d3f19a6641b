import { describe, expect, test } from 'bun:test';
import type { RateLimitConfig } from '../config/types.ts';
import { ManualClock } from '../lib/clock.ts';
import { InMemoryRateLimiter } from '../resilience/rate-limiter.ts';
import { applyRateLimits, rateLimitKey } from './rate-limit.ts';

const perIp: RateLimitConfig = {
  id: 'api#0:0:per_ip:1/2',
  name: 'per_ip',
  key: { kind: 'client_ip' },
  rate: 1,
  burst: 2,
  max_keys: 100,
  store: 'local',
};
const perKey: RateLimitConfig = {
  id: 'api#0:1:key:10/10',
  name: 'key',
  key: { kind: 'header', name: 'x-api-key' },
  rate: 10,
  burst: 10,
  max_keys: 100,
  store: 'local',
};
const route: RateLimitConfig = {
  id: 'api#0:2:route:100/1',
  name: 'route',
  key: { kind: 'route' },
  rate: 100,
  burst: 1,
  max_keys: 100,
  store: 'local',
};

describe('rate limits', () => {
  test.each<[string, RateLimitConfig, string, Record<string, string>, string]>([
    ['client ip', perIp, '10.0.0.1', {}, '10.0.0.1'],
    ['IPv6 client: its /64 (a fresh address per request is the same client)', perIp, '2001:db8:1:2:aaaa::1', {}, '2001:db8:1:2::/64'],
    ['header value', perKey, '10.0.0.1', { 'x-api-key': 'k1' }, 'k1'],
    ['missing header: the shared empty key', perKey, '10.0.0.1', {}, ''],
    ['route: one key', route, '10.0.0.1', {}, ''],
  ])('key by %s', (_name, rule, ip, headers, want) => {
    expect(rateLimitKey(rule, { clientIp: ip, headers: new Headers(headers) })).toBe(want);
  });

  test('a long header value is keyed by its length and hash, not kept as it is', () => {
    const long = 'k'.repeat(8000);
    const key = rateLimitKey(perKey, { clientIp: '10.0.0.1', headers: new Headers({ 'x-api-key': long }) });
    expect(key.length).toBeLessThan(40);
    expect(key.startsWith('#8000:')).toBe(true);
    expect(rateLimitKey(perKey, { clientIp: '10.0.0.1', headers: new Headers({ 'x-api-key': long }) })).toBe(key);
    expect(rateLimitKey(perKey, { clientIp: '10.0.0.1', headers: new Headers({ 'x-api-key': `${long.slice(1)}j` }) })).not.toBe(key);
  });

  test('over the burst: 429 headers of the refusing rule, per the IETF draft', async () => {
    const clock = new ManualClock(0);
    const limiter = new InMemoryRateLimiter(100);
    const input = { clientIp: '10.0.0.1', headers: new Headers() };
    expect(await applyRateLimits(limiter, [perIp], input, clock.now())).toBeUndefined();
    expect(await applyRateLimits(limiter, [perIp], input, clock.now())).toBeUndefined();
    clock.advance(300);
    expect(await applyRateLimits(limiter, [perIp], input, clock.now())).toEqual({
      'retry-after': '1',
      'ratelimit-policy': '"per_ip";q=2;w=2',
      ratelimit: '"per_ip";r=0;t=1',
    });
    // Another client is not affected.
    expect(await applyRateLimits(limiter, [perIp], { clientIp: '10.0.0.2', headers: new Headers() }, clock.now())).toBeUndefined();
  });

  test('several rules: the first that refuses answers', async () => {
    const limiter = new InMemoryRateLimiter(100);
    const input = { clientIp: '10.0.0.1', headers: new Headers() };
    expect(await applyRateLimits(limiter, [perIp, route], input, 0)).toBeUndefined();
    const refused = await applyRateLimits(limiter, [perIp, route], { clientIp: '10.0.0.9', headers: new Headers() }, 0);
    expect(refused?.['ratelimit-policy']).toBe('"route";q=1;w=1');
  });
});
