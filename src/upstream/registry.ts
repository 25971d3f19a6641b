/**
 * Endpoints keyed by pool and backend address, so their state (health, latency, counters) carries over from
 * one config generation to the next; connection pools (transports) are keyed by address alone and shared by
 * every pool that names the same backend. `sync(config)` makes the registry match a config: new backends get
 * an endpoint and start their health checks, kept ones get the new policy, removed ones stop probing, and a
 * transport no pool uses any more closes its connections once in-flight requests end.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseBackendAddress } from '../config/parse.ts';
import type { BackendConfig, Config, OutlierDetectionConfig, UpstreamTlsConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { HealthChecker } from '../health/checker.ts';
import type { Clock } from '../lib/clock.ts';
import { OutlierDetector } from '../resilience/outlier.ts';
import { BackendGate } from './backend-gate.ts';
import { Endpoint, type HealthListener, type ProbeListener, type ResilienceListener } from './endpoint.ts';
import { checkUpstreamTlsFiles, probesUseTls } from './factory.ts';
import type { Transport } from './transport.ts';

/** Makes the transport (connection pool) for a backend. */
export type TransportFactory = (backend: BackendConfig, tls: UpstreamTlsConfig) => Transport;

interface Entry {
  endpoint: Endpoint;
  transportKey: string;
  /** The backend and TLS policy of the latest config (probe-only transports are made from them). */
  backend: BackendConfig;
  tls: UpstreamTlsConfig;
  /** The TLS policy and TLS file contents probe-only transports were made under (see {@link tlsPolicyKey}). */
  probeTls: string;
  checker?: HealthChecker;
}

/**
 * Key of a connection pool: protocol, origin and TLS policy. `filesDigest` stands for the contents of the TLS
 * files (`ca_file`, the client certificate and key; see {@link fileDigest}), so a file rotated in place under the
 * same path gets a new pool on reload.
 */
export function transportKey(backend: BackendConfig, tls: UpstreamTlsConfig, filesDigest = ''): string {
  const tlsPart = backend.protocol === 'h2' ? `|${tlsPolicyKey(tls, filesDigest)}` : '';
  // A connection limit is part of the pool's identity: backends with different limits get their own pools.
  const maxConn = backend.limits?.max_connections ?? 0;
  return `${backend.protocol}|${backend.url.host}${tlsPart}${maxConn > 0 ? `|max${maxConn}` : ''}`;
}

/**
 * The TLS policy of a pool with its TLS files' contents (`filesDigest`): part of an https transport's key, and
 * what probe-only transports are made under.
 */
function tlsPolicyKey(tls: UpstreamTlsConfig, filesDigest: string): string {
  return `${tls.verify_certificates}|${tls.strict_sni}|${tls.ca_file ?? ''}|${tls.client_certificate ?? ''}|${tls.client_key ?? ''}|${filesDigest}`;
}

/**
 * SHA-256 of a TLS file (CA bundle, client certificate or key), or a marker when it cannot be read (the transport
 * made from it then fails with `config_invalid`, which fails the load or reload).
 */
export function fileDigest(path: string | undefined): string {
  if (path === undefined) return '';
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return 'unreadable';
  }
}

/**
 * Key of an endpoint: its pool, protocol and origin. Neither the connection limit nor the TLS policy is part of it,
 * so a new limit, CA bundle or client certificate (also under a new path) keeps the endpoint's state (health,
 * slow start, breaker, counters) and only gives it a new connection pool.
 */
export function endpointKey(pool: string, backend: BackendConfig): string {
  return `${pool}|${backend.protocol}|${backend.url.host}`;
}

