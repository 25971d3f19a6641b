/**
 * Mutual TLS towards backends: `client_certificate` and `client_key` make Spooky present a certificate to an
 * `https://` backend that asks for one (nginx's `proxy_ssl_certificate`, Envoy's upstream `tls_certificates`).
 * The backends here accept only the certificate `client` (their trusted CA for clients); one speaks HTTP/2 over
 * TLS (Spooky's HTTP/2 client), one HTTP/1.1 only (the HTTP/1.1 fallback after ALPN), so both clients are shown
 * to present the certificate.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTempCertificate, type TestCertificate, testCertificate } from '../support/certs.ts';
import { admin, eventually, firstBackendStatus, request, type SpookyProcess, startSpooky } from '../support/process.ts';

let client: TestCertificate;
let intruder: TestCertificate;
const backends: ReturnType<typeof Bun.serve>[] = [];
const started: SpookyProcess[] = [];

/** An HTTPS backend that completes a handshake only with the `client` certificate and answers with its protocol. */
async function mtlsBackend(http2: boolean): Promise<ReturnType<typeof Bun.serve>> {
  const server = await testCertificate();
  const s = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    development: false,
    ...(http2 ? { http2: true } : {}),
    tls: { cert: server.certPem, key: server.keyPem, ca: client.certPem, requestCert: true, rejectUnauthorized: true },
    fetch: () => new Response('hello over mutual TLS\n'),
  });
  backends.push(s);
  return s;
}

beforeAll(async () => {
  client = await makeTempCertificate({ name: 'spooky-client', client: true });
  intruder = await makeTempCertificate({ name: 'intruder', client: true });
});
afterAll(async () => {
  for (const s of started) await s.stop();
  for (const b of backends) b.stop(true);
});

/** Status and Via of a request through a Spooky whose pool has the TLS settings `tls` (YAML flow map body). */
async function through(backend: ReturnType<typeof Bun.serve>, tls: string): Promise<{ status: number; via: string | null; body: string }> {
  const { cert } = await testCertificate();
  const spooky = await startSpooky(
    `upstream:\n  app:\n    tls: { ca_file: "${cert}"${tls} }\n    backends: [{ id: b, address: "https://localhost:${backend.port}" }]\n`,
  );
  started.push(spooky);
  const res = await request(`${spooky.url}/`, { protocol: 'http1.1' });
  return { status: res.status, via: res.headers.get('via'), body: await res.text() };
}

for (const http2 of [true, false]) {
  describe(http2 ? 'a backend speaking HTTP/2 over TLS' : 'a backend speaking HTTP/1.1 only over TLS', () => {
    let backend: ReturnType<typeof Bun.serve>;
    beforeAll(async () => {
      backend = await mtlsBackend(http2);
    });

    test('with client_certificate and client_key the backend accepts Spooky (200)', async () => {
      const r = await through(backend, `, client_certificate: "${client.cert}", client_key: "${client.key}"`);
      expect(r).toEqual({ status: 200, via: http2 ? '2 spooky' : '1.1 spooky', body: 'hello over mutual TLS\n' });
    }, 30_000);

    test('active health probes present the certificate too: the backend stays healthy', async () => {
      const { cert } = await testCertificate();
      const spooky = await startSpooky(`upstream:
  app:
    tls: { ca_file: "${cert}", client_certificate: "${client.cert}", client_key: "${client.key}" }
    health_check: { path: /, interval: 100, timeout_ms: 1000, failure_threshold: 1 }
    backends: [{ id: b, address: "https://localhost:${backend.port}" }]
`);
      started.push(spooky);
      await eventually(async () => (await firstBackendStatus(spooky))?.last_probe != null, 5000, 'a finished probe');
      expect(await firstBackendStatus(spooky)).toMatchObject({ healthy: true, last_probe: '/: status 200' });
    }, 30_000);

    test('without a client certificate the backend refuses the handshake: 502', async () => {
      expect((await through(backend, '')).status).toBe(502);
    }, 30_000);

    test('with a certificate the backend does not trust: 502', async () => {
      expect((await through(backend, `, client_certificate: "${intruder.cert}", client_key: "${intruder.key}"`)).status).toBe(502);
    }, 30_000);
  });
}

test('a client certificate and key rotated in place are presented after a reload; reload.watch notices them', async () => {
  const backend = await mtlsBackend(false);
  const { cert: ca } = await testCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'spooky-mtls-'));
  const certPath = join(dir, 'client.pem');
  const keyPath = join(dir, 'client-key.pem');
  writeFileSync(certPath, intruder.certPem);
  writeFileSync(keyPath, intruder.keyPem);
  const spooky = await startSpooky(`
reload: { watch: true, debounce_ms: 100 }
upstream:
  app:
    tls: { ca_file: "${ca}", client_certificate: "${certPath}", client_key: "${keyPath}" }
    backends: [{ id: b, address: "https://localhost:${backend.port}" }]
`);
  started.push(spooky);
  const get = async () => {
    const res = await request(`${spooky.url}/`, { protocol: 'http1.1' });
    await res.arrayBuffer();
    return res.status;
  };
  expect(await get()).toBe(502); // a certificate the backend does not trust
  expect(((await admin(spooky, '/status')).body as { watching: string[] }).watching).toEqual(expect.arrayContaining([certPath, keyPath]));
  // The trusted pair under the same paths (key first: a half-written pair fails its reload and changes nothing).
  writeFileSync(keyPath, client.keyPem);
  writeFileSync(certPath, client.certPem);
  const reloaded = await spooky.child.waitFor((r) => r.event === 'audit' && r.trigger === 'file' && r.result === 'ok', 6000, 'reload by file watch');
  expect(await get()).toBe(200);
  // The audit record names the change: the pool's `tls`, though the config text is the same.
  expect((reloaded.changes as { pools: { modified: unknown[] } }).pools.modified).toEqual([{ id: 'app', fields: ['tls'] }]);
  // A key that does not match fails the reload, and the running pair stays in use.
  writeFileSync(keyPath, intruder.keyPem);
  expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: false });
  expect(await get()).toBe(200);
}, 30_000);

