/**
 * The `spooky` command line: run, reload, validate, schema, --version, --help.
 *
 * Exit codes: 0 success; 1 invalid configuration; 2 usage error; 3 could not start (bind, certificates);
 * a drain that had to cut requests still exits 0 (the cut requests are logged).
 */

import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import pkg from '../package.json' with { type: 'json' };
import { configJsonSchema, formatIssue, loadConfigFile, loadConfigText } from './config/load.ts';
import { parseBindAddress } from './config/parse.ts';
import type { Config, LogLevel } from './config/types.ts';
import { defaultConfigText, ensureSelfSignedCertificate, startDemoBackend } from './demo/demo.ts';
import type { IngressController } from './kubernetes/controller.ts';
import { systemClock } from './lib/clock.ts';
import { systemRandom } from './lib/random.ts';
import { CertificateError, loadListenerCertificates } from './listener/certs.ts';
import type { LogFiles } from './observability/log-files.ts';
import { createLogging, type Logger, logFileProblems } from './observability/logger.ts';
import { connectionUrl } from './redis/store.ts';
import { signalPidFile } from './runtime/pidfile.ts';
import { exitAfterLogClosed, logUncaughtErrors, reportStartFailed, startProblems, writePidFileOrReport } from './runtime/process.ts';
import { Runtime } from './runtime/runtime.ts';
import { handOverStartupSignals } from './runtime/startup-signals.ts';
import { upstreamTlsProblems } from './upstream/factory.ts';
import { parseWorkersOption, runSupervisor } from './workers/run.ts';
import { runWorker, workerIndex } from './workers/worker.ts';

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, configInvalid: 1, usage: 2, startFailed: 3 } as const;

const HELP = `spooky ${pkg.version}: an HTTP/3 load balancer

Usage:
  spooky                               run the built-in demo (embedded config, demo backends)
  spooky run --config FILE [options]   run with a config file
  spooky reload --pid-file FILE        make the running Spooky re-read its config (sends SIGHUP)
  spooky validate --config FILE        check a config file and the files it names; print every error (exit 0 or 1)
  spooky schema                        print the JSON Schema of the config file
  spooky hash-password [--algorithm A] read a password on stdin, print its hash for basic_auth (bcrypt or argon2id)
  spooky --version | --help

Options for run:
  -c, --config FILE      YAML config file
  -p, --port N           override the port of the (first) listener
  -a, --address A        override the address of the (first) listener
  -l, --log-level L      trace | debug | info | warn | error | silent
      --admin-port N     override the admin listener port (0 = any free port)
      --pid-file FILE    write the process id to FILE once listening; removed on exit
      --workers N|auto   worker processes sharing the port (overrides the workers key; needs --config)

Signals: SIGHUP reloads the config file; SIGUSR1 reopens the log file(s) (log rotation);
SIGTERM/SIGINT drain and exit (a second one exits at once).
Exit codes: 0 ok, 1 invalid config (reload: could not signal), 2 usage error, 3 could not start.
`;

function usage(message: string): never {
  process.stderr.write(`spooky: ${message}\n\n${HELP}`);
  process.exit(EXIT.usage);
}