/** All endpoints of the running process. */
export class EndpointRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly transports = new Map<string, Transport>();
  /** Outlier detector of each pool that has one, with the policy it was made from. */
  private readonly outliers = new Map<string, { detector: OutlierDetector; policy: string }>();
  /** False until the first sync: backends of the first config start warm (no slow start at process start). */
  private synced = false;
  /** Pools whose TLS files the last sync found rotated in place (see {@link tlsFilesRotated}). */
  private rotatedTlsPools: readonly string[] = [];

  /** An empty registry; `transportFor` makes a backend's transport, `onHealth` hears every health change. */
  constructor(
    private readonly clock: Clock,
    private readonly transportFor: TransportFactory,
    private readonly onHealth: HealthListener,
    /** Told about every finished active probe (metrics). */
    private readonly onProbe?: ProbeListener,
    /** Told about circuit changes and ejections (logs). */
    private readonly onResilience?: ResilienceListener,
  ) {}

  /**
   * Makes the registry match `config` and returns, for each pool name, the endpoint of each backend id.
   * Call only with a validated config; the previous generation may still use removed endpoints until its
   * requests finish.
   */
  sync(config: Config): Map<string, Map<string, Endpoint>> {
    const wanted = new Map<string, { pool: string; backend: BackendConfig; tls: UpstreamTlsConfig; transportKey: string }>();
    const byPool = new Map<string, Map<string, string>>();
    // Every TLS file is read once per load: new contents under the same path make new connection pools.
    const digests = new Map<string, string>();
    const digestOf = (path: string | undefined): string => {
      if (path === undefined) return '';
      let d = digests.get(path);
      if (d === undefined) {
        d = fileDigest(path);
        digests.set(path, d);
      }
      return d;
    };
    const filesDigest = (tls: UpstreamTlsConfig): string =>
      `${digestOf(tls.ca_file)},${digestOf(tls.client_certificate)},${digestOf(tls.client_key)}`;
    for (const pool of config.pools) {
      const ids = new Map<string, string>();
      for (const backend of pool.backends) {
        const key = endpointKey(pool.name, backend);
        ids.set(backend.id, key);
        if (!wanted.has(key)) {
          const files = backend.protocol === 'h2' ? filesDigest(pool.tls) : '';
          wanted.set(key, { pool: pool.name, backend, tls: pool.tls, transportKey: transportKey(backend, pool.tls, files) });
        }
      }
      byPool.set(pool.name, ids);
    }

    // First every transport the config needs (this can fail, e.g. an unreadable ca_file): nothing has been
    // changed yet, so a failure leaves the running backends exactly as they were.
    const created: string[] = [];
    try {
      for (const w of wanted.values()) {
        // A probe on an https:// address of its own makes its connection pool when it first runs: its TLS files
        // are read now, so a file it cannot use fails this load or reload instead of that probe.
        if (w.backend.protocol !== 'h2' && probesUseTls(w.backend)) checkUpstreamTlsFiles(w.tls);
        if (this.transports.has(w.transportKey)) continue;
        this.transportOf(w.transportKey, w.backend, w.tls);
        created.push(w.transportKey);
      }
    } catch (e) {
      for (const tk of created) {
        this.transports.get(tk)?.close();
        this.transports.delete(tk);
      }
      throw e;
    }

    for (const [key, entry] of this.entries) {
      if (wanted.has(key)) continue;
      entry.checker?.stop();
      this.entries.delete(key);
    }
    const usedTransports = new Set([...wanted.values()].map((w) => w.transportKey));
    for (const [key, transport] of this.transports) {
      if (usedTransports.has(key)) continue;
      transport.close();
      this.transports.delete(key);
    }

    const rotated = new Set<string>();
    for (const [key, { pool, backend, tls, transportKey: tk }] of wanted) {
      const existing = this.entries.get(key);
      if (existing) {
        const oldPolicy = tlsPolicyKey(existing.tls, '');
        existing.endpoint.id = backend.id; // renamed in the config: logs, alerts and metrics follow
        existing.endpoint.setHealthPolicy(backend.health_check);
        this.syncGate(existing.endpoint, backend);
        existing.backend = backend;
        existing.tls = tls;
        if (existing.transportKey !== tk) {
          // A new max_connections, TLS policy or CA bundle: a new connection pool (the old one closes once its
          // requests end).
          existing.endpoint.transport = this.transportOf(tk, backend, tls);
          existing.transportKey = tk;
        }
        // Probe-only pools are made anew when the TLS policy or CA bundle changed, whatever the backend's own
        // protocol: an http:// backend may be probed on an https:// address.
        const probeTls = tlsPolicyKey(tls, filesDigest(tls));
        const probeTlsChanged = existing.probeTls !== probeTls;
        // Same paths and policy, new contents: TLS files rotated in place (for the audit record).
        if (probeTlsChanged && oldPolicy === tlsPolicyKey(tls, '') && (backend.protocol === 'h2' || probesUseTls(backend))) rotated.add(pool);
        existing.probeTls = probeTls;
        this.syncChecker(existing, backend, probeTlsChanged);
        continue;
      }
      const transport = this.transportOf(tk, backend, tls);
      const endpoint = new Endpoint(key, pool, backend, transport, this.clock, this.onHealth, this.onProbe);
      if (!this.synced) endpoint.joinedAt = Number.NEGATIVE_INFINITY;
      const entry: Entry = { endpoint, transportKey: tk, backend, tls, probeTls: tlsPolicyKey(tls, filesDigest(tls)) };
      this.entries.set(key, entry);
      this.syncGate(endpoint, backend);
      this.syncChecker(entry, backend, false);
    }

    const result = new Map<string, Map<string, Endpoint>>();
    for (const [pool, ids] of byPool) {
      const m = new Map<string, Endpoint>();
      for (const [id, key] of ids) m.set(id, (this.entries.get(key) as Entry).endpoint);
      result.set(pool, m);
    }
    for (const pool of config.pools) {
      const endpoints = [...(result.get(pool.name)?.values() ?? [])];
      const detector = this.outlierFor(pool.name, pool.outlier_detection, endpoints);
      for (const e of endpoints) {
        e.setBreakerPolicy(pool.circuit_breaker);
        e.outlier = detector;
        e.onResilience = this.onResilience;
      }
    }
    for (const name of this.outliers.keys()) if (!result.has(name)) this.outliers.delete(name);
    this.synced = true;
    this.rotatedTlsPools = [...rotated];
    return result;
  }

  /**
   * Pools whose TLS files (`ca_file`, client certificate or key) the last {@link sync} found rotated in place:
   * same paths and policy, new contents, used by an https backend or probe. For the reload's audit record.
   */
  tlsFilesRotated(): readonly string[] {
    return this.rotatedTlsPools;
  }

  /** The pool's outlier detector: kept (with its state) while the policy is unchanged, else made anew. */
  private outlierFor(pool: string, policy: OutlierDetectionConfig | null, endpoints: Endpoint[]): OutlierDetector | null {
    if (policy === null) {
      this.outliers.delete(pool);
      return null;
    }
    // Keyed like the endpoints (pool and address), so a backend renamed by a reload keeps its ejection state.
    const ids = endpoints.map((e) => e.key);
    const text = JSON.stringify(policy);
    const existing = this.outliers.get(pool);
    if (existing && existing.policy === text) {
      existing.detector.setMembers(ids);
      return existing.detector;
    }
    const detector = new OutlierDetector(
      {
        consecutiveFailures: policy.consecutive_failures,
        baseEjectionMs: policy.base_ejection_ms,
        maxEjectionMs: policy.max_ejection_ms,
        maxEjectedPercent: policy.max_ejected_percent,
      },
      ids,
    );
    this.outliers.set(pool, { detector, policy: text });
    return detector;
  }

  /** The shared transport of key `tk`, made on first use. */
  private transportOf(tk: string, backend: BackendConfig, tls: UpstreamTlsConfig): Transport {
    let transport = this.transports.get(tk);
    if (!transport) {
      transport = this.transportFor(backend, tls);
      this.transports.set(tk, transport);
    }
    return transport;
  }

  /** Gives the endpoint a concurrency gate when the backend has `max_concurrent_requests` (kept, with its queue, across reloads). */
  private syncGate(endpoint: Endpoint, backend: BackendConfig): void {
    const l = backend.limits;
    if (l === undefined || l.max_concurrent_requests <= 0) {
      endpoint.gate = null;
      return;
    }
    const policy = { maxActive: l.max_concurrent_requests, maxQueued: l.max_queued_requests, queueTimeoutMs: l.queue_timeout_ms };
    if (endpoint.gate) endpoint.gate.setPolicy(policy);
    else endpoint.gate = new BackendGate(policy, this.clock);
  }

  /**
   * Starts, updates or stops the endpoint's active probes. Probes use connections outside the backend's
   * `max_connections` (a busy backend must not fail its probes), and `tlsChanged` (new TLS policy or CA bundle)
   * makes their probe-only connection pools anew.
   */
  private syncChecker(entry: Entry, backend: BackendConfig, tlsChanged: boolean): void {
    const probes = backend.health_check.probes;
    if (probes.length === 0) {
      entry.checker?.stop();
      entry.checker = undefined;
      return;
    }
    const ownConnections = (backend.limits?.max_connections ?? 0) > 0;
    if (entry.checker) {
      if (tlsChanged) entry.checker.resetTransports();
      entry.checker.update(probes, ownConnections);
      return;
    }
    entry.checker = new HealthChecker(entry.endpoint, probes, (address) => this.probeTransport(entry.backend, entry.tls, address), ownConnections);
    entry.checker.start();
  }

  /**
   * A probe-only connection pool for `backend`'s probes of `address` (its own address when undefined), without its
   * connection limit. A probe address has its own scheme (the loader writes it out in full): it decides the
   * protocol, so an https:// backend can be probed on a plain http:// sidecar port and the other way round.
   */
  private probeTransport(backend: BackendConfig, tls: UpstreamTlsConfig, address: string | undefined): Transport {
    const target = address ?? backend.address;
    const parsed = parseBackendAddress(target);
    if (!parsed.ok) throw new SpookyError('config_invalid', `probe address ${target}: ${parsed.message}`);
    const { limits: _limits, ...unlimited } = backend;
    return this.transportFor({ ...unlimited, address: target, url: parsed.value.url, protocol: parsed.value.protocol }, tls);
  }

  /** Resolves when every endpoint with probes has finished its first round. */
  async firstHealthRound(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.checker?.firstRound));
  }

  /** Every endpoint, for /status. */
  all(): Endpoint[] {
    return [...this.entries.values()].map((e) => e.endpoint);
  }

  /** Stops every health check and closes every connection pool. */
  close(): void {
    for (const entry of this.entries.values()) entry.checker?.stop();
    for (const transport of this.transports.values()) transport.close();
    this.entries.clear();
    this.transports.clear();
  }
}
