/**
 * Builds the resolved {@link Config} from a validated config file: applies defaults, maps aliases to
 * canonical names, merges pool-level and backend-level settings, resolves file paths against the config
 * file's folder and parses addresses. Runs only on a file that passed every check, so a parser failure
 * here is a bug and throws.
 */
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import {
  type Parsed,
  parseBackendAddress,
  parseHashKey,
  parseHeaderName,
  parseHostPattern,
  parseLabelSource,
  parseMethod,
  parseRegex,
  parseStatusRange,
} from './parse.ts';
import {
  ALERT_KINDS,
  type AlertsFile,
  type BackendLimitsFile,
  type CircuitBreakerFile,
  type ConditionFile,
  type ConfigFile,
  canonicalStrategy,
  type HealthCheckFile,
  HOST_POLICY_MODES,
  type ListenerFile,
  LOG_LEVEL_ALIASES,
  type LoadBalancingFile,
  MAX_WORKERS,
  type OutlierDetectionFile,
  type PoolFile,
  type ProbeFile,
  type RetriesFile,
  type RouteFile,
  STICKY_CID_NAMES,
  type TimeoutsFile,
  type UpstreamTlsFile,
} from './schema.ts';
import type {
  AlertsConfig,
  BackendConfig,
  BackendLimitsConfig,
  CertificateConfig,
  CircuitBreakerConfig,
  Config,
  HeaderMatch,
  HeaderRules,
  HealthCheckConfig,
  HealthProbeConfig,
  HostPolicyConfig,
  ListenerConfig,
  LoadBalancingConfig,
  LogConfig,
  LogLevel,
  OutlierDetectionConfig,
  PoolConfig,
  RateLimitConfig,
  RateLimitKey,
  RedisFailureMode,
  RetryConfig,
  RouteConfig,
  TimeoutsConfig,
  TracingConfig,
  UpstreamTlsConfig,
} from './types.ts';
import { DEFAULT_COMPRESSIBLE_TYPES } from './types.ts';

/** Defaults of the resolved config, in one place (the schema descriptions and the README repeat them). */
export const DEFAULTS = {
  listener: { protocol: 'http3', address: '0.0.0.0', port: 9889, idle_timeout_s: 30 },
  admin: { enabled: true, address: '127.0.0.1', port: 9901 },
  redis: { timeout_ms: 50, retry_ms: 1000, key_prefix: 'spooky:rl:', failure_mode: 'local' as RedisFailureMode },
  kubernetes: { ingress_class: 'spooky', debounce_ms: 200, sync_timeout_ms: 10000 },
  limits: { max_request_body_bytes: 104857600, max_header_bytes: 16384, max_uri_bytes: 8192, max_in_flight: 0, max_in_flight_per_client: 0 },
  timeouts: { connect_ms: 5000, response_header_ms: 60000, idle_ms: 0, request_ms: 0 },
  retries: {
    attempts: 3,
    per_try_timeout_ms: 0,
    on: ['connect_failure', 'reset', 'timeout'],
    statuses: [502, 503, 504],
    backoff: { base_ms: 25, cap_ms: 250, jitter: true },
    budget: { ratio: 0.2, min_per_second: 10 },
    buffer_body_bytes: 65536,
  },
  circuit_breaker: { consecutive_failures: 5, failure_rate: 0.5, window_ms: 10000, min_requests: 20, open_ms: 10000, half_open_max: 1 },
  outlier_detection: { consecutive_failures: 5, base_ejection_ms: 30000, max_ejection_ms: 300000, max_ejected_percent: 50 },
  backend_limits: { max_connections: 0, max_concurrent_requests: 0, max_queued_requests: 100, queue_timeout_ms: 1000 },
  slow_start: { window_ms: 30000, aggression: 1, min_weight_percent: 10 },
  upstream_tls: { verify_certificates: true, strict_sni: true },
  load_balancing: { type: 'round-robin', virtual_nodes: 2000 },
  weight: 100,
  probe: { path: '/health', method: 'GET', interval: 5000, timeout_ms: 1000, expected_status: [200, 399] },
  health: { failure_threshold: 3, success_threshold: 2, cooldown_ms: 5000, initial: 'healthy', passive_failure_threshold: 5 },
  log: {
    level: 'info',
    format: 'json',
    access_log: true,
    rust_file_path: '/var/log/spooky/spooky.log',
    access_sampling: { ratio: 1, always_log_errors: true },
  },
  body_sampling: { max_bytes: 4096, redact_headers: ['authorization', 'cookie', 'set-cookie', 'proxy-authorization'] },
  reload: { watch: false, debounce_ms: 500 },
  shutdown: { drain_timeout_ms: 30000 },
  tracing: {
    enabled: false,
    endpoint: 'http://127.0.0.1:4318/v1/traces',
    sample_ratio: 1,
    service_name: 'spooky',
    export_timeout_ms: 10000,
    batch_delay_ms: 5000,
    max_batch_size: 512,
    max_queue_size: 2048,
  },
  workers: 1,
  custom_metrics: { max_values: 100 },
} as const;

