/**
 * The resolved configuration: what the rest of Spooky consumes after the YAML was parsed, validated,
 * defaulted and normalised by `src/config/load.ts`. Field names follow the YAML keys (snake_case) so the
 * README reference, the JSON Schema and the code use one vocabulary. Durations are milliseconds, sizes bytes.
 */

/** Log levels (pino names). The Rust Spooky's names are accepted in YAML and mapped onto these. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** One certificate/key pair, optionally bound to an SNI server name. */
export interface CertificateConfig {
  /** PEM certificate chain file path (resolved against the config file's folder). */
  cert: string;
  /** PEM private key file path (resolved against the config file's folder). */
  key: string;
  /** SNI name this pair answers for; undefined for the default certificate. */
  server_name?: string;
}

/** A traffic listener: HTTP/3 on UDP plus HTTP/1.1 and HTTP/2 on TCP, on the same address and port. */
export interface ListenerConfig {
  /** Always `http3` (the TCP side for HTTP/1.1 and HTTP/2 is always served too). Default `http3`. */
  protocol: 'http3';
  /** Bind address. Default `0.0.0.0`. */
  address: string;
  /** Port for both TCP and UDP. Default `9889`; `0` picks a free port. */
  port: number;
  /** Certificates: the first one without `server_name` is the default; others are chosen by SNI. */
  certificates: CertificateConfig[];
  /** Idle connection timeout in seconds (also the QUIC idle timeout). Default `30`. */
  idle_timeout_s: number;
}

/** The loopback admin listener (metrics, health, status). */
export interface AdminConfig {
  /** Whether the admin listener runs. Default `true`. */
  enabled: boolean;
  /** Bind address. Default `127.0.0.1`. */
  address: string;
  /** Port. Default `9901`; `0` picks a free port. */
  port: number;
  /** Optional bearer token required on every admin request. Default none. */
  token?: string;
}

/** One active health probe. */
export interface HealthProbeConfig {
  /** Request path. Default `/health`. */
  path: string;
  /** Probe method. Default `GET`. */
  method: string;
  /** Milliseconds between probes. Default `5000`. (YAML key `interval`, as in the Rust Spooky.) */
  interval: number;
  /** Probe timeout in milliseconds. Default `1000`. */
  timeout_ms: number;
  /** Inclusive status range counted as success. Default `[200, 399]`. (YAML: `expected_status: "200-399"`.) */
  expected_status: [number, number];
  /** Host header for the probe. Default: the backend's host. */
  host?: string;
  /** Extra request headers for the probe. Default none. */
  headers: Record<string, string>;
  /** Probe a different address than the backend's (e.g. a sidecar port), `scheme://host:port`. Default: the backend's. */
  address?: string;
}

/** Active and passive health policy of one backend. */
export interface HealthCheckConfig {
  /** Probes; the backend is up only while all of them pass. Empty: no active checks. */
  probes: HealthProbeConfig[];
  /** Consecutive failures (probe or passive) before the backend is marked unhealthy. Default `3`. */
  failure_threshold: number;
  /** Consecutive successful probes before an unhealthy backend is marked healthy again. Default `2`. */
  success_threshold: number;
  /** Milliseconds an unhealthy backend stays out before probing (or, without probes, traffic) may bring it back. Default `5000`. */
  cooldown_ms: number;
  /** State before the first probe result. Default `healthy`. */
  initial: 'healthy' | 'unhealthy';
  /** Passive health: consecutive failed real requests (connect errors, resets, 502/503/504 from the backend) that take it out for `cooldown_ms`. `0` disables. Default `5`. */
  passive_failure_threshold: number;
}

/** Upstream protocol, decided by the address scheme. */
export type BackendProtocol = 'http1' | 'h2' | 'h2c';

