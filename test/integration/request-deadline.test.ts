/**
 * `timeouts.request_ms` bounds the upload too: a backend that stops reading the request body gets the request
 * ended with 504 at the deadline, and a client that stops sending its body gets 408, which is not charged to
 * the backend. Real processes: Spooky, the test backend, a raw TCP backend that never reads, and a raw TLS
 * client that sends half of its declared body.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect, type TLSSocket } from 'node:tls';
import { backendStatus } from '../support/backend-status.ts';
import { accessLine, type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { type RawServer, startRawServer } from '../support/raw-http-server.ts';

describe('timeouts.request_ms during the upload', () => {
  let backend: Backend;
  let deaf: RawServer;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    backend = await startBackend('up');
    deaf = startRawServer({ onConnection: (conn) => conn.pause(), countOnly: true }); // accepts, never reads
    spooky = await startSpooky(`log: { level: info }
timeouts: { request_ms: 1000 }
upstream:
  deaf:
    route: { path_prefix: /deaf/ }
    backends: [{ id: deaf, address: "http://127.0.0.1:${deaf.port}" }]
  up:
    route: { path_prefix: /up/ }
    backends: [{ id: up, address: "${backend.address}" }]
`);
  });

  afterAll(async () => {
    await spooky?.stop();
    deaf?.stop();
    await backend?.stop();
  });

  const access = (path: string) => accessLine(spooky, path);

  test('a backend that stops reading a 16 MiB upload: 504 at the deadline, not a hang', async () => {
    const body = new Uint8Array(16 * 1024 * 1024);
    const t0 = performance.now();
    const res = await request(`${spooky.url}/deaf/x`, { method: 'POST', body });
    const ms = performance.now() - t0;
    expect(res.status).toBe(504);
    await res.arrayBuffer();
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(3000);
    expect(await access('/deaf/x')).toMatchObject({ status: 504, error: 'upstream_timeout' });
  });

  test('a client that sends half of its declared body and stalls: 408, and the backend is not charged', async () => {
    const socket = connect({ host: '127.0.0.1', port: spooky.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const t0 = performance.now();
    socket.write(`POST /up/upload HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(500)}`);
    const line = await access('/up/upload');
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(line).toMatchObject({ status: 408, error: 'client_timeout', bytes_in: 500 });
    await closed; // the half-sent body makes the connection unusable: Spooky closes it (connection: close)
    expect(answer.startsWith('HTTP/1.1 408')).toBe(true);
    expect(answer.toLowerCase()).toContain('connection: close');
    // not charged: /status shows no failure (and no request counted) for the backend
    const st = await backendStatus<{ id: string; failures: number; requests: number }>(spooky, 'up', 'up');
    expect(st.failures).toBe(0);
    expect(st.requests).toBe(0);
  });
});

describe('timeouts.request_ms and a client that reads the response slowly or not at all', () => {
  let backend: Backend;
  let spooky: SpookyProcess;
  beforeAll(async () => {
    backend = await startBackend('b');
    spooky = await startSpooky(`log: { level: info }
timeouts: { request_ms: 1500 }
upstream:
  b:
    backends: [{ id: b, address: "${backend.address}" }]
`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await backend?.stop();
  });

  for (const protocol of ['http1.1', 'http2', 'http3'] as const)
    test(`${protocol}: a download read at 2 MB/s is cut at request_ms, logged as the client's timeout`, async () => {
      const path = `/${protocol}/big`;
      const t0 = performance.now();
      const res = await request(`${spooky.url}${path}?bytes=100000000`, { protocol });
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let got = 0;
      let failed = false;
      // Read at about 2 MB/s (each read finds data waiting), for at most 6 s or until Spooky logged the request.
      const logged = () => spooky.child.lines.some((r) => r.event === 'access' && r.path === path);
      const untilLogged = async (): Promise<'logged'> => {
        while (!logged() && performance.now() - t0 < 6000) await Bun.sleep(20);
        return 'logged';
      };
      while (performance.now() - t0 < 6000 && (protocol === 'http1.1' || !logged())) {
        try {
          const next = reader.read();
          // Over HTTP/2 a read may wait long after the cut; stop waiting once Spooky logged the request.
          const r = protocol === 'http1.1' ? await next : await Promise.race([next, untilLogged()]);
          if (r === 'logged' || r.done) break;
          got += r.value.byteLength;
        } catch {
          failed = true;
          break;
        }
        const due = t0 + got / 2000;
        const now = performance.now();
        if (due > now) await Bun.sleep(due - now);
      }
      const elapsed = performance.now() - t0;
      void reader.cancel().catch(() => {});
      const line = await accessLine(spooky, path);
      // Spooky cut it at request_ms (its access line is written when the relay ends).
      expect(line.error).toBe('client_timeout');
      expect(line.duration_ms as number).toBeLessThan(3000);
      // Over HTTP/1.1 the client sees the cut soon; over HTTP/2 and HTTP/3 it first reads what the flow-control
      // windows already hold (and Bun's HTTP/3 server ends a failed body with a clean FIN, a documented Bun limit).
      if (protocol === 'http1.1') {
        expect(failed).toBe(true);
        expect(elapsed).toBeLessThan(4500);
      }
      // Not the backend's fault: it is not charged.
      const st = await backendStatus<{ id: string; failures: number }>(spooky, 'b', 'b');
      expect(st.failures).toBe(0);
    }, 20_000);

  test('a client that never reads a body the backend has finished: the cut is logged as the client timeout, not as a success', async () => {
    // Sizes around what the loopback socket buffers hold: some bodies are all sent by the backend while the
    // rest still waits for the client.
    const sizes = Array.from({ length: 12 }, (_, k) => 3_800_000 + k * 32_768);
    const sockets = await Promise.all(
      sizes.map(async (n) => {
        return await nonReadingClient(spooky.port, `/n${n}/big?bytes=${n}`);
      }),
    );
    try {
      const lines = await Promise.all(sizes.map((n) => accessLine(spooky, `/n${n}/big`, 8000)));
      const cut = lines.filter((l, i) => (l.bytes_out as number) < (sizes[i] as number));
      expect(cut.length).toBeGreaterThan(0);
      for (const l of cut) expect(l.error).toBe('client_timeout');
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 30_000);
});

describe('timeouts.request_ms and a backend that sends its body slowly', () => {
  test("a fast client's download cut at request_ms is the backend's timeout", async () => {
    const raw = startRawServer({
      onRequest(conn) {
        conn.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
        const timer = setInterval(() => {
          if (conn.closed) clearInterval(timer);
          else conn.write('5\r\nhello\r\n');
        }, 100);
      },
    });
    const spooky = await startSpooky(`log: { level: info }
timeouts: { request_ms: 1000 }
upstream:
  s:
    health_check: { passive_failure_threshold: 0, probes: [] }
    backends: [{ id: s, address: "http://127.0.0.1:${raw.port}" }]
`);
    try {
      const res = await request(`${spooky.url}/drip`, { protocol: 'http1.1' });
      expect(res.status).toBe(200);
      await res.text().catch(() => '');
      const line = await accessLine(spooky, '/drip');
      expect(line.error).toBe('upstream_timeout');
      expect((await backendStatus<{ id: string; failures: number }>(spooky, 's', 's')).failures).toBe(1);
    } finally {
      await spooky.stop();
      raw.stop();
    }
  }, 20_000);
});

/** An HTTP/1.1 client over TLS that sends `GET target` and then never reads the answer. */
async function nonReadingClient(port: number, target: string): Promise<TLSSocket> {
  const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  await new Promise<void>((res, rej) => {
    socket.once('secureConnect', () => res());
    socket.once('error', rej);
  });
  socket.write(`GET ${target} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
  socket.pause(); // never reads
  return socket;
}

describe("timeouts.request_ms: the wait for the head counts as the backend's", () => {
  test('a backend that used most of request_ms before its head is charged for the cut, even if the client then stalls', async () => {
    const raw = startRawServer({
      onRequest(conn) {
        setTimeout(() => {
          conn.write('HTTP/1.1 200 OK\r\ncontent-length: 8000000\r\n\r\n');
          void conn.stream(8_000_000);
        }, 1200);
      },
    });
    const spooky = await startSpooky(`log: { level: info }
timeouts: { request_ms: 1500 }
upstream:
  s:
    health_check: { passive_failure_threshold: 0, probes: [] }
    backends: [{ id: s, address: "http://127.0.0.1:${raw.port}" }]
`);
    const socket = await nonReadingClient(spooky.port, '/late');
    try {
      const line = await accessLine(spooky, '/late');
      expect(line.error).toBe('upstream_timeout');
    } finally {
      socket.destroy();
      await spooky.stop();
      raw.stop();
    }
  }, 20_000);
});
