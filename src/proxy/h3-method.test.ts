import { expect, test } from 'bun:test';
import { h3MethodProblem } from './h3-method.ts';

test.each<[string, boolean, boolean]>([
  ['GET', false, false],
  ['GET', true, true],
  ['HEAD', false, false],
  ['POST', true, false],
  ['POST', false, false],
  ['PURGE', true, false],
  ['OPTIONS', true, false],
])('%s with body %p refused: %p', (method, hasBody, refused) => {
  expect(h3MethodProblem(method, hasBody) !== undefined).toBe(refused);
});