/** One backend server. */
export interface BackendConfig {
  /** Unique id within the pool (used in logs and metrics). */
  id: string;
  /** The address as written in the config. */
  address: string;
  /** Parsed origin: `http:`/`https:` scheme (h2c is carried as `http:`), host and port. */
  url: URL;
  /** `http://` HTTP/1.1; `https://` HTTP/2 over TLS with HTTP/1.1 fallback; `h2c://` HTTP/2 cleartext. Bare `host:port` means `https://` (the Rust Spooky's meaning). */
  protocol: BackendProtocol;
  /** Relative share of traffic, 1..1000. Default `100`. */
  weight: number;
  /** Health policy. */
  health_check: HealthCheckConfig;
}

/** A header condition of a route. */
export type HeaderMatch =
  | { name: string; kind: 'present' }
  | { name: string; kind: 'absent' }
  | { name: string; kind: 'equals'; value: string }
  | { name: string; kind: 'regex'; regex: RegExp };

/** A query-parameter condition of a route (same kinds as {@link HeaderMatch}). */
export type QueryMatch = HeaderMatch;

/** The conditions a request must meet to reach a pool. Every set condition must hold. */
export interface RouteConfig {
  /** Host patterns: exact (`api.example.com`) or leading wildcard (`*.example.com`, not the apex). Empty: any host. */
  hosts: string[];
  /** Path prefix (segment-agnostic, like the Rust Spooky); undefined when `path_exact` is used. */
  path_prefix?: string;
  /** Exact path; wins over any prefix. */
  path_exact?: string;
  /** Allowed methods (upper case). Empty: any. */
  methods: string[];
  /** Header conditions. */
  headers: HeaderMatch[];
  /** Query parameter conditions. */
  query: QueryMatch[];
  /** Static tags of this route (`tags:` in YAML), a value source for custom metric labels (`route_tag:KEY`). Absent when none are set. */
  tags?: Record<string, string>;
}

/** Where a consistent-hash key comes from. */
export type HashKeySource =
  | { kind: 'client_ip' }
  | { kind: 'header'; name: string }
  | { kind: 'cookie'; name: string }
  | { kind: 'query'; name: string }
  | { kind: 'path' }
  | { kind: 'authority' }
  | { kind: 'method' };

/** Canonical strategy names. Aliases (Rust Spooky names, nginx-ish names) are resolved by the loader. */
export type StrategyName =
  | 'random'
  | 'round-robin'
  | 'weighted-round-robin'
  | 'least-connections'
  | 'ip-hash'
  | 'consistent-hash'
  | 'latency-aware';

/** The balancing policy of a pool. */
export interface LoadBalancingConfig {
  /** Strategy. Default `round-robin`. */
  type: StrategyName;
  /** Key for `consistent-hash` (`client_ip`, `header:X`, `cookie:X`, `query:X`, `path`, `authority`, `method`). Default `client_ip`. */
  key: HashKeySource;
  /** Consistent hash: ring points per backend at weight 100 (scaled by weight). Default `2000`. */
  virtual_nodes: number;
}

/** How the Host header reaches the backend. */
export interface HostPolicyConfig {
  /** `pass-through` (default) keeps the client's host; `rewrite` sets `host`; `upstream` uses the backend address's host:port. */
  mode: 'pass-through' | 'rewrite' | 'upstream';
  /** Host for `rewrite`. */
  host?: string;
}

/** TLS policy towards HTTPS backends. */
export interface UpstreamTlsConfig {
  /** Verify backend certificates. Default `true`. Turning it off is logged as a warning at every start. */
  verify_certificates: boolean;
  /** Send SNI (the backend host name). Default `true`. */
  strict_sni: boolean;
  /** Extra PEM CA bundle to trust (resolved against the config file's folder). Default: system roots. */
  ca_file?: string;
}

/** A pool of backends and the route that leads to it. */
export interface PoolConfig {
  /** Pool name (the key under `upstream:`). */
  name: string;
  /** Routes that select this pool (one or more; any may match). */
  routes: RouteConfig[];
  /** Balancing policy (pool value, else the top-level `load_balancing`, else round-robin). */
  load_balancing: LoadBalancingConfig;
  /** Host header policy. Default pass-through. */
  host_policy: HostPolicyConfig;
  /** TLS towards this pool's HTTPS backends (pool value, else top-level `upstream_tls`). */
  tls: UpstreamTlsConfig;
  /** Backends in config order. */
  backends: BackendConfig[];
  /** Custom metrics of this pool, labelled by request/response header values or route tags. Absent when not configured. */
  metrics?: PoolMetricsConfig;
}

