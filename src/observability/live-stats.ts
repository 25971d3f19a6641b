/**
 * In-process sliding-window statistics for the dashboard (`/stats` on the admin listener): per pool and
 * backend, requests per second, error rate and p50/p99 latency for each of the last {@link WINDOW_SECONDS}
 * complete seconds, plus recent health transitions and reloads.
 *
 * Per request: one clock read, two map lookups and three array increments. Each (pool, backend) keeps a ring
 * of one-second slots; each slot has a request count, an error count (status 5xx) and a latency histogram
 * with logarithmic buckets ({@link LATENCY_BUCKET_FACTOR} apart, so a percentile is exact to within 12%).
 */
import type { Clock } from '../lib/clock.ts';
import type { Generation } from '../runtime/generation.ts';
import type { RequestRecord } from './access-log.ts';
import type { AttemptFailure, AttemptRecord, ProxyObserver } from './events.ts';

/** Seconds of history in every series. */
export const WINDOW_SECONDS = 60;
/** Seconds the `current` figures are averaged over. */
export const CURRENT_SECONDS = 5;
/** Upper bound (ms) of the first latency bucket. */
export const LATENCY_BUCKET_BASE_MS = 0.1;
/** Ratio between the upper bounds of neighbouring latency buckets. */
export const LATENCY_BUCKET_FACTOR = 1.25;
/** Number of latency buckets (0.1 ms .. about 127 s; slower requests count in the last). */
export const LATENCY_BUCKETS = 64;
/** Recent events kept. */
export const MAX_EVENTS = 50;

const SLOTS = WINDOW_SECONDS + 1;
const LOG_FACTOR = Math.log(LATENCY_BUCKET_FACTOR);

/** Latency bucket of a duration in milliseconds. */
export function latencyBucket(ms: number): number {
  if (!(ms > LATENCY_BUCKET_BASE_MS)) return 0;
  const b = Math.ceil(Math.log(ms / LATENCY_BUCKET_BASE_MS) / LOG_FACTOR - 1e-9);
  return b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1;
}

/** Upper bound (ms) of a latency bucket: what a percentile falling into it reports. */
export function bucketUpperMs(b: number): number {
  return LATENCY_BUCKET_BASE_MS * LATENCY_BUCKET_FACTOR ** b;
}

/** One-second slots of one (pool, backend). */
class Window {
  readonly second = new Float64Array(SLOTS).fill(-1);
  readonly count = new Uint32Array(SLOTS);
  readonly errors = new Uint32Array(SLOTS);
  readonly latency = new Uint32Array(SLOTS * LATENCY_BUCKETS);

  add(second: number, ms: number, error: boolean): void {
    const s = second % SLOTS;
    if (this.second[s] !== second) {
      this.second[s] = second;
      this.count[s] = 0;
      this.errors[s] = 0;
      this.latency.fill(0, s * LATENCY_BUCKETS, (s + 1) * LATENCY_BUCKETS);
    }
    this.count[s] = (this.count[s] as number) + 1;
    if (error) this.errors[s] = (this.errors[s] as number) + 1;
    const i = s * LATENCY_BUCKETS + latencyBucket(ms);
    this.latency[i] = (this.latency[i] as number) + 1;
  }
}

/** Aggregated figures of a set of windows over some seconds. */
export interface Figures {
  /** Requests per second. */
  rps: number;
  /** Share of requests answered with a 5xx status (0..1); null without requests. */
  error_rate: number | null;
  /** Median latency in ms (bucket upper bound); null without requests. */
  p50_ms: number | null;
  /** 99th percentile latency in ms (bucket upper bound); null without requests. */
  p99_ms: number | null;
}

/** Per-second history: index 0 is the oldest complete second, the last index the newest. */
export interface Series {
  /** Requests per second. */
  rps: number[];
  /** Share of 5xx responses, null in seconds without requests. */
  error_rate: (number | null)[];
  /** Median latency in ms, null in seconds without requests. */
  p50_ms: (number | null)[];
  /** 99th percentile latency in ms, null in seconds without requests. */
  p99_ms: (number | null)[];
}

/** A dashboard event: a health transition or a reload. */
export type StatsEvent =
  | { time: string; kind: 'health'; pool: string; backend: string; healthy: boolean; reason: string; detail?: string }
  | { time: string; kind: 'reload'; result: 'success' | 'failure'; generation: number; trigger: string; errors?: number };

