/**
 * Retry budget, after linkerd2 / Finagle: over a sliding window, retries may be at most `ratio` of the
 * requests, plus a floor of `minPerSecond` retries per second so a quiet service can still retry. When a
 * pool's backends all fail, retries then add at most `ratio` extra load instead of multiplying it by the
 * attempt count. Pure, time passed in.
 */
import { SlidingCounter } from './window.ts';

/** Budget parameters. */
export interface RetryBudgetPolicy {
  /** Retries allowed per request over the window (0.2: one retry per five requests). */
  ratio: number;
  /** Retries per second always allowed, whatever the request count. */
  minPerSecond: number;
  /** Window length in ms (default 10 000). */
  windowMs?: number;
}

/** A retry budget, usually one per pool. */
export class RetryBudget {
  private readonly requests: SlidingCounter;
  private readonly retries: SlidingCounter;

  /** An empty budget. */
  constructor(private readonly policy: RetryBudgetPolicy) {
    const windowMs = policy.windowMs ?? 10_000;
    this.requests = new SlidingCounter(windowMs);
    this.retries = new SlidingCounter(windowMs);
  }

  /** Records one original request (not a retry) at `now`. */
  request(now: number): void {
    this.requests.add(now);
  }

  /** Retries the budget allows over the window ending at `now`. */
  allowance(now: number): number {
    const floor = (this.policy.minPerSecond * this.requests.windowMs) / 1000;
    return this.policy.ratio * this.requests.sum(now) + floor;
  }

  /** Asks for one retry at `now`: true (and the retry is counted) when the budget allows it. */
  tryRetry(now: number): boolean {
    if (this.retries.sum(now) + 1 > this.allowance(now)) return false;
    this.retries.add(now);
    return true;
  }
}
