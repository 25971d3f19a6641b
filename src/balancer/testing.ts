/**
 * Test helpers for code that balances over candidates: a {@link FakeCandidate} whose availability, in-flight
 * count and latency are plain settable fields. Not used by production code.
 */
import type { Candidate, PickContext, Picker } from './types.ts';

/** Initial state of a {@link FakeCandidate}. */
export interface FakeCandidateInit {
  /** Available. Default `true`. */
  up?: boolean;
  /** Requests in flight. Default `0`. */
  active?: number;
  /** Latency estimate in milliseconds (0: unknown). Default `0`. */
  latencyMs?: number;
}

/** A candidate whose state tests set directly. */
export class FakeCandidate implements Candidate {
  /** Whether {@link available} answers true. */
  up: boolean;
  /** What {@link inFlight} answers. */
  active: number;
  /** What {@link latency} answers (at any `now`). */
  latencyMs: number;

  /** A candidate `id` of `weight` (default 100). */
  constructor(
    readonly id: string,
    readonly weight: number = 100,
    init: FakeCandidateInit = {},
  ) {
    this.up = init.up ?? true;
    this.active = init.active ?? 0;
    this.latencyMs = init.latencyMs ?? 0;
  }

  /** The {@link up} field. */
  available(): boolean {
    return this.up;
  }

  /** The {@link active} field. */
  inFlight(): number {
    return this.active;
  }

  /** The {@link latencyMs} field. */
  latency(_now: number): number {
    return this.latencyMs;
  }
}

/** Candidates `b0`, `b1`, ... with the given weights. */
export function fakeCandidates(weights: readonly number[], prefix = 'b'): FakeCandidate[] {
  return weights.map((w, i) => new FakeCandidate(`${prefix}${i}`, w));
}

/** Counts how often each candidate id is picked over `picks` picks; `ctxFor(i)` gives the i-th pick's context. */
export function countPicks<C extends Candidate>(picker: Picker<C>, picks: number, ctxFor: (i: number) => PickContext): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const c = picker.pick(ctxFor(i));
    const id = c === undefined ? '<none>' : c.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/**
 * For each candidate, the relative error of its share of `counts` against its weight share:
 * |actual - expected| / expected. Candidates never picked have error 1.
 */
export function relativeShareErrors(candidates: readonly Candidate[], counts: ReadonlyMap<string, number>): Record<string, number> {
  let total = 0;
  for (const n of counts.values()) total += n;
  const weightSum = candidates.reduce((s, c) => s + c.weight, 0);
  const out: Record<string, number> = {};
  for (const c of candidates) {
    const expected = c.weight / weightSum;
    const actual = (counts.get(c.id) ?? 0) / total;
    out[c.id] = Math.abs(actual - expected) / expected;
  }
  return out;
}

/** A {@link FakeCandidate} that slow-starts: its weight at `now` ramps from `minFraction` up over `windowMs` after `joinedAt`. */
export class RampingCandidate extends FakeCandidate {
  /** When it (re)joined (monotonic ms). */
  joinedAt = 0;

  /** A candidate `id` of `weight` ramping over `windowMs` from `minFraction`. */
  constructor(
    id: string,
    weight: number,
    readonly windowMs: number,
    readonly minFraction = 0.1,
  ) {
    super(id, weight);
  }

  /** The weight at `now`: linear ramp from `minFraction` of the weight to all of it. */
  currentWeight(now: number): number {
    const elapsed = now - this.joinedAt;
    if (elapsed >= this.windowMs) return this.weight;
    const f = Math.max(0, elapsed) / this.windowMs;
    return this.weight * (this.minFraction + (1 - this.minFraction) * f);
  }
}