function must<T>(r: Parsed<T>): T {
  if (!r.ok) throw new Error(`config resolve: a validated value failed to parse: ${r.message}`);
  return r.value;
}

/** What `workers: auto` (and `--workers auto`) means with `parallelism` CPUs available: one per CPU, 1..{@link MAX_WORKERS}. */
export function autoWorkers(parallelism: number): number {
  return Math.max(1, Math.min(MAX_WORKERS, parallelism));
}

/** `keys` with those named in `order` first, in that order, then the rest as they come. */
function inOrder(keys: readonly string[], order: readonly string[]): string[] {
  const present = new Set(keys);
  const first = order.filter((k) => present.has(k));
  const placed = new Set(first);
  return [...first, ...keys.filter((k) => !placed.has(k))];
}

function toList<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * Resolves the validated file into the {@link Config} the rest of Spooky consumes. `poolOrder` is the order the
 * file writes its pools in (a JavaScript object puts integer-like names first); pools it does not name follow.
 */
export function resolveConfig(file: ConfigFile, baseDir: string, poolOrder: readonly string[] = []): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolvePath(baseDir, p));
  const listenerFiles = file.listeners && file.listeners.length > 0 ? file.listeners : file.listen ? [file.listen] : [];
  const admin = file.admin ?? {};
  return {
    version: 1,
    listeners: listenerFiles.map((l) => resolveListener(l, abs)),
    admin: {
      enabled: admin.enabled ?? DEFAULTS.admin.enabled,
      address: admin.address ?? DEFAULTS.admin.address,
      port: admin.port ?? DEFAULTS.admin.port,
      ...(admin.token !== undefined ? { token: admin.token } : {}),
    },
    ...(file.http_redirect !== undefined
      ? {
          http_redirect: {
            port: file.http_redirect.port,
            ...(file.http_redirect.address !== undefined ? { address: file.http_redirect.address } : {}),
            ...(file.http_redirect.https_port !== undefined ? { https_port: file.http_redirect.https_port } : {}),
          },
        }
      : {}),
    trusted_proxies: (file.trusted_proxies ?? []).map((c) => c.trim()),
    limits: {
      max_request_body_bytes: file.limits?.max_request_body_bytes ?? DEFAULTS.limits.max_request_body_bytes,
      max_header_bytes: file.limits?.max_header_bytes ?? DEFAULTS.limits.max_header_bytes,
      max_uri_bytes: file.limits?.max_uri_bytes ?? DEFAULTS.limits.max_uri_bytes,
      max_in_flight: file.limits?.max_in_flight ?? DEFAULTS.limits.max_in_flight,
      max_in_flight_per_client: file.limits?.max_in_flight_per_client ?? DEFAULTS.limits.max_in_flight_per_client,
    },
    timeouts: {
      connect_ms: file.timeouts?.connect_ms ?? DEFAULTS.timeouts.connect_ms,
      response_header_ms: file.timeouts?.response_header_ms ?? DEFAULTS.timeouts.response_header_ms,
      idle_ms: file.timeouts?.idle_ms ?? DEFAULTS.timeouts.idle_ms,
      request_ms: file.timeouts?.request_ms ?? DEFAULTS.timeouts.request_ms,
    },
    pools: inOrder(Object.keys(file.upstream ?? {}), poolOrder).map((name) => resolvePool(name, file.upstream?.[name] as PoolFile, file, abs)),
    log: resolveLog(file, abs),
    reload: {
      watch: file.reload?.watch ?? DEFAULTS.reload.watch,
      debounce_ms: file.reload?.debounce_ms ?? DEFAULTS.reload.debounce_ms,
    },
    shutdown: {
      drain_timeout_ms: file.shutdown?.drain_timeout_ms ?? DEFAULTS.shutdown.drain_timeout_ms,
    },
    workers: file.workers === 'auto' ? autoWorkers(availableParallelism()) : (file.workers ?? DEFAULTS.workers),
    ...(file.alerts !== undefined ? { alerts: resolveAlerts(file.alerts) } : {}),
    ...(file.redis !== undefined
      ? {
          redis: {
            url: file.redis.url,
            ...(file.redis.username !== undefined ? { username: file.redis.username } : {}),
            ...(file.redis.password_file !== undefined ? { password_file: abs(file.redis.password_file) } : {}),
            timeout_ms: file.redis.timeout_ms ?? DEFAULTS.redis.timeout_ms,
            retry_ms: file.redis.retry_ms ?? DEFAULTS.redis.retry_ms,
            key_prefix: file.redis.key_prefix ?? DEFAULTS.redis.key_prefix,
            failure_mode: file.redis.failure_mode ?? DEFAULTS.redis.failure_mode,
          },
        }
      : {}),
    ...(file.kubernetes !== undefined
      ? {
          kubernetes: {
            ingress_class: file.kubernetes.ingress_class ?? DEFAULTS.kubernetes.ingress_class,
            namespaces: file.kubernetes.namespaces ?? [],
            ...(file.kubernetes.kubeconfig !== undefined ? { kubeconfig: abs(file.kubernetes.kubeconfig) } : {}),
            ...(file.kubernetes.publish_address !== undefined ? { publish_address: file.kubernetes.publish_address } : {}),
            debounce_ms: file.kubernetes.debounce_ms ?? DEFAULTS.kubernetes.debounce_ms,
            sync_timeout_ms: file.kubernetes.sync_timeout_ms ?? DEFAULTS.kubernetes.sync_timeout_ms,
          },
        }
      : {}),
    tracing: resolveTracing(file.tracing),
  };
}

