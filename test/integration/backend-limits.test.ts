/**
 * Per-backend limits and slow start with real processes: a slow backend behind `max_concurrent_requests` and a
 * queue, a queue timeout, a client leaving the queue, `max_connections` counted on a raw server's accepted
 * sockets, and a restarted backend's smaller share during its slow-start window. Every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { served, backendStatus as statusOf } from '../support/backend-status.ts';
import { frame, startRawH2Server } from '../support/h2-server.ts';
import { admin, type Backend, eventually, firstBackendStatus, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { parseExposition, sample } from '../support/prom.ts';
import { type RawServer, startRawServer } from '../support/raw-http-server.ts';

type BackendStatus = {
  id: string;
  available: boolean;
  in_flight: number;
  queued?: number;
  max_concurrent_requests?: number;
  effective_weight: number;
};

const backendStatus = (spooky: SpookyProcess, pool: string, id: string) => statusOf<BackendStatus>(spooky, pool, id);

/** A finished request: status, Retry-After, body, and when it finished (ms since the test's start mark). */
type Done = { status: number; retryAfter: string | null; body: string; at: number };

async function timed(url: string, t0: number, init: RequestInit & { protocol?: 'http3' | 'http2' | 'http1.1' } = {}): Promise<Done> {
  const res = await request(url, init);
  const body = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body, at: performance.now() - t0 };
}

