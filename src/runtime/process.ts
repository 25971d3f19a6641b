/**
 * Process glue shared by the three ways Spooky runs (single process in `main.ts`, supervisor in
 * `workers/run.ts`, worker in `workers/worker.ts`): reporting a failed start, writing the pid file, logging
 * uncaught errors instead of dying, and exiting once the log is written out.
 */
import { CertificateError } from '../listener/certs.ts';
import type { LogFiles } from '../observability/log-files.ts';
import type { Logger } from '../observability/logger.ts';
import { writePidFile } from './pidfile.ts';

/** Longest wait, in milliseconds, for the log to be written out before the process exits anyway. */
export const EXIT_FLUSH_MS = 3000;

/** The problems a failed start reports: every certificate problem, or the error's message. */
export function startProblems(e: unknown): string[] {
  return e instanceof CertificateError ? e.problems : [(e as Error).message];
}

/**
 * Reports a failed start: each problem as a fatal `start_failed` log record, the log flushed, then each on
 * stderr as `<stderrPrefix>cannot start: <problem>` (the prefix is e.g. `spooky: `). The caller exits.
 */
export function reportStartFailed(log: Logger, problems: readonly string[], stderrPrefix: string): void {
  for (const p of problems) log.fatal({ event: 'start_failed', err: p }, `cannot start: ${p}`);
  log.flush();
  for (const p of problems) process.stderr.write(`${stderrPrefix}cannot start: ${p}\n`);
}

/**
 * Writes this process's pid to `path`, warning when it named another process that still runs. On failure
 * logs it as fatal, writes it to stderr and returns false (the caller stops what it started and exits).
 */
export function writePidFileOrReport(path: string, log: Logger): boolean {
  try {
    const previous = writePidFile(path);
    if (previous) log.warn({ event: 'pid_file', path, previous_pid: previous }, `pid file ${path} named process ${previous}, which is still running; overwritten`);
    return true;
  } catch (e) {
    log.fatal({ event: 'start_failed', err: (e as Error).message }, `cannot write pid file ${path}`);
    log.flush();
    process.stderr.write(`spooky: cannot write pid file ${path}: ${(e as Error).message}\n`);
    return false;
  }
}

/** Logs uncaught exceptions and unhandled rejections (events `uncaught_exception`, `unhandled_rejection`) instead of ending the process. */
export function logUncaughtErrors(log: Logger): void {
  process.on('uncaughtException', (err) => log.error({ event: 'uncaught_exception', err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ event: 'unhandled_rejection', err }, 'unhandled rejection'));
}

/**
 * Exits with `code` once the log destinations are written out and closed ({@link LogFiles.close}), at most
 * {@link EXIT_FLUSH_MS} later (a reader of stdout that lags, as on a loaded machine, must not lose the last
 * records: the final `worker_exit`, `stopped`).
 */
export function exitAfterLogClosed(files: Pick<LogFiles, 'close'>, code: number): void {
  const timer = setTimeout(() => process.exit(code), EXIT_FLUSH_MS);
  const exit = () => {
    clearTimeout(timer);
    process.exit(code);
  };
  void files.close().then(exit, exit);
}
