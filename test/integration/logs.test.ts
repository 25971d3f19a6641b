/**
 * Access-log features against real processes: log files reopened on SIGUSR1 under HTTP/3 load (logrotate's
 * rename-then-signal: no access record lost or written twice), access-log sampling (errors kept), and
 * per-route body sampling (capped, redacted, off at ratio 0, a 10 MB upload still streams).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testCertificate } from '../support/certs.ts';
import { type Backend, Child, eventually, type LogRecord, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { parseExposition, sample } from '../support/prom.ts';
import { waitUntil } from '../support/wait.ts';

const ROOT = resolve(import.meta.dir, '../..');

/** The JSON records of a log file (none when it does not exist). */
function records(path: string): LogRecord[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogRecord);
}

function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

async function metrics(spooky: SpookyProcess) {
  const res = await fetch(`http://127.0.0.1:${spooky.adminPort}/metrics`);
  return parseExposition(await res.text());
}

describe('log files reopened on SIGUSR1', () => {
  let backend: Backend;
  let child: Child | undefined;

  beforeAll(async () => {
    backend = await startBackend('rot');
  });
  afterAll(async () => {
    if (child) {
      child.signal('SIGTERM');
      const timer = setTimeout(() => child?.proc.kill('SIGKILL'), 5000);
      await child.exited;
      clearTimeout(timer);
    }
    await backend?.stop();
  });

  test('rename both files, SIGUSR1 under load: new lines go to new files; the access records of both add up to the requests sent', async () => {
    const { cert, key } = await testCertificate();
    const dir = mkdtempSync(join(tmpdir(), 'spooky-logs-'));
    const configPath = join(dir, 'spooky.yaml');
    writeFileSync(
      configPath,
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${cert}", key: "${key}" } }
log:
  file: logs/spooky.log
  access_file: logs/access.log
upstream:
  rot:
    backends: [{ id: rot, address: "${backend.address}" }]
`,
    );
    const main = join(dir, 'logs/spooky.log');
    const access = join(dir, 'logs/access.log');
    child = new Child(
      Bun.spawn([process.execPath, 'src/main.ts', 'run', '--config', configPath, '--admin-port', '0'], {
        cwd: ROOT,
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
      }),
    );
    // The readiness line goes to the log file, not to stdout.
    const ready = await waitUntil(() => records(main).find((r) => r.event === 'listening'), 15_000, 'listening record in the log file', 50);
    const port = Number((ready.listeners as { port: number }[])[0]?.port);
    const url = `https://127.0.0.1:${port}/rot/x`;

    const total = 600;
    let sent = 0;
    let done = 0;
    const statuses = new Map<number, number>();
    // logrotate's steps, taken while the other loops have requests in flight: rename, then signal.
    const rotate = () => {
      renameSync(main, `${main}.1`);
      renameSync(access, `${access}.1`);
      child?.signal('SIGUSR1');
    };
    const loop = async () => {
      while (sent < total) {
        sent++;
        const res = await request(url);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        done++;
        if (done === total / 3) rotate();
      }
    };
    await Promise.all(Array.from({ length: 8 }, loop));
    expect(Object.fromEntries(statuses)).toEqual({ 200: total });

    const accessIds = () => [...records(`${access}.1`), ...records(access)].filter((r) => r.event === 'access').map((r) => r.request_id);
    await waitUntil(() => accessIds().length >= total, 15_000, `${total} access records`);
    const ids = accessIds();
    expect(ids.length).toBe(total);
    expect(new Set(ids).size).toBe(total);
    const before = records(`${access}.1`).length;
    const after = records(access).length;
    console.log(`access records: ${before} in the renamed file, ${after} in the new one (${total} requests)`);
    expect(before).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(0);
    // The main log moved on too: the listening record stayed in the renamed file, the reopen is in the new one.
    expect(records(`${main}.1`).some((r) => r.event === 'listening')).toBe(true);
    await waitUntil(() => records(main).filter((r) => r.event === 'log_reopen').length === 2, 10_000, 'two log_reopen records in the new main log');
    expect(records(main).some((r) => r.event === 'listening')).toBe(false);
  }, 90_000);
});

describe('access-log and body sampling', () => {
  let backend: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    backend = await startBackend('samp');
    spooky = await startSpooky(`
limits: { max_request_body_bytes: 50000000 }
log:
  access_sampling: { ratio: 0 }
upstream:
  sampled:
    route:
      path_prefix: /sampled/
      body_sampling: { ratio: 1, max_bytes: 64, redact_headers: [authorization, cookie, set-cookie, x-api-key] }
    backends: [{ id: s, address: "${backend.address}" }]
  dead:
    route:
      path_prefix: /dead/
      body_sampling: { ratio: 1 }
    backends: [{ id: d, address: "http://127.0.0.1:1" }]
  plain:
    route:
      path_prefix: /plain/
      body_sampling: { ratio: 0 }
    backends: [{ id: p, address: "${backend.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await backend?.stop();
  });

  const bodySamples = (id: string) => spooky.child.lines.filter((r) => r.event === 'body_sample' && r.request_id === id);

  /** POSTs to the echo endpoint and returns the request id Spooky gave the request (the backend echoes it). */
  async function post(path: string, body: string): Promise<string> {
    const res = await request(`${spooky.url}${path}`, {
      method: 'POST',
      body,
      headers: { authorization: 'Bearer top-secret', cookie: 'session=s3cr3t', 'x-api-key': 'k3y', 'x-visible': 'yes' },
    });
    expect(res.status).toBe(200);
    const echo = (await res.json()) as { headers: Record<string, string>; body: string };
    expect(echo.body).toBe(body);
    return echo.headers['x-request-id'] as string;
  }

  test('ratio 1: request and response bodies are logged capped, with secret headers redacted', async () => {
    const body = `${'ü'.repeat(40)}${'x'.repeat(920)}`; // 1000 bytes; the 64-byte cap falls on whole characters
    const id = await post('/sampled/echo', body);
    await eventually(() => bodySamples(id).length === 2, 10_000, 'two body samples');
    const req = bodySamples(id).find((r) => r.direction === 'request') as LogRecord;
    const res = bodySamples(id).find((r) => r.direction === 'response') as LogRecord;
    expect(req).toMatchObject({ route: 'sampled#0', body: 'ü'.repeat(32), body_encoding: 'utf8', bytes_seen: 1000, truncated: true, complete: true });
    expect(req.headers).toMatchObject({ authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]', 'x-visible': 'yes' });
    expect(res).toMatchObject({ status: 200, body_encoding: 'utf8', truncated: true, complete: true });
    expect(String(res.body)).toHaveLength(64);
    expect(String(res.body)).toStartWith('{"backend":"samp"');
    expect(Number(res.bytes_seen)).toBeGreaterThan(1000);
    expect((res.headers as Record<string, string>)['set-cookie']).toBe('[redacted]');
    // Both samples carry the request's trace id (as its access record does), so the lines can be joined.
    expect(req.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(res.trace_id).toBe(req.trace_id);
    const all = JSON.stringify(bodySamples(id));
    for (const secret of ['top-secret', 's3cr3t', 'k3y']) expect(all).not.toContain(secret);
  });

  test('ratio 0: no body samples', async () => {
    const id = await post('/plain/echo', 'nothing to see');
    // A later sampled request's records arriving shows the log got this far.
    const later = await post('/sampled/echo', 'later');
    await eventually(() => bodySamples(later).length === 2, 10_000, 'the later samples');
    expect(bodySamples(id)).toEqual([]);
  });

  test('a sampled response is not held back: a body that stalls after its first chunk still reaches the client; the cut is logged', async () => {
    const controller = new AbortController();
    const res = await request(`${spooky.url}/sampled/stall`, { signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('first chunk\n');
    controller.abort();
    const cut = await spooky.child.waitFor(
      (r) => r.event === 'body_sample' && r.direction === 'response' && r.body === 'first chunk\n',
      15_000,
      'the sample of the cut response',
    );
    expect(cut).toMatchObject({ complete: false, truncated: false, bytes_seen: 12 });
  }, 30_000);

  test('a request whose backend cannot be reached still gets its request sample, marked incomplete', async () => {
    const res = await request(`${spooky.url}/dead/x`, { method: 'POST', body: 'never forwarded', headers: { authorization: 'Bearer t0ken' } });
    expect(res.status).toBe(502);
    const id = res.headers.get('x-request-id') as string;
    const rec = await spooky.child.waitFor((r) => r.event === 'body_sample' && r.request_id === id, 10_000, 'the request sample');
    expect(rec).toMatchObject({ direction: 'request', route: 'dead#0', complete: false, headers: { authorization: '[redacted]' } });
  });

  test('a 10 MB upload with sampling on streams through: the cap holds and the peak RSS stays low', async () => {
    const MB = 1_000_000;
    let sent = 0;
    const chunk = new Uint8Array(64 * 1024).fill(97);
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= 10 * MB) return c.close();
        const n = Math.min(chunk.length, 10 * MB - sent);
        sent += n;
        c.enqueue(n === chunk.length ? chunk : chunk.subarray(0, n));
      },
    });
    const res = await request(`${spooky.url}/sampled/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { bytes: number }).bytes).toBe(10 * MB);
    await eventually(
      () => spooky.child.lines.some((r) => r.event === 'body_sample' && r.direction === 'request' && r.bytes_seen === 10 * MB),
      10_000,
      'the upload sample',
    );
    const rec = spooky.child.lines.find((r) => r.event === 'body_sample' && r.direction === 'request' && r.bytes_seen === 10 * MB) as LogRecord;
    expect(rec).toMatchObject({ body: 'a'.repeat(64), truncated: true, complete: true });
    // Same bound as the 100 MB streaming tests; a body held in memory would show up as tens of MB more.
    expect(peakRss(spooky.child.proc.pid)).toBeLessThan(150 * 1024 * 1024);
  }, 60_000);

  test('access sampling at ratio 0 drops the records of good requests but keeps the errors; both are counted', async () => {
    for (let i = 0; i < 5; i++) expect((await request(`${spooky.url}/plain/ok`)).status).toBe(200);
    const missing = await request(`${spooky.url}/nowhere`);
    expect(missing.status).toBe(404);
    const id = missing.headers.get('x-request-id');
    await eventually(() => spooky.child.lines.some((r) => r.event === 'access' && r.request_id === id), 10_000, 'the 404 access record');
    const written = spooky.child.lines.filter((r) => r.event === 'access');
    expect(written.filter((r) => r.path === '/plain/ok')).toEqual([]);
    expect(written.every((r) => r.status !== 200)).toBe(true);
    const m = await metrics(spooky);
    expect(sample(m, 'spooky_access_log_sampled_out_total')).toBeGreaterThanOrEqual(5);
    expect(sample(m, 'spooky_body_samples_total', { direction: 'request' })).toBeGreaterThanOrEqual(3);
    expect(sample(m, 'spooky_body_samples_total', { direction: 'response' })).toBeGreaterThanOrEqual(3);
  });

  test('SIGUSR1 while logging to stdout changes nothing: it is logged and Spooky keeps serving', async () => {
    spooky.child.signal('SIGUSR1');
    await spooky.child.waitFor((r) => r.event === 'log_reopen', 10_000, 'log_reopen record');
    expect((await request(`${spooky.url}/plain/ok`)).status).toBe(200);
    const m = await metrics(spooky);
    expect(sample(m, 'spooky_log_reopens_total', { result: 'success' })).toBe(0);
  });
});