/** A record of the runtime's audit trail (reloads and shutdowns); only reloads become dashboard events. */
export interface ReloadInfo {
  /** When it ended (ISO 8601). */
  time: string;
  /** `reload` (others are ignored). */
  action: string;
  /** What started it. */
  trigger: string;
  /** `ok` or `error`. */
  result: string;
  /** Generation running afterwards. */
  generation: number;
  /** Errors of a refused reload. */
  errors?: readonly string[];
}

/** The `/stats` document. */
export interface StatsSnapshot {
  /** Wall time of the snapshot (ISO 8601). */
  time: string;
  /** Wall time (ms since epoch) of the end of the newest second in the series. */
  series_end_ms: number;
  /** Seconds in each series. */
  window_s: number;
  /** Seconds the `current` figures cover. */
  current_s: number;
  /** Running config generation and its load time. */
  generation: { id: number; loaded_at: string };
  /** Requests received and not finished. */
  in_flight: number;
  /** Every request (also those without a route or backend). */
  total: { current: Figures; series: Series };
  /** Pools of the current config, in config order. */
  pools: {
    name: string;
    strategy: string;
    healthy_backends: number;
    current: Figures;
    series: Series;
    backends: {
      id: string;
      address: string;
      healthy: boolean;
      in_flight: number;
      ewma_ms: number;
      last_probe: string | null;
      current: Figures;
      series: Series;
    }[];
  }[];
  /** Recent health transitions and reloads, newest first. */
  events: StatsEvent[];
}

/** Collects the sliding windows; {@link snapshot} computes the `/stats` document. */
export class LiveStats implements ProxyObserver {
  private readonly windows = new Map<string, Map<string, Window>>();
  private readonly events: StatsEvent[] = [];

  /** Empty windows; `clock` dates every request. */
  constructor(private readonly clock: Clock) {}

  /** A request arrived (nothing to do: in-flight comes from the metrics). */
  requestStart(): void {}

  /** Attempts are not charted. */
  attemptEnd(_a: AttemptRecord): void {}

  /** Not shown on the dashboard. */
  attemptFailedAfterHead(_f: AttemptFailure): void {}

  /** A request finished: counts it in the current second of its (pool, backend). */
  requestEnd(rec: RequestRecord): void {
    const pool = rec.pool ?? '';
    const backend = rec.backend ?? '';
    let byBackend = this.windows.get(pool);
    if (!byBackend) this.windows.set(pool, (byBackend = new Map()));
    let w = byBackend.get(backend);
    if (!w) byBackend.set(backend, (w = new Window()));
    w.add(Math.floor(this.clock.now() / 1000), rec.duration_ms, rec.status >= 500);
  }

  /** Records a health transition (newest first, at most {@link MAX_EVENTS}). */
  event(e: StatsEvent): void {
    this.events.unshift(e);
    if (this.events.length > MAX_EVENTS) this.events.length = MAX_EVENTS;
  }

  /** The `/stats` document for the current generation; `audit` adds the reloads to the events. */
  snapshot(gen: Generation, inFlight: number, audit: readonly ReloadInfo[] = []): StatsSnapshot {
    const now = this.clock.now();
    const wall = this.clock.wallNow();
    const newest = Math.floor(now / 1000) - 1;
    const seriesEnd = wall - (now - (newest + 1) * 1000);
    const all = [...this.windows.values()].flatMap((m) => [...m.values()]);
    const pools: StatsSnapshot['pools'] = [];
    for (const pool of gen.pools.values()) {
      const byBackend = this.windows.get(pool.name);
      let healthy = 0;
      const backends = pool.members.map((m) => {
        const up = m.endpoint.health.healthy(now);
        if (up) healthy++;
        const w = byBackend?.get(m.id);
        const ws = w ? [w] : [];
        return {
          id: m.id,
          address: m.endpoint.url.host,
          healthy: up,
          in_flight: m.endpoint.inFlight,
          ewma_ms: Math.round(m.latency(now) * 1000) / 1000,
          last_probe: m.endpoint.health.lastProbe?.detail ?? null,
          current: figures(ws, newest, CURRENT_SECONDS),
          series: series(ws, newest),
        };
      });
      const ws = byBackend ? [...byBackend.values()] : [];
      pools.push({
        name: pool.name,
        strategy: pool.config.load_balancing.type,
        healthy_backends: healthy,
        current: figures(ws, newest, CURRENT_SECONDS),
        series: series(ws, newest),
        backends,
      });
    }
    return {
      time: new Date(wall).toISOString(),
      series_end_ms: Math.round(seriesEnd),
      window_s: WINDOW_SECONDS,
      current_s: CURRENT_SECONDS,
      generation: { id: gen.id, loaded_at: new Date(gen.loadedAt).toISOString() },
      in_flight: inFlight,
      total: { current: figures(all, newest, CURRENT_SECONDS), series: series(all, newest) },
      pools,
      events: mergeEvents(this.events, audit),
    };
  }
}

