import { describe, expect, test } from 'bun:test';
import { seededRandom } from '../lib/random.ts';
import { roundRobinStrategy } from './round-robin.ts';
import { countPicks, fakeCandidates } from './testing.ts';

const deps = { random: seededRandom(1) };

describe('round-robin', () => {
  test.each<[string, number, number[], string[], number]>([
    ['rotates in list order', 3, [], [], 7],
    ['skips a down candidate; the rotation goes on after the one returned', 4, [2], [], 7],
    ['skips excluded candidates', 4, [], ['b0', 'b3'], 5],
    ['down and excluded together', 4, [1], ['b3'], 5],
  ])('%s', (_name, n, down, exclude, picks) => {
    const cs = fakeCandidates(Array.from({ length: n }, () => 100));
    for (const i of down) cs[i]!.up = false;
    const p = roundRobinStrategy.build(cs, deps);
    const ex = new Set(exclude);
    const got = Array.from({ length: picks }, () => p.pick({ now: 0, exclude: ex })?.id);
    const cycle = cs.filter((c) => c.up && !ex.has(c.id)).map((c) => c.id);
    expect(got).toEqual(Array.from({ length: picks }, (_, i) => cycle[i % cycle.length]));
  });

  test('a candidate coming back rejoins at its place in the rotation', () => {
    const cs = fakeCandidates([100, 100, 100]);
    const p = roundRobinStrategy.build(cs, deps);
    const pick = () => p.pick({ now: 0 })?.id;
    cs[1]!.up = false;
    expect([pick(), pick(), pick()]).toEqual(['b0', 'b2', 'b0']);
    cs[1]!.up = true;
    expect([pick(), pick(), pick(), pick()]).toEqual(['b1', 'b2', 'b0', 'b1']);
  });

  test('ignores weight: spreads exactly evenly over 9,999 picks', () => {
    const cs = fakeCandidates([1, 500, 1000]);
    const counts = countPicks(roundRobinStrategy.build(cs, deps), 9_999, () => ({ now: 0 }));
    expect(Object.fromEntries(counts)).toEqual({ b0: 3333, b1: 3333, b2: 3333 });
  });
});
