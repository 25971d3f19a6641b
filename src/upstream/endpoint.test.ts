import { describe, expect, test } from 'bun:test';
import { testBackend, unusedTransport } from '../../test/support/endpoint-fixtures.ts';
import { waitUntil } from '../../test/support/wait.ts';
import type { CircuitBreakerConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { ManualClock, systemClock } from '../lib/clock.ts';
import { OutlierDetector } from '../resilience/outlier.ts';
import { Endpoint, type ResilienceChange } from './endpoint.ts';

const transport = unusedTransport();
const backend = testBackend(0);
const breaker: CircuitBreakerConfig = {
  consecutive_failures: 2,
  failure_rate: 0,
  window_ms: 10_000,
  min_requests: 10,
  open_ms: 1000,
  half_open_max: 1,
};

function endpoint(clock: ManualClock, changes: ResilienceChange[]): Endpoint {
  const e = new Endpoint('k', 'pool', backend, transport, clock, () => {});
  e.onResilience = (_e, c) => changes.push(c);
  return e;
}

function request(e: Endpoint, status: number, error?: SpookyError): void {
  const started = e.begin();
  e.end(started, error ? undefined : started, error, status);
}

describe('Endpoint availability: health, breaker and ejection together', () => {
  test('the breaker opens, lets one probe through after open_ms, and closes on success', () => {
    const clock = new ManualClock(0);
    const changes: ResilienceChange[] = [];
    const e = endpoint(clock, changes);
    e.setBreakerPolicy(breaker);
    request(e, 503);
    expect(e.available()).toBe(true);
    request(e, 0, new SpookyError('upstream_reset', 'reset'));
    expect(e.available()).toBe(false);
    expect(e.circuit(clock.now())).toBe('open');
    clock.advance(1000);
    expect(e.available()).toBe(true);
    const started = e.begin();
    expect(e.available()).toBe(false); // the one probe slot is taken
    e.end(started, started, undefined, 200);
    expect(e.circuit(clock.now())).toBe('closed');
    expect(changes).toEqual([
      { kind: 'circuit', state: 'open' },
      { kind: 'circuit', state: 'closed' },
    ]);
  });

  test('a client abort frees the probe slot and is not a failure', () => {
    const clock = new ManualClock(0);
    const e = endpoint(clock, []);
    e.setBreakerPolicy({ ...breaker, consecutive_failures: 1 });
    request(e, 502);
    clock.advance(1000);
    const started = e.begin();
    e.end(started, undefined, new SpookyError('client_aborted', 'gone'), 0);
    expect(e.circuit(clock.now())).toBe('half_open');
    expect(e.available()).toBe(true);
  });

  test('an unchanged policy keeps the breaker state over a reload; a changed one starts afresh', () => {
    const clock = new ManualClock(0);
    const e = endpoint(clock, []);
    e.setBreakerPolicy(breaker);
    request(e, 503);
    request(e, 503);
    e.setBreakerPolicy({ ...breaker });
    expect(e.circuit(clock.now())).toBe('open');
    e.setBreakerPolicy({ ...breaker, open_ms: 5000 });
    expect(e.circuit(clock.now())).toBe('closed');
    e.setBreakerPolicy(null);
    expect(e.breaker).toBeNull();
  });

  test('an ejected backend is unavailable until its ejection ends', () => {
    const clock = new ManualClock(0);
    const changes: ResilienceChange[] = [];
    const e = endpoint(clock, changes);
    e.outlier = new OutlierDetector({ consecutiveFailures: 2, baseEjectionMs: 500, maxEjectionMs: 5000, maxEjectedPercent: 100 }, [e.key]); // members are endpoint keys
    request(e, 500);
    request(e, 500);
    expect(e.available()).toBe(false);
    expect(e.ejected(clock.now())).toBe(true);
    clock.advance(500);
    expect(e.available()).toBe(true);
    expect(e.ejections).toBe(1);
    expect(changes).toEqual([{ kind: 'ejected', ms: 500 }]);
  });

  test('without probes, the end of a passive cooldown is reported by a timer (logged), not only at the next request', async () => {
    const seen: { healthy: boolean; reason: string }[] = [];
    const b = testBackend(1);
    const e = new Endpoint('k', 'pool', { ...b, health_check: { ...b.health_check, cooldown_ms: 30 } }, transport, systemClock, (_e, t) =>
      seen.push(t),
    );
    request(e, 503);
    expect(seen).toEqual([{ healthy: false, reason: 'passive_failures' }]);
    await waitUntil(() => seen.length === 2, 2000, 'cooldown_over reported');
    expect(seen[1]).toEqual({ healthy: true, reason: 'cooldown_over' });
    request(e, 503); // trips again: a second down transition, logged like the first
    expect(seen.at(-1)).toEqual({ healthy: false, reason: 'passive_failures' });
  });

  test('a reload that removes the probes of a probe-down backend reports its return when the cooldown ends', async () => {
    const seen: { healthy: boolean; reason: string }[] = [];
    const b = testBackend(1);
    const probed = { ...b.health_check, probes: [{} as never], failure_threshold: 1, cooldown_ms: 30 };
    const e = new Endpoint('k', 'pool', { ...b, health_check: probed }, transport, systemClock, (_e, t) =>
      seen.push({ healthy: t.healthy, reason: t.reason }),
    );
    e.probeResult(false, '/health: status 503');
    expect(seen).toEqual([{ healthy: false, reason: 'probe_failures' }]);
    e.setHealthPolicy({ ...probed, probes: [] }); // the reload: passive checks only
    await waitUntil(() => seen.length === 2, 2000, 'cooldown_over reported without traffic');
    expect(seen[1]).toEqual({ healthy: true, reason: 'cooldown_over' });
    // Its cooldown already over at the reload: reported at once.
    e.setHealthPolicy(probed);
    e.probeResult(false, '/health: status 503');
    await Bun.sleep(40); // past the 30 ms cooldown, with probes still on: no return without a good probe
    expect(seen.length).toBe(3);
    e.setHealthPolicy({ ...probed, probes: [] });
    expect(seen[3]).toEqual({ healthy: true, reason: 'cooldown_over' });
  });

  test('a return noticed only at a later pick counts from when it happened (slow start does not restart)', () => {
    const clock = new ManualClock(0);
    const b = testBackend(1);
    const e = new Endpoint('k', 'pool', { ...b, health_check: { ...b.health_check, cooldown_ms: 1000 } }, transport, clock, () => {});
    request(e, 503); // down at 0, cooldown until 1000
    expect(e.available()).toBe(false);
    clock.advance(6000); // nobody looks until long after the cooldown
    expect(e.available()).toBe(true);
    expect(e.joinedAt).toBe(1000);
  });

  test('canServe() answers like available() but never marks the backend out or rejoined (observers do not start slow start)', () => {
    const clock = new ManualClock(0);
    const b = testBackend(1);
    const e = new Endpoint('k', 'pool', { ...b, health_check: { ...b.health_check, cooldown_ms: 1000 } }, transport, clock, () => {});
    request(e, 503); // down at 0, cooldown until 1000
    expect(e.canServe()).toBe(false);
    clock.advance(6000);
    expect(e.canServe()).toBe(true);
    expect(e.joinedAt).toBe(0); // as created: asking did not count as a return
  });

  test.each([false, true])(
    'a backend that starts initial: unhealthy counts as rejoined when it first comes up (asked while down: %p)',
    (askedWhileDown) => {
      const clock = new ManualClock(0);
      const b = testBackend(0);
      const hc = { ...b.health_check, initial: 'unhealthy' as const, probes: [{} as never], success_threshold: 1 };
      const e = new Endpoint('k', 'pool', { ...b, health_check: hc }, transport, clock, () => {});
      clock.advance(1000);
      if (askedWhileDown) expect(e.available()).toBe(false); // a request or /status looked while it was down
      clock.advance(9000);
      e.health.probe(true, clock.now()); // up at 10000
      expect(e.available()).toBe(true);
      expect(e.joinedAt).toBe(10_000); // slow start counts from its first return either way
    },
  );

  test('after an ejection, the backend counts as back from the end of the ejection', () => {
    const clock = new ManualClock(0);
    const e = endpoint(clock, []);
    const d = new OutlierDetector({ consecutiveFailures: 1, baseEjectionMs: 500, maxEjectionMs: 5000, maxEjectedPercent: 100 }, ['k']); // members are endpoint keys
    e.outlier = d;
    request(e, 503);
    expect(e.available()).toBe(false);
    clock.advance(3000);
    expect(e.available()).toBe(true);
    expect(e.joinedAt).toBe(d.ejectedUntil('k'));
    expect(e.joinedAt).toBeLessThan(3000);
  });
});

describe("an error that is not the backend's is no verdict", () => {
  const oneFailure: CircuitBreakerConfig = { ...breaker, consecutive_failures: 1 };
  for (const err of [
    new SpookyError('body_too_large', 'request body over 10 bytes'),
    new SpookyError('bad_request', 'request body shorter than its content-length'),
    new SpookyError('client_aborted', 'request aborted'),
  ]) {
    test(`a half-open probe cut by the client's ${err.code} does not close the circuit`, () => {
      const clock = new ManualClock(0);
      const e = new Endpoint('k', 'pool', testBackend(0), unusedTransport(), clock, () => {});
      e.setBreakerPolicy(oneFailure);
      const s0 = e.begin();
      e.end(s0, s0, undefined, 503); // the circuit opens
      expect(e.circuit(clock.now())).toBe('open');
      clock.advance(1000); // half-open: one probe
      const probe = e.begin();
      clock.advance(5);
      e.end(probe, undefined, err, 0); // the backend never answered
      expect(e.circuit(clock.now())).toBe('half_open');
    });
  }

  test("a client's oversize body does not end a passive-failure streak", () => {
    const clock = new ManualClock(0);
    const e = new Endpoint('k', 'pool', testBackend(3), unusedTransport(), clock, () => {});
    const fail = () => {
      const s = e.begin();
      e.end(s, s, undefined, 502);
    };
    fail();
    fail();
    const s = e.begin();
    e.end(s, undefined, new SpookyError('body_too_large', 'over'), 0);
    fail(); // the third backend failure in a row
    expect(e.available()).toBe(false);
  });
});
