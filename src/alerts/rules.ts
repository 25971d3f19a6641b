/**
 * The alert rules as pure code: each turns what it observed into {@link AlertSignal}s, and only on a change
 * (a condition that starts or ends), so the gate sees transitions, not samples. Time is passed in.
 */
import type { AlertKind, AlertRulesConfig } from '../config/types.ts';
import type { AlertSignal } from './alert.ts';
import { RouteWindow, type WindowFigures } from './windows.ts';

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

/** A route rule: fires while the measured value is over the threshold with at least `min_requests` requests in the window. */
export class RouteRule {
  private readonly windows = new Map<string, RouteWindow>();
  private readonly pools = new Map<string, string>();
  /** Routes firing now. */
  readonly firing = new Set<string>();

  /**
   * `kind` picks the measure: `route_error_rate` (5xx share against `threshold`) or `route_latency_p99` (p99 ms
   * against `threshold_ms`).
   */
  constructor(
    readonly kind: Extract<AlertKind, 'route_error_rate' | 'route_latency_p99'>,
    readonly cfg: NonNullable<AlertRulesConfig['route_error_rate'] | AlertRulesConfig['route_latency_p99']>,
  ) {}

  /**
   * Takes over what `old` (the rule this one replaces on a reload) measured and what fires, when both have the
   * same window; returns false (and takes nothing) when the window changed.
   */
  adopt(old: RouteRule): boolean {
    if (old.kind !== this.kind || old.cfg.window_ms !== this.cfg.window_ms) return false;
    // The latency windows count the requests slower than the threshold: they are worth nothing for another one.
    if (this.kind === 'route_latency_p99' && old.threshold() !== this.threshold()) return false;
    for (const [route, w] of old.windows) this.windows.set(route, w);
    for (const [route, pool] of old.pools) this.pools.set(route, pool);
    for (const route of old.firing) this.firing.add(route);
    return true;
  }

  /** Resolves every firing route because of `why` (the rule was switched off or its window changed by a reload). */
  resolveAll(why: string): AlertSignal[] {
    const out: AlertSignal[] = [];
    for (const route of this.firing) {
      const pool = this.pools.get(route) ?? '';
      out.push({
        kind: this.kind,
        status: 'resolved',
        subject: { pool, route },
        message: `route ${route}: ${this.kind} alert ended (${why})`,
        values: { reason: why },
      });
    }
    this.firing.clear();
    return out;
  }

  /** Counts one finished request of `route` (of `pool`). */
  record(route: string, pool: string, now: number, status: number, durationMs: number): void {
    let w = this.windows.get(route);
    if (!w) {
      w = new RouteWindow(this.cfg.window_ms, this.kind === 'route_latency_p99' ? this.threshold() : undefined);
      this.windows.set(route, w);
      this.pools.set(route, pool);
    }
    w.add(now, status, durationMs);
  }

  /** The routes whose state changed at `now`. */
  evaluate(now: number): AlertSignal[] {
    const out: AlertSignal[] = [];
    for (const [route, w] of this.windows) {
      const f = w.figures(now);
      const over = f.requests >= this.cfg.min_requests && this.over(f);
      const was = this.firing.has(route);
      if (over === was) continue;
      if (over) this.firing.add(route);
      else this.firing.delete(route);
      out.push(this.signal(route, this.pools.get(route) ?? '', f, over));
    }
    return out;
  }

  /** The rule's threshold: the 5xx share (`threshold`) or the milliseconds (`threshold_ms`). */
  threshold(): number {
    return 'threshold' in this.cfg ? this.cfg.threshold : this.cfg.threshold_ms;
  }

  /**
   * Whether the window's measure is over the threshold. The p99 is over `threshold_ms` exactly when more than 1%
   * of the requests took longer (decided on counts, not on the histogram, whose buckets are 25% wide).
   */
  private over(f: WindowFigures): boolean {
    if (f.requests === 0) return false;
    if (this.kind === 'route_error_rate') return f.errors / f.requests > this.threshold();
    return f.slow > f.requests * 0.01;
  }

  private signal(route: string, pool: string, f: WindowFigures, firing: boolean): AlertSignal {
    const secs = Math.round(this.cfg.window_ms / 100) / 10;
    const base = { requests: f.requests, window_ms: this.cfg.window_ms, min_requests: this.cfg.min_requests };
    const threshold = this.threshold();
    const head = { kind: this.kind, status: firing ? 'firing' : 'resolved', subject: { pool, route } } as const;
    if (this.kind === 'route_error_rate') {
      const rate = f.requests > 0 ? f.errors / f.requests : 0;
      return {
        ...head,
        message: firing
          ? `route ${route}: ${pct(rate)} of ${f.requests} requests answered 5xx over the last ${secs} s (threshold ${pct(threshold)})`
          : `route ${route}: error rate back to ${pct(rate)} of ${f.requests} requests over the last ${secs} s (threshold ${pct(threshold)})`,
        values: { ...base, errors: f.errors, error_rate: Math.round(rate * 10000) / 10000, threshold },
      };
    }
    return {
      ...head,
      message: firing
        ? `route ${route}: p99 latency over ${threshold} ms over the last ${secs} s (${f.slow} of ${f.requests} requests took longer)`
        : `route ${route}: p99 latency back at or under ${threshold} ms over the last ${secs} s (${f.slow} of ${f.requests} requests took longer)`,
      // p99_ms: the upper bound of the histogram bucket holding the p99 (up to 25% above it).
      values: { ...base, slow_requests: f.slow, p99_ms: f.p99_ms, threshold_ms: threshold },
    };
  }
}

