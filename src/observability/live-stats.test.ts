import { afterAll, describe, expect, test } from 'bun:test';
import { formatIssue, loadConfigText } from '../config/load.ts';
import { ManualClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { buildGeneration } from '../runtime/generation.ts';
import { EndpointRegistry } from '../upstream/registry.ts';
import type { Transport } from '../upstream/transport.ts';
import type { RequestRecord } from './access-log.ts';
import { bucketUpperMs, LATENCY_BUCKETS, LiveStats, latencyBucket, MAX_EVENTS, WINDOW_SECONDS } from './live-stats.ts';

const fakeTransport: Transport = {
  request: async () => ({ status: 200, headers: [], body: null }),
  openWebSocket: async () => ({ ok: false, status: 501 }),
  stats: () => ({ connectionsOpened: 0, connectionsOpen: 0, connectionsIdle: 0 }),
  close() {},
};
const clock = new ManualClock(100_000, 1_800_000_000_000);
const registry = new EndpointRegistry(
  clock,
  () => fakeTransport,
  () => {},
);
afterAll(() => registry.close());
const loaded = loadConfigText(
  'listen: { tls: { cert: c.pem, key: k.pem } }\nupstream:\n  web:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }, { id: b, address: "http://127.0.0.1:2" }]\n',
  'spooky.yaml',
  '/srv',
);
if (!loaded.ok) throw new Error(loaded.errors.map(formatIssue).join('\n'));
const gen = buildGeneration(loaded.config, registry, 7, seededRandom(1));

function rec(over: Partial<RequestRecord>): RequestRecord {
  return {
    request_id: 'r',
    client: '127.0.0.1',
    protocol: 'h3',
    method: 'GET',
    host: 'h',
    path: '/',
    status: 200,
    bytes_in: 0,
    bytes_out: 0,
    duration_ms: 1,
    attempts: 1,
    pool: 'web',
    ...over,
  };
}

describe('latency buckets', () => {
  test.each([
    [0, 0],
    [0.1, 0],
    [0.11, 1],
    [0.125, 1],
    [1, 11],
    [1e9, LATENCY_BUCKETS - 1],
  ])('%p ms -> bucket %p', (ms, b) => {
    expect(latencyBucket(ms)).toBe(b);
  });
  test('every duration is at most its bucket upper bound and above the one before', () => {
    for (const ms of [0.3, 1.7, 12, 250, 4000, 60_000]) {
      const b = latencyBucket(ms);
      expect(ms).toBeLessThanOrEqual(bucketUpperMs(b) * (1 + 1e-9));
      expect(ms).toBeGreaterThan(bucketUpperMs(b - 1));
    }
  });
});

describe('LiveStats', () => {
  const stats = new LiveStats(clock);

  test('per-second series, current figures, error rate and percentiles per backend and pool', () => {
    // second 100: 10 requests to a (9 x 2 ms, 1 x 500 ms with status 502); second 101: 4 to b at 20 ms
    for (let i = 0; i < 9; i++) stats.requestEnd(rec({ backend: 'a', duration_ms: 2 }));
    stats.requestEnd(rec({ backend: 'a', duration_ms: 500, status: 502 }));
    clock.advance(1000);
    for (let i = 0; i < 4; i++) stats.requestEnd(rec({ backend: 'b', duration_ms: 20 }));
    stats.requestEnd(rec({ pool: undefined, status: 404, duration_ms: 0.05 })); // no route
    clock.advance(1000); // now in second 102: seconds 100 and 101 are complete

    const snap = stats.snapshot(gen, 3);
    expect(snap.generation.id).toBe(7);
    expect(snap.in_flight).toBe(3);
    expect(snap.window_s).toBe(WINDOW_SECONDS);
    const web = snap.pools.find((p) => p.name === 'web');
    const a = web?.backends.find((b) => b.id === 'a');
    const b = web?.backends.find((x) => x.id === 'b');
    expect(a?.series.rps.slice(-2)).toEqual([10, 0]);
    expect(b?.series.rps.slice(-2)).toEqual([0, 4]);
    expect(a?.series.rps).toHaveLength(WINDOW_SECONDS);
    expect(a?.series.error_rate.slice(-2)).toEqual([0.1, null]);
    const p50 = a?.series.p50_ms.at(-2) ?? 0;
    expect(p50).toBeGreaterThanOrEqual(2);
    expect(p50).toBeLessThan(2.5);
    const p99 = a?.series.p99_ms.at(-2) ?? 0;
    expect(p99).toBeGreaterThanOrEqual(500);
    expect(p99).toBeLessThan(625);
    expect(a?.current.rps).toBe(2); // 10 requests over the last 5 s
    expect(a?.current.error_rate).toBe(0.1);
    expect(web?.series.rps.slice(-2)).toEqual([10, 4]);
    expect(web?.current.error_rate).toBeCloseTo(1 / 14, 9);
    expect(web?.healthy_backends).toBe(2);
    expect(snap.total.series.rps.slice(-2)).toEqual([10, 5]);
    // the end of the newest second on the wall clock
    expect(snap.series_end_ms).toBe(1_800_000_000_000 + 102_000);
  });

  test('old seconds leave the window', () => {
    clock.advance(WINDOW_SECONDS * 1000);
    const snap = stats.snapshot(gen, 0);
    expect(snap.total.series.rps.every((n) => n === 0)).toBe(true);
    expect(snap.total.current).toEqual({ rps: 0, error_rate: null, p50_ms: null, p99_ms: null });
  });

  test('health events and reloads from the audit trail, newest first, capped', () => {
    stats.event({ time: '2027-01-01T00:00:02.000Z', kind: 'health', pool: 'web', backend: 'a', healthy: false, reason: 'probe_failures' });
    const snap = stats.snapshot(gen, 0, [
      { time: '2027-01-01T00:00:01.000Z', action: 'reload', trigger: 'signal', result: 'ok', generation: 2 },
      { time: '2027-01-01T00:00:03.000Z', action: 'reload', trigger: 'admin', result: 'error', generation: 2, errors: ['x', 'y'] },
      { time: '2027-01-01T00:00:04.000Z', action: 'shutdown', trigger: 'signal', result: 'ok', generation: 2 },
    ]);
    expect(snap.events).toEqual([
      { time: '2027-01-01T00:00:03.000Z', kind: 'reload', result: 'failure', generation: 2, trigger: 'admin', errors: 2 },
      { time: '2027-01-01T00:00:02.000Z', kind: 'health', pool: 'web', backend: 'a', healthy: false, reason: 'probe_failures' },
      { time: '2027-01-01T00:00:01.000Z', kind: 'reload', result: 'success', generation: 2, trigger: 'signal' },
    ]);
    for (let i = 0; i < MAX_EVENTS + 5; i++)
      stats.event({
        time: `2027-01-02T00:00:${String(i % 60).padStart(2, '0')}.000Z`,
        kind: 'health',
        pool: 'web',
        backend: 'b',
        healthy: true,
        reason: 'probe_successes',
      });
    expect(stats.snapshot(gen, 0).events).toHaveLength(MAX_EVENTS);
  });
});
