/**
 * Prometheus metrics (prom-client), fed by the request-path events of {@link ProxyObserver} and by health,
 * probe and reload hooks; everything else (backend health, in-flight per backend, config generation,
 * certificate expiry) is read from the current generation when `/metrics` is scraped.
 *
 * Hot path. prom-client hashes the label values on every `inc`/`observe` (about 0.7 µs each here), so the
 * request counters are not prom-client calls: each (route, pool, backend) gets one {@link RequestSeries},
 * found with two map lookups, whose plain counters (indexed by method, status class and protocol) are added
 * up per request and copied into the prom-client counters only when `/metrics` is scraped (their `collect`).
 * The two latency histograms work the same way: each series keeps its own bucket counts ({@link BucketCounts}),
 * and a {@link SeriesHistogram} renders them in prom-client's histogram format when `/metrics` is scraped (a
 * prom-client `observe` validates and hashes the labels on every call: about 4% of the proxy's CPU when measured).
 *
 * Cardinality: labels come from the config (route, pool, backend), from fixed lists (method, status class,
 * protocol, error code) or, for custom metrics, from values capped per label (overflow becomes `other`).
 * No path and no client address is ever a label.
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Counter, collectDefaultMetrics, Gauge, Histogram, type MetricObjectWithValues, type MetricValue, Registry } from 'prom-client';
import type { Config, PoolMetricsConfig } from '../config/types.ts';
import { type ErrorCode, STATUS_BY_CODE } from '../errors.ts';
import type { HealthTransition } from '../health/state.ts';
import type { Clock } from '../lib/clock.ts';
import { BREAKER_STATE_CODE } from '../resilience/breaker.ts';
import type { Generation } from '../runtime/generation.ts';
import type { Endpoint, PoolMember, ProbeObservation } from '../upstream/endpoint.ts';
import type { RequestRecord } from './access-log.ts';
import type { AttemptFailure, AttemptRecord, ProxyObserver } from './events.ts';

/** Values of the `method` label: these methods as they are, every other method as `OTHER`. */
export const METHOD_LABELS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'] as const;
/** Values of the `status_class` label. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
/** Values of the `protocol` label (client protocol). */
export const PROTOCOL_LABELS = ['h3', 'h2', 'h1.1'] as const;

/**
 * Whether each error code is counted by `spooky_rejections_total`: requests Spooky answered itself without a
 * backend response (client errors, no route, limits, no healthy backend). A record, so a new code cannot be
 * added without deciding here (two were once missed in a plain list).
 */
const COUNTED_AS_REJECTION: Readonly<Record<ErrorCode, boolean>> = {
  bad_request: true,
  client_timeout: true,
  no_route: true,
  misdirected_request: true,
  body_too_large: true,
  headers_too_large: true,
  rate_limited: true,
  rate_limit_unavailable: true,
  forbidden: true,
  unauthorized: true,
  uri_too_long: true,
  method_not_allowed: true,
  overloaded: true,
  too_many_concurrent: true,
  no_healthy_backend: true,
  queue_full: true,
  queue_timeout: true,
  upstream_connect_failed: false,
  upstream_reset: false,
  upstream_protocol_error: false,
  upstream_timeout: false,
  client_aborted: false,
  config_invalid: false,
  internal: false,
};

/** Error codes counted by `spooky_rejections_total`, plus `draining` (the refusal during a shutdown, not a SpookyError). */
export const REJECTION_CODES: ReadonlySet<string> = new Set([
  ...(Object.keys(COUNTED_AS_REJECTION) as ErrorCode[]).filter((c) => COUNTED_AS_REJECTION[c]),
  'draining',
]);

/** Buckets (seconds) of the request and upstream latency histograms: 1 ms .. 60 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Buckets (seconds) of the health-check duration histogram. */
export const PROBE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Label value of `server_name` for a listener's default certificate (the one served when no SNI name matches). */
export const DEFAULT_CERT_LABEL = '*';

const NM = METHOD_LABELS.length;
const NS = STATUS_CLASSES.length;
const NP = PROTOCOL_LABELS.length;

/** Index of a method in {@link METHOD_LABELS}. */
export function methodIndex(method: string): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'PATCH':
      return 4;
    case 'DELETE':
      return 5;
    case 'OPTIONS':
      return 6;
    default:
      return 7;
  }
}

/** Index of a status in {@link STATUS_CLASSES}. */
export function statusIndex(status: number): number {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c - 1 : 5;
}

