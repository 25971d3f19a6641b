/**
 * The pid file of `spooky run --pid-file F` and the signal sender of `spooky reload --pid-file F`.
 * The file holds the process id and a newline; it is written atomically (temp file + rename) once Spooky
 * listens, and removed when the process exits (only if it still holds this process's id).
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

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
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${process.pid}\n`, { mode: 0o644 });
  renameSync(tmp, path);
  process.on('exit', () => {
    try {
      if (readPidFile(path) === process.pid) unlinkSync(path);
    } catch {}
  });
  return previous;
}

/** Sends `signal` to the process named in the pid file; throws an Error with a clear message on failure. */
export function signalPidFile(path: string, signal: NodeJS.Signals): number {
  const pid = readPidFile(path);
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
