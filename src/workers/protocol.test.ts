import { describe, expect, test } from 'bun:test';
import { isMessage, parseSharedPorts } from './protocol.ts';
import { parseWorkersOption, workerCommand } from './run.ts';

describe('worker start-up inputs', () => {
  test.each([
    [undefined, {}],
    ['', {}],
    ['not json', {}],
    ['[1,2]', {}],
    ['null', {}],
    ['{"127.0.0.1:0":4433}', { '127.0.0.1:0': 4433 }],
    ['{"a:1":0,"b:2":70000,"c:3":1.5,"d:4":"80","e:5":443}', { 'e:5': 443 }],
  ])('shared ports %p', (text, want) => {
    expect(parseSharedPorts(text)).toEqual(want);
  });

  test.each([
    [null, false],
    ['x', false],
    [{}, false],
    [{ type: 3 }, false],
    [{ type: 'listening' }, true],
  ])('isMessage(%p) = %p', (m, want) => {
    expect(isMessage(m)).toBe(want);
  });

  test.each([
    [undefined, undefined],
    ['1', 1],
    ['4', 4],
    ['64', 64],
    ['auto', 2],
    ['0', 'error'],
    ['65', 'error'],
    ['1.5', 'error'],
    ['two', 'error'],
  ])('--workers %p', (value, want) => {
    const got = parseWorkersOption(value, 2);
    expect(typeof got === 'object' ? 'error' : got).toBe(want as number | undefined | 'error');
  });

  test('the worker command repeats the runtime flags and the arguments; a compiled binary is its own entry', () => {
    expect(workerCommand('/bin/bun', ['--smol'], ['/bin/bun', '/app/src/main.ts', 'run', '-c', 'x.yaml'])).toEqual([
      '/bin/bun',
      '--smol',
      '/app/src/main.ts',
      'run',
      '-c',
      'x.yaml',
    ]);
    expect(workerCommand('/usr/bin/spooky', [], ['/usr/bin/spooky', '/$bunfs/root/spooky', 'run', '-c', 'x.yaml'])).toEqual([
      '/usr/bin/spooky',
      'run',
      '-c',
      'x.yaml',
    ]);
  });
});
