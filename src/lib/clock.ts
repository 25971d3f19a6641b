/** Time source. Code that needs the time takes a Clock so tests can drive time by hand. */
export interface Clock {
  /** Monotonic milliseconds (fractional), for durations and deadlines. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for timestamps in logs. */
  wallNow(): number;
}

/** The real clock: `performance.now()` and `Date.now()`. */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  private t: number;
  private wall: number;
  constructor(start = 0, wallStart = 1_700_000_000_000) {
    this.t = start;
    this.wall = wallStart;
  }
  /** Milliseconds since the clock was made, moved only by {@link advance}. */
  now(): number {
    return this.t;
  }
  /** The wall-clock time it was made at, plus what {@link advance} added (ms since the epoch). */
  wallNow(): number {
    return this.wall + this.t;
  }
  /** Moves time forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Largest delay `setTimeout` takes as given (a larger one fires at once): 2^31 − 1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
