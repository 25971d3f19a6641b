import { describe, expect, test } from 'bun:test';
import type { SlowStartConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { ManualClock } from '../lib/clock.ts';
import { OutlierDetector } from '../resilience/outlier.ts';
import { Endpoint } from './endpoint.ts';
import { SlowStartMember } from './slow-start-member.ts';
import { testBackend, unusedTransport } from '../../test/support/endpoint-fixtures.ts';

const transport = unusedTransport();
const backend = testBackend(2);
const ramp: SlowStartConfig = { window_ms: 10_000, aggression: 1, min_fraction: 0.1 };

function fail(e: Endpoint): void {
  const started = e.begin();
  e.end(started, undefined, new SpookyError('upstream_reset', 'reset'), 0);
}

/** Ways a backend goes out and comes back by itself after `backMs`. */
const OUTAGES: [string, (e: Endpoint) => void, number][] = [
  [
    'passive health (two failures, 5 s cooldown)',
    (e) => {
      fail(e);
      fail(e);
    },
    5_000,
  ],
  [
    'circuit breaker (opens, closes after a good probe)',
    (e) => {
      e.setBreakerPolicy({ consecutive_failures: 1, failure_rate: 0, window_ms: 10_000, min_requests: 10, open_ms: 3_000, half_open_max: 1 });
      fail(e);
    },
    3_000,
  ],
  [
    'outlier ejection (4 s)',
    (e) => {
      e.outlier = new OutlierDetector({ consecutiveFailures: 1, baseEjectionMs: 4_000, maxEjectionMs: 60_000, maxEjectedPercent: 100 }, [e.key]);
      fail(e);
    },
    4_000,
  ],
];

describe('slow start of a pool member', () => {
  test('a new endpoint starts its ramp when it is created (added by a reload)', () => {
    const clock = new ManualClock(50_000);
    const m = new SlowStartMember('a', 100, new Endpoint('k', 'p', backend, transport, clock, () => {}), ramp);
    expect(m.currentWeight(clock.now())).toBeCloseTo(10, 9);
    expect(m.ramping(clock.now())).toBe(true);
    expect(m.currentWeight(clock.now() + 5_000)).toBeCloseTo(55, 9);
    expect(m.currentWeight(clock.now() + 10_000)).toBe(100);
    expect(m.ramping(clock.now() + 10_000)).toBe(false);
  });

  test.each(OUTAGES)('rejoining after %s ramps again from the minimum', (_name, takeOut, backMs) => {
    const clock = new ManualClock(0);
    const e = new Endpoint('k', 'p', backend, transport, clock, () => {});
    const m = new SlowStartMember('a', 100, e, ramp);
    clock.advance(60_000);
    expect(m.available()).toBe(true);
    expect(m.currentWeight(clock.now())).toBe(100);
    takeOut(e);
    expect(m.available()).toBe(false);
    clock.advance(backMs);
    expect(m.available()).toBe(true); // back: the ramp starts now
    const probe = e.begin(); // a request that succeeds (closes a half-open circuit)
    e.end(probe, probe, undefined, 200);
    expect(m.available()).toBe(true);
    expect(m.currentWeight(clock.now())).toBeCloseTo(10, 6);
    clock.advance(5_000);
    expect(m.currentWeight(clock.now())).toBeCloseTo(55, 6);
    clock.advance(5_000);
    expect(m.currentWeight(clock.now())).toBe(100);
  });
});
