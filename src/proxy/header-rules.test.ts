import { describe, expect, test } from 'bun:test';
import type { HeaderRules } from '../config/types.ts';
import { applyToHeaders, applyToList } from './header-rules.ts';

const rules: HeaderRules = {
  remove: ['x-debug', 'cookie'],
  set: [
    ['x-env', 'prod'],
    ['accept', 'application/json'],
  ],
  add: [
    ['x-tag', 'b'],
    ['x-env', 'also'],
  ],
};

describe('applyToList (request headers)', () => {
  test('remove, then set (replacing every field of the name), then add; order of the rest kept', () => {
    const before: [string, string][] = [
      ['host', 'h'],
      ['accept', 'text/html'],
      ['x-debug', '1'],
      ['x-tag', 'a'],
      ['accept', 'text/plain'],
      ['cookie', 'a=1'],
    ];
    expect(applyToList(before, rules)).toEqual([
      ['host', 'h'],
      ['x-tag', 'a'],
      ['x-env', 'prod'],
      ['accept', 'application/json'],
      ['x-tag', 'b'],
      ['x-env', 'also'],
    ]);
    expect(before).toHaveLength(6); // the input is not changed
  });
  test('no rules that drop anything: a copy with the additions', () => {
    expect(applyToList([['host', 'h']], { remove: [], set: [], add: [['x-a', '1']] })).toEqual([
      ['host', 'h'],
      ['x-a', '1'],
    ]);
  });
});

test('an added cookie joins the Cookie field already there (one Cookie field towards a backend)', () => {
  const rules: HeaderRules = { remove: [], set: [], add: [['cookie', 'edge=1']] };
  expect(applyToList([['cookie', 'a=1; b=2']], rules)).toEqual([['cookie', 'a=1; b=2; edge=1']]);
  expect(applyToList([['host', 'h']], rules)).toEqual([
    ['host', 'h'],
    ['cookie', 'edge=1'],
  ]);
});

describe('applyToHeaders (response headers)', () => {
  test('the same order of effects on a Headers', () => {
    const h = new Headers([
      ['x-debug', '1'],
      ['x-env', 'dev'],
      ['x-tag', 'a'],
    ]);
    h.append('x-env', 'dev2');
    applyToHeaders(h, rules);
    expect([h.get('x-debug'), h.get('x-env'), h.get('x-tag'), h.get('accept')]).toEqual([null, 'prod, also', 'a, b', 'application/json']);
  });
});
