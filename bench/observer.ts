/**
 * `bun bench/observer.ts [N] [REPS]`: CPU cost of the telemetry observer per request (requestStart +
 * attemptEnd + requestEnd, as the proxy handler calls them) with realistic records: 3 backends, 2 routes,
 * latencies spread over several buckets. Measures process CPU time (user + system), so other processes on the
 * machine matter less than for wall time; interleaves the variants and reports the minimum of REPS runs.
 */
import type { Generation } from '../src/runtime/generation.ts';
import { systemClock } from '../src/lib/clock.ts';
import type { RequestRecord } from '../src/observability/access-log.ts';
import { NO_OBSERVER, type ProxyObserver } from '../src/observability/events.ts';
import { LiveStats } from '../src/observability/live-stats.ts';
import { Metrics } from '../src/observability/metrics.ts';
import { Telemetry } from '../src/observability/telemetry.ts';

const gen = { id: 1, loadedAt: Date.now(), config: { listeners: [], pools: [] }, pools: new Map() } as unknown as Generation;
const N = Number(process.argv[2] ?? 1_000_000);
const REPS = Number(process.argv[3] ?? 5);
const backends = ['a', 'b', 'c'];
const routes = ['web#0', 'web#1'];

function runOnce(o: ProxyObserver, n: number): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    o.requestStart();
    const backend = backends[i % 3] as string;
    o.attemptEnd({ pool: 'web', backend, attempt: 1, status: 200, upstream_ms: 0.3 + (i % 13) * 0.7 });
    const rec: RequestRecord = {
      request_id: 'x-1',
      client: '127.0.0.1',
      protocol: i % 2 ? 'h3' : 'h2',
      method: 'GET',
      host: 'h',
      path: '/',
      status: 200,
      bytes_in: 0,
      bytes_out: 164,
      duration_ms: 0.5 + (i % 17) * 0.9,
      attempts: 1,
      route: routes[i % 2] as string,
      pool: 'web',
      backend,
    };
    o.requestEnd(rec);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const variants: [string, ProxyObserver][] = [
  ['none', NO_OBSERVER],
  ['metrics', new Metrics({ generation: () => gen, clock: systemClock, reloadCounts: () => ({ ok: 0, error: 0 }) }, { processMetrics: false })],
  ['live', new LiveStats(systemClock)],
  ['telemetry', new Telemetry({ generation: () => gen, clock: systemClock, processMetrics: false })],
];
const best: Record<string, number> = {};
for (const [, o] of variants) runOnce(o, 200_000); // warm up
for (let r = 0; r < REPS; r++) for (const [name, o] of variants) best[name] = Math.min(best[name] ?? Infinity, runOnce(o, N));
const base = best.none as number;
console.log(
  `CPU per request (min of ${REPS} x ${N}): no observer ${base.toFixed(3)} µs; added: metrics ${((best.metrics as number) - base).toFixed(2)} µs, dashboard windows ${((best.live as number) - base).toFixed(2)} µs, telemetry (both) ${((best.telemetry as number) - base).toFixed(2)} µs`,
);