function parseCli() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        address: { type: 'string', short: 'a' },
        'log-level': { type: 'string', short: 'l' },
        'admin-port': { type: 'string' },
        'pid-file': { type: 'string' },
        workers: { type: 'string' },
        algorithm: { type: 'string' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    usage((e as Error).message);
  }
}

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  // Digits only: `Number("")` is 0, so an unset shell variable (`--port "$PORT"`) would mean "any port".
  const n = /^[0-9]{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n > 65535) usage(`--${name} must be a port number (0..65535), got "${value}"`);
  return n;
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/** Applies --port/--address/--log-level/--admin-port to a loaded config. */
function applyOverrides(config: Config, values: ReturnType<typeof parseCli>['values']): Config {
  const port = intOption('port', values.port);
  const adminPort = intOption('admin-port', values['admin-port']);
  const level = values['log-level'];
  if (level !== undefined && !LEVELS.has(level)) usage(`--log-level must be one of ${[...LEVELS].join(', ')}`);
  let address: string | undefined;
  if (values.address !== undefined) {
    const parsed = parseBindAddress(values.address);
    if (!parsed.ok) usage(`--address: ${parsed.message}`);
    address = parsed.value;
  }
  const [first, ...rest] = config.listeners;
  const listeners = first ? [{ ...first, port: port ?? first.port, address: address ?? first.address }, ...rest] : config.listeners;
  return {
    ...config,
    listeners,
    admin: { ...config.admin, port: adminPort ?? config.admin.port },
    log: { ...config.log, level: (level as LogLevel | undefined) ?? config.log.level },
  };
}

/** Every problem with the listeners' certificate and key files (unreadable, not PEM, a key that does not match). */
function listenerCertificateProblems(config: Config): string[] {
  const problems: string[] = [];
  for (const listener of config.listeners) {
    try {
      loadListenerCertificates(listener);
    } catch (e) {
      problems.push(...(e instanceof CertificateError ? e.problems : [(e as Error).message]));
    }
  }
  return problems;
}

/** The Redis password file, when one is named and cannot be read. */
function redisProblems(config: Config): string[] {
  if (config.redis === undefined) return [];
  try {
    connectionUrl(config.redis);
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

async function loadOrExit(path: string): Promise<{ config: Config; warnings: string[] }> {
  const result = await loadConfigFile(path);
  const warnings = result.warnings.map(formatIssue);
  if (!result.ok) {
    // warnings and errors together, in file order
    const all = [...result.warnings, ...result.errors].sort((a, b) => a.line - b.line || a.column - b.column);
    for (const issue of all) process.stderr.write(`${formatIssue(issue)}\n`);
    process.stderr.write(`spooky: ${path}: ${result.errors.length} error(s); not started\n`);
    process.exit(EXIT.configInvalid);
  }
  return { config: result.config, warnings };
}

function installSignals(runtime: Runtime, log: Logger, files: LogFiles, onStop?: () => void): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ event: 'shutdown', signal }, 'second signal: exiting now, cutting whatever is in flight');
      exitAfterLogClosed(files, EXIT.ok);
      return;
    }
    stopping = true;
    onStop?.();
    void runtime.shutdown(signal).then(({ cut }) => {
      log.info({ event: 'stopped', cut_requests: cut }, 'stopped');
      exitAfterLogClosed(files, EXIT.ok);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void runtime.reload('signal', { signal: 'SIGHUP' }));
}

