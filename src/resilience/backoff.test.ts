import { describe, expect, test } from 'bun:test';
import { scriptedRandom } from '../lib/random.ts';
import { backoffDelay } from './backoff.ts';

describe('backoffDelay (full jitter)', () => {
  test.each<[string, number, number, number, number, number]>([
    // name, retry, base, cap, random, expected
    ['first retry: uniform below base', 0, 100, 10_000, 0.5, 50],
    ['random 0 gives no delay', 3, 100, 10_000, 0, 0],
    ['doubles with each retry', 1, 100, 10_000, 0.5, 100],
    ['doubles again', 2, 100, 10_000, 0.5, 200],
    ['capped', 10, 100, 1_000, 0.5, 500],
    ['just under the ceiling at random near 1', 2, 100, 10_000, 0.999, 399],
    ['base 0 turns backoff off', 5, 0, 1_000, 0.9, 0],
    ['huge retry numbers stay finite', 10_000, 100, 2_000, 0.5, 1_000],
  ])('%s', (_name, retry, base, cap, r, expected) => {
    expect(backoffDelay(retry, { baseMs: base, capMs: cap }, scriptedRandom([r]))).toBe(expected);
  });

  test('the delay never reaches the ceiling over many draws', () => {
    const random = scriptedRandom([0, 0.25, 0.5, 0.75, 0.9999]);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(i % 6, { baseMs: 10, capMs: 200 }, random);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(200, 10 * 2 ** (i % 6)));
    }
  });

  test.each<[number, number, number, number]>([
    // retry, base, cap, expected: the bound itself, whatever the random source says
    [0, 100, 10_000, 100],
    [2, 100, 10_000, 400],
    [10, 100, 1_000, 1_000],
    [3, 0, 1_000, 0],
  ])('without jitter retry %i waits exactly the bound', (retry, base, cap, expected) => {
    expect(backoffDelay(retry, { baseMs: base, capMs: cap, jitter: false }, scriptedRandom([0.1]))).toBe(expected);
  });
});
