/**
 * A stalled client and an HTTP/1.1 backend that streams its body in tiny (1-byte) chunked-encoding chunks:
 * what Spooky holds for that response must stay bounded like it does for the same body in 16 KiB chunks.
 * The response-body queue used to count only payload bytes, so 64 KiB of queue meant 64 Ki one-byte
 * Uint8Arrays (each an object of ~100+ bytes), several MB per stalled response.
 */
import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import type { Socket, TCPSocketListener } from 'bun';
import { request, type SpookyProcess, startSpooky } from '../support/process.ts';

const MB = 1_000_000;
const TOTAL = 20 * MB;
/** Stalled clients per run (the cost is per response). */
const CLIENTS = 6;

function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** One response being streamed by the backend: payload bytes the kernel accepted so far. */
interface Sending {
  payloadSent: number;
  done: boolean;
}

/**
 * A raw HTTP/1.1 backend on 127.0.0.1:0 answering every request with a `TOTAL`-byte chunked body made of
 * `chunk`-byte chunks, written drain-driven in ~64 KiB batches (so the backend itself is fast).
 */
function startChunkBackend(chunk: number): { port: number; sends: Sending[]; stop(): void } {
  const frame = Buffer.concat([Buffer.from(`${chunk.toString(16)}\r\n`), Buffer.alloc(chunk, 0x61), Buffer.from('\r\n')]);
  const perBatch = Math.max(1, Math.floor((64 * 1024) / frame.length));
  const batch = Buffer.concat(Array.from({ length: perBatch }, () => frame));
  const payloadPerBatch = perBatch * chunk;
  const sends: Sending[] = [];
  interface St {
    buf: string;
    s: Sending | null;
    /** Unwritten rest of the current batch. */
    pending: Buffer | null;
    batchesLeft: number;
  }
  const pump = (sock: Socket<St>): void => {
    const st = sock.data;
    const s = st.s!;
    for (;;) {
      let part = st.pending;
      if (part === null) {
        if (st.batchesLeft === 0) {
          if (!s.done) {
            s.done = true;
            sock.write('0\r\n\r\n');
          }
          return;
        }
        st.batchesLeft--;
        part = batch;
      }
      const n = sock.write(part);
      const wrote = Math.max(0, n);
      // payload bytes in what was written (framing excluded), counted per whole frame
      const before = batch.length - part.length;
      s.payloadSent += (Math.floor((before + wrote) / frame.length) - Math.floor(before / frame.length)) * chunk;
      if (wrote < part.length) {
        st.pending = part.subarray(wrote);
        return;
      }
      st.pending = null;
    }
  };
  const listener: TCPSocketListener<St> = Bun.listen<St>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(sock) {
        sock.data = { buf: '', s: null, pending: null, batchesLeft: 0 };
      },
      data(sock, d) {
        const st = sock.data;
        if (st.s !== null) return;
        st.buf += d.toString('latin1');
        if (!st.buf.includes('\r\n\r\n')) return;
        st.s = { payloadSent: 0, done: false };
        sends.push(st.s);
        st.batchesLeft = Math.ceil(TOTAL / payloadPerBatch);
        sock.write('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n');
        pump(sock);
      },
      drain(sock) {
        if (sock.data.s !== null) pump(sock);
      },
    },
  });
  return { port: listener.port, sends, stop: () => listener.stop(true) };
}

/** An HTTP/1.1-over-TLS client that reads the response head and then stops reading. */
async function stalledH1(port: number, path: string): Promise<{ close(): void }> {
  let got = '';
  let headSeen: () => void = () => {};
  const head = new Promise<void>((r) => {
    headSeen = r;
  });
  const sock = await Bun.connect<undefined>({
    hostname: '127.0.0.1',
    port,
    tls: { rejectUnauthorized: false },
    socket: {
      open(s) {
        s.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
      },
      data(s, d) {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) {
          s.pause();
          headSeen();
        }
      },
    },
  });
  await head;
  return { close: () => sock.terminate() };
}

/** An HTTP/3 client (fetch) that receives the response head and never reads the body. */
async function stalledH3(url: string): Promise<{ close(): void }> {
  const controller = new AbortController();
  const res = await request(url, { signal: controller.signal });
  expect(res.status).toBe(200);
  return { close: () => controller.abort() };
}

