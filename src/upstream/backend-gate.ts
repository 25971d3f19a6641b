/**
 * The admission gate of one backend: a {@link RequestLimiter} (slots and FIFO queue) driven by real time. One
 * timer per gate, armed for the earliest queue deadline, refuses waiters whose queue timeout passed; a waiter
 * whose client goes away (its abort signal fires) leaves the queue at once.
 */
import { SpookyError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import { type RequestLimitPolicy, RequestLimiter } from '../resilience/request-limiter.ts';

/** Slot, queue and queue timer of one backend. */
export class BackendGate {
  /** The pure slot and queue state. */
  readonly limiter: RequestLimiter;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Number.POSITIVE_INFINITY;

  /** A gate with the given limits. */
  constructor(
    policy: RequestLimitPolicy,
    private readonly clock: Clock,
  ) {
    this.limiter = new RequestLimiter(policy);
  }

  /** True when a request would get a slot at once. */
  hasCapacity(): boolean {
    return this.limiter.hasCapacity();
  }

  /**
   * Takes a slot for one request. Returns undefined when it got one at once; a `queue_full` error when it is
   * refused at once; else a promise that settles when it got a slot (undefined), waited past the queue timeout
   * (`queue_timeout`) or its client went away (`client_aborted`). Whoever got a slot must {@link release} it.
   */
  admit(signal: AbortSignal): undefined | SpookyError | Promise<SpookyError | undefined> {
    if (this.limiter.tryAcquire()) return undefined;
    const lim = this.limiter.limits;
    if (signal.aborted) return new SpookyError('client_aborted', 'client went away before a backend slot was free');
    return new Promise<SpookyError | undefined>((resolve) => {
      const onAbort = (): void => {
        if (this.limiter.cancel(ticket as NonNullable<typeof ticket>))
          resolve(new SpookyError('client_aborted', 'client went away while queued for a backend'));
      };
      const ticket = this.limiter.enqueue(
        this.clock.now(),
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve(undefined);
        },
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve(new SpookyError('queue_timeout', `no backend slot free within ${lim.queueTimeoutMs} ms (${lim.maxActive} requests in flight)`));
        },
      );
      if (ticket === undefined) {
        resolve(new SpookyError('queue_full', `${lim.maxActive} requests in flight and ${lim.maxQueued} queued`));
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      this.arm(ticket.deadline);
    });
  }

  /** Frees a slot taken by {@link admit}; the oldest waiter gets it. */
  release(): void {
    this.limiter.release(this.clock.now());
  }

  /** New limits (on reload); see {@link RequestLimiter.setPolicy}. */
  setPolicy(policy: RequestLimitPolicy): void {
    this.limiter.setPolicy(policy, this.clock.now());
  }

  private arm(at: number): void {
    if (at >= this.timerAt) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - this.clock.now()) + 1);
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    const next = this.limiter.expire(this.clock.now());
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  }
}
