import { describe, expect, test } from 'bun:test';
import { availableParallelism } from 'node:os';
import { loadConfigText } from '../config/load.ts';
import { autoWorkers } from '../config/resolve.ts';
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

  test('auto means one worker per available CPU, 1..64, for the config key and the flag alike', () => {
    for (const [cpus, want] of [
      [0, 1],
      [2, 2],
      [64, 64],
      [128, 64],
    ] as const) {
      expect([autoWorkers(cpus), parseWorkersOption('auto', cpus)]).toEqual([want, want]);
    }
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

describe('the workers key', () => {
  const yaml = (w: string) =>
    `${w}listen: { port: 0, tls: { cert: c.pem, key: k.pem } }\nupstream:\n  a:\n    backends: [{ id: a, address: "http://127.0.0.1:9" }]\n`;

  test.each([
    ['', 1],
    ['workers: 1\n', 1],
    ['workers: 4\n', 4],
    ['workers: 64\n', 64],
    ['workers: auto\n', availableParallelism()],
  ])('%p resolves to %p', (line, want) => {
    const r = loadConfigText(yaml(line), 'w.yaml', '/');
    expect(r.ok && r.config.workers).toBe(want);
  });

  test.each(['workers: 0\n', 'workers: 65\n', 'workers: 1.5\n', 'workers: many\n'])('%p is an error at its line', (line) => {
    const r = loadConfigText(yaml(line), 'w.yaml', '/');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatchObject({ line: 1, path: 'workers' });
  });
});