function resolveTracing(t: ConfigFile['tracing']): TracingConfig {
  const d = DEFAULTS.tracing;
  return {
    enabled: t?.enabled ?? d.enabled,
    endpoint: t?.endpoint ?? d.endpoint,
    sample_ratio: t?.sample_ratio ?? d.sample_ratio,
    service_name: t?.service_name ?? d.service_name,
    resource_attributes: { ...t?.resource_attributes },
    headers: { ...t?.headers },
    export_timeout_ms: t?.export_timeout_ms ?? d.export_timeout_ms,
    batch_delay_ms: t?.batch_delay_ms ?? d.batch_delay_ms,
    max_batch_size: t?.max_batch_size ?? d.max_batch_size,
    max_queue_size: t?.max_queue_size ?? d.max_queue_size,
  };
}

function resolveListener(l: ListenerFile, abs: (p: string) => string): ListenerConfig {
  const certificates: CertificateConfig[] = [];
  if (l.tls?.cert !== undefined && l.tls.key !== undefined) certificates.push({ cert: abs(l.tls.cert), key: abs(l.tls.key) });
  for (const c of l.tls?.certificates ?? []) {
    certificates.push({ server_name: c.server_name.toLowerCase(), cert: abs(c.cert), key: abs(c.key) });
  }
  return {
    protocol: 'http3',
    address: l.address ?? DEFAULTS.listener.address,
    port: l.port ?? DEFAULTS.listener.port,
    certificates,
    idle_timeout_s: l.idle_timeout_s ?? DEFAULTS.listener.idle_timeout_s,
  };
}

