import { describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPidFile, signalPidFile, writePidFile } from './pidfile.ts';

describe('pid file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spooky-pid-'));

  test('written with this process id and a newline', async () => {
    const path = join(dir, 'spooky.pid');
    expect(writePidFile(path)).toBeUndefined();
    expect(await Bun.file(path).text()).toBe(`${process.pid}\n`);
    expect(readPidFile(path)).toBe(process.pid);
  });

  test.each([
    ['missing', 'missing.pid', null, /cannot read pid file .*missing\.pid/],
    ['not a number', 'bad.pid', 'hello\n', /does not hold a process id/],
    ['a process that is gone', 'gone.pid', '2147483646\n', /no process with pid 2147483646/],
  ])('signalling through a pid file that is %s fails with a clear message', (_name, file, content, message) => {
    const path = join(dir, file);
    if (content !== null) writeFileSync(path, content);
    expect(() => signalPidFile(path, 'SIGHUP')).toThrow(message);
  });
});
