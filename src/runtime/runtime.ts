/**
 * The running process: listeners, admin listener, endpoint registry and the current generation.
 * `reload()` builds a new generation from the config file and swaps it in (the old one keeps serving its
 * in-flight requests); `drain()` stops accepting work and waits for in-flight requests.
 */
import type { Config } from '../config/types.ts';
import { type AdminSource, startAdmin } from '../admin/admin.ts';
import { formatIssue, loadConfigFile } from '../config/load.ts';
import type { Clock } from '../lib/clock.ts';
import type { Random } from '../lib/random.ts';
import { type RunningListener, startListener } from '../listener/listener.ts';
import type { AccessLog } from '../observability/access-log.ts';
import type { Logger } from '../observability/logger.ts';
import { createProxyHandler } from '../proxy/handler.ts';
import { createTransport } from '../upstream/factory.ts';
import { EndpointRegistry } from '../upstream/registry.ts';
import { buildGeneration, type Generation } from './generation.ts';

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
  /** Time source. */
  clock: Clock;
  /** Random source for balancers. */
  random: Random;
  /** Applied to every config read on reload (command-line overrides such as --port). */
  overrides?: (config: Config) => Config;
}

/** Result of a reload attempt. */
export type ReloadResult = { ok: true; generation: number } | { ok: false; errors: string[] };

/** The Spooky process. */
export class Runtime implements AdminSource {
  private generation: Generation;
  private readonly registry: EndpointRegistry;
  private listeners: RunningListener[] = [];
  private admin: ReturnType<typeof startAdmin> | undefined;
  private draining = false;
  private started = false;
  private healthReady = false;
  private readonly log: Logger;

  constructor(private readonly opts: RuntimeOptions) {
    this.log = opts.log;
    this.registry = new EndpointRegistry(opts.clock, (backend, tls) => createTransport(backend, tls), (endpoint, t) => {
      const level = t.healthy ? 'info' : 'warn';
      this.log[level]({ event: 'health_change', pool: endpoint.pool, backend: endpoint.id, address: endpoint.url.host, healthy: t.healthy, reason: t.reason, last_probe: endpoint.health.lastProbe?.detail });
    });
    this.warnInsecure(opts.config);
    this.generation = buildGeneration(opts.config, this.registry, 1, opts.random);
  }

  /** The current generation. */
  current(): Generation {
    return this.generation;
  }

  /** Binds listeners and the admin listener, then logs the `listening` readiness record. */
  async start(): Promise<void> {
    const handler = createProxyHandler({
      generation: () => this.generation,
      clock: this.opts.clock,
      log: this.log,
      accessLog: () => {
        const l = this.generation.config.log;
        return l.access_log && l.level !== 'silent' ? this.opts.access : null;
      },
    });
    const onError = (err: Error) => this.log.error({ event: 'listener_error', err }, 'unhandled error in request handler');
    const cfg = this.generation.config;
    try {
      for (const l of cfg.listeners) this.listeners.push(startListener(l, handler, onError));
      if (cfg.admin.enabled) this.admin = startAdmin(cfg.admin, this);
    } catch (e) {
      this.stopNow();
      throw e;
    }
    this.started = true;
    void this.registry.firstHealthRound().then(() => {
      this.healthReady = true;
    });
    this.log.info(
      {
        event: 'listening',
        listeners: this.listeners.map((l) => ({ address: l.address, port: l.port, protocols: ['h3', 'h2', 'http/1.1'] })),
        admin: this.admin ? { address: cfg.admin.address, port: this.admin.port } : null,
        generation: this.generation.id,
        pools: cfg.pools.map((p) => p.name),
      },
      'spooky is listening',
    );
  }

  /** Ready when started, first health checks done, and not draining. */
  ready(): boolean {
    return this.started && this.healthReady && !this.draining;
  }

  /** Re-reads the config file and swaps in a new generation; on any error the running config stays. */
  async reload(trigger: string): Promise<ReloadResult> {
    const path = this.opts.configPath;
    let config: Config = this.generation.config;
    if (path) {
      const result = await loadConfigFile(path);
      for (const w of result.warnings) this.log.warn({ event: 'config_warning', trigger }, formatIssue(w));
      if (!result.ok) {
        const errors = result.errors.map(formatIssue);
        for (const e of errors) this.log.error({ event: 'config_error', trigger }, e);
        this.log.error({ event: 'reload', result: 'error', trigger, errors: errors.length }, 'reload rejected; the running config stays');
        return { ok: false, errors };
      }
      config = this.opts.overrides ? this.opts.overrides(result.config) : result.config;
    }
    this.warnInsecure(config);
    const next = buildGeneration(config, this.registry, this.generation.id + 1, this.opts.random);
    this.generation = next;
    this.log.level = config.log.level;
    this.log.info({ event: 'reload', result: 'ok', trigger, generation: next.id }, 'config reloaded');
    return { ok: true, generation: next.id };
  }

  /** Stops accepting new requests and waits up to `timeoutMs` for in-flight ones; then closes everything. */
  async drain(timeoutMs: number): Promise<{ cut: number }> {
    this.draining = true;
    const stops = this.listeners.flatMap((l) => [l.tcp.stop(false), l.udp.stop(false)]);
    const deadline = this.opts.clock.now() + timeoutMs;
    while (this.pending() > 0 && this.opts.clock.now() < deadline) await Bun.sleep(20);
    const cut = this.pending();
    this.stopNow();
    await Promise.race([Promise.allSettled(stops), Bun.sleep(100)]);
    return { cut };
  }

  private pending(): number {
    let n = 0;
    for (const l of this.listeners) n += l.tcp.pendingRequests + l.udp.pendingRequests;
    return n;
  }

  /** Closes listeners, admin and upstream connections at once. */
  stopNow(): void {
    for (const l of this.listeners) {
      void l.tcp.stop(true);
      void l.udp.stop(true);
    }
    this.listeners = [];
    void this.admin?.stop(true);
    this.admin = undefined;
    this.registry.close();
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
      listeners: this.listeners.map((l) => ({ address: l.address, port: l.port })),
      pools: [...gen.pools.values()].map((p) => ({
        name: p.name,
        strategy: p.config.load_balancing.type,
        backends: p.members.map((m) => ({
          id: m.id,
          address: m.endpoint.url.href,
          protocol: m.endpoint.protocol,
          weight: m.weight,
          healthy: m.endpoint.health.healthy(now),
          in_flight: m.endpoint.inFlight,
          requests: m.endpoint.requests,
          failures: m.endpoint.failures,
          ewma_ms: Math.round(m.latency(now) * 1000) / 1000,
          last_probe: m.endpoint.health.lastProbe?.detail ?? null,
          connections: m.endpoint.transport.stats(),
        })),
      })),
    };
  }

  private warnInsecure(config: Config): void {
    for (const pool of config.pools) {
      if (!pool.tls.verify_certificates && pool.backends.some((b) => b.protocol === 'h2')) {
        this.log.warn({ event: 'insecure_upstream_tls', pool: pool.name }, `pool ${pool.name}: upstream TLS certificate verification is OFF (verify_certificates: false); use only for development`);
      }
    }
  }
}
