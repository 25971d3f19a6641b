/** A source of uniform random numbers in [0, 1). Injected so tests can script choices. */
export type Random = () => number;

/** The default random source. */
export const systemRandom: Random = Math.random;

/** A deterministic, seeded generator (mulberry32); for tests and reproducible benchmarks. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A source that returns the given values in turn (cycling); for table tests. */
export function scriptedRandom(values: readonly number[]): Random {
  let i = 0;
  return () => {
    const v = values[i % values.length] ?? 0;
    i++;
    return v;
  };
}
