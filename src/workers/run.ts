/**
 * `spooky run` with more than one worker: the supervisor's process glue (logging, signals, pid file, exit
 * codes), and how the worker command line is derived from this process's.
 */
import { autoWorkers } from '../config/resolve.ts';
import { MAX_WORKERS } from '../config/schema.ts';
import type { Config } from '../config/types.ts';
import { systemClock } from '../lib/clock.ts';
import { createLogging } from '../observability/logger.ts';
import { exitAfterLogClosed, logUncaughtErrors, reportStartFailed, writePidFileOrReport } from '../runtime/process.ts';
import { handOverStartupSignals } from '../runtime/startup-signals.ts';
import { Supervisor, WorkerStartError } from './supervisor.ts';

/** Parses `--workers N|auto`; undefined when absent, an error message when invalid. */
export function parseWorkersOption(value: string | undefined, parallelism: number): number | undefined | { error: string } {
  if (value === undefined) return undefined;
  if (value === 'auto') return autoWorkers(parallelism);
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) return { error: `--workers must be 1..${MAX_WORKERS} or auto, got "${value}"` };
  return n;
}

/**
 * The command that starts a worker: this runtime with its flags and this program with its arguments (a
 * compiled `spooky` binary is its own program: its embedded entry is not passed again).
 */
export function workerCommand(execPath: string, execArgv: readonly string[], argv: readonly string[]): string[] {
  const compiled = (argv[1] ?? '').startsWith('/$bunfs/');
  return compiled ? [execPath, ...argv.slice(2)] : [execPath, ...execArgv, ...argv.slice(1)];
}

/** What the supervisor process is started with. */
export interface SupervisorRunOptions {
  /** The validated config with the command-line overrides applied. */
  config: Config;
  /** Config warnings to log once logging is set up. */
  warnings: string[];
  /** The config file (re-read on every reload). */
  configPath: string;
  /** The command-line overrides, applied to every config read on reload. */
  overrides: (c: Config) => Config;
  /** Number of worker processes (2..64). */
  count: number;
  /** Where to write the supervisor's pid once every worker listens; undefined for none. */
  pidFile: string | undefined;
  /** Exit codes. */
  exit: { ok: number; startFailed: number };
}

/** Runs this process as the supervisor of `count` workers. */
export async function runSupervisor(o: SupervisorRunOptions): Promise<void> {
  const { log, files } = createLogging(o.config.log);
  for (const w of o.warnings) log.warn({ event: 'config_warning' }, w);
  const supervisor = new Supervisor({
    config: o.config,
    configPath: o.configPath,
    overrides: o.overrides,
    count: o.count,
    command: workerCommand(process.execPath, process.execArgv, process.argv),
    log,
    clock: systemClock,
  });
  const exit = (code: number) => exitAfterLogClosed(files, code);
  // Until the workers listen, a reload request is ignored (with those main.ts noted while the modules loaded).
  const removeEarly = handOverStartupSignals(() => log.warn({ event: 'reload_ignored', signal: 'SIGHUP' }, 'SIGHUP during start-up: ignored'));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ event: 'shutdown', signal }, 'second signal: workers exit now, cutting whatever is in flight');
      void supervisor.exitNow().then(() => exit(o.exit.ok));
      return;
    }
    stopping = true;
    void supervisor.shutdown(signal).then(() => {
      log.info({ event: 'stopped' }, 'every worker has exited');
      exit(o.exit.ok);
    });
  };
  // logrotate: rename the file(s), then SIGUSR1 (whose default action would end the process): the supervisor
  // reopens its own log files and every worker reopens its own.
  process.on('SIGUSR1', () => {
    files.reopen();
    supervisor.signalWorkers('SIGUSR1');
  });
  // Ctrl-C during start-up must not leave workers behind.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await supervisor.start();
  } catch (e) {
    const code = e instanceof WorkerStartError ? e.exitCode : o.exit.startFailed;
    reportStartFailed(log, [(e as Error).message], 'spooky: ');
    process.exit(code === 0 ? o.exit.startFailed : code);
  }
  removeEarly();
  process.on('SIGHUP', () => void supervisor.reload('signal', { signal: 'SIGHUP' }));
  if (o.pidFile && !writePidFileOrReport(o.pidFile, log)) {
    await supervisor.exitNow();
    exit(o.exit.startFailed);
  }
  logUncaughtErrors(log);
}
