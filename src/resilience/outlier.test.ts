import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { OutlierDetector, type OutlierPolicy } from './outlier.ts';

const base: OutlierPolicy = { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 8000, maxEjectedPercent: 50 };

/** Advance, feed `n` outcomes of `id` (`fail` or `ok`), then expect which members are ejected. */
type Step = [advance: number, id: string, outcome: 'fail' | 'ok' | 'none', n: number, ejected: string[]];

describe('OutlierDetector', () => {
  test.each<[string, Partial<OutlierPolicy>, string[], Step[]]>([
    [
      'consecutive failures eject; a success resets the run',
      {},
      ['a', 'b'],
      [
        [0, 'a', 'fail', 2, []],
        [0, 'a', 'ok', 1, []],
        [0, 'a', 'fail', 2, []],
        [0, 'a', 'fail', 1, ['a']],
      ],
    ],
    [
      'the ejection lasts base_ejection_ms the first time',
      {},
      ['a', 'b'],
      [
        [0, 'a', 'fail', 3, ['a']],
        [999, 'a', 'none', 0, ['a']],
        [1, 'a', 'none', 0, []],
      ],
    ],
    [
      'each further ejection doubles, up to the cap',
      {},
      ['a', 'b'],
      [
        [0, 'a', 'fail', 3, ['a']], // 1000
        [1000, 'a', 'fail', 3, ['a']], // 2000
        [1999, 'a', 'none', 0, ['a']],
        [1, 'a', 'fail', 3, ['a']], // 4000
        [4000, 'a', 'fail', 3, ['a']], // 8000
        [8000, 'a', 'fail', 3, ['a']], // capped at 8000
        [7999, 'a', 'none', 0, ['a']],
        [1, 'a', 'none', 0, []],
      ],
    ],
    [
      'staying in for max_ejection_ms resets the ejection count',
      {},
      ['a', 'b'],
      [
        [0, 'a', 'fail', 3, ['a']], // 1000
        [1000, 'a', 'fail', 3, ['a']], // 2000
        [2000 + 8000, 'a', 'fail', 3, ['a']], // back to 1000
        [1000, 'a', 'none', 0, []],
      ],
    ],
    [
      'at most max_ejected_percent of the pool at once',
      {},
      ['a', 'b', 'c', 'd'],
      [
        [0, 'a', 'fail', 3, ['a']],
        [0, 'b', 'fail', 3, ['a', 'b']],
        [0, 'c', 'fail', 3, ['a', 'b']],
        [1000, 'c', 'fail', 1, ['c']], // a and b are back: c's run of 4 failures ejects it now
      ],
    ],
    ['a one-backend pool is never ejected at 50%', {}, ['a'], [[0, 'a', 'fail', 10, []]]],
    ['100% lets the whole pool go', { maxEjectedPercent: 100 }, ['a'], [[0, 'a', 'fail', 3, ['a']]]],
    [
      'outcomes while ejected are ignored',
      {},
      ['a', 'b'],
      [
        [0, 'a', 'fail', 3, ['a']],
        [500, 'a', 'fail', 10, ['a']],
        [500, 'a', 'fail', 2, []],
      ],
    ],
  ])('%s', (_name, over, ids, steps) => {
    const clock = new ManualClock(0);
    const d = new OutlierDetector({ ...base, ...over }, ids);
    for (const [i, [advance, id, outcome, n, ejected]] of steps.entries()) {
      clock.advance(advance);
      for (let k = 0; k < n; k++) d.record(id, outcome === 'fail', clock.now());
      expect({ i, ejected: ids.filter((x) => d.ejected(x, clock.now())) }).toEqual({ i, ejected });
    }
  });

  test('setMembers keeps the state of kept members and changes the pool size', () => {
    const d = new OutlierDetector({ ...base, consecutiveFailures: 1 }, ['a', 'b']);
    d.record('a', true, 0);
    d.setMembers(['a', 'b', 'c', 'd']);
    expect(d.ejected('a', 10)).toBe(true);
    expect(d.record('b', true, 10)).toBe(1000); // 2 of 4 now allowed
    d.setMembers(['c']);
    expect(d.ejectedCount(10)).toBe(0);
  });

  test('record returns the ejection length', () => {
    const d = new OutlierDetector({ ...base, consecutiveFailures: 1 }, ['a', 'b']);
    expect(d.record('a', true, 0)).toBe(1000);
    expect(d.record('a', true, 1000)).toBe(2000);
    expect(d.record('b', false, 0)).toBeUndefined();
  });
});
