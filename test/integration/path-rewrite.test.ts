/**
 * Path rewriting (`route.rewrite`): a real Spooky in front of a real echo backend. The backend must get the
 * rewritten path with the client's query, over HTTP/3 and HTTP/1.1, while the access log keeps the client's path.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { accessLine, type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

let backend: Backend;
let spooky: SpookyProcess;

beforeAll(async () => {
  backend = await startBackend('echo');
  spooky = await startSpooky(`
upstream:
  users:
    route: { path_prefix: /api/users/, rewrite: { prefix: / } }
    backends: [{ id: u, address: "${backend.address}" }]
  legacy:
    route: { path_prefix: /v1, rewrite: { prefix: /api/v1 } }
    backends: [{ id: l, address: "${backend.address}" }]
  status:
    route: { path: /status, rewrite: { path: /internal/healthz } }
    backends: [{ id: s, address: "${backend.address}" }]
  dots:
    route: { path_prefix: /dots, rewrite: { prefix: /v1/ } }
    backends: [{ id: d, address: "${backend.address}" }]
  plain:
    route: { path_prefix: / }
    backends: [{ id: p, address: "${backend.address}" }]
`);
});
afterAll(async () => {
  await spooky?.stop();
  await backend?.stop();
});

test('the backend gets the rewritten path and the query as sent; the access log keeps the client path', async () => {
  const cases: [string, string][] = [
    ['/api/users/42?x=1&y=%2F', '/42?x=1&y=%2F'],
    ['/api/users/', '/'],
    ['/api/users//a/./b/../c', '/a/c'], // rewritten after normalisation
    ['/v1/items?page=2', '/api/v1/items?page=2'],
    ['/v1', '/api/v1'],
    ['/status?verbose', '/internal/healthz?verbose'],
    ['/other/path?q', '/other/path?q'], // a route without rewrite: as routed
  ];
  for (const protocol of ['http3', 'http1.1'] as const) {
    for (const [sent, wanted] of cases) {
      const res = await request(`${spooky.url}${sent}`, { protocol });
      const body = (await res.json()) as { path: string };
      expect([protocol, sent, res.status, body.path]).toEqual([protocol, sent, 200, wanted]);
    }
  }
  const line = await accessLine(spooky, '/api/users/42');
  expect(line).toMatchObject({ status: 200, pool: 'users' });
}, 30_000);

test('a rewrite that would give the backend a dot segment is refused with 400, never sent', async () => {
  for (const protocol of ['http3', 'http1.1'] as const) {
    for (const path of ['/dots../admin', '/dots.', '/dots%2E%2E/admin']) {
      const res = await request(`${spooky.url}${path}`, { protocol });
      expect([protocol, path, res.status]).toEqual([protocol, path, 400]);
    }
    const ok = await request(`${spooky.url}/dots/x`, { protocol });
    expect(((await ok.json()) as { path: string }).path).toBe('/v1/x');
  }
  expect(await accessLine(spooky, '/dots../admin')).toMatchObject({ status: 400, error: 'bad_request' });
}, 30_000);
