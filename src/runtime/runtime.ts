/**
 * The running process: listeners, admin listener, endpoint registry and the current generation.
 *
 * `reload()` re-reads the config file, checks it in full (config, certificates, ports), binds whatever new
 * sockets it needs, then swaps in a new generation in one synchronous step (requests in flight finish on the
 * old one) and retires replaced listeners; on any error nothing changes. Reloads run one at a time. Every
 * attempt is counted (`reloadCounts()`) and written to the audit trail (`auditTrail()`, `/status`).
 *
 * `shutdown()` drains: readiness goes to 503 at once, new work is refused (TCP listening sockets closed, new
 * requests answered 503), in-flight requests get `shutdown.drain_timeout_ms`, the rest is cut and logged.
 */
import type { Server } from 'bun';
import { type AdminSource, startAdmin } from '../admin/admin.ts';
import { Alerting } from '../alerts/alerting.ts';
import { type ConfigChanges, diffConfigs, emptyChangeSet, listenerId } from '../config/diff.ts';
import { formatIssue, type LoadResult, loadConfigFile } from '../config/load.ts';
import { bindAddressesOverlap } from '../config/parse.ts';
import type { AdminConfig, Config, ListenerConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import type { Random } from '../lib/random.ts';
import { CertificateError } from '../listener/certs.ts';
import type { FetchHandler } from '../listener/listener.ts';
import { startRedirect } from '../listener/redirect.ts';
import type { AccessLog, RequestRecord } from '../observability/access-log.ts';
import { type AccessSamplingStats, type AccessWriter, accessWriterFor } from '../observability/access-sampling.ts';
import type { BodySampleLog } from '../observability/body-sample.ts';
import type { LogFiles } from '../observability/log-files.ts';
import { registerLogMetrics } from '../observability/log-metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { Telemetry } from '../observability/telemetry.ts';
import { TracingController } from '../observability/tracing.ts';
import { BodySampler } from '../proxy/body-sampling.ts';
import { altSvcFor, createProxyHandler, nextRequestId, tcpProtocol } from '../proxy/handler.ts';
import { clientAddressFrom } from '../proxy/headers.ts';
import { rateLimitRuleIds } from '../proxy/rate-limit.ts';
import { parseRequestTarget } from '../proxy/request-target.ts';
import { closeTunnels } from '../proxy/websocket.ts';
import { SharedRateLimits } from '../redis/shared-limits.ts';
import { createTransport } from '../upstream/factory.ts';
import { EndpointRegistry } from '../upstream/registry.ts';
import { type AuditRecord, AuditTrail, type AuditTrigger } from './audit.ts';
import { buildGeneration, type Generation } from './generation.ts';
import { type ListenerChange, ListenerSet } from './listeners.ts';
import { FileWatcher, filesToWatch } from './watch.ts';

/** How the runtime is set up. */
export interface RuntimeOptions {
  /** The validated initial config. */
  config: Config;
  /** Config file to re-read on reload; undefined for the embedded config (reload then re-applies it). */
  configPath?: string;
  /** Logger. */
  log: Logger;
  /** Access-log writer. */
  access: AccessLog;
  /** Body sample writer (route `body_sampling`). Default: none (no body samples). */
  samples?: BodySampleLog;
  /** The log files (for the reopen counters). */
  logFiles?: LogFiles;
  /** Time source. */
  clock: Clock;
  /** Random source for balancers. */
  random: Random;
  /** Applied to every config read on reload (command-line overrides such as --port). */
  overrides?: (config: Config) => Config;
  /**
   * Builds the config of a reload from the file at `path` once it loaded without errors (the Kubernetes
   * ingress controller adds the Ingresses' pools). Default: the file alone.
   */
  compose?: (path: string) => LoadResult;
  /** Called after every reload that took, with its config (the ingress controller writes Ingress status). Default: none. */
  afterReload?: (config: Config) => void;
  /** Workers: the port another worker already bound for a listener (see `ListenerSet`). Default: none. */
  sharedPort?: (listener: ListenerConfig) => number | undefined;
  /** The `event` of the readiness record. Default `listening` (workers log `worker_listening`). */
  readyEvent?: string;
}

/** What started a reload. */
export type ReloadTrigger = AuditTrigger;

/** Details of a reload request for the audit record. */
export interface ReloadMeta {
  /** The signal, for `trigger: "signal"`. */
  signal?: string;
  /** The changed files, for `trigger: "file"`. */
  files?: string[];
  /** The admin caller's address, for `trigger: "admin"`. */
  client?: string;
}

/** Result of a reload attempt. */
export type ReloadResult =
  | { ok: true; generation: number; changes: ConfigChanges; listeners: ListenerChange[] }
  | { ok: false; generation: number; errors: string[] };

/** Reload attempts by result, since start. */
export interface ReloadCounts {
  /** Reloads that swapped in a new generation. */
  ok: number;
  /** Reloads that were refused (the running config stayed). */
  error: number;
}

/** What needs a new admin server when it changes (the token is read per request, see `adminConfig`). */
function adminKey(a: AdminConfig): string {
  return a.enabled ? `${a.address}|${a.port}` : 'off';
}

/** The Spooky process. */
export class Runtime implements AdminSource {
  private generation: Generation;
  private readonly registry: EndpointRegistry;
  private readonly listeners: ListenerSet;
  private admin: Server<unknown> | undefined;
  private draining = false;
  /** The plain-HTTP redirect listener (`http_redirect`) and the address and port it was bound for. */
  private redirect: { server: Server<unknown>; key: string } | undefined;
  /** True once a drain ran out of time and cuts what is still in flight (their log lines say so). */
  private cutting = false;
  private started = false;
  private healthReady = false;
  private readonly log: Logger;
  private readonly audit = new AuditTrail();
  private readonly counts: ReloadCounts = { ok: 0, error: 0 };
  private reloadChain: Promise<unknown> = Promise.resolve();
  private readonly watcher: FileWatcher;
  private readonly accessSampling: AccessSamplingStats = { sampledOut: 0 };
  /** Metrics, dashboard statistics and `/config` (the proxy handler's observer). */
  readonly telemetry: Telemetry;
  /** OpenTelemetry spans, or trace ids only (`tracing` of the current config). */
  readonly tracing: TracingController;
  /** Alert rules and webhook delivery (the request path's observer, with the route rules while configured). */
  private readonly alerts: Alerting;
  /** Rate-limit buckets of the request path: in-process ones (kept across reloads for the rules that stay) and the `redis` store. */
  private readonly rateLimits: SharedRateLimits;

  constructor(private readonly opts: RuntimeOptions) {
    this.log = opts.log;
    this.telemetry = new Telemetry({
      generation: () => this.generation,
      clock: opts.clock,
      reloadCounts: () => this.reloadCounts(),
      auditTrail: () => this.auditTrail(),
    });
    this.alerts = new Alerting({
      base: this.telemetry,
      registry: this.telemetry.prom.registry,
      generation: () => this.generation,
      listeners: () => this.listeners.list(),
      ...(opts.configPath ? { configPath: opts.configPath } : {}),
      clock: opts.clock,
      random: opts.random,
      log: opts.log,
    });
    this.registry = new EndpointRegistry(
      opts.clock,
      (backend, tls) => createTransport(backend, tls),
      (endpoint, t) => {
        const level = t.healthy ? 'info' : 'warn';
        this.log[level]({
          event: 'health_change',
          pool: endpoint.pool,
          backend: endpoint.id,
          address: endpoint.url.host,
          healthy: t.healthy,
          reason: t.reason,
          last_probe: endpoint.health.lastProbe?.detail,
        });
        this.telemetry.healthChanged(endpoint, t);
        this.alerts.healthChanged(endpoint, t);
      },
      (endpoint, probe) => this.telemetry.probed(endpoint, probe),
      (endpoint, change) => {
        const base = { pool: endpoint.pool, backend: endpoint.id, address: endpoint.url.host };
        if (change.kind === 'circuit')
          this.log[change.state === 'closed' ? 'info' : 'warn']({ event: 'circuit_change', ...base, state: change.state }, `circuit ${change.state}`);
        else this.log.warn({ event: 'backend_ejected', ...base, ejection_ms: change.ms }, 'backend ejected by outlier detection');
      },
    );
    this.warnInsecure(opts.config);
    this.rateLimits = new SharedRateLimits({ clock: opts.clock, log: opts.log });
    this.rateLimits.registerMetrics(this.telemetry.prom.registry);
    this.generation = buildGeneration(opts.config, this.registry, 1, opts.random);
    this.tracing = new TracingController(this.log);
    this.tracing.update(opts.config.tracing);
    const handler = createProxyHandler({
      generation: () => this.generation,
      clock: opts.clock,
      log: this.log,
      accessLog: () => this.accessLog(),
      tracing: this.tracing,
      observer: this.alerts.observer,
      rateLimiter: this.rateLimits.limiter,
      cutting: () => this.cutting,
      ...(opts.samples ? { bodySampler: new BodySampler(opts.samples, opts.random, () => this.generation.config.log.level !== 'silent') } : {}),
    });
    registerLogMetrics(this.telemetry.prom.registry, {
      sampling: this.accessSampling,
      bodySamples: opts.samples?.written,
      reopens: opts.logFiles?.reopens,
    });
    const serve: FetchHandler = (req, server, transport) => (this.draining ? this.refuse(req, server, transport) : handler(req, server, transport));
    const onError = (err: Error) => this.log.error({ event: 'listener_error', err }, 'unhandled error in request handler');
    this.listeners = new ListenerSet(serve, onError, this.log, opts.clock, opts.sharedPort);
    this.watcher = new FileWatcher((files) => void this.reload('file', { files }), this.log);
  }

  /** The admin settings with `token` read from the current generation, so a reload changes it in place. */
  private adminConfig(a: AdminConfig): AdminConfig {
    const generation = () => this.generation;
    return {
      enabled: a.enabled,
      address: a.address,
      port: a.port,
      get token() {
        return generation().config.admin.token;
      },
    };
  }

  private accessLog(): AccessWriter | null {
    const l = this.generation.config.log;
    return l.access_log && l.level !== 'silent' ? accessWriterFor(this.opts.access, l.access_sampling, this.opts.random, this.accessSampling) : null;
  }

  /** The current generation. */
  current(): Generation {
    return this.generation;
  }

  /**
   * Checks the certificates, binds listeners and the admin listener, then logs the `listening` readiness
   * record. Throws (with every certificate problem, or the address that cannot be bound) when it cannot start.
   */
  async start(): Promise<void> {
    const cfg = this.generation.config;
    try {
      this.rateLimits.prepare(cfg.redis)();
      const warnings = await this.listeners.start(cfg.listeners);
      for (const w of warnings) this.log.warn({ event: 'certificate_warning' }, w);
      if (cfg.admin.enabled) this.admin = startAdmin(this.adminConfig(cfg.admin), this, this.telemetry);
      this.redirect = this.bindRedirect(cfg, this.listeners.list());
    } catch (e) {
      this.stopNow();
      throw e;
    }
    this.started = true;
    this.alerts.apply(cfg);
    void this.registry.firstHealthRound().then(() => {
      this.healthReady = true;
    });
    this.syncWatcher(cfg);
    this.log.info(
      {
        event: this.opts.readyEvent ?? 'listening',
        listeners: this.listeners.list().map((l) => ({ address: l.address, port: l.port, protocols: ['h3', 'h2', 'http/1.1'] })),
        admin: this.admin ? { address: cfg.admin.address, port: this.admin.port } : null,
        http_redirect: this.redirect ? { address: this.redirect.server.hostname, port: this.redirect.server.port } : null,
        generation: this.generation.id,
        pools: cfg.pools.map((p) => p.name),
      },
      'spooky is listening',
    );
  }

  /** The address `cfg.http_redirect` binds (the first listener's by default) and its key, or undefined when none. */
  private redirectBinding(cfg: Config): { address: string; key: string } | undefined {
    const r = cfg.http_redirect;
    if (r === undefined) return undefined;
    const address = r.address ?? cfg.listeners[0]?.address ?? '0.0.0.0';
    return { address, key: `${address}|${r.port}` };
  }

  /**
   * Binds the redirect listener `cfg` asks for (undefined when none). Clients are sent to `https_port`, else to
   * the first listener's bound port, read per request so a reload that moves either is followed at once.
   */
  private bindRedirect(cfg: Config, listeners: readonly { address: string; port: number }[]): { server: Server<unknown>; key: string } | undefined {
    const binding = this.redirectBinding(cfg);
    if (cfg.http_redirect === undefined || binding === undefined) return undefined;
    this.checkRedirectPort(cfg, listeners);
    const httpsPort = () => this.generation.config.http_redirect?.https_port ?? this.listeners.list()[0]?.port ?? 443;
    const maxUriBytes = () => this.generation.config.limits.max_uri_bytes;
    const server = startRedirect(cfg.http_redirect, binding.address, httpsPort, maxUriBytes, (r) => {
      const rec: RequestRecord = {
        request_id: nextRequestId(),
        client: r.client,
        protocol: 'h1.1',
        method: r.method,
        host: r.host,
        path: r.path,
        status: r.status,
        bytes_in: 0,
        bytes_out: 0,
        duration_ms: 0,
        attempts: 0,
      };
      if (r.error_detail !== undefined) {
        rec.error = r.status === 414 ? 'uri_too_long' : 'bad_request';
        rec.error_detail = r.error_detail;
      }
      this.accessLog()?.write(rec);
    });
    return { server, key: binding.key };
  }

  /**
   * Throws when `cfg.http_redirect` would share a port with one of `listeners` (as bound, so `--port` counts):
   * both bind with SO_REUSEPORT, and the kernel would split the port's connections between them at random.
   */
  private checkRedirectPort(cfg: Config, listeners: readonly { address: string; port: number }[]): void {
    const r = cfg.http_redirect;
    const binding = this.redirectBinding(cfg);
    if (r === undefined || binding === undefined || r.port === 0) return;
    const clash = listeners.find((l) => l.port === r.port && bindAddressesOverlap(l.address, binding.address));
    if (clash)
      throw new SpookyError(
        'config_invalid',
        `http_redirect port ${r.port} is the traffic listener's (${clash.address}:${clash.port}); give the redirect a port of its own`,
      );
  }

  /** The ports bound now: each traffic listener's (in config order) and the admin listener's (null when off). */
  boundPorts(): { listeners: number[]; admin: number | null } {
    return { listeners: this.listeners.list().map((l) => l.port), admin: this.admin?.port ?? null };
  }

  /** Ready when started, first health checks done, and not draining. */
  ready(): boolean {
    return this.started && this.healthReady && !this.draining;
  }

  /** Reload attempts by result since start (for metrics). */
  reloadCounts(): ReloadCounts {
    return { ...this.counts };
  }

  /** The last audit records, oldest first. */
  auditTrail(): readonly AuditRecord[] {
    return this.audit.list();
  }

  /**
   * Re-reads the config file (and every certificate) and swaps in a new generation; on any error the running
   * config and listeners stay, every error is logged (config errors as `file:line:col`) and the result says
   * why. Reloads are serialised: a reload asked for while one runs starts when it ends.
   */
  reload(trigger: ReloadTrigger, meta: ReloadMeta = {}): Promise<ReloadResult> {
    const run = this.reloadChain.then(() => this.doReload(trigger, meta));
    this.reloadChain = run.catch(() => {});
    return run;
  }

  /**
   * A reload refused elsewhere (by the supervisor of this worker, which validates the file first): raises the
   * `reload_failed` alert as a refusal here would.
   */
  reloadRefusedElsewhere(trigger: ReloadTrigger, errors: readonly string[]): void {
    this.alerts.reloadFailed(trigger, errors, this.generation.id);
  }

  private async doReload(trigger: ReloadTrigger, meta: ReloadMeta): Promise<ReloadResult> {
    const t0 = this.opts.clock.now();
    const prev = this.generation;
    const fail = (errors: string[], configErrors = false): ReloadResult => {
      this.counts.error++;
      this.alerts.reloadFailed(trigger, errors, prev.id);
      if (!configErrors) for (const e of errors) this.log.error({ event: 'config_error', trigger }, e);
      this.record(
        { action: 'reload', trigger, result: 'error', generation: prev.id, duration_ms: this.elapsed(t0), errors, ...meta },
        'reload refused; the running config stays',
      );
      return { ok: false, generation: prev.id, errors };
    };
    // A reload that meets a shutdown (a deploy sends SIGHUP, then SIGTERM) is not a failed reload: logged at
    // info, not counted in reloads.error, no reload_failed alert.
    const ignored = (): ReloadResult => {
      const errors = ['Spooky is shutting down; reload ignored'];
      this.log.info({ event: 'reload_ignored', trigger, generation: prev.id, ...meta }, errors[0]);
      return { ok: false, generation: prev.id, errors };
    };
    if (this.draining) return ignored();
    let config: Config = prev.config;
    const path = this.opts.configPath;
    if (path) {
      const result = await loadConfigFile(path);
      for (const w of result.warnings) this.log.warn({ event: 'config_warning', trigger }, formatIssue(w));
      if (!result.ok) {
        const errors = result.errors.map(formatIssue);
        for (const e of errors) this.log.error({ event: 'config_error', trigger }, e);
        return fail(errors, true);
      }
      config = result.config;
      if (this.opts.compose) {
        const composed = this.opts.compose(path);
        if (!composed.ok) {
          const errors = composed.errors.map(formatIssue);
          for (const e of errors) this.log.error({ event: 'config_error', trigger }, e);
          return fail(errors, true);
        }
        config = composed.config;
      }
    }
    if (this.opts.overrides) config = this.opts.overrides(config);
    let commitRedis: () => void;
    try {
      commitRedis = this.rateLimits.prepare(config.redis);
    } catch (e) {
      return fail([(e as Error).message]);
    }

    let prepared: Awaited<ReturnType<ListenerSet['prepare']>>;
    try {
      prepared = await this.listeners.prepare(config.listeners);
    } catch (e) {
      return fail(e instanceof CertificateError ? e.problems : [(e as Error).message]);
    }
    if (this.draining) {
      this.listeners.rollback(prepared);
      return ignored();
    }
    // Everything below is synchronous: no request runs between the bind, the swap and the release.
    let newAdmin: Server<unknown> | undefined;
    const adminChanged = adminKey(config.admin) !== adminKey(prev.config.admin);
    let next: Generation;
    // The admin listener binds without SO_REUSEPORT: a new one on the port the running one holds (only the
    // address changed, say 127.0.0.1 to localhost) can bind only once the old one let go. The admin is down
    // for that moment; if the new one cannot bind, the old one is bound again.
    const running = this.admin;
    const handOver =
      adminChanged &&
      config.admin.enabled &&
      running !== undefined &&
      config.admin.port !== 0 &&
      config.admin.port === running.port &&
      bindAddressesOverlap(config.admin.address, prev.config.admin.address);
    if (handOver) void running.stop(false); // the listening socket closes now; a request in flight (this reload's POST) finishes
    // A new redirect listener binds beside the old one (SO_REUSEPORT), which goes after the swap.
    const redirectChanged = this.redirectBinding(config)?.key !== this.redirect?.key;
    let newRedirect: { server: Server<unknown>; key: string } | undefined;
    try {
      if (adminChanged && config.admin.enabled) newAdmin = startAdmin(this.adminConfig(config.admin), this, this.telemetry);
      if (redirectChanged) newRedirect = this.bindRedirect(config, prepared.next);
      else this.checkRedirectPort(config, prepared.next); // the listeners may have moved onto its port
      next = buildGeneration(config, this.registry, prev.id + 1, this.opts.random);
    } catch (e) {
      this.listeners.rollback(prepared);
      void newAdmin?.stop(true);
      void newRedirect?.server.stop(true);
      if (handOver) {
        try {
          this.admin = startAdmin(this.adminConfig(prev.config.admin), this, this.telemetry);
        } catch (again) {
          this.admin = undefined;
          this.log.error({ event: 'admin_lost', err: again }, 'the admin listener could not be bound again after a failed reload');
        }
      }
      return fail([`${(e as Error).message}`]);
    }
    this.generation = next;
    this.rateLimits.local.retain(rateLimitRuleIds(config)); // rules a reload removed or changed keep no buckets
    commitRedis();
    this.listeners.commit(prepared, config.shutdown.drain_timeout_ms);
    if (adminChanged) {
      if (!handOver) void this.admin?.stop(false);
      this.admin = newAdmin;
    }
    if (redirectChanged) {
      void this.redirect?.server.stop(false);
      this.redirect = newRedirect;
    }

    this.log.level = config.log.level;
    this.tracing.update(config.tracing);
    if (
      config.log.format !== prev.config.log.format ||
      config.log.file !== prev.config.log.file ||
      config.log.access_file !== prev.config.log.access_file
    ) {
      this.log.warn({ event: 'config_warning', trigger }, 'log.format, log.file and log.access_file changes take effect at the next restart');
    }
    // The supervisor of `workers` > 1 warns about its own count; a single process (no sharedPort) does here.
    if (this.opts.sharedPort === undefined && config.workers !== prev.config.workers) {
      this.log.warn({ event: 'config_warning', trigger }, `workers: ${config.workers} takes effect at the next restart (running 1)`);
    }
    for (const w of prepared.warnings) this.log.warn({ event: 'certificate_warning', trigger }, w);
    this.warnInsecure(config);
    this.syncWatcher(config);
    this.alerts.apply(config);
    const changes = diffConfigs(prev.config, config);
    mergeListenerChanges(changes, prepared.changes);
    // TLS files rotated in place are a change of the pool's `tls` too (as new certificate contents are a listener's).
    for (const pool of this.registry.tlsFilesRotated()) {
      const entry = changes.pools.modified.find((m) => m.id === pool);
      if (entry === undefined) changes.pools.modified.push({ id: pool, fields: ['tls'] });
      else if (!entry.fields.includes('tls')) entry.fields.push('tls');
    }
    this.counts.ok++;
    this.opts.afterReload?.(config);
    this.record(
      { action: 'reload', trigger, result: 'ok', generation: next.id, duration_ms: this.elapsed(t0), changes, listeners: prepared.changes, ...meta },
      `config reloaded (generation ${next.id})`,
    );
    return { ok: true, generation: next.id, changes, listeners: prepared.changes };
  }

  private elapsed(t0: number): number {
    return Math.round((this.opts.clock.now() - t0) * 1000) / 1000;
  }

  private record(rec: Omit<AuditRecord, 'time'>, msg: string): void {
    this.audit.record(rec, msg, this.log, this.opts.clock.wallNow());
  }

  private syncWatcher(config: Config): void {
    const path = this.opts.configPath;
    if (!config.reload.watch || !path || this.draining) {
      this.watcher.update([], config.reload.debounce_ms);
      return;
    }
    this.watcher.update(filesToWatch(config, path), config.reload.debounce_ms);
  }

  /**
   * Answer to a request that arrives while draining: 503, logged with error `draining` (host and path as the
   * proxy would have seen them, the client resolved through `trusted_proxies`) and counted in the metrics.
   */
  private refuse(req: Request, server: Server<unknown>, transport: 'h3' | 'tcp'): Response {
    const requestId = nextRequestId();
    const target = parseRequestTarget(req.url, req.headers.get('host'), req.method);
    const peer = server.requestIP(req)?.address ?? '';
    const observer = this.alerts.observer;
    observer.requestStart();
    const protocol = transport === 'h3' ? 'h3' : tcpProtocol(req.headers);
    // The refusal gets its SERVER span like any request (exported by the flush at the end of the drain).
    const trace = this.tracing.start(req.headers, req.method, protocol);
    const rec: RequestRecord = {
      request_id: requestId,
      trace_id: trace.traceId,
      client: clientAddressFrom(peer, req.headers, this.generation.trusted),
      protocol,
      method: req.method,
      host: target.ok ? target.host : '',
      path: target.ok ? target.path : '',
      status: 503,
      bytes_in: 0,
      bytes_out: 0,
      duration_ms: 0,
      attempts: 0,
      error: 'draining',
    };
    this.accessLog()?.write(rec);
    observer.requestEnd(rec);
    trace.end(rec);
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1', 'x-request-id': requestId };
    if (transport === 'tcp') {
      headers.connection = 'close';
      headers['alt-svc'] = altSvcFor(server.port);
    }
    return new Response('503 shutting down\n', { status: 503, headers });
  }

  /**
   * Graceful shutdown (SIGTERM/SIGINT): writes an audit record, then drains for the current config's
   * `shutdown.drain_timeout_ms`. Resolves with the number of requests that had to be cut.
   */
  shutdown(signal: string): Promise<{ cut: number }> {
    const timeoutMs = this.generation.config.shutdown.drain_timeout_ms;
    this.record(
      { action: 'shutdown', trigger: 'signal', result: 'ok', generation: this.generation.id, signal },
      `${signal}: draining for up to ${timeoutMs} ms`,
    );
    return this.drain(timeoutMs);
  }

  /**
   * Readiness goes to 503 at once; new TCP connections are refused and idle ones closed; requests that arrive
   * meanwhile (on open connections, or over HTTP/3) get 503; in-flight requests get up to `timeoutMs`, then
   * whatever is left is cut (each cut request gets an access-log line with status 499, and one `drain_cut`
   * record counts them). Then everything is closed.
   */
  async drain(timeoutMs: number): Promise<{ cut: number }> {
    this.draining = true;
    const t0 = this.opts.clock.now();
    this.watcher.close();
    this.listeners.beginDrain();
    void this.redirect?.server.stop(true); // nothing to send clients to any more
    this.redirect = undefined;
    // WebSocket sessions have no natural end to wait for: they are closed now with 1001 (going away), so
    // clients reconnect elsewhere at once.
    const sessions = closeTunnels(1001, 'Spooky is shutting down');
    if (sessions > 0) this.log.info({ event: 'websockets_closed', sessions }, `closed ${sessions} WebSocket session(s) with 1001`);
    const deadline = t0 + timeoutMs;
    while (this.listeners.pending() > 0 && this.opts.clock.now() < deadline) {
      this.listeners.closeIdle();
      await Bun.sleep(10);
    }
    const cut = this.listeners.pending();
    if (cut > 0) {
      this.log.warn(
        { event: 'drain_cut', cut_requests: cut, drain_timeout_ms: timeoutMs },
        `drain timeout: cutting ${cut} request(s) still in flight`,
      );
    }
    this.cutting = true; // the cut requests' log lines say Spooky cut them, not the client
    this.listeners.stopAll();
    // Cut requests write their access-log lines (status 499) as their abort reaches the handler.
    if (cut > 0) await Bun.sleep(200);
    this.log.info({ event: 'drained', ms: this.elapsed(t0), cut_requests: cut }, 'drained');
    this.stopNow();
    await this.tracing.shutdown();
    return { cut };
  }

  /** Closes listeners, admin and upstream connections at once. */
  stopNow(): void {
    this.watcher.close();
    this.alerts.stop();
    this.listeners.stopAll();
    void this.admin?.stop(true);
    this.admin = undefined;
    void this.redirect?.server.stop(true);
    this.redirect = undefined;
    this.registry.close();
    this.rateLimits.close();
  }

  /** `{ redis }` for /status while a `redis` section is configured, else nothing. */
  private redisStatus(): { redis?: NonNullable<ReturnType<SharedRateLimits['status']>> } {
    const redis = this.rateLimits.status();
    return redis ? { redis } : {};
  }

  /** The /status document. */
  status(): unknown {
    const gen = this.generation;
    const now = this.opts.clock.now();
    return {
      generation: gen.id,
      loaded_at: new Date(gen.loadedAt).toISOString(),
      ready: this.ready(),
      draining: this.draining,
      reloads: this.reloadCounts(),
      watching: this.watcher.files(),
      ...this.redisStatus(),
      listeners: this.listeners.list().map((l) => ({
        id: listenerId(l.config),
        address: l.address,
        port: l.port,
        certificates: l.certs.list.map((c) => ({
          server_name: c.serverName ?? null,
          cert: c.certPath,
          subject: c.subject,
          not_after: c.notAfter,
          fingerprint256: c.fingerprint256,
        })),
      })),
      pools: [...gen.pools.values()].map((p) => ({
        name: p.name,
        strategy: p.config.load_balancing.type,
        backends: p.members.map((m) => {
          // available() first: it notices a return from being out, which the effective weight depends on
          const available = m.endpoint.available();
          return {
            id: m.id,
            address: m.endpoint.url.href,
            protocol: m.endpoint.protocol,
            weight: m.weight,
            effective_weight: m.currentWeight ? Math.round(m.currentWeight(now) * 1000) / 1000 : m.weight,
            healthy: m.endpoint.health.healthy(now),
            available,
            circuit: m.endpoint.circuit(now),
            ejected: m.endpoint.ejected(now),
            ejections: m.endpoint.ejections,
            circuit_opens: m.endpoint.breaker?.opens ?? 0,
            in_flight: m.endpoint.inFlight,
            ...(m.endpoint.gate ? { queued: m.endpoint.gate.limiter.queued, max_concurrent_requests: m.endpoint.gate.limiter.limits.maxActive } : {}),
            requests: m.endpoint.requests,
            failures: m.endpoint.failures,
            ewma_ms: Math.round(m.latency(now) * 1000) / 1000,
            last_probe: m.endpoint.health.lastProbe?.detail ?? null,
            connections: m.endpoint.transport.stats(),
          };
        }),
      })),
      audit: this.audit.list(),
    };
  }

  private warnInsecure(config: Config): void {
    for (const pool of config.pools) {
      if (!pool.tls.verify_certificates && pool.backends.some((b) => b.protocol === 'h2')) {
        this.log.warn(
          { event: 'insecure_upstream_tls', pool: pool.name },
          `pool ${pool.name}: upstream TLS certificate verification is OFF (verify_certificates: false); use only for development`,
        );
      }
    }
  }
}

/** Adds listener replacements the config diff cannot see (same paths, new file contents) to `changes`. */
function mergeListenerChanges(changes: ConfigChanges, listeners: readonly ListenerChange[]): void {
  const set = changes.listeners ?? emptyChangeSet();
  for (const l of listeners) {
    if (l.action !== 'replaced') continue;
    const known = set.modified.find((m) => m.id === l.id);
    if (!known) set.modified.push({ id: l.id, fields: [...(l.fields ?? [])] });
    else for (const f of l.fields ?? []) if (!known.fields.includes(f)) known.fields.push(f);
  }
}
