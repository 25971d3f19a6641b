import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FileWatcher } from './watch.ts';

const log = pino({ level: 'silent' });
let watcher: FileWatcher | undefined;
afterEach(() => watcher?.close());

/** Resolves with the next batch of changed files, or rejects after `ms`. */
function nextChange(calls: string[][], ms: number): Promise<string[]> {
  const start = calls.length;
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (calls.length > start) resolve(calls[start] as string[]);
      else if (Date.now() > deadline) reject(new Error(`no change reported within ${ms} ms`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

describe('FileWatcher', () => {
  test('several quick writes give one change, after the debounce', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-watch-'));
    const file = join(dir, 'spooky.yaml');
    writeFileSync(file, 'a');
    const calls: string[][] = [];
    watcher = new FileWatcher((files) => calls.push(files), log);
    watcher.update([file], 100);
    const t0 = Date.now();
    writeFileSync(file, 'bb');
    writeFileSync(file, 'ccc');
    expect(await nextChange(calls, 3000)).toEqual([file]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(calls).toHaveLength(1);
  });

  test('a file replaced by rename (as editors and certificate tools do) is seen; other files in the folder are not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-watch-'));
    const cert = join(dir, 'cert.pem');
    writeFileSync(cert, 'one');
    const calls: string[][] = [];
    watcher = new FileWatcher((files) => calls.push(files), log);
    watcher.update([cert], 50);
    writeFileSync(join(dir, 'unrelated.txt'), 'x');
    writeFileSync(join(dir, 'cert.pem.tmp'), 'two');
    renameSync(join(dir, 'cert.pem.tmp'), cert);
    expect(await nextChange(calls, 3000)).toEqual([cert]);
    expect(calls).toHaveLength(1);
  });

  test('an empty list stops watching', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-watch-'));
    const file = join(dir, 'f');
    writeFileSync(file, 'a');
    const calls: string[][] = [];
    watcher = new FileWatcher((files) => calls.push(files), log);
    watcher.update([file], 20);
    watcher.update([], 20);
    expect(watcher.files()).toEqual([]);
    writeFileSync(file, 'b');
    await expect(nextChange(calls, 300)).rejects.toThrow('no change reported');
  });
});
