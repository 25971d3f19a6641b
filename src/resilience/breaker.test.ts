import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { type BreakerPolicy, type BreakerStateName, CircuitBreaker } from './breaker.ts';

const base: BreakerPolicy = { consecutiveFailures: 3, failureRate: 0, windowMs: 10_000, minRequests: 10, openMs: 1000, halfOpenMax: 1 };

/**
 * A step: advance the clock, then `ok` / `fail` (a request that starts and ends now), `start` (a request
 * starts and stays in flight), `end-ok` / `end-fail` (an in-flight request ends); then expect the state and
 * whether a new request is allowed.
 */
type Step = [advance: number, action: 'ok' | 'fail' | 'start' | 'end-ok' | 'end-fail' | 'none', state: BreakerStateName, allows: boolean];

describe('CircuitBreaker', () => {
  test.each<[string, Partial<BreakerPolicy>, Step[]]>([
    [
      'consecutive failures open it; a success in between resets the run',
      {},
      [
        [0, 'fail', 'closed', true],
        [0, 'fail', 'closed', true],
        [0, 'ok', 'closed', true],
        [0, 'fail', 'closed', true],
        [0, 'fail', 'closed', true],
        [0, 'fail', 'open', false],
      ],
    ],
    [
      'open for open_ms, then half-open allows one probe; success closes',
      { consecutiveFailures: 1 },
      [
        [0, 'fail', 'open', false],
        [999, 'none', 'open', false],
        [1, 'none', 'half_open', true],
        [0, 'start', 'half_open', false],
        [10, 'end-ok', 'closed', true],
      ],
    ],
    [
      'a failed probe opens it again for another open_ms',
      { consecutiveFailures: 1 },
      [
        [0, 'fail', 'open', false],
        [1000, 'start', 'half_open', false],
        [5, 'end-fail', 'open', false],
        [999, 'none', 'open', false],
        [1, 'none', 'half_open', true],
      ],
    ],
    [
      'half_open_max probes at once',
      { consecutiveFailures: 1, halfOpenMax: 2 },
      [
        [0, 'fail', 'open', false],
        [1000, 'start', 'half_open', true],
        [0, 'start', 'half_open', false],
        [0, 'end-ok', 'closed', true],
      ],
    ],
    [
      'failure rate over the window, once min_requests were seen',
      { consecutiveFailures: 0, failureRate: 0.5, minRequests: 4 },
      [
        [0, 'fail', 'closed', true],
        [0, 'ok', 'closed', true],
        [0, 'fail', 'closed', true], // 2/3 but only 3 requests
        [0, 'ok', 'closed', true], // 2/4 = 0.5 but the last one succeeded: rate is checked on failures
        [0, 'fail', 'open', false], // 3/5
      ],
    ],
    [
      'old failures slide out of the window',
      { consecutiveFailures: 0, failureRate: 0.5, minRequests: 2, windowMs: 1000 },
      [
        [0, 'fail', 'closed', true],
        [0, 'ok', 'closed', true],
        [0, 'ok', 'closed', true],
        [2000, 'ok', 'closed', true],
        [0, 'fail', 'open', false], // 1/2 in the new window
      ],
    ],
    [
      'below the failure rate stays closed',
      { consecutiveFailures: 0, failureRate: 0.5, minRequests: 2 },
      [
        [0, 'ok', 'closed', true],
        [0, 'ok', 'closed', true],
        [0, 'fail', 'closed', true],
      ],
    ],
    [
      'results of requests that started before it opened do not extend it',
      { consecutiveFailures: 1 },
      [
        [0, 'start', 'closed', true],
        [0, 'fail', 'open', false],
        [500, 'end-fail', 'open', false],
        [500, 'none', 'half_open', true],
      ],
    ],
  ])('%s', (_name, over, steps) => {
    const clock = new ManualClock(0);
    const b = new CircuitBreaker({ ...base, ...over });
    for (const [i, [advance, action, state, allows]] of steps.entries()) {
      clock.advance(advance);
      const now = clock.now();
      if (action === 'ok' || action === 'fail') {
        b.onStart(now);
        b.onResult(action === 'fail', now);
      } else if (action === 'start') b.onStart(now);
      else if (action === 'end-ok' || action === 'end-fail') b.onResult(action === 'end-fail', now);
      expect({ i, state: b.state(now), allows: b.allows(now) }).toEqual({ i, state, allows });
    }
  });

  test('a cancelled probe frees its slot without closing or opening', () => {
    const b = new CircuitBreaker({ ...base, consecutiveFailures: 1 });
    b.onResult(true, 0);
    b.onStart(1000);
    expect(b.allows(1000)).toBe(false);
    b.onCancel(1000);
    expect(b.state(1000)).toBe('half_open');
    expect(b.allows(1000)).toBe(true);
  });

  test('while half-open, a request sent before the circuit opened does not decide: only the probe does', () => {
    const b = new CircuitBreaker({ ...base, consecutiveFailures: 3 });
    b.onStart(0); // a slow request, sent while closed
    for (const t of [1, 2, 3]) {
      b.onStart(t);
      b.onResult(true, t, t);
    }
    expect(b.state(3)).toBe('open');
    b.onStart(1003); // the probe (half-open since 1003)
    expect(b.allows(1004)).toBe(false);
    expect(b.onResult(false, 1005, 0)).toBeUndefined(); // the old request succeeds: not a probe
    expect(b.onResult(false, 1005, 0)).toBeUndefined();
    expect(b.state(1005)).toBe('half_open');
    expect(b.allows(1005)).toBe(false); // the probe still holds its slot
    expect(b.onResult(false, 1010, 1003)).toBe('closed');
  });

  test('counts how often it opened', () => {
    const b = new CircuitBreaker({ ...base, consecutiveFailures: 1 });
    b.onResult(true, 0);
    b.onStart(1000);
    b.onResult(true, 1000);
    expect(b.opens).toBe(2);
  });
});
