/**
 * Certificates: rotation under HTTP/3 load (new handshakes get the new certificate; what happens to open
 * connections is measured and printed), refusal of bad certificates on reload (the old one stays) and at
 * start-up (exit 3). The files are watched (`reload.watch`), so these reloads also test file watching.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { tcpMigrateReq } from '../../src/runtime/listeners.ts';
import { makeCertificate } from '../support/certs.ts';
import {
  type Backend,
  Child,
  type LoadClient,
  type LoadSummary,
  request,
  type SpookyProcess,
  startBackend,
  startLoadClient,
  startSpooky,
} from '../support/process.ts';

const ROOT = resolve(import.meta.dir, '../..');
type Pair = Awaited<ReturnType<typeof makeCertificate>>;

/** The certificate the TCP side serves to a fresh TLS connection. */
function tcpFingerprint(port: number): Promise<string> {
  return new Promise((res, rej) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      res(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', rej);
  });
}

/** The certificate the UDP side serves to a fresh QUIC connection (in its own process). */
async function h3Fingerprint(port: number): Promise<string> {
  const proc = Bun.spawn([process.execPath, 'test/support/h3-fingerprint.ts', '--port', String(port)], {
    cwd: ROOT,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const child = new Child(proc);
  const rec = await child.waitFor((r) => r.event === 'fingerprint', 10_000, 'h3 fingerprint');
  await child.exited;
  return String(rec.fingerprint256);
}

describe('certificate rotation and refusal', () => {
  let dir: string;
  let a: Pair;
  let b: Pair;
  let expired: Pair;
  let backend: Backend;
  let spooky: SpookyProcess;
  let clients: LoadClient[] = [];
  const install = (p: Pair, keyOf: Pair = p) => {
    // key first, then certificate: the watch's debounce turns both writes into one reload
    copyFileSync(keyOf.key, join(dir, 'key.pem'));
    copyFileSync(p.cert, join(dir, 'cert.pem'));
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'spooky-rotate-'));
    [a, b, expired] = await Promise.all([
      makeCertificate(dir, 'a'),
      makeCertificate(dir, 'b'),
      makeCertificate(dir, 'expired', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) }),
    ]);
    install(a);
    backend = await startBackend('a');
    spooky = await startSpooky(`listen:
  address: 127.0.0.1
  port: 0
  tls: { cert: "${join(dir, 'cert.pem')}", key: "${join(dir, 'key.pem')}" }
reload: { watch: true, debounce_ms: 150 }
upstream:
  a:
    backends: [{ id: a, address: "${backend.address}" }]
`);
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.stop()));
    await spooky?.stop();
    await backend?.stop();
  });

  test('under HTTP/3 load, new handshakes get the new certificate once the files change', async () => {
    expect(await tcpFingerprint(spooky.port)).toBe(a.fingerprint256);
    expect(await h3Fingerprint(spooky.port)).toBe(a.fingerprint256);
    clients = await Promise.all([
      ...[0, 1].map(() => startLoadClient(spooky.port, ['--sessions', '2', '--reconnect', '--timeout-ms', '3000', '--progress-ms', '100'])),
      startLoadClient(spooky.port, ['--fetch-loops', '2', '--timeout-ms', '3000', '--progress-ms', '100']),
      startLoadClient(spooky.port, ['--fetch-loops', '2', '--fetch-protocol', 'http2', '--timeout-ms', '3000', '--progress-ms', '100']),
    ]);
    install(b);
    const audit = await spooky.child.waitFor(
      (r) => r.event === 'audit' && r.trigger === 'file' && r.result === 'ok',
      5000,
      'reload after the files changed',
    );
    expect(audit.listeners).toEqual([{ id: '127.0.0.1:0', action: 'replaced', fields: ['certificates'], port: spooky.port }]);
    expect(audit.files).toContain(join(dir, 'cert.pem'));
    expect(await tcpFingerprint(spooky.port)).toBe(b.fingerprint256);
    expect(await h3Fingerprint(spooky.port)).toBe(b.fingerprint256);
    const retired = await spooky.child.waitFor((r) => r.event === 'listener_retired', 5000, 'old listener retired');
    // The record says whether the kernel moved the old socket's queued connections (see tcpMigrateReq), and
    // when it did not, the operator is told how to make it.
    const migrate = tcpMigrateReq();
    expect(retired.tcp_migrate_req).toBe(migrate);
    expect(spooky.child.lines.some((r) => r.event === 'tcp_migrate_req_off')).toBe(migrate === 'off');
    // Let every client get 20 more answers after the switch (each QUIC connection on the new certificate).
    const after = clients.map((c) => Number(c.child.lines.filter((r) => r.event === 'progress').at(-1)?.requests ?? 0) + 20);
    await Promise.all(
      clients.map((c, i) =>
        c.child.waitFor(
          (r) =>
            r.event === 'progress' &&
            Number(r.requests) >= (after[i] as number) &&
            (i >= 2 || (r.fingerprints as Record<string, number>)[b.fingerprint256] === 2),
          10_000,
          `client ${i} busy on the new certificate`,
        ),
      ),
    );
    const summaries: LoadSummary[] = await Promise.all(clients.map((c) => c.stop()));
    clients = [];
    const quic = summaries.slice(0, 2);
    const fetchLoops = summaries[2] as LoadSummary;
    const h2Loops = summaries[3] as LoadSummary;
    const sum = (xs: LoadSummary[], k: 'requests' | 'failures' | 'dropped_sessions' | 'sessions_opened') => xs.reduce((n, s) => n + s[k], 0);
    console.log(
      `[certificates] rotation under load: old listener released after ${retired.ms} ms with ${retired.h3_in_flight} HTTP/3 and ${retired.tcp_in_flight} TCP requests in flight; ` +
        `node:quic: ${sum(quic, 'dropped_sessions')} of 4 open connections closed by Spooky and reopened (${sum(quic, 'sessions_opened')} opened in all), ` +
        `${sum(quic, 'failures')} of ${sum(quic, 'requests')} requests failed (${quic.flatMap((s) => s.failure_samples).join('; ') || 'none'}); ` +
        `fetch over HTTP/3: ${fetchLoops.failures} of ${fetchLoops.requests} failed (${fetchLoops.failure_samples.join('; ') || 'none'}); ` +
        `fetch over HTTP/2: ${h2Loops.failures} of ${h2Loops.requests} failed (${h2Loops.failure_samples.join('; ') || 'none'})`,
    );
    // Every old QUIC connection was closed at once and the clients reconnected to the new certificate.
    expect(sum(quic, 'dropped_sessions')).toBe(4);
    for (const s of quic) expect(s.fingerprints[b.fingerprint256]).toBe(2);
    // Nothing hung: at most the request each connection had in flight at the switch failed, none timed out.
    expect(sum(quic, 'failures')).toBeLessThanOrEqual(4);
    expect(summaries.flatMap((s) => s.failure_samples).filter((f) => f.includes('timeout'))).toEqual([]);
    expect(fetchLoops.failures).toBeLessThanOrEqual(2);
    // TCP connections are not re-hashed: requests in flight finish on the old server, nothing fails.
    expect(h2Loops.failure_samples).toEqual([]);
  }, 30_000);

  test.each([
    ['a key that does not belong to the certificate', () => install(a, b), /key .*key\.pem does not match certificate .*cert\.pem/],
    ['an expired certificate', () => install(expired), /certificate .*cert\.pem expired on /],
    ['a file that is not PEM', () => writeFileSync(join(dir, 'cert.pem'), 'not a certificate\n'), /cert\.pem is not a PEM certificate/],
  ])('%s is refused on reload and the old certificate stays', async (_name, change, message) => {
    const before = spooky.child.lines.filter((r) => r.event === 'audit').length;
    change();
    const rec = await spooky.child.waitFor(
      (r) => r.event === 'audit' && spooky.child.lines.filter((x) => x.event === 'audit').indexOf(r) >= before,
      5000,
      'reload attempt',
    );
    expect(rec.result).toBe('error');
    expect((rec.errors as string[]).join('\n')).toMatch(message);
    expect(await tcpFingerprint(spooky.port)).toBe(b.fingerprint256);
    const res = await request(`${spooky.url}/`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  test('start-up refuses a bad certificate with exit 3 and a clear message', async () => {
    const cfg = (cert: string, key: string) => {
      const path = join(dir, `start-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(
        path,
        `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${cert}", key: "${key}" } }\nupstream:\n  a:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`,
      );
      return path;
    };
    for (const [cert, key, want] of [
      [a.cert, b.key, 'does not match certificate'],
      [expired.cert, expired.key, 'expired on'],
    ] as const) {
      const r = Bun.spawnSync([process.execPath, 'src/main.ts', 'run', '--config', cfg(cert, key), '--admin-port', '0'], { cwd: ROOT });
      expect(r.exitCode).toBe(3);
      expect(r.stderr.toString()).toContain(want);
    }
  });
});