/** Health events and reload records, newest first, at most {@link MAX_EVENTS}. */
function mergeEvents(health: readonly StatsEvent[], audit: readonly ReloadInfo[]): StatsEvent[] {
  const reloads: StatsEvent[] = [];
  for (let i = audit.length - 1; i >= 0 && reloads.length < MAX_EVENTS; i--) {
    const r = audit[i] as ReloadInfo;
    if (r.action !== 'reload') continue;
    reloads.push({
      time: r.time,
      kind: 'reload',
      result: r.result === 'ok' ? 'success' : 'failure',
      generation: r.generation,
      trigger: r.trigger,
      ...(r.errors?.length ? { errors: r.errors.length } : {}),
    });
  }
  return [...health, ...reloads].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0)).slice(0, MAX_EVENTS);
}

/** Sums the given seconds of the given windows: requests, errors and the latency histogram. */
function gather(ws: readonly Window[], from: number, to: number, hist: Float64Array): { n: number; errors: number } {
  hist.fill(0);
  let n = 0;
  let errors = 0;
  for (const w of ws) {
    for (let sec = from; sec <= to; sec++) {
      if (sec < 0) continue;
      const s = sec % SLOTS;
      if (w.second[s] !== sec) continue;
      n += w.count[s] as number;
      errors += w.errors[s] as number;
      const base = s * LATENCY_BUCKETS;
      for (let b = 0; b < LATENCY_BUCKETS; b++) hist[b] = (hist[b] as number) + (w.latency[base + b] as number);
    }
  }
  return { n, errors };
}

/**
 * The `q` quantile (0 to 1) of a latency histogram (LATENCY_BUCKETS counts) holding `n` values: the upper bound
 * in ms of the bucket it falls into, rounded to 3 decimals.
 */
export function histogramQuantileMs(hist: Float64Array, n: number, q: number): number {
  const rank = Math.ceil(q * n);
  let seen = 0;
  for (let b = 0; b < LATENCY_BUCKETS; b++) {
    seen += hist[b] as number;
    if (seen >= rank) return Math.round(bucketUpperMs(b) * 1000) / 1000;
  }
  return Math.round(bucketUpperMs(LATENCY_BUCKETS - 1) * 1000) / 1000;
}

function figures(ws: readonly Window[], newest: number, seconds: number): Figures {
  const hist = new Float64Array(LATENCY_BUCKETS);
  const { n, errors } = gather(ws, newest - seconds + 1, newest, hist);
  if (n === 0) return { rps: 0, error_rate: null, p50_ms: null, p99_ms: null };
  return { rps: n / seconds, error_rate: errors / n, p50_ms: histogramQuantileMs(hist, n, 0.5), p99_ms: histogramQuantileMs(hist, n, 0.99) };
}

function series(ws: readonly Window[], newest: number): Series {
  const out: Series = { rps: [], error_rate: [], p50_ms: [], p99_ms: [] };
  const hist = new Float64Array(LATENCY_BUCKETS);
  for (let sec = newest - WINDOW_SECONDS + 1; sec <= newest; sec++) {
    const { n, errors } = gather(ws, sec, sec, hist);
    out.rps.push(n);
    out.error_rate.push(n ? errors / n : null);
    out.p50_ms.push(n ? histogramQuantileMs(hist, n, 0.5) : null);
    out.p99_ms.push(n ? histogramQuantileMs(hist, n, 0.99) : null);
  }
  return out;
}