function resolvePool(name: string, pool: PoolFile, file: ConfigFile, abs: (p: string) => string): PoolConfig {
  const routes = pool.route === undefined ? [{}] : toList(pool.route);
  return {
    name,
    routes: routes.map((r, i) => resolveRoute(r, `${name}#${i}`)),
    load_balancing: resolveLoadBalancing(pool.load_balancing ?? file.load_balancing),
    host_policy: resolveHostPolicy(pool.host_policy),
    tls: resolveTls(pool.tls, file.upstream_tls, abs),
    backends: pool.backends.map((b) => {
      const addr = must(parseBackendAddress(b.address));
      const backend: BackendConfig = {
        id: b.id,
        address: b.address,
        url: addr.url,
        protocol: addr.protocol,
        weight: b.weight ?? DEFAULTS.weight,
        health_check: resolveHealth(pool.health_check, b.health_check),
      };
      const limits = resolveBackendLimits(pool.backend_limits, b.limits);
      if (limits !== undefined) backend.limits = limits;
      return backend;
    }),
    ...(pool.metrics !== undefined
      ? {
          metrics: {
            labels: pool.metrics.labels.map((l) => ({ name: l.name, from: must(parseLabelSource(l.from)) })),
            max_values: pool.metrics.max_values ?? DEFAULTS.custom_metrics.max_values,
          },
        }
      : {}),
    timeouts: resolveTimeouts(pool.timeouts, file.timeouts),
    retries: resolveRetries(pool.retries, file.retries),
    circuit_breaker: resolveBreaker(pool.circuit_breaker, file.circuit_breaker),
    outlier_detection: resolveOutlier(pool.outlier_detection, file.outlier_detection),
  };
}

/** The pool's breaker over the top-level one, field by field; null when neither is set or the result says `enabled: false`. */
function resolveBreaker(b: CircuitBreakerFile | undefined, g: CircuitBreakerFile | undefined): CircuitBreakerConfig | null {
  if (b === undefined && g === undefined) return null;
  if ((b?.enabled ?? g?.enabled ?? true) === false) return null;
  const d = DEFAULTS.circuit_breaker;
  return {
    consecutive_failures: b?.consecutive_failures ?? g?.consecutive_failures ?? d.consecutive_failures,
    failure_rate: b?.failure_rate ?? g?.failure_rate ?? d.failure_rate,
    window_ms: b?.window_ms ?? g?.window_ms ?? d.window_ms,
    min_requests: b?.min_requests ?? g?.min_requests ?? d.min_requests,
    open_ms: b?.open_ms ?? g?.open_ms ?? d.open_ms,
    half_open_max: b?.half_open_max ?? g?.half_open_max ?? d.half_open_max,
  };
}

/** The pool's outlier detection over the top-level one, field by field; null when neither is set or `enabled: false`. */
function resolveOutlier(o: OutlierDetectionFile | undefined, g: OutlierDetectionFile | undefined): OutlierDetectionConfig | null {
  if (o === undefined && g === undefined) return null;
  if ((o?.enabled ?? g?.enabled ?? true) === false) return null;
  const d = DEFAULTS.outlier_detection;
  return {
    consecutive_failures: o?.consecutive_failures ?? g?.consecutive_failures ?? d.consecutive_failures,
    base_ejection_ms: o?.base_ejection_ms ?? g?.base_ejection_ms ?? d.base_ejection_ms,
    max_ejection_ms: o?.max_ejection_ms ?? g?.max_ejection_ms ?? d.max_ejection_ms,
    max_ejected_percent: o?.max_ejected_percent ?? g?.max_ejected_percent ?? d.max_ejected_percent,
  };
}

/** A backend's `limits` over its pool's `backend_limits`, field by field; undefined when neither is set. */
function resolveBackendLimits(pool: BackendLimitsFile | undefined, own: BackendLimitsFile | undefined): BackendLimitsConfig | undefined {
  if (pool === undefined && own === undefined) return undefined;
  const d = DEFAULTS.backend_limits;
  return {
    max_connections: own?.max_connections ?? pool?.max_connections ?? d.max_connections,
    max_concurrent_requests: own?.max_concurrent_requests ?? pool?.max_concurrent_requests ?? d.max_concurrent_requests,
    max_queued_requests: own?.max_queued_requests ?? pool?.max_queued_requests ?? d.max_queued_requests,
    queue_timeout_ms: own?.queue_timeout_ms ?? pool?.queue_timeout_ms ?? d.queue_timeout_ms,
  };
}

function resolveTimeouts(pool: TimeoutsFile | undefined, global: TimeoutsFile | undefined): TimeoutsConfig {
  const d = DEFAULTS.timeouts;
  return {
    connect_ms: pool?.connect_ms ?? global?.connect_ms ?? d.connect_ms,
    response_header_ms: pool?.response_header_ms ?? global?.response_header_ms ?? d.response_header_ms,
    idle_ms: pool?.idle_ms ?? global?.idle_ms ?? d.idle_ms,
    request_ms: pool?.request_ms ?? global?.request_ms ?? d.request_ms,
  };
}

