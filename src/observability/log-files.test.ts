import { afterEach, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { waitUntil } from '../../test/support/wait.ts';
import { LogFiles } from './log-files.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'spooky-logfiles-'));
  dirs.push(d);
  return d;
}

function lines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Resolves once the destination has opened its file (pino opens it asynchronously). */
function opened(dest: { once(event: 'ready', cb: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => dest.once('ready', () => resolve()));
}

describe('LogFiles', () => {
  test('after a rename, a reopen sends new lines to a new file at the path; no line lost or doubled', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    const dest = pino.destination({ dest: path, sync: false, mkdir: true });
    await opened(dest);
    const files = new LogFiles([{ path, dest }]);
    const log = pino({ base: undefined }, dest);
    files.attach(log);
    for (let i = 0; i < 500; i++) dest.write(`${JSON.stringify({ n: i })}\n`);
    renameSync(path, `${path}.1`);
    expect(files.reopen()).toEqual([path]);
    for (let i = 500; i < 1000; i++) dest.write(`${JSON.stringify({ n: i })}\n`);
    await waitUntil(() => files.reopens.success === 1, 5000, 'reopen');
    // pino's destination writes asynchronously (and its flush() does not wait): poll for the last line.
    await waitUntil(() => lines(path).some((l) => l === '{"n":999}'), 5000, 'the last line');
    dest.end();
    const all = [...lines(`${path}.1`), ...lines(path)].map((l) => JSON.parse(l) as { n?: number; event?: string });
    const ns = all.filter((r) => r.n !== undefined).map((r) => r.n);
    expect(ns).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(lines(path).length).toBeGreaterThan(0);
    expect(all.some((r) => r.event === 'log_reopen')).toBe(true);
  });

  test('close: every line logged before it is in the file once it resolves, the shared destination ended once', async () => {
    const dir = tempDir();
    const path = join(dir, 'spooky.log');
    const dest = pino.destination({ dest: path, sync: false, mkdir: true });
    await opened(dest);
    const files = new LogFiles([
      { path, dest },
      { path, dest },
    ]);
    const log = pino({ base: undefined }, dest);
    for (let i = 0; i < 2000; i++) log.info({ i }, 'line');
    log.info({ event: 'stopped' }, 'last');
    await files.close();
    const got = lines(path);
    expect(got.length).toBe(2001);
    expect(JSON.parse(got[2000] as string).event).toBe('stopped');
  });

  test('stdout is never reopened', () => {
    const reopened: string[] = [];
    const fake = {
      reopen: () => reopened.push('x'),
      on: () => undefined,
      end: () => undefined,
      listeners: () => [],
      removeListener: () => undefined,
    };
    const files = new LogFiles([{ path: undefined, dest: fake }]);
    expect(files.reopen()).toEqual([]);
    expect(reopened).toEqual([]);
  });

  test('one destination used twice (access and main log in one file) is reopened once', () => {
    let n = 0;
    const fake = { reopen: () => n++, on: () => undefined, end: () => undefined, listeners: () => [], removeListener: () => undefined };
    const files = new LogFiles([
      { path: '/x/a.log', dest: fake },
      { path: '/x/a.log', dest: fake },
    ]);
    files.reopen();
    expect(n).toBe(1);
  });

  test('a file that cannot be reopened is reported and the old one keeps the lines', async () => {
    const dir = tempDir();
    const sub = join(dir, 'logs');
    const path = join(sub, 'spooky.log');
    const dest = pino.destination({ dest: path, sync: false, mkdir: true });
    await opened(dest);
    const stderr: string[] = [];
    const files = new LogFiles([{ path, dest }], (l) => stderr.push(l));
    dest.write('before\n');
    await waitUntil(() => lines(path).length === 1, 5000, 'the first line');
    // The folder is moved away and a plain file put in its place: the path cannot be opened (nor created).
    renameSync(sub, `${sub}.old`);
    writeFileSync(sub, 'not a folder');
    files.reopen();
    await waitUntil(() => files.reopens.failure === 1, 5000, 'reopen failure');
    expect(stderr.join('')).toContain(`cannot reopen log file ${path}`);
    dest.write('after\n');
    const old = join(`${sub}.old`, 'spooky.log');
    await waitUntil(() => lines(old).length === 2, 5000, 'the line after the failed reopen');
    dest.end();
    expect(lines(old)).toEqual(['before', 'after']);
  });

  /** A log file as `createLogging` sets it up (pino over a SonicBoom, watched by LogFiles), whose path is then blocked. */
  async function blockedLog() {
    const dir = tempDir();
    const path = join(dir, 'spooky.log');
    const dest = pino.destination({ dest: path, sync: false, mkdir: true });
    await opened(dest);
    const stderr: string[] = [];
    const files = new LogFiles([{ path, dest }], (l) => stderr.push(l));
    const log = pino({ base: undefined }, dest);
    files.attach(log);
    log.info('before rotation');
    await waitUntil(() => lines(path).length === 1, 5000, 'the first line');
    renameSync(path, `${path}.1`);
    mkdirSync(path); // the log path cannot be opened now (EISDIR)
    return { path, dest, files, stderr, log };
  }

  test('a failed reopen is reported once: one log_reopen_failed and one stderr line (pino re-emits the error)', async () => {
    const { path, files, stderr, log } = await blockedLog();
    files.reopen();
    await waitUntil(() => files.reopens.failure === 1, 5000, 'reopen failure');
    log.info('after the failed reopen');
    await waitUntil(() => lines(`${path}.1`).some((l) => l.includes('after the failed reopen')), 5000, 'the line after the failure in the old file');
    expect(stderr).toHaveLength(1);
    const events = lines(`${path}.1`).map((l) => JSON.parse(l).event);
    expect(events).toEqual([undefined, 'log_reopen_failed', undefined]);
  });

  test('a successful reopen after a failed one closes the old file once (no EBADF from a second close)', async () => {
    const { path, files, stderr, log } = await blockedLog();
    log.info('a write in progress when the reopen begins'); // SonicBoom then adds its close listener later
    files.reopen();
    await waitUntil(() => files.reopens.failure === 1, 5000, 'reopen failure');
    rmdirSync(path);
    const before = stderr.length;
    files.reopen();
    await waitUntil(() => files.reopens.success === 1, 5000, 'reopen success');
    log.info('in the new file');
    await waitUntil(() => lines(path).some((l) => l.includes('in the new file')), 5000, 'a line in the new file');
    await waitUntil(async () => {
      await new Promise((r) => setImmediate(r));
      return true;
    });
    expect(stderr.slice(before)).toEqual([]);
    expect(lines(path).map((l) => JSON.parse(l).event)).not.toContain('log_error');
  });
});
