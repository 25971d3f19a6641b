/**
 * One object the runtime wires in: it is the proxy handler's {@link ProxyObserver} (feeding Prometheus metrics
 * and the dashboard's sliding windows), takes the health, probe and reload hooks, and answers the admin
 * endpoints `/metrics`, `/stats` and `/config`.
 */
import { redactConfig } from '../config/redact.ts';
import type { HealthTransition } from '../health/state.ts';
import type { Clock } from '../lib/clock.ts';
import type { Generation } from '../runtime/generation.ts';
import type { Endpoint, ProbeObservation } from '../upstream/endpoint.ts';
import type { RequestRecord } from './access-log.ts';
import type { AttemptFailure, AttemptRecord, ProxyObserver } from './events.ts';
import { LiveStats, type ReloadInfo, type StatsSnapshot } from './live-stats.ts';
import { Metrics, type MetricsOptions, type ReloadCounts } from './metrics.ts';

/** What the admin listener serves from the telemetry. */
export interface AdminObservability {
  /** Prometheus exposition text and its content type. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** The dashboard's JSON document. */
  stats(): StatsSnapshot | Promise<unknown>;
  /** The effective config with secrets redacted. */
  config(): Record<string, unknown> | Promise<unknown>;
}

/** Options of {@link Telemetry}. */
export interface TelemetryOptions extends MetricsOptions {
  /** The current generation (read when needed, so it always reflects the last reload). */
  generation(): Generation;
  /** Time source. */
  clock: Clock;
  /** Reload attempts by result since start (the runtime's counts). Default: none. */
  reloadCounts?(): ReloadCounts;
  /** The runtime's audit trail, oldest first; its reload records show on the dashboard. Default: none. */
  auditTrail?(): readonly ReloadInfo[];
}

/** Metrics, dashboard statistics and their hooks. */
export class Telemetry implements ProxyObserver, AdminObservability {
  /** Prometheus metrics. */
  readonly prom: Metrics;
  /** Dashboard windows. */
  readonly live: LiveStats;

  constructor(private readonly opts: TelemetryOptions) {
    this.prom = new Metrics(
      { generation: opts.generation, clock: opts.clock, reloadCounts: () => opts.reloadCounts?.() ?? { ok: 0, error: 0 } },
      opts,
    );
    this.live = new LiveStats(opts.clock);
  }

  /** A request arrived. */
  requestStart(): void {
    this.prom.requestStart();
  }

  /** An upstream attempt ended. */
  attemptEnd(a: AttemptRecord): void {
    this.prom.attemptEnd(a);
  }

  /** An attempt failed after its response headers. */
  attemptFailedAfterHead(f: AttemptFailure): void {
    this.prom.attemptFailedAfterHead(f);
  }

  /** A request finished. */
  requestEnd(rec: RequestRecord): void {
    this.prom.requestEnd(rec);
    this.live.requestEnd(rec);
  }

  /** Hook for the endpoint registry: a backend's health changed. */
  healthChanged(endpoint: Endpoint, t: HealthTransition): void {
    this.prom.healthChanged(endpoint, t);
    const detail = endpoint.health.lastProbe?.detail;
    this.live.event({
      time: new Date(this.opts.clock.wallNow()).toISOString(),
      kind: 'health',
      pool: endpoint.pool,
      backend: endpoint.id,
      healthy: t.healthy,
      reason: t.reason,
      ...(detail !== undefined ? { detail } : {}),
    });
  }

  /** Hook for the endpoint registry: an active probe finished. */
  probed(endpoint: Endpoint, p: ProbeObservation): void {
    this.prom.probed(endpoint, p);
  }

  /** Prometheus exposition. */
  metrics(): Promise<{ contentType: string; body: string }> {
    return this.prom.render();
  }

  /** The dashboard document. */
  stats(): StatsSnapshot {
    return this.live.snapshot(this.opts.generation(), this.prom.requestsInFlight(), this.opts.auditTrail?.() ?? []);
  }

  /** The effective config, secrets redacted. */
  config(): Record<string, unknown> {
    const gen = this.opts.generation();
    return { generation: gen.id, loaded_at: new Date(gen.loadedAt).toISOString(), config: redactConfig(gen.config) };
  }
}