/** Without any `retries` section: the behaviour before retries were configurable (connect failures only, 3 attempts). */
const UNCONFIGURED_RETRIES: RetryConfig = {
  configured: false,
  attempts: 3,
  per_try_timeout_ms: 0,
  on: ['connect_failure'],
  statuses: [],
  backoff: { base_ms: 0, cap_ms: 0, jitter: true },
  budget: null,
  buffer_body_bytes: 0,
};

function resolveRetries(pool: RetriesFile | undefined, global: RetriesFile | undefined): RetryConfig {
  if (pool === undefined && global === undefined) return UNCONFIGURED_RETRIES;
  const d = DEFAULTS.retries;
  return {
    configured: true,
    attempts: pool?.attempts ?? global?.attempts ?? d.attempts,
    per_try_timeout_ms: pool?.per_try_timeout_ms ?? global?.per_try_timeout_ms ?? d.per_try_timeout_ms,
    on: [...new Set(pool?.on ?? global?.on ?? d.on)],
    statuses: [...new Set(pool?.statuses ?? global?.statuses ?? d.statuses)],
    backoff: {
      base_ms: pool?.backoff?.base_ms ?? global?.backoff?.base_ms ?? d.backoff.base_ms,
      cap_ms: pool?.backoff?.cap_ms ?? global?.backoff?.cap_ms ?? d.backoff.cap_ms,
      jitter: pool?.backoff?.jitter ?? global?.backoff?.jitter ?? d.backoff.jitter,
    },
    budget: {
      ratio: pool?.budget?.ratio ?? global?.budget?.ratio ?? d.budget.ratio,
      min_per_second: pool?.budget?.min_per_second ?? global?.budget?.min_per_second ?? d.budget.min_per_second,
    },
    buffer_body_bytes: pool?.buffer_body_bytes ?? global?.buffer_body_bytes ?? d.buffer_body_bytes,
  };
}

function resolveCondition(name: string, c: ConditionFile): HeaderMatch {
  if (typeof c === 'string' || typeof c === 'number' || typeof c === 'boolean') return { name, kind: 'equals', value: String(c) };
  if (c.present !== undefined) return c.present ? { name, kind: 'present' } : { name, kind: 'absent' };
  if (c.regex !== undefined) return { name, kind: 'regex', regex: must(parseRegex(c.regex)) };
  return { name, kind: 'equals', value: c.equals ?? '' };
}

function resolveHeaderRules(r: NonNullable<RouteFile['request_headers']>): HeaderRules {
  const pairs = (m: Record<string, string> | undefined): [string, string][] => Object.entries(m ?? {}).map(([n, v]) => [n.toLowerCase(), v]);
  // Two spellings of one name under `set` (`X-A`, `x-a`): the last one wins, as it would in a `Headers`.
  const rules: HeaderRules = {
    remove: [...new Set((r.remove ?? []).map((n) => n.toLowerCase()))],
    set: [...new Map(pairs(r.set))],
    add: pairs(r.add),
  };
  if ((r as { always?: boolean }).always === true) rules.always = true;
  return rules;
}

