/**
 * Rate limits shared through Redis: every Spooky instance (and every worker) that points at the same server
 * takes from the same buckets. Each bucket is one key holding the generic cell rate algorithm's "theoretical
 * arrival time", which is the token bucket of `src/resilience/token-bucket.ts` written as one timestamp:
 * `burst` requests at once, then `rate` per second. The check and the update are one Lua script, so two
 * instances cannot both take the last token, and time is the Redis server's clock, so the instances' clocks
 * need not agree. A key expires once its bucket would be full again, so idle keys cost Redis nothing.
 *
 * While Redis cannot answer, `failure_mode` decides: `local` uses this process's own buckets, `allow` lets the
 * request through, `deny` refuses it (503).
 */
import type { RedisFailureMode } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import type { RateLimiter, RateLimitRule } from '../resilience/rate-limiter.ts';
import type { TakeResult } from '../resilience/token-bucket.ts';
import { type RedisStore, RedisUnavailable, redisScript } from './store.ts';

/**
 * KEYS[1]: the bucket. ARGV[1]: microseconds per token (> 0), ARGV[2]: burst. Replies
 * `{allowed (1|0), tokens left, µs until a token is free (0 when allowed), µs until the bucket is full}`.
 */
const GCRA = redisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - tolerance - now
if wait > 0 then return {0, 0, wait, tat - now} end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return {1, math.floor(-wait / interval), 0, next_tat - now}
`);

/** Microseconds per token at `ratePerSecond` (at least 1). */
export function intervalMicros(ratePerSecond: number): number {
  return Math.max(1, Math.round(1_000_000 / ratePerSecond));
}

/** A {@link TakeResult} from the script's reply. */
export function takeResultOf(reply: unknown): TakeResult {
  if (!Array.isArray(reply) || reply.length !== 4 || !reply.every((n) => typeof n === 'number'))
    throw new RedisUnavailable('error', `unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`);
  const [allowed, remaining, waitUs, fullUs] = reply as [number, number, number, number];
  const resetMs = Math.ceil(fullUs / 1000);
  if (allowed === 1) return { allowed: true, remaining, resetMs };
  return { allowed: false, retryAfterMs: Math.max(1, Math.ceil(waitUs / 1000)), remaining: 0, resetMs };
}

/** What the limiter needs besides Redis. */
export interface RedisRateLimiterOptions {
  /** Prefix of every key (`redis.key_prefix`). */
  keyPrefix: string;
  /** Behaviour while Redis cannot answer. */
  failureMode: RedisFailureMode;
  /** The buckets of `failure_mode: local`. */
  fallback: RateLimiter;
  /** Where decisions made without Redis are counted, by failure mode; default: the limiter's own. */
  fallbacks?: Record<RedisFailureMode, number>;
}

/** Token buckets kept in Redis. */
export class RedisRateLimiter implements RateLimiter {
  /** Decisions made without Redis, by failure mode (for metrics). */
  readonly fallbacks: Record<RedisFailureMode, number>;

  /** A limiter over `store`. */
  constructor(
    readonly store: RedisStore,
    private readonly opts: RedisRateLimiterOptions,
  ) {
    this.fallbacks = opts.fallbacks ?? { local: 0, allow: 0, deny: 0 };
  }

  /** Takes one token for `key` under `rule`; `now` is used only by the `local` fallback. */
  async take(rule: RateLimitRule, key: string, now: number): Promise<TakeResult> {
    try {
      const reply = await this.store.evalScript(
        GCRA,
        [`${this.opts.keyPrefix}${rule.id}|${key}`],
        [String(intervalMicros(rule.ratePerSecond)), String(rule.burst)],
      );
      return takeResultOf(reply);
    } catch (e) {
      if (!(e instanceof RedisUnavailable)) throw e;
      const mode = this.opts.failureMode;
      this.fallbacks[mode]++;
      if (mode === 'local') return this.opts.fallback.take(rule, key, now);
      if (mode === 'allow') return { allowed: true, remaining: 0, resetMs: 0 };
      throw new SpookyError('rate_limit_unavailable', `the rate-limit store cannot answer (${e.reason}): ${e.message}`);
    }
  }
}