describe('per-backend limits and slow start', () => {
  let slow: Backend;
  let other: Backend;
  let c: Backend;
  let d: Backend;
  let raw: RawServer;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    [slow, other, c, d] = await Promise.all([startBackend('slow'), startBackend('other'), startBackend('c'), startBackend('d')]);
    raw = startRawServer({
      onRequest(conn) {
        setTimeout(() => conn.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok'), 20);
      },
    });
    spooky = await startSpooky(`
upstream:
  lim:
    route: { path_prefix: /lim }
    backend_limits: { max_concurrent_requests: 2, max_queued_requests: 2, queue_timeout_ms: 20000 }
    backends: [{ id: slow, address: "${slow.address}" }]
  qt:
    route: { path_prefix: /qt }
    backends: [{ id: other, address: "${other.address}", limits: { max_concurrent_requests: 1, max_queued_requests: 5, queue_timeout_ms: 400 } }]
  conn:
    route: { path_prefix: /conn }
    backend_limits: { max_connections: 2 }
    backends: [{ id: raw, address: "http://127.0.0.1:${raw.port}" }]
  ss:
    route: { path_prefix: /ss }
    load_balancing: { type: weighted-round-robin, slow_start: { window_ms: 30000, min_weight_percent: 10 } }
    health_check: { interval: 200, timeout_ms: 2000, failure_threshold: 2, success_threshold: 1, cooldown_ms: 0 }
    backends: [{ id: c, address: "${c.address}" }, { id: d, address: "${d.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    raw?.stop();
    await Promise.all([slow?.stop(), other?.stop(), c?.stop(), d?.stop()]);
  });

  test('max 2 concurrent + queue 2: the 5th concurrent request gets 503 + Retry-After at once; the queued ones complete', async () => {
    const before = await served(slow);
    const t0 = performance.now();
    const first = [0, 1, 2, 3].map((i) => timed(`${spooky.url}/lim/slow?ms=1500&i=${i}`, t0));
    await eventually(
      async () => {
        const s = await backendStatus(spooky, 'lim', 'slow');
        return s.in_flight === 2 && s.queued === 2;
      },
      10_000,
      '2 in flight and 2 queued in /status',
      20,
    );
    const m = parseExposition((await admin(spooky, '/metrics')).body as string);
    expect(sample(m, 'spooky_backend_queued_requests', { pool: 'lim', backend: 'slow' })).toBe(2);
    expect(sample(m, 'spooky_backend_in_flight_requests', { pool: 'lim', backend: 'slow' })).toBe(2);

    const fifth = await timed(`${spooky.url}/lim/slow?ms=1500&i=4`, t0);
    const done = await Promise.all(first);
    console.log(
      `limits: 5th request refused after ${fifth.at.toFixed(0)} ms; the others finished at ${done.map((d) => d.at.toFixed(0)).join(', ')} ms`,
    );
    expect(fifth.status).toBe(503);
    expect(fifth.retryAfter).toBe('1');
    // Refused at once: before even the first two (1.5 s each) finished.
    expect(fifth.at).toBeLessThan(Math.min(...done.map((d) => d.at)));
    expect(done.map((d) => d.status)).toEqual([200, 200, 200, 200]);
    // The queued two waited for a slot: they finished a whole backend delay after the first two.
    const ends = done.map((d) => d.at).sort((a, b) => a - b);
    expect((ends[2] as number) - (ends[0] as number)).toBeGreaterThan(1000);
    expect((await served(slow)) - before).toBe(4); // the refused one never reached the backend

    const rec = await spooky.child.waitFor(
      (r) => r.event === 'access' && r.path === '/lim/slow' && r.error === 'queue_full',
      5000,
      'queue_full access line',
    );
    expect(rec.status).toBe(503);
    expect(rec.backend).toBe('slow');
    const after = parseExposition((await admin(spooky, '/metrics')).body as string);
    expect(sample(after, 'spooky_rejections_total', { reason: 'queue_full', status: '503' })).toBe(1);
  }, 30_000);

  test('waiting longer than queue_timeout_ms gives 503 queue_timeout; a client that goes away leaves the queue', async () => {
    const t0 = performance.now();
    const busy = timed(`${spooky.url}/qt/slow?ms=3000`, t0);
    await eventually(async () => (await backendStatus(spooky, 'qt', 'other')).in_flight === 1, 10_000, 'one in flight', 20);

    const waited = await timed(`${spooky.url}/qt/anything`, t0);
    expect(waited.status).toBe(503);
    expect(waited.retryAfter).toBe('1');
    const rec = await spooky.child.waitFor((r) => r.event === 'access' && r.error === 'queue_timeout', 5000, 'queue_timeout access line');
    console.log(`limits: queue_timeout after ${rec.duration_ms} ms (queue_timeout_ms 400)`);
    expect(rec.duration_ms as number).toBeGreaterThanOrEqual(390);

    // A queued request whose client aborts is out of the queue at once (and logged as 499).
    const ac = new AbortController();
    const gone = request(`${spooky.url}/qt/leaving`, { signal: ac.signal, protocol: 'http1.1' }).catch(() => undefined);
    await eventually(async () => (await backendStatus(spooky, 'qt', 'other')).queued === 1, 5000, 'one queued', 20);
    ac.abort();
    await gone;
    await eventually(async () => (await backendStatus(spooky, 'qt', 'other')).queued === 0, 5000, 'queue empty after the abort', 20);
    const abortLine = await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/qt/leaving', 5000, 'access line of the aborted request');
    expect(abortLine.status).toBe(499);
    expect(abortLine.error).toBe('client_aborted');

    expect((await busy).status).toBe(200);
  }, 30_000);

  test('max_connections 2: 50 concurrent requests all succeed over at most 2 TCP connections', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const res = await request(`${spooky.url}/conn/r${i}`);
        return [res.status, await res.text()] as const;
      }),
    );
    expect(results.filter(([s, b]) => s === 200 && b === 'ok')).toHaveLength(50);
    console.log(`limits: 50 concurrent requests used ${raw.connections.length} backend connections (max_connections 2)`);
    expect(raw.connections.length).toBeGreaterThan(0);
    expect(raw.connections.length).toBeLessThanOrEqual(2);
    expect(raw.connections.reduce((n, conn) => n + conn.requests.length, 0)).toBe(50);
  }, 30_000);

  test('a backend brought back gets a visibly smaller share during its slow-start window', async () => {
    // Both start warm (backends of the first config are at full weight): an even split.
    const even = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const res = await request(`${spooky.url}/ss/even-${i}`);
      const id = res.headers.get('x-backend') ?? '?';
      even.set(id, (even.get(id) ?? 0) + 1);
      await res.arrayBuffer();
    }
    const evenD = (even.get('d') ?? 0) / 20;
    if (evenD < 0.35) console.log('health events:', JSON.stringify(spooky.child.lines.filter((r) => r.event === 'health_change')));
    expect(evenD).toBeGreaterThanOrEqual(0.35);

    const port = d.port;
    await d.stop();
    await eventually(async () => !(await backendStatus(spooky, 'ss', 'd')).available, 10_000, 'd out after it died', 50);
    d = await startBackend('d', { port });
    await eventually(async () => (await backendStatus(spooky, 'ss', 'd')).available, 10_000, 'd back after the restart', 50);

    const counts = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const res = await request(`${spooky.url}/ss/ramp-${i}`);
      expect(res.status).toBe(200);
      const id = res.headers.get('x-backend') ?? '?';
      counts.set(id, (counts.get(id) ?? 0) + 1);
      await res.arrayBuffer();
    }
    const dShare = (counts.get('d') ?? 0) / 60;
    console.log(`slow start: d got ${counts.get('d') ?? 0} of 60 requests right after coming back (before: ${even.get('d') ?? 0} of 20)`);
    expect(dShare).toBeGreaterThan(0);
    expect(dShare).toBeLessThan(0.3);
    const s = await backendStatus(spooky, 'ss', 'd');
    expect(s.effective_weight).toBeLessThan(50);
    expect(s.effective_weight).toBeGreaterThanOrEqual(10);
    const m = parseExposition((await admin(spooky, '/metrics')).body as string);
    expect(sample(m, 'spooky_backend_effective_weight', { pool: 'ss', backend: 'c' })).toBe(100);
    expect(sample(m, 'spooky_backend_effective_weight', { pool: 'ss', backend: 'd' }) as number).toBeLessThan(50);
  }, 40_000);
});

describe('active probes and max_connections', () => {
  test('a long request on the only allowed connection does not make the probes fail (they have connections of their own)', async () => {
    const backend = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      async fetch(req) {
        if (new URL(req.url).pathname === '/slow') await Bun.sleep(2000);
        return new Response('ok');
      },
    });
    const spooky = await startSpooky(`log: { level: info }
upstream:
  p:
    backend_limits: { max_connections: 1 }
    health_check: { path: /health, interval: 200, timeout_ms: 300, failure_threshold: 2, passive_failure_threshold: 0 }
    backends: [{ id: a, address: "http://127.0.0.1:${backend.port}" }]
`);
    try {
      const slow = request(`${spooky.url}/slow`);
      const res = await slow;
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      // Several probe rounds ran meanwhile (2 s at 200 ms); none failed.
      const down = spooky.child.lines.find((r) => r.event === 'health_change' && r.healthy === false);
      expect(down).toBeUndefined();
      expect(await firstBackendStatus(spooky)).toMatchObject({ healthy: true, last_probe: '/health: status 200' });
    } finally {
      await spooky.stop();
      backend.stop(true);
    }
  }, 20_000);
});

describe('requests queued for a backend that goes out meanwhile', () => {
  test('are not sent to it once its circuit opened while they waited', async () => {
    const hits: string[] = [];
    const backend = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      async fetch(req) {
        const path = new URL(req.url).pathname;
        hits.push(path);
        if (path === '/slow') await Bun.sleep(600);
        return new Response('down', { status: 503 });
      },
    });
    const spooky = await startSpooky(`log: { level: info }
upstream:
  p:
    circuit_breaker: { consecutive_failures: 1, open_ms: 60000 }
    health_check: { passive_failure_threshold: 0, probes: [] }
    backend_limits: { max_concurrent_requests: 1, max_queued_requests: 10, queue_timeout_ms: 5000 }
    backends: [{ id: a, address: "http://127.0.0.1:${backend.port}" }]
`);
    try {
      const slow = request(`${spooky.url}/slow`);
      await eventually(() => hits.includes('/slow'), 3000, '/slow at the backend'); // it holds the only slot
      const queued = await Promise.all(['/q1', '/q2', '/q3'].map((p) => request(`${spooky.url}${p}`)));
      const first = await slow;
      await first.arrayBuffer();
      expect(first.status).toBe(503); // the backend's answer opened the circuit
      for (const r of queued) {
        await r.arrayBuffer();
        expect(r.status).toBe(503); // Spooky's: no available backend
      }
      expect(hits).toEqual(['/slow']);
    } finally {
      await spooky.stop();
      backend.stop(true);
    }
  }, 20_000);

  test('a queued retry that is balanced again does not sleep its retry backoff a second time', async () => {
    const hits: string[] = [];
    const mk = (name: string) =>
      Bun.serve({
        port: 0,
        hostname: '127.0.0.1',
        async fetch(req) {
          const path = new URL(req.url).pathname;
          hits.push(`${name} ${path}`);
          if (path === '/slow' && name === 'a') {
            await Bun.sleep(2500);
            return new Response('a fails', { status: 502 });
          }
          if (path === '/slow' && name === 'b') {
            await Bun.sleep(2600);
            return new Response('slow b');
          }
          if (path === '/r' && name === 'c') return new Response('c down', { status: 503 });
          return new Response(`ok ${name}`);
        },
      });
    const [a, b, c] = [mk('a'), mk('b'), mk('c')];
    const spooky = await startSpooky(`log: { level: info }
upstream:
  p:
    load_balancing: { type: round-robin }
    circuit_breaker: { consecutive_failures: 1, open_ms: 60000 }
    health_check: { passive_failure_threshold: 0, probes: [] }
    retries: { attempts: 3, statuses: [503], backoff: { base_ms: 2000, cap_ms: 2000, jitter: false } }
    backend_limits: { max_concurrent_requests: 1, max_queued_requests: 10, queue_timeout_ms: 10000 }
    backends: [{ id: a, address: "http://127.0.0.1:${a.port}" }, { id: b, address: "http://127.0.0.1:${b.port}" }, { id: c, address: "http://127.0.0.1:${c.port}" }]
`);
    try {
      const slowA = request(`${spooky.url}/slow`); // a holds its only slot 2.5 s, then its 502 opens its circuit
      await eventually(() => hits.includes('a /slow'), 3000, '/slow at a');
      const slowB = request(`${spooky.url}/slow`); // b holds its only slot 2.6 s
      await eventually(() => hits.includes('b /slow'), 3000, '/slow at b');
      const t0 = performance.now();
      // c answers 503; the retry waits its 2 s backoff, queues for a, is balanced again when a's circuit opens
      // (about 2.5 s) and goes to b once b is free (about 2.6 s). A second backoff would make it about 4.5 s.
      const res = await request(`${spooky.url}/r`);
      expect(await res.text()).toBe('ok b');
      const elapsed = performance.now() - t0;
      expect(hits.filter((h) => h.endsWith(' /r'))).toEqual(['c /r', 'b /r']);
      expect(elapsed).toBeLessThan(3600);
      await (await slowA).arrayBuffer();
      await (await slowB).arrayBuffer();
    } finally {
      await spooky.stop();
      for (const s of [a, b, c]) s.stop(true);
    }
  }, 30_000);
});

describe('a body-less HTTP/2 answer whose stream the backend never ends', () => {
  test('is over soon: logged, and its concurrency slot is free for the next request', async () => {
    // HPACK 0x89 is ":status: 204"; flags 0x4 = END_HEADERS only, and the stream is never ended.
    const raw = await startRawH2Server('custom', (id) => frame(0x1, 0x4, id, Uint8Array.of(0x89)));
    const spooky = await startSpooky(`log: { level: info }
upstream:
  r:
    backend_limits: { max_concurrent_requests: 1, max_queued_requests: 0 }
    backends: [{ id: r, address: "h2c://127.0.0.1:${raw.port}" }]
`);
    try {
      const first = await request(`${spooky.url}/first`, { protocol: 'http1.1' });
      expect(first.status).toBe(204);
      await first.arrayBuffer();
      const line = await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/first', 5000, 'access line of /first');
      expect(line.status).toBe(204);
      const second = await request(`${spooky.url}/second`, { protocol: 'http1.1' });
      await second.arrayBuffer();
      expect(second.status).toBe(204); // was 503: the first request still held the only slot
    } finally {
      await spooky.stop();
      await raw.close();
    }
  }, 20_000);
});