function resolveRoute(r: RouteFile, routeId: string): RouteConfig {
  const exact = r.path ?? r.path_exact;
  const route: RouteConfig = {
    hosts: [...new Set(toList(r.host).map((h) => must(parseHostPattern(h))))],
    methods: [...new Set(toList(r.method).map((m) => must(parseMethod(m))))],
    headers: Object.entries(r.headers ?? {}).map(([n, c]) => resolveCondition(must(parseHeaderName(n)), c)),
    query: Object.entries(r.query ?? {}).map(([n, c]) => resolveCondition(n, c)),
  };
  if (exact !== undefined) route.path_exact = exact;
  else if (r.path_prefix !== undefined) route.path_prefix = r.path_prefix;
  if (r.tags !== undefined) route.tags = Object.fromEntries(Object.entries(r.tags).map(([k, v]) => [k, String(v)]));
  if (r.allowed_methods !== undefined) {
    const methods = new Set(r.allowed_methods.map((m) => must(parseMethod(m))));
    if (methods.has('GET')) methods.add('HEAD');
    route.allowed_methods = [...methods];
  }
  if (r.max_request_body_bytes !== undefined) route.max_request_body_bytes = r.max_request_body_bytes;
  if (r.request_headers !== undefined) route.request_headers = resolveHeaderRules(r.request_headers);
  if (r.response_headers !== undefined) route.response_headers = resolveHeaderRules(r.response_headers);
  if (r.basic_auth !== undefined) {
    route.basic_auth = {
      realm: r.basic_auth.realm ?? 'restricted',
      users: r.basic_auth.users.map((u) => ({ username: u.username, password_hash: u.password_hash })),
      forward_authorization: r.basic_auth.forward_authorization ?? false,
    };
    // The credentials are Spooky's to check; the backend does not get them unless asked for.
    if (!route.basic_auth.forward_authorization) {
      const rules = route.request_headers ?? { remove: [], set: [], add: [] };
      if (!rules.remove.includes('authorization')) rules.remove = [...rules.remove, 'authorization'];
      route.request_headers = rules;
    }
  }
  if (r.client_ips !== undefined)
    route.client_ips = { allow: (r.client_ips.allow ?? []).map((c) => c.trim()), deny: (r.client_ips.deny ?? []).map((c) => c.trim()) };
  if (r.compression !== undefined)
    route.compression = {
      encodings: r.compression.encodings ?? ['zstd', 'br', 'gzip'],
      min_bytes: r.compression.min_bytes ?? 1024,
      types: r.compression.types ?? [...DEFAULT_COMPRESSIBLE_TYPES],
    };
  if (r.rewrite?.prefix !== undefined) route.rewrite = { prefix: r.rewrite.prefix };
  else if (r.rewrite?.path !== undefined) route.rewrite = { path: r.rewrite.path };
  if (r.body_sampling !== undefined) {
    const b = r.body_sampling;
    const directions = b.directions ?? ['request', 'response'];
    route.body_sampling = {
      ratio: b.ratio,
      request: directions.includes('request'),
      response: directions.includes('response'),
      max_bytes: b.max_bytes ?? DEFAULTS.body_sampling.max_bytes,
      redact_headers: [...new Set((b.redact_headers ?? DEFAULTS.body_sampling.redact_headers).map((h) => h.toLowerCase()))],
    };
  }
  if (r.rate_limits !== undefined) {
    route.rate_limits = r.rate_limits.map((rule, index): RateLimitConfig => {
      const name = rule.name ?? rule.key;
      const burst = rule.burst ?? Math.max(1, Math.ceil(rule.rate));
      const key: RateLimitKey =
        rule.key === 'client_ip'
          ? { kind: 'client_ip' }
          : rule.key === 'route'
            ? { kind: 'route' }
            : { kind: 'header', name: rule.key.slice(7).toLowerCase() };
      return {
        id: `${routeId}:${index}:${name}:${rule.rate}/${burst}`,
        name,
        key,
        rate: rule.rate,
        burst,
        max_keys: rule.max_keys ?? 100000,
        store: rule.store ?? 'local',
      };
    });
  }
  return route;
}

function resolveLoadBalancing(lb: LoadBalancingFile | undefined): LoadBalancingConfig {
  const written = lb?.type ?? DEFAULTS.load_balancing.type;
  const type = canonicalStrategy(written);
  if (type === undefined) throw new Error(`config resolve: unknown strategy ${written}`);
  const sticky = STICKY_CID_NAMES.has(written);
  return {
    type,
    key: sticky || (lb?.key ?? lb?.hash_on) === undefined ? { kind: 'client_ip' } : must(parseHashKey((lb?.key ?? lb?.hash_on) as string)),
    virtual_nodes: lb?.virtual_nodes ?? DEFAULTS.load_balancing.virtual_nodes,
    ...(lb?.slow_start !== undefined && type !== 'ip-hash' && type !== 'consistent-hash'
      ? {
          slow_start: {
            window_ms: lb.slow_start.window_ms ?? DEFAULTS.slow_start.window_ms,
            aggression: lb.slow_start.aggression ?? DEFAULTS.slow_start.aggression,
            min_fraction: (lb.slow_start.min_weight_percent ?? DEFAULTS.slow_start.min_weight_percent) / 100,
          },
        }
      : {}),
  };
}

