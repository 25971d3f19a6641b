import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { RetryBudget } from './retry-budget.ts';

/** Advance, record `requests` original requests, then ask for `retries` retries; expect how many were granted. */
type Step = { advance: number; requests: number; retries: number; granted: number };

describe('RetryBudget', () => {
  test.each<[string, { ratio: number; minPerSecond: number; windowMs?: number }, Step[]]>([
    ['ratio 0.2: one retry per five requests', { ratio: 0.2, minPerSecond: 0 }, [{ advance: 0, requests: 100, retries: 50, granted: 20 }]],
    [
      'the floor allows retries without traffic',
      { ratio: 0.2, minPerSecond: 1, windowMs: 10_000 },
      [{ advance: 0, requests: 0, retries: 20, granted: 10 }],
    ],
    ['floor and ratio add up', { ratio: 0.1, minPerSecond: 1, windowMs: 10_000 }, [{ advance: 0, requests: 50, retries: 100, granted: 15 }]],
    [
      'spent retries come back when the window slides past them',
      { ratio: 0.5, minPerSecond: 0, windowMs: 1000 },
      [
        { advance: 0, requests: 10, retries: 10, granted: 5 },
        { advance: 500, requests: 0, retries: 5, granted: 0 },
        { advance: 600, requests: 10, retries: 10, granted: 5 },
      ],
    ],
    ['ratio 0 and no floor: never', { ratio: 0, minPerSecond: 0 }, [{ advance: 0, requests: 1000, retries: 3, granted: 0 }]],
  ])('%s', (_name, policy, steps) => {
    const clock = new ManualClock(0);
    const budget = new RetryBudget(policy);
    for (const s of steps) {
      clock.advance(s.advance);
      for (let i = 0; i < s.requests; i++) budget.request(clock.now());
      let granted = 0;
      for (let i = 0; i < s.retries; i++) if (budget.tryRetry(clock.now())) granted++;
      expect(granted).toBe(s.granted);
    }
  });
});
