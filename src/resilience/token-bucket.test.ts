import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { TokenBucket } from './token-bucket.ts';

/** Advance the clock by `advance` ms, take a token, expect allowed or the retry-after. */
type Step = { advance: number; allowed: boolean; retryAfterMs?: number; remaining?: number };

describe('TokenBucket', () => {
  test.each<[string, number, number, Step[]]>([
    [
      'a full bucket allows burst requests at once, then refuses',
      10,
      3,
      [
        { advance: 0, allowed: true, remaining: 2 },
        { advance: 0, allowed: true, remaining: 1 },
        { advance: 0, allowed: true, remaining: 0 },
        { advance: 0, allowed: false, retryAfterMs: 100 },
      ],
    ],
    [
      'refills at rate: one token per 1000/rate ms',
      10,
      1,
      [
        { advance: 0, allowed: true },
        { advance: 50, allowed: false, retryAfterMs: 50 },
        { advance: 50, allowed: true },
        { advance: 99, allowed: false, retryAfterMs: 1 },
        { advance: 1, allowed: true },
      ],
    ],
    [
      'never holds more than burst',
      1,
      2,
      [
        { advance: 1_000_000, allowed: true, remaining: 1 },
        { advance: 0, allowed: true, remaining: 0 },
        { advance: 0, allowed: false, retryAfterMs: 1000 },
      ],
    ],
    [
      'a fractional rate: 0.5/s means one every two seconds',
      0.5,
      1,
      [
        { advance: 0, allowed: true },
        { advance: 1000, allowed: false, retryAfterMs: 1000 },
        { advance: 1000, allowed: true },
      ],
    ],
    [
      'a refused take costs nothing',
      1,
      1,
      [
        { advance: 0, allowed: true },
        { advance: 500, allowed: false, retryAfterMs: 500 },
        { advance: 0, allowed: false, retryAfterMs: 500 },
        { advance: 500, allowed: true },
      ],
    ],
    [
      'time going backwards adds nothing',
      1,
      1,
      [
        { advance: 0, allowed: true },
        { advance: -5000, allowed: false, retryAfterMs: 1000 },
      ],
    ],
  ])('%s (rate %d/s, burst %d)', (_name, rate, burst, steps) => {
    const clock = new ManualClock(1000);
    const b = new TokenBucket({ ratePerSecond: rate, burst }, clock.now());
    for (const [i, s] of steps.entries()) {
      clock.advance(s.advance);
      const r = b.take(clock.now());
      const got: Record<string, unknown> = { i, allowed: r.allowed };
      const want: Record<string, unknown> = { i, allowed: s.allowed };
      if (s.retryAfterMs !== undefined) {
        got.retryAfterMs = r.allowed ? undefined : r.retryAfterMs;
        want.retryAfterMs = s.retryAfterMs;
      }
      if (s.remaining !== undefined) {
        got.remaining = r.remaining;
        want.remaining = s.remaining;
      }
      expect(got).toEqual(want);
    }
  });

  test('full() tells when an idle bucket can be forgotten', () => {
    const b = new TokenBucket({ ratePerSecond: 10, burst: 2 }, 0);
    expect(b.full(0)).toBe(true);
    b.take(0);
    expect(b.full(50)).toBe(false);
    expect(b.full(100)).toBe(true);
  });

  test.each([
    [0, 1],
    [1, 0],
    [Number.NaN, 1],
  ])('rejects rate %d burst %d', (rate, burst) => {
    expect(() => new TokenBucket({ ratePerSecond: rate, burst }, 0)).toThrow(RangeError);
  });
});