function resolveHostPolicy(hp: PoolFile['host_policy']): HostPolicyConfig {
  const written = hp?.mode ?? 'pass-through';
  const mode = (Object.hasOwn(HOST_POLICY_MODES, written) ? HOST_POLICY_MODES[written] : undefined) ?? 'pass-through';
  return mode === 'rewrite' && hp?.host !== undefined ? { mode, host: hp.host } : { mode };
}

function resolveTls(pool: UpstreamTlsFile | undefined, global: UpstreamTlsFile | undefined, abs: (p: string) => string): UpstreamTlsConfig {
  const ca = pool?.ca_file ?? global?.ca_file;
  // The certificate and its key come together, from the pool's section when it names one, else the top level's.
  const client = pool?.client_certificate !== undefined ? pool : global;
  return {
    verify_certificates: pool?.verify_certificates ?? global?.verify_certificates ?? DEFAULTS.upstream_tls.verify_certificates,
    strict_sni: pool?.strict_sni ?? global?.strict_sni ?? DEFAULTS.upstream_tls.strict_sni,
    ...(ca !== undefined ? { ca_file: abs(ca) } : {}),
    ...(client?.client_certificate !== undefined && client.client_key !== undefined
      ? { client_certificate: abs(client.client_certificate), client_key: abs(client.client_key) }
      : {}),
  };
}

const PROBE_KEYS = ['path', 'method', 'interval', 'timeout_ms', 'expected_status', 'host', 'headers', 'address'] as const;

/** Copies the probe fields that are set in `from` over `into` (field by field). */
function overlayProbe(into: ProbeFile, from: ProbeFile | undefined): ProbeFile {
  if (!from) return into;
  const out: ProbeFile = { ...into };
  for (const k of PROBE_KEYS) {
    if (from[k] !== undefined) Object.assign(out, { [k]: from[k] });
  }
  return out;
}

function resolveProbe(p: ProbeFile): HealthProbeConfig {
  const probe: HealthProbeConfig = {
    path: p.path ?? DEFAULTS.probe.path,
    method: p.method !== undefined ? must(parseMethod(p.method)) : DEFAULTS.probe.method,
    interval: p.interval ?? DEFAULTS.probe.interval,
    timeout_ms: p.timeout_ms ?? DEFAULTS.probe.timeout_ms,
    expected_status: p.expected_status !== undefined ? must(parseStatusRange(p.expected_status)) : [...DEFAULTS.probe.expected_status],
    headers: Object.fromEntries(Object.entries(p.headers ?? {}).map(([k, v]) => [must(parseHeaderName(k)), String(v)])),
  };
  if (p.host !== undefined) probe.host = p.host;
  if (p.address !== undefined) {
    const a = must(parseBackendAddress(p.address));
    probe.address = `${a.scheme}://${a.url.hostname}:${a.url.port || (a.scheme === 'https' ? '443' : '80')}`;
  }
  return probe;
}

/**
 * Merges the pool-level and backend-level health checks field by field (backend wins). Probe fields set
 * on either level form the single probe, or the defaults of each item of `probes` when a list is given
 * (the backend's list wins over the pool's). Neither level present: no probes, default thresholds.
 */
export function resolveHealth(pool: HealthCheckFile | undefined, own: HealthCheckFile | undefined): HealthCheckConfig {
  const pick = <K extends keyof HealthCheckFile>(k: K): HealthCheckFile[K] => own?.[k] ?? pool?.[k];
  const thresholds = {
    failure_threshold: pick('failure_threshold') ?? DEFAULTS.health.failure_threshold,
    success_threshold: pick('success_threshold') ?? DEFAULTS.health.success_threshold,
    cooldown_ms: pick('cooldown_ms') ?? DEFAULTS.health.cooldown_ms,
    initial: pick('initial') ?? DEFAULTS.health.initial,
    passive_failure_threshold: pick('passive_failure_threshold') ?? DEFAULTS.health.passive_failure_threshold,
  };
  if (pool === undefined && own === undefined) return { probes: [], ...thresholds };
  const base = overlayProbe(overlayProbe({}, pool), own);
  const list = own?.probes ?? pool?.probes;
  const probes = list === undefined ? [resolveProbe(base)] : list.map((p) => resolveProbe(overlayProbe(base, p)));
  return { probes, ...thresholds };
}