interface Run {
  /** Spooky's RSS growth once the stall has settled (backend stuck for SETTLE_MS), bytes. */
  settledGrowth: number;
  /** Highest RSS growth seen on the way, bytes. */
  peakGrowth: number;
  /** Payload bytes the backend got onto the wire, per response. */
  payloadSent: number[];
}

/** Spooky's RSS once it has not moved by more than 1 MB over 300 ms (start-up settling), at most 5 s of waiting. */
async function steadyRss(pid: number): Promise<number> {
  let last = rss(pid);
  let since = Date.now();
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    const now = rss(pid);
    if (Math.abs(now - last) > MB) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= 300) break;
  }
  return rss(pid);
}

/** How long the backend must have been stuck before the stall counts as settled. */
const SETTLE_MS = 3000;

async function run(chunk: number, client: 'h1' | 'h3'): Promise<Run> {
  const backend = startChunkBackend(chunk);
  let spooky: SpookyProcess | undefined;
  const clients: { close(): void }[] = [];
  try {
    spooky = await startSpooky(`
upstream:
  p:
    route: { path_prefix: / }
    backends: [{ id: b, address: "http://127.0.0.1:${backend.port}" }]
`);
    const pid = spooky.child.proc.pid;
    const before = await steadyRss(pid);
    for (let i = 0; i < CLIENTS; i++) clients.push(client === 'h1' ? await stalledH1(spooky.port, '/x') : await stalledH3(`${spooky.url}/x`));
    // Let data flow until the backend has been stuck for SETTLE_MS: everything between it and the client is full.
    let last = -1;
    let stableSince = Date.now();
    let peak = 0;
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, rss(pid));
      const sent = backend.sends.reduce((a, s) => a + s.payloadSent, 0);
      if (sent !== last) {
        last = sent;
        stableSince = Date.now();
      } else if (Date.now() - stableSince > SETTLE_MS) break;
    }
    const settled = rss(pid);
    const r = { settledGrowth: settled - before, peakGrowth: peak - before, payloadSent: backend.sends.map((s) => s.payloadSent) };
    console.log(
      `${client} chunk=${chunk} x${CLIENTS}: rss before ${(before / MB).toFixed(1)} MB, settled ${(settled / MB).toFixed(1)} MB (+${(r.settledGrowth / MB).toFixed(1)}), peak ${(peak / MB).toFixed(1)} MB (+${(r.peakGrowth / MB).toFixed(1)}); backend payload sent per response ${r.payloadSent.map((n) => (n / MB).toFixed(2)).join(', ')} MB`,
    );
    return r;
  } finally {
    for (const c of clients) c.close();
    await spooky?.stop();
    backend.stop();
  }
}

for (const client of ['h1', 'h3'] as const) {
  test(`stalled ${client} clients: a backend's 1-byte chunks cost Spooky about what 16 KiB chunks do`, async () => {
    const large = await run(16 * 1024, client);
    const tiny = await run(1, client);
    // The test measured something: data flowed in both cases, and the stall stopped it before the end.
    for (const r of [large, tiny]) {
      expect(r.payloadSent.length).toBe(CLIENTS);
      for (const n of r.payloadSent) {
        expect(n).toBeGreaterThan(256 * 1024);
        expect(n).toBeLessThan(TOTAL);
      }
    }
    // What the stalled responses cost: within 4.5 MB per response of the 16 KiB case once settled, within 10 MB
    // at the peak (before the fix: measured 7 to 21 MB per response settled, 35 to 58 MB at the peak). Both
    // depend on when the garbage collector runs: on a busy machine an h3 run reached 6.5 MB per response over
    // the 16 KiB case at the peak (so 6 MB was too tight there) and 3.5 MB settled (3 MB was too tight); the
    // bounds still fail the unfixed code by a wide margin.
    expect(tiny.settledGrowth).toBeLessThan(large.settledGrowth + CLIENTS * 4.5 * MB);
    expect(tiny.peakGrowth).toBeLessThan(large.peakGrowth + CLIENTS * 10 * MB);
  }, 180_000);
}
