import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { scriptedRandom, seededRandom } from '../lib/random.ts';
import { PeakEwma } from '../resilience/ewma.ts';
import { latencyAwareStrategy } from './latency-aware.ts';
import { countPicks, FakeCandidate } from './testing.ts';
import type { Candidate } from './types.ts';

type Spec = [latencyMs: number, inFlight: number, weight: number];
const make = (specs: Spec[]) => specs.map(([l, f, w], i) => new FakeCandidate(`b${i}`, w, { latencyMs: l, active: f }));

describe('latency-aware (p2c over peak-EWMA)', () => {
  // Two candidates: both are always drawn, so this is the comparison itself.
  test.each<[string, Spec, Spec, string]>([
    ['lower latency wins', [10, 0, 100], [100, 0, 100], 'b0'],
    ['latency times (in-flight + 1): 10*(9+1) > 50*(0+1)', [10, 9, 100], [50, 0, 100], 'b1'],
    ['a cold candidate beats a warm one with no more load', [0, 0, 100], [5, 0, 100], 'b0'],
    ['a cold candidate beats a warm one with more load', [80, 3, 100], [0, 1, 100], 'b1'],
    ['a cold candidate with more in flight than its warm rival loses (it is costed at the rival latency)', [0, 4, 100], [50, 1, 100], 'b1'],
    ['two cold candidates compare on in-flight + 1', [0, 2, 100], [0, 1, 100], 'b1'],
  ])('%s', (_name, a, b, expected) => {
    for (const seed of [1, 2, 3]) {
      const p = latencyAwareStrategy.build(make([a, b]), { random: seededRandom(seed) });
      for (let i = 0; i < 20; i++) expect(p.pick({ now: 0 })?.id).toBe(expected);
    }
  });

  test.each<[number[], string]>([
    // pair (a, b): a = floor(r1 * 3); b = floor(r2 * 2), +1 if >= a. Latencies 40, 50, 1.
    [[0, 0], 'b0'], // pair (0, 1): b2, the best overall, is not drawn
    [[0, 0.9], 'b2'], // pair (0, 2)
    [[0.5, 0], 'b0'], // pair (1, 0)
    [[0.5, 0.9], 'b2'], // pair (1, 2)
    [[0.9, 0], 'b2'], // pair (2, 0)
  ])('only the two drawn candidates are compared: draws %p -> %s', (draws, expected) => {
    const cs = make([
      [40, 0, 100],
      [50, 0, 100],
      [1, 0, 100],
    ]);
    const p = latencyAwareStrategy.build(cs, { random: scriptedRandom(draws) });
    expect(p.pick({ now: 0 })?.id).toBe(expected);
  });

  test('draws are among usable candidates only when some are down (slow path)', () => {
    const cs = make([
      [10, 0, 100],
      [20, 0, 100],
      [30, 0, 100],
      [40, 0, 100],
    ]);
    cs[0]!.up = false;
    // fast-path pair (0, 1) hits the down b0; slow path ranks over [b1, b2, b3]: r=0.7 -> rank 2 (b3), r=0.9 -> rank 1 (b2)
    const p = latencyAwareStrategy.build(cs, { random: scriptedRandom([0, 0, 0.7, 0.9]) });
    expect(p.pick({ now: 0 })?.id).toBe('b2');
  });

  test('the faster backend (10 ms vs 100 ms) gets over 80% of picks under load', () => {
    // Simulation on a virtual clock: one request per ms; each takes its backend's latency to complete.
    const cs = make([
      [10, 0, 100],
      [100, 0, 100],
    ]);
    const p = latencyAwareStrategy.build(cs, { random: seededRandom(11) });
    const done: { at: number; c: FakeCandidate }[] = [];
    const picks = new Map<string, number>();
    for (let now = 0; now < 10_000; now++) {
      for (let i = done.length - 1; i >= 0; i--) {
        if ((done[i] as { at: number }).at <= now) (done.splice(i, 1)[0] as { c: FakeCandidate }).c.active--;
      }
      const c = p.pick({ now }) as FakeCandidate;
      c.active++;
      done.push({ at: now + c.latencyMs, c });
      picks.set(c.id, (picks.get(c.id) ?? 0) + 1);
    }
    expect((picks.get('b0') ?? 0) / 10_000).toBeGreaterThan(0.8);
    expect(picks.get('b1') ?? 0).toBeGreaterThan(0); // but the slow one still takes overflow
  });

  // Unequal weights: a random pick in proportion to weight / (latency * (1 + inFlight * meanWeight / weight)).
  test.each<[string, Spec[], number[]]>([
    [
      'idle, equal latency: shares follow the weights',
      [
        [20, 0, 100],
        [20, 0, 200],
      ],
      [1 / 3, 2 / 3],
    ],
    [
      'a cold lighter backend is probed (costed at the warm latency)',
      [
        [0, 0, 100],
        [20, 0, 200],
      ],
      [1 / 3, 2 / 3],
    ],
    [
      'two cold backends, weighted',
      [
        [0, 0, 100],
        [0, 0, 300],
      ],
      [1 / 4, 3 / 4],
    ],
    // 100/10 against 200/100: the faster backend gets more than its weight's share
    [
      'the faster backend gets more than its weight',
      [
        [10, 0, 100],
        [100, 0, 200],
      ],
      [10 / 12, 2 / 12],
    ],
    // loads in proportion to the weights (1 and 2 in flight, mean weight 150): still the weights' shares
    [
      "in-flight requests in proportion to the weights keep the weights' shares",
      [
        [20, 2, 100],
        [20, 4, 200],
      ],
      [1 / 3, 2 / 3],
    ],
  ])('unequal weights: %s', (_name, specs, shares) => {
    const counts = countPicks(latencyAwareStrategy.build(make(specs), { random: seededRandom(7) }), 12_000, () => ({ now: 0 }));
    shares.forEach((want, i) => {
      expect(Math.abs((counts.get(`b${i}`) ?? 0) / 12_000 - want)).toBeLessThan(0.02);
    });
  });

  test('unequal weights under a closed loop of 40 requests in flight: the shares follow the weights (1:3)', () => {
    const cs = make([
      [20, 0, 100],
      [20, 0, 300],
    ]);
    const p = latencyAwareStrategy.build(cs, { random: seededRandom(3) });
    const inFlight: FakeCandidate[] = [];
    let b1 = 0;
    for (let i = 0; i < 12_000; i++) {
      const c = p.pick({ now: 0 }) as FakeCandidate;
      if (c.id === 'b1') b1++;
      c.active++;
      inFlight.push(c);
      if (inFlight.length > 40) (inFlight.shift() as FakeCandidate).active--;
    }
    expect(Math.abs(b1 / 12_000 - 0.75)).toBeLessThan(0.03);
  });

  test('with three backends the fast one wins every pair it is in (about 2/3 of picks)', () => {
    const cs = make([
      [100, 0, 100],
      [10, 0, 100],
      [100, 0, 100],
    ]);
    const counts = countPicks(latencyAwareStrategy.build(cs, { random: seededRandom(5) }), 9_000, () => ({ now: 0 }));
    expect(Math.abs((counts.get('b1') ?? 0) / 9_000 - 2 / 3)).toBeLessThan(0.02);
  });

  test('cold (unsampled) backends get picked', () => {
    const cs = make([
      [20, 0, 100],
      [30, 0, 100],
      [0, 0, 100],
      [25, 0, 100],
    ]);
    const counts = countPicks(latencyAwareStrategy.build(cs, { random: seededRandom(9) }), 6_000, () => ({ now: 0 }));
    // the cold b2 wins every pair it is drawn into: 1/2 of picks with four candidates
    expect(Math.abs((counts.get('b2') ?? 0) / 6_000 - 0.5)).toBeLessThan(0.03);
  });

  test('with a real peak-EWMA: a latency spike moves traffic away, and decay brings it back', () => {
    const clock = new ManualClock();
    class EwmaCandidate implements Candidate {
      readonly ewma = new PeakEwma(1_000);
      constructor(
        readonly id: string,
        readonly weight = 100,
      ) {}
      available(): boolean {
        return true;
      }
      inFlight(): number {
        return 0;
      }
      latency(now: number): number {
        return this.ewma.get(now);
      }
    }
    const a = new EwmaCandidate('a');
    const b = new EwmaCandidate('b');
    const p = latencyAwareStrategy.build([a, b], { random: seededRandom(1) });
    a.ewma.observe(20, clock.now());
    b.ewma.observe(20, clock.now());
    a.ewma.observe(500, clock.now()); // spike: peak sensitivity takes it at once
    expect(p.pick({ now: clock.now() })?.id).toBe('b');
    clock.advance(1_000);
    b.ewma.observe(20, clock.now()); // b keeps answering in 20 ms
    expect(p.pick({ now: clock.now() })?.id).toBe('b'); // a at 500/e = 184
    clock.advance(4_000); // a idle: 500 * e^-5 = 3.4 ms; b 20 * e^-4 = 0.37 ms
    b.ewma.observe(20, clock.now());
    expect(p.pick({ now: clock.now() })?.id).toBe('a'); // a decayed below b's fresh 20 ms: probed again
  });
});
