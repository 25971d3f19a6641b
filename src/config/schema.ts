/**
 * The YAML file format of Spooky as a zod schema: snake_case keys exactly as written in the file, every
 * field described (meaning, unit, default). The descriptions feed the JSON Schema for editors
 * (`configJsonSchema()` in `load.ts`) and the config reference.
 *
 * The schema only checks shape and single values. Defaults are NOT applied here (several fields fall back
 * to a pool- or file-level value first), and checks that span several fields (duplicate ids, identical
 * routes, certificates present, ...) live in `load.ts`.
 */
import { z } from 'zod';
import {
  type Parsed,
  parseBackendAddress,
  parseBindAddress,
  parseCidr,
  parseHashKey,
  parseHeaderName,
  parseHeaderValue,
  parseHostPattern,
  parseLabelName,
  parseLabelSource,
  parseMethod,
  parsePath,
  parseRegex,
  parseRewritePath,
  parseServerName,
  parseStatusRange,
} from './parse.ts';
import type { LogLevel, StrategyName } from './types.ts';

// ---------------------------------------------------------------------------------------------------
// Name tables
// ---------------------------------------------------------------------------------------------------

/** Largest `workers` (and `--workers`) value; `auto` is capped to it too. */
export const MAX_WORKERS = 64;

/** The canonical load-balancing strategy names, in documentation order. */
export const CANONICAL_STRATEGIES: readonly StrategyName[] = [
  'random',
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'ip-hash',
  'consistent-hash',
  'latency-aware',
];

/**
 * Accepted alternative spellings of strategy names (Rust Spooky names, nginx/Envoy-ish names) and the
 * canonical strategy each maps to. `sticky-cid`/`sticky_cid` (the Rust Spooky's QUIC connection-id
 * affinity, which cannot be seen here) map to `consistent-hash` keyed by `client_ip`, with a warning.
 */
export const STRATEGY_ALIASES: Readonly<Record<string, StrategyName>> = {
  round_robin: 'round-robin',
  roundrobin: 'round-robin',
  rr: 'round-robin',
  weighted: 'weighted-round-robin',
  weighted_round_robin: 'weighted-round-robin',
  wrr: 'weighted-round-robin',
  least_conn: 'least-connections',
  'least-conn': 'least-connections',
  leastconn: 'least-connections',
  least_connections: 'least-connections',
  'least-request': 'least-connections',
  least_request: 'least-connections',
  ip_hash: 'ip-hash',
  iphash: 'ip-hash',
  'source-ip': 'ip-hash',
  consistent_hash: 'consistent-hash',
  hash: 'consistent-hash',
  'ring-hash': 'consistent-hash',
  ring_hash: 'consistent-hash',
  latency_aware: 'latency-aware',
  ewma: 'latency-aware',
  'peak-ewma': 'latency-aware',
  p2c: 'latency-aware',
  'sticky-cid': 'consistent-hash',
  sticky_cid: 'consistent-hash',
  'cid-sticky': 'consistent-hash',
  cid_sticky: 'consistent-hash',
  // the Rust Spooky's short names
  ch: 'consistent-hash',
  lc: 'least-connections',
  la: 'latency-aware',
};

/** The canonical strategy for a written name (canonical or alias), or undefined for an unknown name. */
export function canonicalStrategy(name: string): StrategyName | undefined {
  if ((CANONICAL_STRATEGIES as readonly string[]).includes(name)) return name as StrategyName;
  return Object.hasOwn(STRATEGY_ALIASES, name) ? STRATEGY_ALIASES[name] : undefined;
}

/** Strategy names of the Rust Spooky that only approximate here (see {@link STRATEGY_ALIASES}). */
export const STICKY_CID_NAMES: ReadonlySet<string> = new Set(['sticky-cid', 'sticky_cid', 'cid-sticky', 'cid_sticky']);

/** The Rust Spooky's log level names and the level each maps to. */
export const LOG_LEVEL_ALIASES: Readonly<Record<string, LogLevel>> = {
  silence: 'silent',
  poltergeist: 'error',
  scream: 'warn',
  spooky: 'info',
  haunt: 'debug',
  whisper: 'trace',
};

