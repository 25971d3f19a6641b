/**
 * Rate limiting behind one interface, so a shared store (Redis, `src/redis/rate-limiter.ts`) can stand in for the in-process one.
 * The in-process limiter keeps one token bucket per (rule, key), in a map bounded to `maxKeys` entries per
 * rule: the least recently used key is dropped when a new one arrives at the cap. Dropping a key forgets its
 * spent tokens (the client gets a fresh burst), so the bound trades a little leniency under a flood of distinct
 * keys for memory that cannot grow without limit. Pure: time passed in.
 */
import { lruGet, lruSet } from '../lib/lru.ts';
import { type TakeResult, TokenBucket, type TokenBucketPolicy } from './token-bucket.ts';

/** One rate-limit rule as the limiter sees it. */
export interface RateLimitRule extends TokenBucketPolicy {
  /** Rule id, unique within the limiter. */
  id: string;
  /** Most keys kept for this rule; default: the limiter's `maxKeys`. */
  maxKeys?: number;
  /** Where the rule's buckets live; default `local`. Only a limiter that dispatches by store reads it. */
  store?: 'local' | 'redis';
}

/** Takes tokens for keys under rules. A shared implementation may answer asynchronously. */
export interface RateLimiter {
  /** Takes one token for `key` under `rule` at `now` (monotonic ms). */
  take(rule: RateLimitRule, key: string, now: number): TakeResult | Promise<TakeResult>;
}

/** The in-process limiter: token buckets in a bounded LRU map per rule. */
export class InMemoryRateLimiter implements RateLimiter {
  private readonly rules = new Map<string, Map<string, TokenBucket>>();

  /** A limiter keeping at most `maxKeys` keys per rule (>= 1). */
  constructor(readonly maxKeys: number) {
    if (!(Number.isInteger(maxKeys) && maxKeys >= 1)) throw new RangeError(`maxKeys must be a positive integer, got ${maxKeys}`);
  }

  /** Takes one token for `key` under `rule` at `now`. */
  take(rule: RateLimitRule, key: string, now: number): TakeResult {
    let buckets = this.rules.get(rule.id);
    if (!buckets) {
      buckets = new Map();
      this.rules.set(rule.id, buckets);
    }
    let bucket = lruGet(buckets, key);
    if (!bucket) {
      bucket = new TokenBucket(rule, now);
      lruSet(buckets, key, bucket, rule.maxKeys ?? this.maxKeys);
    }
    return bucket.take(now);
  }

  /** Forgets the buckets of rules that are gone (a reload that changed a rule's rate or burst gives it a new id). */
  retain(ruleIds: ReadonlySet<string>): void {
    for (const id of this.rules.keys()) if (!ruleIds.has(id)) this.rules.delete(id);
  }

  /** Rules with buckets now (for tests). */
  get ruleCount(): number {
    return this.rules.size;
  }

  /** Keys held for `ruleId` now (for tests and /status). */
  size(ruleId: string): number {
    return this.rules.get(ruleId)?.size ?? 0;
  }
}

/**
 * The limiter of the request path: rules with `store: redis` go to the shared limiter while one is configured,
 * every other rule to the in-process one.
 */
export class RateLimitStores implements RateLimiter {
  /** The shared limiter; undefined while no `redis` is configured. */
  shared: RateLimiter | undefined;

  /** Stores over the in-process `local` limiter. */
  constructor(readonly local: InMemoryRateLimiter) {}

  /** Takes one token for `key` under `rule` from the rule's store. */
  take(rule: RateLimitRule, key: string, now: number): TakeResult | Promise<TakeResult> {
    return rule.store === 'redis' && this.shared ? this.shared.take(rule, key, now) : this.local.take(rule, key, now);
  }
}
