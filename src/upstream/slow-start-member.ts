/**
 * A pool member whose weight ramps up after its backend (re)joined: the pool's slow-start policy applied to
 * the endpoint's {@link Endpoint.joinedAt}. Built instead of a plain {@link PoolMember} when the pool's
 * `load_balancing.slow_start` is set, so pools without slow start keep the fixed-weight fast paths.
 */
import type { SlowStartConfig } from '../config/types.ts';
import { slowStartWeight } from '../resilience/slow-start.ts';
import { type Endpoint, PoolMember } from './endpoint.ts';

/** A {@link PoolMember} with a slow-start weight. */
export class SlowStartMember extends PoolMember {
  /** A member `id` of `weight` over `endpoint`, ramping as `policy` says. */
  constructor(
    id: string,
    weight: number,
    endpoint: Endpoint,
    private readonly policy: SlowStartConfig,
  ) {
    super(id, weight, endpoint);
  }

  /** The weight at `now`: from `min_fraction` of the weight right after (re)joining up to all of it at the end of the window. */
  override currentWeight(now: number): number {
    const p = this.policy;
    return slowStartWeight(this.weight, this.endpoint.joinedAt, now, p.window_ms, p.min_fraction, p.aggression);
  }

  /** True while the backend is still inside its slow-start window at `now`. */
  ramping(now: number): boolean {
    return now - this.endpoint.joinedAt < this.policy.window_ms;
  }
}
