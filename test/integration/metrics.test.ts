/**
 * Metrics, /stats and /config of a real Spooky process: metric values after a known sequence of requests,
 * the backend health gauge when a backend dies, reload counters, the admin token, and that none of the admin
 * endpoints is reachable on the traffic port.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { testCertificate } from '../support/certs.ts';
import { type Backend, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { parseExposition, type Sample, sample, sumOf } from '../support/prom.ts';
import { type RawServer, startRawServer } from '../support/raw-http-server.ts';

const TOKEN = 'metrics-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let a: Backend;
let h: Backend;
let spooky: SpookyProcess;
let yaml: string;

async function scrape(): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${spooky.adminPort}/metrics`, { headers: AUTH });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parseExposition(await res.text());
}

/** Polls /metrics until `check` holds (requests are counted when their response body has been delivered). */
async function metricsWhen(check: (s: Sample[]) => boolean, what: string): Promise<Sample[]> {
  let last: Sample[] = [];
  await eventually(
    async () => {
      last = await scrape();
      return check(last);
    },
    5000,
    what,
  );
  return last;
}

beforeAll(async () => {
  [a, h] = await Promise.all([startBackend('a'), startBackend('h')]);
  yaml = `
admin: { token: ${TOKEN} }
upstream:
  a:
    route: { path_prefix: /a/ }
    health_check: { path: /health, interval: 60000, headers: { authorization: "Bearer probe-secret" } }
    backends: [{ id: a, address: "${a.address}" }]
  down:
    route: { path_prefix: /down/ }
    health_check: { path: /health, interval: 60000, initial: unhealthy }
    backends: [{ id: gone, address: "http://127.0.0.1:9" }]
  h:
    route: { path_prefix: /h/ }
    health_check: { path: /health, interval: 100, timeout_ms: 300, failure_threshold: 1, success_threshold: 1, cooldown_ms: 100 }
    backends: [{ id: hb, address: "${h.address}" }]
  tenants:
    route: [{ path_prefix: /t/v1/, tags: { api_version: v1 } }, { path_prefix: /t/v2/, tags: { api_version: v2 } }]
    metrics:
      labels: [{ name: tenant, from: "request_header:x-tenant" }, { name: api_version, from: "route_tag:api_version" }]
      max_values: 2
    backends: [{ id: a, address: "${a.address}" }]
`;
  spooky = await startSpooky(yaml);
});
afterAll(async () => {
  await spooky?.stop();
  await Promise.all([a?.stop(), h?.stop()]);
});

