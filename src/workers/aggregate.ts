/**
 * `/metrics` of a supervisor: the workers' metrics (prom-client JSON gathered over IPC) merged with
 * prom-client's `AggregatorRegistry.aggregate` (it needs no `node:cluster`), plus the supervisor's own series.
 *
 * Counters, histograms and additive gauges (in-flight requests, memory, CPU) are summed. Gauges that describe
 * a shared state rather than a share of the load are not: a backend counts as healthy only when every worker
 * sees it healthy (`min`), a circuit or ejection shows when any worker has it (`max`), a backend's effective
 * weight and the per-process file-descriptor limit are settings, not shares (`max`), the config generation
 * and load time are the newest (`max`), certificate expiry the earliest (`min`). Reload counts come from the
 * supervisor (one per coordinated reload), not from the workers.
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

/** prom-client's JSON form of one metric. */
export type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/** How a worker gauge is merged when it is not a sum. */
export const GAUGE_AGGREGATION: Readonly<Record<string, 'min' | 'max'>> = {
  spooky_backend_healthy: 'min',
  spooky_backend_circuit_state: 'max',
  spooky_backend_ejected: 'max',
  spooky_backend_effective_weight: 'max',
  spooky_process_max_fds: 'max',
  spooky_config_generation: 'max',
  spooky_config_loaded_timestamp_seconds: 'max',
  spooky_certificate_expiry_timestamp_seconds: 'min',
  spooky_redis_up: 'min',
};

/** Worker series the supervisor replaces with its own. */
const SUPERVISOR_OWNED: ReadonlySet<string> = new Set(['spooky_config_reloads_total']);

/** Merges the workers' metrics and the supervisor's own into one registry ready to render. */
export function aggregateMetrics(workers: readonly MetricJson[][], own: readonly MetricJson[]): Registry {
  const sets: MetricJson[][] = workers.map((metrics) =>
    metrics
      .filter((m) => !SUPERVISOR_OWNED.has(m.name))
      .map((m) => {
        const how = GAUGE_AGGREGATION[m.name];
        return how ? ({ ...m, aggregator: how } as MetricJson) : m;
      }),
  );
  sets.push([...own]);
  return AggregatorRegistry.aggregate(sets as Parameters<typeof AggregatorRegistry.aggregate>[0]);
}
