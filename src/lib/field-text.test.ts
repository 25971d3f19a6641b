import { describe, expect, test } from 'bun:test';
import { fieldText } from './field-text.ts';

/** A string of `text`'s UTF-8 bytes, one character per byte: how Bun hands over a header value. */
const onTheWire = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

describe('fieldText', () => {
  test.each<[string, string | null, string | null]>([
    ['null stays null', null, null],
    ['ASCII unchanged', 'gold', 'gold'],
    ['empty unchanged', '', ''],
    ['UTF-8 bytes become the text', onTheWire('José'), 'José'],
    ['a four-byte UTF-8 character', onTheWire('a😀b'), 'a😀b'],
    ['CJK', onTheWire('東京'), '東京'],
    ['not valid UTF-8 (a latin1 sender): kept byte for byte', 'Jos\u00e9', 'Jos\u00e9'],
    ['a cut UTF-8 sequence: kept', 'Jos\u00c3', 'Jos\u00c3'],
    ['a character above U+00FF (not from the wire): kept', 'Jos\u0100', 'Jos\u0100'],
    ['a leading byte-order mark is part of the value', onTheWire('\ufeffcanary'), '\ufeffcanary'],
  ])('%s', (_name, input, want) => {
    expect(fieldText(input)).toBe(want);
  });
});
