import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { DEFAULT_EWMA_DECAY_MS, PeakEwma } from './ewma.ts';

const E1 = Math.exp(-1);

/** A step: advance the clock by `advance` ms, then observe `sample` (if given), then expect `get()` to be `expect`. */
type Step = { advance: number; sample?: number; expect: number };

describe('PeakEwma', () => {
  test.each<[string, number, Step[]]>([
    [
      'nothing observed reads 0, whatever the time',
      10_000,
      [
        { advance: 0, expect: 0 },
        { advance: 1e9, expect: 0 },
      ],
    ],
    ['the first sample is the estimate', 10_000, [{ advance: 5, sample: 50, expect: 50 }]],
    [
      'decays towards 0 with time constant tau between samples',
      10_000,
      [
        { advance: 0, sample: 100, expect: 100 },
        { advance: 10_000, expect: 100 * E1 },
        { advance: 10_000, expect: 100 * E1 * E1 },
      ],
    ],
    [
      'a shorter tau decays faster',
      1_000,
      [
        { advance: 0, sample: 100, expect: 100 },
        { advance: 1_000, expect: 100 * E1 },
      ],
    ],
    [
      'peak: a sample above the estimate replaces it at once',
      10_000,
      [
        { advance: 0, sample: 10, expect: 10 },
        { advance: 1, sample: 500, expect: 500 },
      ],
    ],
    [
      'peak is against the decayed estimate',
      10_000,
      [
        { advance: 0, sample: 100, expect: 100 },
        { advance: 10_000, sample: 40, expect: 40 }, // 40 > 100/e = 36.8
      ],
    ],
    [
      'a lower sample pulls the estimate down by 1 - e^(-gap/tau)',
      10_000,
      [
        { advance: 0, sample: 100, expect: 100 },
        // c = 100/e; v = c*e^-1 + 10*(1 - e^-1)
        { advance: 10_000, sample: 10, expect: 100 * E1 * E1 + 10 * (1 - E1) },
      ],
    ],
    [
      'samples close together barely move it down',
      10_000,
      [
        { advance: 0, sample: 100, expect: 100 },
        { advance: 1, sample: 1, expect: 100 * Math.exp(-2 / 10_000) + 1 * (1 - Math.exp(-1 / 10_000)) },
      ],
    ],
    [
      'after a long idle gap the old value has decayed away and the new sample takes over',
      10_000,
      [
        { advance: 0, sample: 100, expect: 100 },
        { advance: 100_000, sample: 20, expect: 20 },
      ],
    ],
    [
      'a steady latency reads as itself after every sample',
      10_000,
      [
        { advance: 0, sample: 30, expect: 30 },
        { advance: 1_000, sample: 30, expect: 30 },
        { advance: 1_000, sample: 30, expect: 30 },
        { advance: 500, expect: 30 * Math.exp(-500 / 10_000) },
      ],
    ],
    [
      'negative and non-finite samples are ignored',
      10_000,
      [
        { advance: 0, sample: 20, expect: 20 },
        { advance: 0, sample: -5, expect: 20 },
        { advance: 0, sample: Number.NaN, expect: 20 },
        { advance: 0, sample: Number.POSITIVE_INFINITY, expect: 20 },
      ],
    ],
    [
      'a zero sample is a real sample',
      10_000,
      [
        { advance: 0, sample: 0, expect: 0 },
        { advance: 10_000, sample: 0, expect: 0 },
      ],
    ],
  ])('%s', (_name, tau, steps) => {
    const clock = new ManualClock(1_000);
    const e = new PeakEwma(tau);
    for (const s of steps) {
      clock.advance(s.advance);
      if (s.sample !== undefined) e.observe(s.sample, clock.now());
      expect(e.get(clock.now())).toBeCloseTo(s.expect, 9);
    }
  });

  test('get is pure: reading often gives the same estimate as reading once', () => {
    const clock = new ManualClock();
    const often = new PeakEwma();
    const once = new PeakEwma();
    const samples = [50, 20, 80, 10, 10, 30, 5];
    for (const s of samples) {
      for (let i = 0; i < 100; i++) {
        clock.advance(37);
        often.get(clock.now());
      }
      often.observe(s, clock.now());
      once.observe(s, clock.now());
    }
    clock.advance(1234);
    expect(often.get(clock.now())).toBe(once.get(clock.now()));
  });

  test('a sample dated before the last one gets no decay weight and does not turn the clock back', () => {
    const e = new PeakEwma(10_000);
    e.observe(100, 10_000);
    e.observe(10, 5_000); // out of order: w = 1, so a lower sample changes nothing
    expect(e.get(10_000)).toBe(100);
    e.observe(300, 5_000); // but a higher one is still a peak
    expect(e.get(10_000)).toBe(300);
    expect(e.get(20_000)).toBeCloseTo(300 * E1, 9);
  });

  test('hasSample and reset', () => {
    const e = new PeakEwma();
    expect(e.hasSample).toBe(false);
    e.observe(5, 0);
    expect(e.hasSample).toBe(true);
    e.reset();
    expect(e.hasSample).toBe(false);
    expect(e.get(0)).toBe(0);
  });

  test('defaults to a 10 s time constant', () => {
    expect(DEFAULT_EWMA_DECAY_MS).toBe(10_000);
    expect(new PeakEwma().tau).toBe(10_000);
  });

  test.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])('rejects decay %p', (tau) => {
    expect(() => new PeakEwma(tau)).toThrow(RangeError);
  });
});