function protocolIndex(p: string): number {
  return p === 'h3' ? 0 : p === 'h2' ? 1 : 2;
}

type RouteLabels = { route: string; pool: string; backend: string };
type BackendLabels = { pool: string; backend: string };

/** Observations of one histogram series: per-bucket (not cumulative) counts for {@link LATENCY_BUCKETS}, sum and count. */
class BucketCounts {
  /** `counts[i]`: observations in (LATENCY_BUCKETS[i-1], LATENCY_BUCKETS[i]]; the last slot is above every bound. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(value: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && value > (LATENCY_BUCKETS[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

/** Counters of one (route, pool, backend). */
class RequestSeries {
  readonly counts = new Float64Array(NM * NS * NP);
  bytesIn = 0;
  bytesOut = 0;
  readonly duration = new BucketCounts();
  constructor(readonly labels: RouteLabels) {}
}

/** Counters of one backend's upstream attempts. */
class UpstreamSeries {
  attempts = 0;
  retries = 0;
  readonly errors = new Map<string, number>();
  readonly duration = new BucketCounts();
  constructor(readonly labels: BackendLabels) {}
}

/** One exported sample of a histogram, in the shape prom-client's registry renders. */
interface HistogramSample {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
}

/**
 * A prom-client histogram whose data are {@link BucketCounts} kept by Spooky (its `observe` is never called):
 * `/metrics` renders them with the same names, labels and `le` bounds a prom-client histogram would.
 */
class SeriesHistogram<L extends string> extends Histogram<L> {
  private readonly exportName: string;
  private readonly exportHelp: string;

  constructor(
    config: { name: string; help: string; labelNames: L[]; registers: Registry[] },
    private readonly series: () => Iterable<{ labels: Record<L, string>; duration: BucketCounts }>,
  ) {
    super({ ...config, buckets: LATENCY_BUCKETS });
    this.exportName = config.name;
    this.exportHelp = config.help;
  }

