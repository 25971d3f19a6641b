import { expect, test } from 'bun:test';
import { loadConfigText } from '../config/load.ts';
import { defaultConfigText } from './demo.ts';

test.each([
  ['plain', '/home/ann/.local/share/spooky'],
  ['a quote and a backslash', '/tmp/spooky "data\\x'],
  ['a backslash escape YAML knows', '/tmp/a\\tb'],
  ['a colon, a hash and a brace', '/srv/a: b #c {d}'],
])('the embedded config takes a data folder path with %s as it is', (_name, dir) => {
  const text = defaultConfigText({ cert: `${dir}/cert.pem`, key: `${dir}/key.pem`, portA: 1001, portB: 1002 });
  const r = loadConfigText(text, '<embedded>', '/');
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
  expect(r.config.listeners[0]?.certificates).toEqual([{ cert: `${dir}/cert.pem`, key: `${dir}/key.pem` }]);
});
