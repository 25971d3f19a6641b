import { describe, expect, test } from 'bun:test';
import { decrementMaxForwards, maxForwardsOf } from './max-forwards.ts';

describe('Max-Forwards (RFC 9110 section 7.6.2)', () => {
  test.each<[string, string | null, number | undefined]>([
    ['OPTIONS', '0', 0],
    ['OPTIONS', '5', 5],
    ['TRACE', '1', 1],
    ['OPTIONS', null, undefined],
    ['GET', '0', undefined], // other methods ignore it
    ['POST', '3', undefined],
    ['OPTIONS', '-1', undefined],
    ['OPTIONS', '1, 2', undefined],
    ['OPTIONS', ' 1', undefined],
    ['OPTIONS', '99999999999', undefined],
  ])('%s with %p -> %p', (method, value, want) => {
    expect(maxForwardsOf(method, value)).toBe(want);
  });

  test('the forwarded field is decremented, the others kept', () => {
    const headers: [string, string][] = [
      ['accept', '*/*'],
      ['max-forwards', '5'],
    ];
    decrementMaxForwards(headers, 5);
    expect(headers).toEqual([
      ['accept', '*/*'],
      ['max-forwards', '4'],
    ]);
  });
});