  /** The samples with the series labels apart (`sharedLabels`), as the registry's text rendering reads them. */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: HistogramSample[] }> {
    const values: HistogramSample[] = [];
    const bucket = `${this.exportName}_bucket`;
    for (const s of this.series()) {
      const d = s.duration;
      let acc = 0;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        acc += d.counts[i] as number;
        values.push({ labels: { le: LATENCY_BUCKETS[i] as number }, sharedLabels: s.labels, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: d.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: s.labels, value: d.sum, metricName: `${this.exportName}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: d.count, metricName: `${this.exportName}_count` });
    }
    return { name: this.exportName, help: this.exportHelp, type: 'histogram', aggregator: 'sum', values };
  }

  /** The samples with all labels in `labels` (prom-client's JSON form). */
  override async get(): ReturnType<Histogram<L>['get']> {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map((v) => ({ value: v.value, metricName: v.metricName, labels: { ...v.labels, ...v.sharedLabels } })),
    } as unknown as Awaited<ReturnType<Histogram<L>['get']>>;
  }
}

/** Custom-metric state of one pool. */
interface CustomPool {
  /** Its config, as JSON (state is kept across reloads that leave it unchanged). */
  readonly key: string;
  readonly cfg: PoolMetricsConfig;
  /** Distinct values seen, per label (same order as `cfg.labels`). */
  readonly seen: Set<string>[];
  /** Label objects per (route, status class, values). */
  readonly series: Map<string, { withStatus: Record<string, string>; plain: Record<string, string> }>;
  /** Distinct combinations of the labels' values seen (capped at `cfg.max_values` x labels, so series stay bounded). */
  readonly combos: Set<string>;
}

/** Reload attempts by result (the runtime keeps the counts). */
export interface ReloadCounts {
  /** Reloads that swapped in a new generation. */
  ok: number;
  /** Reloads that were refused. */
  error: number;
}

/** What the metrics read from the running process. */
export interface MetricsSource {
  /** The current generation. */
  generation(): Generation;
  /** Time source (for health state). */
  readonly clock: Clock;
  /** Reload attempts by result since start. */
  reloadCounts(): ReloadCounts;
}

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /** Also export prom-client's process metrics (CPU, RSS, event-loop lag, ...) with the `spooky_` prefix. Default `true`. */
  processMetrics?: boolean;
}

/** Certificate expiry of every listener certificate of a config: `[listener, server_name, expiry seconds]`. */
export function certificateExpiries(config: Config): [string, string, number][] {
  const out: [string, string, number][] = [];
  for (const l of config.listeners) {
    const listener = l.address.includes(':') ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`;
    for (const c of l.certificates) {
      try {
        const x = new X509Certificate(readFileSync(c.cert));
        const t = Date.parse(x.validTo);
        if (Number.isFinite(t)) out.push([listener, c.server_name ?? DEFAULT_CERT_LABEL, t / 1000]);
      } catch {
        // unreadable now: the listener reported it when it loaded the file; no sample
      }
    }
  }
  return out;
}

/** The Prometheus registry of one Spooky process and the observer that feeds it. */
export class Metrics implements ProxyObserver {
  /** The registry `/metrics` renders. */
  readonly registry = new Registry();
  private inFlight = 0;
  private readonly requestSeries = new Map<string, Map<string, RequestSeries>>();
  private readonly upstreamSeries = new Map<string, Map<string, UpstreamSeries>>();
  private readonly rejections = new Map<string, { reason: string; status: string; n: number }>();
  private readonly healthChecks: Counter<'pool' | 'backend' | 'result'>;
  private readonly probeDuration: Histogram<'pool' | 'backend'>;
  private readonly transitions: Counter<'pool' | 'backend' | 'to'>;
  private certConfig: Config | undefined;
  private certs: [string, string, number][] = [];
  private customGeneration: Generation | undefined;
  private customNames: string[] = [];
  private customPools = new Map<string, CustomPool>();
  private customRequests: Counter<string> | undefined;
  private customDuration: Histogram<string> | undefined;

  constructor(
    private readonly source: MetricsSource,
    opts: MetricsOptions = {},
  ) {
    const registers = [this.registry];
    const self = this;
    /** A gauge by pool and backend of the current config, read from each member when scraped. */
    const backendGauge = (name: string, help: string, value: (m: PoolMember, now: number) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['pool', 'backend'],
        registers,
        collect() {
          this.reset();
          const now = self.source.clock.now();
          for (const pool of self.source.generation().pools.values()) {
            for (const m of pool.members) this.set({ pool: pool.name, backend: m.id }, value(m, now));
          }
        },
      });
    };
    /** A counter copied from Spooky's own per-series numbers when scraped (prom-client re-hashes labels per update). */
    const seriesCounter = <S extends { labels: Record<string, string> }>(
      name: string,
      help: string,
      labelNames: string[],
      series: () => Iterable<S>,
      value: (s: S) => number,
    ): void => {
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const x of series()) this.inc(x.labels, value(x));
        },
      });
    };
    new Counter({
      name: 'spooky_requests_total',
      help: 'Requests finished, by route, pool, backend (of the last attempt), method, status class and client protocol. Route, pool and backend are empty when the request ended before that was known.',
      labelNames: ['route', 'pool', 'backend', 'method', 'status_class', 'protocol'],
      registers,
      collect() {
        this.reset();
        for (const s of self.allRequestSeries()) {
          for (let i = 0; i < s.counts.length; i++) {
            const n = s.counts[i] as number;
            if (n === 0) continue;
            const p = i % NP;
            const st = Math.floor(i / NP) % NS;
            const m = Math.floor(i / (NP * NS));
            this.inc({ ...s.labels, method: METHOD_LABELS[m], status_class: STATUS_CLASSES[st], protocol: PROTOCOL_LABELS[p] }, n);
          }
        }
      },
    });
    seriesCounter(
      'spooky_request_body_bytes_total',
      'Request body bytes received from clients (forwarded to backends), by route, pool and backend.',
      ['route', 'pool', 'backend'],
      () => self.allRequestSeries(),
      (x) => x.bytesIn,
    );
    seriesCounter(
      'spooky_response_body_bytes_total',
      'Response body bytes sent to clients, by route, pool and backend.',
      ['route', 'pool', 'backend'],
      () => self.allRequestSeries(),
      (x) => x.bytesOut,
    );
    new SeriesHistogram(
      {
        name: 'spooky_request_duration_seconds',
        help: 'Seconds from the arrival of a request to the end of its response body (total time), by route, pool and backend.',
        labelNames: ['route', 'pool', 'backend'],
        registers,
      },
      () => self.allRequestSeries(),
    );
    new SeriesHistogram(
      {
        name: 'spooky_upstream_duration_seconds',
        help: 'Seconds from sending a request to a backend to its response headers (or the failure), per attempt, by pool and backend.',
        labelNames: ['pool', 'backend'],
        registers,
      },
      () => self.allUpstreamSeries(),
    );
    new Gauge({
      name: 'spooky_requests_in_flight',
      help: 'Requests received and not finished yet (response body still streaming included).',
      registers,
      collect() {
        this.set(self.inFlight);
      },
    });
    seriesCounter(
      'spooky_upstream_attempts_total',
      'Requests sent to a backend (attempts), by pool and backend.',
      ['pool', 'backend'],
      () => self.allUpstreamSeries(),
      (x) => x.attempts,
    );
    seriesCounter(
      'spooky_upstream_retries_total',
      'Attempts after the first of a request (another backend tried after a failure or a retried status, see retries), by pool and the backend retried to.',
      ['pool', 'backend'],
      () => self.allUpstreamSeries(),
      (x) => x.retries,
    );
    new Counter({
      name: 'spooky_upstream_errors_total',
      help: 'Failed attempts by pool, backend and error code (upstream_connect_failed, upstream_reset, upstream_protocol_error, upstream_timeout, client_aborted, ...).',
      labelNames: ['pool', 'backend', 'code'],
      registers,
      collect() {
        this.reset();
        for (const s of self.allUpstreamSeries()) for (const [code, n] of s.errors) this.inc({ ...s.labels, code }, n);
      },
    });
    new Counter({
      name: 'spooky_rejections_total',
      help: 'Requests Spooky answered itself without a backend response, by reason (error code) and status: bad_request 400, client_timeout 408, no_route 404, body_too_large 413, misdirected_request 421, unauthorized 401, forbidden 403, rate_limited 429, too_many_concurrent 429, uri_too_long 414, method_not_allowed 405, headers_too_large 431, no_healthy_backend 503, overloaded 503, queue_full 503, queue_timeout 503, rate_limit_unavailable 503, draining 503.',
      labelNames: ['reason', 'status'],
      registers,
      collect() {
        this.reset();
        for (const r of self.rejections.values()) this.inc({ reason: r.reason, status: r.status }, r.n);
      },
    });
    backendGauge(
      'spooky_backend_healthy',
      '1 when the backend may take traffic (healthy), 0 when it is out, by pool and backend (current config).',
      (m, now) => (m.endpoint.health.healthy(now) ? 1 : 0),
    );
    backendGauge(
      'spooky_backend_circuit_state',
      'Circuit breaker state by pool and backend: 0 closed (also when the pool has no breaker), 1 open, 2 half-open (current config).',
      (m, now) => BREAKER_STATE_CODE[m.endpoint.circuit(now)],
    );
    backendGauge(
      'spooky_backend_ejected',
      '1 while outlier detection keeps the backend out, else 0, by pool and backend (current config).',
      (m, now) => (m.endpoint.ejected(now) ? 1 : 0),
    );
    backendGauge(
      'spooky_backend_in_flight_requests',
      'Requests in flight to the backend now, by pool and backend (current config).',
      (m) => m.endpoint.inFlight,
    );
    backendGauge(
      'spooky_backend_queued_requests',
      'Requests waiting for a slot of the backend (max_concurrent_requests) now, by pool and backend (current config).',
      (m) => m.endpoint.gate?.limiter.queued ?? 0,
    );
    backendGauge(
      'spooky_backend_effective_weight',
      'Balancing weight of the backend now: its weight, less while slow start ramps it up, by pool and backend (current config).',
      (m, now) => (m.currentWeight ? m.currentWeight(now) : m.weight),
    );
    this.healthChecks = new Counter({
      name: 'spooky_health_checks_total',
      help: 'Active health probes by pool, backend and result (success, failure).',
      labelNames: ['pool', 'backend', 'result'],
      registers,
    });
    this.probeDuration = new Histogram({
      name: 'spooky_health_check_duration_seconds',
      help: 'Seconds an active health probe took (to its answer, failure or timeout), by pool and backend.',
      labelNames: ['pool', 'backend'],
      buckets: PROBE_BUCKETS,
      registers,
    });
    this.transitions = new Counter({
      name: 'spooky_backend_health_transitions_total',
      help: 'Backend health changes by pool, backend and new state (healthy, unhealthy).',
      labelNames: ['pool', 'backend', 'to'],
      registers,
    });
    new Counter({
      name: 'spooky_config_reloads_total',
      help: 'Config reload attempts by result: success (a new generation runs) or failure (refused; the running config stayed).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        const c = self.source.reloadCounts();
        this.inc({ result: 'success' }, c.ok);
        this.inc({ result: 'failure' }, c.error);
      },
    });
    new Gauge({
      name: 'spooky_config_generation',
      help: 'Number of the running config generation (1 at start, +1 per successful reload).',
      registers,
      collect() {
        this.set(self.source.generation().id);
      },
    });
    new Gauge({
      name: 'spooky_config_loaded_timestamp_seconds',
      help: 'Unix time the running config generation was loaded.',
      registers,
      collect() {
        this.set(self.source.generation().loadedAt / 1000);
      },
    });
    new Gauge({
      name: 'spooky_certificate_expiry_timestamp_seconds',
      help: `Unix time the listener certificate expires (notAfter), by listener (configured address:port) and server_name (SNI name, ${DEFAULT_CERT_LABEL} for the default certificate).`,
      labelNames: ['listener', 'server_name'],
      registers,
      collect() {
        const config = self.source.generation().config;
        if (config !== self.certConfig) {
          self.certConfig = config;
          self.certs = certificateExpiries(config);
        }
        this.reset();
        for (const [listener, server_name, t] of self.certs) this.set({ listener, server_name }, t);
      },
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'spooky_' });
  }

  /** A request arrived. */
  requestStart(): void {
    this.inFlight++;
  }

  /** An upstream attempt ended. */
  attemptEnd(a: AttemptRecord): void {
    let byBackend = this.upstreamSeries.get(a.pool);
    if (!byBackend) this.upstreamSeries.set(a.pool, (byBackend = new Map()));
    let s = byBackend.get(a.backend);
    if (!s) byBackend.set(a.backend, (s = new UpstreamSeries({ pool: a.pool, backend: a.backend })));
    s.attempts++;
    if (a.attempt > 1) s.retries++;
    if (a.error !== undefined) s.errors.set(a.error, (s.errors.get(a.error) ?? 0) + 1);
    s.duration.observe(a.upstream_ms / 1000);
  }

  /** An attempt counted at its response headers failed afterwards: its error is counted, not another attempt. */
  attemptFailedAfterHead(f: AttemptFailure): void {
    const s = this.upstreamSeries.get(f.pool)?.get(f.backend);
    if (s) s.errors.set(f.error, (s.errors.get(f.error) ?? 0) + 1);
  }

  /** A request finished. */
  requestEnd(rec: RequestRecord): void {
    this.inFlight--;
    const route = rec.route ?? '';
    const backend = rec.backend ?? '';
    let byBackend = this.requestSeries.get(route);
    if (!byBackend) this.requestSeries.set(route, (byBackend = new Map()));
    let s = byBackend.get(backend);
    if (!s) byBackend.set(backend, (s = new RequestSeries({ route, pool: rec.pool ?? '', backend })));
    const st = statusIndex(rec.status);
    const i = (methodIndex(rec.method) * NS + st) * NP + protocolIndex(rec.protocol);
    s.counts[i] = (s.counts[i] as number) + 1;
    s.bytesIn += rec.bytes_in;
    s.bytesOut += rec.bytes_out;
    s.duration.observe(rec.duration_ms / 1000);
    // Only answers Spooky made itself: a backend's answer cut short (a client that read it too slowly is logged
    // as client_timeout with the backend's status) is no rejection.
    if (rec.error !== undefined && REJECTION_CODES.has(rec.error) && rec.status === (STATUS_BY_CODE[rec.error as ErrorCode] ?? rec.status)) {
      const key = `${rec.error} ${rec.status}`;
      const r = this.rejections.get(key);
      if (r) r.n++;
      else this.rejections.set(key, { reason: rec.error, status: String(rec.status), n: 1 });
    }
    if (rec.labels !== undefined && rec.pool !== undefined) this.custom(rec, rec.pool, rec.labels, STATUS_CLASSES[st] as string);
  }

  /** A backend's health changed. */
  healthChanged(endpoint: Endpoint, t: HealthTransition): void {
    this.transitions.inc({ pool: endpoint.pool, backend: endpoint.id, to: t.healthy ? 'healthy' : 'unhealthy' });
  }

  /** An active probe finished. */
  probed(endpoint: Endpoint, p: ProbeObservation): void {
    const labels = { pool: endpoint.pool, backend: endpoint.id };
    this.healthChecks.inc({ ...labels, result: p.ok ? 'success' : 'failure' });
    this.probeDuration.observe(labels, p.duration_ms / 1000);
  }

  /** Requests in flight (started and not finished). */
  requestsInFlight(): number {
    return this.inFlight;
  }

  /** The metrics as prom-client JSON (for a supervisor that aggregates workers with `AggregatorRegistry`). */
  async json(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    this.syncCustom();
    return this.registry.getMetricsAsJSON();
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.syncCustom();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private *allRequestSeries(): Generator<RequestSeries> {
    for (const m of this.requestSeries.values()) yield* m.values();
  }

  private *allUpstreamSeries(): Generator<UpstreamSeries> {
    for (const m of this.upstreamSeries.values()) yield* m.values();
  }

  /**
   * Brings the custom metrics in line with the current generation: the label names of the two custom metrics
   * are the union over all pools (a pool leaves the others' labels empty), so a reload that changes that set
   * replaces both metrics (their series start again); a pool whose `metrics` config did not change keeps its
   * distinct-value sets.
   */
  private syncCustom(): void {
    const gen = this.source.generation();
    if (gen === this.customGeneration) return;
    this.customGeneration = gen;
    const pools = new Map<string, CustomPool>();
    const names = new Set<string>();
    for (const pool of gen.pools.values()) {
      const cfg = pool.config.metrics;
      if (!cfg) continue;
      for (const l of cfg.labels) names.add(l.name);
      const key = JSON.stringify(cfg);
      const old = this.customPools.get(pool.name);
      pools.set(pool.name, old && old.key === key ? old : { key, cfg, seen: cfg.labels.map(() => new Set()), series: new Map(), combos: new Set() });
    }
    this.customPools = pools;
    const sorted = [...names].sort();
    if (sorted.join(',') === this.customNames.join(',') && (this.customRequests || sorted.length === 0)) return;
    this.customNames = sorted;
    for (const p of pools.values()) p.series.clear();
    this.registry.removeSingleMetric('spooky_custom_requests_total');
    this.registry.removeSingleMetric('spooky_custom_request_duration_seconds');
    this.customRequests = undefined;
    this.customDuration = undefined;
    if (sorted.length === 0) return;
    this.customRequests = new Counter({
      name: 'spooky_custom_requests_total',
      help: 'Requests of pools with custom metrics, by pool, route, status class and the configured labels (values capped per label; overflow is `other`).',
      labelNames: ['pool', 'route', 'status_class', ...sorted],
      registers: [this.registry],
    });
    this.customDuration = new Histogram({
      name: 'spooky_custom_request_duration_seconds',
      help: 'Total request seconds of pools with custom metrics, by pool, route and the configured labels (values capped per label; overflow is `other`).',
      labelNames: ['pool', 'route', ...sorted],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
  }

  private custom(rec: RequestRecord, poolName: string, values: Record<string, string>, statusClass: string): void {
    this.syncCustom();
    const pool = this.customPools.get(poolName);
    if (!pool || !this.customRequests || !this.customDuration) return;
    const route = rec.route ?? '';
    const labels = pool.cfg.labels;
    let capped: string[] = [];
    let combo = '';
    for (let i = 0; i < labels.length; i++) {
      let v = values[(labels[i] as { name: string }).name] ?? '';
      const seen = pool.seen[i] as Set<string>;
      if (!seen.has(v)) {
        if (seen.size >= pool.cfg.max_values) v = 'other';
        else seen.add(v);
      }
      capped.push(v);
      combo += `\u0001${v}`;
    }
    // Per-label caps alone would allow max_values^labels combinations: the combinations are capped too (at
    // max_values x labels), and a new one past the cap counts as `other` in every label.
    if (!pool.combos.has(combo)) {
      if (pool.combos.size >= pool.cfg.max_values * labels.length) {
        capped = labels.map(() => 'other');
        combo = capped.map((v) => `\u0001${v}`).join('');
      } else pool.combos.add(combo);
    }
    const key = `${route}\u0001${statusClass}${combo}`;
    let entry = pool.series.get(key);
    if (!entry) {
      const plain: Record<string, string> = { pool: poolName, route };
      for (const n of this.customNames) plain[n] = '';
      labels.forEach((l, i) => {
        plain[l.name] = capped[i] as string;
      });
      entry = { plain, withStatus: { ...plain, status_class: statusClass } };
      pool.series.set(key, entry);
    }
    this.customRequests.inc(entry.withStatus);
    this.customDuration.observe(entry.plain, rec.duration_ms / 1000);
  }
}
