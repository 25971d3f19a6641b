import { expect, test } from 'bun:test';
import { lruGet, lruSet } from './lru.ts';

test('a full map drops its least recently used key; a read or an overwrite counts as a use', () => {
  const m = new Map<string, number>();
  lruSet(m, 'a', 1, 2);
  lruSet(m, 'b', 2, 2);
  expect(lruGet(m, 'a')).toBe(1); // a is now the most recent
  lruSet(m, 'c', 3, 2); // drops b
  expect([...m.keys()]).toEqual(['a', 'c']);
  lruSet(m, 'a', 10, 2); // an overwrite: nothing dropped, a most recent
  expect([...m.entries()]).toEqual([
    ['c', 3],
    ['a', 10],
  ]);
  expect(lruGet(m, 'b')).toBeUndefined();
});
