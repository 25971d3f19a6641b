/**
 * When to restart a worker that died: at once after its first crash, then with a doubling delay while it keeps
 * crashing soon after starting (a crash loop), capped; a worker that stayed up for `stableMs` starts afresh.
 * Pure: times are passed in (milliseconds on any monotonic clock).
 */

/** The restart policy's settings (milliseconds). */
export interface RestartPolicy {
  /** Delay before the second restart of a crash loop (the first is immediate). */
  baseMs: number;
  /** Largest delay. */
  capMs: number;
  /** A worker that ran at least this long before dying is restarted at once (the loop count resets). */
  stableMs: number;
}

/** The supervisor's policy: 0, 250 ms, 500 ms, 1 s ... up to 10 s; reset after 10 s up. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = { baseMs: 250, capMs: 10_000, stableMs: 10_000 };

/** Crash-loop state of one worker slot. */
export interface RestartState {
  /** Consecutive quick crashes so far. */
  readonly quickCrashes: number;
}

/** The fresh state of a slot. */
export const INITIAL_RESTART_STATE: RestartState = { quickCrashes: 0 };

/**
 * A worker started at `startedAt` died at `now`: the delay before starting it again and the slot's next state.
 */
export function nextRestart(
  state: RestartState,
  startedAt: number,
  now: number,
  policy: RestartPolicy = DEFAULT_RESTART_POLICY,
): { delayMs: number; state: RestartState } {
  const quick = now - startedAt < policy.stableMs ? state.quickCrashes : 0;
  const delayMs = quick === 0 ? 0 : Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(quick - 1, 30));
  return { delayMs, state: { quickCrashes: quick + 1 } };
}
