/**
 * Edges of the retry path with real backends: a backend whose circuit opens while a retry waits out its backoff
 * gets no request; a client that leaves during the backoff is logged at once as 499 and no attempt is counted;
 * a request whose body the backend read before it broke the connection is logged with the bytes received.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { failWith, served } from '../support/backend-status.ts';
import { accessLine, admin, type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { parseExposition, sumOf } from '../support/prom.ts';
import { type RawServer, startRawServer } from '../support/raw-http-server.ts';

describe('retry edges', () => {
  let a: Backend;
  let b: Backend;
  let raw: RawServer;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    // reads the whole request (the harness parses its body), then resets the connection
    raw = startRawServer({ onRequest: (conn) => conn.destroy() });
    spooky = await startSpooky(`log: { level: info }
upstream:
  slow_retry:
    route: { path_prefix: /r/ }
    retries: { backoff: { base_ms: 1500, cap_ms: 1500, jitter: false } }
    circuit_breaker: { consecutive_failures: 1, open_ms: 60000 }
    health_check: { passive_failure_threshold: 0, probes: [] }
    load_balancing: { type: round-robin }
    backends: [{ id: a, address: "${a.address}" }, { id: b, address: "${b.address}" }]
  reset:
    route: { path_prefix: /reset/ }
    health_check: { passive_failure_threshold: 0, probes: [] }
    backends: [{ id: raw, address: "http://127.0.0.1:${raw.port}" }]
`);
  });

  afterAll(async () => {
    await spooky?.stop();
    raw?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const access = (path: string) => accessLine(spooky, path);

  test('a client that leaves during the retry backoff is logged at once as 499, with no second attempt', async () => {
    await Promise.all([failWith(a, 503), failWith(b, 503)]);
    try {
      const before = (await served(a)) + (await served(b));
      const abort = new AbortController();
      const t0 = performance.now();
      const pending = request(`${spooky.url}/r/leave`, { signal: abort.signal }).catch(() => 'aborted');
      await spooky.child.waitFor((r) => r.event === 'circuit_change' && r.state === 'open', 5000, 'first attempt failed');
      abort.abort();
      expect(await pending).toBe('aborted');
      const line = await access('/r/leave');
      expect(performance.now() - t0).toBeLessThan(1400); // not after the 1.5 s backoff
      expect(line).toMatchObject({ status: 499, error: 'client_aborted', attempts: 1 });
      expect((await served(a)) + (await served(b)) - before).toBe(1);
      const metrics = parseExposition(String((await admin(spooky, '/metrics')).body));
      expect(sumOf(metrics, 'spooky_upstream_attempts_total', { pool: 'slow_retry' })).toBe(1);
    } finally {
      await Promise.all([failWith(a, 0), failWith(b, 0)]);
    }
  });

  test('a backend whose circuit opens while a retry waits is not sent the retry', async () => {
    // the circuits of the first test are open for 60 s: this test uses its own Spooky
    const sp = await startSpooky(`log: { level: info }
upstream:
  p:
    retries: { backoff: { base_ms: 1500, cap_ms: 1500, jitter: false } }
    circuit_breaker: { consecutive_failures: 1, open_ms: 60000 }
    health_check: { passive_failure_threshold: 0, probes: [] }
    load_balancing: { type: round-robin }
    backends: [{ id: a, address: "${a.address}" }, { id: b, address: "${b.address}" }]
`);
    await Promise.all([failWith(a, 503), failWith(b, 503)]);
    try {
      const before = { a: await served(a), b: await served(b) };
      const one = request(`${sp.url}/one`);
      // the first attempt fails and opens one circuit; its retry now waits 1.5 s for the other backend
      await sp.child.waitFor((r) => r.event === 'circuit_change' && r.state === 'open', 5000, 'first circuit open');
      const two = await request(`${sp.url}/two`); // goes to the other backend, whose circuit opens too
      expect(two.status).toBe(503);
      await two.arrayBuffer();
      const res = await one;
      expect(res.status).toBe(503);
      await res.arrayBuffer();
      const line = await sp.child.waitFor((r) => r.event === 'access' && r.path === '/one', 5000, 'access /one');
      expect(line).toMatchObject({ status: 503, attempts: 1 });
      expect(line.duration_ms as number).toBeGreaterThanOrEqual(1400); // it did wait out the backoff
      // each backend answered exactly once: /one's first attempt and /two
      expect([(await served(a)) - before.a, (await served(b)) - before.b].sort()).toEqual([1, 1]);
    } finally {
      await Promise.all([failWith(a, 0), failWith(b, 0)]);
      await sp.stop();
    }
  });

  test('a request body the backend received before it broke the connection is counted in bytes_in', async () => {
    const body = new Uint8Array(1000).fill(65);
    for (const protocol of ['http3', 'http1.1'] as const) {
      const path = `/reset/${protocol}`;
      const res = await request(`${spooky.url}${path}`, { method: 'POST', body, protocol });
      expect(res.status).toBe(502);
      await res.arrayBuffer();
      expect(await access(path)).toMatchObject({ status: 502, bytes_in: 1000 });
    }
  });
});