async function run(
  config: Config,
  warnings: string[],
  configPath: string | undefined,
  overrides: (c: Config) => Config,
  pidFile: string | undefined,
  banner?: (ports: { listeners: number[]; admin: number | null }) => string,
): Promise<void> {
  const { log, access, samples, files } = createLogging(config.log);
  // logrotate: rename the file(s), then SIGUSR1 (whose default action would end the process).
  process.on('SIGUSR1', () => files.reopen());
  for (const w of warnings) log.warn({ event: 'config_warning' }, w);
  // SIGHUP would end the process by default: until the listeners are up, a reload request is ignored.
  // (The handler also gets the SIGHUPs main.ts noted while the modules loaded.)
  const removeEarly = handOverStartupSignals(() => log.warn({ event: 'reload_ignored', signal: 'SIGHUP' }, 'SIGHUP during start-up: ignored'));
  let runtime: Runtime | undefined;
  let controller: IngressController | undefined;
  try {
    if (config.kubernetes && configPath) {
      // Ingress controller: the first config already has the Ingresses' pools (as ingress-nginx waits for its caches).
      // Loaded only here: the Kubernetes client library is large, and no other mode needs it.
      const { IngressController } = await import('./kubernetes/controller.ts');
      const ingress = new IngressController({ config: config.kubernetes, log, onChange: () => void runtime?.reload('kubernetes') });
      controller = ingress;
      await ingress.start();
      const composed = ingress.compose(configPath);
      if (composed.result.ok) config = overrides(composed.result.config);
      else
        for (const issue of composed.result.errors)
          log.error({ event: 'config_error', trigger: 'kubernetes' }, `${formatIssue(issue)} (starting with the config file alone)`);
    }
    // Building the runtime reads files too (an upstream ca_file): a failure is a start failure (exit 3).
    runtime = new Runtime({
      config,
      configPath,
      log,
      access,
      samples,
      logFiles: files,
      clock: systemClock,
      random: systemRandom,
      overrides,
      ...(controller
        ? {
            compose: (p: string) => (controller as IngressController).compose(p).result,
            afterReload: (c: Config) => void controller?.publishStatus(c),
          }
        : {}),
    });
    await runtime.start();
    void controller?.publishStatus(config);
  } catch (e) {
    void controller?.stop();
    reportStartFailed(log, startProblems(e), 'spooky: ');
    process.exit(EXIT.startFailed);
  }
  removeEarly();
  installSignals(runtime, log, files, () => void controller?.stop());
  if (pidFile && !writePidFileOrReport(pidFile, log)) {
    runtime.stopNow();
    process.exit(EXIT.startFailed);
  }
  logUncaughtErrors(log);
  if (banner) process.stderr.write(banner(runtime.boundPorts()));
}

