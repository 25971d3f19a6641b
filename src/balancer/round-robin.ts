/**
 * Round-robin: plain rotation over the available, non-excluded candidates, ignoring weight. An unusable
 * candidate is skipped and the rotation goes on from the one after the candidate returned (so while one is
 * down, its successor takes its turns too, as in nginx and Caddy).
 */
import { usable } from './common.ts';
import type { Candidate, PickContext, Picker, Strategy } from './types.ts';

/** Round-robin picker. O(1) while everything is up; O(n) worst case when candidates are down or excluded. */
export class RoundRobinPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  private next = 0;

  /** Builds a picker over `candidates`; the rotation starts at the first. */
  constructor(candidates: readonly C[]) {
    this.candidates = candidates.slice();
  }

  /** The next usable candidate in rotation order, or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
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
}

/** The `round-robin` strategy: rotation over available candidates, weight ignored. */
export const roundRobinStrategy: Strategy = {
  name: 'round-robin',
  build<C extends Candidate>(candidates: readonly C[]): Picker<C> {
    return new RoundRobinPicker(candidates);
  },
};
