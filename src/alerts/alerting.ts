/**
 * The alerts of a running Spooky: takes the hooks (health changes, finished requests, reload results,
 * listener certificates), runs the rules, passes their signals through the {@link AlertGate} and hands what
 * is left to the {@link DeliveryQueue}. Nothing here is awaited by a caller: every hook returns at once.
 *
 * Without an `alerts` section it holds no timers and the request path does not call it at all (the
 * {@link SwitchableObserver} has nothing attached); the route rules are attached only while configured.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { listenerId } from '../config/diff.ts';
import type { AlertsConfig, Config } from '../config/types.ts';
import type { HealthTransition } from '../health/state.ts';
import type { Clock } from '../lib/clock.ts';
import type { Random } from '../lib/random.ts';
import type { RunningListener } from '../listener/listener.ts';
import type { RequestRecord } from '../observability/access-log.ts';
import type { ProxyObserver } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import { SwitchableObserver } from '../observability/switchable-observer.ts';
import type { Generation } from '../runtime/generation.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import { type AlertPayload, type AlertSignal, alertKey, SEVERITY } from './alert.ts';
import { DeliveryQueue, fetchPost, type PostFn } from './delivery.ts';
import { AlertGate } from './gate.ts';
import { AlertMetrics } from './metrics.ts';
import {
  backendGoneSignal,
  backendSignal,
  type CertificateInfo,
  certificateSignals,
  poolGoneSignal,
  poolSignal,
  RouteRule,
  reloadFailedSignal,
} from './rules.ts';

/** One pool of a generation, as the alerts read it. */
type PoolRuntime = NonNullable<ReturnType<Generation['pools']['get']>>;

/** What the alerts need from the process. */
export interface AlertingDeps {
  /** The observer the request path would use without alerts (telemetry). */
  base: ProxyObserver;
  /** Prometheus registry for the alert metrics. */
  registry: Registry;
  /** The current generation. */
  generation(): Generation;
  /** The running traffic listeners (their certificates). */
  listeners(): readonly RunningListener[];
  /** Config file path, for `reload_failed` (`<embedded>` without one). */
  configPath?: string;
  /** Time source. */
  clock: Clock;
  /** Random source (backoff jitter). */
  random: Random;
  /** Logger. */
  log: Logger;
  /** Sends a POST (tests may replace it). Default: fetch. */
  post?: PostFn;
}

/** The listener certificates as the expiry rule sees them. */
export function certificateInfos(listeners: readonly RunningListener[]): CertificateInfo[] {
  return listeners.flatMap((l) =>
    l.certs.list.map((c) => ({ listener: listenerId(l.config), server_name: c.serverName ?? '*', cert: c.certPath, not_after: c.notAfter })),
  );
}

/** Period of the rule evaluation: a tenth of the shortest route window, within 100..1000 ms. */
export function tickMs(cfg: AlertsConfig): number {
  const windows = [cfg.rules.route_error_rate?.window_ms, cfg.rules.route_latency_p99?.window_ms].filter((w): w is number => w !== undefined);
  const shortest = windows.length ? Math.min(...windows) / 10 : 1000;
  return Math.max(100, Math.min(1000, shortest));
}

/** Alert rules, deduplication and delivery of one process. */
export class Alerting {
  /** The request path's observer: the base one, plus the route rules while they are configured. */
  readonly observer: SwitchableObserver;
  private readonly metrics: AlertMetrics;
  private readonly gate = new AlertGate(0);
  private readonly host = hostname();
  private cfg: AlertsConfig | undefined;
  private queue: DeliveryQueue | undefined;
  private queueKey = '';
  private errorRule: RouteRule | undefined;
  private latencyRule: RouteRule | undefined;
  private readonly certFiring = new Set<string>();
  private readonly poolsDown = new Set<string>();
  /** Pools that have had an available backend since start (the tick fires for these whatever their health history). */
  private readonly poolsSeenUp = new Set<string>();
  /** Backends whose `backend_unhealthy` fired and has not been resolved, by alert key. */
  private readonly backendsDown = new Map<string, { subject: { pool: string; backend: string; address: string }; endpoint: Endpoint }>();
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private certTimer: ReturnType<typeof setInterval> | undefined;
  private timerKey = '';

  /** Alerting over `deps`; no alert is raised until {@link Alerting.apply} gets a config with `alerts`. */
  constructor(private readonly deps: AlertingDeps) {
    this.observer = new SwitchableObserver(deps.base);
    this.metrics = new AlertMetrics(deps.registry, () => this.queueLengths());
  }

