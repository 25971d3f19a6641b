/**
 * Peak-EWMA latency estimate, after linkerd2 / tower's `PeakEwma`: an exponentially weighted moving average
 * whose weights decay with elapsed time (not with sample count), made pessimistic by peak sensitivity: a sample
 * above the current estimate replaces it at once, while lower samples pull it down only gradually. Between
 * samples the estimate decays towards 0, so a backend that has not been used for a while looks cheap again and
 * gets probed.
 *
 * Definition (v: value at the last sample, t0: time of the last sample, tau: decay time constant):
 *
 *     get(t)          = v * exp(-(t - t0) / tau)         (0 before the first sample)
 *     observe(r, t):  w = exp(-(t - t0) / tau), c = get(t)
 *                     v = r                      if r > c   (peak: a slower sample wins at once)
 *                     v = c * w + r * (1 - w)    otherwise  (a faster sample pulls it down, weighted by the gap)
 *                     t0 = t
 *
 * So a sample never moves the estimate away from itself: a lower one lands between r and c, with more weight
 * the longer it has been since the previous sample (about all of it after several tau, almost none for samples
 * close together). A steady latency r reads as r right after each sample.
 *
 * Unlike tower, reading never mutates: `get` is a pure function of the samples and `now`, so the estimate does
 * not depend on how often it is read. The clock is passed in; this module never reads time.
 */

/** Default decay time constant in milliseconds (linkerd2's default). */
export const DEFAULT_EWMA_DECAY_MS = 10_000;

/** A time-decayed, peak-sensitive moving average of latency in milliseconds. */
export class PeakEwma {
  /** Decay time constant in milliseconds: after `tau` ms an old value keeps e^-1 (about 37%) of its weight. */
  readonly tau: number;
  private value = 0;
  private stampMs = 0;
  private sampled = false;

  /** An empty estimate decaying with time constant `tauMs` (default {@link DEFAULT_EWMA_DECAY_MS}). */
  constructor(tauMs: number = DEFAULT_EWMA_DECAY_MS) {
    if (!(Number.isFinite(tauMs) && tauMs > 0)) throw new RangeError(`PeakEwma decay must be a positive number of ms, got ${tauMs}`);
    this.tau = tauMs;
  }

  /** True once a sample was observed. */
  get hasSample(): boolean {
    return this.sampled;
  }

  /**
   * Records a latency sample of `rttMs` taken at `now` (monotonic ms). Negative or non-finite samples are
   * ignored. A `now` earlier than the last sample (samples reported out of order) counts as no time elapsed:
   * the sample can still raise the peak, but gets no decay weight, and the estimate's clock does not go back.
   */
  observe(rttMs: number, now: number): void {
    if (!(Number.isFinite(rttMs) && rttMs >= 0) || Number.isNaN(now)) return;
    if (!this.sampled) {
      this.value = rttMs;
      this.stampMs = now;
      this.sampled = true;
      return;
    }
    const w = this.weight(now);
    const current = this.value * w;
    this.value = rttMs > current ? rttMs : current * w + rttMs * (1 - w);
    if (now > this.stampMs) this.stampMs = now;
  }

  /** The estimate at `now` in milliseconds; 0 when nothing was observed. Pure: reading changes nothing. */
  get(now: number): number {
    if (!this.sampled) return 0;
    return this.value * this.weight(now);
  }

  /** Forgets every sample. */
  reset(): void {
    this.value = 0;
    this.stampMs = 0;
    this.sampled = false;
  }

  /** exp(-elapsed / tau) for the time since the last sample (elapsed clamped at 0). */
  private weight(now: number): number {
    const elapsed = now - this.stampMs;
    return elapsed > 0 ? Math.exp(-elapsed / this.tau) : 1;
  }
}
