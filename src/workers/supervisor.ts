/**
 * The supervisor of `workers: N` (N > 1): the process started by the CLI validates the config, then runs N
 * worker processes (`Bun.spawn` of the same command with IPC, see `worker.ts`) that share the traffic ports
 * with `SO_REUSEPORT` (the kernel spreads connections over them). Worker 0 binds first (and picks the port when
 * it is `0`); the others then bind the ports it reports. The `listening` readiness record is logged once every
 * worker listens.
 *
 * - Admin listener: only here. `/healthz`, `/readyz` (every worker ready), `/metrics` (the workers' metrics
 *   aggregated, see `aggregate.ts`, plus `spooky_workers` and `spooky_worker_restarts_total`), `/status` (the
 *   workers with pid, start time, restarts and request count, and the pools with counts summed over the
 *   workers), `/stats` (the dashboard: the workers' documents merged), `/config`, `POST /reload`.
 * - Reload (SIGHUP, `spooky reload`, `POST /reload`, watched files): the config is validated here first (a
 *   broken one is refused once, with every error); then the first running worker reloads (so it binds any new
 *   port), then the others, in-process. Workers are never replaced on reload.
 * - SIGTERM/SIGINT: forwarded over IPC; every worker drains; the supervisor exits 0 when all have exited. A
 *   second signal makes them exit at once.
 * - A worker that dies is restarted (`restart-policy.ts` backs off in a crash loop), counted and logged
 *   (`worker_exit`, `worker_started`). Joining the port group re-hashes QUIC flows: see the README, "Workers".
 */
import type { Server, Subprocess } from 'bun';
import { Counter, Gauge, Registry } from 'prom-client';
import { type AdminSource, startAdmin } from '../admin/admin.ts';
import type { ConfigChanges } from '../config/diff.ts';
import { formatIssue, loadConfigFile } from '../config/load.ts';
import { redactConfig } from '../config/redact.ts';
import type { AdminConfig, Config } from '../config/types.ts';
import type { Clock } from '../lib/clock.ts';
import type { StatsSnapshot } from '../observability/live-stats.ts';
import type { Logger } from '../observability/logger.ts';
import type { AdminObservability } from '../observability/telemetry.ts';
import { type AuditRecord, AuditTrail, type WorkerReloadOutcome } from '../runtime/audit.ts';
import type { ListenerChange } from '../runtime/listeners.ts';
import type { ReloadMeta, ReloadTrigger } from '../runtime/runtime.ts';
import { FileWatcher, filesToWatch } from '../runtime/watch.ts';
import { aggregateMetrics, type MetricJson } from './aggregate.ts';
import { mergeStats } from './merge-stats.ts';
import {
  type FromWorker,
  isMessage,
  PORTS_ENV,
  type SharedPorts,
  type ToWorker,
  WORKER_ENV,
  type WorkerListener,
  type WorkerOp,
} from './protocol.ts';
import { INITIAL_RESTART_STATE, nextRestart, type RestartState } from './restart-policy.ts';

/** How the supervisor is set up. */
export interface SupervisorOptions {
  /** The validated config with the command-line overrides applied. */
  config: Config;
  /** The config file (validated here on every reload; each worker re-reads it). */
  configPath: string;
  /** The command-line overrides, applied to every config read on reload. */
  overrides: (c: Config) => Config;
  /** Number of workers (> 1). */
  count: number;
  /** The command that starts a worker (this program and its arguments). */
  command: string[];
  /** Logger. */
  log: Logger;
  /** Time source. */
  clock: Clock;
}

/** A worker process slot (the slot keeps its index and restart count across restarts). */
interface Slot {
  readonly index: number;
  proc: Subprocess | undefined;
  pid: number;
  startedAt: string;
  startedMono: number;
  restarts: number;
  listening: boolean;
  restartState: RestartState;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves on the next `listening` message; rejects when the process exits first. */
  waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  exited: Promise<number>;
  /** {@link Supervisor.configReads} when this worker was last started or brought up to date. */
  configReads: number;
}

