/**
 * Header rules of a route (`request_headers`, `response_headers`): a real Spooky in front of a real echo
 * backend, over HTTP/3 and HTTP/1.1. The backend must see the request rules applied after Spooky's own fields,
 * the client the response rules; Spooky's own error answers get none.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

let backend: Backend;
let spooky: SpookyProcess;

beforeAll(async () => {
  backend = await startBackend('echo');
  spooky = await startSpooky(`
upstream:
  web:
    route:
      path_prefix: /
      request_headers:
        set: { X-Env: production, via: hidden, max-forwards: "9" }
        add: { x-tag: from-spooky, x-num: "7" }
        remove: [x-debug, cookie]
      response_headers:
        set: { strict-transport-security: "max-age=31536000; includeSubDomains" }
        add: { set-cookie: "edge=1" }
        remove: [x-backend]
    backends: [{ id: w, address: "${backend.address}" }]
  always:
    route:
      path_prefix: /always/
      response_headers: { set: { strict-transport-security: "max-age=60" }, always: true }
    backends: [{ id: d1, address: "http://127.0.0.1:9" }]
  backend-only:
    route:
      path_prefix: /backend-only/
      response_headers: { set: { strict-transport-security: "max-age=60" } }
    backends: [{ id: d2, address: "http://127.0.0.1:9" }]
`);
});
afterAll(async () => {
  await spooky?.stop();
  await backend?.stop();
});

test('the backend sees the request rules, the client the response rules', async () => {
  for (const protocol of ['http3', 'http1.1'] as const) {
    const res = await request(`${spooky.url}/page`, {
      protocol,
      headers: { 'x-env': 'dev', 'x-debug': '1', cookie: 'a=b', 'x-tag': 'from-client' },
    });
    const body = (await res.json()) as { headers: Record<string, string> };
    const h = body.headers;
    expect([protocol, h['x-env'], h['x-debug'], h.cookie, h['x-tag'], h['x-num'], h.via, typeof h['x-forwarded-for']]).toEqual([
      protocol,
      'production',
      undefined,
      undefined,
      'from-client, from-spooky',
      '7',
      'hidden',
      'string',
    ]);
    expect([res.headers.get('strict-transport-security'), res.headers.get('x-backend'), res.headers.getSetCookie()]).toEqual([
      'max-age=31536000; includeSubDomains',
      null,
      ['a=1', 'edge=1'],
    ]);
  }
}, 30_000);

test("Spooky's own error answers get the response rules only with always: true", async () => {
  for (const protocol of ['http3', 'http1.1'] as const) {
    const always = await request(`${spooky.url}/always/x`, { protocol });
    const plain = await request(`${spooky.url}/backend-only/x`, { protocol });
    expect([protocol, always.status, always.headers.get('strict-transport-security')]).toEqual([protocol, 502, 'max-age=60']);
    expect([protocol, plain.status, plain.headers.get('strict-transport-security')]).toEqual([protocol, 502, null]);
  }
  // Before a route matched there are no route rules to apply.
  const bad = await request(`${spooky.url}/always/x`, { protocol: 'http1.1', headers: { host: 'bad host' } });
  expect([bad.status, bad.headers.get('strict-transport-security')]).toEqual([400, null]);
}, 30_000);

test('a rule on a field Spooky also handles (Max-Forwards on OPTIONS) has the last word', async () => {
  const res = await request(`${spooky.url}/mf`, { protocol: 'http1.1', method: 'OPTIONS', headers: { 'max-forwards': '3' } });
  expect(((await res.json()) as { headers: Record<string, string> }).headers['max-forwards']).toBe('9');
}, 30_000);
