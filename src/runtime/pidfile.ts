/**
 * The pid file of `spooky run --pid-file F` and the signal sender of `spooky reload --pid-file F`.
 * The file holds the process id and a newline; it is written atomically (temp file + rename) once Spooky
 * listens, and removed when the process exits (only if it still holds this process's id).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** Reads a pid file; throws an Error with a clear message when it is missing or does not hold a pid. */
export function readPidFile(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read pid file ${path}: ${(e as Error).message}`);
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`pid file ${path} does not hold a process id (got ${JSON.stringify(text.trim().slice(0, 40))})`);
  return pid;
}

/** True when a process with this id exists (and may be signalled). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes this process's id to `path` and removes the file again when the process exits. Returns the id of a
 * still running process the file named before (a warning for the caller), if any.
 */
export function writePidFile(path: string): number | undefined {
  let previous: number | undefined;
  try {
    const old = readPidFile(path);
    if (old !== process.pid && alive(old)) previous = old;
  } catch {}
  // A fresh, unpredictable temp name created exclusively (O_EXCL: an existing file or symlink there fails the
  // write instead of being followed), so nobody who can write the folder can make Spooky overwrite a file.
  const tmp = `${path}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`;
  writeFileSync(tmp, `${process.pid}\n`, { mode: 0o644, flag: 'wx' });
  renameSync(tmp, path);
  process.on('exit', () => {
    try {
      if (readPidFile(path) === process.pid) unlinkSync(path);
    } catch {}
  });
  return previous;
}

/**
 * Wall-clock ms at which process `pid` started, from `/proc` (Linux); undefined where that cannot be read.
 * `/proc/<pid>/stat` field 22 is the start in clock ticks after boot (100 per second on Linux); `btime` in
 * `/proc/stat` is the boot time in seconds.
 */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the name in parentheses may hold spaces
    const ticks = Number(fields[19]); // field 22 overall; fields[0] is field 3
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return undefined;
    return btime * 1000 + ticks * 10;
  } catch {
    return undefined;
  }
}

/**
 * True when `/proc` shows `pid` started with `--pid-file` naming this very file (resolved against its working
 * folder): the Spooky that wrote it. Anything else (an editor or `tail` on a Spooky file, another Bun program)
 * is not.
 */
function startedWithPidFile(pid: number, path: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    const want = resolve(path);
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as string;
      const value = a === '--pid-file' ? args[i + 1] : a.startsWith('--pid-file=') ? a.slice('--pid-file='.length) : undefined;
      if (value !== undefined && resolve(cwd, value) === want) return true;
    }
    return false;
  } catch {
    return false;
  }
}

/** Sends `signal` to the process named in the pid file; throws an Error with a clear message on failure. */
export function signalPidFile(path: string, signal: NodeJS.Signals): number {
  const pid = readPidFile(path);
  // Spooky writes its pid file after it starts. A process that started later only reuses the id of one
  // that is gone (the file was left by a crash or `kill -9`): never signal it.
  // A process started with `--pid-file` naming this file is trusted even so: a wall clock stepped after the
  // file was written (NTP at boot) would otherwise make a live Spooky look too young.
  const started = processStartMs(pid);
  if (started !== undefined && started > statSync(path).mtimeMs + 2000 && !startedWithPidFile(pid, path)) {
    throw new Error(`pid ${pid} (from ${path}) started after the pid file was written: the file is stale and Spooky is not running`);
  }
  try {
    process.kill(pid, signal);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') throw new Error(`no process with pid ${pid} (from ${path}); is Spooky running, or is the pid file stale?`);
    if (code === 'EPERM') throw new Error(`not allowed to signal pid ${pid} (from ${path}); run as the user Spooky runs as`);
    throw new Error(`cannot signal pid ${pid} (from ${path}): ${(e as Error).message}`);
  }
  return pid;
}
