import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processStartMs, readPidFile, signalPidFile, writePidFile } from './pidfile.ts';

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

  test('a symlink planted at the old predictable temp name is not followed: the file it points to is untouched', () => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'IMPORTANT CONTENT');
    const path = join(dir, 'planted.pid');
    symlinkSync(victim, `${path}.${process.pid}.tmp`);
    writePidFile(path);
    expect(readFileSync(victim, 'utf8')).toBe('IMPORTANT CONTENT');
    expect(readPidFile(path)).toBe(process.pid);
  });

  test('processStartMs reads when a process started (Linux /proc)', () => {
    const started = processStartMs(process.pid);
    if (started === undefined) return; // no /proc here
    expect(Math.abs(started - performance.timeOrigin)).toBeLessThan(3000);
  });

  test('a pid file older than the process it names is stale: that process is never signalled', async () => {
    const sleeper = Bun.spawn(['sleep', '30']);
    try {
      const path = join(dir, 'stale.pid');
      writeFileSync(path, `${sleeper.pid}\n`);
      const hourAgo = new Date(Date.now() - 3_600_000);
      utimesSync(path, hourAgo, hourAgo); // written by a Spooky that died an hour ago
      if (processStartMs(sleeper.pid) === undefined) return; // no /proc here
      expect(() => signalPidFile(path, 'SIGHUP')).toThrow(/started after the pid file was written: the file is stale/);
      expect(sleeper.exitCode).toBeNull();
      expect(sleeper.killed).toBe(false);
    } finally {
      sleeper.kill();
    }
  });
});