/** Canonical log levels. */
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Host policy mode spellings (the Rust Spooky's included) and the canonical mode each maps to. */
export const HOST_POLICY_MODES: Readonly<Record<string, 'pass-through' | 'rewrite' | 'upstream'>> = {
  'pass-through': 'pass-through',
  pass_through: 'pass-through',
  rewrite: 'rewrite',
  upstream: 'upstream',
  static_upstream: 'upstream',
  'static-upstream': 'upstream',
  'upstream-host': 'upstream',
};

/** Every accepted strategy spelling: canonical names first, then the aliases. */
export const STRATEGY_NAMES: readonly string[] = [...CANONICAL_STRATEGIES, ...Object.keys(STRATEGY_ALIASES)];

// ---------------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------------

/** A required field with its description. */
function req<T extends z.ZodType>(schema: T, description: string): T {
  return schema.describe(description);
}

/** An optional field with its description and, for the JSON Schema, its default (applied by the loader). */
function opt<T extends z.ZodType>(schema: T, description: string, def?: unknown): z.ZodOptional<T> {
  const described = schema.optional().describe(description);
  return def === undefined ? described : described.meta({ default: def });
}

/** A string checked by one of the `parse.ts` parsers; a failure becomes a schema error at the value. */
function checked(parse: (s: string) => Parsed<unknown>): z.ZodString {
  return z.string().superRefine((value, ctx) => {
    const r = parse(value);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
  });
}

/** A key the Rust Spooky has and this Spooky ignores with a warning. */
function rustOnly(what: string) {
  return z
    .unknown()
    .optional()
    .meta({ deprecated: true })
    .describe(`Rust Spooky setting (${what}) that this Spooky does not implement: accepted, ignored, and reported as a warning.`);
}

const port = () => z.number().int().min(0).max(65535);
/** The longest timer JavaScript can run (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_DURATION_MS = 2_147_483_647;
/** A duration in milliseconds, at least `min`. */
const durationMs = (min: number) => z.number().int().min(min).max(MAX_DURATION_MS);
const positiveInt = () => z.number().int().min(1);
const nonEmpty = () => z.string().min(1);

const equalsValue = z.union([z.string(), z.number(), z.boolean()]);

// ---------------------------------------------------------------------------------------------------
// Listener
// ---------------------------------------------------------------------------------------------------

/** One SNI certificate of a listener. */
export const SniCertificateSchema = z
  .strictObject({
    server_name: req(
      checked(parseServerName),
      'TLS server name (SNI) this certificate answers for: an exact name or a leading wildcard (`*.example.com`), not an IP address (clients never send one as SNI). Required.',
    ),
    cert: req(nonEmpty(), "PEM certificate chain file; relative paths are resolved against the config file's folder. Required."),
    key: req(nonEmpty(), "PEM private key file; relative paths are resolved against the config file's folder. Required."),
  })
  .describe('A certificate chosen when the client asks for `server_name` via SNI.');

/** Listener TLS settings. */
export const ListenTlsSchema = z
  .strictObject({
    cert: opt(
      nonEmpty(),
      "Default PEM certificate chain file (used when no SNI certificate matches); relative to the config file's folder. No default; set together with `key`.",
    ),
    key: opt(nonEmpty(), "Private key (PEM) of the default certificate; relative to the config file's folder. No default; set together with `cert`."),
    certificates: opt(
      z.array(SniCertificateSchema),
      'Additional certificates selected by SNI server name. Default none. A listener needs at least one certificate (default or SNI).',
    ),
    client_auth: rustOnly('mutual TLS towards clients'),
  })
  .describe('TLS for the listener. HTTP/3 always runs over TLS, so at least one certificate is required.');

/** One traffic listener (the shape of `listen` and of each `listeners` item). */
export const ListenerSchema = z
  .strictObject({
    protocol: opt(
      z.literal('http3'),
      'Listener protocol; only `http3` (HTTP/1.1 and HTTP/2 over TCP are always served on the same port too). Default `http3`.',
      'http3',
    ),
    address: opt(checked(parseBindAddress), 'IP address to bind (TCP and UDP). Default `0.0.0.0`.', '0.0.0.0'),
    port: opt(port(), 'Port for both TCP and UDP, 0..65535; `0` picks a free port. Default `9889`.', 9889),
    idle_timeout_s: opt(
      z.number().int().positive().max(255, 'at most 255 (the largest idle timeout Bun accepts)'),
      'Idle connection timeout in whole seconds, 1..255 (also the QUIC idle timeout). Default `30`.',
      30,
    ),
    tls: ListenTlsSchema.optional(),
  })
  .describe('A traffic listener: HTTP/3 on UDP plus HTTP/1.1 and HTTP/2 on TCP, same address and port.');

// ---------------------------------------------------------------------------------------------------
// Global settings
// ---------------------------------------------------------------------------------------------------

/** The loopback admin listener. */
export const AdminSchema = z
  .strictObject({
    enabled: opt(z.boolean(), 'Run the admin listener (metrics, health, status). Default `true`.', true),
    address: opt(checked(parseBindAddress), 'Bind address. Default `127.0.0.1` (loopback only).', '127.0.0.1'),
    port: opt(port(), 'Port, 0..65535; `0` picks a free port. Default `9901`.', 9901),
    token: opt(nonEmpty(), 'Bearer token required on every admin request (`Authorization: Bearer <token>`). Default none.'),
  })
  .describe('Admin listener settings.');

/** Request limits. */
export const LimitsSchema = z
  .strictObject({
    max_request_body_bytes: opt(positiveInt(), 'Largest request body in bytes; larger requests get 413. Default `104857600` (100 MiB).', 104857600),
    max_header_bytes: opt(positiveInt(), 'Largest request header section in bytes (names + values); larger gets 431. Default `16384`.', 16384),
    max_uri_bytes: opt(positiveInt(), 'Longest request target (path and query) in bytes; longer gets 414. Default `8192`.', 8192),
    max_in_flight: opt(
      z.number().int().min(0),
      'Most requests in flight in this process; more get 503 at once, without touching a backend. `0`: no limit. Default `0`.',
      0,
    ),
    max_in_flight_per_client: opt(
      z.number().int().min(0),
      'Most requests in flight from one client IP (after `trusted_proxies`); more get 429 at once. `0`: no limit. Default `0`.',
      0,
    ),
  })
  .describe('Request size limits (bytes) and admission limits (requests in flight); each field has its own default.');

/** Timeouts towards backends. */
export const TimeoutsSchema = z
  .strictObject({
    connect_ms: opt(durationMs(1), 'TCP (and TLS) connect timeout towards a backend, in milliseconds. Default `5000`.', 5000),
    response_header_ms: opt(
      durationMs(1),
      'Milliseconds from sending the request to receiving the response headers; the client gets 504 after. Default `60000`.',
      60000,
    ),
    idle_ms: opt(
      durationMs(0),
      'Longest wait in milliseconds for the next response body chunk from the backend; when it passes, the response stream is cut (logged as `upstream_timeout`). `0` turns it off. Default `0`.',
      0,
    ),
    request_ms: opt(
      durationMs(0),
      'Total time in milliseconds for a request, all attempts and the response body included: before the response headers the client gets 504, after them the response stream is cut. `0` turns it off. Default `0`.',
      0,
    ),
  })
  .describe('Timeouts towards backends.');

/** Backoff between retries. */
export const BackoffSchema = z
  .strictObject({
    base_ms: opt(
      durationMs(0),
      'Upper bound in milliseconds of the random delay before the first retry; it doubles for each further retry (full jitter). `0`: no delay. Default `25`.',
      25,
    ),
    cap_ms: opt(durationMs(0), 'Largest upper bound in milliseconds of the delay before a retry. Default `250`.', 250),
    jitter: opt(
      z.boolean(),
      '`true`: each delay is random in [0, bound) (full jitter, spreads retries of many clients). `false`: each delay is exactly the bound. Default `true`.',
      true,
    ),
  })
  .describe('Exponential backoff with full jitter between retries.');

/** Circuit breaker of each backend of a pool. */
export const CircuitBreakerSchema = z
  .strictObject({
    consecutive_failures: opt(
      z.number().int().min(0).max(1000),
      'Consecutive failed requests (connect error, reset, timeout, 502/503/504) that open the circuit; `0` turns this rule off. Default `5`.',
      5,
    ),
    failure_rate: opt(
      z.number().min(0).max(1),
      'Share of failed requests over `window_ms`, 0..1, that opens the circuit (once `min_requests` were seen); `0` turns this rule off. Default `0.5`.',
      0.5,
    ),
    window_ms: opt(durationMs(100), 'Window of the failure rate in milliseconds. Default `10000`.', 10000),
    min_requests: opt(z.number().int().min(1).max(1_000_000), 'Fewest requests in the window before the failure rate counts. Default `20`.', 20),
    open_ms: opt(durationMs(1), 'Milliseconds the circuit stays open (no traffic) before probe requests are let through. Default `10000`.', 10000),
    half_open_max: opt(
      z.number().int().min(1).max(1000),
      'Probe requests allowed at once while half-open; a success closes the circuit, a failure opens it again. Default `1`.',
      1,
    ),
    enabled: opt(z.boolean(), 'Set `false` in a pool to turn off a breaker the top level switched on. Default `true`.', true),
  })
  .describe("Circuit breaker per backend of the pool; a pool's fields override the top-level `circuit_breaker` field by field. Default: off.");

/** Passive outlier detection of a pool. */
export const OutlierDetectionSchema = z
  .strictObject({
    consecutive_failures: opt(
      z.number().int().min(1).max(1000),
      'Consecutive gateway errors (connect error, reset, timeout, any 5xx) that eject a backend. Default `5`.',
      5,
    ),
    base_ejection_ms: opt(durationMs(1), 'First ejection in milliseconds; each further ejection doubles it. Default `30000`.', 30000),
    max_ejection_ms: opt(
      durationMs(1),
      'Longest ejection in milliseconds; a backend that stays in this long has its ejection count reset. Default `300000`.',
      300000,
    ),
    max_ejected_percent: opt(
      z.number().int().min(0).max(100),
      'Largest share of the pool (percent, rounded down to whole backends) ejected at once. Default `50`.',
      50,
    ),
    enabled: opt(z.boolean(), 'Set `false` in a pool to turn off outlier detection the top level switched on. Default `true`.', true),
  })
  .describe("Passive outlier detection of the pool; a pool's fields override the top-level `outlier_detection` field by field. Default: off.");

/** Per-backend connection, concurrency and queue limits. */
export const BackendLimitsSchema = z
  .strictObject({
    max_connections: opt(
      z.number().int().min(0).max(100000),
      'Most TCP connections to the backend (HTTP/1.1: keep-alive pool; HTTP/2: sessions); more requests wait for a free connection (within `timeouts.connect_ms`). `0`: the transport default (HTTP/1.1 no limit, HTTP/2 8 sessions). Default `0`.',
      0,
    ),
    max_concurrent_requests: opt(
      z.number().int().min(0).max(1000000),
      'Most requests in flight to the backend at once; more wait in its queue. `0`: no limit. Default `0`.',
      0,
    ),
    max_queued_requests: opt(
      z.number().int().min(0).max(1000000),
      'Most requests waiting for a slot of the backend (FIFO); more get 503 `queue_full` at once. Default `100`.',
      100,
    ),
    queue_timeout_ms: opt(durationMs(1), 'Longest wait in the queue in milliseconds; then 503 `queue_timeout`. Default `1000`.', 1000),
  })
  .describe('Per-backend limits: connections, concurrent requests and a bounded queue.');

/** Slow start of a pool's balancer. */
export const SlowStartSchema = z
  .strictObject({
    window_ms: opt(durationMs(1), 'How long a backend that (re)joins takes to reach its full weight, in milliseconds. Default `30000`.', 30000),
    aggression: opt(
      z.number().min(0.01).max(100),
      'Shape of the ramp: the share grows with (elapsed / window)^(1 / aggression); `1` is linear, larger values ramp faster at first. Default `1`.',
      1,
    ),
    min_weight_percent: opt(z.number().min(0).max(100), 'Share of its weight (percent) a backend gets right after (re)joining. Default `10`.', 10),
  })
  .describe("Slow start (as Envoy's slow_start_config): ramps a (re)joining backend's weight up over a window. Default: off.");

/** Retry budget. */
export const RetryBudgetSchema = z
  .strictObject({
    ratio: opt(
      z.number().min(0).max(10),
      'Retries allowed per request over a 10 s window, 0..10 (`0.2`: one retry per five requests). Default `0.2`.',
      0.2,
    ),
    min_per_second: opt(z.number().min(0).max(1e6), 'Retries per second always allowed, whatever the request count. Default `10`.', 10),
  })
  .describe('Retry budget of a pool: retries are at most `ratio` of requests plus `min_per_second`, so retries cannot multiply an outage.');

/** Retry policy. */
export const RetriesSchema = z
  .strictObject({
    attempts: opt(z.number().int().min(1).max(10), 'Most attempts per request, the first included, 1..10. Default `3`.', 3),
    per_try_timeout_ms: opt(
      durationMs(0),
      'Milliseconds each attempt may wait for response headers (within `timeouts.response_header_ms`); `0`: only `response_header_ms`. Default `0`.',
      0,
    ),
    on: opt(
      z.array(z.enum(['connect_failure', 'reset', 'timeout'])),
      'Failures that are retried: `connect_failure`, `reset` (the connection broke), `timeout` (no response headers in time). Default all three.',
      ['connect_failure', 'reset', 'timeout'],
    ),
    statuses: opt(
      z.array(z.number().int().min(500).max(599)),
      'Backend statuses (5xx) that are retried. Default `[502, 503, 504]`.',
      [502, 503, 504],
    ),
    backoff: BackoffSchema.optional().describe('Delay between retries. Default `{ base_ms: 25, cap_ms: 250, jitter: true }`.'),
    budget: RetryBudgetSchema.optional().describe('Retry budget per pool. Default `{ ratio: 0.2, min_per_second: 10 }`.'),
    buffer_body_bytes: opt(
      z
        .number()
        .int()
        .min(0)
        .max(16 * 1024 * 1024),
      'Request bodies with a declared length up to this many bytes are read before the first attempt, so they can be sent again; requests of other methods than GET, HEAD, OPTIONS, PUT, DELETE and TRACE are only retried (after something was sent) when their body was buffered. Default `65536`.',
      65536,
    ),
  })
  .describe('Retries on another backend. Without a `retries` section only connect failures are retried (3 attempts, any method).');

/** TLS towards HTTPS backends. */
export const UpstreamTlsSchema = z
  .strictObject({
    verify_certificates: opt(
      z.boolean(),
      'Verify backend certificates against the trusted CAs. Default `true`; turning it off is logged as a warning at every start.',
      true,
    ),
    strict_sni: opt(z.boolean(), 'Send SNI (the backend host name) in the TLS handshake. Default `true`.', true),
    ca_file: opt(
      nonEmpty(),
      "PEM CA bundle trusted for backend certificates instead of the system roots (put every CA needed in it); relative to the config file's folder. Default: the system roots.",
    ),
    ca_dir: rustOnly('CA directory'),
    client_certificate: opt(
      nonEmpty(),
      "PEM client certificate (leaf first, then any intermediates) that Spooky presents to backends that ask for one (mutual TLS); relative to the config file's folder; needs `client_key`. Default: none.",
    ),
    client_certificate_ref: rustOnly('client certificate secret reference'),
    client_key: opt(
      nonEmpty(),
      "PEM private key (unencrypted) of `client_certificate`; relative to the config file's folder; needs `client_certificate`. Default: none.",
    ),
    client_key_ref: rustOnly('client key secret reference'),
  })
  .describe('TLS settings towards HTTPS backends.');

/** A load-balancing policy. */
export const LoadBalancingSchema = z
  .strictObject({
    type: opt(
      z.enum(STRATEGY_NAMES as [string, ...string[]]),
      `Strategy: ${CANONICAL_STRATEGIES.join(', ')} (aliases accepted, see the reference). Default \`round-robin\`.`,
      'round-robin',
    ),
    key: opt(
      checked(parseHashKey),
      'Hash key for `consistent-hash`: `client_ip`, `header:NAME`, `cookie:NAME`, `query:NAME`, `path`, `authority` or `method`. Default `client_ip`.',
      'client_ip',
    ),
    hash_on: opt(
      checked(parseHashKey),
      'The spelling of `key` in a Rust Spooky sample config (`config.multi-upstream.yaml`): read as `key`, with a warning. Default none.',
    ),
    virtual_nodes: opt(
      z.number().int().min(1).max(10000),
      'For `consistent-hash`: ring points per backend at weight 100 (scaled by weight), 1..10000. Default `2000` (keeps every backend within about 5% of its weighted share).',
      2000,
    ),
    slow_start: SlowStartSchema.optional().describe(
      'Ramp the share of a backend that joins (added by a reload) or rejoins (healthy again, circuit closed, ejection over) over a window. Used by round-robin, weighted-round-robin, random, least-connections and latency-aware; ignored (warning) by ip-hash and consistent-hash. Default: off.',
    ),
  })
  .describe('Load-balancing policy of a pool.');

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

/** One header or query-parameter condition. */
export const ConditionSchema = z
  .union([
    equalsValue.describe('The value must equal this (numbers and booleans are compared as their text).'),
    z
      .strictObject({
        present: opt(z.boolean(), '`true`: the header/parameter must be present (any value); `false`: it must be absent.'),
        regex: opt(checked(parseRegex), 'The value must match this JavaScript regular expression (unanchored unless you anchor it).'),
        equals: opt(z.string(), 'The value must equal this string exactly.'),
      })
      .describe('Exactly one of `present`, `regex`, `equals`.'),
  ])
  .describe('A condition: a plain value (equals), `{ present: true|false }`, `{ regex: "..." }` or `{ equals: "..." }`.');

const hostPattern = () => checked(parseHostPattern);
const methodName = () => checked(parseMethod);

/** Body sampling of a route (see `src/observability/body-sample.ts`). */
export const BodySamplingSchema = z
  .strictObject({
    ratio: req(
      z.number().min(0).max(1),
      'Share of requests, 0..1, whose bodies are sampled (one decision per request covers both directions). Required.',
    ),
    directions: opt(
      z.array(z.enum(['request', 'response'])).min(1),
      'Which bodies of a sampled request are logged: `request`, `response` or both. Default `[request, response]`.',
      ['request', 'response'],
    ),
    max_bytes: opt(
      z.number().int().min(0).max(1048576),
      'Most body bytes copied into one sample record, 0..1048576 (the rest is only counted). Default `4096`.',
      4096,
    ),
    redact_headers: opt(
      z.array(checked(parseHeaderName)),
      'Header names (case-insensitive) whose values are written as `"[redacted]"`; replaces the default list. Default `[authorization, cookie, set-cookie, proxy-authorization]`.',
      ['authorization', 'cookie', 'set-cookie', 'proxy-authorization'],
    ),
  })
  .describe(
    'Body sampling of this route: request and response bodies of a share of requests, capped and with headers redacted, as `body_sample` log records. Default: off.',
  );

/** The conditions that lead a request to a pool. */
/** Response compression of a route. */
export const CompressionSchema = z
  .strictObject({
    encodings: opt(
      z
        .array(z.enum(['zstd', 'br', 'gzip']))
        .min(1)
        .refine((l) => new Set(l).size === l.length, 'each coding once'),
      'Codings offered, in order of preference when the client weights several alike (`zstd`, `br`, `gzip`). Default `[zstd, br, gzip]`.',
      ['zstd', 'br', 'gzip'],
    ),
    min_bytes: opt(
      z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      'Answers declaring a `content-length` below this many bytes are sent as they are. Default `1024`.',
      1024,
    ),
    types: opt(
      z
        .array(
          z
            .string()
            .regex(
              /^[a-z0-9!#$&^_.+-]+\/(\*|\*\+[a-z0-9!#$&^_.+-]+|[a-z0-9!#$&^_.+-]+)$/,
              'a lower-case media type such as `text/html`, `text/*` or `application/*+json`',
            ),
        )
        .min(1),
      'Media types compressed (`type/*` and `application/*+json` patterns allowed). Default: text, JSON, JavaScript, XML, SVG, WebAssembly and uncompressed fonts (see the README).',
    ),
  })
  .describe(
    "Compresses backends' answers with the client's preferred coding (`Accept-Encoding`), unless they are encoded already, too small, of another type, or marked `no-transform`. `{}` turns it on with the defaults. Default: off.",
  );

/** One rate-limit rule of a route. */
export const RateLimitRuleSchema = z
  .strictObject({
    name: opt(
      z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, `_`, `.`, `:` and `-` only'),
      'Policy name, shown in the `RateLimit-Policy` and `RateLimit` headers. Default: the `key`.',
    ),
    key: req(
      z.string().regex(/^(client_ip|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/, '`client_ip`, `route` or `header:NAME`'),
      'What a bucket is kept per: `client_ip` (after `trusted_proxies`), `header:NAME` (requests without the header share one bucket) or `route` (one bucket for the route). Required.',
    ),
    rate: req(z.number().positive().max(1_000_000), 'Requests per second allowed on average (tokens added per second; fractions allowed). Required.'),
    burst: opt(z.number().int().min(1).max(1_000_000), 'Requests allowed at once (bucket size). Default: `rate` rounded up.'),
    max_keys: opt(
      z.number().int().min(1).max(10_000_000),
      'Most keys (buckets) kept for this rule; at the cap the least recently used key is forgotten. Default `100000`.',
      100000,
    ),
    store: opt(
      z.enum(['local', 'redis']),
      'Where the buckets live: `local` (this process) or `redis` (shared by every instance using the top-level `redis`, which is then required). Default `local`.',
      'local',
    ),
  })
  .describe('A token bucket per key: `rate` per second, `burst` at once; over it the client gets 429.');

/** One route as written: match conditions plus per-route settings (body limit, methods, rate limits, body sampling). */
/** A header value a route sets or adds: a string (YAML would read `1.10` as the number 1.1, `007` as 7). */
const headerValue = z.unknown().superRefine((v, ctx) => {
  if (typeof v !== 'string') {
    ctx.addIssue({
      code: 'custom',
      message: `write header values as quoted strings (YAML reads this one as ${v === null ? 'null' : typeof v} ${String(v)})`,
    });
    return;
  }
  const r = parseHeaderValue(v);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
}) as unknown as z.ZodString;

/** Header changes of a route in one direction. */
function headerRules(direction: string, answers = false) {
  return z
    .strictObject({
      set: opt(z.record(checked(parseHeaderName), headerValue), 'Fields to set, by name: each replaces every field of that name. Default none.'),
      add: opt(z.record(checked(parseHeaderName), headerValue), 'Fields to add, by name: appended to those already there. Default none.'),
      remove: opt(z.array(checked(parseHeaderName)).min(1), 'Names whose fields are removed. Default none.'),
      ...(answers
        ? {
            always: opt(
              z.boolean(),
              "Also apply these rules to the error answers Spooky itself gives once this route matched (405, 413, 429, 502, 503, 504, ...), as nginx's `add_header ... always`. Default `false`.",
            ),
          }
        : {}),
    })
    .optional()
    .describe(`Changes to the ${direction}, applied after Spooky's own header handling: \`remove\`, then \`set\`, then \`add\`. Default none.`);
}

export const RouteSchema = z
  .strictObject({
    host: opt(
      z.union([hostPattern(), z.array(hostPattern()).min(1)]),
      'Host name(s) to match (case-insensitive, without port): exact (`api.example.com`) or a leading wildcard (`*.example.com`, which does not match the apex). Default: any host.',
    ),
    path_prefix: opt(
      checked(parsePath),
      'Path prefix to match; must start with `/`. Plain string prefix (`/api` also matches `/apix`), as in the Rust Spooky. Default: any path.',
    ),
    path: opt(
      checked(parsePath),
      'Exact path to match (an exact match beats any prefix). Alias `path_exact`. Not together with `path_prefix`. Default: any path.',
    ),
    path_exact: opt(checked(parsePath), 'Alias of `path`.'),
    method: opt(z.union([methodName(), z.array(methodName()).min(1)]), 'HTTP method(s) to match, case-insensitive. Default: any method.'),
    headers: opt(
      z.record(checked(parseHeaderName), ConditionSchema),
      'Request header conditions keyed by header name (case-insensitive); all must hold. Default none.',
    ),
    query: opt(
      z.record(nonEmpty(), ConditionSchema),
      'Query parameter conditions keyed by parameter name (case-sensitive); all must hold. Default none.',
    ),
    tags: opt(
      z.record(nonEmpty(), equalsValue),
      "Static tags of this route, e.g. `{ api_version: v2 }`: not matched against anything, but a value source for custom metric labels (`route_tag:KEY` in the pool's `metrics`). Default none.",
    ),
    allowed_methods: opt(
      z.array(checked(parseMethod)).min(1),
      'Methods this route accepts once it matched; others get 405 with an `Allow` header (HEAD is allowed with GET). Unlike `method`, not a match condition. Default: any.',
    ),
    max_request_body_bytes: opt(
      positiveInt(),
      'Largest request body of this route in bytes (overrides `limits.max_request_body_bytes`). Default: the global limit.',
    ),
    rate_limits: opt(z.array(RateLimitRuleSchema).min(1), 'Rate-limit rules of this route; a request must pass every rule, in order. Default none.'),
    body_sampling: BodySamplingSchema.optional(),
    rewrite: z
      .strictObject({
        prefix: opt(
          checked(parseRewritePath),
          "Replaces the part of the path that the route's `path_prefix` matched (`path_prefix: /api/` with `prefix: /` sends `/api/users` as `/users`). Needs `path_prefix`.",
        ),
        path: opt(checked(parseRewritePath), 'Replaces the whole path (`/healthz` sends every matched request to `/healthz`).'),
      })
      .optional()
      .describe(
        'Rewrites the path before forwarding (one of `prefix` or `path`); the query is kept. The access log shows the path the client sent. Default: forwarded as routed.',
      ),
    request_headers: headerRules('request headers sent to the backend'),
    response_headers: headerRules("backend's response headers sent to the client", true),
    compression: CompressionSchema.optional(),
    basic_auth: z
      .strictObject({
        realm: opt(
          z.string().regex(/^[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'printable ASCII without `"` or `\\`, at most 128 characters'),
          'The realm named in the `WWW-Authenticate` challenge. Default `restricted`.',
          'restricted',
        ),
        users: req(
          z
            .array(
              z.strictObject({
                username: req(
                  z.string().regex(/^[^:\p{Cc}]{1,256}$/u, 'a name of 1..256 characters without `:` or control characters'),
                  'User name. Required.',
                ),
                password_hash: req(
                  z
                    .string()
                    .regex(
                      /^\$(2[aby]\$\d\d\$[./A-Za-z0-9]{53}|argon2(id|i|d)\$\S+)$/,
                      'a bcrypt (`$2b$...`) or Argon2 (`$argon2id$...`) hash; make one with `spooky hash-password`',
                    ),
                  'bcrypt or Argon2 hash of the password (`spooky hash-password` prints one). Required.',
                ),
              }),
            )
            .min(1)
            .refine((l) => new Set(l.map((u) => u.username)).size === l.length, 'each user name once'),
          'Users allowed in. Required, at least one.',
        ),
        forward_authorization: opt(
          z.boolean(),
          "Pass the client's `Authorization` field on to the backend. Default `false` (removed: the backend never sees the password).",
          false,
        ),
      })
      .optional()
      .describe(
        "HTTP Basic authentication (RFC 7617): a request without valid credentials gets 401 with a `WWW-Authenticate` challenge; checked after the route's rate limits. Default: none.",
      ),
    client_ips: z
      .strictObject({
        allow: opt(
          z.array(checked(parseCidr)).min(1),
          'CIDRs or single IPs (IPv4/IPv6) that may use this route; every other address gets 403. Default: any address.',
        ),
        deny: opt(z.array(checked(parseCidr)).min(1), 'CIDRs or single IPs refused with 403, even when `allow` lists them. Default: none.'),
      })
      .refine((c) => c.allow !== undefined || c.deny !== undefined, 'give `allow`, `deny` or both')
      .optional()
      .describe(
        "Which client addresses may use this route, by the client address after `trusted_proxies` (as nginx's allow/deny); refused ones get 403 before the route's methods, rate limits or backends are touched. Default: every address.",
      ),
  })
  .describe('Route conditions; every condition that is set must hold.');

// ---------------------------------------------------------------------------------------------------
// Health checks
// ---------------------------------------------------------------------------------------------------

const probeFields = {
  path: opt(checked(parsePath), 'Probe request path. Default `/health`.', '/health'),
  method: opt(methodName(), 'Probe request method. Default `GET`.', 'GET'),
  interval: opt(durationMs(1), 'Milliseconds between probes (key name as in the Rust Spooky). Default `5000`.', 5000),
  timeout_ms: opt(durationMs(1), 'Probe timeout in milliseconds. Default `1000`.', 1000),
  expected_status: opt(
    z.union([
      z
        .number()
        .int()
        .superRefine((v, ctx) => {
          const r = parseStatusRange(v);
          if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
        }),
      checked(parseStatusRange),
    ]),
    'Statuses counted as success: a status (`200`), an inclusive range (`"200-399"`) or a class (`"2xx"`), within 100..599. Default `"200-399"`.',
    '200-399',
  ),
  host: opt(nonEmpty(), "Host header of the probe. Default: the backend address's host."),
  headers: opt(z.record(checked(parseHeaderName), equalsValue), 'Extra request headers of the probe. Default none.'),
  address: opt(
    checked(parseBackendAddress),
    "Probe this address (`scheme://host:port`, same schemes as backend addresses) instead of the backend's own, e.g. a sidecar port. Default: the backend's address.",
  ),
};

/** One active probe. Unset fields come from the enclosing `health_check`. */
export const ProbeSchema = z.strictObject(probeFields).describe('One probe endpoint; unset fields come from the enclosing health_check.');

/** A health policy (pool level or backend level). */
export const HealthCheckSchema = z
  .strictObject({
    ...probeFields,
    failure_threshold: opt(positiveInt(), 'Consecutive failed probes before the backend is marked unhealthy, >= 1. Default `3`.', 3),
    success_threshold: opt(positiveInt(), 'Consecutive successful probes before an unhealthy backend is marked healthy again, >= 1. Default `2`.', 2),
    cooldown_ms: opt(
      durationMs(0),
      'Milliseconds an unhealthy backend stays out before probes (or, without probes, traffic) may bring it back, >= 0. Default `5000`.',
      5000,
    ),
    initial: opt(z.enum(['healthy', 'unhealthy']), 'State before the first probe result. Default `healthy`.', 'healthy'),
    passive_failure_threshold: opt(
      z.number().int().min(0),
      'Passive health: consecutive failed real requests (connect errors, resets, 502/503/504 from the backend) that take the backend out for `cooldown_ms`; `0` disables. Default `5`.',
      5,
    ),
    probes: opt(
      z.array(ProbeSchema),
      'Several probe endpoints; the backend is up only while all pass. When given, these are the probes (each inherits unset fields from this health_check); otherwise the probe fields here make the single probe. `[]` disables active probes. Default: the single probe.',
    ),
  })
  .describe(
    'Health policy. Absent on both pool and backend: no active probes (passive checks still apply). Backend fields override pool fields one by one.',
  );

// ---------------------------------------------------------------------------------------------------
// Pools
// ---------------------------------------------------------------------------------------------------

/** One backend server. */
export const BackendSchema = z
  .strictObject({
    id: req(nonEmpty(), 'Backend id, unique within the pool (used in logs and metrics). Required.'),
    address: req(
      checked(parseBackendAddress),
      "Backend origin. `http://host:port` = HTTP/1.1; `https://host:port` = HTTP/2 over TLS (falls back to HTTP/1.1); `h2c://host:port` = HTTP/2 cleartext; bare `host:port` = `https://` (the Rust Spooky's meaning); bare `host` = `https://host:443`. Default ports 80 (http, h2c) and 443 (https). Required.",
    ),
    weight: opt(z.number().int().min(1).max(1000), 'Relative share of traffic, 1..1000. Default `100`.', 100),
    health_check: HealthCheckSchema.optional().describe(
      "Health policy of this backend; overrides the pool's `health_check` field by field. Absent on both: no active probes.",
    ),
    limits: BackendLimitsSchema.optional().describe(
      "Limits of this backend; override the pool's `backend_limits` field by field. Default: the pool's.",
    ),
  })
  .describe('A backend server.');

/** The Host header policy of a pool. */
export const HostPolicySchema = z
  .strictObject({
    mode: opt(
      z.enum(Object.keys(HOST_POLICY_MODES) as [string, ...string[]]),
      "`pass-through` keeps the client's Host; `rewrite` sets `host`; `upstream` uses the backend address's host:port. Rust spellings (`pass_through`, `static_upstream`, ...) accepted. Default `pass-through`.",
      'pass-through',
    ),
    host: opt(
      z.string().regex(/^[^\s/?#@]+$/, 'expected a host name, optionally with :port'),
      'Host header value for `mode: rewrite` (required there, not allowed otherwise).',
    ),
  })
  .describe('How the Host header reaches the backends.');

/** One label of a pool's custom metrics. */
export const CustomLabelSchema = z
  .strictObject({
    name: req(
      checked(parseLabelName),
      'Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, not `pool`, `route`, `status_class` or `le`). Required.',
    ),
    from: req(
      checked(parseLabelSource),
      "Where the value comes from: `request_header:NAME`, `response_header:NAME` or `route_tag:KEY` (a key of the matched route's `tags`). A missing value is the empty string. Required.",
    ),
  })
  .describe('A custom metric label and the source of its value.');

/** Custom metrics of a pool. */
export const PoolMetricsSchema = z
  .strictObject({
    labels: req(
      z
        .array(CustomLabelSchema)
        .min(1)
        .max(5)
        .superRefine((labels, ctx) => {
          const seen = new Set<string>();
          labels.forEach((l, i) => {
            if (seen.has(l.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate label name "${l.name}"` });
            seen.add(l.name);
          });
        }),
      'Extra labels of `spooky_custom_requests_total` and `spooky_custom_request_duration_seconds` for this pool, 1..5, unique names. Required.',
    ),
    max_values: opt(
      z.number().int().min(1).max(10000),
      'Distinct values kept per label (per pool, per config generation), 1..10000; further new values are counted as `other`, which bounds the number of series. Default `100`.',
      100,
    ),
  })
  .describe('Custom metrics: request counter and latency histogram of this pool, labelled by header values or route tags.');

/** A pool: route, policy, backends. */
export const PoolSchema = z
  .strictObject({
    route: opt(
      z.union([RouteSchema, z.array(RouteSchema).min(1)]),
      'Route(s) leading to this pool: one object, or a list where any may match. Default: no conditions (catch-all).',
    ),
    load_balancing: LoadBalancingSchema.optional().describe(
      'Balancing policy of this pool. Default: the top-level `load_balancing`, else round-robin.',
    ),
    host_policy: HostPolicySchema.optional().describe('Host header policy. Default `pass-through`.'),
    tls: UpstreamTlsSchema.optional().describe("TLS towards this pool's HTTPS backends; unset fields come from the top-level `upstream_tls`."),
    health_check: HealthCheckSchema.optional().describe(
      "Health policy for the backends of this pool; each backend's own `health_check` overrides it field by field. Default: none (no active probes; passive checks with their defaults).",
    ),
    backends: req(z.array(BackendSchema).min(1), 'The backends, in order. Required, at least one.'),
    timeouts: TimeoutsSchema.optional().describe('Timeouts of this pool; unset fields come from the top-level `timeouts`.'),
    retries: RetriesSchema.optional().describe('Retry policy of this pool; unset fields come from the top-level `retries`, then the defaults.'),
    circuit_breaker: CircuitBreakerSchema.optional(),
    outlier_detection: OutlierDetectionSchema.optional(),
    backend_limits: BackendLimitsSchema.optional().describe(
      "Default limits of this pool's backends (connections, concurrent requests, queue); each backend's `limits` overrides them field by field. Default: none.",
    ),
    metrics: PoolMetricsSchema.optional().describe(
      'Custom metrics of this pool, labelled by a request header, a response header or a route tag (for example a tenant or an API version). Default none.',
    ),
    forwarded_headers: rustOnly('forwarded header policy'),
  })
  .describe('A pool of backends and the route that leads to it.');

// ---------------------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------------------

/** The Rust Spooky's `log.file` shape. */
export const LogFileSchema = z
  .strictObject({
    enabled: opt(z.boolean(), 'Write the log to `path` instead of stdout. Default `false`.', false),
    path: opt(nonEmpty(), "Log file path; relative to the config file's folder. Default `/var/log/spooky/spooky.log`.", '/var/log/spooky/spooky.log'),
  })
  .describe('Log file (Rust Spooky shape).');

/** Access-log sampling. */
export const AccessSamplingSchema = z
  .strictObject({
    ratio: opt(z.number().min(0).max(1), 'Share of access records written, 0..1. Default `1` (all).', 1),
    always_log_errors: opt(
      z.boolean(),
      'Write every record of a failed request (status >= 500, or any Spooky error code such as `no_route` or `client_aborted`) whatever `ratio` says. Default `true`.',
      true,
    ),
  })
  .describe('Access-log sampling: write only a share of the access records. Default: every record.');

/** Logging settings. */
export const LogSchema = z
  .strictObject({
    level: opt(
      z.enum([...LOG_LEVELS, ...Object.keys(LOG_LEVEL_ALIASES)] as [string, ...string[]]),
      'Minimum level: trace, debug, info, warn, error, fatal, silent. Rust names accepted: whisper, haunt, spooky, scream, poltergeist, silence. Default `info`.',
      'info',
    ),
    format: opt(z.enum(['json', 'text', 'plain']), '`json` or `text` (`plain` = text, the Rust name). Default `json`.', 'json'),
    file: opt(
      z.union([nonEmpty(), LogFileSchema]),
      "Log file: a path, or `{ enabled, path }` (Rust shape). Relative to the config file's folder. Default: stdout.",
    ),
    access_log: opt(z.boolean(), 'Write one access-log line per request. Default `true`.', true),
    access_file: opt(
      nonEmpty(),
      "Separate file for access records and body samples (like nginx `access_log`); relative to the config file's folder. Default: the same output as the other records (`file` or stdout).",
    ),
    access_sampling: AccessSamplingSchema.optional(),
  })
  .describe('Logging: level, format, destination and access log.');

// ---------------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------------

/** Hot reload settings. */
export const ReloadSchema = z
  .strictObject({
    watch: opt(
      z.boolean(),
      'Watch the config file and every listener certificate and key file, and reload when one changes (SIGHUP, `spooky reload` and `POST /reload` work either way). Default `false`.',
      false,
    ),
    debounce_ms: opt(
      durationMs(0).max(60000),
      'Milliseconds of quiet after the last change of a watched file before the reload runs, 0..60000. Default `500`.',
      500,
    ),
  })
  .describe('Hot reload: optional watching of the config and certificate files.');

/** Graceful shutdown settings. */
export const ShutdownSchema = z
  .strictObject({
    drain_timeout_ms: opt(
      durationMs(0),
      'Milliseconds in-flight requests get to finish after SIGTERM/SIGINT before they are cut (and how long the TCP connections of a listener a reload replaced or removed may finish). Default `30000`.',
      30000,
    ),
  })
  .describe('Graceful shutdown: how long to wait for in-flight requests.');

/** OpenTelemetry tracing settings. */
/** The Redis server that rate-limit rules with `store: redis` share their buckets through. */
export const RedisSchema = z
  .strictObject({
    url: req(
      z
        .string()
        .refine((s) => /^rediss?:\/\/[^/\s]/.test(s) && URL.canParse(s), 'must be a redis:// or rediss:// (TLS) URL')
        .refine(
          (s) => !URL.canParse(s) || (new URL(s).username === '' && new URL(s).password === ''),
          'credentials in the URL are not allowed; use `username` and `password_file`',
        )
        .refine((s) => !URL.canParse(s) || /^(\/\d{0,2})?$/.test(new URL(s).pathname), 'the path may only be a database number, like `/0`')
        .refine((s) => !/[?#]/.test(s), 'no query or fragment (it would be ignored)'),
      'Server URL: `redis://host:port[/db]`, or `rediss://` for TLS (verified against the system roots). Required.',
    ),
    username: opt(nonEmpty(), 'ACL user name. Default: none (the `default` user).'),
    password_file: opt(
      nonEmpty(),
      'File holding the password (surrounding whitespace ignored), read at start and at every reload; relative to the config file. Default: none.',
    ),
    timeout_ms: opt(
      durationMs(1),
      'Longest wait for one Redis answer (and for connecting) in milliseconds; past it the request is decided by `failure_mode`. Default `50`.',
      50,
    ),
    retry_ms: opt(
      durationMs(1),
      'After a failure, how long Redis is left alone (requests decided by `failure_mode` at once) before one request tries it again, in milliseconds. Default `1000`.',
      1000,
    ),
    key_prefix: opt(z.string().max(256), 'Prefix of every key Spooky writes. Default `spooky:rl:`.', 'spooky:rl:'),
    failure_mode: opt(
      z.enum(['local', 'allow', 'deny']),
      "What a `store: redis` rule does while Redis cannot answer: `local` applies the rule with this process's own buckets, `allow` lets requests through, `deny` refuses them with 503. Default `local`.",
      'local',
    ),
  })
  .describe('A Redis server shared by several Spooky instances (or workers), for rate limits with `store: redis`. Default: none.');

/** The Kubernetes ingress controller: which Ingresses Spooky serves and how it reaches the API server. */
export const KubernetesSchema = z
  .strictObject({
    ingress_class: opt(
      z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a Kubernetes object name (lower case, digits, `-` and `.`)'),
      'The IngressClass whose Ingresses Spooky serves (`spec.ingressClassName`, or the older `kubernetes.io/ingress.class` annotation); Ingresses naming no class too when that IngressClass is marked the default. Default `spooky`.',
      'spooky',
    ),
    namespaces: opt(
      z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name')).max(64),
      'Namespaces to watch; empty: every namespace (needs a ClusterRole). Default `[]`.',
      [],
    ),
    kubeconfig: opt(
      nonEmpty(),
      "A kubeconfig file (its current context); relative to the config file. Default: the pod's service account when running in a cluster (`KUBERNETES_SERVICE_HOST`), else `$KUBECONFIG` or `~/.kube/config`.",
    ),
    publish_address: opt(
      nonEmpty(),
      'IP address or host name written to the `status.loadBalancer` of every Ingress Spooky serves (what `kubectl get ingress` shows as ADDRESS). Default: none (status is not written).',
    ),
    debounce_ms: opt(
      z.number().int().min(0).max(60000),
      'Changes in the cluster within this many milliseconds become one reload. Default `200`.',
      200,
    ),
    sync_timeout_ms: opt(
      durationMs(1),
      'At start, how long Spooky waits for the first complete list of every watched kind before it starts anyway (and logs what is missing). Default `10000`.',
      10000,
    ),
  })
  .describe(
    'Runs Spooky as a Kubernetes ingress controller: pools and SNI certificates come from Ingresses, Services, EndpointSlices and TLS Secrets, on top of this file, reloaded as they change. Read at start only. Default: off.',
  );

export const TracingSchema = z
  .strictObject({
    enabled: opt(
      z.boolean(),
      'Record a SERVER span per request and a CLIENT span per upstream attempt and export them over OTLP/HTTP. When off, only trace ids are kept (access log, `traceparent` to backends). Default `false`.',
      false,
    ),
    endpoint: opt(
      z
        .string()
        .refine((s) => /^https?:\/\/[^/\s]/.test(s) && URL.canParse(s), 'must be an http:// or https:// URL')
        .refine(
          (s) => !URL.canParse(s) || (new URL(s).username === '' && new URL(s).password === ''),
          'credentials in the URL are not allowed; use `headers` (e.g. authorization)',
        ),
      'OTLP/HTTP traces URL, the full path included (no credentials: use `headers`; a query is shown as `?[redacted]` in `/config` and logs). Default `http://127.0.0.1:4318/v1/traces`.',
      'http://127.0.0.1:4318/v1/traces',
    ),
    sample_ratio: opt(
      z.number().min(0).max(1),
      'Share of new traces recorded, 0..1 (ParentBased: a request with a `traceparent` follows its sampled flag instead). Default `1`.',
      1,
    ),
    service_name: opt(nonEmpty(), 'The `service.name` resource attribute. Default `spooky`.', 'spooky'),
    resource_attributes: opt(
      z.record(nonEmpty(), z.union([z.string(), z.number(), z.boolean()])),
      'More resource attributes, for example `deployment.environment.name: prod`. Default none.',
    ),
    headers: opt(
      z.record(
        checked(parseHeaderName),
        z.string().refine((v) => !/[\r\n\0]/.test(v), 'must not contain CR, LF or NUL'),
      ),
      'HTTP headers sent with every export (for example an API key); redacted in the admin `/config`. Default none.',
    ),
    export_timeout_ms: opt(
      durationMs(1),
      'Milliseconds one export request may take; also the longest wait for the final flush at shutdown. Default `10000`.',
      10000,
    ),
    batch_delay_ms: opt(durationMs(1), 'Milliseconds between batch exports. Default `5000`.', 5000),
    max_batch_size: opt(positiveInt(), 'Most spans per export request. Default `512`.', 512),
    max_queue_size: opt(positiveInt(), 'Most finished spans waiting for export; more are dropped. Default `2048`.', 2048),
  })
  .describe('OpenTelemetry tracing: spans over OTLP/HTTP, W3C trace context to backends.');

// ---------------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------------

/** Alert kinds, in documentation order (the `kind` of the webhook payload). */
export const ALERT_KINDS = [
  'backend_unhealthy',
  'pool_unavailable',
  'route_error_rate',
  'route_latency_p99',
  'certificate_expiring',
  'reload_failed',
] as const;

/** An http:// or https:// URL without credentials (the alert webhook target). */
const webhookUrl = () =>
  z.string().superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a URL: ${JSON.stringify(value)}` });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      ctx.addIssue({ code: 'custom', message: `unsupported scheme "${url.protocol}//"; use http:// or https://` });
    if (url.username || url.password)
      ctx.addIssue({ code: 'custom', message: 'credentials in the URL are not allowed; use `headers` (e.g. authorization)' });
  });

/** One alert webhook. */
export const AlertWebhookSchema = z
  .strictObject({
    name: opt(
      z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'use 1..64 of A-Z a-z 0-9 _ . : -'),
      'Name in logs and in the `webhook` metric label. Default `webhook<index>` (0-based).',
    ),
    url: req(webhookUrl(), 'http:// or https:// URL the alerts are POSTed to as JSON. Required.'),
    kinds: opt(z.array(z.enum(ALERT_KINDS)).min(1), `Alert kinds this webhook receives (${ALERT_KINDS.join(', ')}). Default: all.`),
    send_resolved: opt(z.boolean(), 'Also send `resolved` notifications (a condition that ended). Default `true`.', true),
    headers: opt(
      z.record(checked(parseHeaderName), z.string().regex(/^[^\r\n\0]*$/, 'no CR, LF or NUL in a header value')),
      'Extra request headers (e.g. `authorization`); their values are redacted in `/config`. Default none.',
    ),
    timeout_ms: opt(durationMs(1), 'Milliseconds one delivery attempt may take (connect to response headers). Default `5000`.', 5000),
  })
  .describe('An alert webhook: where alerts are POSTed.');

/** A rule over a sliding window of a route's requests. */
const windowFields = {
  window_ms: opt(durationMs(100), 'Length of the sliding window in milliseconds (10 slots). Default `60000`.', 60000),
  min_requests: opt(positiveInt(), 'Fewest requests in the window before the rule can fire. Default `20`.', 20),
};

/** Alert rules. */
export const AlertRulesSchema = z
  .strictObject({
    backend_unhealthy: opt(z.boolean(), 'Alert when a backend becomes unhealthy (resolved when healthy again). Default `true`.', true),
    pool_unavailable: opt(
      z.boolean(),
      'Alert when no backend of a pool can take a request: unhealthy, circuit open or ejected (resolved when one can again). Default `true`.',
      true,
    ),
    reload_failed: opt(z.boolean(), 'Alert when a config reload is refused. Default `true`.', true),
    certificate_expiring: opt(
      z.strictObject({
        enabled: opt(z.boolean(), 'Check listener certificates. Default `true`.', true),
        days: opt(z.number().int().min(1).max(3650), 'Alert when a listener certificate expires within this many days. Default `14`.', 14),
        check_interval_ms: opt(
          durationMs(1000),
          'Milliseconds between checks (also checked at start and on every reload). Default `21600000` (6 h).',
          21600000,
        ),
      }),
      'Listener certificate expiry rule. Default on, 14 days.',
    ),
    route_error_rate: opt(
      z.strictObject({
        threshold: opt(z.number().gt(0).lt(1), 'Share of 5xx answers (0..1, exclusive) above which a route fires. Default `0.05`.', 0.05),
        ...windowFields,
      }),
      "Alert when a route's share of 5xx answers is over `threshold` for the window. Default off.",
    ),
    route_latency_p99: opt(
      z.strictObject({
        threshold_ms: opt(z.number().gt(0), 'p99 of total request time (milliseconds) above which a route fires. Default `1000`.', 1000),
        ...windowFields,
      }),
      "Alert when a route's p99 latency is over `threshold_ms` for the window. Default off.",
    ),
  })
  .describe('Which conditions raise alerts.');

/** Alert webhooks, delivery and rules. */
export const AlertsSchema = z
  .strictObject({
    instance: opt(nonEmpty(), 'Name of this Spooky in every alert (`instance`). Default: the host name.'),
    webhooks: opt(z.array(AlertWebhookSchema), 'Where alerts are POSTed. Default none (alerts are only logged and counted).'),
    retries: opt(
      z
        .strictObject({
          attempts: opt(z.number().int().min(1).max(20), 'Most delivery attempts per alert and webhook, the first included. Default `5`.', 5),
          base_ms: opt(
            durationMs(0),
            'Backoff base in milliseconds: the delay before retry n is uniform in [0, min(cap_ms, base_ms x 2^n)). Default `500`.',
            500,
          ),
          cap_ms: opt(durationMs(0), 'Largest backoff ceiling in milliseconds. Default `30000`.', 30000),
        })
        .superRefine((r, ctx) => {
          if (r.base_ms !== undefined && r.cap_ms !== undefined && r.cap_ms < r.base_ms)
            ctx.addIssue({ code: 'custom', path: ['cap_ms'], message: '`cap_ms` must be at least `base_ms`' });
        }),
      'Delivery retries with exponential backoff and full jitter. Default `{ attempts: 5, base_ms: 500, cap_ms: 30000 }`.',
    ),
    min_interval_ms: opt(
      durationMs(0),
      'Shortest time in milliseconds between two notifications of the same alert (kind + subject); changes in between are held and only the latest state is sent. Default `60000`.',
      60000,
    ),
    queue_size: opt(
      positiveInt().max(100000),
      'Most deliveries waiting per webhook; further alerts for it are dropped (counted and logged). Default `1000`.',
      1000,
    ),
    rules: opt(AlertRulesSchema, 'Which conditions raise alerts. Default: each rule at its own default (see each).'),
  })
  .describe('Alert webhooks: rules, deduplication and delivery.');

// ---------------------------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------------------------

/** The whole config file. */
export const ConfigFileSchema = z
  .strictObject({
    version: opt(z.literal(1), 'Config format version; only `1`. Default `1`.', 1),
    listen: ListenerSchema.optional().describe(
      'The traffic listener (Rust Spooky shape). Ignored when `listeners` is non-empty. Default: none (one of `listen` and `listeners` is required).',
    ),
    listeners: opt(
      z.array(ListenerSchema),
      'Several traffic listeners, same shape as `listen`; when non-empty they replace `listen`. Default: none.',
    ),
    admin: AdminSchema.optional(),
    http_redirect: z
      .strictObject({
        port: req(port(), 'Plain-HTTP port to listen on, 0..65535 (`0` picks a free port; not with `workers` > 1). Required.'),
        address: opt(checked(parseBindAddress), "Bind address. Default: the first listener's address."),
        https_port: opt(
          z.number().int().min(1).max(65535),
          "The HTTPS port clients are redirected to, 1..65535. Default: the first listener's port (as bound).",
        ),
      })
      .optional()
      .describe(
        'A plain-HTTP listener that answers every request with `308 Permanent Redirect` to the same host and target over HTTPS (nothing is proxied on it). Default: none.',
      ),
    trusted_proxies: opt(
      z.array(checked(parseCidr)),
      'CIDRs or single IPs (IPv4/IPv6) of proxies in front of Spooky whose X-Forwarded-For / Forwarded headers are trusted. Default none.',
    ),
    limits: LimitsSchema.optional(),
    timeouts: TimeoutsSchema.optional(),
    retries: RetriesSchema.optional(),
    circuit_breaker: CircuitBreakerSchema.optional().describe(
      'Default circuit breaker of every pool; pools override it field by field. Default: off.',
    ),
    outlier_detection: OutlierDetectionSchema.optional().describe(
      'Default outlier detection of every pool; pools override it field by field. Default: off.',
    ),
    upstream_tls: UpstreamTlsSchema.optional().describe(
      'TLS settings towards HTTPS backends for every pool; pools may override any field. Default: verify against the system roots, with SNI.',
    ),
    load_balancing: LoadBalancingSchema.optional().describe('Fallback balancing policy for pools without their own. Default round-robin.'),
    upstream: opt(
      z.record(nonEmpty(), PoolSchema),
      'The pools, keyed by pool name, in order. Required, at least one (with `kubernetes`: optional, Ingresses add pools).',
    ),
    log: LogSchema.optional(),
    reload: ReloadSchema.optional(),
    shutdown: ShutdownSchema.optional(),
    tracing: TracingSchema.optional(),
    alerts: AlertsSchema.optional(),
    redis: RedisSchema.optional(),
    kubernetes: KubernetesSchema.optional(),
    workers: opt(
      z.union([z.number().int().min(1).max(MAX_WORKERS), z.literal('auto')]),
      'Worker processes sharing the traffic ports (`SO_REUSEPORT`), 1..64, or `auto` (one per available CPU). With more than 1 the started process supervises the workers (admin listener, reloads, restarts). Read at start only. Default `1`.',
      1,
    ),
    performance: rustOnly('performance tuning; use `timeouts` and `limits`'),
    resilience: rustOnly('resilience policies'),
    observability: rustOnly('observability endpoints; use `admin`'),
    security: rustOnly('privilege drop'),
    secrets: rustOnly('secret sources'),
  })
  .describe('Spooky configuration file (format version 1).');

/** The config file as written (after YAML parsing and schema validation; no defaults applied). */
export type ConfigFile = z.infer<typeof ConfigFileSchema>;
/** One pool as written. */
export type PoolFile = z.infer<typeof PoolSchema>;
/** One route as written. */
export type RouteFile = z.infer<typeof RouteSchema>;
/** One health_check map as written. */
export type HealthCheckFile = z.infer<typeof HealthCheckSchema>;
/** One probe as written. */
export type ProbeFile = z.infer<typeof ProbeSchema>;
/** One listener as written. */
export type ListenerFile = z.infer<typeof ListenerSchema>;
/** One upstream_tls/tls map as written. */
export type UpstreamTlsFile = z.infer<typeof UpstreamTlsSchema>;
/** One load_balancing map as written. */
export type LoadBalancingFile = z.infer<typeof LoadBalancingSchema>;
/** One header/query condition as written. */
export type ConditionFile = z.infer<typeof ConditionSchema>;
/** One timeouts map as written. */
export type TimeoutsFile = z.infer<typeof TimeoutsSchema>;
/** One retries map as written. */
export type RetriesFile = z.infer<typeof RetriesSchema>;
/** One circuit_breaker map as written. */
export type CircuitBreakerFile = z.infer<typeof CircuitBreakerSchema>;
/** One outlier_detection map as written. */
export type OutlierDetectionFile = z.infer<typeof OutlierDetectionSchema>;
/** The `alerts` section as written. */
export type AlertsFile = z.infer<typeof AlertsSchema>;
/** One backend_limits / limits map as written. */
export type BackendLimitsFile = z.infer<typeof BackendLimitsSchema>;
/** One slow_start map as written. */
export type SlowStartFile = z.infer<typeof SlowStartSchema>;
