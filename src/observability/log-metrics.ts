/**
 * Prometheus counters of the log features: access records dropped by sampling, body samples written, and
 * log file reopens. The numbers are kept as plain counters by their owners and copied into prom-client when
 * `/metrics` is scraped, so the request path makes no prom-client call for them.
 */
import { Counter, type Registry } from 'prom-client';
import type { AccessSamplingStats } from './access-sampling.ts';
import type { BodyDirection } from './body-sample.ts';
import type { ReopenCounts } from './log-files.ts';

/** Where the counters are read from when scraped. */
export interface LogMetricsSource {
  /** Access-log sampling counts. */
  sampling: AccessSamplingStats;
  /** Body sample records written, by direction. */
  bodySamples?: Readonly<Record<BodyDirection, number>>;
  /** Log file reopen results. */
  reopens?: Readonly<ReopenCounts>;
}

/** Registers the log counters in `registry`. */
export function registerLogMetrics(registry: Registry, src: LogMetricsSource): void {
  const registers = [registry];
  new Counter({
    name: 'spooky_access_log_sampled_out_total',
    help: 'Access-log records not written because of log.access_sampling.',
    registers,
    collect() {
      this.reset();
      this.inc(src.sampling.sampledOut);
    },
  });
  new Counter({
    name: 'spooky_body_samples_total',
    help: 'Body sample records written (route body_sampling), by direction (request, response).',
    labelNames: ['direction'],
    registers,
    collect() {
      this.reset();
      for (const direction of ['request', 'response'] as const) this.inc({ direction }, src.bodySamples?.[direction] ?? 0);
    },
  });
  new Counter({
    name: 'spooky_log_reopens_total',
    help: 'Log files reopened on SIGUSR1, by result (success, failure: the file open before is kept).',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      this.inc({ result: 'success' }, src.reopens?.success ?? 0);
      this.inc({ result: 'failure' }, src.reopens?.failure ?? 0);
    },
  });
}
