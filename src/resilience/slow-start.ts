/**
 * Slow start: a backend that (re)joins the pool (at start, after being unhealthy, ejected or its circuit
 * open) gets a share of traffic that ramps linearly from `minFraction` of its weight to all of it over
 * `windowMs`, so a cold backend is not flooded at once. Pure: times passed in.
 */

/** The effective weight at `now` of a backend with `weight` that joined at `joinedAt` (monotonic ms). */
export function slowStartWeight(weight: number, joinedAt: number, now: number, windowMs: number, minFraction = 0.1): number {
  if (windowMs <= 0) return weight;
  const elapsed = now - joinedAt;
  if (elapsed >= windowMs) return weight;
  const f = Math.max(0, elapsed) / windowMs;
  return weight * (minFraction + (1 - minFraction) * f);
}
