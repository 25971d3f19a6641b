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

/** The plain-HTTP listener that redirects every request to HTTPS (`http_redirect`). */
export interface HttpRedirectConfig {
  /** Plain-HTTP port, 0..65535 (`0` picks a free one; not with `workers` > 1). Required. */
  port: number;
  /** Bind address. Default: the first listener's address. */
  address?: string;
  /** The HTTPS port clients are sent to. Default: the first listener's port (as bound). */
  https_port?: number;
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
  /** Connection, concurrency and queue limits (backend `limits` over pool `backend_limits`); absent when neither is set. */
  limits?: BackendLimitsConfig;
}

/** Per-backend limits. */
export interface BackendLimitsConfig {
  /** Most TCP connections (HTTP/1.1 pool size, HTTP/2 sessions); `0`: the transport default. Default `0`. */
  max_connections: number;
  /** Most requests in flight at once; `0`: no limit. Default `0`. */
  max_concurrent_requests: number;
  /** Most requests waiting for a slot; more get 503 `queue_full`. Default `100`. */
  max_queued_requests: number;
  /** Longest wait in the queue in milliseconds; then 503 `queue_timeout`. Default `1000`. */
  queue_timeout_ms: number;
}

/** Slow start: the weight of a (re)joining backend ramps up over a window (Envoy's slow_start_config). */
export interface SlowStartConfig {
  /** Milliseconds to reach full weight. Default `30000`. */
  window_ms: number;
  /** Ramp shape: share = min + (1 - min) * (elapsed / window)^(1 / aggression). Default `1` (linear). */
  aggression: number;
  /** Share of the weight right after (re)joining, 0..1 (from `min_weight_percent`). Default `0.1`. */
  min_fraction: number;
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
  /** Methods accepted once the route matched (others: 405); absent: any. HEAD is accepted when GET is. */
  allowed_methods?: string[];
  /** Body limit of this route in bytes, overriding `limits.max_request_body_bytes`; absent: the global one. */
  max_request_body_bytes?: number;
  /** Rate-limit rules, checked in order; absent when none. */
  rate_limits?: RateLimitConfig[];
  /** Body sampling of this route; absent: off. */
  body_sampling?: BodySamplingConfig;
  /** How the path is rewritten before forwarding; absent: forwarded as routed. */
  rewrite?: PathRewrite;
  /** Changes to the request headers sent to the backend (after Spooky's own); absent: none. */
  request_headers?: HeaderRules;
  /** Changes to the backend's response headers sent to the client (after Spooky's own); absent: none. */
  response_headers?: HeaderRules;
  /** Response compression; absent: off. */
  compression?: CompressionConfig;
  /** Which client addresses may use the route (after `trusted_proxies`); absent: everyone. */
  client_ips?: ClientIpsConfig;
  /** HTTP Basic authentication of the route; absent: none. */
  basic_auth?: BasicAuthConfig;
}

/**
 * Header changes of a route in one direction, applied in this order: `remove` (every field of each name), `set`
 * (replaces every field of the name with one), `add` (one more field). Names lower case.
 */
export interface HeaderRules {
  /** Names whose fields are removed. */
  remove: string[];
  /** Fields set, replacing any of the same name. */
  set: [string, string][];
  /** Fields appended. */
  add: [string, string][];
  /** Response rules only: also applied to the error answers Spooky itself gives once the route matched. Default false. */
  always?: boolean;
}

/**
 * A route's path rewrite: `prefix` replaces the part the route's `path_prefix` matched (Envoy's
 * `prefix_rewrite`, nginx's `proxy_pass` with a URI, Caddy's `handle_path`); `path` replaces the whole path. The
 * query is kept either way.
 */
export type PathRewrite = { prefix: string } | { path: string };

/** Body sampling of a route: a share of requests get their bodies logged as `body_sample` records. */
export interface BodySamplingConfig {
  /** Share of requests sampled, 0..1 (one decision per request covers both directions). Required, no default. */
  ratio: number;
  /** Whether the request body of a sampled request is logged. Default `true`. */
  request: boolean;
  /** Whether the response body of a sampled request is logged. Default `true`. */
  response: boolean;
  /** Most body bytes copied into one record. Default `4096`. */
  max_bytes: number;
  /** Lower-case header names whose values are written as `"[redacted]"`. Default `authorization`, `cookie`, `set-cookie`, `proxy-authorization`. */
  redact_headers: string[];
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
  /** Slow start of (re)joining backends; absent when off (the default). Not used by the hash strategies. */
  slow_start?: SlowStartConfig;
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
  /** PEM CA bundle trusted instead of the system roots (resolved against the config file's folder). Default: system roots. */
  ca_file?: string;
  /** PEM client certificate presented to backends that ask for one (absolute path; set together with `client_key`). Default: none. */
  client_certificate?: string;
  /** PEM private key of `client_certificate` (absolute path). Default: none. */
  client_key?: string;
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
  /** Timeouts of this pool (pool fields, else the top-level `timeouts`). */
  timeouts: TimeoutsConfig;
  /** Retry policy of this pool. */
  retries: RetryConfig;
  /** Circuit breaker of each backend; null when off (the default). */
  circuit_breaker: CircuitBreakerConfig | null;
  /** Passive outlier detection; null when off (the default). */
  outlier_detection: OutlierDetectionConfig | null;
}

