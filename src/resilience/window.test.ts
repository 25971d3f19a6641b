import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { SlidingCounter } from './window.ts';

describe('SlidingCounter', () => {
  test.each<[string, [advance: number, add: number, sum: number][]]>([
    [
      'sums within the window',
      [
        [0, 1, 1],
        [100, 2, 3],
        [800, 1, 4],
      ],
    ],
    [
      'slots older than the window drop out, one slot at a time',
      [
        [0, 5, 5],
        [500, 1, 6],
        [500, 0, 1], // t = 1000: the slot of t = 0 is out
        [500, 0, 0],
      ],
    ],
    [
      'a slot reused after a full turn starts from 0',
      [
        [0, 3, 3],
        [5000, 1, 1],
      ],
    ],
  ])('%s', (_name, steps) => {
    const clock = new ManualClock(0);
    const c = new SlidingCounter(1000, 10);
    for (const [i, [advance, add, sum]] of steps.entries()) {
      clock.advance(advance);
      if (add) c.add(clock.now(), add);
      expect({ i, sum: c.sum(clock.now()) }).toEqual({ i, sum });
    }
  });
});
