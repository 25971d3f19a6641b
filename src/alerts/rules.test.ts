import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { backendSignal, certificateSignals, poolSignal, RouteRule, reloadFailedSignal } from './rules.ts';
import { RouteWindow } from './windows.ts';

const DAY = 86_400_000;

describe('RouteWindow', () => {
  test('counts, 5xx, requests slower than the threshold and p99 over the last window; old slots fall out', () => {
    const w = new RouteWindow(1000, 100);
    for (let i = 0; i < 99; i++) w.add(0, 200, 10);
    w.add(50, 503, 900);
    expect(w.figures(50)).toEqual({ requests: 100, errors: 1, p99_ms: expect.any(Number), slow: 1 });
    const p99 = w.figures(50).p99_ms as number;
    expect(p99).toBeGreaterThanOrEqual(10); // 99 of 100 at 10 ms: p99 is the 10 ms bucket
    expect(p99).toBeLessThan(12.5);
    w.add(950, 500, 2000);
    expect(w.figures(950).requests).toBe(101);
    expect(w.figures(1000).requests).toBe(1); // the slot of t=0..99 left the window
    expect(w.figures(5000)).toEqual({ requests: 0, errors: 0, p99_ms: null, slow: 0 });
  });

  test('without a latency threshold neither slow requests nor the histogram are kept', () => {
    const w = new RouteWindow(1000);
    w.add(0, 200, 5000);
    expect(w.figures(0)).toEqual({ requests: 1, errors: 0, p99_ms: null, slow: 0 });
  });
});

describe('RouteRule', () => {
  type Row = [name: string, requests: [status: number, ms: number, n: number][], expected: ('firing' | 'resolved')[]];
  const errorRule = { threshold: 0.1, window_ms: 10_000, min_requests: 10 };

  test.each<Row>([
    ['under min_requests never fires', [[500, 1, 9]], []],
    [
      'over the threshold fires',
      [
        [500, 1, 2],
        [200, 1, 8],
      ],
      ['firing'],
    ],
    [
      'at the threshold does not fire',
      [
        [500, 1, 1],
        [200, 1, 9],
      ],
      [],
    ],
    [
      'no 5xx, no alert (4xx and 499 are not errors)',
      [
        [404, 1, 10],
        [499, 1, 10],
      ],
      [],
    ],
  ])('error rate: %s', (_n, reqs, expected) => {
    const clock = new ManualClock();
    const rule = new RouteRule('route_error_rate', errorRule);
    for (const [status, ms, n] of reqs) for (let i = 0; i < n; i++) rule.record('api#0', 'api', clock.now(), status, ms);
    expect(rule.evaluate(clock.now()).map((s) => s.status)).toEqual(expected);
  });

  test('error rate fires once, stays quiet while over, resolves when the window moved on', () => {
    const clock = new ManualClock();
    const rule = new RouteRule('route_error_rate', errorRule);
    for (let i = 0; i < 20; i++) rule.record('api#0', 'api', clock.now(), 500, 3);
    const [fired] = rule.evaluate(clock.now());
    expect(fired).toMatchObject({
      kind: 'route_error_rate',
      status: 'firing',
      subject: { pool: 'api', route: 'api#0' },
      values: { requests: 20, errors: 20, error_rate: 1, threshold: 0.1 },
    });
    expect(fired?.message).toContain('100% of 20 requests answered 5xx');
    clock.advance(1000);
    expect(rule.evaluate(clock.now())).toEqual([]);
    clock.advance(10_000);
    for (let i = 0; i < 20; i++) rule.record('api#0', 'api', clock.now(), 200, 3);
    expect(rule.evaluate(clock.now()).map((s) => [s.status, s.values.error_rate])).toEqual([['resolved', 0]]);
  });

  test('p99 latency over threshold_ms fires per route', () => {
    const clock = new ManualClock();
    const rule = new RouteRule('route_latency_p99', { threshold_ms: 100, window_ms: 10_000, min_requests: 5 });
    for (let i = 0; i < 10; i++) rule.record('slow#0', 'slow', clock.now(), 200, 400);
    for (let i = 0; i < 10; i++) rule.record('fast#0', 'fast', clock.now(), 200, 5);
    const out = rule.evaluate(clock.now());
    expect(out.map((s) => [s.subject.route, s.status])).toEqual([['slow#0', 'firing']]);
    expect(out[0]?.values.p99_ms as number).toBeGreaterThanOrEqual(400);
  });

  test('p99 latency is decided exactly, not from a histogram bucket: all requests just under threshold_ms never fire', () => {
    const rule = new RouteRule('route_latency_p99', { threshold_ms: 900, window_ms: 10_000, min_requests: 20 });
    // 200 requests of 820 ms: the p99 is 820 ms (the histogram bucket holding it ends above 900 ms).
    for (let i = 0; i < 200; i++) rule.record('api#0', 'api', 1000 + i, 200, 820);
    expect(rule.evaluate(1500)).toEqual([]);
    // The p99 is over 900 ms exactly when more than 1% of the requests took longer: 2 of 202 (under 1%) do not fire...
    for (let i = 0; i < 2; i++) rule.record('api#0', 'api', 1500, 200, 950);
    expect(rule.evaluate(1500)).toEqual([]);
    // ...3 of 203 do.
    rule.record('api#0', 'api', 1500, 200, 950);
    const out = rule.evaluate(1500);
    expect(out.map((s) => [s.status, s.values.slow_requests, s.values.requests])).toEqual([['firing', 3, 203]]);
    expect(out[0]?.message).toBe('route api#0: p99 latency over 900 ms over the last 10 s (3 of 203 requests took longer)');
  });

  test('a latency rule whose threshold_ms changes takes nothing from the old one (its counts were against the old threshold)', () => {
    const cfg = { threshold_ms: 900, window_ms: 10_000, min_requests: 20 };
    const old = new RouteRule('route_latency_p99', cfg);
    expect(new RouteRule('route_latency_p99', { ...cfg, min_requests: 5 }).adopt(old)).toBe(true);
    expect(new RouteRule('route_latency_p99', { ...cfg, threshold_ms: 800 }).adopt(old)).toBe(false);
  });

  test('a replacing rule with the same window keeps the measurements and the firing routes', () => {
    const old = new RouteRule('route_error_rate', errorRule);
    for (let i = 0; i < 20; i++) old.record('api#0', 'api', 0, 500, 1);
    expect(old.evaluate(0).map((s) => s.status)).toEqual(['firing']);
    const next = new RouteRule('route_error_rate', { ...errorRule, threshold: 0.5 });
    expect(next.adopt(old)).toBe(true);
    expect(next.evaluate(1)).toEqual([]); // still over the new threshold: no second firing
    // A route that gets no more requests (removed by the reload) resolves once its window has moved on.
    expect(next.evaluate(10_001).map((s) => [s.subject.route, s.status])).toEqual([['api#0', 'resolved']]);
  });

  test('a replacing rule with another window takes nothing; resolveAll ends what fired', () => {
    const old = new RouteRule('route_error_rate', errorRule);
    for (let i = 0; i < 20; i++) old.record('api#0', 'api', 0, 500, 1);
    old.evaluate(0);
    expect(new RouteRule('route_error_rate', { ...errorRule, window_ms: 5000 }).adopt(old)).toBe(false);
    const ended = old.resolveAll('its window changed by a reload');
    expect(ended).toEqual([
      {
        kind: 'route_error_rate',
        status: 'resolved',
        subject: { pool: 'api', route: 'api#0' },
        message: 'route api#0: route_error_rate alert ended (its window changed by a reload)',
        values: { reason: 'its window changed by a reload' },
      },
    ]);
    expect(old.resolveAll('again')).toEqual([]);
  });
});

