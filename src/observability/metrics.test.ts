import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makeCertificate } from '../../test/support/certs.ts';
import { parseExposition, type Sample, sample, sumOf } from '../../test/support/prom.ts';
import { formatIssue, loadConfigText } from '../config/load.ts';
import { ManualClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { buildGeneration, type Generation } from '../runtime/generation.ts';
import { EndpointRegistry } from '../upstream/registry.ts';
import type { Transport } from '../upstream/transport.ts';
import type { RequestRecord } from './access-log.ts';
import { addResponseLabels, requestLabels } from './labels.ts';
import { Metrics, methodIndex, statusIndex } from './metrics.ts';

const fakeTransport: Transport = {
  request: async () => ({ status: 200, headers: [], body: null }),
  openWebSocket: async () => ({ ok: false, status: 501 }),
  stats: () => ({ connectionsOpened: 0, connectionsOpen: 0, connectionsIdle: 0 }),
  close() {},
};

const dir = mkdtempSync(join(tmpdir(), 'spooky-metrics-'));
const notAfter = new Date('2031-05-06T07:08:09Z');
const cert = await makeCertificate(dir, 'api', { name: 'api.example.test', notAfter });
const clock = new ManualClock(10_000);
const registry = new EndpointRegistry(
  clock,
  () => fakeTransport,
  () => {},
);
afterAll(() => registry.close());

function generation(yaml: string, id = 1): Generation {
  const r = loadConfigText(yaml, 'spooky.yaml', dir);
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return buildGeneration(r.config, registry, id, seededRandom(1));
}

const YAML = `listen:
  address: 127.0.0.1
  port: 8443
  tls:
    cert: "${cert.cert}"
    key: "${cert.key}"
    certificates: [{ server_name: api.example.test, cert: "${cert.cert}", key: "${cert.key}" }]
upstream:
  a:
    route: [{ path_prefix: /a, tags: { version: v1 } }, { path_prefix: /a2 }]
    metrics:
      labels: [{ name: tenant, from: "request_header:x-tenant" }, { name: version, from: "route_tag:version" }, { name: cache, from: "response_header:x-cache" }]
      max_values: 2
    backends: [{ id: a1, address: "http://127.0.0.1:1" }, { id: a2, address: "http://127.0.0.1:2" }]
  b:
    route: { path_prefix: /b }
    backends: [{ id: b1, address: "http://127.0.0.1:3" }]
`;

function rec(over: Partial<RequestRecord>): RequestRecord {
  return {
    request_id: 'r',
    client: '127.0.0.1',
    protocol: 'h3',
    method: 'GET',
    host: 'h',
    path: '/x',
    status: 200,
    bytes_in: 0,
    bytes_out: 100,
    duration_ms: 3,
    attempts: 1,
    ...over,
  };
}

async function scrape(m: Metrics): Promise<Sample[]> {
  return parseExposition((await m.render()).body);
}

describe('Metrics', () => {
  let gen = generation(YAML);
  const counts = { ok: 0, error: 0 };
  const metrics = new Metrics({ generation: () => gen, clock, reloadCounts: () => counts }, { processMetrics: false });

  test('counts a known sequence of requests with the documented labels', async () => {
    const route = { route: 'a#0', pool: 'a', backend: 'a1' };
    for (let i = 0; i < 3; i++) {
      metrics.requestStart();
      metrics.attemptEnd({ pool: 'a', backend: 'a1', attempt: 1, status: 200, upstream_ms: 2 });
      metrics.requestEnd(rec({ route: 'a#0', pool: 'a', backend: 'a1', duration_ms: 3 + i, bytes_in: 10 }));
    }
    // a POST over HTTP/2 that was retried on a2 after a connect failure on a1 and got a 502 from a2
    metrics.requestStart();
    metrics.attemptEnd({ pool: 'a', backend: 'a1', attempt: 1, status: 0, error: 'upstream_connect_failed', upstream_ms: 1 });
    metrics.attemptEnd({ pool: 'a', backend: 'a2', attempt: 2, status: 502, upstream_ms: 40 });
    metrics.requestEnd(rec({ route: 'a#0', pool: 'a', backend: 'a2', method: 'POST', protocol: 'h2', status: 502, attempts: 2, duration_ms: 45 }));
    // rejections: no route (404), no healthy backend (503), body too large (413); a PROPFIND over HTTP/1.1
    metrics.requestStart();
    metrics.requestEnd(rec({ status: 404, error: 'no_route', attempts: 0, bytes_out: 0, duration_ms: 0.2 }));
    metrics.requestStart();
    metrics.requestEnd(rec({ route: 'b#0', pool: 'b', status: 503, error: 'no_healthy_backend', attempts: 0, duration_ms: 0.1 }));
    metrics.requestStart();
    metrics.requestEnd(rec({ route: 'b#0', pool: 'b', method: 'PUT', status: 413, error: 'body_too_large', attempts: 0, duration_ms: 0.1 }));
    metrics.requestStart();
    metrics.requestEnd(rec({ route: 'b#0', pool: 'b', backend: 'b1', method: 'PROPFIND', protocol: 'h1.1', status: 207 }));
    metrics.requestStart(); // still in flight

    // The JSON form (what workers send their supervisor over IPC) must survive a structured clone and carry
    // the latency histograms with all their labels.
    const json = structuredClone(await metrics.json());
    const hist = json.find((m) => m.name === 'spooky_request_duration_seconds');
    expect(
      (hist?.values as { metricName?: string; labels: Record<string, string | number>; value: number }[] | undefined)?.find(
        (v) => v.metricName === 'spooky_request_duration_seconds_count' && v.labels.route === 'a#0' && v.labels.backend === 'a1',
      )?.value,
    ).toBe(3);

    const s = await scrape(metrics);
    const req = (l: Record<string, string>) => sample(s, 'spooky_requests_total', l);
    expect(req({ ...route, method: 'GET', status_class: '2xx', protocol: 'h3' })).toBe(3);
    expect(req({ route: 'a#0', pool: 'a', backend: 'a2', method: 'POST', status_class: '5xx', protocol: 'h2' })).toBe(1);
    expect(req({ route: '', pool: '', backend: '', method: 'GET', status_class: '4xx', protocol: 'h3' })).toBe(1);
    expect(req({ route: 'b#0', pool: 'b', backend: '', method: 'GET', status_class: '5xx', protocol: 'h3' })).toBe(1);
    expect(req({ route: 'b#0', pool: 'b', backend: 'b1', method: 'OTHER', status_class: '2xx', protocol: 'h1.1' })).toBe(1);
    expect(sumOf(s, 'spooky_requests_total')).toBe(8);

    expect(sample(s, 'spooky_request_duration_seconds_count', route)).toBe(3);
    expect(sample(s, 'spooky_request_duration_seconds_sum', route)).toBeCloseTo(0.012, 6);
    expect(sample(s, 'spooky_request_duration_seconds_bucket', { ...route, le: '0.0025' })).toBe(0);
    expect(sample(s, 'spooky_request_duration_seconds_bucket', { ...route, le: '0.005' })).toBe(3);
    expect(sample(s, 'spooky_request_duration_seconds_bucket', { ...route, le: '+Inf' })).toBe(3);
    expect(sample(s, 'spooky_upstream_duration_seconds_count', { pool: 'a', backend: 'a1' })).toBe(4);
    expect(sample(s, 'spooky_upstream_duration_seconds_bucket', { pool: 'a', backend: 'a2', le: '0.025' })).toBe(0);
    expect(sample(s, 'spooky_upstream_duration_seconds_bucket', { pool: 'a', backend: 'a2', le: '0.05' })).toBe(1);

    expect(sample(s, 'spooky_request_body_bytes_total', route)).toBe(30);
    expect(sample(s, 'spooky_response_body_bytes_total', route)).toBe(300);
    expect(sample(s, 'spooky_requests_in_flight')).toBe(1);
    expect(sample(s, 'spooky_upstream_attempts_total', { pool: 'a', backend: 'a1' })).toBe(4);
    expect(sample(s, 'spooky_upstream_retries_total', { pool: 'a', backend: 'a2' })).toBe(1);
    expect(sample(s, 'spooky_upstream_retries_total', { pool: 'a', backend: 'a1' })).toBe(0);
    expect(sample(s, 'spooky_upstream_errors_total', { pool: 'a', backend: 'a1', code: 'upstream_connect_failed' })).toBe(1);
    expect(sample(s, 'spooky_rejections_total', { reason: 'no_route', status: '404' })).toBe(1);
    expect(sample(s, 'spooky_rejections_total', { reason: 'no_healthy_backend', status: '503' })).toBe(1);
    expect(sample(s, 'spooky_rejections_total', { reason: 'body_too_large', status: '413' })).toBe(1);
    expect(sumOf(s, 'spooky_rejections_total')).toBe(3);
    // scraping twice gives the same counters (collect rebuilds them, never adds twice)
    expect(sample(await scrape(metrics), 'spooky_requests_total', { ...route, method: 'GET', status_class: '2xx', protocol: 'h3' })).toBe(3);
  });

  test('a response the backend gave that the client read too slowly is no rejection (only answers Spooky made itself)', async () => {
    const m = new Metrics({ generation: () => gen, clock, reloadCounts: () => counts }, { processMetrics: false });
    m.requestStart();
    m.requestEnd(rec({ status: 200, error: 'client_timeout', route: 'a#0', pool: 'a', backend: 'a1' })); // cut by request_ms
    m.requestStart();
    m.requestEnd(rec({ status: 408, error: 'client_timeout', attempts: 0, bytes_out: 0 })); // request body too slow
    const s = await scrape(m);
    expect(sample(s, 'spooky_rejections_total', { reason: 'client_timeout', status: '408' })).toBe(1);
    expect(sumOf(s, 'spooky_rejections_total')).toBe(1);
  });

  test('backend health and in-flight gauges follow the endpoints; probes, transitions and reloads are counted', async () => {
    let s = await scrape(metrics);
    expect(sample(s, 'spooky_backend_healthy', { pool: 'a', backend: 'a2' })).toBe(1);
    const a2 = gen.pools.get('a')?.members[1]?.endpoint;
    if (!a2) throw new Error('no endpoint');
    for (let i = 0; i < 5; i++) a2.end(a2.begin(), undefined, undefined, 502); // passive threshold 5
    a2.begin();
    metrics.healthChanged(a2, { healthy: false, reason: 'passive_failures' });
    metrics.probed(a2, { ok: false, duration_ms: 30, detail: '/health: status 503' });
    metrics.probed(a2, { ok: true, duration_ms: 2, detail: '/health: status 200' });
    counts.ok = 2;
    counts.error = 1;
    s = await scrape(metrics);
    expect(sample(s, 'spooky_backend_healthy', { pool: 'a', backend: 'a2' })).toBe(0);
    expect(sample(s, 'spooky_backend_healthy', { pool: 'a', backend: 'a1' })).toBe(1);
    expect(sample(s, 'spooky_backend_in_flight_requests', { pool: 'a', backend: 'a2' })).toBe(1);
    expect(sample(s, 'spooky_backend_health_transitions_total', { pool: 'a', backend: 'a2', to: 'unhealthy' })).toBe(1);
    expect(sample(s, 'spooky_health_checks_total', { pool: 'a', backend: 'a2', result: 'failure' })).toBe(1);
    expect(sample(s, 'spooky_health_checks_total', { pool: 'a', backend: 'a2', result: 'success' })).toBe(1);
    expect(sample(s, 'spooky_health_check_duration_seconds_count', { pool: 'a', backend: 'a2' })).toBe(2);
    expect(sample(s, 'spooky_health_check_duration_seconds_bucket', { pool: 'a', backend: 'a2', le: '0.0025' })).toBe(1);
    expect(sample(s, 'spooky_config_reloads_total', { result: 'success' })).toBe(2);
    expect(sample(s, 'spooky_config_reloads_total', { result: 'failure' })).toBe(1);
    expect(sample(s, 'spooky_config_generation')).toBe(1);
  });

  test('certificate expiry per listener and server name', async () => {
    const s = await scrape(metrics);
    const t = notAfter.getTime() / 1000;
    expect(sample(s, 'spooky_certificate_expiry_timestamp_seconds', { listener: '127.0.0.1:8443', server_name: '*' })).toBe(t);
    expect(sample(s, 'spooky_certificate_expiry_timestamp_seconds', { listener: '127.0.0.1:8443', server_name: 'api.example.test' })).toBe(t);
  });

  test('custom metrics: labels from request header, route tag and response header; distinct values capped, overflow is other', async () => {
    const pool = gen.pools.get('a')?.config;
    if (!pool) throw new Error('no pool');
    const send = (tenant: string | null, routeId: string, cache: string | null, status = 200) => {
      const headers = new Headers(tenant === null ? {} : { 'x-tenant': tenant });
      const labels = requestLabels(pool, routeId, headers);
      if (!labels) throw new Error('no labels');
      addResponseLabels(pool, cache === null ? [] : [['x-cache', cache]], labels);
      metrics.requestStart();
      metrics.requestEnd(rec({ route: routeId, pool: 'a', backend: 'a1', status, labels, duration_ms: 7 }));
    };
    send('t1', 'a#0', 'hit');
    send('t1', 'a#0', 'hit');
    send('t2', 'a#1', null, 503);
    send('t3', 'a#0', 'miss'); // third distinct tenant with max_values 2
    send('t4', 'a#0', 'hit');
    send(null, 'a#0', 'hit'); // missing header: a new value (""), also over the cap
    const poolB = gen.pools.get('b')?.config;
    expect(poolB && requestLabels(poolB, 'b#0', new Headers())).toBeUndefined();

    const s = await scrape(metrics);
    const c = (l: Record<string, string>) => sample(s, 'spooky_custom_requests_total', l);
    expect(c({ pool: 'a', route: 'a#0', status_class: '2xx', tenant: 't1', version: 'v1', cache: 'hit' })).toBe(2);
    expect(c({ pool: 'a', route: 'a#1', status_class: '5xx', tenant: 't2', version: '', cache: '' })).toBe(1);
    // "miss" is the third distinct cache value (after "hit" and ""): other, like the third tenant
    expect(c({ pool: 'a', route: 'a#0', status_class: '2xx', tenant: 'other', version: 'v1', cache: 'other' })).toBe(1);
    expect(c({ pool: 'a', route: 'a#0', status_class: '2xx', tenant: 'other', version: 'v1', cache: 'hit' })).toBe(2);
    expect(sample(s, 'spooky_custom_request_duration_seconds_count', { pool: 'a', route: 'a#0', tenant: 't1', version: 'v1', cache: 'hit' })).toBe(2);
    expect(new Set(s.filter((x) => x.name === 'spooky_custom_requests_total').map((x) => x.labels.tenant))).toEqual(new Set(['t1', 't2', 'other']));
  });

  test('custom metrics: combinations of label values are capped too (max_values x labels), past it every label is other', async () => {
    const pool = gen.pools.get('a')?.config;
    if (!pool) throw new Error('no pool');
    const fresh = new Metrics({ generation: () => gen, clock, reloadCounts: () => counts }, { processMetrics: false });
    // max_values 2, three labels: at most 6 combinations. Two tenants x two cache values x route tag = 4, plus
    // "other" in each label: a client varying headers cannot multiply series beyond the cap.
    for (const tenant of ['t1', 't2', 't3', 't4'])
      for (const cache of ['hit', 'miss', 'stale', 'x']) {
        const labels = requestLabels(pool, 'a#0', new Headers({ 'x-tenant': tenant }));
        if (!labels) throw new Error('no labels');
        addResponseLabels(pool, [['x-cache', cache]], labels);
        fresh.requestStart();
        fresh.requestEnd(rec({ route: 'a#0', pool: 'a', backend: 'a1', labels, duration_ms: 1 }));
      }
    const s = await scrape(fresh);
    const series = s.filter((x) => x.name === 'spooky_custom_requests_total');
    expect(series.length).toBeLessThanOrEqual(7);
    expect(series.reduce((n, x) => n + x.value, 0)).toBe(16);
    expect(series.some((x) => x.labels.tenant === 'other' && x.labels.version === 'other' && x.labels.cache === 'other')).toBe(true);
  });

  test('a reload that changes custom labels replaces the custom series; one that keeps them keeps the value sets', async () => {
    gen = generation(YAML, 2);
    let s = await scrape(metrics);
    expect(sumOf(s, 'spooky_custom_requests_total')).toBe(6);
    gen = generation(YAML.replace('{ name: cache, from: "response_header:x-cache" }', '{ name: region, from: "request_header:x-region" }'), 3);
    s = await scrape(metrics);
    expect(sumOf(s, 'spooky_custom_requests_total')).toBe(0);
    expect(sample(s, 'spooky_config_generation')).toBe(3);
    gen = generation('listen: { tls: { cert: c.pem, key: k.pem } }\nupstream:\n  b:\n    backends: [{ id: b1, address: "http://127.0.0.1:3" }]\n', 4);
    s = await scrape(metrics);
    expect(s.some((x) => x.name.startsWith('spooky_custom_'))).toBe(false);
  });

  test('the README lists every metric Spooky defines', async () => {
    gen = generation(YAML, 5); // a config with custom metrics, so those are defined too
    const text = (await metrics.render()).body;
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string);
    expect(names).toContain('spooky_custom_requests_total');
    const readme = readFileSync(resolve(import.meta.dir, '../../README.md'), 'utf8');
    expect(names.filter((n) => !readme.includes(`\`${n}\``))).toEqual([]);
  });

  test('label index tables', () => {
    expect([methodIndex('GET'), methodIndex('OPTIONS'), methodIndex('get'), methodIndex('CONNECT')]).toEqual([0, 6, 7, 7]);
    expect([statusIndex(101), statusIndex(200), statusIndex(499), statusIndex(599), statusIndex(0), statusIndex(600)]).toEqual([0, 1, 3, 4, 5, 5]);
  });

  test('process metrics are exported with the spooky_ prefix', async () => {
    const m = new Metrics({ generation: () => gen, clock, reloadCounts: () => counts });
    const s = await scrape(m);
    expect(sample(s, 'spooky_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(s, 'spooky_process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(s.some((x) => x.name === 'spooky_nodejs_eventloop_lag_seconds')).toBe(true);
  });
});
