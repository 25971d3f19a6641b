/**
 * Balancing contracts. A Strategy builds an immutable Picker over a list of candidates; the picker chooses
 * one per request and never returns an unavailable or excluded candidate.
 */
import type { Random } from '../lib/random.ts';

/** What a strategy needs to know about a backend. */
export interface Candidate {
  /** Unique id within the pool. */
  readonly id: string;
  /** Relative weight (>= 1). */
  readonly weight: number;
  /** False while the backend is unhealthy (or otherwise out). */
  available(): boolean;
  /** Requests in flight now. */
  inFlight(): number;
  /** Peak-EWMA latency estimate in milliseconds at `now`; 0 when nothing is known. */
  latency(now: number): number;
  /**
   * The weight at `now` when it varies over time (slow start ramps it up after the backend (re)joined); absent
   * when the weight is fixed. Strategies that honour it read it per pick; see `common.ts` `weightAt`.
   */
  currentWeight?(now: number): number;
}

/** Per-request input to a pick. */
export interface PickContext {
  /** Hash key (client IP for ip-hash; the configured key for consistent-hash); undefined when missing. */
  readonly hashKey?: string;
  /** Candidate ids already tried for this request. */
  readonly exclude?: ReadonlySet<string>;
  /** Monotonic now in milliseconds. */
  readonly now: number;
}

/** Chooses a candidate for one request. */
export interface Picker<C extends Candidate> {
  /** A candidate that is available and not excluded, or undefined when there is none. */
  pick(ctx: PickContext): C | undefined;
}

/** Dependencies a strategy may use. */
export interface StrategyDeps {
  /** Uniform [0,1) random source. */
  random: Random;
  /** Consistent-hash ring points per backend at weight 100 (scaled by weight). */
  virtualNodes?: number;
}

/** A named balancing algorithm. */
export interface Strategy {
  /** Canonical name, as in the config. */
  readonly name: string;
  /** Builds a picker over a fixed candidate list (rebuilt when the list changes). */
  build<C extends Candidate>(candidates: readonly C[], deps: StrategyDeps): Picker<C>;
}
