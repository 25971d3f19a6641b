/**
 * Keeps the request path's rate limiter in step with the config's `redis` section: a store and a shared
 * limiter for the current settings (kept across reloads that leave them alone, replaced when they change,
 * dropped when the section goes), their state in logs, `/status` and metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RedisConfig, RedisFailureMode } from '../config/types.ts';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../observability/logger.ts';
import { InMemoryRateLimiter, RateLimitStores } from '../resilience/rate-limiter.ts';
import { RedisRateLimiter } from './rate-limiter.ts';
import { bunConnection, connectionUrl, type RedisConnection, type RedisFailureCounts, RedisStore } from './store.ts';

/** What the controller needs. */
export interface SharedRateLimitsOptions {
  /** Monotonic clock of the stores' breakers. */
  clock: Clock;
  /** Where `redis_down` / `redis_up` records go. */
  log: Logger;
  /** Makes clients (tests pass their own); default Bun's `RedisClient`. */
  connection?: (url: string, timeoutMs: number) => () => RedisConnection;
}

interface Current {
  /** The settings and the password they were made with (a rotated password file counts as a change). */
  key: string;
  config: RedisConfig;
  store: RedisStore;
}

/** The rate limiter of the request path and the Redis store behind its shared rules. */
export class SharedRateLimits {
  /** In-process buckets: `store: local` rules, and `store: redis` rules under `failure_mode: local`. */
  readonly local = new InMemoryRateLimiter(100_000);
  /** The limiter the request path uses. */
  readonly limiter = new RateLimitStores(this.local);
  private current: Current | undefined;
  private readonly failures: RedisFailureCounts = { down: 0, timeout: 0, error: 0 };
  private readonly fallbacks: Record<RedisFailureMode, number> = { local: 0, allow: 0, deny: 0 };

  /** A controller with no Redis configured yet. */
  constructor(private readonly opts: SharedRateLimitsOptions) {}

  /**
   * Prepares the settings of a new config and returns the function that makes them current. Throws (and changes
   * nothing) when the password file cannot be read. A store for new settings is made (and starts connecting)
   * when that function is called; the old one is closed once calls in flight on it are over.
   */
  prepare(config: RedisConfig | undefined): () => void {
    if (config === undefined) return () => this.swap(undefined);
    const url = connectionUrl(config);
    const key = JSON.stringify([url, config.timeout_ms, config.retry_ms, config.key_prefix, config.failure_mode]);
    if (key === this.current?.key) return () => {};
    return () => this.swap({ key, config, store: this.makeStore(url, config) });
  }

  private makeStore(url: string, config: RedisConfig): RedisStore {
    return new RedisStore({
      timeoutMs: config.timeout_ms,
      retryMs: config.retry_ms,
      clock: this.opts.clock,
      connection: (this.opts.connection ?? bunConnection)(url, config.timeout_ms),
      failures: this.failures,
      onStateChange: (up, why) => {
        if (up) this.opts.log.info({ event: 'redis_up', url: config.url }, 'Redis answers again; shared rate limits apply');
        else
          this.opts.log.warn(
            { event: 'redis_down', url: config.url, reason: why, failure_mode: config.failure_mode, retry_ms: config.retry_ms },
            `Redis cannot answer (${why}); rate limits with store: redis use failure_mode ${config.failure_mode}`,
          );
      },
    });
  }

  private swap(next: Current | undefined): void {
    const old = this.current;
    this.current = next;
    this.limiter.shared = next
      ? new RedisRateLimiter(next.store, {
          keyPrefix: next.config.key_prefix,
          failureMode: next.config.failure_mode,
          fallback: this.local,
          fallbacks: this.fallbacks,
        })
      : undefined;
    // Calls in flight on the old store finish (or time out) first.
    if (old) setTimeout(() => old.store.close(), old.config.timeout_ms + 1000).unref();
  }

  /** The state for `/status`: undefined when no `redis` is configured. */
  status(): { url: string; up: boolean; failure_mode: RedisFailureMode } | undefined {
    const c = this.current;
    return c ? { url: c.config.url, up: c.store.up, failure_mode: c.config.failure_mode } : undefined;
  }

  /** Closes the store (shutdown). */
  close(): void {
    this.current?.store.close();
    this.current = undefined;
    this.limiter.shared = undefined;
  }

  /** Registers `spooky_redis_up`, `spooky_redis_failures_total` and `spooky_rate_limit_fallbacks_total`. */
  registerMetrics(registry: Registry): void {
    const registers = [registry];
    const self = this;
    new Gauge({
      name: 'spooky_redis_up',
      help: '1 while the Redis of `redis` answers, 0 while it is down, by its URL; absent without a `redis` section.',
      labelNames: ['url'],
      registers,
      collect() {
        this.reset();
        const s = self.status();
        if (s) this.set({ url: s.url }, s.up ? 1 : 0);
      },
    });
    new Counter({
      name: 'spooky_redis_failures_total',
      help: 'Redis calls of shared rate limits that got no answer, by reason (timeout, error, down: not tried while Redis is down).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const reason of ['timeout', 'error', 'down'] as const) this.inc({ reason }, self.failures[reason]);
      },
    });
    new Counter({
      name: 'spooky_rate_limit_fallbacks_total',
      help: 'Decisions of `store: redis` rate limits made without Redis, by redis.failure_mode (local, allow, deny).',
      labelNames: ['mode'],
      registers,
      collect() {
        this.reset();
        for (const mode of ['local', 'allow', 'deny'] as const) this.inc({ mode }, self.fallbacks[mode]);
      },
    });
  }
}
