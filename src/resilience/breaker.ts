/**
 * Circuit breaker of one backend: pure, time passed in.
 *
 * - closed: every request passes. It opens on `consecutiveFailures` failures in a row, or when, over the last
 *   `windowMs`, at least `minRequests` requests were seen and the share that failed reached `failureRate`.
 * - open: nothing passes for `openMs`; then it is half-open.
 * - half-open: at most `halfOpenMax` requests (probes) at once. A successful probe closes the circuit (counts
 *   reset); a failed one opens it again for another `openMs`.
 *
 * The caller asks {@link CircuitBreaker.allows} when picking a backend, calls {@link CircuitBreaker.onStart}
 * when a request is sent to it, and {@link CircuitBreaker.onResult} once when the request ends.
 */
import { SlidingCounter } from './window.ts';

/** Breaker parameters. */
export interface BreakerPolicy {
  /** Consecutive failures that open the circuit; 0 turns this rule off. */
  consecutiveFailures: number;
  /** Failure share in (0, 1] over the window that opens the circuit; 0 turns this rule off. */
  failureRate: number;
  /** Window for the failure rate (ms). */
  windowMs: number;
  /** Fewest requests in the window before the failure rate counts. */
  minRequests: number;
  /** How long the circuit stays open before probing (ms). */
  openMs: number;
  /** Concurrent probe requests allowed while half-open. */
  halfOpenMax: number;
}

/** Breaker state names, as shown in /status and metrics. */
export type BreakerStateName = 'closed' | 'open' | 'half_open';

/** Numeric code of each state for the metrics gauge. */
export const BREAKER_STATE_CODE: Readonly<Record<BreakerStateName, number>> = { closed: 0, open: 1, half_open: 2 };

/** One backend's circuit breaker. */
export class CircuitBreaker {
  private openedAt = Number.NEGATIVE_INFINITY;
  private isOpen = false;
  private consecutive = 0;
  private probes = 0;
  private readonly total: SlidingCounter;
  private readonly failed: SlidingCounter;
  /** Times the circuit opened since creation. */
  opens = 0;

  /** A closed breaker. */
  constructor(private readonly policy: BreakerPolicy) {
    this.total = new SlidingCounter(policy.windowMs);
    this.failed = new SlidingCounter(policy.windowMs);
  }

  /** Monotonic ms at which the last opening ends (the circuit turns half-open); -Infinity if it never opened. */
  openEndsAt(): number {
    return this.openedAt + this.policy.openMs;
  }

  /** The state at `now`. */
  state(now: number): BreakerStateName {
    if (!this.isOpen) return 'closed';
    return now - this.openedAt >= this.policy.openMs ? 'half_open' : 'open';
  }

  /** True when a request may be sent at `now`. Reading changes nothing. */
  allows(now: number): boolean {
    const s = this.state(now);
    if (s === 'closed') return true;
    if (s === 'open') return false;
    return this.probes < this.policy.halfOpenMax;
  }

  /** A request was sent at `now`; while half-open it takes a probe slot. */
  onStart(now: number): void {
    if (this.state(now) === 'half_open') this.probes++;
  }

  /**
   * A request ended without a verdict (the client went away): frees its probe slot, changes nothing else.
   * `startedAt` (default `now`) tells a probe from a request sent before the circuit opened (see {@link onResult}).
   */
  onCancel(now: number, startedAt = now): void {
    if (this.state(now) === 'half_open' && this.isProbe(startedAt) && this.probes > 0) this.probes--;
  }

  /** True when a request sent at `startedAt` was sent in the current half-open period (so it took a probe slot). */
  private isProbe(startedAt: number): boolean {
    return startedAt >= this.openedAt + this.policy.openMs;
  }

  /**
   * A request ended at `now`; `failed` per the caller's classification (connect error, reset, timeout, 5xx
   * gateway status), for a request sent at `startedAt` (default `now`). While half-open only the probes decide:
   * a request sent before the circuit opened that ends now neither closes nor reopens it. Returns the new state
   * when this result changed it.
   */
  onResult(failed: boolean, now: number, startedAt = now): BreakerStateName | undefined {
    const s = this.state(now);
    if (s === 'half_open') {
      if (!this.isProbe(startedAt)) return undefined;
      if (this.probes > 0) this.probes--;
      if (failed) return this.open(now);
      this.close();
      return 'closed';
    }
    if (s === 'open') return undefined; // a request that started before the circuit opened
    this.total.add(now);
    if (!failed) {
      this.consecutive = 0;
      return undefined;
    }
    this.failed.add(now);
    this.consecutive++;
    const p = this.policy;
    if (p.consecutiveFailures > 0 && this.consecutive >= p.consecutiveFailures) return this.open(now);
    if (p.failureRate > 0) {
      const n = this.total.sum(now);
      if (n >= p.minRequests && n > 0 && this.failed.sum(now) / n >= p.failureRate) return this.open(now);
    }
    return undefined;
  }

  private open(now: number): BreakerStateName {
    this.isOpen = true;
    this.openedAt = now;
    this.probes = 0;
    this.opens++;
    return 'open';
  }

  private close(): void {
    this.isOpen = false;
    this.consecutive = 0;
    this.probes = 0;
    this.total.reset();
    this.failed.reset();
  }
}
