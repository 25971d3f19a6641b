import { describe, expect, test } from 'bun:test';
import { RequestFields } from './request-fields.ts';

describe('RequestFields', () => {
  const headers = new Headers([
    ['Host', 'example.test'],
    ['X-Tag', 'a'],
    ['x-tag', 'b'],
    ['Set-Cookie', 'c=1'],
    ['set-cookie', 'd=2'],
    ['constructor', 'k'],
  ]);
  const fields = RequestFields.of(headers);

  test('answers get and has as the Headers it was read from does', () => {
    for (const name of ['host', 'Host', 'x-tag', 'X-TAG', 'set-cookie', 'constructor', 'absent', 'toString', '__proto__', 'hasOwnProperty'])
      expect([name, fields.get(name), fields.has(name)]).toEqual([name, headers.get(name), headers.has(name)]);
  });

  test('keys are the lower-case field names; toJSON gives the fields read', () => {
    expect([...fields.keys()].sort()).toEqual([...headers.keys()].filter((k, i, a) => a.indexOf(k) === i).sort());
    expect(fields.toJSON()).toEqual(headers.toJSON());
  });
});
