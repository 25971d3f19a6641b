import { describe, expect, test } from 'bun:test';
import { seededRandom } from '../lib/random.ts';
import { countPicks, FakeCandidate, fakeCandidates, relativeShareErrors } from './testing.ts';
import { weightedRoundRobinStrategy } from './weighted-round-robin.ts';

const deps = { random: seededRandom(1) };
const named = (weights: number[]) => weights.map((w, i) => new FakeCandidate('abcdefgh'[i] as string, w));

describe('weighted-round-robin (smooth, nginx)', () => {
  test.each<[number[], string]>([
    [[5, 1, 1], 'aabacaa'],
    [[1, 1, 1], 'abc'],
    [[3, 1], 'aaba'],
    [[2, 1], 'aba'],
    [[4, 2, 1], 'abacaba'],
    [[500, 100, 100], 'aabacaa'],
    [[1, 5], 'bbabbb'], // the tie at the third pick goes to the first in list order
  ])('weights %p give the cycle %s, repeated exactly', (weights, cycle) => {
    const p = weightedRoundRobinStrategy.build(named(weights), deps);
    const got = Array.from({ length: cycle.length * 3 }, () => p.pick({ now: 0 })?.id).join('');
    expect(got).toBe(cycle.repeat(3));
  });

  test('down and excluded candidates sit out; the rest keep their smooth order', () => {
    const cs = named([5, 1, 1]);
    const p = weightedRoundRobinStrategy.build(cs, deps);
    cs[2]!.up = false;
    // weights 5,1 over a and b: a a a b a a (cycle of 6)
    expect(Array.from({ length: 12 }, () => p.pick({ now: 0 })?.id).join('')).toBe('aaabaa'.repeat(2));
    const ex = new Set(['a']);
    expect(Array.from({ length: 3 }, () => p.pick({ now: 0, exclude: ex })?.id).join('')).toBe('bbb');
  });

  test.each([[[100, 200, 300]], [[1, 2, 3, 4]], [[1000, 1, 7]]])(
    'weights %p honoured within 5 percent over 10,000 picks (within one cycle of exact)',
    (weights) => {
      const cs = fakeCandidates(weights);
      const counts = countPicks(weightedRoundRobinStrategy.build(cs, deps), 10_000, () => ({ now: 0 }));
      for (const [id, err] of Object.entries(relativeShareErrors(cs, counts))) expect({ id, ok: err < 0.05 }).toEqual({ id, ok: true });
    },
  );
});
