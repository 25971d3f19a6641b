/**
 * HTTP Basic authentication of a route (`basic_auth`) with real bcrypt hashes: real Spooky, real backend (its
 * JSON echo shows which headers reached it), HTTP/3 and HTTP/1.1 clients.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { served } from '../support/backend-status.ts';
import { accessLine, admin, type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

let backend: Backend;
let spooky: SpookyProcess;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

beforeAll(async () => {
  backend = await startBackend('A');
  const hash = await Bun.password.hash('s3cret', { algorithm: 'bcrypt', cost: 4 });
  const b = `backends: [{ id: a, address: "http://127.0.0.1:${backend.port}" }]`;
  spooky = await startSpooky(`upstream:
  ops:
    route:
      path_prefix: /ops/
      basic_auth: { realm: "ops area", users: [{ username: alice, password_hash: "${hash}" }] }
    ${b}
  pass:
    route:
      path_prefix: /pass/
      basic_auth: { users: [{ username: alice, password_hash: "${hash}" }], forward_authorization: true }
    ${b}
`);
});
afterAll(async () => {
  await spooky?.stop();
  await backend?.stop();
});

test('no or wrong credentials: 401 with the challenge, and the backend is not asked', async () => {
  const before = await served(backend);
  for (const [path, authorization] of [
    ['/ops/none', undefined],
    ['/ops/wrong', basic('alice', 'guess')],
    ['/ops/unknown', basic('mallory', 's3cret')],
    ['/ops/bearer', 'Bearer abc'],
  ] as const) {
    const res = await request(`${spooky.url}${path}`, authorization ? { headers: { authorization } } : {});
    expect([path, res.status, res.headers.get('www-authenticate')]).toEqual([path, 401, 'Basic realm="ops area", charset="UTF-8"']);
    expect(await res.text()).toBe('401 unauthorized\n');
    expect((await accessLine(spooky, path)).error).toBe('unauthorized');
  }
  const h1 = await request(`${spooky.url}/ops/h1`, { protocol: 'http1.1' });
  expect(h1.status).toBe(401);
  await h1.arrayBuffer();
  expect(await served(backend)).toBe(before);
});

test('the right credentials pass; the backend does not get them unless forward_authorization; the access line names the user', async () => {
  const res = await request(`${spooky.url}/ops/in`, { headers: { authorization: basic('alice', 's3cret') } });
  expect(res.status).toBe(200);
  const echo = (await res.json()) as { headers: Record<string, string> };
  expect(echo.headers.authorization).toBeUndefined();
  expect((await accessLine(spooky, '/ops/in')).user).toBe('alice');
  const again = await request(`${spooky.url}/ops/again`, { protocol: 'http1.1', headers: { authorization: basic('alice', 's3cret') } });
  expect(again.status).toBe(200);
  await again.arrayBuffer();
  const passed = await request(`${spooky.url}/pass/in`, { headers: { authorization: basic('alice', 's3cret') } });
  expect(((await passed.json()) as { headers: Record<string, string> }).headers.authorization).toBe(basic('alice', 's3cret'));
});

test('/config does not show the password hashes; 401s are counted', async () => {
  const config = JSON.stringify((await admin(spooky, '/config')).body);
  expect(config).toContain('"password_hash":"[redacted]"');
  expect(config).not.toContain('$2b$');
  const metrics = await fetch(`http://127.0.0.1:${spooky.adminPort}/metrics`).then((r) => r.text());
  expect(metrics).toMatch(/spooky_rejections_total\{reason="unauthorized",status="401"\} [5-9]/);
});
