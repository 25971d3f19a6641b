/**
 * The shared conformance suite: every strategy in STRATEGIES must pass every case here. Randomness comes from
 * seeded sources only, so failures reproduce.
 */
import { describe, expect, test } from 'bun:test';
import type { StrategyName } from '../config/types.ts';
import { seededRandom } from '../lib/random.ts';
import { STRATEGIES, strategyByName } from './index.ts';
import { FakeCandidate, fakeCandidates } from './testing.ts';
import type { PickContext, Strategy } from './types.ts';

const ALL = Object.entries(STRATEGIES) as [StrategyName, Strategy][];

/** How a case supplies hash keys: none, an empty string (counts as none), or a varying client IP. */
type KeyMode = 'no key' | 'empty key' | 'with key';
const KEY_MODES: KeyMode[] = ['no key', 'empty key', 'with key'];

function keyFor(mode: KeyMode, i: number): string | undefined {
  if (mode === 'no key') return undefined;
  if (mode === 'empty key') return '';
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function ctx(mode: KeyMode, i: number, exclude?: ReadonlySet<string>, now = 0): PickContext {
  const hashKey = keyFor(mode, i);
  return { now, ...(hashKey === undefined ? {} : { hashKey }), ...(exclude === undefined ? {} : { exclude }) };
}

const cases = ALL.flatMap(([name, s]) => KEY_MODES.map((mode) => [name, mode, s] as const));

describe.each(cases)('conformance: %s (%s)', (name, mode, strategy) => {
  const deps = () => ({ random: seededRandom(42), virtualNodes: 40 });

  test('name matches the registry key and strategyByName', () => {
    expect(strategy.name).toBe(name);
    expect(strategyByName(name)).toBe(strategy);
  });

  test('empty list -> undefined', () => {
    const p = strategy.build([], deps());
    for (let i = 0; i < 10; i++) expect(p.pick(ctx(mode, i))).toBeUndefined();
  });

  test.each([1, 3, 10])('all %i unavailable -> undefined', (n) => {
    const cs = fakeCandidates(Array.from({ length: n }, (_, i) => 100 * (i + 1)));
    for (const c of cs) c.up = false;
    const p = strategy.build(cs, deps());
    for (let i = 0; i < 100; i++) expect(p.pick(ctx(mode, i))).toBeUndefined();
  });

  test.each([
    ['one candidate', [100], 0],
    ['first of five', [100, 200, 300, 400, 500], 0],
    ['middle of five', [100, 200, 300, 400, 500], 2],
    ['last of five', [100, 200, 300, 400, 500], 4],
  ] as const)('a single available candidate is always returned (%s)', (_label, weights, upIndex) => {
    const cs = fakeCandidates(weights);
    cs.forEach((c, i) => {
      c.up = i === upIndex;
    });
    const p = strategy.build(cs, deps());
    for (let i = 0; i < 500; i++) expect(p.pick(ctx(mode, i))?.id).toBe(`b${upIndex}`);
  });

  test('never returns an unavailable or excluded candidate, and finds one whenever one exists (10k picks, flipping availability)', () => {
    const cs = fakeCandidates([100, 300, 100, 50, 200, 100, 1000]);
    const p = strategy.build(cs, deps());
    const chaos = seededRandom(7);
    let picked = 0;
    let none = 0;
    for (let i = 0; i < 10_000; i++) {
      for (const c of cs) if (chaos() < 0.2) c.up = !c.up;
      const exclude = chaos() < 0.5 ? new Set(cs.filter(() => chaos() < 0.25).map((c) => c.id)) : undefined;
      const usable = cs.filter((c) => c.up && !exclude?.has(c.id));
      const got = p.pick(ctx(mode, i % 97, exclude));
      if (got === undefined) {
        none++;
        expect(usable.map((c) => c.id)).toEqual([]);
      } else {
        picked++;
        expect(usable).toContain(got);
      }
    }
    // Both branches were exercised.
    expect(picked).toBeGreaterThan(5_000);
    expect(none).toBeGreaterThan(0);
  });

  test('honours exclude: never an excluded one; undefined when every available one is excluded', () => {
    const cs = fakeCandidates([100, 200, 300, 400]);
    const p = strategy.build(cs, deps());
    for (let i = 0; i < 1_000; i++) {
      const got = p.pick(ctx(mode, i, new Set(['b0', 'b2'])));
      expect(['b1', 'b3']).toContain(got?.id as string);
    }
    cs[1]!.up = false;
    for (let i = 0; i < 200; i++) expect(p.pick(ctx(mode, i, new Set(['b0', 'b2'])))?.id).toBe('b3');
    for (let i = 0; i < 200; i++) expect(p.pick(ctx(mode, i, new Set(['b0', 'b2', 'b3'])))).toBeUndefined();
    // An exclude naming unknown ids changes nothing.
    for (let i = 0; i < 200; i++) expect(p.pick(ctx(mode, i, new Set(['zz'])))).toBeDefined();
  });

  test('availability is read at pick time: a recovered candidate is picked again', () => {
    const cs = fakeCandidates([100, 100, 100]);
    const p = strategy.build(cs, deps());
    cs[0]!.up = false;
    for (let i = 0; i < 300; i++) expect(p.pick(ctx(mode, i))?.id).not.toBe('b0');
    cs[0]!.up = true;
    cs[1]!.up = false;
    cs[2]!.up = false;
    for (let i = 0; i < 50; i++) expect(p.pick(ctx(mode, i))?.id).toBe('b0');
  });

  test('the picker keeps its own copy of the list', () => {
    const cs: FakeCandidate[] = fakeCandidates([100, 100]);
    const p = strategy.build(cs, deps());
    cs.push(new FakeCandidate('late', 1000));
    cs[0]!.up = false;
    cs[1]!.up = false;
    for (let i = 0; i < 50; i++) expect(p.pick(ctx(mode, i))).toBeUndefined();
  });
});

test('strategyByName throws for an unknown name', () => {
  expect(() => strategyByName('fastest' as StrategyName)).toThrow(/unknown load-balancing strategy/);
  expect(() => strategyByName('toString' as StrategyName)).toThrow(/unknown/);
});
