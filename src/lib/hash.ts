/**
 * Fast, stable, non-cryptographic string hashes for load balancing (ip-hash, consistent hash).
 * Stable across processes and releases: changing them would move sticky sessions.
 */

/** 32-bit FNV-1a over the UTF-16 code units of `s`, with a final avalanche mix. */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** The murmur3 32-bit finaliser: spreads every input bit over the whole result. */
export function fmix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
