/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): the delay
 * before retry number `n` (0 for the first retry) is uniform in [0, min(cap, base * 2^n)). Pure: the random
 * source is passed in.
 */
import type { Random } from '../lib/random.ts';

/** Base and cap of the backoff, in milliseconds. */
export interface BackoffPolicy {
  /** Upper bound of the first retry's delay (ms). */
  baseMs: number;
  /** The largest upper bound any retry's delay can have (ms). */
  capMs: number;
  /** Full jitter (default): a random delay below the bound. `false`: the bound itself. */
  jitter?: boolean;
}

/** The delay in ms before retry `retry` (0-based), drawn with `random`. 0 when base is 0. */
export function backoffDelay(retry: number, policy: BackoffPolicy, random: Random): number {
  if (policy.baseMs <= 0) return 0;
  const exp = Math.min(retry, 52); // 2^52 keeps the product finite and exact
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, exp));
  return policy.jitter === false ? ceiling : Math.floor(random() * ceiling);
}
