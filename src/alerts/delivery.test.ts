import { describe, expect, test } from 'bun:test';
import type { AlertWebhookConfig } from '../config/types.ts';
import { scriptedRandom } from '../lib/random.ts';
import { waitUntil } from '../../test/support/wait.ts';
import type { AlertPayload } from './alert.ts';
import { type AttemptResult, DeliveryQueue, type PostFn, retryableStatus } from './delivery.ts';

function payload(n: number, status: 'firing' | 'resolved' = 'firing', kind: AlertPayload['kind'] = 'backend_unhealthy'): AlertPayload {
  return {
    version: 1,
    id: `id-${n}`,
    key: `k${n}`,
    kind,
    status,
    severity: 'warning',
    subject: {},
    message: '',
    values: {},
    time: '',
    instance: 'i',
    host: 'h',
    pid: 1,
  };
}

const hook = (over: Partial<AlertWebhookConfig> = {}): AlertWebhookConfig => ({
  name: 'w',
  url: 'http://127.0.0.1:1/hook',
  kinds: ['backend_unhealthy', 'reload_failed'],
  send_resolved: true,
  headers: { authorization: 'Bearer x' },
  timeout_ms: 100,
  ...over,
});

/** A queue whose POSTs answer from `answers` in turn (a number is a status, an Error is thrown) and whose sleeps return at once. */
function setup(answers: (number | Error)[], opts: { attempts?: number; queue?: number; webhooks?: AlertWebhookConfig[] } = {}) {
  const posts: { url: string; body: unknown; headers: Record<string, string> }[] = [];
  const sleeps: number[] = [];
  const attempts: [string, AttemptResult, number][] = [];
  const done: [string, boolean, number, string][] = [];
  const dropped: string[] = [];
  let i = 0;
  const post: PostFn = async (url, init) => {
    posts.push({ url, body: JSON.parse(init.body), headers: init.headers });
    const a = answers[Math.min(i++, answers.length - 1)] as number | Error;
    if (a instanceof Error) throw a;
    return a;
  };
  const q = new DeliveryQueue(
    { webhooks: opts.webhooks ?? [hook()], retries: { attempts: opts.attempts ?? 4, base_ms: 100, cap_ms: 250 }, queue_size: opts.queue ?? 10 },
    {
      post,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: scriptedRandom([0.5]),
      hooks: {
        attempt: (w, r, _d, n) => attempts.push([w, r, n]),
        done: (w, ok, n, d) => done.push([w, ok, n, d]),
        dropped: (w) => dropped.push(w),
      },
    },
  );
  return { q, posts, sleeps, attempts, done, dropped };
}

const timeout = Object.assign(new Error('The operation timed out.'), { name: 'TimeoutError' });

describe('DeliveryQueue', () => {
  test('delivered at the first 2xx, with the headers and the JSON body', async () => {
    const s = setup([204]);
    expect(s.q.enqueue(payload(1))).toBe(1);
    await waitUntil(() => s.done.length === 1, 5000, 'one delivery');
    expect(s.done).toEqual([['w', true, 1, 'HTTP 204']]);
    expect(s.posts[0]).toMatchObject({
      url: 'http://127.0.0.1:1/hook',
      headers: { authorization: 'Bearer x' },
      body: { id: 'id-1', kind: 'backend_unhealthy' },
    });
    expect(s.sleeps).toEqual([]);
  });

  test('retries 5xx, timeouts and network errors with exponential backoff and full jitter, same id each time', async () => {
    const s = setup([500, timeout, new Error('ECONNREFUSED'), 200]);
    s.q.enqueue(payload(1));
    await waitUntil(() => s.done.length === 1, 5000, 'one delivery');
    expect(s.attempts.map((a) => a[1])).toEqual(['http_error', 'timeout', 'network_error', 'success']);
    // random 0.5 x min(cap 250, base 100 x 2^n): 50, 100, 125
    expect(s.sleeps).toEqual([50, 100, 125]);
    expect(new Set(s.posts.map((p) => (p.body as { id: string }).id))).toEqual(new Set(['id-1']));
    expect(s.done).toEqual([['w', true, 4, 'HTTP 200']]);
  });

  test('gives up after `attempts`', async () => {
    const s = setup([503], { attempts: 3 });
    s.q.enqueue(payload(1));
    await waitUntil(() => s.done.length === 1, 5000, 'one delivery');
    expect(s.posts.length).toBe(3);
    expect(s.done).toEqual([['w', false, 3, 'HTTP 503']]);
  });

  test.each([
    [400, false],
    [404, false],
    [301, false],
    [408, true],
    [429, true],
    [500, true],
    [599, true],
  ])('status %p retryable=%p', (status, retryable) => {
    expect(retryableStatus(status)).toBe(retryable);
  });

  test('a 4xx fails at once', async () => {
    const s = setup([401, 200]);
    s.q.enqueue(payload(1));
    await waitUntil(() => s.done.length === 1, 5000, 'one delivery');
    expect(s.posts.length).toBe(1);
    expect(s.done[0]?.[1]).toBe(false);
    expect(s.done[0]?.[3]).toContain('not retried');
  });

  test('the queue is bounded per webhook: further alerts are dropped and reported; order is kept', async () => {
    const s = setup([200], { queue: 2 });
    expect([1, 2, 3].map((n) => s.q.enqueue(payload(n)))).toEqual([1, 1, 0]);
    expect(s.dropped).toEqual(['w']);
    await waitUntil(() => s.done.length === 2, 5000, 'two deliveries');
    expect(s.posts.map((p) => (p.body as { id: string }).id)).toEqual(['id-1', 'id-2']);
  });

  test('kinds and send_resolved choose the webhooks', () => {
    const s = setup([200], {
      webhooks: [hook({ name: 'all' }), hook({ name: 'reloads', kinds: ['reload_failed'] }), hook({ name: 'firing', send_resolved: false })],
    });
    const names = (p: AlertPayload) => s.q.webhooks.filter((w) => w.accepts(p)).map((w) => w.cfg.name);
    expect(names(payload(1))).toEqual(['all', 'firing']);
    expect(names(payload(2, 'resolved'))).toEqual(['all']);
    expect(names(payload(3, 'firing', 'reload_failed'))).toEqual(['all', 'reloads', 'firing']);
    expect(names(payload(4, 'firing', 'pool_unavailable'))).toEqual([]);
  });
});
