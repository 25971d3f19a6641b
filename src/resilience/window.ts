/**
 * A sliding-window counter made of fixed time slots: pure, time passed in. Used by the retry budget and the
 * circuit breaker's failure rate. A sum covers the current slot and the `slots - 1` before it, so the window
 * slides in steps of `windowMs / slots` (10% by default) rather than continuously.
 */

/** Counts of events over the last `windowMs` milliseconds, in `slots` slots. */
export class SlidingCounter {
  /** Length of the window in milliseconds. */
  readonly windowMs: number;
  private readonly slotMs: number;
  private readonly counts: Float64Array;
  /** Slot index (floor(now / slotMs)) that each cell currently holds. */
  private readonly epochs: Float64Array;

  /** A window of `windowMs` ms cut into `slots` slots (default 10). */
  constructor(windowMs: number, slots = 10) {
    if (!(Number.isFinite(windowMs) && windowMs > 0)) throw new RangeError(`window must be a positive number of ms, got ${windowMs}`);
    if (!(Number.isInteger(slots) && slots > 0)) throw new RangeError(`slots must be a positive integer, got ${slots}`);
    this.windowMs = windowMs;
    this.slotMs = windowMs / slots;
    this.counts = new Float64Array(slots);
    this.epochs = new Float64Array(slots).fill(-1);
  }

  /** Adds `n` (default 1) at time `now`. */
  add(now: number, n = 1): void {
    const epoch = Math.floor(now / this.slotMs);
    const i = epoch % this.counts.length;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.counts[i] = 0;
    }
    this.counts[i] = (this.counts[i] ?? 0) + n;
  }

  /** The total over the window ending at `now`. */
  sum(now: number): number {
    const epoch = Math.floor(now / this.slotMs);
    const oldest = epoch - this.counts.length + 1;
    let total = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const e = this.epochs[i] ?? -1;
      if (e >= oldest && e <= epoch) total += this.counts[i] ?? 0;
    }
    return total;
  }

  /** Forgets everything. */
  reset(): void {
    this.counts.fill(0);
    this.epochs.fill(-1);
  }
}