/** One listener certificate, as the expiry rule sees it. */
export interface CertificateInfo {
  /** Listener `address:port` as configured. */
  listener: string;
  /** SNI name; `*` for the default certificate. */
  server_name: string;
  /** Certificate file. */
  cert: string;
  /** End of validity (ISO 8601). */
  not_after: string;
}

/**
 * Certificate expiry: fires for each certificate expiring within `days` of `wallNow` (ms since the epoch);
 * resolves a firing one that now lasts longer (replaced) or is no longer configured. `firing` holds the keys
 * (`listener|server_name`) that fire and is updated.
 */
export function certificateSignals(certs: readonly CertificateInfo[], wallNow: number, days: number, firing: Set<string>): AlertSignal[] {
  const out: AlertSignal[] = [];
  const seen = new Set<string>();
  for (const c of certs) {
    const id = `${c.listener}|${c.server_name}`;
    seen.add(id);
    const end = Date.parse(c.not_after);
    if (!Number.isFinite(end)) continue;
    const daysLeft = Math.floor(((end - wallNow) / 86_400_000) * 10) / 10;
    const expiring = end - wallNow < days * 86_400_000;
    const values = { not_after: c.not_after, days_left: daysLeft, days, cert: c.cert };
    const subject = { listener: c.listener, server_name: c.server_name };
    if (expiring) {
      firing.add(id);
      out.push({
        kind: 'certificate_expiring',
        status: 'firing',
        subject,
        message: `listener ${c.listener}: certificate ${c.cert} (${c.server_name}) expires on ${c.not_after}, in ${daysLeft} day(s)`,
        values,
      });
    } else if (firing.delete(id)) {
      out.push({
        kind: 'certificate_expiring',
        status: 'resolved',
        subject,
        message: `listener ${c.listener}: certificate ${c.cert} (${c.server_name}) now valid until ${c.not_after}`,
        values,
      });
    }
  }
  for (const id of [...firing]) {
    if (seen.has(id)) continue;
    firing.delete(id);
    const [listener = '', server_name = ''] = id.split('|');
    out.push({
      kind: 'certificate_expiring',
      status: 'resolved',
      subject: { listener, server_name },
      message: `listener ${listener}: certificate (${server_name}) no longer in use`,
      values: {},
    });
  }
  return out;
}

/** A backend health change as a signal. */
export function backendSignal(
  b: { pool: string; backend: string; address: string },
  healthy: boolean,
  reason: string,
  lastProbe: string | undefined,
): AlertSignal {
  return {
    kind: 'backend_unhealthy',
    status: healthy ? 'resolved' : 'firing',
    subject: { pool: b.pool, backend: b.backend, address: b.address },
    message: healthy
      ? `backend ${b.backend} of pool ${b.pool} (${b.address}) is healthy again (${reason})`
      : `backend ${b.backend} of pool ${b.pool} (${b.address}) is unhealthy (${reason}${lastProbe ? `: ${lastProbe}` : ''})`,
    values: { reason, ...(lastProbe !== undefined ? { last_probe: lastProbe } : {}) },
  };
}

/**
 * The end of a firing `backend_unhealthy` that a reload made moot: the backend is no longer configured, or was
 * replaced by a new one (another address, protocol or TLS settings: `why` `removed`), has another id now
 * (`renamed`) or the rule was switched off (`rule off`).
 */
export function backendGoneSignal(b: { pool: string; backend: string; address: string }, why: 'removed' | 'renamed' | 'rule off'): AlertSignal {
  const reason =
    why === 'rule off'
      ? 'backend_unhealthy alerts switched off by a reload'
      : why === 'removed'
        ? 'removed or replaced by a reload'
        : 'renamed by a reload';
  return {
    kind: 'backend_unhealthy',
    status: 'resolved',
    subject: { pool: b.pool, backend: b.backend, address: b.address },
    message: `backend ${b.backend} of pool ${b.pool} (${b.address}): alert ended, ${reason}`,
    values: { reason },
  };
}

/** The end of a firing `pool_unavailable` that a reload made moot: the pool was removed or the rule switched off. */
export function poolGoneSignal(pool: string, why: 'removed' | 'rule off'): AlertSignal {
  const reason = why === 'removed' ? 'removed by a reload' : 'pool_unavailable alerts switched off by a reload';
  return { kind: 'pool_unavailable', status: 'resolved', subject: { pool }, message: `pool ${pool}: alert ended, ${reason}`, values: { reason } };
}

/**
 * A pool's availability as a signal: firing when none of its `total` backends is `available` (healthy, circuit
 * letting requests through, not ejected), resolved when one is; `healthy` counts health alone.
 */
export function poolSignal(pool: string, available: number, total: number, healthy: number = available): AlertSignal {
  let message: string;
  if (available > 0) message = `pool ${pool} has an available backend again (${available} of ${total})`;
  else if (healthy === 0) message = `pool ${pool} has no healthy backend (0 of ${total})`;
  else message = `pool ${pool} has no available backend (${healthy} of ${total} healthy, but kept out by circuit breakers or outlier detection)`;
  return {
    kind: 'pool_unavailable',
    status: available === 0 ? 'firing' : 'resolved',
    subject: { pool },
    message,
    values: { available_backends: available, healthy_backends: healthy, backends: total },
  };
}

/** A refused reload as a signal (an event). */
export function reloadFailedSignal(config: string, trigger: string, errors: readonly string[], generation: number): AlertSignal {
  return {
    kind: 'reload_failed',
    status: 'firing',
    subject: { config },
    message: `config reload (${trigger}) refused; generation ${generation} keeps running: ${errors[0] ?? 'unknown error'}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}`,
    values: { trigger, generation, errors: errors.slice(0, 20), error_count: errors.length },
  };
}
