/**
 * SIGHUP while Spooky starts (a deploy tool's reload racing a restart) must not end it. Loading Spooky's modules
 * takes most of the start-up; until a SIGHUP handler is installed, the signal's default action ends the process
 * (exit 129). `src/main.ts` installs a guard before it loads anything else. Linux only: the handler is seen in
 * `/proc/PID/status` (`SigCgt`, bit 0 is SIGHUP).
 */
import { afterAll, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { testCertificate } from '../support/certs.ts';
import { Child } from '../support/process.ts';

const ROOT = resolve(import.meta.dir, '../..');
const children: Child[] = [];
afterAll(() => {
  for (const c of children) c.proc.kill('SIGKILL');
});

/** True once process `pid` has a handler for SIGHUP; false while it has none or is gone. */
function catchesSighup(pid: number): boolean {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('SigCgt:'));
    return line !== undefined && (BigInt(`0x${line.slice(7).trim()}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

for (const workers of [1, 2]) {
  test(`workers: ${workers}: a SIGHUP as soon as a handler is in place is noted and ignored; the handler comes long before listening`, async () => {
    const { cert, key, dir } = await testCertificate();
    const config = join(dir, `startup-signals-${workers}.yaml`);
    writeFileSync(
      config,
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${cert}", key: "${key}" } }\nupstream:\n  a:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`,
    );
    const started = performance.now();
    const proc = Bun.spawn([process.execPath, 'src/main.ts', 'run', '--config', config, '--admin-port', '0', '--workers', String(workers)], {
      cwd: ROOT,
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const child = new Child(proc);
    children.push(child);
    const deadline = started + 10_000;
    while (!catchesSighup(proc.pid) && performance.now() < deadline) await Bun.sleep(1);
    const guardedAfter = performance.now() - started;
    expect(catchesSighup(proc.pid)).toBe(true);
    child.signal('SIGHUP');
    await child.waitFor((r) => r.event === 'listening', 15_000, 'listening');
    const listeningAfter = performance.now() - started;
    // Before the guard, the first handler came just before `listening` (after every module had loaded).
    expect(guardedAfter).toBeLessThan(listeningAfter / 2);
    expect(proc.exitCode).toBeNull();
    expect(child.lines.some((r) => r.event === 'reload_ignored' && r.signal === 'SIGHUP')).toBe(true);
    expect(child.lines.some((r) => r.event === 'config_error')).toBe(false);
    child.signal('SIGTERM');
    expect(await child.exited).toBe(0);
  }, 30_000);
}
