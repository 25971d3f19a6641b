import { expect, test } from 'bun:test';
import { tokenOk } from './admin.ts';

/** A request with `authorization` set to `value` as Bun hands it over (one character per byte of UTF-8). */
const withAuth = (value: string | undefined): Request =>
  new Request('http://127.0.0.1/status', value === undefined ? {} : { headers: { authorization: Buffer.from(value, 'utf8').toString('latin1') } });

test.each<[string, string | undefined, string | undefined, boolean]>([
  ['no token configured: open', undefined, undefined, true],
  ['the token', 's3cret', 'Bearer s3cret', true],
  ['the scheme in any case', 's3cret', 'bEaReR s3cret', true],
  ['a wrong token', 's3cret', 'Bearer s3cres', false],
  ['a longer token', 's3cret', 'Bearer s3cret2', false],
  ['no header', 's3cret', undefined, false],
  ['another scheme', 's3cret', 'Basic s3cret', false],
  ['a non-ASCII token sent in UTF-8', 'pässwörd', 'Bearer pässwörd', true],
  ['a non-ASCII token, one letter off', 'pässwörd', 'Bearer passwörd', false],
  ['a token ending in a character whose last UTF-8 byte is 0xA0', 'voilà', 'Bearer voilà', true],
  ['spaces and tabs around the token', 'voilà', 'Bearer  \tvoilà \t', true],
])('%s', (_name, token, header, ok) => {
  expect(tokenOk(withAuth(header), token)).toBe(ok);
});
