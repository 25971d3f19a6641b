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
  // murmur3 finaliser for better bit distribution
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
