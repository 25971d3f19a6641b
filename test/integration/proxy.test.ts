/**
 * End-to-end: a real Spooky process (spawned from its CLI with a YAML file) in front of real backend
 * processes on 127.0.0.1, driven over HTTP/3, HTTP/2 and HTTP/1.1.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect as tlsConnect } from 'node:tls';
import { makeTempCertificate } from '../support/certs.ts';
import { startRawH2Server } from '../support/h2-server.ts';
import { accessLine, admin, type Backend, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { type RawH3Case, runRawH3 } from '../support/raw-h3-client.ts';
import { type RawConnection, type RawRequest, type RawServer, startRawServer } from '../support/raw-http-server.ts';

type Proto = 'http3' | 'http2' | 'http1.1';
const PROTOCOLS: Proto[] = ['http3', 'http2', 'http1.1'];

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

async function status(
  spooky: SpookyProcess,
): Promise<{ pools: { name: string; backends: { id: string; healthy: boolean; requests: number; failures: number }[] }[] }> {
  const res = await fetch(`http://127.0.0.1:${spooky.adminPort}/status`);
  return (await res.json()) as never;
}

describe('forwarding to HTTP/1.1, HTTP/2 (TLS) and h2c backends', () => {
  let h1: Backend;
  let h2: Backend;
  let h2c: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    [h1, h2, h2c] = await Promise.all([startBackend('h1'), startBackend('h2', { protocol: 'h2' }), startBackend('h2c', { protocol: 'h2c' })]);
    spooky = await startSpooky(`
upstream:
  one:
    route: { path_prefix: /h1 }
    backends: [{ id: h1, address: "${h1.address}" }]
  two:
    route: { path_prefix: /h2 }
    tls: { verify_certificates: false }
    backends: [{ id: h2, address: "${h2.address}" }]
  three:
    route: { path_prefix: /h2c }
    backends: [{ id: h2c, address: "${h2c.address}" }]
  hosts:
    route: { host: "*.example.test" }
    backends: [{ id: h1, address: "${h1.address}" }]
  utf8:
    route:
      - { path_prefix: /who, headers: { x-name: "José" } }
      - { path_prefix: /re-who, headers: { x-name: { regex: "^Jos.$" } } }
    backends: [{ id: h2c, address: "${h2c.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([h1?.stop(), h2?.stop(), h2c?.stop()]);
  });

  for (const protocol of PROTOCOLS) {
    test.each([
      ['/h1/x', 'h1'],
      ['/h2/x', 'h2'],
      ['/h2c/x', 'h2c'],
    ])(`${protocol} client: %s reaches backend %s`, async (path, backend) => {
      const res = await request(`${spooky.url}${path}?q=1`, { protocol, headers: { 'x-custom': 'kept' } });
      expect(res.status).toBe(200);
      const body = await json(res);
      expect(body.backend).toBe(backend);
      expect(body.path).toBe(`${path}?q=1`);
      const headers = body.headers as Record<string, string>;
      expect(headers['x-custom']).toBe('kept');
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('https');
      expect(headers.via).toContain('spooky');
      expect(headers.host).toBe(`127.0.0.1:${spooky.port}`);
    });
  }

  test('a header condition with a non-ASCII value matches what a client sends in UTF-8, over every protocol', async () => {
    // Bun hands header values over one character per byte; Spooky reads them as UTF-8 before comparing.
    const onTheWire = Buffer.from('José', 'utf8').toString('latin1');
    for (const protocol of PROTOCOLS) {
      for (const path of ['/who', '/re-who']) {
        const res = await request(`${spooky.url}${path}`, { protocol, headers: { 'x-name': onTheWire } });
        expect({ protocol, path, status: res.status }).toEqual({ protocol, path, status: 200 });
        expect((await json(res)).backend).toBe('h2c');
      }
      const other = await request(`${spooky.url}/who`, { protocol, headers: { 'x-name': 'Jose' } });
      expect(other.status).toBe(404);
      await other.arrayBuffer();
    }
  });

  test('TCP responses advertise HTTP/3 with Alt-Svc', async () => {
    for (const protocol of ['http2', 'http1.1'] as const) {
      const res = await request(`${spooky.url}/h1/`, { protocol });
      await res.arrayBuffer();
      expect(res.headers.get('alt-svc')).toBe(`h3=":${spooky.port}"; ma=86400`);
    }
  });

  test('POST bodies are forwarded to each backend kind', async () => {
    for (const prefix of ['/h1', '/h2', '/h2c']) {
      const res = await request(`${spooky.url}${prefix}/echo`, { method: 'POST', body: 'hello body' });
      expect((await json(res)).body).toBe('hello body');
    }
  });

  test('a spoofed X-Forwarded-For from an untrusted client is replaced', async () => {
    const res = await request(`${spooky.url}/h1/`, { headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6' } });
    const headers = (await json(res)).headers as Record<string, string>;
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers.forwarded).not.toContain('6.6.6.6');
  });

  test('hop-by-hop headers and those named in Connection are not forwarded', async () => {
    const res = await request(`${spooky.url}/h1/`, {
      protocol: 'http1.1',
      headers: { connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', 'keep-alive': 'timeout=5' },
    });
    const headers = (await json(res)).headers as Record<string, string>;
    expect(headers['x-secret-hop']).toBeUndefined();
    expect(headers['keep-alive']).toBeUndefined();
  });

  test('each Set-Cookie line reaches the client on its own; repeated fields arrive joined; Via is added', async () => {
    for (const protocol of PROTOCOLS) {
      for (const prefix of ['/h1', '/h2', '/h2c']) {
        const res = await request(`${spooky.url}${prefix}/cookies`, { protocol });
        expect(await res.text()).toBe('cookies');
        expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT']);
        expect(res.headers.get('cache-control')).toBe('no-cache, no-store');
        expect(res.headers.get('via')).toContain('spooky');
      }
    }
  });

  test('host routing with a wildcard, and 404 for no route', async () => {
    const ok = await request(`${spooky.url}/anything`, { protocol: 'http1.1', headers: { host: 'api.example.test' } });
    expect((await json(ok)).backend).toBe('h1');
    const miss = await request(`${spooky.url}/nothing-here`);
    expect(miss.status).toBe(404);
    expect(await miss.text()).toContain('no route');
    await spooky.child.waitFor((r) => r.event === 'access' && r.status === 404 && r.path === '/nothing-here', 5000, '404 access log');
  });

  test('HEAD and 204/304 have no body', async () => {
    const head = await request(`${spooky.url}/h1/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    for (const s of [204, 304]) {
      const res = await request(`${spooky.url}/h1/status/${s}`);
      expect(res.status).toBe(s);
      expect((await res.arrayBuffer()).byteLength).toBe(0);
    }
  });

  test('every request gets one access-log line with the documented fields', async () => {
    await (await request(`${spooky.url}/h2c/logged?x=1`)).arrayBuffer();
    const rec = await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/h2c/logged', 5000, 'access line');
    expect(rec).toMatchObject({ method: 'GET', status: 200, pool: 'three', route: 'three#0', backend: 'h2c', attempts: 1, client: '127.0.0.1' });
    for (const k of ['time', 'request_id', 'host', 'bytes_in', 'bytes_out', 'duration_ms']) expect(rec).toHaveProperty(k);
  });
});

describe('an https:// backend that declines HTTP/2 with HTTP_1_1_REQUIRED', () => {
  test('the request is answered over HTTP/1.1 with no error, and so are later ones', async () => {
    const cert = await makeTempCertificate();
    const raw = await startRawH2Server('http1-required', undefined, { tls: { cert: cert.certPem, key: cert.keyPem } });
    const spooky = await startSpooky(`
upstream:
  iis:
    tls: { verify_certificates: false }
    backends: [{ id: iis, address: "https://127.0.0.1:${raw.port}" }]
`);
    try {
      for (const path of ['/first', '/second']) {
        const res = await request(`${spooky.url}${path}`);
        expect(res.status).toBe(200);
        expect(await res.text()).toBe(`h1 GET ${path} 0`);
        const line = await accessLine(spooky, path);
        expect(line).toMatchObject({ status: 200, backend: 'iis', attempts: 1 });
      }
      expect(raw.h2Requests()).toBe(1);
      expect(raw.http1Requests()).toBe(2);
    } finally {
      await spooky.stop();
      await raw.close();
    }
  });
});

describe('HTTP/3 requests without content-length', () => {
  let bad: RawServer;
  let good: RawServer;
  let spooky: SpookyProcess;
  const seen: RawRequest[] = [];
  const answer = (head: string) => ({
    onRequest: (c: RawConnection, r: RawRequest) => {
      seen.push(r);
      c.write(head);
    },
  });
  beforeAll(async () => {
    bad = startRawServer(answer('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy'));
    good = startRawServer(answer('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
    spooky = await startSpooky(`
upstream:
  r:
    retries: { statuses: [503], backoff: { base_ms: 0 } }
    health_check: { passive_failure_threshold: 0 }
    backends:
      - { id: bad, address: "http://127.0.0.1:${bad.port}" }
      - { id: good, address: "http://127.0.0.1:${good.port}" }
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    bad?.stop();
    good?.stop();
  });
  const h3 = (method: string, path: string, body?: string[]): RawH3Case => ({
    name: path,
    headers: [
      [':method', method],
      [':scheme', 'https'],
      [':authority', 'a.example'],
      [':path', path],
    ],
    ...(body ? { body } : {}),
  });

  test('a DELETE whose HEADERS frame ends the stream is forwarded without a body, and retried after a 503 like one over HTTP/1.1', async () => {
    // Bun hands the proxy a body stream for it; forwarded as it was, it became an empty chunked upload.
    const results = await runRawH3(
      spooky.port,
      [0, 1, 2, 3].map((i) => h3('DELETE', `/none/${i}`)),
    );
    for (const r of results) expect(r.outcome.kind === 'response' ? r.outcome.status : r.outcome.kind).toBe(200);
    const forwarded = seen.filter((r) => r.line.startsWith('DELETE /none/'));
    expect(forwarded.length).toBeGreaterThanOrEqual(4);
    for (const r of forwarded) {
      expect(r.headers.get('transfer-encoding')).toBeUndefined();
      expect(r.body.length).toBe(0);
    }
  }, 30_000);

  test('a POST with a body and no content-length still arrives whole (chunked)', async () => {
    const results = await runRawH3(spooky.port, [h3('POST', '/some/0', ['hello ', 'world'])]);
    expect(results[0]?.outcome.kind).toBe('response');
    const forwarded = seen.filter((r) => r.line.startsWith('POST /some/'));
    expect(forwarded.length).toBeGreaterThanOrEqual(1);
    for (const r of forwarded) expect(r.body.toString()).toBe('hello world');
  }, 30_000);
});

describe('Max-Forwards on OPTIONS and TRACE (RFC 9110 section 7.6.2)', () => {
  let raw: RawServer;
  let spooky: SpookyProcess;
  const seen: RawRequest[] = [];
  beforeAll(async () => {
    raw = startRawServer({
      onRequest(conn, req) {
        seen.push(req);
        conn.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      },
    });
    spooky = await startSpooky(`
upstream:
  limited:
    route: { path_prefix: /limited, allowed_methods: [GET, OPTIONS] }
    backends: [{ id: raw, address: "http://127.0.0.1:${raw.port}" }]
  r:
    backends: [{ id: raw, address: "http://127.0.0.1:${raw.port}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    raw?.stop();
  });
  const forwarded = (line: string) => seen.filter((r) => r.line.startsWith(line));

  test('OPTIONS with Max-Forwards: 0 is answered by Spooky with what the route allows, not forwarded', async () => {
    for (const protocol of ['http3', 'http2', 'http1.1'] as const) {
      const res = await request(`${spooky.url}/limited/mf0`, { protocol, method: 'OPTIONS', headers: { 'max-forwards': '0' } });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      expect(res.headers.get('allow')).toBe('GET, OPTIONS, HEAD'); // GET allows HEAD
    }
    expect(forwarded('OPTIONS /limited/mf0 ')).toHaveLength(0);
    const line = await accessLine(spooky, '/limited/mf0');
    expect(line).toMatchObject({ status: 200, route: 'limited#0' });
  });

  test('a larger value is forwarded decremented; other methods pass it unchanged', async () => {
    await (await request(`${spooky.url}/mf5`, { method: 'OPTIONS', headers: { 'max-forwards': '5' } })).arrayBuffer();
    expect(forwarded('OPTIONS /mf5 ')[0]?.headers.get('max-forwards')).toBe('4');
    await (await request(`${spooky.url}/get0`, { headers: { 'max-forwards': '0' } })).arrayBuffer();
    expect(forwarded('GET /get0 ')[0]?.headers.get('max-forwards')).toBe('0');
  });

  test('TRACE with Max-Forwards: 0 is not reflected: 405', async () => {
    const res = await request(`${spooky.url}/trace0`, { method: 'TRACE', headers: { 'max-forwards': '0' } });
    await res.arrayBuffer();
    expect(res.status).toBe(405);
    expect(forwarded('TRACE /trace0 ')).toHaveLength(0);
  });
});

describe('HEAD for a resource without a length', () => {
  test('over HTTP/1.1 the answer does not claim content-length: 0, and the connection stays usable', async () => {
    // A dynamic page: GET is chunked, HEAD gets the same head and no body.
    const raw = startRawServer({
      onRequest(c, r) {
        c.write(
          `HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ntransfer-encoding: chunked\r\n\r\n${r.line.startsWith('HEAD') ? '' : '5\r\nhello\r\n0\r\n\r\n'}`,
        );
      },
    });
    const spooky = await startSpooky(`upstream:\n  r:\n    backends: [{ id: raw, address: "http://127.0.0.1:${raw.port}" }]\n`);
    try {
      // One connection: HEAD, then (once its answer is in; Bun's HTTP/1.1 server does not take pipelined requests) a GET.
      const out = await new Promise<string>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port: spooky.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () =>
          s.write('HEAD /page HTTP/1.1\r\nHost: a.example\r\n\r\n'),
        );
        let o = '';
        s.on('data', (d) => {
          const first = !o.includes('\r\n\r\n');
          o += d.toString('latin1');
          if (first && o.includes('\r\n\r\n')) s.write('GET /page HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
        });
        s.on('close', () => resolve(o));
      });
      const [head, get] = out.split(/(?=HTTP\/1\.1 )/);
      expect(head).toStartWith('HTTP/1.1 200');
      expect(head?.toLowerCase()).not.toContain('content-length');
      expect(head?.indexOf('\r\n\r\n')).toBe((head?.length ?? 0) - 4); // the head alone, not even a last chunk
      expect(get).toStartWith('HTTP/1.1 200');
      expect(get).toContain('hello');
    } finally {
      await spooky.stop();
      raw.stop();
    }
  });
});

describe('a probe address with its own scheme', () => {
  test('an https:// backend is probed on a plain http:// sidecar, and an http:// backend on an https:// one', async () => {
    const [plain, tls] = await Promise.all([startBackend('plain'), startBackend('tls', { protocol: 'h2' })]);
    const probe = (address: string) =>
      `health_check: { address: "${address}", path: /health, interval: 100, timeout_ms: 1000, failure_threshold: 1, success_threshold: 1, initial: unhealthy }`;
    const spooky = await startSpooky(`
upstream:
  secure:
    route: { path_prefix: /secure }
    tls: { verify_certificates: false }
    ${probe(plain.address)}
    backends: [{ id: s, address: "${tls.address}" }]
  cleartext:
    route: { path_prefix: /cleartext }
    tls: { verify_certificates: false }
    ${probe(tls.address)}
    backends: [{ id: c, address: "${plain.address}" }]
`);
    try {
      // Both start unhealthy: only a probe that succeeds over its own address's protocol brings them up.
      const state = async () => {
        const body = (await admin(spooky, '/status')).body as {
          pools: { name: string; backends: { healthy: boolean; last_probe: string | null }[] }[];
        };
        return body.pools.map((p) => [p.name, p.backends[0]?.healthy, p.backends[0]?.last_probe]);
      };
      await eventually(async () => (await state()).every(([, healthy]) => healthy === true), 5000, 'both backends healthy by their probes');
      for (const [path, backend] of [
        ['/secure/x', 'tls'],
        ['/cleartext/x', 'plain'],
      ]) {
        const res = await request(`${spooky.url}${path}`);
        expect(res.status).toBe(200);
        expect((await json(res)).backend).toBe(backend);
      }
    } finally {
      await spooky.stop();
      await Promise.all([plain.stop(), tls.stop()]);
    }
  }, 20_000);
});

describe('balancing and health', () => {
  let a: Backend;
  let b: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    spooky = await startSpooky(`
upstream:
  rr:
    route: { path_prefix: /rr }
    load_balancing: { type: round-robin }
    health_check: { path: /health, interval: 200, timeout_ms: 200, failure_threshold: 1, success_threshold: 1, cooldown_ms: 300 }
    backends:
      - { id: a, address: "${a.address}" }
      - { id: b, address: "${b.address}" }
  weighted:
    route: { path_prefix: /w }
    load_balancing: { type: weighted-round-robin }
    backends:
      - { id: a, address: "${a.address}", weight: 300 }
      - { id: b, address: "${b.address}", weight: 100 }
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  async function countBackends(path: string, n: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const res = await request(`${spooky.url}${path}`);
      const name = res.headers.get('x-backend') ?? `status-${res.status}`;
      await res.arrayBuffer();
      counts[name] = (counts[name] ?? 0) + 1;
    }
    return counts;
  }

  test('round-robin alternates between the two backends', async () => {
    expect(await countBackends('/rr/x', 20)).toEqual({ a: 10, b: 10 });
  });

  test('weighted-round-robin honours 3:1 weights', async () => {
    expect(await countBackends('/w/x', 40)).toEqual({ a: 30, b: 10 });
  });

  test('a killed backend is taken out within the health-check window and comes back when restarted', async () => {
    const port = b.port;
    await b.stop();
    const killedAt = Date.now();
    await spooky.child.waitFor((r) => r.event === 'health_change' && r.healthy === false, 5000, 'backend b marked unhealthy');
    expect(Date.now() - killedAt).toBeLessThan(2000);
    expect(await countBackends('/rr/x', 10)).toEqual({ a: 10 });
    b = await startBackend('b', { port });
    await eventually(async () => (await status(spooky)).pools[0]?.backends.every((x) => x.healthy) ?? false, 5000, 'backend b healthy again');
    const counts = await countBackends('/rr/x', 10);
    expect(counts.b).toBeGreaterThan(0);
  });
});

describe('failures map to the right status', () => {
  let live: Backend;
  let slow: Backend;
  let spooky: SpookyProcess;
  const deadAddress = 'http://127.0.0.1:9'; // discard port: nothing listens there

  beforeAll(async () => {
    [live, slow] = await Promise.all([startBackend('live'), startBackend('slow')]);
    spooky = await startSpooky(`
limits: { max_request_body_bytes: 1000, max_header_bytes: 4096 }
timeouts: { connect_ms: 1000, response_header_ms: 500 }
upstream:
  failover:
    route: { path_prefix: /failover }
    load_balancing: { type: round-robin }
    backends:
      - { id: dead, address: "${deadAddress}" }
      - { id: live, address: "${live.address}" }
  dead:
    route: { path_prefix: /dead }
    backends: [{ id: dead, address: "http://127.0.0.1:1" }]
  down:
    route: { path_prefix: /down }
    backends: [{ id: down, address: "${live.address}", health_check: { path: /nope-404, initial: unhealthy, interval: 60000 } }]
  slow:
    route: { path_prefix: /slow }
    backends: [{ id: slow, address: "${slow.address}" }]
  live:
    route: { path_prefix: /live }
    backends: [{ id: live, address: "${live.address}" }]
  passive:
    route: { path_prefix: /passive }
    health_check: { probes: [], passive_failure_threshold: 2, cooldown_ms: 60000 }
    backends: [{ id: flaky, address: "${live.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([live?.stop(), slow?.stop()]);
  });

  test('connection refused goes to another backend: no client sees an error', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await request(`${spooky.url}/failover/x`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-backend')).toBe('live');
      await res.arrayBuffer();
    }
  });

  test.each([
    ['/dead/x', 502, 'could not connect'],
    ['/down/x', 503, 'no healthy backend'],
    ['/slow/slow?ms=3000', 504, 'did not answer in time'],
  ])('%s answers %d', async (path, code, text) => {
    const res = await request(`${spooky.url}${path}`);
    expect(res.status).toBe(code);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const body = await res.text();
    expect(body).toContain(text);
    expect(body).not.toContain('at ');
    if (code === 503) expect(res.headers.get('retry-after')).toBe('1');
    await spooky.child.waitFor((r) => r.event === 'access' && r.status === code && r.path === path.split('?')[0], 5000, `access log ${code}`);
  });

  test('a body over the limit gets 413, declared or streamed', async () => {
    const declared = await request(`${spooky.url}/live/upload`, { method: 'POST', body: 'x'.repeat(2000) });
    expect(declared.status).toBe(413);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(600));
        c.enqueue(new Uint8Array(600));
        c.close();
      },
    });
    const streamed = await request(`${spooky.url}/live/upload`, { method: 'POST', body: stream, duplex: 'half', protocol: 'http2' } as RequestInit);
    expect(streamed.status).toBe(413);
    const ok = await request(`${spooky.url}/live/upload`, { method: 'POST', body: 'x'.repeat(900) });
    expect(((await ok.json()) as { bytes: number }).bytes).toBe(900);
  });

  test('headers over the limit get 431', async () => {
    const res = await request(`${spooky.url}/live/x`, { headers: { 'x-big': 'y'.repeat(5000) } });
    expect(res.status).toBe(431);
  });

  test('a bad Host gets 400', async () => {
    const res = await request(`${spooky.url}/live/x`, { protocol: 'http1.1', headers: { host: 'bad host' } });
    expect(res.status).toBe(400);
  });

  test('passive health: consecutive 503s from a backend take it out of the pool', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await request(`${spooky.url}/passive/status/503`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('from live');
    }
    const res = await request(`${spooky.url}/passive/status/200`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('no healthy backend');
    await spooky.child.waitFor(
      (r) => r.event === 'health_change' && r.backend === 'flaky' && r.reason === 'passive_failures',
      5000,
      'passive trip logged',
    );
  });

  test('Spooky is still serving after all of that', async () => {
    const res = await request(`${spooky.url}/live/x`);
    expect(res.status).toBe(200);
  });
});