async function runDemo(values: ReturnType<typeof parseCli>['values']): Promise<void> {
  const cert = await ensureSelfSignedCertificate();
  const a = startDemoBackend('A');
  const b = startDemoBackend('B');
  const text = defaultConfigText({ cert: cert.cert, key: cert.key, portA: a.port ?? 0, portB: b.port ?? 0 });
  const result = loadConfigText(text, '<embedded>', process.cwd());
  if (!result.ok) throw new Error(`embedded config is invalid: ${result.errors.map(formatIssue).join('; ')}`);
  const config = applyOverrides(result.config, values);
  // The ports actually bound (`--port 0` or `--admin-port 0` pick free ones).
  const banner = (bound: { listeners: number[]; admin: number | null }) => {
    const port = bound.listeners[0] ?? config.listeners[0]?.port ?? 8443;
    return `
Spooky demo is running: HTTP/3, HTTP/2 and HTTP/1.1 on https://127.0.0.1:${port}/
  balancing across two built-in demo backends (A on :${a.port}, B on :${b.port});
  self-signed certificate ${cert.created ? 'created' : 'reused'} at ${cert.cert}
Send an HTTP/3 request:
  npm run h3 -- https://127.0.0.1:${port}/ -k
  curl --http3-only -k https://127.0.0.1:${port}/      (curl built with HTTP/3)
${bound.admin === null ? 'Admin: off' : `Admin: http://127.0.0.1:${bound.admin}/status`}   Stop: Ctrl-C
`;
  };
  await run(config, result.warnings.map(formatIssue), undefined, (c) => applyOverrides(c, values), values['pid-file'], banner);
}

/** Runs a config file: as a worker (started by a supervisor), as the supervisor of N > 1 workers, or alone. */
async function runConfigured(path: string, values: ReturnType<typeof parseCli>['values'], workersFlag: number | undefined): Promise<void> {
  const { config, warnings } = await loadOrExit(path);
  const logProblems = logFileProblems(config.log);
  if (logProblems.length > 0) {
    for (const p of logProblems) process.stderr.write(`spooky: cannot start: ${p}\n`);
    process.exit(EXIT.startFailed);
  }
  const overrides = (c: Config) => applyOverrides(c, values);
  const index = workerIndex();
  if (index !== undefined) return runWorker({ config: overrides(config), configPath: path, overrides, index, startFailedCode: EXIT.startFailed });
  const count = workersFlag ?? config.workers;
  if (count > 1)
    return runSupervisor({ config: overrides(config), warnings, configPath: path, overrides, count, pidFile: values['pid-file'], exit: EXIT });
  return run(overrides(config), warnings, path, overrides, values['pid-file']);
}

async function main(): Promise<void> {
  const { values, positionals } = parseCli();
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.version) {
    process.stdout.write(`spooky ${pkg.version} (bun ${Bun.version})\n`);
    return;
  }
  const command = positionals[0];
  if (positionals.length > 1) usage(`unexpected argument "${positionals[1]}"`);
  // Check option values before anything is loaded, so a typo is a usage error (exit 2), not a config error.
  intOption('port', values.port);
  intOption('admin-port', values['admin-port']);
  if (values['log-level'] !== undefined && !LEVELS.has(values['log-level'])) usage(`--log-level must be one of ${[...LEVELS].join(', ')}`);
  if (values.address !== undefined) {
    const parsed = parseBindAddress(values.address);
    if (!parsed.ok) usage(`--address: ${parsed.message}`);
  }
  const workersFlag = parseWorkersOption(values.workers, availableParallelism());
  if (typeof workersFlag === 'object') usage(workersFlag.error);
  switch (command) {
    case undefined:
      if (values.config) return runConfigured(values.config, values, workersFlag);
      if ((workersFlag ?? 1) > 1) usage('--workers needs --config FILE (the built-in demo runs one process)');
      return runDemo(values);
    case 'run': {
      if (!values.config) usage('run needs --config FILE');
      return runConfigured(values.config, values, workersFlag);
    }
    case 'reload': {
      if (!values['pid-file']) usage('reload needs --pid-file FILE (the one given to spooky run)');
      try {
        const pid = signalPidFile(values['pid-file'], 'SIGHUP');
        process.stdout.write(
          `sent SIGHUP to spooky (pid ${pid}); the outcome is logged as an "audit" record (POST /reload on the admin listener answers with it)\n`,
        );
      } catch (e) {
        process.stderr.write(`spooky reload: ${(e as Error).message}\n`);
        process.exit(EXIT.configInvalid);
      }
      return;
    }
    case 'validate': {
      if (!values.config) usage('validate needs --config FILE');
      const { config, warnings } = await loadOrExit(values.config);
      for (const w of warnings) process.stderr.write(`${w}\n`);
      // Like `nginx -t`, the files the config names are read too: what a start would refuse is an error here.
      const problems = [...listenerCertificateProblems(config), ...upstreamTlsProblems(config), ...redisProblems(config)];
      if (problems.length > 0) {
        for (const p of problems) process.stderr.write(`spooky: ${values.config}: ${p}\n`);
        process.stderr.write(`spooky: ${values.config}: ${problems.length} error(s) in the files it names; not started\n`);
        process.exit(EXIT.configInvalid);
      }
      process.stdout.write(`${values.config}: configuration is valid\n`);
      return;
    }
    case 'schema':
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return;
    case 'hash-password': {
      const algorithm = values.algorithm ?? 'bcrypt';
      if (algorithm !== 'bcrypt' && algorithm !== 'argon2id') usage('--algorithm must be bcrypt or argon2id');
      // From stdin, never argv (which other users can read in the process list); the line end is not part of it.
      const lines = (await Bun.stdin.text()).split(/\r?\n/);
      const password = lines[0] ?? '';
      if (password === '') usage('hash-password reads the password on stdin (one line); it was empty');
      if (lines.slice(1).some((l) => l !== '')) usage('hash-password reads one line; stdin had more');
      const hash = await Bun.password.hash(password, algorithm === 'bcrypt' ? { algorithm, cost: 10 } : { algorithm });
      process.stdout.write(`${hash}\n`);
      return;
    }
    default:
      usage(`unknown command "${command}"`);
  }
}

await main();
