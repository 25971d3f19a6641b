/**
 * HTTP/3 proxy benchmark (`npm run bench`, optional flags: --clients N --concurrency C --duration MS).
 *
 * In one run, against the same HTTP/3 load (N client processes, C request loops each):
 *   (a) a direct Bun HTTP/3 server that answers by itself (baseline),
 *   (a') the same server answering one event-loop turn later (what any proxy on Bun must do while it waits
 *        for its backend: Bun sends one QUIC packet per asynchronously completed response),
 *   (b) Spooky in front of an HTTP/1.1 backend,
 *   (c) Spooky in front of an h2c backend,
 *   (d) with --tracing: a second Spooky with OpenTelemetry tracing on (sample ratio 1, default batch settings)
 *       in front of the HTTP/1.1 backend, exporting to an OTLP/HTTP sink in this process that counts spans.
 * Prints requests/s, p50/p99 latency, the server process's CPU time per request (process CPU from /proc /
 * requests) and RSS, and the ratios to (a). Everything runs on this machine, so clients, proxy and backend share the cores.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureSelfSignedCertificate } from '../src/demo/demo.ts';
import { cpuSeconds, rssMiB, runH3Load, spawnReady } from './support.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '5000' },
    tracing: { type: 'boolean', default: false },
  },
});
const clients = Number(values.clients);
const concurrency = Number(values.concurrency);
const duration = Number(values.duration);

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUsPerReq?: number;
  rss?: number;
}

/** Runs the load against `url` and charges the CPU time of process `pid` (the server under test) to it. */
async function measureSpooky(name: string, url: string, pid: number): Promise<Result> {
  const cpu0 = cpuSeconds(pid);
  const r = await runH3Load(url, clients, concurrency, duration);
  const cpu = cpuSeconds(pid) - cpu0;
  // warm-up requests (500 ms per client) are not counted in r.requests but do use CPU: scale by measured share
  const total = r.requests * (1 + 500 / duration);
  return { name, rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors, cpuUsPerReq: (cpu / total) * 1e6, rss: rssMiB(pid) };
}

const dir = mkdtempSync(join(tmpdir(), 'spooky-bench-'));
const { cert, key } = await ensureSelfSignedCertificate(dir);
const procs: ReturnType<typeof Bun.spawn>[] = [];
try {
  const direct = await spawnReady(['bench/direct-h3.ts', cert, key, 'sync'], (r) => typeof r.port === 'number');
  const directAsync = await spawnReady(['bench/direct-h3.ts', cert, key, 'async'], (r) => typeof r.port === 'number');
  procs.push(direct.proc, directAsync.proc);
  const h1 = await spawnReady(['bench/small-backend.ts', 'http1'], (r) => typeof r.port === 'number');
  const h2c = await spawnReady(['bench/small-backend.ts', 'h2c'], (r) => typeof r.port === 'number');
  procs.push(h1.proc, h2c.proc);
  const config = join(dir, 'spooky.yaml');
  writeFileSync(
    config,
    `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${cert}", key: "${key}" } }
admin: { port: 0 }
log: { level: warn, access_log: false }
upstream:
  h1:
    route: { path_prefix: /h1 }
    backends: [{ id: h1, address: "http://127.0.0.1:${h1.rec.port}" }]
  h2c:
    route: { path_prefix: /h2c }
    backends: [{ id: h2c, address: "h2c://127.0.0.1:${h2c.rec.port}" }]
`,
  );
  const spooky = await spawnReady(['src/main.ts', 'run', '--config', config, '--log-level', 'info'], (r) => r.event === 'listening');
  procs.push(spooky.proc);
  const port = (spooky.rec.listeners as { port: number }[])[0]?.port;

  const results: Result[] = [];
  results.push(await measureSpooky('(a) direct Bun HTTP/3 server', `https://127.0.0.1:${direct.rec.port}/`, direct.proc.pid));
  results.push(await measureSpooky("(a') direct, answers async", `https://127.0.0.1:${directAsync.rec.port}/`, directAsync.proc.pid));
  results.push(await measureSpooky('(b) Spooky -> HTTP/1.1 backend', `https://127.0.0.1:${port}/h1/x`, spooky.proc.pid));
  results.push(await measureSpooky('(c) Spooky -> h2c backend', `https://127.0.0.1:${port}/h2c/x`, spooky.proc.pid));
  let spans = 0;
  if (values.tracing) {
    const sink = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch(req) {
        const body = (await req.json()) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
        for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
        return Response.json({});
      },
    });
    const traced = join(dir, 'spooky-traced.yaml');
    writeFileSync(traced, `${readFileSync(config, 'utf8')}tracing: { enabled: true, sample_ratio: 1, endpoint: "http://127.0.0.1:${sink.port}/v1/traces" }\n`);
    const spookyTraced = await spawnReady(['src/main.ts', 'run', '--config', traced, '--log-level', 'info'], (r) => r.event === 'listening');
    procs.push(spookyTraced.proc);
    const tracedPort = (spookyTraced.rec.listeners as { port: number }[])[0]?.port;
    const r = await measureSpooky('(d) Spooky+tracing -> HTTP/1.1', `https://127.0.0.1:${tracedPort}/h1/x`, spookyTraced.proc.pid);
    results.push(r);
    spookyTraced.proc.kill('SIGTERM');
    await spookyTraced.proc.exited;
    void sink.stop(true);
    spans = Math.round(spans / 2);
  }

  const base = results[0] as Result;
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}`);
  console.log(`load: ${clients} HTTP/3 client processes x ${concurrency} loops, ${duration} ms per case, small GET responses`);
  console.log('');
  console.log('case                               req/s   p50 ms   p99 ms  errors  server CPU us/req  server RSS MiB  req/s vs (a)  p50 vs (a)');
  for (const r of results) {
    console.log(
      `${r.name.padEnd(32)} ${r.rps.toFixed(0).padStart(7)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)} ${(r.cpuUsPerReq?.toFixed(1) ?? '-').padStart(18)} ${(r.rss?.toFixed(0) ?? '-').padStart(15)} ${(r.rps / base.rps).toFixed(2).padStart(13)} ${(r.p50 / base.p50).toFixed(2).padStart(11)}`,
    );
  }
  const d = results.at(-1);
  if (values.tracing && d) {
    console.log(`\n(d) the OTLP sink received ${spans} traces (SERVER + CLIENT span pairs) for about ${Math.round((d.rps * duration) / 1000)} measured requests plus the warm-up`);
  }
} finally {
  for (const p of procs) p.kill();
}
