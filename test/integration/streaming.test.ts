/**
 * Streaming through Spooky: 100 MB up and down with bounded memory, backpressure from a stalled client,
 * client aborts cancelling the upstream exchange (logged as 499, not charged to the backend), and upstream
 * connection reuse at 512 concurrent requests.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { type Backend, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

const MB = 1_000_000;

/**
 * Peak-RSS bound, both backend kinds: the core issue's 150 MiB. Measured in ten runs of this file: HTTP/1.1
 * peaks at 99 to 105 MiB, h2c (Spooky's own HTTP/2 client) at 99 to 109 MiB (idle: about 68 MiB).
 */
const PEAK_LIMIT = 150 * 1024 * 1024;

function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

async function backendStatus(spooky: SpookyProcess, pool: string) {
  const res = await fetch(`http://127.0.0.1:${spooky.adminPort}/status`);
  const body = (await res.json()) as {
    pools: { name: string; backends: { id: string; requests: number; failures: number; in_flight: number; connections: { connectionsOpened: number } }[] }[];
  };
  return body.pools.find((p) => p.name === pool)?.backends ?? [];
}

describe('streaming', () => {
  let h1: Backend;
  let h2c: Backend;
  let spooky: SpookyProcess;

  const config = () => `
limits: { max_request_body_bytes: 200000000 }
upstream:
  h1:
    route: { path_prefix: /h1 }
    backends: [{ id: h1, address: "${h1.address}" }]
  h2c:
    route: { path_prefix: /h2c }
    backends: [{ id: h2c, address: "${h2c.address}" }]
`;

  /** Runs `body` against a Spooky of its own, so the peak RSS it reads belongs to that transfer alone. */
  async function withOwnSpooky(body: (s: SpookyProcess) => Promise<void>): Promise<void> {
    const own = await startSpooky(config());
    try {
      await body(own);
    } finally {
      await own.stop();
    }
  }

  beforeAll(async () => {
    [h1, h2c] = await Promise.all([startBackend('h1'), startBackend('h2c', { protocol: 'h2c' })]);
    spooky = await startSpooky(config());
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([h1?.stop(), h2c?.stop()]);
  });

  for (const prefix of ['/h1', '/h2c']) {
    test(`100 MB download over HTTP/3 from ${prefix} keeps Spooky's peak RSS bounded`, async () => {
      await withOwnSpooky(async (own) => {
        const res = await request(`${own.url}${prefix}/big?bytes=${100 * MB}`);
        expect(res.status).toBe(200);
        let total = 0;
        for await (const chunk of res.body as ReadableStream<Uint8Array>) total += chunk.byteLength;
        expect(total).toBe(100 * MB);
        expect(memory(own.child.proc.pid).peak).toBeLessThan(PEAK_LIMIT);
      });
    }, 60_000);

    test(`100 MB streamed upload over HTTP/3 to ${prefix} keeps Spooky's peak RSS bounded`, async () => {
      let sent = 0;
      const chunk = new Uint8Array(64 * 1024).fill(97);
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= 100 * MB) return c.close();
          const n = Math.min(chunk.length, 100 * MB - sent);
          sent += n;
          c.enqueue(n === chunk.length ? chunk : chunk.subarray(0, n));
        },
      });
      await withOwnSpooky(async (own) => {
        const res = await request(`${own.url}${prefix}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit);
        expect(res.status).toBe(200);
        expect(((await res.json()) as { bytes: number }).bytes).toBe(100 * MB);
        expect(memory(own.child.proc.pid).peak).toBeLessThan(PEAK_LIMIT);
      });
    }, 60_000);
  }

  test('a stalled client stops the upstream body being pulled (backpressure)', async () => {
    const before = memory(spooky.child.proc.pid).rss;
    const controller = new AbortController();
    const res = await request(`${spooky.url}/h1/big?bytes=${500 * MB}`, { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let got = 0;
    while (got < 2 * MB) got += (await reader.read()).value?.byteLength ?? 0;
    // Stop reading. If Spooky buffered instead of applying backpressure, its RSS would climb by hundreds of MB.
    let maxRss = 0;
    const until = Date.now() + 1500;
    await eventually(
      () => {
        maxRss = Math.max(maxRss, memory(spooky.child.proc.pid).rss);
        return Date.now() > until;
      },
      3000,
      'observation window',
    );
    expect(maxRss - before).toBeLessThan(64 * 1024 * 1024);
    controller.abort();
    await reader.cancel().catch(() => {});
  }, 30_000);

  for (const protocol of ['http3', 'http2', 'http1.1'] as const) {
    test(`a client abort over ${protocol} cancels the upstream exchange, is logged 499 and not charged to the backend`, async () => {
      const failuresBefore = (await backendStatus(spooky, 'h1'))[0]?.failures ?? 0;
      const controller = new AbortController();
      const res = await request(`${spooky.url}/h1/big?bytes=${1000 * MB}&abort=${protocol}`, { protocol, signal: controller.signal });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      controller.abort();
      await reader.cancel().catch(() => {});
      const rec = await spooky.child.waitFor((r) => r.event === 'access' && r.path === '/h1/big' && r.status === 499 && r.protocol === (protocol === 'http1.1' ? 'h1.1' : protocol === 'http2' ? 'h2' : 'h3'), 5000, '499 access line');
      expect(rec.error).toBe('client_aborted');
      await eventually(async () => (await backendStatus(spooky, 'h1'))[0]?.in_flight === 0, 5000, 'upstream exchange released');
      expect((await backendStatus(spooky, 'h1'))[0]?.failures).toBe(failuresBefore);
    }, 30_000);
  }

  test('512 concurrent requests to one HTTP/1.1 backend reuse upstream connections', async () => {
    async function batch(): Promise<void> {
      const results = await Promise.all(
        Array.from({ length: 512 }, async () => {
          const res = await request(`${spooky.url}/h1/slow?ms=200`, { protocol: 'http1.1' });
          await res.arrayBuffer();
          return res.status;
        }),
      );
      expect(results.every((s) => s === 200)).toBe(true);
    }
    const opened0 = (await backendStatus(spooky, 'h1'))[0]?.connections.connectionsOpened ?? 0;
    await batch();
    const opened1 = (await backendStatus(spooky, 'h1'))[0]?.connections.connectionsOpened ?? 0;
    expect(opened1 - opened0).toBeLessThanOrEqual(512);
    await batch();
    await batch();
    const opened2 = (await backendStatus(spooky, 'h1'))[0]?.connections.connectionsOpened ?? 0;
    // Two more batches of 512: the idle pool holds the connections, so over all three batches Spooky opens at
    // most about one connection per concurrent request (a loaded machine may spread the first batch out, so
    // the later ones can open the few the first did not need); churn would mean thousands.
    expect(opened2 - opened0).toBeLessThanOrEqual(512 + 32);
  }, 60_000);
});
