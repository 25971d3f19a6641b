import { describe, expect, test } from 'bun:test';
import { hash32 } from '../lib/hash.ts';
import { seededRandom } from '../lib/random.ts';
import { type ConsistentHashPicker, consistentHashStrategy, DEFAULT_VIRTUAL_NODES, virtualNodeCount } from './consistent-hash.ts';
import { countPicks, type FakeCandidate, fakeCandidates, relativeShareErrors } from './testing.ts';
import type { Candidate, Picker } from './types.ts';

const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
const deps = (virtualNodes?: number) => ({ random: seededRandom(1), ...(virtualNodes === undefined ? {} : { virtualNodes }) });

function mapping(p: Picker<Candidate>, keys: readonly string[] = KEYS, exclude?: ReadonlySet<string>): (string | undefined)[] {
  return keys.map((hashKey) => p.pick({ now: 0, hashKey, ...(exclude ? { exclude } : {}) })?.id);
}

/** Reference lookup by brute force: the owner of the smallest point >= hash(key), else of the smallest point. */
function referenceOwner(cs: readonly Candidate[], virtualNodes: number, key: string): string {
  const h = hash32(key);
  let best: { p: number; id: string } | undefined;
  let min: { p: number; id: string } | undefined;
  for (const c of cs) {
    for (let v = 0; v < virtualNodeCount(c.weight, virtualNodes); v++) {
      const p = hash32(`${c.id}#${v}`);
      if (p >= h && (best === undefined || p < best.p)) best = { p, id: c.id };
      if (min === undefined || p < min.p) min = { p, id: c.id };
    }
  }
  return (best ?? min)!.id;
}

describe('consistent-hash', () => {
  test.each<[number, number | undefined, number]>([
    [100, 160, 160],
    [100, undefined, DEFAULT_VIRTUAL_NODES],
    [50, 160, 80],
    [250, 160, 400],
    [1, 160, 2], // 1.6 rounds to 2
    [1, 10, 1], // 0.1 rounds to 0, at least 1
    [100, 0, DEFAULT_VIRTUAL_NODES], // invalid virtualNodes -> default
    [100, Number.NaN, DEFAULT_VIRTUAL_NODES],
    [0, 160, 2], // invalid weight -> 1
  ])('virtualNodeCount(weight %p, virtualNodes %p) = %p', (weight, vn, expected) => {
    expect(virtualNodeCount(weight, vn)).toBe(expected);
  });

  test('the ring holds the scaled point count of every candidate', () => {
    const p = consistentHashStrategy.build(fakeCandidates([100, 200, 1]), deps()) as ConsistentHashPicker<Candidate>;
    expect(p.ringSize).toBe(2000 + 4000 + 20);
  });

  test.each([1, 3, 160])('binary search with wrap-around agrees with a brute-force lookup (virtualNodes %p)', (vn) => {
    const cs = fakeCandidates([100, 200, 50]);
    const keys = KEYS.slice(0, 1_000);
    expect(mapping(consistentHashStrategy.build(cs, deps(vn)), keys)).toEqual(keys.map((k) => referenceOwner(cs, vn, k)));
  });

  test('sticky: the same key gets the same backend, from any picker over the same list', () => {
    const cs = fakeCandidates([100, 200, 300]);
    const first = mapping(consistentHashStrategy.build(cs, deps()));
    expect(mapping(consistentHashStrategy.build(cs, { random: seededRandom(77) }))).toEqual(first);
  });

  // A candidate with k ring points gets its share within about ±1/sqrt(k); at the default 160 that is ±8%, so
  // the 5% bound is tested with 2,000 points per weight 100 and the default with a looser bound.
  test.each<[number[], number, number]>([
    [[100, 200, 300], 2_000, 0.05],
    [[100, 100, 200], 2_000, 0.05],
    [[100, 200, 300, 400], 2_000, 0.05],
    [[100, 200, 300], DEFAULT_VIRTUAL_NODES, 0.2],
    [[100, 100, 200], DEFAULT_VIRTUAL_NODES, 0.2],
  ])('weights %p with %p virtual nodes honoured within %p over 10,000 distinct keys', (weights, vn, bound) => {
    const cs = fakeCandidates(weights);
    const counts = countPicks(consistentHashStrategy.build(cs, deps(vn)), KEYS.length, (i) => ({ now: 0, hashKey: KEYS[i] as string }));
    for (const [id, err] of Object.entries(relativeShareErrors(cs, counts))) expect({ id, ok: err < bound }).toEqual({ id, ok: true });
  });

  test.each([2, 3, 4, 5, 8, 10])('a backend joining (N = %p) takes about 1/N of the keys, all moved keys go to it', (n) => {
    const cs = fakeCandidates(Array.from({ length: n }, () => 100));
    const joined = cs[n - 1] as FakeCandidate;
    const before = mapping(consistentHashStrategy.build(cs.slice(0, n - 1), deps()));
    const after = mapping(consistentHashStrategy.build(cs, deps()));
    let moved = 0;
    KEYS.forEach((_, i) => {
      if (before[i] !== after[i]) {
        moved++;
        expect(after[i]).toBe(joined.id);
      }
    });
    expect(moved / KEYS.length).toBeLessThanOrEqual(1 / n + 0.05);
    expect(moved / KEYS.length).toBeGreaterThanOrEqual(1 / n - 0.05);
  });

  test.each([0, 2, 4])('removing backend b%p moves only its own keys', (removed) => {
    const cs = fakeCandidates([100, 200, 100, 300, 100]);
    const before = mapping(consistentHashStrategy.build(cs, deps()));
    const after = mapping(
      consistentHashStrategy.build(
        cs.filter((_, i) => i !== removed),
        deps(),
      ),
    );
    KEYS.forEach((_, i) => {
      if (before[i] === `b${removed}`) expect(after[i]).not.toBe(`b${removed}`);
      else expect(after[i]).toBe(before[i] as string);
    });
  });

  test('an unavailable or excluded backend is walked past clockwise: the same answer as a ring without it', () => {
    const cs = fakeCandidates([100, 200, 100, 300]);
    const full = consistentHashStrategy.build(cs, deps());
    const without = mapping(
      consistentHashStrategy.build(
        cs.filter((c) => c.id !== 'b1'),
        deps(),
      ),
    );
    expect(mapping(full, KEYS, new Set(['b1']))).toEqual(without);
    cs[1]!.up = false;
    expect(mapping(full)).toEqual(without);
    const withoutTwo = mapping(
      consistentHashStrategy.build(
        cs.filter((c) => c.id !== 'b1' && c.id !== 'b3'),
        deps(),
      ),
    );
    expect(mapping(full, KEYS, new Set(['b3']))).toEqual(withoutTwo);
  });

  test('without a hash key, picks are weighted random (within 5% over 10,000 picks)', () => {
    const cs = fakeCandidates([100, 200, 300]);
    const counts = countPicks(consistentHashStrategy.build(cs, deps()), 10_000, () => ({ now: 0 }));
    for (const [id, err] of Object.entries(relativeShareErrors(cs, counts))) expect({ id, ok: err < 0.05 }).toEqual({ id, ok: true });
  });
});
