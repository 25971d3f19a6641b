/**
 * A worker process (started by the supervisor, see `supervisor.ts`): the normal {@link Runtime} with its
 * traffic listeners on `SO_REUSEPORT` ports shared with the other workers, no admin listener and no file
 * watching (the supervisor has both), and a readiness record `worker_listening` instead of `listening`.
 *
 * Control comes over IPC: admin queries, reloads (in-process; a worker is never replaced on reload),
 * `shutdown` (drain, exit 0) and `exit_now`. SIGHUP and SIGINT are ignored (a terminal's Ctrl-C reaches the
 * whole process group; the supervisor forwards it once); SIGTERM sent to a worker directly drains it. When the
 * supervisor goes away (IPC disconnect), the worker drains and exits.
 */

import { listenerId } from '../config/diff.ts';
import type { Config, ListenerConfig } from '../config/types.ts';
import { systemClock } from '../lib/clock.ts';
import { systemRandom } from '../lib/random.ts';
import { createLogging, type Logger } from '../observability/logger.ts';
import { exitAfterLogClosed, logUncaughtErrors, reportStartFailed, startProblems } from '../runtime/process.ts';
import { Runtime } from '../runtime/runtime.ts';
import { handOverStartupSignals } from '../runtime/startup-signals.ts';
import {
  type FromWorker,
  isMessage,
  PORTS_ENV,
  parseSharedPorts,
  type SharedPorts,
  type ToWorker,
  WORKER_ENV,
  type WorkerListener,
  type WorkerOp,
} from './protocol.ts';

/** The index of this process when it is a worker, else undefined. */
export function workerIndex(): number | undefined {
  const v = process.env[WORKER_ENV];
  if (v === undefined || typeof process.send !== 'function') return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** What a worker is started with. */
export interface WorkerOptions {
  /** The loaded config with the command-line overrides applied. */
  config: Config;
  /** The config file (re-read on reload). */
  configPath: string;
  /** The command-line overrides, applied to every config read on reload. */
  overrides: (c: Config) => Config;
  /** This worker's index. */
  index: number;
  /** Exit code for "could not start". */
  startFailedCode: number;
}

/** The settings a worker always runs with, whatever the file says. */
function workerSettings(c: Config): Config {
  return { ...c, admin: { ...c.admin, enabled: false }, reload: { ...c.reload, watch: false } };
}

function send(m: FromWorker): void {
  try {
    process.send?.(m);
  } catch {
    // the supervisor is gone; the disconnect handler drains this worker
  }
}

function listenersOf(runtime: Runtime): WorkerListener[] {
  const status = runtime.status() as { listeners: WorkerListener[] };
  return status.listeners.map((l) => ({ id: l.id, address: l.address, port: l.port }));
}

/** Sum of `spooky_requests_total` in prom-client JSON. */
function requestsTotal(json: { name: string; values: { value: number }[] }[]): number {
  const m = json.find((x) => x.name === 'spooky_requests_total');
  return m ? m.values.reduce((a, v) => a + v.value, 0) : 0;
}

/** Runs this process as worker `opts.index`; resolves once it listens (and has told the supervisor). */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  const { log: root, access, samples, files } = createLogging(opts.config.log);
  const log: Logger = root.child({ worker: opts.index });
  files.attach(log);
  let shared: SharedPorts = parseSharedPorts(process.env[PORTS_ENV]);
  const failStart: (e: unknown) => never = (e) => {
    reportStartFailed(log, startProblems(e), `spooky: worker ${opts.index}: `);
    process.exit(opts.startFailedCode);
  };
  let runtime: Runtime;
  try {
    // Building the runtime reads files too (upstream TLS files): a failure is a start failure, as in one process.
    runtime = new Runtime({
      config: workerSettings(opts.config),
      configPath: opts.configPath,
      log,
      access,
      samples,
      logFiles: files,
      clock: systemClock,
      random: systemRandom,
      overrides: (c) => workerSettings(opts.overrides(c)),
      sharedPort: (l: ListenerConfig) => shared[listenerId(l)],
      readyEvent: 'worker_listening',
    });
  } catch (e) {
    failStart(e);
  }
  const exit = (code: number) => exitAfterLogClosed(files, code);
  let stopping = false;
  const drain = (why: string) => {
    if (stopping) return;
    stopping = true;
    void runtime.shutdown(why).then(({ cut }) => {
      log.info({ event: 'stopped', cut_requests: cut }, 'worker stopped');
      exit(0);
    });
  };
  // Until here main.ts's guard kept SIGHUP from ending the worker; it hands over the ones it noted.
  handOverStartupSignals(() => log.info({ event: 'signal_ignored', signal: 'SIGHUP' }, 'SIGHUP goes to the supervisor, which reloads every worker'));
  process.on('SIGINT', () => log.debug({ event: 'signal_ignored', signal: 'SIGINT' }, 'SIGINT is handled by the supervisor'));
  process.on('SIGTERM', () => (stopping ? exit(0) : drain('SIGTERM')));
  process.on('SIGUSR1', () => files.reopen());
  process.on('disconnect', () => drain('supervisor_gone'));

  const answer = async (req: WorkerOp): Promise<unknown> => {
    switch (req.op) {
      case 'status': {
        const json = await runtime.telemetry.prom.json();
        return { pid: process.pid, requests_total: requestsTotal(json), ...(runtime.status() as object) };
      }
      case 'ready':
        return runtime.ready();
      case 'metrics':
        return runtime.telemetry.prom.json();
      case 'stats':
        return runtime.telemetry.stats();
      case 'config':
        return runtime.telemetry.config();
      case 'reload_refused':
        runtime.reloadRefusedElsewhere(req.trigger, req.errors);
        return true;
      case 'reload': {
        shared = req.ports;
        const result = await runtime.reload(req.trigger, req.meta);
        return { ...result, listeners_bound: listenersOf(runtime) };
      }
    }
  };
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    const msg = m as ToWorker;
    if (msg.type === 'shutdown') drain(msg.signal);
    else if (msg.type === 'exit_now') {
      log.warn({ event: 'shutdown' }, 'exiting now, cutting whatever is in flight');
      exit(0);
    } else if (msg.type === 'request') {
      answer(msg).then(
        (value) => send({ type: 'response', id: msg.id, ok: true, value }),
        (e) => send({ type: 'response', id: msg.id, ok: false, error: (e as Error).message }),
      );
    }
  });

  try {
    await runtime.start();
  } catch (e) {
    failStart(e);
  }
  logUncaughtErrors(log);
  send({ type: 'listening', pid: process.pid, listeners: listenersOf(runtime), generation: runtime.current().id });
}
