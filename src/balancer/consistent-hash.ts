/**
 * Consistent hash: a hash ring with virtual nodes. Each candidate puts {@link virtualNodeCount} points on a
 * 32-bit ring (`virtualNodes` points at weight 100, scaled by weight, at least 1); a key goes to the owner of
 * the first point at or after the key's hash, wrapping around. Unavailable or excluded owners are walked past
 * clockwise, which gives exactly the answer a ring without them would give: a backend joining, leaving or going
 * down moves only the keys it gains or loses.
 *
 * Balance: a candidate with k points gets its weight's share within roughly ±1/sqrt(k) (about ±8% at the
 * default 2000, about ±2% per backend; 160 gives ±8-15%); raise `virtualNodes` for tighter balance at the cost of memory and build time.
 *
 * Without a hash key (undefined or empty) the pick is weighted random.
 */

import { hash32 } from '../lib/hash.ts';
import { hashKeyOf, usable, weightOf } from './common.ts';
import { WeightedRandomPicker } from './random.ts';
import type { Candidate, PickContext, Picker, Strategy, StrategyDeps } from './types.ts';

/** Ring points per candidate at weight 100 when `StrategyDeps.virtualNodes` is not given. */
export const DEFAULT_VIRTUAL_NODES = 2000;

/**
 * Ring points for a candidate of `weight`: round(virtualNodes * weight / 100), at least 1. A `virtualNodes`
 * that is not a positive finite number means {@link DEFAULT_VIRTUAL_NODES}.
 */
export function virtualNodeCount(weight: number, virtualNodes: number = DEFAULT_VIRTUAL_NODES): number {
  const vn = Number.isFinite(virtualNodes) && virtualNodes > 0 ? virtualNodes : DEFAULT_VIRTUAL_NODES;
  const w = Number.isFinite(weight) && weight > 0 ? weight : 1;
  return Math.max(1, Math.round((vn * w) / 100));
}

/** Consistent-hash ring picker. O(log points) while the key's owner is usable. */
export class ConsistentHashPicker<C extends Candidate> implements Picker<C> {
  private readonly candidates: readonly C[];
  /** Ring point hashes, ascending. */
  private readonly points: Uint32Array;
  /** Candidate index owning each point. */
  private readonly owners: Uint32Array;
  private readonly fallback: WeightedRandomPicker<C>;
  /** Per-pick marks of owners found unusable (stamp = pick number), so a walk stops once all were seen. */
  private readonly rejectedAt: Uint32Array;
  private stamp = 0;

  /** Builds the ring over `candidates` with `deps.virtualNodes`; `deps.random` serves keyless requests. */
  constructor(candidates: readonly C[], deps: StrategyDeps) {
    this.candidates = candidates.slice();
    const vn = deps.virtualNodes ?? DEFAULT_VIRTUAL_NODES;
    const ring: { h: number; owner: number }[] = [];
    this.candidates.forEach((c, owner) => {
      const count = virtualNodeCount(weightOf(c), vn);
      for (let v = 0; v < count; v++) ring.push({ h: hash32(`${c.id}#${v}`), owner });
    });
    ring.sort((a, b) => a.h - b.h || a.owner - b.owner);
    this.points = Uint32Array.from(ring, (p) => p.h);
    this.owners = Uint32Array.from(ring, (p) => p.owner);
    this.fallback = new WeightedRandomPicker(this.candidates, deps.random);
    this.rejectedAt = new Uint32Array(this.candidates.length);
  }

  /** The number of points on the ring (for tests and the status page). */
  get ringSize(): number {
    return this.points.length;
  }

  /** The key's owner, or the next usable owner clockwise; undefined when none is usable. */
  pick(ctx: PickContext): C | undefined {
    const key = hashKeyOf(ctx);
    if (key === undefined) return this.fallback.pick(ctx);
    const pts = this.points;
    const size = pts.length;
    if (size === 0) return undefined;
    const h = hash32(key);
    // First point >= h (binary search); size means "wrap to 0".
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((pts[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    const start = lo === size ? 0 : lo;
    const first = this.candidates[this.owners[start] as number] as C;
    if (usable(first, ctx.exclude)) return first;
    return this.walk(start, ctx.exclude);
  }

  /** Walks clockwise from `start` (whose owner is unusable) to the first usable owner. */
  private walk(start: number, exclude: ReadonlySet<string> | undefined): C | undefined {
    const n = this.candidates.length;
    const size = this.points.length;
    this.stamp = this.stamp === 0xffffffff ? 1 : this.stamp + 1;
    if (this.stamp === 1) this.rejectedAt.fill(0);
    const stamp = this.stamp;
    this.rejectedAt[this.owners[start] as number] = stamp;
    let rejected = 1;
    for (let k = 1; k < size && rejected < n; k++) {
      const owner = this.owners[(start + k) % size] as number;
      if (this.rejectedAt[owner] === stamp) continue;
      const c = this.candidates[owner] as C;
      if (usable(c, exclude)) return c;
      this.rejectedAt[owner] = stamp;
      rejected++;
    }
    return undefined;
  }
}

/** The `consistent-hash` strategy: hash ring with weighted virtual nodes. */
export const consistentHashStrategy: Strategy = {
  name: 'consistent-hash',
  build<C extends Candidate>(candidates: readonly C[], deps: StrategyDeps): Picker<C> {
    return new ConsistentHashPicker(candidates, deps);
  },
};
