/**
 * Smooth weighted round-robin, as nginx does it: on every pick each usable candidate's current weight grows by
 * its weight, the one with the largest current weight wins (the first in list order on a tie), and the winner's
 * current weight drops by the sum of the usable weights. Weights 5,1,1 give a a b a c a a, spreading the light
 * backends through the cycle instead of bunching them. Deterministic: no random source.
 *
 * Unusable (down or excluded) candidates take no part in a pick and keep their current weight, as nginx skips
 * down or already-tried peers. nginx's "effective weight" that shrinks on failures is not modelled: failures
 * act through availability instead.
 *
 * Slow start: candidates with a time-varying weight (`currentWeight`) take part with their weight at the pick.
 */
import { hasDynamicWeights, usable, weightAt, weightOf } from './common.ts';
import type { Candidate, PickContext, Picker, Strategy } from './types.ts';

/** Smooth weighted round-robin picker. O(n) per pick. */
export class SmoothWeightedRoundRobinPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  private readonly weights: Float64Array;
  private readonly current: Float64Array;
  private readonly dynamic: boolean;

  /** Builds a picker over `candidates`, all current weights at 0. */
  constructor(candidates: readonly C[]) {
    this.candidates = candidates.slice();
    this.weights = Float64Array.from(this.candidates, weightOf);
    this.current = new Float64Array(this.candidates.length);
    this.dynamic = hasDynamicWeights(this.candidates);
  }

  /** The usable candidate with the largest current weight, or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    const cs = this.candidates;
    const cur = this.current;
    const ws = this.weights;
    const dynamic = this.dynamic;
    let best = -1;
    let total = 0;
    for (let i = 0; i < cs.length; i++) {
      if (!usable(cs[i] as C, ctx.exclude)) continue;
      const w = dynamic ? weightAt(cs[i] as C, ctx.now) : (ws[i] as number);
      const v = (cur[i] as number) + w;
      cur[i] = v;
      total += w;
      if (best < 0 || v > (cur[best] as number)) best = i;
    }
    if (best < 0) return undefined;
    cur[best] = (cur[best] as number) - total;
    return cs[best] as C;
  }
}

/** The `weighted-round-robin` strategy: nginx's smooth weighted round-robin. */
export const weightedRoundRobinStrategy: Strategy = {
  name: 'weighted-round-robin',
  build<C extends Candidate>(candidates: readonly C[]): Picker<C> {
    return new SmoothWeightedRoundRobinPicker(candidates);
  },
};