/** Circuit breaker of each backend of a pool. */
export interface CircuitBreakerConfig {
  /** Consecutive failures that open the circuit; 0: rule off. Default `5`. */
  consecutive_failures: number;
  /** Failure share (0..1) over `window_ms` that opens it; 0: rule off. Default `0.5`. */
  failure_rate: number;
  /** Failure-rate window in ms. Default `10000`. */
  window_ms: number;
  /** Fewest requests in the window before the rate counts. Default `20`. */
  min_requests: number;
  /** Milliseconds open before probing. Default `10000`. */
  open_ms: number;
  /** Concurrent probes while half-open. Default `1`. */
  half_open_max: number;
}

/** Passive outlier detection of a pool. */
export interface OutlierDetectionConfig {
  /** Consecutive gateway errors that eject a backend. Default `5`. */
  consecutive_failures: number;
  /** First ejection in ms (doubles per further ejection). Default `30000`. */
  base_ejection_ms: number;
  /** Longest ejection in ms. Default `300000`. */
  max_ejection_ms: number;
  /** Largest share of the pool (percent) ejected at once. Default `50`. */
  max_ejected_percent: number;
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

/** What a rate-limit bucket is kept per. */
export type RateLimitKey = { kind: 'client_ip' } | { kind: 'route' } | { kind: 'header'; name: string };

/** One rate-limit rule of a route. */
export interface RateLimitConfig {
  /** Limiter-wide id: pool, route index, name, rate and burst (a changed rule gets fresh buckets). */
  id: string;
  /** Policy name for the `RateLimit-Policy` / `RateLimit` headers. Default: the key as written. */
  name: string;
  /** Bucket key. */
  key: RateLimitKey;
  /** Tokens per second (> 0). Required, no default. */
  rate: number;
  /** Bucket size. Default: `rate` rounded up. */
  burst: number;
  /** Most keys kept for this rule (LRU). Default `100000`. */
  max_keys: number;
  /** Where the buckets live: this process, or the shared Redis of {@link Config.redis}. Default `local`. */
  store: 'local' | 'redis';
}

/** A route's client address rules (`client_ips`): deny wins; with an allow list, only its addresses pass. */
export interface ClientIpsConfig {
  /** CIDRs or addresses that may use the route; empty: any address not denied. Default `[]`. */
  allow: string[];
  /** CIDRs or addresses refused with 403, even when allowed. Default `[]`. */
  deny: string[];
}

/** A route's HTTP Basic authentication (`basic_auth`). */
export interface BasicAuthConfig {
  /** The realm named in the 401's challenge. Default `restricted`. */
  realm: string;
  /** Users and their bcrypt or Argon2 password hashes. Required, at least one. */
  users: { username: string; password_hash: string }[];
  /** Pass the client's Authorization field on to the backend. Default false (removed). */
  forward_authorization: boolean;
}

/** A content coding Spooky can compress answers with. */
export type ContentCoding = 'zstd' | 'br' | 'gzip';

/** A route's response compression (`compression`). */
export interface CompressionConfig {
  /** Codings offered, in order of preference on equal client weights. Default `[zstd, br, gzip]`. */
  encodings: ContentCoding[];
  /** Answers declaring a shorter `content-length` (bytes) are not compressed. Default `1024`. */
  min_bytes: number;
  /** Media types compressed (`text/*`, `application/*+json` patterns). Default {@link DEFAULT_COMPRESSIBLE_TYPES}. */
  types: string[];
}

/** Media types compressed by default: text, JSON, JavaScript, XML, SVG, WebAssembly, uncompressed fonts. */
export const DEFAULT_COMPRESSIBLE_TYPES: readonly string[] = [
  'text/*',
  'application/json',
  'application/*+json',
  'application/javascript',
  'application/x-javascript',
  'application/xml',
  'application/*+xml',
  'application/wasm',
  'image/svg+xml',
  'font/ttf',
  'font/otf',
];

/** What a `store: redis` rule does while Redis cannot answer. */
export type RedisFailureMode = 'local' | 'allow' | 'deny';

/** The Redis server shared rate limits use (`redis`). */
export interface RedisConfig {
  /** `redis://host:port[/db]` or `rediss://...` (TLS), without credentials. Required. */
  url: string;
  /** ACL user name. Default: none. */
  username?: string;
  /** Password read from `password_file` (absolute path resolved at load). Default: none. */
  password_file?: string;
  /** Longest wait for one answer and for connecting, in ms. Default `50`. */
  timeout_ms: number;
  /** How long Redis is left alone after a failure before one request tries it again, in ms. Default `1000`. */
  retry_ms: number;
  /** Prefix of every key written. Default `spooky:rl:`. */
  key_prefix: string;
  /** Behaviour of `store: redis` rules while Redis cannot answer. Default `local`. */
  failure_mode: RedisFailureMode;
}

/** Request limits. */
export interface LimitsConfig {
  /** Largest request body in bytes; over it the client gets 413. Default `104857600` (100 MiB). */
  max_request_body_bytes: number;
  /** Largest request header section in bytes (names + values); over it the client gets 431. Default `16384`. */
  max_header_bytes: number;
  /** Longest request target (path and query) in bytes; 414 over it. Default `8192`. */
  max_uri_bytes: number;
  /** Most requests in flight in the process; 503 over it. `0`: no limit. Default `0`. */
  max_in_flight: number;
  /** Most requests in flight per client IP; 429 over it. `0`: no limit. Default `0`. */
  max_in_flight_per_client: number;
}

/** Timeouts towards backends. */
export interface TimeoutsConfig {
  /** TCP (and TLS) connect timeout in milliseconds. Default `5000`. */
  connect_ms: number;
  /** Time from sending the request to the response headers, in milliseconds; 504 after. Default `60000`. */
  response_header_ms: number;
  /** Longest wait for the next response body chunk in milliseconds; the stream is cut after. `0`: off. Default `0`. */
  idle_ms: number;
  /** Total request time in milliseconds (all attempts and the response body); 504 before the headers, a cut stream after. `0`: off. Default `0`. */
  request_ms: number;
}

/** A failure kind that retries may be configured for. */
export type RetryOn = 'connect_failure' | 'reset' | 'timeout';

/** Retries on another backend (resolved per pool: pool fields, else top-level fields, else the defaults). */
export interface RetryConfig {
  /** False when neither the pool nor the top level has a `retries` section: then only connect failures are retried. */
  configured: boolean;
  /** Most attempts per request, the first included. Default `3`. */
  attempts: number;
  /** Milliseconds each attempt may wait for response headers; `0`: only `timeouts.response_header_ms`. Default `0`. */
  per_try_timeout_ms: number;
  /** Failure kinds that are retried. Default all three (`connect_failure` only when not configured). */
  on: RetryOn[];
  /** Backend statuses that are retried. Default `[502, 503, 504]` (none when not configured). */
  statuses: number[];
  /** Backoff: upper bound of the first delay and the cap, in ms, and full jitter. Default `25` / `250` / true (`0` when not configured). */
  backoff: { base_ms: number; cap_ms: number; jitter: boolean };
  /** Retry budget: ratio of requests and a floor per second. Default `0.2` / `10`; null when not configured. */
  budget: { ratio: number; min_per_second: number } | null;
  /** Request bodies with a declared length up to this many bytes are buffered so they can be replayed. Default `65536` (`0` when not configured). */
  buffer_body_bytes: number;
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
  /** Separate file for access records and body samples; default: the same output as `file`. */
  access_file?: string;
  /** Access-log sampling; absent: every record is written. */
  access_sampling?: AccessSamplingConfig;
}

/** Access-log sampling. */
export interface AccessSamplingConfig {
  /** Share of access records written, 0..1. Default `1`. */
  ratio: number;
  /** Write every record of a failed request (status >= 500 or a Spooky error code) whatever `ratio` says. Default `true`. */
  always_log_errors: boolean;
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

/** OpenTelemetry tracing (see README "Tracing"). */
export interface TracingConfig {
  /** Record and export spans; when false only trace ids are kept. Default `false`. */
  enabled: boolean;
  /** OTLP/HTTP traces URL. Default `http://127.0.0.1:4318/v1/traces`. */
  endpoint: string;
  /** Share of new (root) traces sampled, 0..1; requests with a `traceparent` follow its sampled flag. Default `1`. */
  sample_ratio: number;
  /** `service.name` resource attribute. Default `spooky`. */
  service_name: string;
  /** More resource attributes. Default none. */
  resource_attributes: Record<string, string | number | boolean>;
  /** Headers sent with every export (secrets; redacted in `/config`). Default none. */
  headers: Record<string, string>;
  /** Milliseconds an export may take; also the longest final flush at shutdown. Default `10000`. */
  export_timeout_ms: number;
  /** Milliseconds between batch exports. Default `5000`. */
  batch_delay_ms: number;
  /** Most spans per export request. Default `512`. */
  max_batch_size: number;
  /** Most finished spans waiting for export (more are dropped). Default `2048`. */
  max_queue_size: number;
}

/** The whole resolved configuration. */
export interface Config {
  /** Schema version; only `1`. */
  version: 1;
  /** Traffic listeners (from `listen`, or `listeners` when given). */
  listeners: ListenerConfig[];
  /** Admin listener. */
  admin: AdminConfig;
  /** The plain-HTTP redirect listener; absent: none. */
  http_redirect?: HttpRedirectConfig;
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
  /** OpenTelemetry tracing. */
  tracing: TracingConfig;
  /** Alert webhooks and rules. Default none (no alerts). */
  alerts?: AlertsConfig;
  /** Shared store of `store: redis` rate limits. Default none. */
  redis?: RedisConfig;
  /** The Kubernetes ingress controller; read at start only. Default none (off). */
  kubernetes?: KubernetesConfig;
  /** Worker processes sharing the traffic ports (`auto` resolved to the available parallelism); read at start only. Default `1`. */
  workers: number;
}

/** Alert kinds (the `kind` of the webhook payload). */
export type AlertKind =
  | 'backend_unhealthy'
  | 'pool_unavailable'
  | 'route_error_rate'
  | 'route_latency_p99'
  | 'certificate_expiring'
  | 'reload_failed';

/** One alert webhook. */
export interface AlertWebhookConfig {
  /** Name in logs and metric labels. Default `webhook<index>`. */
  name: string;
  /** http(s) URL the alerts are POSTed to. */
  url: string;
  /** Kinds this webhook receives. Default: all. */
  kinds: AlertKind[];
  /** Also send resolved notifications. Default `true`. */
  send_resolved: boolean;
  /** Extra request headers (redacted in `/config`). Default none. */
  headers: Record<string, string>;
  /** Milliseconds one delivery attempt may take. Default `5000`. */
  timeout_ms: number;
}

/** A rule over a sliding window of a route's requests. */
export interface AlertWindowRule {
  /** Window length in milliseconds. Default `60000`. */
  window_ms: number;
  /** Fewest requests in the window before the rule can fire. Default `20`. */
  min_requests: number;
}

/** Alert rules. */
export interface AlertRulesConfig {
  /** Backend health changes. Default `true`. */
  backend_unhealthy: boolean;
  /** Pools without a healthy backend. Default `true`. */
  pool_unavailable: boolean;
  /** Refused reloads. Default `true`. */
  reload_failed: boolean;
  /** Listener certificates expiring within `days`; checked every `check_interval_ms` ms, at start and on reload. Default on, 14 days, 6 h. */
  certificate_expiring?: { days: number; check_interval_ms: number };
  /** 5xx share of a route over `threshold` (0..1). Default off. */
  route_error_rate?: AlertWindowRule & { threshold: number };
  /** p99 total request time of a route over `threshold_ms`. Default off. */
  route_latency_p99?: AlertWindowRule & { threshold_ms: number };
}

/** Alert webhooks, delivery and rules. */
export interface AlertsConfig {
  /** Name of this Spooky in every alert. Default: the host name. */
  instance?: string;
  /** Webhooks. Default none. */
  webhooks: AlertWebhookConfig[];
  /** Delivery retries: attempts (first included) and backoff in milliseconds. Default 5, 500, 30000. */
  retries: { attempts: number; base_ms: number; cap_ms: number };
  /** Shortest milliseconds between two notifications of one alert key. Default `60000`. */
  min_interval_ms: number;
  /** Most deliveries waiting per webhook. Default `1000`. */
  queue_size: number;
  /** Rules. */
  rules: AlertRulesConfig;
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

/** The Kubernetes ingress controller (`kubernetes:`). */
export interface KubernetesConfig {
  /** The IngressClass served. Default `spooky`. */
  ingress_class: string;
  /** Namespaces watched; empty: all. Default `[]`. */
  namespaces: string[];
  /** kubeconfig file (absolute path). Default: in-cluster service account, else `$KUBECONFIG` / `~/.kube/config`. */
  kubeconfig?: string;
  /** Written to the status of served Ingresses. Default none (status not written). */
  publish_address?: string;
  /** Changes within this window (ms) become one reload. Default 200. */
  debounce_ms: number;
  /** Longest wait for the first lists at start (ms). Default 10000. */
  sync_timeout_ms: number;
}
