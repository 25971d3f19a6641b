/**
 * The plain-HTTP redirect listener (`http_redirect`): a real Spooky; plain HTTP requests must get `308` to the
 * same host and target over HTTPS on the TLS port (the port left out at 443), a bad Host `400`, each with an
 * access-log line; a reload follows a new `https_port` at once.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { accessLine, eventually, type SpookyProcess, startSpooky } from '../support/process.ts';
import { closedPort } from '../support/raw-http-server.ts';

let spooky: SpookyProcess;
let redirectPort: number;

beforeAll(async () => {
  spooky = await startSpooky(`
http_redirect: { port: 0 }
upstream:
  app:
    backends: [{ id: a, address: "http://127.0.0.1:9" }]
`);
  const ready = spooky.child.lines.find((r) => r.event === 'listening') as { http_redirect: { port: number } };
  redirectPort = ready.http_redirect.port;
});
afterAll(async () => {
  await spooky?.stop();
});

/** A plain-HTTP request to the redirect listener with `host`, not following redirects. */
function plain(path: string, host: string, method = 'GET'): Promise<Response> {
  return fetch(`http://127.0.0.1:${redirectPort}${path}`, { method, headers: { host }, redirect: 'manual' });
}

test('every request gets 308 to https on the TLS port, same host and target', async () => {
  const cases: [string, string, string, string][] = [
    ['GET', '/a/b?x=1&y=%2F', 'example.com', `https://example.com:${spooky.port}/a/b?x=1&y=%2F`],
    ['POST', '/form', 'example.com:8080', `https://example.com:${spooky.port}/form`], // 308 keeps the method
    ['GET', '/a//b/../c', 'EXAMPLE.com', `https://example.com:${spooky.port}/a/c`], // the normalised target
    ['GET', '/', '[::1]:80', `https://[::1]:${spooky.port}/`],
  ];
  for (const [method, path, host, location] of cases) {
    const res = await plain(path, host, method);
    expect([method, path, res.status, res.headers.get('location')]).toEqual([method, path, 308, location]);
  }
  const line = await accessLine(spooky, '/form');
  expect(line).toMatchObject({ status: 308, method: 'POST', host: 'example.com', protocol: 'h1.1', attempts: 0 });
}, 30_000);

test('a request with a body gets its 308 too, without the body being read (the connection closes after it)', async () => {
  const res = await fetch(`http://127.0.0.1:${redirectPort}/upload`, {
    method: 'POST',
    headers: { host: 'example.com' },
    body: 'x'.repeat(100_000),
    redirect: 'manual',
  });
  expect([res.status, res.headers.get('location')]).toEqual([308, `https://example.com:${spooky.port}/upload`]);
}, 30_000);

test('a target over limits.max_uri_bytes gets 414, not a Location of that length', async () => {
  const res = await plain(`/${'a'.repeat(9000)}`, 'example.com');
  expect([res.status, res.headers.get('location')]).toEqual([414, null]);
}, 30_000);

test('a reload that puts the redirect on the traffic port is refused (the two would share it at random)', async () => {
  const before = readFileSync(spooky.configPath, 'utf8');
  writeFileSync(spooky.configPath, before.replace(/http_redirect: \{ port: 0([^}]*)\}/, `http_redirect: { port: ${spooky.port}$1}`));
  spooky.child.signal('SIGHUP');
  const audit = await spooky.child.waitFor((r) => r.event === 'audit' && r.result === 'error', 10_000, 'refused reload');
  expect(JSON.stringify(audit.errors)).toContain(`http_redirect port ${spooky.port} is the traffic listener's`);
  writeFileSync(spooky.configPath, before);
  expect((await plain('/still', 'example.com')).status).toBe(308); // the running redirect listener stays
}, 30_000);

test('a request without a valid Host gets 400, not a redirect to a made-up host', async () => {
  const res = await plain('/bad-host', 'bad host');
  expect([res.status, res.headers.get('location')]).toEqual([400, null]);
}, 30_000);

test('a reload to https_port 443 leaves the port out of the Location at once', async () => {
  const text = readFileSync(spooky.configPath, 'utf8').replace('http_redirect: { port: 0 }', 'http_redirect: { port: 0, https_port: 443 }');
  writeFileSync(spooky.configPath, text);
  spooky.child.signal('SIGHUP');
  await spooky.child.waitFor((r) => r.event === 'audit' && r.result === 'ok', 10_000, 'reload');
  // The redirect listener is kept (same address and port); the https_port is read per request.
  await eventually(async () => (await plain('/x', 'example.com')).headers.get('location') === 'https://example.com/x', 5000, 'the new https_port');
}, 30_000);

test('with workers, every worker serves the redirect port and the supervisor names it', async () => {
  const port = closedPort();
  const s = await startSpooky(`
workers: 2
http_redirect: { port: ${port}, https_port: 8443 }
upstream:
  app:
    backends: [{ id: a, address: "http://127.0.0.1:9" }]
`);
  try {
    const ready = s.child.lines.find((r) => r.event === 'listening') as { http_redirect: { address: string; port: number } };
    expect(ready.http_redirect).toEqual({ address: '127.0.0.1', port });
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/w/${i}`, { headers: { host: 'example.com' }, redirect: 'manual' });
      expect([res.status, res.headers.get('location')]).toEqual([308, `https://example.com:8443/w/${i}`]);
    }
  } finally {
    await s.stop();
  }
}, 60_000);
