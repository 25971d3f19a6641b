/**
 * Least connections, weighted: the usable candidate with the fewest requests in flight relative to its weight,
 * i.e. the smallest (inFlight + 1) / weight. The "+ 1" counts the request being placed, so with nothing in
 * flight the heaviest backend goes first and, under load, in-flight counts settle proportional to weight.
 *
 * Ties are broken uniformly at random among the tied candidates with the injected random source (reservoir
 * sampling: the k-th tied candidate replaces the current choice with probability 1/k), so equal backends
 * share evenly rather than the first in the list taking every tie. The random source is only called on ties.
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

  /** The usable candidate minimising (inFlight + 1) / weight, or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    const cs = this.candidates;
    const ws = this.weights;
    let best: C | undefined;
    let bestLoad = 0; // inFlight + 1 of best
    let bestWeight = 1;
    let ties = 0;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i] as C;
      if (!usable(c, ctx.exclude)) continue;
      const load = Math.max(0, c.inFlight()) + 1;
      const w = this.dynamic ? weightAt(c, ctx.now) : (ws[i] as number);
      if (best === undefined) {
        best = c;
        bestLoad = load;
        bestWeight = w;
        ties = 1;
        continue;
      }
      // Compare load/w with bestLoad/bestWeight by cross-multiplying: exact for integer counts and weights.
      const lhs = load * bestWeight;
      const rhs = bestLoad * w;
      if (lhs < rhs) {
        best = c;
        bestLoad = load;
        bestWeight = w;
        ties = 1;
      } else if (lhs === rhs) {
        ties++;
        if (this.random() * ties < 1) {
          best = c;
          bestLoad = load;
          bestWeight = w;
        }
      }
    }
    return best;
  }
}

/** The `least-connections` strategy: fewest in-flight requests relative to weight, random tie-break. */
export const leastConnectionsStrategy: Strategy = {
  name: 'least-connections',
  build<C extends Candidate>(candidates: readonly C[], deps: StrategyDeps): Picker<C> {
    return new LeastConnectionsPicker(candidates, deps.random);
  },
};