  /** Takes the alerts config of a generation (at start and after every successful reload) and checks certificates. */
  apply(config: Config): void {
    const cfg = config.alerts;
    this.cfg = cfg;
    this.notePools();
    if (!cfg) {
      // What fires is kept (as in the gate), the route rules included (they stop measuring): when alerts come
      // back, the next apply resolves what ended meanwhile, or takes the rules over.
      this.stopTimers();
      this.observer.attach(undefined);
      this.queue?.close(); // the attempt in progress finishes; nothing more is sent to the old webhooks
      this.queue = undefined;
      this.queueKey = '';
      return;
    }
    this.gate.setMinInterval(cfg.min_interval_ms);
    const qKey = JSON.stringify([cfg.webhooks, cfg.retries, cfg.queue_size]);
    if (qKey !== this.queueKey) {
      this.queueKey = qKey;
      // Webhooks, retries or queue size changed: the old queues stop (their attempt in progress finishes), so
      // alerts still waiting for a removed webhook are not sent to it.
      this.queue?.close();
      this.queue = new DeliveryQueue(cfg, {
        post: this.deps.post ?? fetchPost,
        sleep: (ms) => Bun.sleep(ms),
        random: this.deps.random,
        hooks: {
          attempt: (webhook, result, detail, attempt, p) => {
            this.metrics.attempt(webhook, result);
            if (result !== 'success')
              this.deps.log.info(
                { event: 'alert_delivery_attempt_failed', webhook, alert_id: p.id, kind: p.kind, attempt, result, detail },
                `alert delivery to ${webhook} failed (attempt ${attempt}): ${detail}`,
              );
          },
          done: (webhook, delivered, attempts, detail, p) => {
            this.metrics.delivery(webhook, delivered);
            if (delivered)
              this.deps.log.debug({ event: 'alert_delivered', webhook, alert_id: p.id, kind: p.kind, attempts }, `alert delivered to ${webhook}`);
            else
              this.deps.log.warn(
                { event: 'alert_delivery_failed', webhook, alert_id: p.id, kind: p.kind, key: p.key, attempts, detail },
                `alert ${p.key} not delivered to ${webhook}: ${detail}`,
              );
          },
          dropped: (webhook, p) => {
            this.metrics.drop(webhook);
            this.deps.log.warn(
              { event: 'alert_dropped', webhook, alert_id: p.id, kind: p.kind, key: p.key, queue_size: cfg.queue_size },
              `alert ${p.key} dropped for ${webhook}: its queue is full`,
            );
          },
        },
      });
    }
    this.errorRule = this.rule('route_error_rate', cfg.rules.route_error_rate, this.errorRule);
    this.latencyRule = this.rule('route_latency_p99', cfg.rules.route_latency_p99, this.latencyRule);
    this.resolveAfterReload(cfg);
    this.observer.attach(this.errorRule || this.latencyRule ? this : undefined);
    const tKey = `${tickMs(cfg)}|${cfg.rules.certificate_expiring?.check_interval_ms ?? 0}`;
    if (tKey !== this.timerKey) {
      this.stopTimers();
      this.timerKey = tKey;
      this.tickTimer = setInterval(() => this.tick(), tickMs(cfg));
      this.tickTimer.unref();
      const cert = cfg.rules.certificate_expiring;
      if (cert) {
        this.certTimer = setInterval(() => this.checkCertificates(), cert.check_interval_ms);
        this.certTimer.unref();
      }
    }
    this.checkCertificates();
  }

  /**
   * The route rule of `kind` for `cfg`: `old` itself when unchanged; a new one that keeps `old`'s windows and
   * firing routes when only thresholds changed. Routes that fire under a rule switched off, or whose window
   * changed (its measurements cannot carry over), are resolved.
   */
  private rule(kind: RouteRule['kind'], cfg: RouteRule['cfg'] | undefined, old: RouteRule | undefined): RouteRule | undefined {
    if (!cfg) {
      if (old) for (const s of old.resolveAll('rule switched off by a reload')) this.emit(s);
      return undefined;
    }
    if (old && JSON.stringify(old.cfg) === JSON.stringify(cfg)) return old;
    const next = new RouteRule(kind, cfg);
    if (old && !next.adopt(old)) {
      const why = old.cfg.window_ms !== cfg.window_ms ? 'its window changed by a reload' : 'its threshold_ms changed by a reload';
      for (const s of old.resolveAll(why)) this.emit(s);
    }
    return next;
  }

