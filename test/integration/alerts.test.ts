/**
 * Alert webhooks against a real receiver (test/support/alert-receiver.ts) and real Spooky and backend
 * processes: backend and pool health alerts (firing and resolved), delivery retried after the receiver failed
 * twice, the error-rate and p99 latency rules, reload_failed on a broken SIGHUP reload, duplicates inside the minimum interval
 * suppressed, a certificate expiring within the configured days, and a hanging receiver that does not slow
 * proxied requests.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { type AlertReceiver, startAlertReceiver } from '../support/alert-receiver.ts';
import { admin, type Backend, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { parseExposition, type Sample, sample } from '../support/prom.ts';

let receiver: AlertReceiver;
let backend: Backend;
let spooky: SpookyProcess; // min_interval_ms 0: every change is sent
let quiet: SpookyProcess; // min_interval_ms 60000

async function scrape(s: SpookyProcess): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${s.adminPort}/metrics`);
  return parseExposition(await res.text());
}

/** Waits until the receiver has a delivered alert on `path` matching `pred`, and returns it. */
async function delivered(path: string, pred: (b: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000) {
  let found: Record<string, unknown> | undefined;
  await eventually(
    () => {
      found = receiver.delivered(path).find(pred);
      return found !== undefined;
    },
    timeoutMs,
    what,
  );
  return found as Record<string, unknown> & { id: string };
}

async function timedGets(n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await request(`${spooky.url}/t/echo`);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b);
}

beforeAll(async () => {
  receiver = startAlertReceiver();
  receiver.hang('/hang');
  backend = await startBackend('b1');
  const pools = `
upstream:
  single:
    route: { path_prefix: /s/ }
    health_check: { path: /health, interval: 100, timeout_ms: 2000, failure_threshold: 1, success_threshold: 1, cooldown_ms: 100 }
    backends: [{ id: b1, address: "${backend.address}" }]
  err:
    route: { path_prefix: /e/ }
    backends: [{ id: b1, address: "${backend.address}" }]
  slow:
    route: { path_prefix: /slow/ }
    backends: [{ id: b1, address: "${backend.address}" }]
  timing:
    route: { path_prefix: /t/ }
    backends: [{ id: b1, address: "${backend.address}" }]
`;
  [spooky, quiet] = await Promise.all([
    startSpooky(`
alerts:
  instance: it-spooky
  min_interval_ms: 0
  retries: { attempts: 5, base_ms: 50, cap_ms: 200 }
  webhooks:
    - { name: rec, url: "${receiver.url}/a", headers: { authorization: "Bearer hook-secret" }, timeout_ms: 3000 }
    - { name: hang, url: "${receiver.url}/hang", timeout_ms: 20000, kinds: [backend_unhealthy, pool_unavailable, route_error_rate] }
  rules:
    route_error_rate: { threshold: 0.5, window_ms: 3000, min_requests: 5 }
    route_latency_p99: { threshold_ms: 150, window_ms: 3000, min_requests: 3 }
${pools}`),
    startSpooky(`
alerts:
  min_interval_ms: 60000
  webhooks: [{ url: "${receiver.url}/q", timeout_ms: 3000 }]
  rules:
    certificate_expiring: { days: 3000 }
upstream:
  p:
    backends: [{ id: b1, address: "${backend.address}" }]
`),
  ]);
});

afterAll(async () => {
  await Promise.all([spooky?.stop(), quiet?.stop()]);
  await backend?.stop();
  receiver?.stop();
});

