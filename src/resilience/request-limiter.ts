/**
 * Per-backend concurrency limit with a bounded FIFO queue, as Envoy's `max_requests` / `max_pending_requests`
 * and nginx's `max_conns` + `queue`: at most `maxActive` requests hold a slot; more wait in a queue of at most
 * `maxQueued` entries, each for at most `queueTimeoutMs`; a freed slot goes to the oldest waiter. Pure: time is
 * passed in and waiters are told through callbacks, so the logic is table-tested on a fake clock; the timer and
 * abort-signal plumbing lives in `upstream/backend-gate.ts`.
 */

/** Limits of one backend. */
export interface RequestLimitPolicy {
  /** Most requests holding a slot at once (>= 1). */
  maxActive: number;
  /** Most requests waiting for a slot (>= 0; 0: no queue, refuse at once). */
  maxQueued: number;
  /** Longest wait in the queue in milliseconds (>= 1). */
  queueTimeoutMs: number;
}

/** A place in the queue; hand it to {@link RequestLimiter.cancel} to leave. */
export interface QueueTicket {
  /** Monotonic ms after which the waiter is refused. */
  readonly deadline: number;
}

interface Waiter extends QueueTicket {
  readonly onGrant: () => void;
  readonly onExpire: () => void;
  prev: Waiter | null;
  next: Waiter | null;
  waiting: boolean;
}

/** Slots and queue of one backend. */
export class RequestLimiter {
  /** Slots held now. */
  active = 0;
  private count = 0;
  private head: Waiter | null = null;
  private tail: Waiter | null = null;
  /**
   * True while deadlines never decrease from head to tail (always, unless a reload shortened the queue
   * timeout while requests waited): then expiry stops at the first live waiter instead of scanning the queue.
   */
  private ordered = true;
  private policy: RequestLimitPolicy;

  /** A limiter with no slot held and an empty queue. */
  constructor(policy: RequestLimitPolicy) {
    this.policy = { ...policy };
  }

  /** Requests waiting now. */
  get queued(): number {
    return this.count;
  }

  /** The current limits. */
  get limits(): Readonly<RequestLimitPolicy> {
    return this.policy;
  }

  /** True when a slot is free now (and nobody waits for it). */
  hasCapacity(): boolean {
    return this.active < this.policy.maxActive && this.count === 0;
  }

  /** Takes a slot when one is free and nobody is queued before us; false otherwise. */
  tryAcquire(): boolean {
    if (!this.hasCapacity()) return false;
    this.active++;
    return true;
  }

  /**
   * Joins the end of the queue at `now`. `onGrant` runs when a slot is handed to this waiter (it then holds
   * it and must {@link release} it); `onExpire` runs when its wait passed `queueTimeoutMs` (seen by
   * {@link expire} or {@link release}). Returns undefined when the queue is full (nothing is called then).
   */
  enqueue(now: number, onGrant: () => void, onExpire: () => void): QueueTicket | undefined {
    if (this.count >= this.policy.maxQueued) return undefined;
    const w: Waiter = { deadline: now + this.policy.queueTimeoutMs, onGrant, onExpire, prev: this.tail, next: null, waiting: true };
    if (this.tail && w.deadline < this.tail.deadline) this.ordered = false;
    if (this.tail) this.tail.next = w;
    else this.head = w;
    this.tail = w;
    this.count++;
    return w;
  }

  /** Leaves the queue without a slot (the client went away). True when the ticket was still waiting. */
  cancel(ticket: QueueTicket): boolean {
    const w = ticket as Waiter;
    if (!w.waiting) return false;
    this.unlink(w);
    return true;
  }

  /** Frees a slot at `now`: the oldest waiter whose deadline has not passed gets it; expired ones are refused on the way. */
  release(now: number): void {
    if (this.active > 0) this.active--;
    this.grant(now);
  }

  /** Refuses every waiter whose deadline is at or before `now`; returns the earliest remaining deadline (Infinity: none). */
  expire(now: number): number {
    if (this.ordered) {
      while (this.head !== null && this.head.deadline <= now) {
        const w = this.head;
        this.unlink(w);
        w.onExpire();
      }
      return this.head?.deadline ?? Number.POSITIVE_INFINITY;
    }
    let next = Number.POSITIVE_INFINITY;
    for (let w = this.head; w !== null; ) {
      const after = w.next;
      if (w.deadline <= now) {
        this.unlink(w);
        w.onExpire();
      } else if (w.deadline < next) next = w.deadline;
      w = after;
    }
    return next;
  }

  /** The earliest deadline in the queue (Infinity: empty). */
  nextDeadline(): number {
    if (this.ordered) return this.head?.deadline ?? Number.POSITIVE_INFINITY;
    let next = Number.POSITIVE_INFINITY;
    for (let w = this.head; w !== null; w = w.next) if (w.deadline < next) next = w.deadline;
    return next;
  }

  /** New limits (on reload): held slots stay held; a larger `maxActive` lets waiters in at once. */
  setPolicy(policy: RequestLimitPolicy, now: number): void {
    this.policy = { ...policy };
    this.grant(now);
  }

  /** Hands free slots to the oldest live waiters. */
  private grant(now: number): void {
    while (this.head !== null && this.active < this.policy.maxActive) {
      const w = this.head;
      this.unlink(w);
      if (w.deadline <= now) {
        w.onExpire();
        continue;
      }
      this.active++;
      w.onGrant();
    }
  }

  private unlink(w: Waiter): void {
    w.waiting = false;
    if (w.prev) w.prev.next = w.next;
    else this.head = w.next;
    if (w.next) w.next.prev = w.prev;
    else this.tail = w.prev;
    w.prev = null;
    w.next = null;
    this.count--;
    if (this.count === 0) this.ordered = true;
  }
}
