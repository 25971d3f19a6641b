/**
 * Latency-aware: power of two choices over peak-EWMA, after linkerd2's p2c balancer. Two distinct usable
 * candidates are drawn uniformly at random and the one with the lower cost wins:
 *
 *     cost = latency(now) * (inFlight + 1)
 *
 * Cold candidates (latency 0: no sample yet) are preferred so new or long-idle backends get probed: a cold
 * candidate is costed with its rival's latency instead of 0, so it competes on load alone, and it wins ties.
 * With nothing in flight it always beats a warm rival. Two cold candidates compare on inFlight + 1.
 * (Scoring a cold candidate as 0 would make it win every draw it is in; a backend that never answers never gets
 * a latency sample, so it would soak up traffic until health checks took it out.)
 *
 * Other ties go to the first of the two draws, which is itself random. One usable candidate is returned as is.
 *
 * Unequal weights (configured, or while a backend ramps up in slow start): a comparison of two cannot honour
 * them (dividing the cost by the weight made the heavier backend win every idle pick, and a lighter backend
 * never got a request at light load). Then, as Envoy's least-request balancer does for weighted hosts, one
 * usable candidate is picked at random in proportion to weight / (latency * (1 + inFlight * meanWeight /
 * weight)), a cold one costed at the lowest latency of the warm ones (or 1 when all are cold): at equal latency
 * the shares follow the weights, idle or loaded (load counts relative to the weight), a faster or less loaded
 * backend gets more, and a cold one is probed without taking everything. That pass is O(n).
 */

import type { Random } from '../lib/random.ts';
import { hasDynamicWeights, usable, weightAt, weightOf } from './common.ts';
import type { Candidate, PickContext, Picker, Strategy, StrategyDeps } from './types.ts';

