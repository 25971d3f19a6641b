/**
 * `timeouts.request_ms` bounds the upload too: a backend that stops reading the request body gets the request
 * ended with 504 at the deadline, and a client that stops sending its body gets 408, which is not charged to
 * the backend. Real processes: Spooky, the test backend, a raw TCP backend that never reads, and a raw TLS
 * client that sends half of its declared body.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect } from 'node:tls';
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