function resolveLog(file: ConfigFile, abs: (p: string) => string): LogConfig {
  const log = file.log ?? {};
  const written = log.level ?? DEFAULTS.log.level;
  const level = (Object.hasOwn(LOG_LEVEL_ALIASES, written) ? LOG_LEVEL_ALIASES[written] : written) as LogLevel;
  const format = log.format === 'plain' ? 'text' : (log.format ?? DEFAULTS.log.format);
  let path: string | undefined;
  if (typeof log.file === 'string') path = abs(log.file);
  else if (log.file?.enabled === true) path = abs(log.file.path ?? DEFAULTS.log.rust_file_path);
  return {
    level,
    format,
    ...(path !== undefined ? { file: path } : {}),
    access_log: log.access_log ?? DEFAULTS.log.access_log,
    ...(log.access_file !== undefined ? { access_file: abs(log.access_file) } : {}),
    ...(log.access_sampling !== undefined
      ? {
          access_sampling: {
            ratio: log.access_sampling.ratio ?? DEFAULTS.log.access_sampling.ratio,
            always_log_errors: log.access_sampling.always_log_errors ?? DEFAULTS.log.access_sampling.always_log_errors,
          },
        }
      : {}),
  };
}

/** Defaults of the `alerts` section (see `AlertsSchema`). */
export const ALERT_DEFAULTS = {
  webhook: { send_resolved: true, timeout_ms: 5000 },
  retries: { attempts: 5, base_ms: 500, cap_ms: 30000 },
  min_interval_ms: 60000,
  queue_size: 1000,
  certificate_expiring: { enabled: true, days: 14, check_interval_ms: 21600000 },
  window: { window_ms: 60000, min_requests: 20 },
  error_threshold: 0.05,
  latency_threshold_ms: 1000,
} as const;

function resolveAlerts(a: AlertsFile): AlertsConfig {
  const r = a.rules ?? {};
  const cert = { ...ALERT_DEFAULTS.certificate_expiring, ...r.certificate_expiring };
  const win = (w: { window_ms?: number | undefined; min_requests?: number | undefined }) => ({
    window_ms: w.window_ms ?? ALERT_DEFAULTS.window.window_ms,
    min_requests: w.min_requests ?? ALERT_DEFAULTS.window.min_requests,
  });
  return {
    ...(a.instance !== undefined ? { instance: a.instance } : {}),
    webhooks: (a.webhooks ?? []).map((w, i) => ({
      name: w.name ?? `webhook${i}`,
      url: w.url,
      kinds: w.kinds ? [...new Set(w.kinds)] : [...ALERT_KINDS],
      send_resolved: w.send_resolved ?? ALERT_DEFAULTS.webhook.send_resolved,
      headers: Object.fromEntries(Object.entries(w.headers ?? {}).map(([k, v]) => [must(parseHeaderName(k)), v])),
      timeout_ms: w.timeout_ms ?? ALERT_DEFAULTS.webhook.timeout_ms,
    })),
    retries: {
      attempts: a.retries?.attempts ?? ALERT_DEFAULTS.retries.attempts,
      base_ms: a.retries?.base_ms ?? ALERT_DEFAULTS.retries.base_ms,
      cap_ms: a.retries?.cap_ms ?? ALERT_DEFAULTS.retries.cap_ms,
    },
    min_interval_ms: a.min_interval_ms ?? ALERT_DEFAULTS.min_interval_ms,
    queue_size: a.queue_size ?? ALERT_DEFAULTS.queue_size,
    rules: {
      backend_unhealthy: r.backend_unhealthy ?? true,
      pool_unavailable: r.pool_unavailable ?? true,
      reload_failed: r.reload_failed ?? true,
      ...(cert.enabled ? { certificate_expiring: { days: cert.days, check_interval_ms: cert.check_interval_ms } } : {}),
      ...(r.route_error_rate
        ? { route_error_rate: { threshold: r.route_error_rate.threshold ?? ALERT_DEFAULTS.error_threshold, ...win(r.route_error_rate) } }
        : {}),
      ...(r.route_latency_p99
        ? {
            route_latency_p99: { threshold_ms: r.route_latency_p99.threshold_ms ?? ALERT_DEFAULTS.latency_threshold_ms, ...win(r.route_latency_p99) },
          }
        : {}),
    },
  };
}
