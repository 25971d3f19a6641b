/**
 * The one error type of Spooky. Every failure that can reach a client or a log carries a stable `code`,
 * where it came from (`source`), and whether a retry on another backend is safe (`retryable`).
 * The status a client sees is decided in one place: {@link statusFor}.
 */

/** Stable error codes. They appear in logs and metrics; never rename one. */
export type ErrorCode =
  | 'no_route' // no route matched the request (404)
  | 'bad_request' // malformed request: bad host, bad header, bad target (400)
  | 'misdirected_request' // host does not belong to this listener / certificate (421)
  | 'body_too_large' // request body over the limit (413)
  | 'headers_too_large' // request headers over the limit (431)
  | 'rate_limited' // over a rate limit (429)
  | 'forbidden' // the client address is not admitted by the route's client_ips (403)
  | 'unauthorized' // no or wrong credentials for the route's basic_auth (401)
  | 'rate_limit_unavailable' // a `store: redis` rate limit could not be checked and `redis.failure_mode` is `deny` (503)
  | 'uri_too_long' // request target over limits.max_uri_bytes (414)
  | 'method_not_allowed' // method not in the route's allowed_methods (405)
  | 'overloaded' // over limits.max_in_flight (503)
  | 'too_many_concurrent' // the client is over limits.max_in_flight_per_client (429)
  | 'no_healthy_backend' // pool has no available backend (503)
  | 'queue_full' // the chosen backend is at its request limit and its queue is full (503)
  | 'queue_timeout' // waited in the backend's queue longer than its queue timeout (503)
  | 'upstream_connect_failed' // could not connect; nothing was sent (502, retryable)
  | 'upstream_reset' // connection broke after the request started (502)
  | 'upstream_protocol_error' // the backend spoke invalid HTTP (502)
  | 'upstream_timeout' // no response headers in time (504)
  | 'client_aborted' // the client went away (499, never charged to the backend)
  | 'client_timeout' // the client did not send its request body within timeouts.request_ms (408, never charged)
  | 'config_invalid' // configuration failed validation
  | 'internal'; // a bug in Spooky (500)

/** Who is to blame for an error: the client, the backend, or Spooky itself. */
export type ErrorSource = 'downstream' | 'upstream' | 'internal';

/** Status code for each error code: the single table that maps failures to HTTP. */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  no_route: 404,
  bad_request: 400,
  misdirected_request: 421,
  body_too_large: 413,
  headers_too_large: 431,
  rate_limited: 429,
  forbidden: 403,
  unauthorized: 401,
  rate_limit_unavailable: 503,
  uri_too_long: 414,
  method_not_allowed: 405,
  overloaded: 503,
  too_many_concurrent: 429,
  no_healthy_backend: 503,
  queue_full: 503,
  queue_timeout: 503,
  upstream_connect_failed: 502,
  upstream_reset: 502,
  upstream_protocol_error: 502,
  upstream_timeout: 504,
  client_aborted: 499,
  client_timeout: 408,
  config_invalid: 500,
  internal: 500,
};

const SOURCE_BY_CODE: Readonly<Record<ErrorCode, ErrorSource>> = {
  no_route: 'downstream',
  bad_request: 'downstream',
  misdirected_request: 'downstream',
  body_too_large: 'downstream',
  headers_too_large: 'downstream',
  rate_limited: 'downstream',
  forbidden: 'downstream',
  unauthorized: 'downstream',
  rate_limit_unavailable: 'internal',
  uri_too_long: 'downstream',
  method_not_allowed: 'downstream',
  overloaded: 'internal',
  too_many_concurrent: 'downstream',
  no_healthy_backend: 'internal',
  queue_full: 'internal',
  queue_timeout: 'internal',
  upstream_connect_failed: 'upstream',
  upstream_reset: 'upstream',
  upstream_protocol_error: 'upstream',
  upstream_timeout: 'upstream',
  client_aborted: 'downstream',
  client_timeout: 'downstream',
  config_invalid: 'internal',
  internal: 'internal',
};

/** A failure with a stable code; see {@link ErrorCode}. */
export class SpookyError extends Error {
  /** The stable error code (also the access log's `error`). */
  readonly code: ErrorCode;
  /** Whose doing it is: the client's, the backend's, or Spooky's own. */
  readonly source: ErrorSource;
  /** True when nothing reached the backend, so another backend may be tried for any method. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'SpookyError';
    this.code = code;
    this.source = SOURCE_BY_CODE[code];
    this.retryable = options.retryable ?? code === 'upstream_connect_failed';
  }

  /** The HTTP status a client gets for this error. */
  get status(): number {
    return STATUS_BY_CODE[this.code];
  }
}

/** The short plain-text body a client gets for each error code (never internal details). */
export const PUBLIC_MESSAGE: Readonly<Record<ErrorCode, string>> = {
  no_route: 'no route for this request',
  bad_request: 'bad request',
  misdirected_request: 'misdirected request',
  body_too_large: 'request body too large',
  headers_too_large: 'request header fields too large',
  rate_limited: 'too many requests',
  forbidden: 'forbidden',
  unauthorized: 'unauthorized',
  rate_limit_unavailable: 'rate limit cannot be checked',
  uri_too_long: 'request target too long',
  method_not_allowed: 'method not allowed',
  overloaded: 'server busy',
  too_many_concurrent: 'too many concurrent requests',
  no_healthy_backend: 'no healthy backend available',
  queue_full: 'backend busy',
  queue_timeout: 'backend busy',
  upstream_connect_failed: 'could not connect to a backend',
  upstream_reset: 'the backend connection broke',
  upstream_protocol_error: 'the backend sent an invalid response',
  upstream_timeout: 'the backend did not answer in time',
  client_aborted: 'client closed request',
  client_timeout: 'request timeout',
  config_invalid: 'configuration error',
  internal: 'internal error',
};

/** Wraps anything thrown into a SpookyError (unknown errors become `internal`). */
export function asSpookyError(err: unknown): SpookyError {
  if (err instanceof SpookyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SpookyError('internal', message, { cause: err });
}

/** The HTTP status for an error code. */
export function statusFor(code: ErrorCode): number {
  return STATUS_BY_CODE[code];
}