/** Where the value of a custom metric label comes from. */
export type LabelSource =
  | { kind: 'request_header'; name: string }
  | { kind: 'response_header'; name: string }
  | { kind: 'route_tag'; name: string };

/** One label of a pool's custom metrics. */
export interface CustomLabelConfig {
  /** Prometheus label name. */
  name: string;
  /** Value source; a missing header or tag gives the empty value. */
  from: LabelSource;
}

/** Custom metrics of a pool: `spooky_custom_requests_total` and `spooky_custom_request_duration_seconds` with extra labels. */
export interface PoolMetricsConfig {
  /** Extra labels, 1..5. */
  labels: CustomLabelConfig[];
  /** Distinct values kept per label (per pool, per config generation); later new values are counted as `other`. Default `100`. */
  max_values: number;
}

/** Request limits. */
export interface LimitsConfig {
  /** Largest request body in bytes; over it the client gets 413. Default `104857600` (100 MiB). */
  max_request_body_bytes: number;
  /** Largest request header section in bytes (names + values); over it the client gets 431. Default `16384`. */
  max_header_bytes: number;
}

/** Timeouts towards backends. */
export interface TimeoutsConfig {
  /** TCP (and TLS) connect timeout in milliseconds. Default `5000`. */
  connect_ms: number;
  /** Time from sending the request to the response headers, in milliseconds; 504 after. Default `60000`. */
  response_header_ms: number;
}

/** Logging. */
export interface LogConfig {
  /** Minimum level. Default `info`. */
  level: LogLevel;
  /** `json` (default) or `text`. */
  format: 'json' | 'text';
  /** Log file path; default stdout. */
  file?: string;
  /** Write one access-log line per request. Default `true`. */
  access_log: boolean;
}

/** Hot reload (SIGHUP, `spooky reload`, `POST /reload` on the admin listener, and optional file watching). */
export interface ReloadConfig {
  /** Watch the config file and every listener certificate and key file, and reload when one changes. Default `false`. */
  watch: boolean;
  /** Quiet time in milliseconds after the last file change before the reload runs (editors and certificate tools write in several steps). Default `500`. */
  debounce_ms: number;
}

/** Graceful shutdown (SIGTERM / SIGINT) and the retirement of listeners a reload replaced. */
export interface ShutdownConfig {
  /** Milliseconds in-flight requests get to finish after SIGTERM/SIGINT before they are cut; also how long the TCP connections of a listener a reload replaced or removed may finish their requests. Default `30000`. */
  drain_timeout_ms: number;
}

/** The whole resolved configuration. */
export interface Config {
  /** Schema version; only `1`. */
  version: 1;
  /** Traffic listeners (from `listen`, or `listeners` when given). */
  listeners: ListenerConfig[];
  /** Admin listener. */
  admin: AdminConfig;
  /** CIDRs (or single IPs) whose X-Forwarded-For / Forwarded headers are trusted. Default none. */
  trusted_proxies: string[];
  /** Request limits. */
  limits: LimitsConfig;
  /** Upstream timeouts. */
  timeouts: TimeoutsConfig;
  /** Pools in config order. */
  pools: PoolConfig[];
  /** Logging. */
  log: LogConfig;
  /** Hot reload. */
  reload: ReloadConfig;
  /** Graceful shutdown. */
  shutdown: ShutdownConfig;
}

/** One problem found in a config file. */
export interface ConfigIssue {
  /** `error` stops the load; `warning` is logged and the load goes on. */
  severity: 'error' | 'warning';
  /** The config file path (or `<embedded>`). */
  file: string;
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  column: number;
  /** YAML path, e.g. `upstream.api.backends[0].address`. */
  path: string;
  /** Plain-language message. */
  message: string;
}