/** Power-of-two-choices picker over peak-EWMA latency. O(1) while everything is up; O(n) otherwise. */
export class PeakEwmaP2CPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  private readonly weights: Float64Array;
  private readonly dynamic: boolean;
  /** The configured weights differ (then every pick is weighted, see the module comment). */
  private readonly unequal: boolean;
  /** Output of {@link distinctPair} (fields rather than a tuple, so a pick allocates nothing). */
  private pairA = 0;
  private pairB = 0;

  /** Builds a picker over `candidates`, drawing with `random`. */
  constructor(
    candidates: readonly C[],
    private readonly random: Random,
  ) {
    this.candidates = candidates.slice();
    this.weights = Float64Array.from(this.candidates, weightOf);
    this.dynamic = hasDynamicWeights(this.candidates);
    this.unequal = this.weights.some((w) => w !== this.weights[0]);
  }

  /** The cheaper of two random usable candidates, the only usable one, or undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    const cs = this.candidates;
    const n = cs.length;
    if (n === 0) return undefined;
    if (n === 1) {
      const only = cs[0] as C;
      return usable(only, ctx.exclude) ? only : undefined;
    }
    if (this.unequal || (this.dynamic && !this.equalWeightsAt(ctx.now))) return this.pickWeighted(ctx);
    // Fast path: two distinct indices over the whole list; accepted only if both are usable, so the pair is
    // uniform over usable pairs (the slow path below is too).
    this.distinctPair(n);
    const a = this.pairA;
    const b = this.pairB;
    if (usable(cs[a] as C, ctx.exclude) && usable(cs[b] as C, ctx.exclude)) return this.better(a, b, ctx.now);
    return this.pickAmongUsable(ctx);
  }

  /** True when every candidate's current weight (slow start) is the same at `now`. */
  private equalWeightsAt(now: number): boolean {
    const cs = this.candidates;
    const first = weightAt(cs[0] as C, now);
    for (let i = 1; i < cs.length; i++) if (weightAt(cs[i] as C, now) !== first) return false;
    return true;
  }

  /** Unequal weights: a usable candidate at random in proportion to weight / (latency * (inFlight + 1)). */
  private pickWeighted(ctx: PickContext): C | undefined {
    const cs = this.candidates;
    const now = ctx.now;
    let coldLatency = Number.POSITIVE_INFINITY;
    let weightSum = 0;
    let count = 0;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i] as C;
      if (!usable(c, ctx.exclude)) continue;
      const l = c.latency(now);
      if (l > 0 && l < coldLatency) coldLatency = l;
      weightSum += this.weight(c, i, now);
      count++;
    }
    if (count === 0) return undefined;
    if (coldLatency === Number.POSITIVE_INFINITY) coldLatency = 1;
    const meanWeight = weightSum / count;
    let total = 0;
    let last: C | undefined;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i] as C;
      if (!usable(c, ctx.exclude)) continue;
      total += this.share(c, i, now, coldLatency, meanWeight);
      last = c;
    }
    let r = this.random() * total;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i] as C;
      if (!usable(c, ctx.exclude)) continue;
      r -= this.share(c, i, now, coldLatency, meanWeight);
      if (r < 0) return c;
    }
    return last; // rounding, or availability that flipped between the passes
  }

  private weight(c: C, i: number, now: number): number {
    return this.dynamic ? weightAt(c, now) : (this.weights[i] as number);
  }

  /**
   * Share of candidate `c` (index `i`): weight / (latency * (1 + inFlight * meanWeight / weight)), a cold one
   * costed at `coldLatency`. The load term counts in-flight requests relative to the weight (scaled so equal
   * weights give inFlight + 1): when every backend carries in-flight requests in proportion to its weight, the
   * shares are exactly the weights, and a backend above its part gets less until it is back.
   */
  private share(c: C, i: number, now: number, coldLatency: number, meanWeight: number): number {
    const l = c.latency(now);
    const w = this.weight(c, i, now);
    return w / ((l > 0 ? l : coldLatency) * (1 + (Math.max(0, c.inFlight()) * meanWeight) / w));
  }

  /** Draws two distinct uniform indices in [0, n), n >= 2, into pairA and pairB. */
  private distinctPair(n: number): void {
    const a = Math.min(n - 1, Math.floor(this.random() * n));
    let b = Math.min(n - 2, Math.floor(this.random() * (n - 1)));
    if (b >= a) b++;
    this.pairA = a;
    this.pairB = b;
  }

  /** Slow path: count the usable candidates, then draw two distinct ranks among them. */
  private pickAmongUsable(ctx: PickContext): C | undefined {
    const cs = this.candidates;
    let u = 0;
    let lastUsable = -1;
    for (let i = 0; i < cs.length; i++) {
      if (usable(cs[i] as C, ctx.exclude)) {
        u++;
        lastUsable = i;
      }
    }
    if (u === 0) return undefined;
    if (u === 1) return cs[lastUsable] as C;
    this.distinctPair(u);
    const ra = this.pairA;
    const rb = this.pairB;
    let a = -1;
    let b = -1;
    for (let i = 0, rank = 0; i < cs.length && (a < 0 || b < 0); i++) {
      if (!usable(cs[i] as C, ctx.exclude)) continue;
      if (rank === ra) a = i;
      if (rank === rb) b = i;
      rank++;
    }
    // Availability can flip between the passes; fall back to whichever of the two was found.
    if (a < 0 || b < 0) {
      const one = a >= 0 ? a : b;
      return one >= 0 ? (cs[one] as C) : undefined;
    }
    return this.better(a, b, ctx.now);
  }

  /** The cheaper of candidates `a` and `b` (see the module comment for cold candidates); `a` on ties. */
  private better(a: number, b: number, now: number): C {
    const ca = this.candidates[a] as C;
    const cb = this.candidates[b] as C;
    let la = ca.latency(now);
    let lb = cb.latency(now);
    if (!(la > 0)) la = 0;
    if (!(lb > 0)) lb = 0;
    // Weights are equal here (see pick), so they drop out of the comparison.
    const loadA = Math.max(0, ca.inFlight()) + 1;
    const loadB = Math.max(0, cb.inFlight()) + 1;
    if (la === 0 && lb === 0) return loadB < loadA ? cb : ca;
    if (la === 0) return loadA <= loadB ? ca : cb; // cold a, costed at b's latency; wins ties
    if (lb === 0) return loadB <= loadA ? cb : ca;
    return lb * loadB < la * loadA ? cb : ca;
  }
}

/** The `latency-aware` strategy: power of two choices over peak-EWMA latency and in-flight load. */
export const latencyAwareStrategy: Strategy = {
  name: 'latency-aware',
  build<C extends Candidate>(candidates: readonly C[], deps: StrategyDeps): Picker<C> {
    return new PeakEwmaP2CPicker(candidates, deps.random);
  },
};
