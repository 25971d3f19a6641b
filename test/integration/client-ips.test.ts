/**
 * Route access by client address (`client_ips`): real Spooky, real backend, HTTP/3 and HTTP/1.1 clients from
 * 127.0.0.1, and a trusted proxy's X-Forwarded-For.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { served } from '../support/backend-status.ts';
import { accessLine, type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

let backend: Backend;
let spooky: SpookyProcess;

beforeAll(async () => {
  backend = await startBackend('A');
  const b = `backends: [{ id: a, address: "http://127.0.0.1:${backend.port}" }]`;
  spooky = await startSpooky(`trusted_proxies: [127.0.0.2]
upstream:
  internal:
    route: { path_prefix: /internal/, client_ips: { allow: [10.0.0.0/8, "::1"] }, rate_limits: [{ key: route, rate: 0.01, burst: 1 }] }
    ${b}
  loopback:
    route: { path_prefix: /loopback/, client_ips: { allow: [127.0.0.0/8], deny: [127.0.0.1] } }
    ${b}
  public:
    route: { path_prefix: /public/, client_ips: { deny: [192.0.2.0/24] } }
    ${b}
`);
});
afterAll(async () => {
  await spooky?.stop();
  await backend?.stop();
});

async function statusOf(path: string, init: Parameters<typeof request>[1] = {}): Promise<number> {
  const res = await request(`${spooky.url}${path}`, init);
  await res.arrayBuffer();
  return res.status;
}

test('a client outside allow, or inside deny, gets 403 before the route does anything; others pass', async () => {
  const before = await served(backend);
  const refused = await request(`${spooky.url}/internal/x`);
  expect(refused.status).toBe(403);
  expect(await refused.text()).toBe('403 forbidden\n');
  const line = await accessLine(spooky, '/internal/x');
  expect(line.error).toBe('forbidden');
  expect(line.client).toBe('127.0.0.1');
  expect(await statusOf('/loopback/x')).toBe(403); // allowed network, denied address: deny wins
  expect(await statusOf('/loopback/x', { protocol: 'http1.1' })).toBe(403);
  expect(await statusOf('/public/x')).toBe(200);
  const after = await served(backend);
  expect(after - before).toBe(1); // only /public reached the backend
  const metrics = await fetch(`http://127.0.0.1:${spooky.adminPort}/metrics`).then((r) => r.text());
  expect(metrics).toMatch(/spooky_rejections_total\{reason="forbidden",status="403"\} 3/);
  expect(/^spooky_redis_up\{/m.test(metrics)).toBe(false); // no redis section, no series
});

test('the address decided on is the client behind a trusted proxy; an untrusted peer cannot claim one', async () => {
  // 127.0.0.1 is not a trusted proxy: its X-Forwarded-For is ignored.
  expect(await statusOf('/internal/y', { headers: { 'x-forwarded-for': '10.1.2.3' } })).toBe(403);
  expect(await statusOf('/public/y', { headers: { 'x-forwarded-for': '192.0.2.7' } })).toBe(200);
});

test('refused requests take no rate-limit token', async () => {
  for (let i = 0; i < 3; i++) expect(await statusOf('/internal/z')).toBe(403); // never 429: the bucket of 1 is untouched
});
