/**
 * Token bucket: pure, time passed in. The bucket holds up to `burst` tokens and refills at `ratePerSecond`;
 * each request takes one. A full bucket lets `burst` requests through at once, then `ratePerSecond` on average.
 */

/** Result of {@link TokenBucket.take}. */
export type TakeResult =
  | {
      /** The request may proceed. */
      allowed: true;
      /** Whole tokens left after this one. */
      remaining: number;
      /** Milliseconds until the bucket is full again. */
      resetMs: number;
    }
  | {
      /** Over the limit. */
      allowed: false;
      /** Milliseconds until one token is available (always > 0). */
      retryAfterMs: number;
      /** Always 0: nothing left. */
      remaining: 0;
      /** Milliseconds until the bucket is full again. */
      resetMs: number;
    };

/** Rounds up to whole ms, ignoring floating-point noise (0.99 tokens at 10/s is 1 ms, not 1.0000000001). */
function ceilMs(ms: number): number {
  return Math.ceil(ms - 1e-6);
}

/** Rate and burst of a bucket. */
export interface TokenBucketPolicy {
  /** Tokens added per second (> 0). */
  ratePerSecond: number;
  /** Bucket size: the most requests allowed at once (>= 1). */
  burst: number;
}

/** One token bucket; starts full. */
export class TokenBucket {
  private tokens: number;
  private stamp: number;

  /** A full bucket at time `now` (monotonic ms). */
  constructor(
    private readonly policy: TokenBucketPolicy,
    now: number,
  ) {
    if (!(policy.ratePerSecond > 0 && Number.isFinite(policy.ratePerSecond))) throw new RangeError(`rate must be > 0, got ${policy.ratePerSecond}`);
    if (!(policy.burst >= 1 && Number.isFinite(policy.burst))) throw new RangeError(`burst must be >= 1, got ${policy.burst}`);
    this.tokens = policy.burst;
    this.stamp = now;
  }

  /** Takes one token at `now`, if there is one. Time going backwards counts as no time passing. */
  take(now: number): TakeResult {
    this.refill(now);
    const perMs = this.policy.ratePerSecond / 1000;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { allowed: true, remaining: Math.floor(this.tokens), resetMs: ceilMs((this.policy.burst - this.tokens) / perMs) };
    }
    return { allowed: false, retryAfterMs: Math.max(1, ceilMs((1 - this.tokens) / perMs)), remaining: 0, resetMs: ceilMs((this.policy.burst - this.tokens) / perMs) };
  }

  /** True when the bucket is full at `now` (an idle key that can be forgotten without changing behaviour). */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.policy.burst;
  }

  private refill(now: number): void {
    if (now > this.stamp) {
      this.tokens = Math.min(this.policy.burst, this.tokens + ((now - this.stamp) * this.policy.ratePerSecond) / 1000);
      this.stamp = now;
    }
  }
}