describe('/metrics', () => {
  test('values after a known sequence of requests', async () => {
    for (let i = 0; i < 3; i++) expect((await request(`${spooky.url}/a/x`)).status).toBe(200);
    for (const body of ['12345', '1234567890']) {
      const res = await request(`${spooky.url}/a/echo`, { protocol: 'http1.1', method: 'POST', body });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const miss = await request(`${spooky.url}/nothing`, { protocol: 'http2' });
    expect(miss.status).toBe(404);
    await miss.arrayBuffer();
    const down = await request(`${spooky.url}/down/x`);
    expect(down.status).toBe(503);
    await down.arrayBuffer();

    const route = { route: 'a#0', pool: 'a', backend: 'a' };
    const s = await metricsWhen((x) => (sample(x, 'spooky_request_duration_seconds_count', route) ?? 0) >= 5, 'five requests to pool a counted');
    const req = (l: Record<string, string>) => sample(s, 'spooky_requests_total', l);
    expect(req({ ...route, method: 'GET', status_class: '2xx', protocol: 'h3' })).toBe(3);
    expect(req({ ...route, method: 'POST', status_class: '2xx', protocol: 'h1.1' })).toBe(2);
    expect(req({ route: '', pool: '', backend: '', method: 'GET', status_class: '4xx', protocol: 'h2' })).toBe(1);
    expect(req({ route: 'down#0', pool: 'down', backend: '', method: 'GET', status_class: '5xx', protocol: 'h3' })).toBe(1);
    expect(sample(s, 'spooky_rejections_total', { reason: 'no_route', status: '404' })).toBe(1);
    expect(sample(s, 'spooky_rejections_total', { reason: 'no_healthy_backend', status: '503' })).toBe(1);
    expect(sample(s, 'spooky_request_duration_seconds_count', route)).toBe(5);
    expect(sample(s, 'spooky_request_duration_seconds_bucket', { ...route, le: '+Inf' })).toBe(5);
    expect(sample(s, 'spooky_request_duration_seconds_bucket', { ...route, le: '60' })).toBe(5);
    expect(sample(s, 'spooky_upstream_duration_seconds_count', { pool: 'a', backend: 'a' })).toBe(5);
    expect(sample(s, 'spooky_upstream_attempts_total', { pool: 'a', backend: 'a' })).toBe(5);
    expect(sample(s, 'spooky_upstream_retries_total', { pool: 'a', backend: 'a' })).toBe(0);
    expect(sample(s, 'spooky_request_body_bytes_total', route)).toBe(15);
    expect(sample(s, 'spooky_response_body_bytes_total', route)).toBeGreaterThan(0);
    expect(sample(s, 'spooky_requests_in_flight')).toBe(0);
    expect(sample(s, 'spooky_backend_healthy', { pool: 'a', backend: 'a' })).toBe(1);
    expect(sample(s, 'spooky_backend_healthy', { pool: 'down', backend: 'gone' })).toBe(0);
    expect(sample(s, 'spooky_health_checks_total', { pool: 'a', backend: 'a', result: 'success' })).toBe(1);
    expect(sample(s, 'spooky_health_check_duration_seconds_count', { pool: 'a', backend: 'a' })).toBe(1);
    expect(sample(s, 'spooky_config_generation')).toBe(1);
    expect(sample(s, 'spooky_process_resident_memory_bytes')).toBeGreaterThan(0);
    const { cert } = await testCertificate();
    const notAfter = Date.parse(new X509Certificate(readFileSync(cert)).validTo) / 1000;
    expect(sample(s, 'spooky_certificate_expiry_timestamp_seconds', { listener: '127.0.0.1:0', server_name: '*' })).toBe(notAfter);
    // no request path or client address anywhere in the labels
    expect(s.some((x) => Object.values(x.labels).some((v) => v.includes('/a/x') || v === '127.0.0.1' || v.includes('/nothing')))).toBe(false);
  });

  test('custom metrics by request header and route tag, with overflow to other', async () => {
    const sends: [string, string][] = [
      ['/t/v1/x', 'acme'],
      ['/t/v1/x', 'acme'],
      ['/t/v2/x', 'globex'],
      ['/t/v2/x', 'initech'], // third tenant with max_values 2
    ];
    for (const [path, tenant] of sends) await (await request(`${spooky.url}${path}`, { headers: { 'x-tenant': tenant } })).arrayBuffer();
    const s = await metricsWhen((x) => sumOf(x, 'spooky_custom_requests_total') >= 4, 'custom requests counted');
    const c = (l: Record<string, string>) => sample(s, 'spooky_custom_requests_total', { pool: 'tenants', status_class: '2xx', ...l });
    expect(c({ route: 'tenants#0', tenant: 'acme', api_version: 'v1' })).toBe(2);
    expect(c({ route: 'tenants#1', tenant: 'globex', api_version: 'v2' })).toBe(1);
    expect(c({ route: 'tenants#1', tenant: 'other', api_version: 'v2' })).toBe(1);
    expect(
      sample(s, 'spooky_custom_request_duration_seconds_count', { pool: 'tenants', route: 'tenants#0', tenant: 'acme', api_version: 'v1' }),
    ).toBe(2);
  });

  test('the health gauge flips to 0 when a backend dies', async () => {
    await metricsWhen((x) => sample(x, 'spooky_backend_healthy', { pool: 'h', backend: 'hb' }) === 1, 'hb healthy');
    await h.stop();
    const s = await metricsWhen((x) => sample(x, 'spooky_backend_healthy', { pool: 'h', backend: 'hb' }) === 0, 'hb unhealthy after it died');
    expect(sample(s, 'spooky_backend_health_transitions_total', { pool: 'h', backend: 'hb', to: 'unhealthy' })).toBe(1);
    expect(sample(s, 'spooky_health_checks_total', { pool: 'h', backend: 'hb', result: 'failure' })).toBeGreaterThanOrEqual(1);
    const stats = (await (await fetch(`http://127.0.0.1:${spooky.adminPort}/stats`, { headers: AUTH })).json()) as {
      pools: { name: string; healthy_backends: number; backends: { id: string; healthy: boolean }[] }[];
      events: { kind: string; pool?: string; backend?: string; healthy?: boolean }[];
    };
    const pool = stats.pools.find((p) => p.name === 'h');
    expect(pool?.healthy_backends).toBe(0);
    expect(pool?.backends[0]?.healthy).toBe(false);
    expect(stats.events).toContainEqual(expect.objectContaining({ kind: 'health', pool: 'h', backend: 'hb', healthy: false }));
  });

  test('reloads are counted by result', async () => {
    writeFileSync(spooky.configPath, `${readFileSync(spooky.configPath, 'utf8')}\nnot_a_key: 1\n`);
    spooky.child.signal('SIGHUP');
    let s = await metricsWhen((x) => sample(x, 'spooky_config_reloads_total', { result: 'failure' }) === 1, 'failed reload counted');
    expect(sample(s, 'spooky_config_reloads_total', { result: 'success' })).toBe(0);
    const text = readFileSync(spooky.configPath, 'utf8').replace('\nnot_a_key: 1\n', '');
    writeFileSync(spooky.configPath, text);
    spooky.child.signal('SIGHUP');
    s = await metricsWhen((x) => sample(x, 'spooky_config_reloads_total', { result: 'success' }) === 1, 'successful reload counted');
    expect(sample(s, 'spooky_config_generation')).toBe(2);
    // counters survive the reload
    expect(sample(s, 'spooky_requests_total', { route: 'a#0', pool: 'a', backend: 'a', method: 'GET', status_class: '2xx', protocol: 'h3' })).toBe(3);
  });
});

describe('admin listener', () => {
  test('refuses a missing or wrong token on every data endpoint; the dashboard page itself is static', async () => {
    for (const path of ['/metrics', '/stats', '/config', '/status']) {
      const none = await fetch(`http://127.0.0.1:${spooky.adminPort}${path}`);
      expect(none.status).toBe(401);
      const wrong = await fetch(`http://127.0.0.1:${spooky.adminPort}${path}`, { headers: { authorization: 'Bearer wrong' } });
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).not.toContain('spooky_');
      const right = await fetch(`http://127.0.0.1:${spooky.adminPort}${path}`, { headers: AUTH });
      expect(right.status).toBe(200);
      await right.arrayBuffer();
    }
    const page = await fetch(`http://127.0.0.1:${spooky.adminPort}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).not.toContain(TOKEN);
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/); // self-contained: nothing loaded from anywhere
  });

  test('/config is the effective config with secrets redacted', async () => {
    const res = await fetch(`http://127.0.0.1:${spooky.adminPort}/config`, { headers: AUTH });
    const text = await res.text();
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('probe-secret');
    const body = JSON.parse(text) as { generation: number; config: { admin: { token: string }; pools: { name: string }[] } };
    expect(body.config.admin.token).toBe('[redacted]');
    expect(body.config.pools.map((p) => p.name)).toEqual(['a', 'down', 'h', 'tenants']);
  });

  test('admin paths are not served on the traffic port', async () => {
    for (const protocol of ['http3', 'http2'] as const) {
      for (const path of ['/metrics', '/stats', '/config', '/dashboard']) {
        const res = await request(`${spooky.url}${path}`, { protocol, headers: AUTH });
        expect(res.status).toBe(404);
        expect(await res.text()).not.toContain('spooky_requests_total');
      }
    }
  });
});

describe('backend failures after the response headers', () => {
  let raw: RawServer;
  let spooky: SpookyProcess;
  beforeAll(async () => {
    raw = startRawServer({
      onRequest(conn, req) {
        const path = req.line.split(' ')[1] ?? '';
        if (path.startsWith('/cut/')) {
          // Declares 1000 bytes, sends 10, then closes: a 502 upstream_reset.
          conn.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\ncontent-type: text/plain\r\n\r\n0123456789');
          setTimeout(() => conn.end(), 30);
        } else {
          // A chunked body: one chunk, then silence, cut by timeouts.idle_ms.
          conn.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\na\r\n0123456789\r\n');
        }
      },
    });
    spooky = await startSpooky(`
upstream:
  cut:
    route: { path_prefix: /cut/ }
    health_check: { passive_failure_threshold: 0, probes: [] }
    backends: [{ id: raw-cut, address: "http://127.0.0.1:${raw.port}" }]
  idle:
    route: { path_prefix: /idle/ }
    timeouts: { idle_ms: 300 }
    health_check: { passive_failure_threshold: 0, probes: [] }
    backends: [{ id: raw-idle, address: "http://127.0.0.1:${raw.port}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    raw?.stop();
  });
  const metrics = async () => parseExposition(await (await fetch(`http://127.0.0.1:${spooky.adminPort}/metrics`)).text());

  test('count in spooky_upstream_errors_total, once, with one attempt', async () => {
    const cut = await request(`${spooky.url}/cut/x`, { protocol: 'http1.1' });
    await cut.arrayBuffer().catch(() => undefined);
    expect(cut.status).toBe(502);
    const idle = await request(`${spooky.url}/idle/x`, { protocol: 'http1.1' });
    await idle.text().catch(() => '');
    await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/idle/x', 5000, 'access line of /idle/x');
    const s = await metrics();
    expect(sample(s, 'spooky_upstream_attempts_total', { pool: 'cut', backend: 'raw-cut' })).toBe(1);
    expect(sample(s, 'spooky_upstream_errors_total', { pool: 'cut', backend: 'raw-cut', code: 'upstream_reset' })).toBe(1);
    expect(sample(s, 'spooky_upstream_attempts_total', { pool: 'idle', backend: 'raw-idle' })).toBe(1);
    expect(sample(s, 'spooky_upstream_errors_total', { pool: 'idle', backend: 'raw-idle', code: 'upstream_timeout' })).toBe(1);
  });
});

describe('custom metrics and refusals of the route', () => {
  test('429 and 405 answers of a pool with custom labels are counted by its labels', async () => {
    const a = await startBackend('a');
    const spooky = await startSpooky(`
upstream:
  t:
    route: { path_prefix: /t/, allowed_methods: [GET], rate_limits: [{ key: client_ip, rate: 1, burst: 1 }] }
    metrics: { labels: [{ name: tenant, from: "request_header:x-tenant" }] }
    backends: [{ id: a, address: "${a.address}" }]
`);
    try {
      const statuses: number[] = [];
      for (const method of ['GET', 'GET', 'GET', 'DELETE']) {
        const res = await request(`${spooky.url}/t/x`, { method, headers: { 'x-tenant': 'acme' } });
        statuses.push(res.status);
        await res.arrayBuffer();
      }
      expect(statuses).toEqual([200, 429, 429, 405]);
      let s: Sample[] = [];
      await eventually(
        async () => {
          s = parseExposition(await (await fetch(`http://127.0.0.1:${spooky.adminPort}/metrics`)).text());
          return sumOf(s, 'spooky_requests_total', { pool: 't' }) === 4;
        },
        3000,
        'four requests of pool t counted',
      );
      expect(sample(s, 'spooky_custom_requests_total', { pool: 't', route: 't#0', tenant: 'acme', status_class: '2xx' })).toBe(1);
      expect(sample(s, 'spooky_custom_requests_total', { pool: 't', route: 't#0', tenant: 'acme', status_class: '4xx' })).toBe(3);
    } finally {
      await spooky.stop();
      await a.stop();
    }
  });
});