describe('the request id from a trusted proxy', () => {
  let b: Backend;
  let spooky: SpookyProcess;
  beforeAll(async () => {
    b = await startBackend('b');
    spooky = await startSpooky(`
trusted_proxies: ["127.0.0.1"]
upstream:
  r:
    route: { path_prefix: /api }
    backends: [{ id: b, address: "${b.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await b?.stop();
  });

  test("is the id everywhere: forwarded, in the access record, and on Spooky's own error answers", async () => {
    const res = await request(`${spooky.url}/api/rid-check`, { headers: { 'x-request-id': 'front-proxy-id-42' } });
    const echo = (await res.json()) as { headers: Record<string, string> };
    expect(echo.headers['x-request-id']).toBe('front-proxy-id-42');
    const rec = await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/api/rid-check', 5000, 'access line');
    expect(rec.request_id).toBe('front-proxy-id-42');
    // A request Spooky answers itself (no route: 404) carries it too.
    const missing = await request(`${spooky.url}/nowhere`, { headers: { 'x-request-id': 'front-proxy-id-43' } });
    await missing.arrayBuffer();
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toBe('front-proxy-id-43');
    const rec404 = await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/nowhere', 5000, 'access line of the 404');
    expect(rec404.request_id).toBe('front-proxy-id-43');
  });
});
