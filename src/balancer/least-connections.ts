/**
 * Least connections, weighted (nginx's `least_conn` rule): the usable candidate with the fewest requests in
 * flight relative to its weight, i.e. the smallest inFlight / weight. Under load, in-flight counts settle
 * proportional to weight.
 *
 * Ties are broken at random in proportion to weight, with the injected random source (weighted reservoir
 * sampling: a tied candidate replaces the current choice with probability weight / sum of the tied weights so
 * far). So idle backends (nothing in flight: all tied at 0) share light traffic by weight instead of the
 * heaviest taking every request (nginx rotates among tied backends by weight; the shares are the same); equal
 * backends share evenly. The random source is only called on ties.
 *
 * Slow start: a ramping backend counts with its ramped weight. While any usable backend has a request in
 * flight, it also counts as if it had 1 − ramped/full weight more request in flight: otherwise an idle ramping
 * backend would beat every busy one whatever its weight, and slow start would do nothing at low concurrency
 * (at 2 in flight one that had just rejoined got half the requests). With nothing in flight anywhere there is
 * no virtual load, so light traffic reaches it by the weighted tie-break, in proportion to its ramped weight.
 * The virtual load fades out as the ramp completes.
 */

import type { Random } from '../lib/random.ts';
import { hasDynamicWeights, usable, weightAt, weightOf } from './common.ts';
import type { Candidate, PickContext, Picker, Strategy, StrategyDeps } from './types.ts';

/** Weighted least-connections picker. O(n) per pick; no allocation. */
export class LeastConnectionsPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  private readonly weights: Float64Array;
  private readonly dynamic: boolean;

  /** Builds a picker over `candidates`, breaking ties with `random`; slow-starting candidates count with their weight at the pick. */
  constructor(
    candidates: readonly C[],
    private readonly random: Random,
  ) {
    this.candidates = candidates.slice();
    this.weights = Float64Array.from(this.candidates, weightOf);
    this.dynamic = hasDynamicWeights(this.candidates);
  }

  /** The usable candidate minimising inFlight / weight (ties: at random by weight), or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    const cs = this.candidates;
    const ws = this.weights;
    let best: C | undefined;
    let bestLoad = 0; // inFlight of best
    let bestWeight = 1;
    let tiedWeight = 0; // sum of the weights tied with best, best's included
    const busy = this.dynamic && this.anyInFlight(ctx);
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i] as C;
      if (!usable(c, ctx.exclude)) continue;
      let load = Math.max(0, c.inFlight());
      let w = ws[i] as number;
      if (this.dynamic) {
        const ramped = weightAt(c, ctx.now);
        if (busy && ramped < w) load += 1 - ramped / w;
        w = ramped;
      }
      // Compare load/w with bestLoad/bestWeight by cross-multiplying: exact for integer counts and weights (a
      // virtual load is fractional, but then the ramping backend's ties do not matter).
      const lhs = load * bestWeight;
      const rhs = bestLoad * w;
      if (best === undefined || lhs < rhs) {
        best = c;
        bestLoad = load;
        bestWeight = w;
        tiedWeight = w;
      } else if (lhs === rhs) {
        tiedWeight += w;
        if (this.random() * tiedWeight < w) {
          best = c;
          bestLoad = load;
          bestWeight = w;
        }
      }
    }
    return best;
  }

  /** Whether some usable candidate has a request in flight. */
  private anyInFlight(ctx: PickContext): boolean {
    for (const c of this.candidates) if (c.inFlight() > 0 && usable(c, ctx.exclude)) return true;
    return false;
  }
}

/** The `least-connections` strategy: fewest in-flight requests relative to weight, ties broken at random by weight. */
export const leastConnectionsStrategy: Strategy = {
  name: 'least-connections',
  build<C extends Candidate>(candidates: readonly C[], deps: StrategyDeps): Picker<C> {
    return new LeastConnectionsPicker(candidates, deps.random);
  },
};
