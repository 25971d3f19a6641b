/**
 * Rate limits shared through a real Redis (Debian's redis-server): the bucket script against the server, two
 * Spooky processes taking from one bucket, and what happens while Redis is dead or frozen (`failure_mode`).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../src/lib/clock.ts';
import { RedisRateLimiter } from '../../src/redis/rate-limiter.ts';
import { bunConnection, RedisStore, redisScript } from '../../src/redis/store.ts';
import { InMemoryRateLimiter, type RateLimitRule } from '../../src/resilience/rate-limiter.ts';
import { admin, type Backend, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { type RedisServer, startRedis } from '../support/redis.ts';

let redis: RedisServer;
let backend: Backend;
const spookies: SpookyProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  backend = await startBackend('A');
});
afterEach(async () => {
  await Promise.all(spookies.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await redis?.stop();
  backend?.stop();
});

describe('the bucket script against Redis', () => {
  let store: RedisStore;
  afterEach(() => store?.close());
  const limiter = (prefix: string) => {
    store = new RedisStore({ timeoutMs: 1000, retryMs: 1000, clock: systemClock, connection: bunConnection(redis.url, 1000) });
    return new RedisRateLimiter(store, { keyPrefix: prefix, failureMode: 'deny', fallback: new InMemoryRateLimiter(10) });
  };

  test('burst at once, then refusals that say when the next token comes; keys are separate', async () => {
    const rl = limiter(`t1:${Date.now()}:`);
    const rule: RateLimitRule = { id: 'r', ratePerSecond: 2, burst: 3 };
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await rl.take(rule, 'client-a', 0));
    expect(results.slice(0, 3).map((r) => r.allowed && r.remaining)).toEqual([2, 1, 0]);
    const refused = results[3];
    expect(refused?.allowed).toBe(false);
    if (refused?.allowed === false) {
      // One token per 500 ms: the next is due within 500 ms (less the time the four calls took).
      expect(refused.retryAfterMs).toBeGreaterThan(300);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(500);
      expect(refused.resetMs).toBeGreaterThan(1300);
      expect(refused.resetMs).toBeLessThanOrEqual(1500);
    }
    expect((await rl.take(rule, 'client-b', 0)).allowed).toBe(true);
  });

  test('a token comes back after 1/rate; an idle key expires from Redis once its bucket is full again', async () => {
    const prefix = `t2:${Date.now()}:`;
    const rl = limiter(prefix);
    const rule: RateLimitRule = { id: 'r', ratePerSecond: 10, burst: 1 };
    expect((await rl.take(rule, 'k', 0)).allowed).toBe(true);
    expect((await rl.take(rule, 'k', 0)).allowed).toBe(false);
    const client = new Bun.RedisClient(redis.url);
    try {
      const ttl = Number(await client.send('PTTL', [`${prefix}r|k`]));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(100);
      await eventually(async () => (await rl.take(rule, 'k', 0)).allowed, 2000, 'a token after 100 ms');
      await eventually(async () => Number(await client.send('EXISTS', [`${prefix}r|k`])) === 0, 2000, 'the key to expire');
    } finally {
      client.close();
    }
  });

  test('a stall of this process longer than timeout_ms is not a Redis timeout (the answer waiting in the socket is read)', async () => {
    store = new RedisStore({ timeoutMs: 50, retryMs: 1000, clock: systemClock, connection: bunConnection(redis.url, 1000) });
    const script = redisScript('return 7');
    expect(await store.evalScript(script, ['k'], [])).toBe(7);
    const pending = store.evalScript(script, ['k'], []);
    const t0 = performance.now();
    while (performance.now() - t0 < 80) {} // Spooky's own event loop busy (GC, CPU starvation) for longer than timeout_ms
    expect(await pending).toBe(7);
    expect(store.up).toBe(true);
    expect(store.failures.timeout).toBe(0);
  });
});

/** A config with one route limited to `burst` requests per 100 s (so no token comes back during the test). */
function sharedConfig(redisSection: string, burst: number, store = 'redis'): string {
  return `${redisSection}
upstream:
  api:
    route:
      path_prefix: /
      rate_limits:
        - { name: shared, key: route, rate: 0.01, burst: ${burst}, store: ${store} }
    backends: [{ id: a, address: "http://127.0.0.1:${backend.port}" }]
`;
}

