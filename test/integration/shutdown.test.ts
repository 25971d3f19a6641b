/**
 * Graceful shutdown and readiness: SIGTERM with slow requests in flight (they complete; `/readyz` went 503
 * first; new work is refused; exit 0 within the drain timeout; a request that outlives the timeout is cut and
 * logged), a second signal, and `/readyz` waiting for the first health-check round.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { admin, type Backend, eventually, firstBackendStatus, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

/** Resolves with how a fresh TCP connection to the port ends: `connected` or the error code. */
function tcpConnect(port: number): Promise<string> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      res('connected');
      s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
  });
}

describe('SIGTERM with slow requests in flight', () => {
  let slow: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    slow = await startBackend('slow');
    spooky = await startSpooky(`
shutdown: { drain_timeout_ms: 2500 }
upstream:
  slow:
    backends: [{ id: slow, address: "${slow.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await slow?.stop();
  });

  test('readiness drops at once, in-flight requests finish, new work is refused, the straggler is cut and logged, exit 0', async () => {
    const t = (ms: number, protocol: 'http3' | 'http2' | 'http1.1') =>
      request(`${spooky.url}/slow?ms=${ms}`, { protocol }).then(
        async (r) => ({ status: r.status, body: await r.text(), at: Date.now() }),
        (e: Error) => ({ status: 0, body: e.message, at: Date.now() }),
      );
    const inFlight = [t(1200, 'http3'), t(1200, 'http3'), t(1500, 'http2'), t(1500, 'http1.1')];
    // The straggler's client outcome is not awaited: after the cut, Bun's fetch retries the GET on a new
    // connection, which only fails after its own handshake timeout. Spooky's side is checked in the log.
    const straggler = t(20_000, 'http3');
    let stragglerOutcome = 'still pending when Spooky exited';
    void straggler.then((r) => {
      stragglerOutcome = r.status ? `status ${r.status}` : r.body.slice(0, 60);
    });
    await eventually(async () => (await firstBackendStatus(spooky))?.in_flight === 5, 3000, '5 requests in flight');
    expect((await admin(spooky, '/readyz')).status).toBe(200);

    const sigAt = Date.now();
    spooky.child.signal('SIGTERM');
    await eventually(async () => (await admin(spooky, '/readyz')).status === 503, 1000, '/readyz 503');
    const notReadyAfter = Date.now() - sigAt;
    await spooky.child.waitFor((r) => r.event === 'audit' && r.action === 'shutdown', 1000, 'shutdown audit record');

    // A SIGHUP that meets the shutdown (a deploy sends SIGHUP, then SIGTERM) is ignored at info: not a failed
    // reload (no config_error, no reloads.error, no reload_failed alert).
    spooky.child.signal('SIGHUP');
    const ignored = await spooky.child.waitFor((r) => r.event === 'reload_ignored', 2000, 'reload_ignored record');
    expect(ignored.level).toBe('info');
    expect(spooky.child.lines.some((r) => r.event === 'config_error')).toBe(false);
    expect(((await admin(spooky, '/status')).body as { reloads: { error: number } }).reloads.error).toBe(0);

    // New work while draining: a new TCP connection is refused; an HTTP/3 request gets a quick 503.
    expect(await tcpConnect(spooky.port)).toBe('ECONNREFUSED');
    const h3Start = Date.now();
    const refused = await request(`${spooky.url}/slow/../slow?ms=10`, { headers: { host: 'Example.TEST:443' } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    await refused.arrayBuffer();
    const h3RefusedMs = Date.now() - h3Start;
    // Counted like any request Spooky refused itself, and logged with the host and path the proxy would have seen.
    const metrics = await (await fetch(`http://127.0.0.1:${spooky.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/spooky_rejections_total\{reason="draining",status="503"\} 1/);
    const drainingLine = await spooky.child.waitFor((r) => r.event === 'access' && r.error === 'draining', 2000, 'access line of the refusal');
    expect(drainingLine).toMatchObject({ host: 'example.test', path: '/slow', status: 503 });

    const done = await Promise.all(inFlight);
    for (const r of done) expect(r.status).toBe(200);
    const code = await spooky.child.exited;
    const exitMs = Date.now() - sigAt;
    console.log(
      `[shutdown] /readyz 503 after ${notReadyAfter} ms; new HTTP/3 request answered 503 in ${h3RefusedMs} ms; 4 in-flight requests finished; straggler cut (client: ${stragglerOutcome}); exit ${code} after ${exitMs} ms (drain timeout 2500 ms)`,
    );
    expect(notReadyAfter).toBeLessThan(500);
    expect(code).toBe(0);
    expect(exitMs).toBeGreaterThanOrEqual(2400);
    expect(exitMs).toBeLessThan(2500 + 1500);
    expect(stragglerOutcome).not.toBe('status 200');
    const drainCut = spooky.child.lines.find((r) => r.event === 'drain_cut');
    expect(drainCut).toMatchObject({ cut_requests: 1, drain_timeout_ms: 2500 });
    const access = spooky.child.lines.filter((r) => r.event === 'access');
    // The straggler's line says Spooky cut it at the end of the drain, so it is not mistaken for a client leaving.
    expect(access.find((r) => r.path === '/slow' && r.status === 499 && r.error === 'client_aborted')).toMatchObject({
      error_detail: 'cut by Spooky at the end of the drain (shutdown.drain_timeout_ms)',
    });
    expect(access.find((r) => r.status === 503 && r.error === 'draining')).toBeDefined();
    expect(access.filter((r) => r.path === '/slow' && r.status === 200)).toHaveLength(4);
  }, 20_000);
});

