/**
 * Slow start: a backend that (re)joins the pool (added by a reload, after being unhealthy, ejected or its
 * circuit open) gets a share of traffic that ramps from `minFraction` of its weight to all of it over
 * `windowMs`, so a cold backend is not flooded at once. The ramp is `minFraction + (1 - minFraction) * t^(1 /
 * aggression)` with t = elapsed / window: linear at aggression 1, faster at first above 1 (Envoy's
 * slow_start_config shape, with the minimum as the starting point instead of a floor). Pure: times passed in.
 */

/** The effective weight at `now` of a backend with `weight` that joined at `joinedAt` (monotonic ms). */
export function slowStartWeight(weight: number, joinedAt: number, now: number, windowMs: number, minFraction = 0.1, aggression = 1): number {
  if (windowMs <= 0) return weight;
  const elapsed = now - joinedAt;
  if (elapsed >= windowMs) return weight;
  const t = Math.max(0, elapsed) / windowMs;
  const f = aggression === 1 ? t : t ** (1 / aggression);
  return weight * (minFraction + (1 - minFraction) * f);
}
