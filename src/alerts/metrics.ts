/**
 * Prometheus metrics of the alerts, registered on Spooky's registry (so `/metrics` shows them). Alerts are
 * rare, so these are plain prom-client calls.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AttemptResult } from './delivery.ts';
import type { SuppressReason } from './gate.ts';

/** The alert metric names (the README documents each). */
export const ALERT_METRIC_NAMES = [
  'spooky_alerts_total',
  'spooky_alerts_suppressed_total',
  'spooky_alerts_dropped_total',
  'spooky_alert_deliveries_total',
  'spooky_alert_delivery_attempts_total',
  'spooky_alert_queue_length',
] as const;

/** The alert counters and the queue gauge. */
export class AlertMetrics {
  private readonly alerts: Counter<'kind' | 'status'>;
  private readonly suppressed: Counter<'kind' | 'reason'>;
  private readonly dropped: Counter<'webhook'>;
  private readonly deliveries: Counter<'webhook' | 'result'>;
  private readonly attempts: Counter<'webhook' | 'result'>;

  /** Registers the metrics on `registry`; `queueLengths` is read when scraped. */
  constructor(registry: Registry, queueLengths: () => Iterable<[string, number]>) {
    const registers = [registry];
    this.alerts = new Counter({
      name: 'spooky_alerts_total',
      help: 'Alert notifications raised (after deduplication and the minimum interval), by kind and status (firing, resolved).',
      labelNames: ['kind', 'status'],
      registers,
    });
    this.suppressed = new Counter({
      name: 'spooky_alerts_suppressed_total',
      help: 'Alert signals not sent, by kind and reason: duplicate (state already notified) or min_interval (inside the minimum interval of their key).',
      labelNames: ['kind', 'reason'],
      registers,
    });
    this.dropped = new Counter({
      name: 'spooky_alerts_dropped_total',
      help: 'Alerts dropped for a webhook because its queue was full, by webhook.',
      labelNames: ['webhook'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'spooky_alert_deliveries_total',
      help: 'Alert deliveries by webhook and result: delivered (a 2xx answer, after any retries) or failed (attempts used up, or a status that is not retried).',
      labelNames: ['webhook', 'result'],
      registers,
    });
    this.attempts = new Counter({
      name: 'spooky_alert_delivery_attempts_total',
      help: 'Alert delivery attempts (POSTs) by webhook and result: success, http_error, timeout, network_error.',
      labelNames: ['webhook', 'result'],
      registers,
    });
    new Gauge({
      name: 'spooky_alert_queue_length',
      help: 'Alerts waiting or being sent, by webhook.',
      labelNames: ['webhook'],
      registers,
      collect() {
        this.reset();
        for (const [webhook, n] of queueLengths()) this.set({ webhook }, n);
      },
    });
  }

  /** A notification was raised. */
  raised(kind: string, status: string): void {
    this.alerts.inc({ kind, status });
  }

  /** A signal was suppressed. */
  suppress(kind: string, reason: SuppressReason): void {
    this.suppressed.inc({ kind, reason });
  }

  /** An alert was dropped for a webhook. */
  drop(webhook: string): void {
    this.dropped.inc({ webhook });
  }

  /** One attempt ended. */
  attempt(webhook: string, result: AttemptResult): void {
    this.attempts.inc({ webhook, result });
  }

  /** One delivery ended. */
  delivery(webhook: string, delivered: boolean): void {
    this.deliveries.inc({ webhook, result: delivered ? 'delivered' : 'failed' });
  }
}