describe('a second signal', () => {
  test('exits at once, even with requests in flight', async () => {
    const slow = await startBackend('slow2');
    let started: SpookyProcess | undefined;
    try {
      const spooky = await startSpooky(`upstream:\n  slow:\n    backends: [{ id: slow, address: "${slow.address}" }]\n`);
      started = spooky;
      let outcome = 'pending';
      void request(`${spooky.url}/slow?ms=10000`).then(
        (r) => {
          outcome = `status ${r.status}`;
        },
        () => {
          outcome = 'error';
        },
      );
      await eventually(async () => (await firstBackendStatus(spooky))?.in_flight === 1, 3000, 'request in flight');
      spooky.child.signal('SIGTERM');
      await spooky.child.waitFor((r) => r.event === 'audit' && r.action === 'shutdown', 1000, 'draining');
      const at = Date.now();
      spooky.child.signal('SIGINT');
      expect(await spooky.child.exited).toBe(0);
      expect(Date.now() - at).toBeLessThan(1000);
      expect(outcome).not.toBe('status 200');
      expect(spooky.child.lines.some((r) => r.event === 'shutdown' && r.signal === 'SIGINT')).toBe(true);
    } finally {
      await started?.child.kill();
      await slow.stop();
    }
  });
});

describe('/readyz', () => {
  test('is 503 until the first health-check round is done, then 200', async () => {
    const backend = await startBackend('probed');
    let started: SpookyProcess | undefined;
    try {
      // The probe path answers after 1 s (the test backend's /slow), so the first round takes that long.
      const spooky = await startSpooky(`upstream:
  p:
    health_check: { path: /slow, interval: 60000, timeout_ms: 3000 }
    backends: [{ id: p, address: "${backend.address}" }]
`);
      started = spooky;
      expect((await admin(spooky, '/readyz')).status).toBe(503);
      expect((await admin(spooky, '/healthz')).status).toBe(200);
      await eventually(async () => (await admin(spooky, '/readyz')).status === 200, 5000, 'ready after the first round');
      expect(((await admin(spooky, '/status')).body as { ready: boolean }).ready).toBe(true);
    } finally {
      await started?.stop();
      await backend.stop();
    }
  });
});
