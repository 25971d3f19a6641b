import { describe, expect, test } from 'bun:test';
import { scriptedRandom, seededRandom } from '../lib/random.ts';
import { randomStrategy } from './random.ts';
import { countPicks, fakeCandidates, relativeShareErrors } from './testing.ts';

describe('random (weighted)', () => {
  test.each<[string, number[], number[], string[]]>([
    // cumulative [1, 2, 4] over total 4
    ['draws map onto cumulative weights', [1, 1, 2], [0, 0.3, 0.5, 0.99], ['b0', 'b1', 'b2', 'b2']],
    ['boundaries belong to the next slot', [1, 1, 2], [0.25, 0.5], ['b1', 'b2']],
    ['a draw of 1 (out of contract) lands in the last slot', [1, 1, 2], [1], ['b2']],
  ])('%s', (_name, weights, draws, expected) => {
    const p = randomStrategy.build(fakeCandidates(weights), { random: scriptedRandom(draws) });
    expect(draws.map(() => p.pick({ now: 0 })?.id)).toEqual(expected);
  });

  test('an unusable hit redraws over the usable weights only', () => {
    const cs = fakeCandidates([100, 100, 200]);
    cs[0]!.up = false;
    // 0.1 * 400 = 40 hits b0 (down); redraw 0.2 * 300 = 60 -> b1; next 0.9 * 400 -> b2 directly.
    const p = randomStrategy.build(cs, { random: scriptedRandom([0.1, 0.2, 0.9]) });
    expect([p.pick({ now: 0 })?.id, p.pick({ now: 0 })?.id]).toEqual(['b1', 'b2']);
  });

  test.each<[string, number[], number[]]>([
    ['1:2:3, all up', [100, 200, 300], []],
    ['1:1:2, all up', [100, 100, 200], []],
    ['1:2:3:4 with the 1 down', [100, 200, 300, 400], [0]],
    ['1:2:3:4 with the 3 down', [100, 200, 300, 400], [2]],
  ])('weights honoured within 5 percent over 10,000 picks (%s)', (_name, weights, down) => {
    const cs = fakeCandidates(weights);
    for (const i of down) cs[i]!.up = false;
    const p = randomStrategy.build(cs, { random: seededRandom(1) });
    const counts = countPicks(p, 10_000, () => ({ now: 0 }));
    const up = cs.filter((c) => c.up);
    for (const [id, err] of Object.entries(relativeShareErrors(up, counts))) expect({ id, ok: err < 0.05 }).toEqual({ id, ok: true });
    for (const i of down) expect(counts.get(`b${i}`)).toBeUndefined();
  });
});
