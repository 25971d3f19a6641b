import { describe, expect, test } from 'bun:test';
import type { HealthCheckConfig } from '../config/types.ts';
import { HealthState } from './state.ts';

const probe = { path: '/health', method: 'GET', interval: 1000, timeout_ms: 500, expected_status: [200, 399] as [number, number], headers: {} };
function policy(over: Partial<HealthCheckConfig> = {}): HealthCheckConfig {
  return {
    probes: [probe],
    failure_threshold: 3,
    success_threshold: 2,
    cooldown_ms: 5000,
    initial: 'healthy',
    passive_failure_threshold: 5,
    ...over,
  };
}

type Step = [kind: 'probe' | 'req', ok: boolean, at: number, availableAfter: boolean];

describe('HealthState', () => {
  test.each<[string, HealthCheckConfig, Step[]]>([
    [
      'probe failures below threshold keep it up',
      policy(),
      [
        ['probe', false, 0, true],
        ['probe', false, 1000, true],
        ['probe', true, 2000, true],
        ['probe', false, 3000, true],
      ],
    ],
    [
      'threshold consecutive failures take it down',
      policy(),
      [
        ['probe', false, 0, true],
        ['probe', false, 1000, true],
        ['probe', false, 2000, false],
      ],
    ],
    [
      'successes during cooldown are ignored, then success_threshold brings it back',
      policy(),
      [
        ['probe', false, 0, true],
        ['probe', false, 1, true],
        ['probe', false, 2, false],
        ['probe', true, 1000, false],
        ['probe', true, 2000, false],
        ['probe', true, 5002, false],
        ['probe', true, 6000, true],
      ],
    ],
    [
      'a failure after cooldown resets the success count',
      policy({ failure_threshold: 1 }),
      [
        ['probe', false, 0, false],
        ['probe', true, 6000, false],
        ['probe', false, 7000, false],
        ['probe', true, 8000, false],
        ['probe', true, 9000, true],
      ],
    ],
    [
      'passive failures take it down; with probes only probes bring it back',
      policy({ passive_failure_threshold: 2 }),
      [
        ['req', false, 0, true],
        ['req', false, 1, false],
        ['req', true, 9000, false],
        ['probe', true, 9000, false],
        ['probe', true, 10000, true],
      ],
    ],
    [
      'without probes passive trip lasts the cooldown',
      policy({ probes: [], passive_failure_threshold: 2 }),
      [
        ['req', false, 0, true],
        ['req', false, 10, false],
        ['req', true, 100, false],
        ['req', true, 5010, true],
      ],
    ],
    [
      'passive disabled with threshold 0',
      policy({ passive_failure_threshold: 0 }),
      [
        ['req', false, 0, true],
        ['req', false, 1, true],
        ['req', false, 2, true],
      ],
    ],
    [
      'initial unhealthy with probes needs successes',
      policy({ initial: 'unhealthy' }),
      [
        ['probe', true, 0, false],
        ['probe', true, 1000, true],
      ],
    ],
  ])('%s', (_name, pol, steps) => {
    const h = new HealthState(pol);
    for (const [kind, ok, at, availableAfter] of steps) {
      if (kind === 'probe') h.probe(ok, at);
      else h.outcome(!ok, at);
      expect({ at, available: h.available(at) }).toEqual({ at, available: availableAfter });
    }
  });

  test('initial unhealthy without probes never becomes available', () => {
    const h = new HealthState(policy({ probes: [], initial: 'unhealthy' }));
    expect(h.available(1e12)).toBe(false);
  });

  test('initial unhealthy without probes comes up once a reload adds probes and they succeed', () => {
    const h = new HealthState(policy({ probes: [], initial: 'unhealthy' }));
    h.setPolicy(policy({ initial: 'unhealthy' }));
    expect(h.probe(true, 10)).toBeUndefined();
    expect(h.probe(true, 20)?.healthy).toBe(true);
    expect(h.available(20)).toBe(true);
  });

  test('transitions are reported once with their reason', () => {
    const h = new HealthState(policy({ failure_threshold: 1, success_threshold: 1 }));
    expect(h.probe(false, 0)).toEqual({ healthy: false, reason: 'probe_failures' });
    expect(h.probe(false, 1)).toBeUndefined();
    expect(h.probe(true, 6000)).toEqual({ healthy: true, reason: 'probe_successes' });
  });

  test('without probes the end of a passive cooldown is a transition (expire), and availableSince tells when', () => {
    const h = new HealthState(policy({ probes: [], passive_failure_threshold: 2, cooldown_ms: 1000 }));
    expect(h.outcome(false, 0)).toBeUndefined(); // a success
    h.outcome(true, 100); // failures (outcome's argument is `failed`)
    expect(h.outcome(true, 200)).toEqual({ healthy: false, reason: 'passive_failures' });
    expect(h.cooldownLeft(200)).toBe(1000);
    expect(h.expire(1199)).toBeUndefined();
    expect(h.available(1200)).toBe(true);
    expect(h.availableSince()).toBe(1200); // available from the end of the cooldown, before anyone looked
    expect(h.expire(1500)).toEqual({ healthy: true, reason: 'cooldown_over' });
    expect(h.expire(1600)).toBeUndefined(); // once
    expect(h.cooldownLeft(1600)).toBe(Number.POSITIVE_INFINITY);
    // tripping again is an ordinary transition from healthy
    h.outcome(true, 1700);
    expect(h.outcome(true, 1800)).toEqual({ healthy: false, reason: 'passive_failures' });
  });

  test('with probes expire never reports (probes decide)', () => {
    const h = new HealthState(policy({ passive_failure_threshold: 1, cooldown_ms: 100 }));
    expect(h.outcome(true, 0)).toEqual({ healthy: false, reason: 'passive_failures' });
    expect(h.cooldownLeft(0)).toBe(Number.POSITIVE_INFINITY);
    expect(h.expire(10_000)).toBeUndefined();
  });
});
