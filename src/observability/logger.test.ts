import { describe, expect, test } from 'bun:test';
import { jsonLineToText } from './logger.ts';

const line = (rec: Record<string, unknown>) => jsonLineToText(JSON.stringify({ level: 'info', time: 0, ...rec }));
/** Every C0 control, DEL and C1 control: what a terminal can act on. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('jsonLineToText', () => {
  test('a plain record: time, level, event, the message as a sentence, then key=value', () => {
    expect(line({ event: 'listening', msg: 'spooky is listening', port: 8443, listeners: [{ port: 1 }] })).toBe(
      '1970-01-01T00:00:00.000Z INFO listening spooky is listening port=8443 listeners=[{"port":1}]\n',
    );
  });

  test.each<[string, string]>([
    ['ESC sequences (clear screen, colours)', '\u001b[2J\u001b[31mFAKE'],
    ['backspaces that overwrite text', 'FAKE\b\b\b\bok'],
    ['NUL and DEL', 'a\u0000b\u007f'],
    ['a C1 CSI', 'x\u009b2Jy'],
    ['a carriage return', 'real\rfake'],
  ])('client bytes with %s are escaped, never written raw', (_name, value) => {
    const out = line({ event: 'body_sample', msg: `sample ${value}`, body: value, nested: { v: value } });
    expect(out.endsWith('\n')).toBe(true);
    expect(RAW_CONTROL.test(out.slice(0, -1))).toBe(false);
    expect(out.slice(0, -1).includes('\n')).toBe(false);
  });
});