  /**
   * After a (re)load: resolves `backend_unhealthy` and `pool_unavailable` alerts that fire for a backend or pool
   * the config no longer has, under a rule that was switched off, or for one that is fine now (a changed
   * `health_check` can make a backend available without a health transition). A backend renamed by the reload
   * (same pool and address, so the same health state) that is still down fires again under its new name.
   */
  private resolveAfterReload(cfg: AlertsConfig): void {
    const gen = this.deps.generation();
    const now = this.deps.clock.now();
    for (const [key, { subject, endpoint }] of [...this.backendsDown]) {
      const member = gen.pools.get(subject.pool)?.members.find((m) => m.endpoint === endpoint);
      const renamed = member !== undefined && member.id !== subject.backend;
      let signal: AlertSignal | undefined;
      if (!cfg.rules.backend_unhealthy) signal = backendGoneSignal(subject, 'rule off');
      else if (!member) signal = backendGoneSignal(subject, 'removed');
      else if (renamed) signal = backendGoneSignal(subject, 'renamed');
      else if (endpoint.health.healthy(now)) signal = backendSignal(subject, true, 'after a reload', undefined);
      if (!signal) continue;
      this.backendsDown.delete(key);
      this.emit(signal);
      if (renamed && member && cfg.rules.backend_unhealthy && !endpoint.health.healthy(now)) {
        const newSubject = { ...subject, backend: member.id };
        const again = backendSignal(newSubject, false, 'still down after a rename by a reload', endpoint.health.lastProbe?.detail);
        this.backendsDown.set(alertKey(again), { subject: newSubject, endpoint });
        this.emit(again);
      }
    }
    for (const name of [...this.poolsDown]) {
      const pool = gen.pools.get(name);
      if (pool && cfg.rules.pool_unavailable) {
        this.checkPool(pool, now);
        continue;
      }
      this.poolsDown.delete(name);
      this.emit(poolGoneSignal(name, pool ? 'rule off' : 'removed'));
    }
  }

  /**
   * Keeps {@link poolsSeenUp} current at every (re)load, alerts on or off: pools the generation no longer has are
   * forgotten (one added again under the name is new), pools with an available backend now are remembered.
   */
  private notePools(): void {
    const pools = this.deps.generation().pools;
    for (const name of [...this.poolsSeenUp]) if (!pools.has(name)) this.poolsSeenUp.delete(name);
    for (const pool of pools.values()) if (pool.members.some((m) => m.endpoint.canServe())) this.poolsSeenUp.add(pool.name);
  }

  /**
   * Fires `pool_unavailable` when no backend of `pool` can take a request (unhealthy, its circuit open or
   * ejected by outlier detection), and resolves it when one can again; only on a change. The evaluation tick
   * (`fromTick`) does not fire for a pool that has never had an available backend and whose backends are all
   * down on health without any of them ever having changed state: backends that start `initial: unhealthy`
   * raise nothing at every start (their first transition decides). Anything else the tick sees (circuits,
   * ejections, a reload that left the pool without a healthy backend, alerts switched on while it was down)
   * fires.
   */
  private checkPool(pool: PoolRuntime, now: number, fromTick = false): void {
    let available = 0;
    let healthy = 0;
    for (const m of pool.members) {
      if (m.endpoint.health.healthy(now)) healthy++;
      if (m.endpoint.canServe()) available++;
    }
    const down = available === 0;
    if (!down) this.poolsSeenUp.add(pool.name);
    if (down === this.poolsDown.has(pool.name)) return;
    if (down && fromTick && healthy === 0 && !this.poolsSeenUp.has(pool.name) && pool.members.every((m) => m.endpoint.health.changedAt === 0)) return;
    if (down) this.poolsDown.add(pool.name);
    else this.poolsDown.delete(pool.name);
    this.emit(poolSignal(pool.name, available, pool.members.length, healthy));
  }

  /** Request path: a finished request (only called while a route rule is configured). */
  requestEnd(rec: RequestRecord): void {
    const route = rec.route;
    if (route === undefined) return;
    const now = this.deps.clock.now();
    this.errorRule?.record(route, rec.pool ?? '', now, rec.status, rec.duration_ms);
    this.latencyRule?.record(route, rec.pool ?? '', now, rec.status, rec.duration_ms);
  }

