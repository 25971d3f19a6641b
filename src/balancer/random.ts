/**
 * Weighted random: each available, non-excluded candidate is chosen with probability proportional to its
 * weight. Also the fallback of the hash strategies when a request has no hash key.
 */

import type { Random } from '../lib/random.ts';
import { cumulativeWeights, hasDynamicWeights, searchCumulative, usable, weightAt, weightOf } from './common.ts';
import type { Candidate, PickContext, Picker, Strategy, StrategyDeps } from './types.ts';

/**
 * Weighted random picker.
 *
 * Fast path, O(log n): draw a point over the weights of the whole list and binary-search it; if that candidate
 * is usable, return it. Otherwise, O(n): draw again over the weights of the usable candidates only. The result
 * is exactly proportional to weight among the usable ones: a usable candidate c with weight w, among usable
 * weight U of total T, is chosen with w/T + (T-U)/T * w/U = w/U.
 *
 * Slow start: when some candidate's weight varies over time, every pick takes the O(n) path with the weights
 * at the pick.
 */
export class WeightedRandomPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  private readonly cum: Float64Array;
  private readonly total: number;
  private readonly dynamic: boolean;

  /** Builds a picker over `candidates` drawing from `random`. */
  constructor(
    candidates: readonly C[],
    private readonly random: Random,
  ) {
    this.candidates = candidates.slice();
    this.cum = cumulativeWeights(this.candidates);
    this.total = this.cum.length > 0 ? (this.cum[this.cum.length - 1] as number) : 0;
    this.dynamic = hasDynamicWeights(this.candidates);
  }

  /** A usable candidate chosen with probability proportional to weight, or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    const cs = this.candidates;
    const n = cs.length;
    if (n === 0) return undefined;
    if (this.dynamic) return this.pickAmongUsable(ctx.exclude, ctx.now);
    const first = cs[searchCumulative(this.cum, this.random() * this.total)] as C;
    if (usable(first, ctx.exclude)) return first;
    return this.pickAmongUsable(ctx.exclude, ctx.now);
  }

  /** The slow path: a fresh draw over the usable candidates' weights (at `now`). */
  private pickAmongUsable(exclude: ReadonlySet<string> | undefined, now: number): C | undefined {
    const cs = this.candidates;
    const w = this.dynamic ? (c: C) => weightAt(c, now) : weightOf;
    let sum = 0;
    for (const c of cs) if (usable(c, exclude)) sum += w(c);
    if (sum === 0) return undefined;
    let point = this.random() * sum;
    let last: C | undefined;
    for (const c of cs) {
      // Availability may flip between the two passes; re-check so an unusable candidate is never returned.
      if (!usable(c, exclude)) continue;
      last = c;
      point -= w(c);
      if (point < 0) return c;
    }
    return last; // rounding, or a candidate dropped out between the passes
  }
}

/** The `random` strategy: weighted random over available, non-excluded candidates. */
export const randomStrategy: Strategy = {
  name: 'random',
  build<C extends Candidate>(candidates: readonly C[], deps: StrategyDeps): Picker<C> {
    return new WeightedRandomPicker(candidates, deps.random);
  },
};