describe('certificateSignals', () => {
  const now = Date.parse('2026-11-25T00:00:00Z');
  const cert = (days: number, server_name = '*') => ({
    listener: '0.0.0.0:443',
    server_name,
    cert: '/c.pem',
    not_after: new Date(now + days * DAY).toISOString(),
  });

  test.each([
    [20, 14, []],
    [10, 14, ['firing']],
    [13.9, 14, ['firing']],
    [100, 400, ['firing']],
  ])('expires in %p days, rule %p days -> %p', (days, rule, expected) => {
    expect(certificateSignals([cert(days)], now, rule, new Set()).map((s): string => s.status)).toEqual(expected as string[]);
  });

  test('fires on every check while expiring (the gate drops the repeats), resolves when replaced or removed', () => {
    const firing = new Set<string>();
    expect(certificateSignals([cert(3), cert(3, 'a.test')], now, 14, firing).map((s) => s.status)).toEqual(['firing', 'firing']);
    const again = certificateSignals([cert(3), cert(3, 'a.test')], now, 14, firing);
    expect(again[0]).toMatchObject({ status: 'firing', subject: { listener: '0.0.0.0:443', server_name: '*' }, values: { days_left: 3, days: 14 } });
    const after = certificateSignals([cert(90)], now, 14, firing);
    expect(after.map((s) => [s.subject.server_name, s.status])).toEqual([
      ['*', 'resolved'],
      ['a.test', 'resolved'],
    ]);
    expect(firing.size).toBe(0);
  });
});

describe('signals', () => {
  test('backend, pool and reload signals carry subject, message and values', () => {
    expect(
      backendSignal({ pool: 'p', backend: 'b', address: '127.0.0.1:1' }, false, 'probe_failures', '/health: upstream_connect_failed'),
    ).toMatchObject({
      kind: 'backend_unhealthy',
      status: 'firing',
      subject: { pool: 'p', backend: 'b', address: '127.0.0.1:1' },
      values: { reason: 'probe_failures', last_probe: '/health: upstream_connect_failed' },
    });
    expect(backendSignal({ pool: 'p', backend: 'b', address: 'x' }, true, 'probe_successes', undefined).status).toBe('resolved');
    expect(poolSignal('p', 0, 2)).toMatchObject({ status: 'firing', message: 'pool p has no healthy backend (0 of 2)' });
    expect(poolSignal('p', 1, 2).status).toBe('resolved');
    expect(poolSignal('p', 0, 2, 1)).toMatchObject({
      status: 'firing',
      message: 'pool p has no available backend (1 of 2 healthy, but kept out by circuit breakers or outlier detection)',
      values: { available_backends: 0, healthy_backends: 1, backends: 2 },
    });
    const r = reloadFailedSignal('/etc/spooky.yaml', 'signal', ['a', 'b'], 3);
    expect(r).toMatchObject({
      kind: 'reload_failed',
      status: 'firing',
      subject: { config: '/etc/spooky.yaml' },
      values: { error_count: 2, generation: 3 },
    });
    expect(r.message).toContain('(+1 more)');
  });
});