  /** Health hook: a backend became healthy or unhealthy; also re-checks its pool. */
  healthChanged(endpoint: Endpoint, t: HealthTransition): void {
    const pool = this.deps.generation().pools.get(endpoint.pool);
    if (!pool?.members.some((m) => m.endpoint === endpoint)) return; // a backend the running config no longer has
    if (t.healthy && endpoint.canServe()) this.poolsSeenUp.add(pool.name); // also while alerts are off
    const rules = this.cfg?.rules;
    if (!rules) return;
    if (rules.backend_unhealthy) {
      const member = pool.members.find((m) => m.endpoint === endpoint);
      const subject = { pool: pool.name, backend: member?.id ?? endpoint.id, address: endpoint.url.host };
      const signal = backendSignal(subject, t.healthy, t.reason, endpoint.health.lastProbe?.detail);
      if (t.healthy) this.backendsDown.delete(alertKey(signal));
      else this.backendsDown.set(alertKey(signal), { subject, endpoint });
      this.emit(signal);
    }
    if (rules.pool_unavailable) this.checkPool(pool, this.deps.clock.now());
  }

  /** Reload hook: a reload was refused. */
  reloadFailed(trigger: string, errors: readonly string[], generation: number): void {
    if (!this.cfg?.rules.reload_failed) return;
    this.emit(reloadFailedSignal(this.deps.configPath ?? '<embedded>', trigger, errors, generation));
  }

  /** Checks the listener certificates against the expiry rule (at start, on reload and periodically). */
  checkCertificates(): void {
    const rule = this.cfg?.rules.certificate_expiring;
    if (!rule) return;
    for (const s of certificateSignals(certificateInfos(this.deps.listeners()), this.deps.clock.wallNow(), rule.days, this.certFiring)) this.emit(s);
  }

  /**
   * Evaluates the route rules, checks every pool's availability (circuits and ejections open and end without a
   * health transition) and releases held notifications whose interval is over.
   */
  tick(): void {
    const now = this.deps.clock.now();
    for (const rule of [this.errorRule, this.latencyRule]) if (rule) for (const s of rule.evaluate(now)) this.emit(s);
    if (this.cfg?.rules.pool_unavailable) for (const pool of this.deps.generation().pools.values()) this.checkPool(pool, now, true);
    for (const s of this.gate.due(now)) this.send(s);
  }

  /** Stops the timers and the deliveries (shutdown). */
  stop(): void {
    this.stopTimers();
    this.queue?.close();
  }

  private stopTimers(): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.certTimer) clearInterval(this.certTimer);
    this.tickTimer = undefined;
    this.certTimer = undefined;
    this.timerKey = '';
  }

  private emit(signal: AlertSignal): void {
    signal.at = this.deps.clock.wallNow();
    const d = this.gate.offer(signal, this.deps.clock.now());
    if (d.action === 'send') this.send(signal);
    else if (d.action === 'suppress') {
      this.metrics.suppress(signal.kind, d.reason);
      this.deps.log.debug(
        { event: 'alert_suppressed', kind: signal.kind, status: signal.status, key: alertKey(signal), reason: d.reason },
        `alert suppressed (${d.reason})`,
      );
    } else
      this.deps.log.debug(
        { event: 'alert_held', kind: signal.kind, status: signal.status, key: alertKey(signal) },
        'alert held until the minimum interval is over',
      );
  }

  private send(signal: AlertSignal): void {
    const payload: AlertPayload = {
      version: 1,
      id: randomUUID(),
      key: alertKey(signal),
      kind: signal.kind,
      status: signal.status,
      severity: SEVERITY[signal.kind],
      subject: signal.subject,
      message: signal.message,
      values: signal.values,
      time: new Date(signal.at ?? this.deps.clock.wallNow()).toISOString(),
      instance: this.cfg?.instance ?? this.host,
      host: this.host,
      pid: process.pid,
    };
    this.metrics.raised(payload.kind, payload.status);
    const webhooks = this.queue?.enqueue(payload) ?? 0;
    const level = payload.status === 'firing' ? 'warn' : 'info';
    this.deps.log[level](
      {
        event: 'alert',
        alert_id: payload.id,
        kind: payload.kind,
        status: payload.status,
        severity: payload.severity,
        key: payload.key,
        subject: payload.subject,
        values: payload.values,
        webhooks,
      },
      payload.message,
    );
  }

  private *queueLengths(): Generator<[string, number]> {
    for (const w of this.queue?.webhooks ?? []) yield [w.cfg.name, w.length];
  }
}
