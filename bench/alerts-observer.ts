/**
 * `bun bench/alerts-observer.ts [N] [REPS]`: CPU cost per request of the alerts on the request path: the
 * telemetry observer as the handler called it before alerts existed, the same behind the switchable observer
 * with nothing attached (alerts off), and with both route rules attached (error rate and p99 latency).
 * Process CPU time, variants interleaved, minimum of REPS runs.
 */
import { Registry } from 'prom-client';
import { Alerting } from '../src/alerts/alerting.ts';
import type { Config } from '../src/config/types.ts';
import { systemClock } from '../src/lib/clock.ts';
import { systemRandom } from '../src/lib/random.ts';
import type { ProxyObserver } from '../src/observability/events.ts';
import { createLogging } from '../src/observability/logger.ts';
import { Telemetry } from '../src/observability/telemetry.ts';
import { bestOfObservers, EMPTY_GENERATION } from './support.ts';

const gen = EMPTY_GENERATION;
const N = Number(process.argv[2] ?? 1_000_000);
const REPS = Number(process.argv[3] ?? 5);
const { log } = createLogging({ level: 'silent', format: 'json' });

function alerting(config: Partial<Config>): ProxyObserver {
  const base = new Telemetry({ generation: () => gen, clock: systemClock, processMetrics: false });
  const a = new Alerting({
    base,
    registry: new Registry(),
    generation: () => gen,
    listeners: () => [],
    clock: systemClock,
    random: systemRandom,
    log,
  });
  a.apply(config as Config);
  a.stop(); // no timers: only the request path is measured
  return a.observer;
}

const rules = {
  backend_unhealthy: true,
  pool_unavailable: true,
  reload_failed: true,
  route_error_rate: { threshold: 0.05, window_ms: 60000, min_requests: 20 },
  route_latency_p99: { threshold_ms: 1000, window_ms: 60000, min_requests: 20 },
};
const variants: [string, ProxyObserver][] = [
  ['telemetry', new Telemetry({ generation: () => gen, clock: systemClock, processMetrics: false })],
  ['alerts off', alerting({})],
  [
    'route rules on',
    alerting({ alerts: { webhooks: [], retries: { attempts: 1, base_ms: 0, cap_ms: 0 }, min_interval_ms: 0, queue_size: 1, rules } }),
  ],
];
const best = bestOfObservers(variants, N, REPS, (i) => (i % 50 ? 200 : 502));
const base = best.telemetry as number;
console.log(
  `CPU per request (min of ${REPS} x ${N}): telemetry alone ${base.toFixed(3)} µs; alerts off ${(best['alerts off'] as number).toFixed(3)} µs (${((best['alerts off'] as number) - base).toFixed(3)}); route rules on ${(best['route rules on'] as number).toFixed(3)} µs (+${((best['route rules on'] as number) - base).toFixed(3)})`,
);
