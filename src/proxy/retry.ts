/**
 * The retry decision, kept pure so it can be tested as a table: may a request be sent again to another
 * backend after this failure or status? The handler adds the state-dependent gates (attempts left, retry
 * budget, deadline, another backend available, client still there).
 */
import type { RetryConfig, RetryOn } from '../config/types.ts';
import type { SpookyError } from '../errors.ts';
import { IDEMPOTENT_METHODS } from '../lib/http-syntax.ts';

/** The retry kind of an upstream failure, or undefined for failures that are never retried. */
export function retryKindOf(err: SpookyError): RetryOn | undefined {
  switch (err.code) {
    case 'upstream_connect_failed':
      return 'connect_failure';
    case 'upstream_reset':
      return 'reset';
    case 'upstream_timeout':
      return 'timeout';
    default:
      return undefined;
  }
}

/** What the handler knows about the request body for the retry decision. */
export interface BodyState {
  /** The request has a body (a declared length of 0 counts as none). */
  hasBody: boolean;
  /** The body was read into memory before the first attempt and can be sent again. */
  buffered: boolean;
  /** Reading the (unbuffered) body has started, so it cannot be sent again. */
  touched: boolean;
}

/**
 * True when the request may be sent again after failure `err` (or, with `err` undefined, after a status from
 * `policy.statuses`):
 * - a connect failure (nothing was sent) is retried for any method when `connect_failure` is in `on` and the
 *   body was not consumed;
 * - other failures and statuses need their kind in `on` (statuses: the caller checked the list) and a body that
 *   can be sent again, and the method must be idempotent unless the body was buffered (a request without a body
 *   counts as buffered when `buffer_body_bytes` > 0).
 */
export function mayRetry(policy: RetryConfig, method: string, body: BodyState, err: SpookyError | undefined): boolean {
  const resendable = !body.hasBody || body.buffered || !body.touched;
  if (!resendable) return false;
  if (err !== undefined) {
    const kind = retryKindOf(err);
    if (kind === undefined || !policy.on.includes(kind)) return false;
    if (kind === 'connect_failure' && err.retryable) return true;
  }
  if (body.hasBody && !body.buffered) return false;
  if (IDEMPOTENT_METHODS.has(method)) return true;
  return body.hasBody ? body.buffered : policy.buffer_body_bytes > 0;
}
