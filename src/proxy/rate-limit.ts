/**
 * Applies a route's rate-limit rules to a request and builds the 429 headers: `Retry-After` and the IETF
 * httpapi draft's `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers: a policy item
 * `"name";q=<quota>;w=<window s>`, and `"name";r=<remaining>;t=<seconds until a request is allowed>`).
 */
import type { Config, RateLimitConfig } from '../config/types.ts';
import { clientKey } from '../lib/cidr.ts';
import type { HeaderLookup } from '../lib/request-fields.ts';
import type { RateLimiter, RateLimitRule } from '../resilience/rate-limiter.ts';
import type { TakeResult } from '../resilience/token-bucket.ts';

/** What the rules need from the request. */
export interface RateLimitInput {
  /** Client IP after `trusted_proxies`. */
  clientIp: string;
  /** Request headers. */
  headers: HeaderLookup;
}

const limiterRules = new WeakMap<RateLimitConfig, RateLimitRule>();

function limiterRule(rule: RateLimitConfig): RateLimitRule {
  let r = limiterRules.get(rule);
  if (!r) {
    r = { id: rule.id, ratePerSecond: rule.rate, burst: rule.burst, maxKeys: rule.max_keys, store: rule.store };
    limiterRules.set(rule, r);
  }
  return r;
}

/** The bucket key of `rule` for a request. */
export function rateLimitKey(rule: RateLimitConfig, input: RateLimitInput): string {
  switch (rule.key.kind) {
    case 'client_ip':
      return clientKey(input.clientIp);
    case 'route':
      return '';
    case 'header': {
      const v = input.headers.get(rule.key.name) ?? '';
      // A long value is kept as its length and hash, so a client cannot make each bucket key kilobytes long.
      return v.length <= MAX_KEY_CHARS ? v : `#${v.length}:${Bun.hash(v).toString(36)}`;
    }
  }
}

/** Longest header value used as a bucket key as it is; longer ones are hashed. */
const MAX_KEY_CHARS = 128;

/** The ids of every rate-limit rule of `config` (the rules whose buckets are kept after a reload). */
export function rateLimitRuleIds(config: Config): Set<string> {
  const ids = new Set<string>();
  for (const pool of config.pools) for (const route of pool.routes) for (const r of route.rate_limits ?? []) ids.add(r.id);
  return ids;
}

/** The 429 headers for a refusal by `rule`. */
export function rateLimitHeaders(rule: RateLimitConfig, result: TakeResult & { allowed: false }): Record<string, string> {
  const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
  const window = Math.max(1, Math.ceil(rule.burst / rule.rate));
  return {
    'retry-after': String(seconds),
    'ratelimit-policy': `"${rule.name}";q=${rule.burst};w=${window}`,
    ratelimit: `"${rule.name}";r=0;t=${seconds}`,
  };
}

/**
 * Takes a token under each rule in order; returns the 429 headers of the first rule that refuses, or undefined
 * when every rule allows the request. Tokens taken by earlier rules are not given back.
 */
export async function applyRateLimits(
  limiter: RateLimiter,
  rules: readonly RateLimitConfig[],
  input: RateLimitInput,
  now: number,
): Promise<Record<string, string> | undefined> {
  for (const rule of rules) {
    const taken = limiter.take(limiterRule(rule), rateLimitKey(rule, input), now);
    const result = taken instanceof Promise ? await taken : taken;
    if (!result.allowed) return rateLimitHeaders(rule, result);
  }
  return undefined;
}
