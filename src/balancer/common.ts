/**
 * Small helpers shared by the strategies: the usable test (available and not excluded), weight normalisation,
 * hash-key presence, one step of smooth weighted round-robin and a binary search over cumulative weights. Nothing here allocates per pick.
 */
import type { Candidate, PickContext } from './types.ts';

/**
 * True when `c` may be returned by a pick: not in `exclude` and available now. The exclude set is checked
 * first because it is cheaper than `available()`, which may read the clock.
 */
export function usable(c: Candidate, exclude: ReadonlySet<string> | undefined): boolean {
  return (exclude === undefined || !exclude.has(c.id)) && c.available();
}

/**
 * The weight a strategy uses for `c`: its weight when finite and positive, else 1. The config only allows
 * 1..1000; this keeps a stray 0, negative or NaN from dividing by zero or poisoning a sum.
 */
export function weightOf(c: Candidate): number {
  const w = c.weight;
  return Number.isFinite(w) && w > 0 ? w : 1;
}

/** Smallest weight {@link weightAt} returns, so a backend ramping up from 0 can still be the only choice. */
const MIN_DYNAMIC_WEIGHT = 1e-9;

/** True when some candidate has a time-varying weight ({@link Candidate.currentWeight}, slow start). */
export function hasDynamicWeights(candidates: readonly Candidate[]): boolean {
  return candidates.some((c) => typeof c.currentWeight === 'function');
}

/** The weight of `c` at `now`: its {@link Candidate.currentWeight} when it has one (kept finite and > 0), else {@link weightOf}. */
export function weightAt(c: Candidate, now: number): number {
  if (c.currentWeight === undefined) return weightOf(c);
  const w = c.currentWeight(now);
  return Number.isFinite(w) && w > MIN_DYNAMIC_WEIGHT ? w : MIN_DYNAMIC_WEIGHT;
}

/**
 * One pick of smooth weighted round-robin (nginx): every usable candidate's current weight `cur[i]` grows by
 * `weight(c, i, ctx.now)`, the largest wins (the first in list order on a tie) and drops by the sum of the
 * usable weights. Unusable (down or excluded) candidates keep their current weight. Returns the winner's
 * index, or -1 when none is usable.
 */
export function smoothWeightedPick<C extends Candidate>(
  cs: readonly C[],
  cur: Float64Array,
  ctx: PickContext,
  weight: (c: C, i: number, now: number) => number,
): number {
  let best = -1;
  let total = 0;
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i] as C;
    if (!usable(c, ctx.exclude)) continue;
    const w = weight(c, i, ctx.now);
    const v = (cur[i] as number) + w;
    cur[i] = v;
    total += w;
    if (best < 0 || v > (cur[best] as number)) best = i;
  }
  if (best >= 0) cur[best] = (cur[best] as number) - total;
  return best;
}

/**
 * The hash key of `ctx`, or undefined when it is missing. An empty string counts as missing: hashing it would
 * pin every such request to one backend.
 */
export function hashKeyOf(ctx: PickContext): string | undefined {
  const k = ctx.hashKey;
  return k === undefined || k.length === 0 ? undefined : k;
}

/**
 * Cumulative weights of `candidates` (entry i is the sum of weights 0..i), for {@link searchCumulative}.
 */
export function cumulativeWeights(candidates: readonly Candidate[]): Float64Array {
  const cum = new Float64Array(candidates.length);
  let sum = 0;
  for (let i = 0; i < candidates.length; i++) {
    sum += weightOf(candidates[i] as Candidate);
    cum[i] = sum;
  }
  return cum;
}

/**
 * The index of the slot that `point` (in [0, total)) falls in: the first i with `cum[i] > point`. Points at or
 * past the total (a random source returning 1, rounding) land in the last slot. O(log n). `cum` must be
 * non-empty.
 */
export function searchCumulative(cum: Float64Array, point: number): number {
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cum[mid] as number) > point) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
