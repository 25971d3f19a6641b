import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { InMemoryRateLimiter, type RateLimitRule } from './rate-limiter.ts';

const rule: RateLimitRule = { id: 'per_ip', ratePerSecond: 1, burst: 2 };

describe('InMemoryRateLimiter', () => {
  test.each<[string, [advance: number, key: string, allowed: boolean][]]>([
    [
      'keys have separate buckets',
      [
        [0, 'a', true],
        [0, 'a', true],
        [0, 'a', false],
        [0, 'b', true],
        [0, 'b', true],
        [0, 'b', false],
      ],
    ],
    [
      'tokens come back at the rule rate',
      [
        [0, 'a', true],
        [0, 'a', true],
        [999, 'a', false],
        [1, 'a', true],
      ],
    ],
  ])('%s', (_name, steps) => {
    const clock = new ManualClock(0);
    const limiter = new InMemoryRateLimiter(100);
    for (const [i, [advance, key, allowed]] of steps.entries()) {
      clock.advance(advance);
      expect({ i, allowed: limiter.take(rule, key, clock.now()).allowed }).toEqual({ i, allowed });
    }
  });

  test('rules are independent', () => {
    const limiter = new InMemoryRateLimiter(10);
    const other: RateLimitRule = { id: 'other', ratePerSecond: 1, burst: 1 };
    expect(limiter.take(other, 'a', 0).allowed).toBe(true);
    expect(limiter.take(other, 'a', 0).allowed).toBe(false);
    expect(limiter.take(rule, 'a', 0).allowed).toBe(true);
  });

  test('a flood of 10,000 distinct keys keeps at most maxKeys buckets, and memory stays bounded', () => {
    const limiter = new InMemoryRateLimiter(1000);
    Bun.gc(true);
    const before = process.memoryUsage().heapUsed;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 10_000; i++) limiter.take(rule, `10.${round}.${i >> 8}.${i & 255}`, i);
    }
    expect(limiter.size(rule.id)).toBe(1000);
    Bun.gc(true);
    const grown = process.memoryUsage().heapUsed - before;
    // 1000 buckets are well under 1 MB; 100,000 would be several MB.
    expect(grown).toBeLessThan(2 * 1024 * 1024);
  });

  test('retain forgets the buckets of rules a reload removed or replaced', () => {
    const limiter = new InMemoryRateLimiter(10);
    const other: RateLimitRule = { id: 'per_ip:v2', ratePerSecond: 5, burst: 5 };
    limiter.take(rule, 'a', 0);
    limiter.take(other, 'a', 0);
    expect(limiter.ruleCount).toBe(2);
    limiter.retain(new Set([other.id]));
    expect(limiter.ruleCount).toBe(1);
    expect(limiter.size(rule.id)).toBe(0);
    expect(limiter.size(other.id)).toBe(1);
  });

  test('the least recently used key is the one dropped', () => {
    const limiter = new InMemoryRateLimiter(2);
    const one: RateLimitRule = { id: 'one', ratePerSecond: 0.001, burst: 1 };
    expect(limiter.take(one, 'a', 0).allowed).toBe(true);
    expect(limiter.take(one, 'b', 0).allowed).toBe(true);
    expect(limiter.take(one, 'a', 0).allowed).toBe(false); // a is now the most recent
    expect(limiter.take(one, 'c', 0).allowed).toBe(true); // drops b
    expect(limiter.take(one, 'a', 0).allowed).toBe(false); // a kept its empty bucket
    expect(limiter.take(one, 'b', 0).allowed).toBe(true); // b was forgotten: fresh bucket
  });
});
