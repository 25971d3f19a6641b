/**
 * `bun bench/observer.ts [N] [REPS]`: CPU cost of the telemetry observer per request (requestStart +
 * attemptEnd + requestEnd, as the proxy handler calls them) with realistic records: 3 backends, 2 routes,
 * latencies spread over several buckets. Measures process CPU time (user + system), so other processes on the
 * machine matter less than for wall time; interleaves the variants and reports the minimum of REPS runs.
 */
import { systemClock } from '../src/lib/clock.ts';
import { NO_OBSERVER, type ProxyObserver } from '../src/observability/events.ts';
import { LiveStats } from '../src/observability/live-stats.ts';
import { Metrics } from '../src/observability/metrics.ts';
import { Telemetry } from '../src/observability/telemetry.ts';
import { bestOfObservers, EMPTY_GENERATION } from './support.ts';

const gen = EMPTY_GENERATION;
const N = Number(process.argv[2] ?? 1_000_000);
const REPS = Number(process.argv[3] ?? 5);

const variants: [string, ProxyObserver][] = [
  ['none', NO_OBSERVER],
  ['metrics', new Metrics({ generation: () => gen, clock: systemClock, reloadCounts: () => ({ ok: 0, error: 0 }) }, { processMetrics: false })],
  ['live', new LiveStats(systemClock)],
  ['telemetry', new Telemetry({ generation: () => gen, clock: systemClock, processMetrics: false })],
];
const best = bestOfObservers(variants, N, REPS, () => 200);
const base = best.none as number;
console.log(
  `CPU per request (min of ${REPS} x ${N}): no observer ${base.toFixed(3)} µs; added: metrics ${((best.metrics as number) - base).toFixed(2)} µs, dashboard windows ${((best.live as number) - base).toFixed(2)} µs, telemetry (both) ${((best.telemetry as number) - base).toFixed(2)} µs`,
);