async function statuses(spooky: SpookyProcess, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await request(`${spooky.url}/x`);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

describe('Spooky with store: redis', () => {
  test('two instances take from one bucket; a local rule would let each have its own', async () => {
    const section = `redis: { url: "${redis.url}", key_prefix: "two:${Date.now()}:" }`;
    const [a, b] = await Promise.all([startSpooky(sharedConfig(section, 4)), startSpooky(sharedConfig(section, 4))]);
    spookies.push(a as SpookyProcess, b as SpookyProcess);
    const sa = a as SpookyProcess;
    const sb = b as SpookyProcess;
    expect([...(await statuses(sa, 2)), ...(await statuses(sb, 2))]).toEqual([200, 200, 200, 200]);
    const refused = await request(`${sb.url}/x`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('ratelimit-policy')).toBe('"shared";q=4;w=400');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(50);
    expect((await request(`${sa.url}/x`)).status).toBe(429);
    const status = (await admin(sa, '/status')).body as { redis?: { up: boolean } };
    expect(status.redis?.up).toBe(true);

    // The same rule kept locally: each instance has its own 4.
    const [c, d] = await Promise.all([startSpooky(sharedConfig(section, 4, 'local')), startSpooky(sharedConfig(section, 4, 'local'))]);
    spookies.push(c as SpookyProcess, d as SpookyProcess);
    expect([...(await statuses(c as SpookyProcess, 4)), ...(await statuses(d as SpookyProcess, 4))]).toEqual(Array(8).fill(200));
  });

  test('Redis dead: failure_mode local applies this process’s own bucket, logs redis_down; back again: shared', async () => {
    const own = await startRedis();
    try {
      const section = `redis: { url: "${own.url}", retry_ms: 300 }`;
      const spooky = await startSpooky(sharedConfig(section, 3));
      spookies.push(spooky);
      expect(await statuses(spooky, 1)).toEqual([200]); // one shared token spent
      await own.stop();
      // Local buckets start full: 3 more, then 429; none of it waits for Redis.
      const t0 = performance.now();
      expect(await statuses(spooky, 4)).toEqual([200, 200, 200, 429]);
      expect(performance.now() - t0).toBeLessThan(2000);
      const down = await spooky.child.waitFor((r) => r.event === 'redis_down', 5000, 'redis_down');
      expect(down.failure_mode).toBe('local');
      const metrics = await fetch(`http://127.0.0.1:${spooky.adminPort}/metrics`).then((r) => r.text());
      expect(metrics).toContain(`spooky_redis_up{url="${own.url}"} 0`);
      expect(metrics).toMatch(/spooky_rate_limit_fallbacks_total\{mode="local"\} 4/);

      const again = await startRedis([], own.port); // empty: the shared bucket is full again
      try {
        await eventually(async () => (await statuses(spooky, 1))[0] === 200, 5000, 'a shared token once Redis is back');
        await spooky.child.waitFor((r) => r.event === 'redis_up', 5000, 'redis_up');
      } finally {
        await again.stop();
      }
    } finally {
      await own.stop();
    }
  });

  test('Redis frozen: answers wait at most timeout_ms; failure_mode allow lets requests through, deny gives 503', async () => {
    const own = await startRedis();
    try {
      const allow = await startSpooky(sharedConfig(`redis: { url: "${own.url}", timeout_ms: 100, failure_mode: allow }`, 1));
      const deny = await startSpooky(sharedConfig(`redis: { url: "${own.url}", timeout_ms: 100, failure_mode: deny, key_prefix: "deny:" }`, 1));
      spookies.push(allow, deny);
      expect(await statuses(allow, 2)).toEqual([200, 429]);
      own.pause();
      const t0 = performance.now();
      expect(await statuses(allow, 3)).toEqual([200, 200, 200]); // the first waited out the timeout, the rest are not tried
      expect(performance.now() - t0).toBeLessThan(1500);
      const refused = await request(`${deny.url}/x`);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(await refused.text()).toBe('503 rate limit cannot be checked\n');
      const line = await deny.child.waitFor((r) => r.event === 'access' && r.status === 503, 5000, 'the 503 access line');
      expect(line.error).toBe('rate_limit_unavailable');
      const metrics = await fetch(`http://127.0.0.1:${deny.adminPort}/metrics`).then((r) => r.text());
      expect(metrics).toContain('spooky_rejections_total{reason="rate_limit_unavailable",status="503"} 1');
    } finally {
      own.resume();
      await own.stop();
    }
  });

  test('a password from password_file; a reload that adds redis takes effect, one whose file is gone is refused', async () => {
    const own = await startRedis(['--requirepass', 's3cret']);
    try {
      const spooky = await startSpooky(sharedConfig('', 2, 'local'));
      spookies.push(spooky);
      const pass = join(spooky.dir, 'redis.pass');
      writeFileSync(pass, 's3cret\n');
      writeFileSync(
        spooky.configPath,
        (await Bun.file(spooky.configPath).text())
          .replace('upstream:', `redis: { url: "${own.url}", password_file: redis.pass }\nupstream:`)
          .replace('store: local', 'store: redis'),
      );
      spooky.child.signal('SIGHUP');
      await spooky.child.waitFor((r) => r.event === 'audit' && r.action === 'reload' && r.result === 'ok', 10_000, 'reload ok');
      expect(await statuses(spooky, 3)).toEqual([200, 200, 429]);
      const client = new Bun.RedisClient(own.url.replace('redis://', 'redis://default:s3cret@'));
      try {
        expect(Number(await client.send('DBSIZE', []))).toBe(1); // the bucket is in Redis
      } finally {
        client.close();
      }
      const status = (await admin(spooky, '/status')).body as { redis?: { up: boolean } };
      expect(status.redis?.up).toBe(true);

      writeFileSync(spooky.configPath, (await Bun.file(spooky.configPath).text()).replace('redis.pass', 'missing.pass'));
      spooky.child.signal('SIGHUP');
      const refused = await spooky.child.waitFor(
        (r) => r.event === 'audit' && r.action === 'reload' && r.result === 'error',
        10_000,
        'reload refused',
      );
      expect(String(refused.errors)).toMatch(/cannot read redis.password_file .*missing.pass: ENOENT/);
    } finally {
      await own.stop();
    }
  });
});
