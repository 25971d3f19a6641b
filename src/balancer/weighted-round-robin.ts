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
import { hasDynamicWeights, smoothWeightedPick, weightAt, weightOf } from './common.ts';
import type { Candidate, PickContext, Picker, Strategy } from './types.ts';

/** Smooth weighted round-robin picker. O(n) per pick. */
export class SmoothWeightedRoundRobinPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  private readonly current: Float64Array;
  /** The weight a candidate takes part with: its configured one, or its weight at the pick when some slow-starts. */
  private readonly weight: (c: C, i: number, now: number) => number;

  /** Builds a picker over `candidates`, all current weights at 0. */
  constructor(candidates: readonly C[]) {
    this.candidates = candidates.slice();
    this.current = new Float64Array(this.candidates.length);
    const weights = Float64Array.from(this.candidates, weightOf);
    this.weight = hasDynamicWeights(this.candidates) ? (c, _i, now) => weightAt(c, now) : (_c, i) => weights[i] as number;
  }

  /** The usable candidate with the largest current weight, or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    const best = smoothWeightedPick(this.candidates, this.current, ctx, this.weight);
    return best < 0 ? undefined : (this.candidates[best] as C);
  }
}

/** The `weighted-round-robin` strategy: nginx's smooth weighted round-robin. */
export const weightedRoundRobinStrategy: Strategy = {
  name: 'weighted-round-robin',
  build<C extends Candidate>(candidates: readonly C[]): Picker<C> {
    return new SmoothWeightedRoundRobinPicker(candidates);
  },
};