test('a pair moved to new paths keeps the backend (its counters and health), with a new connection pool', async () => {
  const backend = await mtlsBackend(false);
  const { cert: ca } = await testCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'spooky-mtls-'));
  const pair = (v: string) => {
    writeFileSync(join(dir, `client-${v}.pem`), client.certPem);
    writeFileSync(join(dir, `client-${v}-key.pem`), client.keyPem);
    return `client_certificate: "${join(dir, `client-${v}.pem`)}", client_key: "${join(dir, `client-${v}-key.pem`)}"`;
  };
  const yaml = (v: string) =>
    `upstream:\n  app:\n    tls: { ca_file: "${ca}", ${pair(v)} }\n    backends: [{ id: b, address: "https://localhost:${backend.port}" }]\n`;
  const spooky = await startSpooky(yaml('v1'));
  started.push(spooky);
  const get = async () => {
    const res = await request(`${spooky.url}/`, { protocol: 'http1.1' });
    await res.arrayBuffer();
    return res.status;
  };
  for (let i = 0; i < 3; i++) expect(await get()).toBe(200);
  const requests = async () => (await firstBackendStatus(spooky))?.requests;
  expect(await requests()).toBe(3);
  writeFileSync(
    spooky.configPath,
    `listen: { address: 127.0.0.1, port: ${spooky.port}, tls: { cert: "${ca}", key: "${(await testCertificate()).key}" } }\n${yaml('v2')}`,
  );
  expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true });
  expect(await get()).toBe(200);
  expect(await requests()).toBe(4);
}, 30_000);

describe('a client certificate that cannot be used stops start-up (exit 3) with a message naming the file', () => {
  /** Exit code and stderr of `spooky run` with a pool whose TLS section is `tls`. */
  async function runWith(tls: string): Promise<{ code: number | null; stderr: string }> {
    const server = await testCertificate();
    const path = join(server.dir, `mtls-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(
      path,
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${server.cert}", key: "${server.key}" } }\nupstream:\n  a:\n    tls: { ${tls} }\n    backends: [{ id: a, address: "https://127.0.0.1:1" }]\n`,
    );
    const r = spawnSync(process.execPath, ['src/main.ts', 'run', '--config', path, '--admin-port', '0'], { encoding: 'utf8', timeout: 20_000 });
    return { code: r.status, stderr: r.stderr };
  }

  test('a key that is not the certificate’s', async () => {
    const r = await runWith(`client_certificate: "${client.cert}", client_key: "${intruder.key}"`);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`upstream_tls.client_key ${intruder.key} is not the key of client_certificate ${client.cert}`);
    expect(r.stderr).not.toContain('    at ');
  }, 30_000);

  test('a file that is missing, or not a certificate', async () => {
    const missing = await runWith(`client_certificate: /nonexistent/client.pem, client_key: "${client.key}"`);
    expect([missing.code, missing.stderr.includes('cannot read upstream_tls.client_certificate /nonexistent/client.pem')]).toEqual([3, true]);
    const swapped = await runWith(`client_certificate: "${client.key}", client_key: "${client.key}"`);
    expect([swapped.code, swapped.stderr.includes(`upstream_tls.client_certificate ${client.key} is not a PEM certificate`)]).toEqual([3, true]);
  }, 30_000);

  test('a key that does not match, used only by a health probe on an https:// address (an http:// backend)', async () => {
    const server = await testCertificate();
    const path = join(server.dir, `mtls-probe-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(
      path,
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${server.cert}", key: "${server.key}" } }
upstream:
  a:
    tls: { client_certificate: "${client.cert}", client_key: "${intruder.key}" }
    health_check: { path: /health, probes: [{ address: "https://127.0.0.1:1" }] }
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`,
    );
    for (const workers of ['1', '2']) {
      const r = spawnSync(process.execPath, ['src/main.ts', 'run', '--config', path, '--admin-port', '0', '--workers', workers], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect([workers, r.status, r.stderr.includes(`is not the key of client_certificate ${client.cert}`), r.stderr.includes('    at ')]).toEqual([
        workers,
        3,
        true,
        false,
      ]);
    }
  }, 40_000);

  test('an encrypted key', async () => {
    const locked = await makeTempCertificate({ name: 'locked', client: true, passphrase: 'secret' });
    const r = await runWith(`client_certificate: "${locked.cert}", client_key: "${locked.key}"`);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`upstream_tls.client_key ${locked.key} is not an unencrypted PEM private key`);
  }, 30_000);
});
