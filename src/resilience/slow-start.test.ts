import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { slowStartWeight } from './slow-start.ts';

describe('slowStartWeight', () => {
  test.each<[string, number, number, number, number, number]>([
    // name, weight, window, min fraction, ms since joining, expected weight
    ['right after joining: the minimum share', 10, 1000, 0.1, 0, 1],
    ['halfway through the window', 10, 1000, 0.1, 500, 5.5],
    ['at the end of the window: full weight', 10, 1000, 0.1, 1000, 10],
    ['long after: full weight', 10, 1000, 0.1, 1e9, 10],
    ['window 0 turns it off', 10, 0, 0.1, 0, 10],
    ['min fraction 0 starts from nothing', 4, 1000, 0, 250, 1],
    ['a join time in the future counts as just joined', 10, 1000, 0.1, -50, 1],
  ])('%s', (_name, weight, windowMs, minFraction, since, expected) => {
    const clock = new ManualClock(5000);
    const joinedAt = clock.now();
    clock.advance(since);
    expect(slowStartWeight(weight, joinedAt, clock.now(), windowMs, minFraction)).toBeCloseTo(expected, 9);
  });

  test.each<[string, number, number, number]>([
    // name, aggression, ms since joining (window 1000, weight 100, min 0), expected weight
    ['aggression 1 is linear', 1, 250, 25],
    ['aggression 2 ramps faster at first (square root)', 2, 250, 50],
    ['aggression 0.5 ramps slower at first (square)', 0.5, 500, 25],
    ['any aggression reaches full weight at the end', 4, 1000, 100],
  ])('%s', (_name, aggression, since, expected) => {
    expect(slowStartWeight(100, 0, since, 1000, 0, aggression)).toBeCloseTo(expected, 9);
  });
});