/** A worker exited before it listened at start-up. */
export class WorkerStartError extends Error {
  /** An error with `message` for a worker that exited with `exitCode` before it listened. */
  constructor(
    message: string,
    /** The worker's exit code. */
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** The result of a coordinated reload (what `POST /reload` answers). */
export type SupervisorReloadResult = {
  ok: boolean;
  generation: number;
  errors?: string[];
  changes?: unknown;
  listeners?: unknown;
  workers?: WorkerReloadOutcome[];
};

interface WorkerReloadResult {
  ok: boolean;
  generation: number;
  errors?: string[];
  /** What a worker's runtime reports (JSON over the IPC channel). */
  changes?: ConfigChanges;
  listeners?: ListenerChange[];
  listeners_bound?: WorkerListener[];
}

const REQUEST_TIMEOUT_MS = 5000;
const RELOAD_TIMEOUT_MS = 60_000;

/** Runs and watches the worker processes; serves the admin listener. */
export class Supervisor implements AdminSource, AdminObservability {
  private readonly slots: Slot[] = [];
  private ports: SharedPorts = {};
  private listeners: WorkerListener[] = [];
  private current: Config;
  private generation = 1;
  /** How many reloads have read the config file (orders a worker's start against the reloads). */
  private configReads = 0;
  /** {@link configReads} of the latest reload the workers applied: a worker started before it catches up. */
  private appliedReads = 0;
  private loadedAt: number;
  private admin: Server<unknown> | undefined;
  private started = false;
  private draining = false;
  private readonly pending = new Map<
    number,
    { slot: Slot; resolve: (v: unknown) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }
  >();
  private nextId = 1;
  private readonly counts = { ok: 0, error: 0 };
  /** Its reloads and shutdown, for /status (the workers keep their own, which /status no longer shows). */
  private readonly audit = new AuditTrail();
  private reloadChain: Promise<unknown> = Promise.resolve();
  private readonly watcher: FileWatcher;
  private readonly log: Logger;
  /** The supervisor's own series (merged into `/metrics`). */
  readonly registry = new Registry();
  private readonly restartsCounter: Counter;

  /** A supervisor for `opts.count` workers; nothing runs until {@link Supervisor.start}. */
  constructor(private readonly opts: SupervisorOptions) {
    this.log = opts.log;
    this.current = opts.config;
    this.loadedAt = opts.clock.wallNow();
    const self = this;
    this.restartsCounter = new Counter({
      name: 'spooky_worker_restarts_total',
      help: 'Worker processes restarted after they died.',
      registers: [this.registry],
    });
    new Gauge({
      name: 'spooky_workers',
      help: 'Worker processes running and listening.',
      registers: [this.registry],
      collect() {
        this.set(self.slots.filter((s) => s.listening).length);
      },
    });
    new Counter({
      name: 'spooky_config_reloads_total',
      help: 'Config reload attempts by result: success (a new generation runs) or failure (refused; the running config stayed).',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ result: 'success' }, self.counts.ok);
        this.inc({ result: 'failure' }, self.counts.error);
      },
    });
    this.watcher = new FileWatcher((files) => void this.reload('file', { files }), this.log);
  }

  /**
   * Starts worker 0, then the others on the ports it bound; then the admin listener; then logs the `listening`
   * record. Throws a {@link WorkerStartError} (after stopping the workers) when a worker cannot start.
   */
  async start(): Promise<void> {
    try {
      await this.spawn(this.newSlot(0));
      this.ports = Object.fromEntries(this.listeners.map((l) => [l.id, l.port]));
      const rest = [];
      for (let i = 1; i < this.opts.count; i++) rest.push(this.spawn(this.newSlot(i)));
      await Promise.all(rest);
      const cfg = this.current;
      if (cfg.admin.enabled) this.admin = startAdmin(this.adminConfig(cfg.admin), this, this);
    } catch (e) {
      this.draining = true;
      for (const s of this.slots) s.proc?.kill('SIGKILL');
      await Promise.all(this.slots.map((s) => s.exited));
      throw e;
    }
    this.started = true;
    this.syncWatcher();
    this.log.info(
      {
        event: 'listening',
        listeners: this.listeners.map((l) => ({ address: l.address, port: l.port, protocols: ['h3', 'h2', 'http/1.1'] })),
        admin: this.admin ? { address: this.current.admin.address, port: this.admin.port } : null,
        // Every worker binds it (a fixed port: port 0 with workers is a config error).
        http_redirect: this.current.http_redirect
          ? { address: this.current.http_redirect.address ?? this.current.listeners[0]?.address ?? '0.0.0.0', port: this.current.http_redirect.port }
          : null,
        generation: this.generation,
        pools: this.current.pools.map((p) => p.name),
        workers: this.slots.map((s) => ({ worker: s.index, pid: s.pid })),
      },
      `spooky is listening (${this.opts.count} workers)`,
    );
  }

  private newSlot(index: number): Slot {
    const slot: Slot = {
      index,
      proc: undefined,
      pid: 0,
      startedAt: '',
      startedMono: 0,
      restarts: 0,
      listening: false,
      restartState: INITIAL_RESTART_STATE,
      restartTimer: undefined,
      waiter: undefined,
      exited: Promise.resolve(0),
      configReads: 0,
    };
    this.slots[index] = slot;
    return slot;
  }

  /** Starts the slot's process; resolves once it listens, rejects if it exits first. */
  private spawn(slot: Slot): Promise<void> {
    const t0 = this.opts.clock.now();
    // The worker reads the config file as it starts: it is up to date with every reload that read it before.
    slot.configReads = this.configReads;
    const listening = new Promise<void>((resolve, reject) => {
      slot.waiter = { resolve, reject };
    });
    let onExit: (code: number) => void = () => {};
    slot.exited = new Promise<number>((r) => {
      onExit = r;
    });
    const proc = Bun.spawn(this.opts.command, {
      env: { ...process.env, [WORKER_ENV]: String(slot.index), [PORTS_ENV]: JSON.stringify(this.ports) },
      stdin: 'ignore',
      stdout: 'inherit',
      stderr: 'inherit',
      ipc: (m) => this.onMessage(slot, m),
      onExit: (_p, code, signal) => {
        this.onExit(slot, proc, code, signal);
        onExit(code ?? 1);
      },
    });
    slot.proc = proc;
    slot.pid = proc.pid;
    slot.startedAt = new Date(this.opts.clock.wallNow()).toISOString();
    slot.startedMono = t0;
    slot.listening = false;
    return listening.then(() => {
      this.log.info(
        { event: 'worker_started', worker: slot.index, pid: proc.pid, restarts: slot.restarts, ms: Math.round(this.opts.clock.now() - t0) },
        `worker ${slot.index} listening (pid ${proc.pid})`,
      );
    });
  }

  private onMessage(slot: Slot, m: unknown): void {
    if (!isMessage(m)) return;
    const msg = m as FromWorker;
    if (msg.type === 'listening') {
      slot.listening = true;
      if (slot.index === 0 && this.listeners.length === 0) this.listeners = msg.listeners;
      slot.waiter?.resolve();
      slot.waiter = undefined;
      // A reload ran while this worker started (it may have read the file before, and it was not among the
      // workers the reload reached): it reloads too, after any reload still running.
      if (this.started && slot.configReads < this.appliedReads) this.catchUp(slot);
    } else if (msg.type === 'response') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new Error(msg.error));
    }
  }

  private onExit(slot: Slot, proc: Subprocess, code: number | null, signal: number | null | string): void {
    if (slot.proc !== proc) return;
    slot.proc = undefined;
    slot.listening = false;
    for (const [id, p] of this.pending) {
      if (p.slot !== slot) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new Error(`worker ${slot.index} exited`));
    }
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (slot.waiter) {
      slot.waiter.reject(new WorkerStartError(`worker ${slot.index} exited with ${how} before it listened`, code ?? 1));
      slot.waiter = undefined;
      if (!this.started) return;
    }
    if (this.draining) {
      this.log.info({ event: 'worker_exit', worker: slot.index, pid: proc.pid, code, signal }, `worker ${slot.index} exited (${how})`);
      return;
    }
    const now = this.opts.clock.now();
    const next = nextRestart(slot.restartState, slot.startedMono, now);
    slot.restartState = next.state;
    slot.restarts++;
    this.restartsCounter.inc();
    this.log.warn(
      {
        event: 'worker_exit',
        worker: slot.index,
        pid: proc.pid,
        code,
        signal,
        uptime_ms: Math.round(now - slot.startedMono),
        restart_in_ms: next.delayMs,
        restarts: slot.restarts,
      },
      `worker ${slot.index} (pid ${proc.pid}) exited with ${how}; restarting in ${next.delayMs} ms`,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.draining) return;
      this.spawn(slot).catch((e) =>
        this.log.error({ event: 'worker_start_failed', worker: slot.index, err: (e as Error).message }, `worker ${slot.index} failed to start`),
      );
    }, next.delayMs);
  }

  /** Sends a request to a worker and resolves with its answer. */
  private request<T>(slot: Slot, op: WorkerOp, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    const proc = slot.proc;
    if (!proc || !slot.listening) return Promise.reject(new Error(`worker ${slot.index} is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${slot.index} did not answer ${op.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { slot, resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        proc.send({ type: 'request', id, ...op } satisfies ToWorker);
      } catch (e) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(e as Error);
      }
    });
  }

  private live(): Slot[] {
    return this.slots.filter((s) => s.listening && s.proc);
  }

  /** Asks every running worker; answers that fail or time out are left out. */
  private async gather<T>(op: WorkerOp): Promise<{ slot: Slot; value: T }[]> {
    const answers = await Promise.all(
      this.live().map((slot) =>
        this.request<T>(slot, op).then(
          (value) => ({ slot, value }),
          () => undefined,
        ),
      ),
    );
    return answers.filter((a): a is { slot: Slot; value: T } => a !== undefined);
  }

  private adminConfig(a: AdminConfig): AdminConfig {
    const self = this;
    return {
      enabled: a.enabled,
      address: a.address,
      port: a.port,
      get token() {
        return self.current.admin.token;
      },
    };
  }

  private syncWatcher(): void {
    const c = this.current;
    if (!c.reload.watch || this.draining) {
      this.watcher.update([], c.reload.debounce_ms);
      return;
    }
    this.watcher.update(filesToWatch(c, this.opts.configPath), c.reload.debounce_ms);
  }

  /** Ready when every worker runs and answers ready, and not draining. */
  async ready(): Promise<boolean> {
    if (!this.started || this.draining) return false;
    if (this.live().length < this.opts.count) return false;
    const answers = await this.gather<boolean>({ op: 'ready' });
    return answers.length === this.opts.count && answers.every((a) => a.value === true);
  }

  /**
   * The /status document: the supervisor, every worker (pid, start time, restarts, requests served), and the
   * first running worker's listeners and pools, with the backend counters summed over the workers, and the
   * supervisor's audit trail (its reloads cover every worker; a refused one never reaches a worker).
   */
  async status(): Promise<unknown> {
    const answers = await this.gather<Record<string, unknown> & { requests_total: number; generation: number; ready: boolean }>({ op: 'status' });
    const byIndex = new Map(answers.map((a) => [a.slot.index, a.value]));
    const first = answers[0]?.value;
    const { pid: _pid, requests_total: _requests, ...detail } = first ?? ({} as Record<string, unknown>);
    return {
      ...(first ? { ...detail, pools: mergePools(answers.map((a) => a.value.pools as PoolStatus[])) } : {}),
      // Redis is up for the process only while every worker reaches it.
      ...(detail.redis
        ? { redis: { ...(detail.redis as object), up: answers.every((a) => (a.value.redis as { up?: boolean } | undefined)?.up === true) } }
        : {}),
      generation: this.generation,
      ready: await this.ready(),
      draining: this.draining,
      reloads: { ...this.counts },
      watching: this.watcher.files(),
      supervisor: { pid: process.pid },
      workers: this.slots.map((s) => {
        const w = byIndex.get(s.index);
        return {
          worker: s.index,
          pid: s.proc ? s.pid : null,
          started_at: s.startedAt,
          restarts: s.restarts,
          listening: s.listening,
          ready: w?.ready ?? false,
          generation: w?.generation ?? null,
          requests_total: w?.requests_total ?? null,
        };
      }),
      audit: this.audit.list(),
    };
  }

  /** Logs an audit record (error level for a refused reload) and keeps it for /status. */
  private record(rec: Omit<AuditRecord, 'time'>, msg: string): void {
    this.audit.record(rec, msg, this.log, this.opts.clock.wallNow());
  }

  /** Prometheus text: the workers' metrics aggregated, plus the supervisor's series. */
  async metrics(): Promise<{ contentType: string; body: string }> {
    const answers = await this.gather<MetricJson[]>({ op: 'metrics' });
    const merged = aggregateMetrics(
      answers.map((a) => a.value),
      await this.registry.getMetricsAsJSON(),
    );
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  /** The dashboard document: the running workers' documents merged (see `merge-stats.ts`). */
  async stats(): Promise<unknown> {
    const answers = await this.gather<StatsSnapshot>({ op: 'stats' });
    return { ...(mergeStats(answers.map((a) => a.value)) ?? {}), workers: answers.length };
  }

  /** The effective config as the supervisor validated it (secrets redacted). */
  config(): Record<string, unknown> {
    return { generation: this.generation, loaded_at: new Date(this.loadedAt).toISOString(), config: redactConfig(this.current) };
  }

  /** Brings a worker that started while a reload ran to the current config (in the reload queue). */
  private catchUp(slot: Slot): void {
    const proc = slot.proc;
    this.reloadChain = this.reloadChain.then(async () => {
      // Reached by a later reload meanwhile, gone, or shutting down: nothing to do.
      if (slot.proc !== proc || !slot.listening || this.draining || slot.configReads >= this.appliedReads) return;
      slot.configReads = this.configReads;
      try {
        const r = await this.request<WorkerReloadResult>(
          slot,
          { op: 'reload', trigger: 'worker_start', meta: {}, ports: this.ports },
          RELOAD_TIMEOUT_MS,
        );
        if (this.draining) return; // the shutdown began meanwhile: not a failure of the catch-up
        this.log[r.ok ? 'info' : 'error'](
          {
            event: 'worker_caught_up',
            worker: slot.index,
            pid: slot.pid,
            ok: r.ok,
            generation: r.generation,
            ...(r.ok ? {} : { errors: r.errors ?? [] }),
          },
          r.ok
            ? `worker ${slot.index} started during a reload and now runs the current config`
            : `worker ${slot.index} could not apply the current config`,
        );
      } catch (e) {
        if (this.draining || slot.proc !== proc) return; // the shutdown, or the worker died again (it restarts)
        this.log.error(
          { event: 'worker_caught_up', worker: slot.index, pid: slot.pid, ok: false, errors: [(e as Error).message] },
          'worker catch-up failed',
        );
      }
    });
  }

  /** Validates the config, then reloads the workers in-process (one reload at a time). */
  reload(trigger: ReloadTrigger, meta: ReloadMeta = {}): Promise<SupervisorReloadResult> {
    const run = this.reloadChain.then(() => this.doReload(trigger, meta));
    this.reloadChain = run.catch(() => {});
    return run;
  }

  private async doReload(trigger: ReloadTrigger, meta: ReloadMeta): Promise<SupervisorReloadResult> {
    const t0 = this.opts.clock.now();
    const ms = () => Math.round((this.opts.clock.now() - t0) * 1000) / 1000;
    const refuse = (errors: string[], logEach: boolean): SupervisorReloadResult => {
      this.counts.error++;
      // Alert rules run in the workers: the first one raises `reload_failed` for this refusal.
      const [alerter] = this.live();
      if (alerter) void this.request(alerter, { op: 'reload_refused', trigger, errors }).catch(() => {});
      if (logEach) for (const e of errors) this.log.error({ event: 'config_error', trigger }, e);
      this.record(
        { action: 'reload', trigger, result: 'error', generation: this.generation, duration_ms: ms(), errors, ...meta },
        'reload refused; the running config stays',
      );
      return { ok: false, generation: this.generation, errors };
    };
    // Not a failed reload (a deploy sends SIGHUP, then SIGTERM): info, not counted, no alert. Checked again after
    // every wait, since the shutdown can begin while the file is read or the workers answer.
    const ignored = (): SupervisorReloadResult => {
      const errors = ['Spooky is shutting down; reload ignored'];
      this.log.info({ event: 'reload_ignored', trigger, generation: this.generation, ...meta }, errors[0]);
      return { ok: false, generation: this.generation, errors };
    };
    if (this.draining) return ignored();
    // Workers that started before this point may have read the file before this reload: see catchUp.
    const reads = ++this.configReads;
    const loaded = await loadConfigFile(this.opts.configPath);
    if (this.draining) return ignored();
    for (const w of loaded.warnings) this.log.warn({ event: 'config_warning', trigger }, formatIssue(w));
    if (!loaded.ok) return refuse(loaded.errors.map(formatIssue), true);
    const config = this.opts.overrides(loaded.config);
    if (config.workers !== this.opts.count) {
      this.log.warn({ event: 'config_warning', trigger }, `workers: ${config.workers} takes effect at the next restart (running ${this.opts.count})`);
    }
    const [leader, ...others] = this.live();
    if (!leader) return refuse(['no worker is running; reload refused'], true);
    const op = (ports: SharedPorts): WorkerOp => ({ op: 'reload', trigger, meta, ports });
    let first: WorkerReloadResult;
    try {
      first = await this.request<WorkerReloadResult>(leader, op({}), RELOAD_TIMEOUT_MS);
    } catch (e) {
      if (this.draining) return ignored();
      return refuse([(e as Error).message], true);
    }
    if (this.draining && !first.ok) return ignored(); // a leader that applied it is recorded below
    // The leader logged its errors (certificates, ports); refused once, the others are not asked.
    if (!first.ok) return refuse(first.errors ?? [], false);
    // Applied: workers that started before this reload read the file catch up, the ones asked here do not.
    this.appliedReads = reads;
    leader.configReads = reads;
    for (const s of others) s.configReads = reads;
    this.ports = Object.fromEntries((first.listeners_bound ?? []).map((l) => [l.id, l.port]));
    this.listeners = first.listeners_bound ?? this.listeners;
    const rest = await Promise.all(
      others.map((s) =>
        this.request<WorkerReloadResult>(s, op(this.ports), RELOAD_TIMEOUT_MS).catch(
          (e) => ({ ok: false, generation: 0, errors: [(e as Error).message] }) as WorkerReloadResult,
        ),
      ),
    );
    const workers = [leader, ...others].map((s, i) => {
      const r = i === 0 ? first : (rest[i - 1] as WorkerReloadResult);
      return { worker: s.index, pid: s.pid, ok: r.ok, generation: r.generation, ...(r.ok ? {} : { errors: r.errors ?? [] }) };
    });
    const ok = workers.every((w) => w.ok);
    // The leader applied it: that is the config now, also when the shutdown began meanwhile.
    this.current = config;
    this.log.level = config.log.level;
    this.generation++;
    this.loadedAt = this.opts.clock.wallNow();
    this.syncWatcher();
    if (!ok && this.draining) {
      // Some workers had begun to drain and ignored it: not a failure.
      this.log.info(
        { event: 'reload_ignored', trigger, generation: this.generation, workers, ...meta },
        'reload met the shutdown; some workers ignored it',
      );
      return { ok: false, generation: this.generation, errors: ['Spooky is shutting down; reload ignored'] };
    }
    if (ok) this.counts.ok++;
    else this.counts.error++;
    this.record(
      {
        action: 'reload',
        trigger,
        result: ok ? 'ok' : 'error',
        generation: this.generation,
        duration_ms: ms(),
        ...(first.changes ? { changes: first.changes } : {}),
        ...(first.listeners ? { listeners: first.listeners } : {}),
        workers,
        ...meta,
      },
      ok
        ? `config reloaded in ${workers.length} workers (generation ${this.generation})`
        : 'config reloaded in some workers only; see workers[].errors',
    );
    return { ok, generation: this.generation, changes: first.changes, listeners: first.listeners, workers };
  }

  /** Sends `signal` to every running worker (SIGUSR1: each reopens its log files). */
  signalWorkers(signal: 'SIGUSR1'): void {
    // Only workers that listen have their handler installed (SIGUSR1 would end one still starting); one that
    // starts later opens its log files afresh anyway.
    for (const s of this.slots) if (s.listening) s.proc?.kill(signal);
  }

  /**
   * Graceful shutdown: forwards the signal to every worker (each drains for its `shutdown.drain_timeout_ms`),
   * stops restarting, and resolves when every worker has exited (stragglers are killed 5 s after the drain
   * timeout).
   */
  async shutdown(signal: string): Promise<void> {
    this.draining = true;
    this.watcher.close();
    this.record(
      { action: 'shutdown', trigger: 'signal', result: 'ok', generation: this.generation, signal },
      `${signal}: draining ${this.opts.count} workers`,
    );
    for (const s of this.slots) {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      try {
        s.proc?.send({ type: 'shutdown', signal } satisfies ToWorker);
      } catch {
        s.proc?.kill('SIGTERM');
      }
    }
    const killer = setTimeout(() => {
      for (const s of this.slots) s.proc?.kill('SIGKILL');
    }, this.current.shutdown.drain_timeout_ms + 5000);
    await Promise.all(this.slots.map((s) => s.exited));
    clearTimeout(killer);
    void this.admin?.stop(true);
  }

  /** Second signal: every worker exits at once (killed after 1 s if it has not). */
  async exitNow(): Promise<void> {
    this.draining = true;
    for (const s of this.slots) {
      try {
        s.proc?.send({ type: 'exit_now' } satisfies ToWorker);
      } catch {}
    }
    const killer = setTimeout(() => {
      for (const s of this.slots) s.proc?.kill('SIGKILL');
    }, 1000);
    await Promise.all(this.slots.map((s) => s.exited));
    clearTimeout(killer);
  }
}

interface BackendStatus {
  id: string;
  in_flight: number;
  requests: number;
  failures: number;
  [k: string]: unknown;
}
interface PoolStatus {
  name: string;
  backends: BackendStatus[];
  [k: string]: unknown;
}

/** The first worker's pools, with `in_flight`, `requests` and `failures` of each backend summed over all workers. */
export function mergePools(perWorker: readonly PoolStatus[][]): PoolStatus[] {
  const [first, ...rest] = perWorker;
  if (!first) return [];
  return first.map((pool) => ({
    ...pool,
    backends: pool.backends.map((b) => {
      const sum = { in_flight: b.in_flight, requests: b.requests, failures: b.failures };
      for (const pools of rest) {
        const o = pools.find((p) => p.name === pool.name)?.backends.find((x) => x.id === b.id);
        if (!o) continue;
        sum.in_flight += o.in_flight;
        sum.requests += o.requests;
        sum.failures += o.failures;
      }
      return { ...b, ...sum };
    }),
  }));
}
