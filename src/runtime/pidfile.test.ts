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

  test.each<[string, string[]]>([
    ['sleep', ['sleep', '30']],
    ['tail on a Spooky log', ['tail', '-f', join(tmpdir(), 'spooky-access.log')]],
    ['another Bun program', [process.execPath, '-e', 'setInterval(() => {}, 1000)', 'spooky']],
  ])('a pid file older than the process it names (%s) is stale: that process is never signalled', async (_name, command) => {
    if (command[0] === 'tail') writeFileSync(command[2] as string, '');
    const sleeper = Bun.spawn(command);
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

  test('a process started with --pid-file naming the file is trusted even when the clock makes it look younger', async () => {
    const path = join(dir, 'trusted.pid');
    const child = Bun.spawn(
      [process.execPath, '-e', "process.on('SIGHUP', () => process.exit(0)); console.log('ready'); setInterval(() => {}, 1000);", '--pid-file', path],
      { stdout: 'pipe' },
    );
    try {
      // readiness line: the SIGHUP handler is installed
      const reader = child.stdout.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain('ready');
      writeFileSync(path, `${child.pid}\n`);
      const hourAgo = new Date(Date.now() - 3_600_000);
      utimesSync(path, hourAgo, hourAgo); // as if the wall clock had been stepped forward since
      if (processStartMs(child.pid) === undefined) return; // no /proc here
      expect(signalPidFile(path, 'SIGHUP')).toBe(child.pid);
      expect(await child.exited).toBe(0);
    } finally {
      child.kill();
    }
  });
});
