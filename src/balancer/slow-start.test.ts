/**
 * Slow start in the balancers: a candidate with a time-varying weight gets a growing share during its window
 * and its normal share after it, under every strategy that applies slow start; the hash strategies ignore it.
 * Time comes from a ManualClock, randomness from seeded sources.
 */
import { describe, expect, test } from 'bun:test';
import type { StrategyName } from '../config/types.ts';
import { ManualClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { strategyByName } from './index.ts';
import { type FakeCandidate, RampingCandidate } from './testing.ts';
import type { Picker } from './types.ts';

const WINDOW = 10_000;
const PICKS = 6_000;

/**
 * Share of picks that go to `b1` over PICKS picks at `now`. Requests are simulated as a closed loop of 40 in
 * flight with equal service times (each pick starts one, the oldest ends), so load-based strategies see
 * in-flight counts that follow their choices, as in real traffic.
 */
function shareOfB1(picker: Picker<FakeCandidate>, cs: FakeCandidate[], now: number, concurrency = 40): number {
  for (const c of cs) c.active = 0;
  const inFlight: FakeCandidate[] = [];
  let b1 = 0;
  for (let i = 0; i < PICKS; i++) {
    const c = picker.pick({ now }) as FakeCandidate;
    if (c.id === 'b1') b1++;
    c.active++;
    inFlight.push(c);
    if (inFlight.length > concurrency) (inFlight.shift() as FakeCandidate).active--;
  }
  return b1 / PICKS;
}

/** Strategies that apply slow start, and how closely each one's share follows the weights (absolute). */
const RAMPED: [StrategyName, number][] = [
  ['weighted-round-robin', 0.01],
  ['round-robin', 0.01],
  ['random', 0.03],
  ['least-connections', 0.04],
  ['latency-aware', 0.06],
];

describe.each(RAMPED)('slow start: %s', (name, tolerance) => {
  // b0 full weight 100 since long ago; b1 weight 100 (re)joined at t=0 with a 10 s window from 10%.
  // Expected share of b1: w1 / (100 + w1) with w1 = 100 * (0.1 + 0.9 * t / window).
  test.each<[number, number]>([
    [0, 10 / 110],
    [2_500, 32.5 / 132.5],
    [5_000, 55 / 155],
    [7_500, 77.5 / 177.5],
    [WINDOW, 0.5],
    [60_000, 0.5],
  ])('at %i ms after joining, b1 gets its ramped share', (t, expected) => {
    const clock = new ManualClock(0);
    const b1 = new RampingCandidate('b1', 100, WINDOW);
    const b0 = new RampingCandidate('b0', 100, WINDOW);
    b0.joinedAt = -1e9;
    const cs = [b0, b1];
    const picker = strategyByName(name).build(cs, { random: seededRandom(11) });
    clock.advance(t);
    expect(Math.abs(shareOfB1(picker, cs, clock.now()) - expected)).toBeLessThan(tolerance);
  });

  test('the share grows through the window, and after it the configured weights hold (1:3; round-robin ignores weight)', () => {
    const b0 = new RampingCandidate('b0', 100, WINDOW);
    const b1 = new RampingCandidate('b1', 300, WINDOW);
    b0.joinedAt = -1e9;
    const cs = [b0, b1];
    const picker = strategyByName(name).build(cs, { random: seededRandom(5) });
    const shares = [0, 2_000, 4_000, 6_000, 8_000].map((t) => shareOfB1(picker, cs, t));
    for (let i = 1; i < shares.length; i++) expect(shares[i] as number).toBeGreaterThan(shares[i - 1] as number);
    expect(shares[0] as number).toBeLessThan(0.3);
    const full = name === 'round-robin' ? 0.5 : 0.75;
    expect(Math.abs(shareOfB1(picker, cs, WINDOW + 1) - full)).toBeLessThan(tolerance);
  });

  test('a candidate ramping from 0 is still picked when it is the only one available', () => {
    const b0 = new RampingCandidate('b0', 100, WINDOW, 0);
    const b1 = new RampingCandidate('b1', 100, WINDOW, 0);
    b0.up = false;
    const picker = strategyByName(name).build([b0, b1], { random: seededRandom(3) });
    for (let i = 0; i < 50; i++) expect(picker.pick({ now: 0 })?.id).toBe('b1');
  });

  test('never an unavailable or excluded candidate while weights ramp (5k picks, flipping availability)', () => {
    const cs = [100, 300, 100, 50, 200].map((w, i) => new RampingCandidate(`b${i}`, w, WINDOW));
    cs.forEach((c, i) => {
      c.joinedAt = i * 1000;
    });
    const picker = strategyByName(name).build(cs, { random: seededRandom(9) });
    const chaos = seededRandom(1);
    for (let i = 0; i < 5_000; i++) {
      for (const c of cs) if (chaos() < 0.2) c.up = !c.up;
      const exclude = chaos() < 0.5 ? new Set(cs.filter(() => chaos() < 0.25).map((c) => c.id)) : undefined;
      const usable = cs.filter((c) => c.up && !exclude?.has(c.id));
      const got = picker.pick({ now: i * 3, ...(exclude ? { exclude } : {}) });
      if (got === undefined) expect(usable).toEqual([]);
      else expect(usable).toContain(got);
    }
  });
});

describe('slow start under least-connections at low concurrency', () => {
  // An idle backend wins every pick against busy ones (in flight / weight), so while anything is in flight a
  // ramping backend counts a virtual load of 1 - ramped/full weight: without it, one that just rejoined took half
  // the requests at 2 in flight.
  test.each([
    [0, 0, 10 / 110],
    [0, 5_000, 55 / 155],
    [0, 7_500, 77.5 / 177.5],
  ])('nothing in flight at each pick: at %i in flight and %i ms into the window, the ramped share', (concurrency, t, expected) => {
    const b0 = new RampingCandidate('b0', 100, WINDOW);
    const b1 = new RampingCandidate('b1', 100, WINDOW);
    b0.joinedAt = -1e9;
    const cs = [b0, b1];
    const picker = strategyByName('least-connections').build(cs, { random: seededRandom(6) });
    expect(Math.abs(shareOfB1(picker, cs, t, concurrency) - expected)).toBeLessThan(0.03);
  });

  test.each([2, 3, 5, 10])('%i in flight: a backend that just rejoined (10 percent weight) gets at most its ramped share', (concurrency) => {
    const b0 = new RampingCandidate('b0', 100, WINDOW);
    const b1 = new RampingCandidate('b1', 100, WINDOW);
    b0.joinedAt = -1e9;
    const cs = [b0, b1];
    const picker = strategyByName('least-connections').build(cs, { random: seededRandom(4) });
    expect(shareOfB1(picker, cs, 0, concurrency)).toBeLessThanOrEqual(10 / 110 + 0.02);
    // After the window both are equal: half each.
    expect(Math.abs(shareOfB1(picker, cs, WINDOW + 1, concurrency) - 0.5)).toBeLessThan(0.04);
  });
});

describe.each<StrategyName>(['ip-hash', 'consistent-hash'])('slow start is not applied by %s', (name) => {
  test('a just-joined candidate keeps its keys (stickiness wins)', () => {
    const b0 = new RampingCandidate('b0', 100, WINDOW);
    const b1 = new RampingCandidate('b1', 100, WINDOW);
    b0.joinedAt = -1e9;
    const picker = strategyByName(name).build([b0, b1], { random: seededRandom(2), virtualNodes: 200 });
    const at = (now: number) => Array.from({ length: 500 }, (_, i) => picker.pick({ now, hashKey: `10.0.${i >> 8}.${i & 255}` })?.id);
    const early = at(0);
    expect(at(WINDOW * 2)).toEqual(early);
    const b1Share = early.filter((id) => id === 'b1').length / early.length;
    expect(b1Share).toBeGreaterThan(0.35);
  });
});
