/**
 * IP hash: the client IP (`ctx.hashKey`) is hashed onto the candidates' weights, so each client sticks to one
 * backend, and clients spread over backends in proportion to weight.
 *
 * The mapping is over the whole (immutable) candidate list, not over the ones available now, as nginx's
 * ip_hash does: a backend going down or coming back moves only the clients that hash to it. A client whose
 * backend is unavailable or excluded is rehashed (a fixed integer remix of its hash) up to
 * {@link IP_HASH_MAX_PROBES} times, landing on the next choice in proportion to weight; if every probe misses,
 * the first usable candidate after the last probed one in list order is taken. Every step is deterministic, so
 * the fallback for a given client is stable too and a retry that excludes the first choice gets the same
 * second choice every time.
 *
 * Without a hash key (undefined or empty) the pick is weighted random.
 */

import { fmix32, hash32 } from '../lib/hash.ts';
import { cumulativeWeights, hashKeyOf, searchCumulative, usable } from './common.ts';
import { WeightedRandomPicker } from './random.ts';
import type { Candidate, PickContext, Picker, Strategy, StrategyDeps } from './types.ts';

/** How many rehashes a client whose backend is unusable gets before the linear fallback. */
export const IP_HASH_MAX_PROBES = 20;

const TWO_POW_32 = 4294967296;

/** Deterministic 32-bit remix for the next probe (golden-ratio offset, then the murmur3 finaliser). */
function remix(h: number): number {
  return fmix32(h + 0x9e3779b9);
}

/** IP-hash picker. O(log n) while the client's backend is usable. */
export class IpHashPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  private readonly cum: Float64Array;
  private readonly total: number;
  private readonly fallback: WeightedRandomPicker<C>;

  /** Builds a picker over `candidates`; `deps.random` serves requests without a hash key. */
  constructor(candidates: readonly C[], deps: StrategyDeps) {
    this.candidates = candidates.slice();
    this.cum = cumulativeWeights(this.candidates);
    this.total = this.cum.length > 0 ? (this.cum[this.cum.length - 1] as number) : 0;
    this.fallback = new WeightedRandomPicker(this.candidates, deps.random);
  }

  /** The index `h` maps to: a point over the total weight, found by binary search. */
  private slot(h: number): number {
    return searchCumulative(this.cum, (h / TWO_POW_32) * this.total);
  }

  /** The client's backend (or its deterministic fallback), or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    const key = hashKeyOf(ctx);
    if (key === undefined) return this.fallback.pick(ctx);
    const cs = this.candidates;
    const n = cs.length;
    if (n === 0) return undefined;
    let h = hash32(key);
    let i = 0;
    for (let probe = 0; probe <= IP_HASH_MAX_PROBES; probe++) {
      i = this.slot(h);
      const c = cs[i] as C;
      if (usable(c, ctx.exclude)) return c;
      h = remix(h);
    }
    for (let k = 1; k < n; k++) {
      const c = cs[(i + k) % n] as C;
      if (usable(c, ctx.exclude)) return c;
    }
    return undefined;
  }
}

/** The `ip-hash` strategy: sticky by client IP, weighted, deterministic fallback. */
export const ipHashStrategy: Strategy = {
  name: 'ip-hash',
  build<C extends Candidate>(candidates: readonly C[], deps: StrategyDeps): Picker<C> {
    return new IpHashPicker(candidates, deps);
  },
};
