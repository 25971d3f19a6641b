/**
 * Sliding windows of a route's finished requests for the route rules: request count, 5xx count and, for the
 * latency rule, the count of requests slower than its threshold (which decides exactly whether the p99 is over
 * it) and a latency histogram (the dashboard's logarithmic buckets, 25% apart: only for the p99 reported), in 10
 * slots of `windowMs / 10`. Pure: time passed in. Adding a request is a few array writes; figures are computed
 * when the rules are evaluated.
 */
import { histogramQuantileMs, LATENCY_BUCKETS, latencyBucket } from '../observability/live-stats.ts';

/** Slots per window: the window slides in steps of a tenth. */
export const WINDOW_SLOTS = 10;

/** What a window holds at one moment. */
export interface WindowFigures {
  /** Requests in the window. */
  requests: number;
  /** Requests answered 5xx. */
  errors: number;
  /** 99th percentile of the total request time in ms (upper bound of its bucket); null without requests. */
  p99_ms: number | null;
  /** Requests that took longer than the latency threshold (0 for a window without one). */
  slow: number;
}

/** One route's window. */
export class RouteWindow {
  private readonly slotMs: number;
  private readonly epochs = new Float64Array(WINDOW_SLOTS).fill(-1);
  private readonly counts = new Uint32Array(WINDOW_SLOTS);
  private readonly errors = new Uint32Array(WINDOW_SLOTS);
  private readonly latency: Uint32Array | undefined;
  private readonly slow = new Uint32Array(WINDOW_SLOTS);

  /**
   * A window of `windowMs`. With `slowOverMs` (the latency rule's threshold, ms) it counts the requests that took
   * longer and keeps the histogram.
   */
  constructor(
    windowMs: number,
    private readonly slowOverMs?: number,
  ) {
    this.slotMs = windowMs / WINDOW_SLOTS;
    if (slowOverMs !== undefined) this.latency = new Uint32Array(WINDOW_SLOTS * LATENCY_BUCKETS);
  }

  /** Counts one finished request at `now` with its status and total time. */
  add(now: number, status: number, durationMs: number): void {
    const epoch = Math.floor(now / this.slotMs);
    const s = epoch % WINDOW_SLOTS;
    if (this.epochs[s] !== epoch) {
      this.epochs[s] = epoch;
      this.counts[s] = 0;
      this.errors[s] = 0;
      this.slow[s] = 0;
      this.latency?.fill(0, s * LATENCY_BUCKETS, (s + 1) * LATENCY_BUCKETS);
    }
    this.counts[s] = (this.counts[s] as number) + 1;
    if (status >= 500 && status <= 599) this.errors[s] = (this.errors[s] as number) + 1;
    if (this.slowOverMs !== undefined && durationMs > this.slowOverMs) this.slow[s] = (this.slow[s] as number) + 1;
    if (this.latency) {
      const i = s * LATENCY_BUCKETS + latencyBucket(durationMs);
      this.latency[i] = (this.latency[i] as number) + 1;
    }
  }

  /** Figures of the window ending at `now`. */
  figures(now: number): WindowFigures {
    const epoch = Math.floor(now / this.slotMs);
    const oldest = epoch - WINDOW_SLOTS + 1;
    let requests = 0;
    let errors = 0;
    let slow = 0;
    const hist = this.latency ? new Float64Array(LATENCY_BUCKETS) : undefined;
    for (let s = 0; s < WINDOW_SLOTS; s++) {
      const e = this.epochs[s] as number;
      if (e < oldest || e > epoch) continue;
      requests += this.counts[s] as number;
      errors += this.errors[s] as number;
      slow += this.slow[s] as number;
      if (hist && this.latency)
        for (let b = 0; b < LATENCY_BUCKETS; b++) hist[b] = (hist[b] as number) + (this.latency[s * LATENCY_BUCKETS + b] as number);
    }
    return { requests, errors, p99_ms: hist && requests > 0 ? histogramQuantileMs(hist, requests, 0.99) : null, slow };
  }
}
