/**
 * Round-robin: plain rotation over the available, non-excluded candidates, ignoring weight. An unusable
 * candidate is skipped and the rotation goes on from the one after the candidate returned (so while one is
 * down, its successor takes its turns too, as in nginx and Caddy).
 *
 * Slow start: when candidates have a time-varying weight, each counts as weight 1 scaled by its ramp
 * (`currentWeight / weight`), and the pick is a smooth weighted round-robin over those shares; with every ramp
 * over, that is the same rotation in list order.
 */
import { hasDynamicWeights, smoothWeightedPick, usable, weightAt, weightOf } from './common.ts';
import type { Candidate, PickContext, Picker, Strategy } from './types.ts';

/** Round-robin picker. O(1) while everything is up; O(n) worst case when candidates are down or excluded. */
export class RoundRobinPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  private next = 0;
  /** Smooth weighted round-robin state when some candidate slow-starts; null otherwise. */
  private readonly current: Float64Array | null;

  /** Builds a picker over `candidates`; the rotation starts at the first. */
  constructor(candidates: readonly C[]) {
    this.candidates = candidates.slice();
    this.current = hasDynamicWeights(this.candidates) ? new Float64Array(this.candidates.length) : null;
  }

  /** The next usable candidate in rotation order, or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    if (this.current !== null) return this.pickRamped(ctx, this.current);
    const cs = this.candidates;
    const n = cs.length;
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      const c = cs[i] as C;
      if (usable(c, ctx.exclude)) {
        this.next = i + 1 === n ? 0 : i + 1;
        return c;
      }
    }
    return undefined;
  }

  /** Smooth weighted round-robin over each usable candidate's ramp share (1 when not ramping). */
  private pickRamped(ctx: PickContext, cur: Float64Array): C | undefined {
    const best = smoothWeightedPick(this.candidates, cur, ctx, rampShare);
    return best < 0 ? undefined : (this.candidates[best] as C);
  }
}

/** A candidate's share in a ramped rotation: its weight now over its full weight. */
function rampShare(c: Candidate, _i: number, now: number): number {
  return weightAt(c, now) / weightOf(c);
}

/** The `round-robin` strategy: rotation over available candidates, weight ignored. */
export const roundRobinStrategy: Strategy = {
  name: 'round-robin',
  build<C extends Candidate>(candidates: readonly C[]): Picker<C> {
    return new RoundRobinPicker(candidates);
  },
};
