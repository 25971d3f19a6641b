/**
 * Fault injection with real processes: backends that die, hang, stall or answer 503, and what the client sees
 * through Spooky's timeouts and retries. Every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { backendStatus as statusOf, failWith, served } from '../support/backend-status.ts';
import { admin, type Backend, eventually, request, type SpookyProcess, startBackend, startLoadClient, startSpooky } from '../support/process.ts';

type BackendStatus = { id: string; available: boolean; circuit: string; ejected: boolean; ejections: number; circuit_opens: number };

const backendStatus = (spooky: SpookyProcess, pool: string, id: string) => statusOf<BackendStatus>(spooky, pool, id);

describe('timeouts and retries', () => {
  let a: Backend;
  let b: Backend;
  let c: Backend;
  let d: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    [a, b, c, d] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('c'), startBackend('d')]);
    spooky = await startSpooky(`
upstream:
  retrying:
    route: { path_prefix: /r }
    retries: { backoff: { base_ms: 0 }, budget: { ratio: 0.5, min_per_second: 100 } }
    backends: [{ id: a, address: "${a.address}" }, { id: b, address: "${b.address}" }]
  nobuffer:
    route: { path_prefix: /nb }
    retries: { buffer_body_bytes: 0, backoff: { base_ms: 0 }, budget: { ratio: 1, min_per_second: 100 } }
    backends: [{ id: a, address: "${a.address}" }, { id: b, address: "${b.address}" }]
  budget:
    route: { path_prefix: /budget }
    retries: { backoff: { base_ms: 0 }, budget: { ratio: 0, min_per_second: 1 } }
    health_check: { passive_failure_threshold: 0 }
    backends: [{ id: c, address: "${c.address}" }, { id: d, address: "${d.address}" }]
  hang:
    route: { path_prefix: /hang }
    timeouts: { response_header_ms: 400 }
    backends: [{ id: c, address: "${c.address}" }]
  stall:
    route: { path_prefix: /stall }
    timeouts: { idle_ms: 300 }
    backends: [{ id: c, address: "${c.address}" }]
  breaker:
    route: { path_prefix: /brk }
    timeouts: { response_header_ms: 300 }
    circuit_breaker: { consecutive_failures: 2, open_ms: 60000 }
    backends: [{ id: c, address: "${c.address}" }]
  outlier:
    route: { path_prefix: /od }
    health_check: { passive_failure_threshold: 0 }
    outlier_detection: { consecutive_failures: 2, base_ejection_ms: 1000 }
    backends: [{ id: a, address: "${a.address}" }, { id: b, address: "${b.address}" }]
  total:
    route: { path_prefix: /total }
    timeouts: { request_ms: 500 }
    backends: [{ id: c, address: "${c.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([a?.stop(), b?.stop(), c?.stop(), d?.stop()]);
  });

  test('a GET answered 503 by one backend is retried on the other: the client always gets 200', async () => {
    await failWith(a, 503);
    try {
      for (let i = 0; i < 6; i++) {
        const res = await request(`${spooky.url}/r/get-${i}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('x-backend')).toBe('b');
        await res.arrayBuffer();
      }
      const rec = await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/r/get-5', 5000, 'access line');
      expect([1, 2]).toContain(rec.attempts as number);
      expect(
        spooky.child.lines.some((r) => r.event === 'access' && typeof r.path === 'string' && r.path.startsWith('/r/get-') && r.attempts === 2),
      ).toBe(true);
    } finally {
      await failWith(a, 0);
    }
  });

  test('a POST with a buffered body is retried; with buffering off it is not', async () => {
    await failWith(a, 503);
    try {
      for (let i = 0; i < 4; i++) {
        const res = await request(`${spooky.url}/r/post-${i}`, { method: 'POST', body: `payload ${i}` });
        expect(res.status).toBe(200);
        expect(((await res.json()) as { body: string }).body).toBe(`payload ${i}`);
      }
      const before = await served(a);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await request(`${spooky.url}/nb/post-${i}`, { method: 'POST', body: `payload ${i}` });
        statuses.push(res.status);
        await res.arrayBuffer();
      }
      // Round robin over a (503) and b: the POSTs that went to a are answered 503, never sent again to b.
      const toA = (await served(a)) - before;
      expect(toA).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 503)).toHaveLength(toA);
      expect(statuses.filter((s) => s === 200)).toHaveLength(4 - toA);
    } finally {
      await failWith(a, 0);
    }
  });

  test('retries stop at the budget', async () => {
    await Promise.all([failWith(c, 503), failWith(d, 503)]);
    try {
      const before = (await served(c)) + (await served(d));
      const n = 30;
      for (let i = 0; i < n; i++) {
        const res = await request(`${spooky.url}/budget/x-${i}`);
        expect(res.status).toBe(503);
        await res.arrayBuffer();
      }
      const sent = (await served(c)) + (await served(d)) - before;
      // ratio 0 and 1 retry per second over the 10 s window: at most 10 retries, whatever the request count.
      expect(sent).toBeGreaterThanOrEqual(n + 1);
      expect(sent).toBeLessThanOrEqual(n + 10);
    } finally {
      await Promise.all([failWith(c, 0), failWith(d, 0)]);
    }
  });

  test('a backend that never answers gives 504 within response_header_ms', async () => {
    const t0 = performance.now();
    const res = await request(`${spooky.url}/hang/hang`);
    const ms = performance.now() - t0;
    expect(res.status).toBe(504);
    await res.arrayBuffer();
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(3000);
  });

  test('a response body that stalls is cut after idle_ms and logged as a timeout', async () => {
    const res = await request(`${spooky.url}/stall/stall`, { protocol: 'http1.1' });
    expect(res.status).toBe(200);
    const t0 = performance.now();
    await expect(res.text()).rejects.toBeDefined();
    expect(performance.now() - t0).toBeLessThan(3000);
    const rec = await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/stall/stall', 5000, 'access line');
    expect(rec.error).toBe('upstream_timeout');
    expect(spooky.child.lines.some((r) => r.event === 'response_timeout')).toBe(true);
  });

  test('a hanging backend gives 504 within the timeout and its circuit opens', async () => {
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      const res = await request(`${spooky.url}/brk/hang`);
      expect(res.status).toBe(504);
      await res.arrayBuffer();
      expect(performance.now() - t0).toBeLessThan(2000);
    }
    const st = await backendStatus(spooky, 'breaker', 'c');
    expect(st).toMatchObject({ circuit: 'open', available: false, circuit_opens: 1 });
    expect(spooky.child.lines.some((r) => r.event === 'circuit_change' && r.pool === 'breaker' && r.state === 'open')).toBe(true);
    // Open: the backend is not even tried.
    const t0 = performance.now();
    const res = await request(`${spooky.url}/brk/hang`);
    expect(res.status).toBe(503);
    await res.arrayBuffer();
    expect(performance.now() - t0).toBeLessThan(250);
    const metrics = await admin(spooky, '/metrics');
    expect(String(metrics.body)).toContain('spooky_backend_circuit_state{pool="breaker",backend="c"} 1');
  });

  test('a backend answering 503 is ejected, then re-admitted when the ejection ends', async () => {
    await failWith(a, 503);
    try {
      await eventually(
        async () => {
          const res = await request(`${spooky.url}/od/x`);
          await res.arrayBuffer();
          return (await backendStatus(spooky, 'outlier', 'a')).ejected;
        },
        5000,
        'a ejected',
      );
      const before = await served(a);
      for (let i = 0; i < 6; i++) {
        const res = await request(`${spooky.url}/od/y-${i}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('x-backend')).toBe('b');
        await res.arrayBuffer();
      }
      expect(await served(a)).toBe(before);
      const metrics = await admin(spooky, '/metrics');
      expect(String(metrics.body)).toContain('spooky_backend_ejected{pool="outlier",backend="a"} 1');
    } finally {
      await failWith(a, 0);
    }
    await eventually(async () => !(await backendStatus(spooky, 'outlier', 'a')).ejected, 3000, 'a re-admitted');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await request(`${spooky.url}/od/z-${i}`);
      expect(res.status).toBe(200);
      seen.add(res.headers.get('x-backend') ?? '');
      await res.arrayBuffer();
    }
    expect([...seen].sort()).toEqual(['a', 'b']);
    expect((await backendStatus(spooky, 'outlier', 'a')).ejections).toBe(1);
    expect(spooky.child.lines.some((r) => r.event === 'backend_ejected' && r.pool === 'outlier' && r.ejection_ms === 1000)).toBe(true);
  });

  test('request_ms bounds the whole request', async () => {
    const t0 = performance.now();
    const res = await request(`${spooky.url}/total/slow?ms=5000`);
    expect(res.status).toBe(504);
    await res.arrayBuffer();
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});

describe('a backend killed in the middle of steady GET load', () => {
  let a: Backend;
  let b: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    spooky = await startSpooky(`
retries: {}
upstream:
  api:
    backends: [{ id: a, address: "${a.address}" }, { id: b, address: "${b.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('gives zero failed client requests while the other backend is healthy', async () => {
    const load = await startLoadClient(spooky.port, ['--fetch-loops', '4', '--path', '/slow?ms=20']);
    await Bun.sleep(700);
    await a.stop();
    await Bun.sleep(1200);
    const summary = await load.stop();
    console.log(
      `[resilience] backend killed under load: ${summary.failures} of ${summary.requests} requests failed; answers per backend ${JSON.stringify(summary.backends)}`,
    );
    expect(summary.requests).toBeGreaterThan(50);
    expect(summary.failures).toBe(0);
    expect(summary.backends.b ?? 0).toBeGreaterThan(0);
  });
});

describe('limits', () => {
  let a: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    a = await startBackend('a');
    spooky = await startSpooky(`
trusted_proxies: [127.0.0.1]
limits: { max_uri_bytes: 200, max_in_flight: 2, max_in_flight_per_client: 1 }
upstream:
  readonly:
    route: { path_prefix: /ro, allowed_methods: [GET, POST], max_request_body_bytes: 10 }
    backends: [{ id: a, address: "${a.address}" }]
  api:
    backends: [{ id: a, address: "${a.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await a?.stop();
  });

  test('an oversize URI gets 414 and Spooky keeps serving', async () => {
    const before = await served(a);
    const res = await request(`${spooky.url}/x/${'a'.repeat(300)}`);
    expect(res.status).toBe(414);
    await res.arrayBuffer();
    expect(await served(a)).toBe(before);
    const ok = await request(`${spooky.url}/x/${'a'.repeat(100)}`);
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
  });

  test('a method the route does not allow gets 405 with Allow', async () => {
    const res = await request(`${spooky.url}/ro/x`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST, HEAD');
    await res.arrayBuffer();
    const get = await request(`${spooky.url}/ro/x`);
    expect(get.status).toBe(200);
    await get.arrayBuffer();
  });

  test('the route body limit overrides the global one', async () => {
    const res = await request(`${spooky.url}/ro/x`, { method: 'POST', body: 'x'.repeat(20) });
    expect(res.status).toBe(413);
    await res.arrayBuffer();
    const other = await request(`${spooky.url}/echo`, { method: 'POST', body: 'x'.repeat(20) });
    expect(other.status).toBe(200);
    await other.arrayBuffer();
  });

  test('per-client concurrency gets 429, the global in-flight limit 503, other clients unaffected', async () => {
    const slow = (ip: string) => request(`${spooky.url}/slow?ms=800`, { headers: { 'x-forwarded-for': ip } });
    const first = slow('10.0.0.1');
    await Bun.sleep(150);
    const t0 = performance.now();
    const again = await slow('10.0.0.1');
    expect(again.status).toBe(429);
    expect(again.headers.get('retry-after')).toBe('1');
    await again.arrayBuffer();
    expect(performance.now() - t0).toBeLessThan(300);
    const other = slow('10.0.0.2');
    await Bun.sleep(150);
    const third = await slow('10.0.0.3');
    expect(third.status).toBe(503);
    await third.arrayBuffer();
    const [r1, r2] = await Promise.all([first, other]);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    await Promise.all([r1.arrayBuffer(), r2.arrayBuffer()]);
    const after = await slow('10.0.0.1');
    expect(after.status).toBe(200);
    await after.arrayBuffer();
  });
});

describe('rate limiting', () => {
  let a: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    a = await startBackend('a');
    spooky = await startSpooky(`
trusted_proxies: [127.0.0.1]
upstream:
  api:
    route: { rate_limits: [{ name: per_ip, key: client_ip, rate: 0.5, burst: 3 }] }
    backends: [{ id: a, address: "${a.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await a?.stop();
  });

  test('a client over its limit gets 429 with the draft headers while another client is unaffected', async () => {
    const get = (ip: string) => request(`${spooky.url}/x`, { headers: { 'x-forwarded-for': ip } });
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await get('10.1.1.1');
      statuses.push(res.status);
      if (res.status === 429) refused = res;
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(refused?.headers.get('retry-after')).toBe('2');
    expect(refused?.headers.get('ratelimit-policy')).toBe('"per_ip";q=3;w=6');
    expect(refused?.headers.get('ratelimit')).toBe('"per_ip";r=0;t=2');
    for (let i = 0; i < 3; i++) {
      const res = await get('10.2.2.2');
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const rec = await spooky.child.waitFor((r) => r.event === 'access' && r.status === 429, 5000, '429 access line');
    expect(rec.error).toBe('rate_limited');
  });
});
