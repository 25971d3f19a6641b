/**
 * Typed events of the request path, so metrics, tracing and the dashboard can observe requests without
 * code of their own in the handler. Observers must be cheap and must never throw.
 */
import type { RequestRecord } from './access-log.ts';

/** One upstream attempt that ended (a request has one per backend tried). */
export interface AttemptRecord {
  /** Pool name. */
  pool: string;
  /** Backend id. */
  backend: string;
  /** 1-based attempt number within the request. */
  attempt: number;
  /** Response status from the backend; 0 when there was none. */
  status: number;
  /** Error code when the attempt failed (see `ErrorCode`). */
  error?: string;
  /** Milliseconds from sending the request to the response headers (or to the failure). */
  upstream_ms: number;
}

/** An attempt that failed after its response headers (see {@link ProxyObserver.attemptFailedAfterHead}). */
export interface AttemptFailure {
  /** Pool name. */
  pool: string;
  /** Backend id. */
  backend: string;
  /** Error code (see `ErrorCode`). */
  error: string;
}

/** Receives request-path events. */
export interface ProxyObserver {
  /** A request arrived (before any validation). */
  requestStart(): void;
  /** An upstream attempt got its response headers or failed. */
  attemptEnd(attempt: AttemptRecord): void;
  /**
   * An attempt already reported at its response headers failed afterwards, through the backend's fault (the body
   * broke off, or timed out): counted as a failed attempt with `error`, not as another attempt.
   */
  attemptFailedAfterHead(failure: AttemptFailure): void;
  /** A request is over (its access-log record). */
  requestEnd(rec: RequestRecord): void;
}

/** An observer that does nothing. */
export const NO_OBSERVER: ProxyObserver = {
  requestStart() {},
  attemptEnd() {},
  attemptFailedAfterHead() {},
  requestEnd() {},
};
