import { describe, expect, test } from 'bun:test';
import { scriptedRandom, seededRandom } from '../lib/random.ts';
import { leastConnectionsStrategy } from './least-connections.ts';
import { countPicks, type FakeCandidate, fakeCandidates, relativeShareErrors } from './testing.ts';

function build(weights: number[], inFlight: number[], random = seededRandom(1)) {
  const cs = fakeCandidates(weights);
  cs.forEach((c, i) => {
    c.active = inFlight[i] ?? 0;
  });
  return { cs, p: leastConnectionsStrategy.build(cs, { random }) };
}

describe('least-connections (weighted)', () => {
  test.each<[string, number[], number[], string]>([
    ['fewest in flight wins at equal weight', [100, 100, 100], [5, 3, 4], 'b1'],
    ['relative to weight: 5/300 < 2/100', [100, 300], [2, 5], 'b1'],
    ['relative to weight: 1/100 < 6/300', [100, 300], [1, 6], 'b0'],
    ['an idle backend wins over busy heavier ones', [100, 300, 200], [1, 2, 0], 'b2'],
    ['a negative count (a bug elsewhere) counts as 0', [100, 100], [-3, 1], 'b0'],
  ])('%s', (_name, weights, inFlight, expected) => {
    expect(build(weights, inFlight).p.pick({ now: 0 })?.id).toBe(expected);
  });

  test.each<[number[], string]>([
    // reservoir: 2nd tie replaces when r*2 < 1, 3rd when r*3 < 1
    [[0.9, 0.9], 'b0'],
    [[0.1, 0.9], 'b1'],
    [[0.9, 0.1], 'b2'],
    [[0.1, 0.2], 'b2'],
  ])('ties are broken with the injected random source: draws %p -> %s', (draws, expected) => {
    expect(build([100, 100, 100], [2, 2, 2], scriptedRandom(draws)).p.pick({ now: 0 })?.id).toBe(expected);
  });

  test.each<[number, string]>([
    // weights 100 and 300, both idle: b1 replaces b0 when r * 400 < 300
    [0.74, 'b1'],
    [0.76, 'b0'],
  ])('a tie goes by weight: draw %p -> %s', (draw, expected) => {
    expect(build([100, 300], [0, 0], scriptedRandom([draw])).p.pick({ now: 0 })?.id).toBe(expected);
  });

  test('one request at a time (nothing in flight at each pick): weights 100/200/300 honoured within 5% over 10,000 picks', () => {
    const { cs, p } = build([100, 200, 300], [0, 0, 0]);
    const counts = countPicks(p, 10_000, () => ({ now: 0 }));
    for (const [id, err] of Object.entries(relativeShareErrors(cs, counts))) expect({ id, ok: err < 0.05 }).toEqual({ id, ok: true });
  });

  test('a busy first candidate does not count in the tie of the idle ones after it: 100/300 idle share 1:3', () => {
    const { p } = build([100, 100, 300], [5, 0, 0]);
    const counts = countPicks(p, 10_000, () => ({ now: 0 }));
    expect(counts.get('b0') ?? 0).toBe(0);
    expect(Math.abs((counts.get('b1') ?? 0) / 10_000 - 0.25)).toBeLessThan(0.0125);
    expect(Math.abs((counts.get('b2') ?? 0) / 10_000 - 0.75)).toBeLessThan(0.0375);
  });

  test('the random source is not called without a tie', () => {
    let calls = 0;
    const { p } = build([100, 100, 100], [1, 0, 2], () => {
      calls++;
      return 0;
    });
    expect(p.pick({ now: 0 })?.id).toBe('b1');
    expect(calls).toBe(0);
  });

  test('ties spread evenly: 3 equal idle backends share 9,000 picks within 5%', () => {
    const { cs, p } = build([100, 100, 100], [0, 0, 0]);
    const counts = countPicks(p, 9_000, () => ({ now: 0 }));
    for (const [id, err] of Object.entries(relativeShareErrors(cs, counts))) expect({ id, ok: err < 0.05 }).toEqual({ id, ok: true });
  });

  // What this tests: a closed loop with 1,000 requests always in flight, every request taking the same time
  // (first in, first out). Least-connections then keeps in-flight counts proportional to weight, and with
  // equal service times throughput (picks) follows in-flight, so picks come out proportional to weight. With
  // nothing ever in flight every pick is a tie, broken by weight (see above).
  test.each([[[100, 200, 300]], [[100, 100, 200]], [[1, 2, 3, 4]]])(
    'under equal service times, weights %p are honoured within 5 percent over 10,000 picks',
    (weights) => {
      const cs = fakeCandidates(weights);
      const p = leastConnectionsStrategy.build(cs, { random: seededRandom(3) });
      const concurrency = 1_000;
      const inFlight: FakeCandidate[] = [];
      const step = (): FakeCandidate => {
        if (inFlight.length === concurrency) (inFlight.shift() as FakeCandidate).active--;
        const c = p.pick({ now: 0 }) as FakeCandidate;
        c.active++;
        inFlight.push(c);
        return c;
      };
      for (let i = 0; i < 2 * concurrency; i++) step(); // warm up to steady state
      const counts = new Map<string, number>();
      for (let i = 0; i < 10_000; i++) {
        const c = step();
        counts.set(c.id, (counts.get(c.id) ?? 0) + 1);
      }
      for (const [id, err] of Object.entries(relativeShareErrors(cs, counts))) expect({ id, ok: err < 0.05 }).toEqual({ id, ok: true });
    },
  );
});
