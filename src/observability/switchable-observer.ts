/**
 * A {@link ProxyObserver} that forwards to a base observer and, while one is attached, also passes
 * `requestEnd` records to an extra listener (the alert rules). Attaching or detaching swaps the method, so
 * with nothing attached a request costs exactly the base observer's calls (no check per request).
 */
import type { RequestRecord } from './access-log.ts';
import type { AttemptFailure, AttemptRecord, ProxyObserver } from './events.ts';

/** Receives finished requests besides the base observer. */
export interface RequestEndListener {
  /** A request is over. Must be cheap and must never throw. */
  requestEnd(rec: RequestRecord): void;
}

/** The base observer plus an optional extra `requestEnd` listener. */
export class SwitchableObserver implements ProxyObserver {
  /** A request arrived. */
  readonly requestStart: () => void;
  /** An upstream attempt ended. */
  readonly attemptEnd: (a: AttemptRecord) => void;
  /** An attempt failed after its response headers. */
  readonly attemptFailedAfterHead: (f: AttemptFailure) => void;
  /** A request finished: the base observer, then the attached listener if any. */
  requestEnd: (rec: RequestRecord) => void;

  /** An observer that forwards to `base` only, until something is attached. */
  constructor(private readonly base: ProxyObserver) {
    this.requestStart = base.requestStart.bind(base);
    this.attemptEnd = base.attemptEnd.bind(base);
    this.attemptFailedAfterHead = base.attemptFailedAfterHead.bind(base);
    this.requestEnd = base.requestEnd.bind(base);
  }

  /** Attaches `extra` (or detaches with undefined). */
  attach(extra: RequestEndListener | undefined): void {
    const base = this.base;
    this.requestEnd = extra
      ? (rec) => {
          base.requestEnd(rec);
          extra.requestEnd(rec);
        }
      : base.requestEnd.bind(base);
  }
}
