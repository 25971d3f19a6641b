import { describe, expect, test } from 'bun:test';
import { DEFAULT_RESTART_POLICY, INITIAL_RESTART_STATE, nextRestart, type RestartState } from './restart-policy.ts';

describe('worker restart policy', () => {
  const policy = { baseMs: 100, capMs: 1000, stableMs: 5000 };

  test.each([
    // [quick crashes so far, ran for ms, expected delay, expected quick crashes after]
    [0, 10, 0, 1],
    [1, 10, 100, 2],
    [2, 10, 200, 3],
    [3, 10, 400, 4],
    [4, 10, 800, 5],
    [5, 10, 1000, 6],
    [50, 10, 1000, 51],
    [7, 5000, 0, 1], // it ran long enough: the loop is over
    [7, 60_000, 0, 1],
  ])('after %i quick crashes, a worker up for %i ms waits %i ms', (quick, ranMs, delay, after) => {
    const r = nextRestart({ quickCrashes: quick }, 1000, 1000 + ranMs, policy);
    expect(r.delayMs).toBe(delay);
    expect(r.state.quickCrashes).toBe(after);
  });

  test('a crash loop backs off up to the cap, and a stable run resets it', () => {
    let state: RestartState = INITIAL_RESTART_STATE;
    let now = 0;
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = nextRestart(state, now, now + 50);
      delays.push(r.delayMs);
      state = r.state;
      now += 50 + r.delayMs;
    }
    expect(delays).toEqual([0, 250, 500, 1000, 2000, 4000, 8000, 10_000]);
    expect(nextRestart(state, now, now + DEFAULT_RESTART_POLICY.stableMs).delayMs).toBe(0);
  });
});
