/**
 * The dashboard's `/stats` document of a supervisor: the workers' documents merged into one. Requests per
 * second and in-flight counts are summed; the 5xx share is weighted by each worker's requests; latency
 * percentiles cannot be merged exactly from per-worker percentiles, so p50/p99 are the **largest** of the
 * workers' (an upper bound, exact when one worker serves the traffic). A backend is healthy when every worker
 * sees it healthy; EWMA latency is the largest. Second-by-second series are aligned on their end time (the
 * workers' seconds start at different moments, so a point mixes seconds up to 1 s apart). Generation and
 * events come from the first document. Pure.
 */
import type { Figures, Series, StatsSnapshot } from '../observability/live-stats.ts';

type Pool = StatsSnapshot['pools'][number];
type Backend = Pool['backends'][number];

function maxOf(xs: readonly (number | null)[]): number | null {
  let m: number | null = null;
  for (const x of xs) if (x !== null && (m === null || x > m)) m = x;
  return m;
}

/** Merges the figures of several workers for one second (or one `current` window). */
export function mergeFigures(fs: readonly Figures[]): Figures {
  let rps = 0;
  let errors = 0;
  let weighted = 0;
  for (const f of fs) {
    rps += f.rps;
    if (f.error_rate !== null && f.rps > 0) {
      errors += f.error_rate * f.rps;
      weighted += f.rps;
    }
  }
  return {
    rps,
    error_rate: weighted > 0 ? errors / weighted : null,
    p50_ms: maxOf(fs.map((f) => f.p50_ms)),
    p99_ms: maxOf(fs.map((f) => f.p99_ms)),
  };
}

/** Merges series; `shifts[k]` is how many seconds series `k` ends before the first one. */
function mergeSeries(all: readonly Series[], shifts: readonly number[]): Series {
  const base = all[0] as Series;
  const n = base.rps.length;
  const out: Series = { rps: [], error_rate: [], p50_ms: [], p99_ms: [] };
  for (let i = 0; i < n; i++) {
    const points: Figures[] = [];
    all.forEach((s, k) => {
      const j = i + (shifts[k] ?? 0);
      if (j < 0 || j >= s.rps.length) return;
      points.push({ rps: s.rps[j] ?? 0, error_rate: s.error_rate[j] ?? null, p50_ms: s.p50_ms[j] ?? null, p99_ms: s.p99_ms[j] ?? null });
    });
    const f = mergeFigures(points);
    out.rps.push(f.rps);
    out.error_rate.push(f.error_rate);
    out.p50_ms.push(f.p50_ms);
    out.p99_ms.push(f.p99_ms);
  }
  return out;
}

/** One `/stats` document from the workers' documents (the first one's pools, backends and events lead). */
export function mergeStats(docs: readonly StatsSnapshot[]): StatsSnapshot | undefined {
  const first = docs[0];
  if (!first) return undefined;
  const shifts = docs.map((d) => Math.round((first.series_end_ms - d.series_end_ms) / 1000));
  const merge = <T extends { current: Figures; series: Series }>(items: readonly (T | undefined)[]) => {
    const present = items.map((x, k) => ({ x, shift: shifts[k] ?? 0 })).filter((p): p is { x: T; shift: number } => p.x !== undefined);
    return {
      current: mergeFigures(present.map((p) => p.x.current)),
      series: mergeSeries(
        present.map((p) => p.x.series),
        present.map((p) => p.shift),
      ),
    };
  };
  const pools = first.pools.map((pool) => {
    const same = docs.map((d) => d.pools.find((p) => p.name === pool.name));
    const backends = pool.backends.map((b) => {
      const copies = same.map((p) => p?.backends.find((x) => x.id === b.id));
      const found = copies.filter((x): x is Backend => x !== undefined);
      return {
        ...b,
        healthy: found.every((x) => x.healthy),
        in_flight: found.reduce((a, x) => a + x.in_flight, 0),
        ewma_ms: Math.max(...found.map((x) => x.ewma_ms)),
        ...merge(copies),
      };
    });
    return { ...pool, healthy_backends: backends.filter((b) => b.healthy).length, backends, ...merge(same) };
  });
  return {
    ...first,
    in_flight: docs.reduce((a, d) => a + d.in_flight, 0),
    total: merge(docs.map((d) => d.total)),
    pools,
  };
}
