/**
 * Workers benchmark and restart experiment (not part of the tests):
 *
 *   bun --experimental-http3-fetch bench/workers.ts throughput [--rounds 2] [--clients 8] [--concurrency 8] [--duration 4000]
 *     Spooky with 1 and with 2 workers (alternating rounds) in front of an HTTP/1.1 backend, under the same
 *     HTTP/3 load (client processes of bench/h3-load.ts, one QUIC connection each). Prints req/s, p50/p99, the CPU
 *     time of all Spooky processes (supervisor + workers, from /proc) per request, how the requests split over
 *     the workers, and the 2-vs-1 ratios.
 *
 *   bun bench/workers.ts restart [--rounds 3] [--connections 20]
 *     Spooky with 2 workers; `--connections` separate QUIC connections (node:quic), each sending one GET after
 *     another (2 s timeout). One worker is killed with SIGKILL (worker 1, then worker 0, alternating); the
 *     supervisor restarts it. Prints, per round, how many connections saw a failed or hung request from the
 *     kill or from the re-hash when the new worker joined the port, and how many never answered again.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeCertificate } from '../test/support/certs.ts';
import { benchConfig, cpuSeconds, median, runH3Load, spawnReady } from './support.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string' },
    clients: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '8' },
    duration: { type: 'string', default: '4000' },
    connections: { type: 'string', default: '20' },
  },
});
const mode = positionals[0] ?? 'throughput';

interface WorkerInfo {
  worker: number;
  pid: number | null;
  listening: boolean;
  requests_total: number | null;
}

async function statusWorkers(adminPort: number): Promise<WorkerInfo[]> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/status`);
  return ((await res.json()) as { workers?: WorkerInfo[] }).workers ?? [];
}

async function startSpooky(dir: string, cert: string, key: string, backendPort: number, workers: number) {
  const config = join(dir, `spooky-${workers}.yaml`);
  writeFileSync(
    config,
    benchConfig(
      cert,
      key,
      `  h1:
    backends: [{ id: h1, address: "http://127.0.0.1:${backendPort}" }]
`,
    ),
  );
  const s = await spawnReady(
    ['src/main.ts', 'run', '--config', config, '--workers', String(workers), '--log-level', 'info'],
    (r) => r.event === 'listening',
  );
  const port = (s.rec.listeners as { port: number }[])[0]?.port as number;
  const adminPort = (s.rec.admin as { port: number }).port;
  const pids = workers > 1 ? (s.rec.workers as { pid: number }[]).map((w) => w.pid) : [];
  return { proc: s.proc, port, adminPort, pids: [s.proc.pid, ...pids] };
}

async function throughput(dir: string, cert: string, key: string, backendPort: number): Promise<void> {
  const rounds = Number(values.rounds ?? '2');
  const clients = Number(values.clients);
  const concurrency = Number(values.concurrency);
  const duration = Number(values.duration);
  const rows: { workers: number; rps: number; p50: number; p99: number; errors: number; cpuUs: number; split: string }[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const workers of [1, 2]) {
      const s = await startSpooky(dir, cert, key, backendPort, workers);
      try {
        const cpu0 = s.pids.reduce((a, p) => a + cpuSeconds(p), 0);
        const load = await runH3Load(`https://127.0.0.1:${s.port}/x`, clients, concurrency, duration);
        const cpu = s.pids.reduce((a, p) => a + cpuSeconds(p), 0) - cpu0;
        const split = workers > 1 ? (await statusWorkers(s.adminPort)).map((w) => w.requests_total ?? 0).join('/') : '-';
        rows.push({
          workers,
          rps: load.rps,
          p50: load.p50,
          p99: load.p99,
          errors: load.errors,
          // warm-up requests (500 ms per client) also use CPU: charge them by the same rate
          cpuUs: (cpu / (load.requests * (1 + 500 / duration))) * 1e6,
          split,
        });
      } finally {
        s.proc.kill('SIGTERM');
        await s.proc.exited;
      }
    }
  }
  console.log(
    `machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}; load average before: ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  );
  console.log(`load: ${clients} HTTP/3 client processes (one connection each) x ${concurrency} loops, ${duration} ms per case; HTTP/1.1 backend`);
  console.log('workers    req/s   p50 ms   p99 ms  errors  Spooky CPU us/req  requests per worker');
  for (const r of rows) {
    console.log(
      `${String(r.workers).padStart(7)} ${r.rps.toFixed(0).padStart(8)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)} ${r.cpuUs.toFixed(1).padStart(18)}  ${r.split}`,
    );
  }
  const medianOf = (w: number, f: (r: (typeof rows)[number]) => number) => median(rows.filter((r) => r.workers === w).map(f));
  console.log(
    `2 vs 1 workers (medians): req/s ${medianOf(2, (r) => r.rps).toFixed(0)} vs ${medianOf(1, (r) => r.rps).toFixed(0)} = x${(medianOf(2, (r) => r.rps) / medianOf(1, (r) => r.rps)).toFixed(2)}; CPU/request ${medianOf(2, (r) => r.cpuUs).toFixed(1)} vs ${medianOf(1, (r) => r.cpuUs).toFixed(1)} us = x${(medianOf(2, (r) => r.cpuUs) / medianOf(1, (r) => r.cpuUs)).toFixed(2)}`,
  );
}

interface QuicStream {
  onheaders: (headers: Record<string, string>) => void;
  sendHeaders(headers: Record<string, string>, opts: { terminal: boolean }): void;
  [Symbol.asyncIterator](): AsyncIterator<unknown>;
}
interface QuicSession {
  opened: Promise<unknown>;
  closed: Promise<unknown>;
  createBidirectionalStream(): Promise<QuicStream>;
  close(): Promise<unknown>;
}

/** One connection's record: when each request ended and how. */
interface Conn {
  results: { t: number; ok: boolean; why?: string }[];
  closed: boolean;
}