describe('alert webhooks', () => {
  let baseline: number[] = [];

  test('proxied requests before any alert (baseline latency)', async () => {
    baseline = await timedGets(20);
    expect(receiver.delivered('/a')).toEqual([]);
  });

  test('a backend that fails its health check: backend_unhealthy and pool_unavailable, the first delivery retried after two 500s', async () => {
    receiver.failNext('/a', 2);
    await fetch(`http://127.0.0.1:${backend.port}/admin/unhealthy`, { method: 'POST' });
    const down = await delivered('/a', (b) => b.kind === 'backend_unhealthy' && b.status === 'firing', 'backend_unhealthy delivered');
    expect(down).toMatchObject({
      version: 1,
      severity: 'warning',
      subject: { pool: 'single', backend: 'b1', address: `127.0.0.1:${backend.port}` },
      instance: 'it-spooky',
      key: 'backend_unhealthy/pool=single/backend=b1',
      values: { reason: 'probe_failures' },
    });
    expect(String(down.message)).toContain('is unhealthy');
    expect(typeof down.time).toBe('string');
    expect(typeof down.host).toBe('string');
    // the same notification (same id) was POSTed three times: 500, 500, 200
    const tries = receiver.received.filter((r) => r.path === '/a' && r.body.id === down.id);
    expect(tries.map((r) => r.answered)).toEqual([500, 500, 200]);
    expect(tries[0]?.headers.authorization).toBe('Bearer hook-secret');
    expect(tries[0]?.headers['content-type']).toBe('application/json');

    const pool = await delivered('/a', (b) => b.kind === 'pool_unavailable' && b.status === 'firing', 'pool_unavailable delivered');
    expect(pool).toMatchObject({ severity: 'critical', subject: { pool: 'single' }, values: { healthy_backends: 0, backends: 1 } });
    // the pool `err` has no probes and stays healthy: no alert for it
    expect(receiver.delivered('/a').some((b) => b.kind === 'pool_unavailable' && (b.subject as { pool: string }).pool === 'err')).toBe(false);

    const s = await scrape(spooky);
    expect(sample(s, 'spooky_alert_delivery_attempts_total', { webhook: 'rec', result: 'http_error' })).toBe(2);
    expect(sample(s, 'spooky_alert_deliveries_total', { webhook: 'rec', result: 'delivered' })).toBeGreaterThanOrEqual(2);
    expect(sample(s, 'spooky_alerts_total', { kind: 'backend_unhealthy', status: 'firing' })).toBe(1);
    const log = await spooky.child.waitFor((r) => r.event === 'alert_delivery_attempt_failed', 1000, 'failed attempt logged');
    expect(log).toMatchObject({ webhook: 'rec', result: 'http_error', detail: 'HTTP 500' });
  });

  test('a receiver that hangs does not slow proxied requests', async () => {
    await eventually(
      async () => (sample(await scrape(spooky), 'spooky_alert_queue_length', { webhook: 'hang' }) ?? 0) >= 2,
      5000,
      'alerts waiting for the hanging webhook',
    );
    expect(receiver.received.some((r) => r.path === '/hang')).toBe(true);
    const during = await timedGets(20);
    const median = (xs: number[]) => xs[Math.floor(xs.length / 2)] as number;
    console.log(
      `alerts: GET latency median ${median(baseline).toFixed(1)} ms before alerts, ${median(during).toFixed(1)} ms while the webhook hangs`,
    );
    expect(median(during)).toBeLessThan(median(baseline) * 3 + 50);
  });

  test('the backend comes back: both alerts resolved', async () => {
    await fetch(`http://127.0.0.1:${backend.port}/admin/healthy`, { method: 'POST' });
    const up = await delivered('/a', (b) => b.kind === 'backend_unhealthy' && b.status === 'resolved', 'backend resolved');
    expect(String(up.message)).toContain('healthy again');
    const pool = await delivered('/a', (b) => b.kind === 'pool_unavailable' && b.status === 'resolved', 'pool resolved');
    expect(pool).toMatchObject({ values: { healthy_backends: 1 } });
  });

  test('a route whose backend answers 500s fires route_error_rate', async () => {
    for (let i = 0; i < 8; i++) {
      const res = await request(`${spooky.url}/e/status/500`);
      await res.arrayBuffer();
      expect(res.status).toBe(500);
    }
    const fired = await delivered('/a', (b) => b.kind === 'route_error_rate' && b.status === 'firing', 'route_error_rate');
    expect(fired).toMatchObject({
      severity: 'critical',
      subject: { pool: 'err', route: 'err#0' },
      values: { threshold: 0.5, error_rate: 1, window_ms: 3000 },
    });
    // no traffic: after the window the rule resolves
    await delivered('/a', (b) => b.kind === 'route_error_rate' && b.status === 'resolved', 'route_error_rate resolved', 15_000);
  });

  test('a route answering slowly fires route_latency_p99', async () => {
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        const res = await request(`${spooky.url}/slow/slow?ms=300`);
        await res.arrayBuffer();
        expect(res.status).toBe(200);
      }),
    );
    const fired = await delivered('/a', (b) => b.kind === 'route_latency_p99' && b.status === 'firing', 'route_latency_p99');
    expect(fired).toMatchObject({ severity: 'warning', subject: { pool: 'slow', route: 'slow#0' }, values: { threshold_ms: 150, requests: 4 } });
    expect((fired.values as { p99_ms: number }).p99_ms).toBeGreaterThanOrEqual(300);
  });

  test('a broken config on SIGHUP: reload_failed; /config redacts the webhook header', async () => {
    const good = readFileSync(spooky.configPath, 'utf8');
    writeFileSync(spooky.configPath, `${good}\nbogus_key: 1\n`);
    spooky.child.signal('SIGHUP');
    const alert = await delivered('/a', (b) => b.kind === 'reload_failed', 'reload_failed');
    expect(alert).toMatchObject({ status: 'firing', subject: { config: spooky.configPath }, values: { trigger: 'signal', generation: 1 } });
    expect(String(alert.message)).toContain('unknown key `bogus_key`');
    writeFileSync(spooky.configPath, good);
    const cfg = await admin(spooky, '/config');
    expect(JSON.stringify(cfg.body)).not.toContain('hook-secret');
    expect(JSON.stringify(cfg.body)).toContain('[redacted]');
  });

  test('duplicates inside the minimum interval are suppressed; an expiring certificate alerts at start', async () => {
    const cert = await delivered('/q', (b) => b.kind === 'certificate_expiring', 'certificate_expiring');
    expect(cert).toMatchObject({ status: 'firing', subject: { listener: '127.0.0.1:0', server_name: '*' }, values: { days: 3000 } });
    const good = readFileSync(quiet.configPath, 'utf8');
    writeFileSync(quiet.configPath, `${good}\nbogus_key: 1\n`);
    for (let i = 1; i <= 3; i++) {
      quiet.child.signal('SIGHUP');
      await eventually(() => quiet.child.lines.filter((r) => r.event === 'audit' && r.result === 'error').length === i, 5000, `refused reload ${i}`);
    }
    await delivered('/q', (b) => b.kind === 'reload_failed', 'first reload_failed');
    const s = await scrape(quiet);
    expect(sample(s, 'spooky_alerts_suppressed_total', { kind: 'reload_failed', reason: 'min_interval' })).toBe(2);
    expect(sample(s, 'spooky_alerts_total', { kind: 'reload_failed', status: 'firing' })).toBe(1);
    expect(receiver.received.filter((r) => r.path === '/q' && r.body.kind === 'reload_failed')).toHaveLength(1);
  });
});
