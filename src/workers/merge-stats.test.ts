import { describe, expect, test } from 'bun:test';
import type { Figures, Series, StatsSnapshot } from '../observability/live-stats.ts';
import { mergeFigures, mergeStats } from './merge-stats.ts';

const fig = (rps: number, error_rate: number | null, p50_ms: number | null, p99_ms: number | null): Figures => ({ rps, error_rate, p50_ms, p99_ms });
const series = (rps: number[]): Series => ({
  rps,
  error_rate: rps.map((r) => (r ? 0 : null)),
  p50_ms: rps.map((r) => (r ? 1 : null)),
  p99_ms: rps.map((r) => (r ? 2 : null)),
});

function doc(endMs: number, rps: number[], opts: { healthy?: boolean; inFlight?: number; ewma?: number } = {}): StatsSnapshot {
  const current = fig(rps.at(-1) ?? 0, 0, 1, 2);
  return {
    time: '2026-01-01T00:00:00.000Z',
    series_end_ms: endMs,
    window_s: rps.length,
    current_s: 5,
    generation: { id: 1, loaded_at: '2026-01-01T00:00:00.000Z' },
    in_flight: opts.inFlight ?? 0,
    total: { current, series: series(rps) },
    pools: [
      {
        name: 'p',
        strategy: 'round-robin',
        healthy_backends: opts.healthy === false ? 0 : 1,
        current,
        series: series(rps),
        backends: [
          {
            id: 'a',
            address: 'http://a',
            healthy: opts.healthy ?? true,
            in_flight: opts.inFlight ?? 0,
            ewma_ms: opts.ewma ?? 1,
            last_probe: null,
            current,
            series: series(rps),
          },
        ],
      },
    ],
    events: [],
  };
}

describe('merging the workers’ dashboard documents', () => {
  test.each([
    // [figures, expected]
    [[fig(10, 0.1, 5, 50), fig(30, 0.5, 8, 20)], fig(40, 0.4, 8, 50)],
    [[fig(10, 0, 5, 50), fig(0, null, null, null)], fig(10, 0, 5, 50)],
    [[fig(0, null, null, null), fig(0, null, null, null)], fig(0, null, null, null)],
    [[], fig(0, null, null, null)],
  ])('figures %j -> %j', (fs, want) => {
    expect(mergeFigures(fs)).toEqual(want);
  });

  test('rates add up, aligned on the series end; health needs every worker; in-flight adds up', () => {
    const merged = mergeStats([doc(10_000, [1, 2, 3], { inFlight: 2, ewma: 3 }), doc(9_000, [10, 20, 30], { healthy: false, inFlight: 5, ewma: 7 })]);
    // the second worker's newest second is the first one's second-newest
    expect(merged?.total.series.rps).toEqual([1 + 20, 2 + 30, 3]);
    expect(merged?.in_flight).toBe(7);
    const b = merged?.pools[0]?.backends[0];
    expect(b?.healthy).toBe(false);
    expect(b?.in_flight).toBe(7);
    expect(b?.ewma_ms).toBe(7);
    expect(b?.series.rps).toEqual([21, 32, 3]);
    expect(merged?.pools[0]?.healthy_backends).toBe(0);
    expect(merged?.pools[0]?.current.rps).toBe(33);
  });

  test('one document stays as it is; none gives nothing', () => {
    const d = doc(10_000, [1, 2, 3]);
    expect(mergeStats([d])).toEqual(d);
    expect(mergeStats([])).toBeUndefined();
  });
});