async function restart(dir: string, cert: string, key: string, backendPort: number): Promise<void> {
  const quic = (await import('node:quic' as string)) as { connect(addr: unknown, opts: unknown): Promise<QuicSession> };
  const rounds = Number(values.rounds ?? '3');
  const n = Number(values.connections);
  const s = await startSpooky(dir, cert, key, backendPort, 2);
  const lines: string[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      let stop = false;
      const conns: Conn[] = [];
      const loops: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const session = await quic.connect(
          { address: '127.0.0.1', port: s.port },
          { alpn: 'h3', rejectUnauthorized: false, verifyPeer: 'manual', servername: 'localhost', reuseEndpoint: false },
        );
        await session.opened;
        const c: Conn = { results: [], closed: false };
        conns.push(c);
        session.closed.then(
          () => (c.closed = true),
          () => (c.closed = true),
        );
        loops.push(
          (async () => {
            while (!stop && !c.closed) {
              const t0 = performance.now();
              try {
                const stream = await session.createBidirectionalStream();
                const headers = new Promise<Record<string, string>>((r) => {
                  stream.onheaders = r;
                });
                stream.sendHeaders({ ':method': 'GET', ':path': '/x', ':scheme': 'https', ':authority': `127.0.0.1:${s.port}` }, { terminal: true });
                const done = (async () => {
                  for await (const _ of stream) {
                  }
                  return headers;
                })();
                let timer: ReturnType<typeof setTimeout> | undefined;
                const h = await Promise.race([
                  done,
                  new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error('timeout')), 2000))),
                ]).finally(() => clearTimeout(timer));
                c.results.push({ t: t0, ok: h[':status'] === '200' });
              } catch (e) {
                c.results.push({ t: t0, ok: false, why: (e as Error).message });
              }
              await Bun.sleep(20);
            }
          })(),
        );
      }
      await Bun.sleep(2000);
      const victimIndex = round % 2 === 0 ? 1 : 0;
      const victim = (await statusWorkers(s.adminPort))[victimIndex]?.pid as number;
      const tKill = performance.now();
      process.kill(victim, 'SIGKILL');
      let tBack = 0;
      for (let i = 0; i < 200 && !tBack; i++) {
        await Bun.sleep(25);
        const w = (await statusWorkers(s.adminPort))[victimIndex];
        if (w?.listening && w.pid !== victim) tBack = performance.now();
      }
      await Bun.sleep(5000);
      stop = true;
      await Promise.race([Promise.allSettled(loops), Bun.sleep(3000)]);
      // A connection is disturbed when a request that ended after the kill failed; by when its first such
      // request started it was hit by the kill itself (before the new worker bound) or by the re-hash when
      // the new worker joined the port.
      const firstBad = (c: Conn) => c.results.find((r) => !r.ok && r.t + 2000 >= tKill)?.t;
      const hit = conns.map(firstBad);
      // the new worker binds a little before it reports listening: split at the middle of the gap
      const split = (tKill + tBack) / 2;
      const atKill = hit.filter((t) => t !== undefined && t < split).length;
      const atJoin = hit.filter((t) => t !== undefined && t >= split).length;
      const dead = conns.filter((c) => !c.results.some((r) => r.t > tBack + 2500 && r.ok)).length;
      const closed = conns.filter((c) => c.closed).length;
      lines.push(
        `round ${round + 1}: killed worker ${victimIndex}; ${n} connections; new worker listening after ${Math.round(tBack - tKill)} ms; disturbed: ${atKill + atJoin} (${atKill} from the kill, ${atJoin} from the re-hash when the new worker joined); still without answers at the end: ${dead}; closed by the server: ${closed}`,
      );
      console.log(lines.at(-1));
    }
  } finally {
    s.proc.kill('SIGTERM');
    await s.proc.exited;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'spooky-bench-workers-'));
const { cert, key } = await makeCertificate(dir, 'localhost');
const backend = await spawnReady(['bench/small-backend.ts', 'http1'], (r) => typeof r.port === 'number');
try {
  if (mode === 'restart') await restart(dir, cert, key, backend.rec.port as number);
  else await throughput(dir, cert, key, backend.rec.port as number);
} finally {
  backend.proc.kill();
}
process.exit(0);
