import { describe, expect, test } from 'bun:test';
import { ManualClock } from '../lib/clock.ts';
import { type QueueTicket, type RequestLimitPolicy, RequestLimiter } from './request-limiter.ts';

/**
 * A step: advance the clock, then act: `take` (a request arrives: slot, queue or refused), `release` (a
 * holder finishes), `expire` (the timer fires), `cancel N` (the N-th request, 0-based, leaves the queue).
 * Then the expected holders count, queue length and the outcome of every request so far
 * (`S` slot at once, `G` granted after queueing, `Q` queued, `F` refused queue full, `T` timed out, `C` cancelled).
 */
type Step = [advance: number, action: string, active: number, queued: number, outcomes: string];

const base: RequestLimitPolicy = { maxActive: 2, maxQueued: 2, queueTimeoutMs: 1000 };

describe('RequestLimiter', () => {
  test.each<[string, Partial<RequestLimitPolicy>, Step[]]>([
    [
      'two slots, a queue of two: the fifth request is refused at once',
      {},
      [
        [0, 'take', 1, 0, 'S'],
        [0, 'take', 2, 0, 'SS'],
        [0, 'take', 2, 1, 'SSQ'],
        [0, 'take', 2, 2, 'SSQQ'],
        [0, 'take', 2, 2, 'SSQQF'],
      ],
    ],
    [
      'a freed slot goes to the oldest waiter (FIFO)',
      {},
      [
        [0, 'take', 1, 0, 'S'],
        [0, 'take', 2, 0, 'SS'],
        [10, 'take', 2, 1, 'SSQ'],
        [10, 'take', 2, 2, 'SSQQ'],
        [10, 'release', 2, 1, 'SSGQ'],
        [10, 'release', 2, 0, 'SSGG'],
        [10, 'release', 1, 0, 'SSGG'],
        [0, 'take', 2, 0, 'SSGGS'],
      ],
    ],
    [
      'a waiter past its queue timeout is refused when the timer fires',
      {},
      [
        [0, 'take', 1, 0, 'S'],
        [0, 'take', 2, 0, 'SS'],
        [0, 'take', 2, 1, 'SSQ'],
        [500, 'take', 2, 2, 'SSQQ'],
        [499, 'expire', 2, 2, 'SSQQ'],
        [1, 'expire', 2, 1, 'SSTQ'],
        [500, 'expire', 2, 0, 'SSTT'],
      ],
    ],
    [
      'a release after a deadline passed skips the expired waiter and grants the next',
      {},
      [
        [0, 'take', 1, 0, 'S'],
        [0, 'take', 2, 0, 'SS'],
        [0, 'take', 2, 1, 'SSQ'],
        [600, 'take', 2, 2, 'SSQQ'],
        [400, 'release', 2, 0, 'SSTG'],
      ],
    ],
    [
      'a cancelled waiter leaves the queue and never gets a slot',
      {},
      [
        [0, 'take', 1, 0, 'S'],
        [0, 'take', 2, 0, 'SS'],
        [0, 'take', 2, 1, 'SSQ'],
        [0, 'take', 2, 2, 'SSQQ'],
        [0, 'cancel 2', 2, 1, 'SSCQ'],
        [0, 'take', 2, 2, 'SSCQQ'],
        [0, 'release', 2, 1, 'SSCGQ'],
      ],
    ],
    [
      'queue 0: over the limit is refused at once',
      { maxQueued: 0 },
      [
        [0, 'take', 1, 0, 'S'],
        [0, 'take', 2, 0, 'SS'],
        [0, 'take', 2, 0, 'SSF'],
        [0, 'release', 1, 0, 'SSF'],
        [0, 'take', 2, 0, 'SSFS'],
      ],
    ],
    [
      'a newcomer does not jump the queue while someone waits',
      { maxActive: 1 },
      [
        [0, 'take', 1, 0, 'S'],
        [0, 'take', 1, 1, 'SQ'],
        [0, 'release', 1, 0, 'SG'],
        [0, 'take', 1, 1, 'SGQ'],
      ],
    ],
  ])('%s', (_name, override, steps) => {
    const clock = new ManualClock(100);
    const lim = new RequestLimiter({ ...base, ...override });
    const outcomes: string[] = [];
    const tickets: (QueueTicket | undefined)[] = [];
    for (const [advance, action, active, queued, expected] of steps) {
      clock.advance(advance);
      const now = clock.now();
      if (action === 'take') {
        const i = outcomes.length;
        if (lim.tryAcquire()) {
          outcomes.push('S');
          tickets.push(undefined);
        } else {
          const t = lim.enqueue(
            now,
            () => (outcomes[i] = 'G'),
            () => (outcomes[i] = 'T'),
          );
          outcomes.push(t ? 'Q' : 'F');
          tickets.push(t);
        }
      } else if (action === 'release') lim.release(now);
      else if (action === 'expire') lim.expire(now);
      else if (action.startsWith('cancel ')) {
        const i = Number(action.slice(7));
        expect(lim.cancel(tickets[i] as QueueTicket)).toBe(true);
        expect(lim.cancel(tickets[i] as QueueTicket)).toBe(false);
        outcomes[i] = 'C';
      }
      expect([lim.active, lim.queued, outcomes.join('')]).toEqual([active, queued, expected]);
    }
  });

  test('expire returns the next deadline; nextDeadline agrees', () => {
    const lim = new RequestLimiter({ maxActive: 1, maxQueued: 5, queueTimeoutMs: 100 });
    expect(lim.tryAcquire()).toBe(true);
    expect(lim.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
    lim.enqueue(
      0,
      () => {},
      () => {},
    );
    lim.enqueue(
      30,
      () => {},
      () => {},
    );
    expect(lim.nextDeadline()).toBe(100);
    expect(lim.expire(100)).toBe(130);
    expect(lim.queued).toBe(1);
  });

  test('a shorter queue timeout on reload: a later waiter with an earlier deadline still expires on time', () => {
    const lim = new RequestLimiter({ maxActive: 1, maxQueued: 5, queueTimeoutMs: 1000 });
    const expired: string[] = [];
    lim.tryAcquire();
    lim.enqueue(
      0,
      () => {},
      () => expired.push('old'),
    );
    lim.setPolicy({ maxActive: 1, maxQueued: 5, queueTimeoutMs: 100 }, 10);
    lim.enqueue(
      10,
      () => {},
      () => expired.push('new'),
    );
    expect(lim.nextDeadline()).toBe(110);
    expect(lim.expire(110)).toBe(1000);
    expect(expired).toEqual(['new']);
    expect(lim.expire(1000)).toBe(Number.POSITIVE_INFINITY);
    expect(expired).toEqual(['new', 'old']);
  });

  test('a long queue expired one deadline at a time refuses every waiter, oldest first', () => {
    const n = 50_000;
    const lim = new RequestLimiter({ maxActive: 1, maxQueued: n, queueTimeoutMs: 1000 });
    lim.tryAcquire();
    const expired: number[] = [];
    for (let i = 0; i < n; i++)
      lim.enqueue(
        i,
        () => {},
        () => expired.push(i),
      );
    // one timer fire per waiter, as the gate's timer does when deadlines are 1 ms apart
    for (let t = 1000; t < 1000 + n; t++) lim.expire(t);
    expect(expired).toHaveLength(n);
    expect(expired.every((v, i) => v === i)).toBe(true);
    expect(lim.queued).toBe(0);
  });

  test('a larger limit on reload lets waiters in at once; a smaller one keeps held slots', () => {
    const lim = new RequestLimiter({ maxActive: 1, maxQueued: 5, queueTimeoutMs: 100 });
    let granted = 0;
    lim.tryAcquire();
    lim.enqueue(
      0,
      () => granted++,
      () => {},
    );
    lim.enqueue(
      0,
      () => granted++,
      () => {},
    );
    lim.setPolicy({ maxActive: 3, maxQueued: 5, queueTimeoutMs: 100 }, 1);
    expect([granted, lim.active, lim.queued]).toEqual([2, 3, 0]);
    lim.setPolicy({ maxActive: 1, maxQueued: 5, queueTimeoutMs: 100 }, 2);
    expect(lim.active).toBe(3);
    expect(lim.hasCapacity()).toBe(false);
    lim.release(3);
    lim.release(3);
    expect(lim.hasCapacity()).toBe(false);
    lim.release(3);
    expect(lim.hasCapacity()).toBe(true);
  });
});
