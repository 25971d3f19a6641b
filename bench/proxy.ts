/**
 * HTTP/3 proxy benchmark (`npm run bench`, optional flags: --clients N --concurrency C --duration MS
 * --warmup MS --rounds R --pin).
 *
 * In one run, against the same HTTP/3 load (N client processes, C request loops each):
 *   (a) a direct Bun HTTP/3 server that answers by itself (baseline),
 *   (a') the same server answering one event-loop turn later, the answers of a turn handed to Bun together (as
 *        Spooky answers once its backend has): what answering asynchronously costs on Bun at the least,
 *   (a'') the same server answering once one byte went to a TCP echo server and came back (the floor of any Bun
 *        proxy that makes one TCP round trip per request, before any HTTP work),
 *   (t1), (t2) a bare Bun HTTP/3 server forwarding through Spooky's HTTP/1.1 or HTTP/2 transport with a fixed,
 *        typical header set (`bench/transport-h3.ts`): everything of (b) and (c) but Spooky's request path, so
 *        (b) - (t1) and (c) - (t2) are what target parsing, routing, header hygiene, trace context and metrics
 *        cost under this load,
 *   (b) Spooky in front of an HTTP/1.1 backend,
 *   (c) Spooky in front of an h2c backend,
 *   (n1), (n2) with --caddy: Caddy (the `caddy` on PATH, e.g. Debian's) as the HTTP/3 reverse proxy in front of
 *       the same HTTP/1.1 and h2c backends, no access log: a production proxy measured under the same load on the
 *       same machine, as a reference for (b) and (c),
 *   (d) with --tracing: a second Spooky with OpenTelemetry tracing on (sample ratio 1, default batch settings)
 *       in front of the HTTP/1.1 backend, exporting to an OTLP/HTTP sink in this process that counts spans.
 * Prints requests/s, p50/p99 latency, the server process's CPU time per request (process CPU from /proc /
 * requests) and RSS, and the ratios to (a). Everything runs on this machine, so clients, proxy and backend share the cores.
 *
 * Steady state: before the first round every case gets `--warmup` ms of the same load, not measured (JSC
 * compiles the hot paths in the first seconds; that one-time JIT work, about 0.6 s of CPU on a background
 * thread, would otherwise be charged to whichever case runs first). Then `--rounds` rounds run the cases
 * interleaved, so a slow phase of a shared machine hits every case alike; the table shows each case's median
 * round and the range of its CPU per request.
 *
 * `--backend nginx` (default `bun`) answers from nginx (the one on PATH, one worker; `bench/nginx-backend.ts`)
 * instead of the Bun backends of `bench/small-backend.ts`. On a machine whose cores the backend shares with the
 * server under test, a backend that costs less per request disturbs the measurement less.
 *
 * `--pin` (Linux, needs `taskset`) runs the server under test of each case (the direct servers, Spooky) on CPU 0
 * and everything else (load clients, backends, the echo server) on CPU 1, so the measured process does not share
 * its core and caches with the load it is measured under.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureSelfSignedCertificate } from '../src/demo/demo.ts';
import { startCaddy } from './caddy.ts';
import { startNginxBackend } from './nginx-backend.ts';
import { benchConfig, cpuSplit, H3_LOAD_WARMUP_MS, rssMiB, runH3Load, spawnReady } from './support.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '3' },
    pin: { type: 'boolean', default: false },
    tracing: { type: 'boolean', default: false },
    caddy: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'bun' },
  },
});
const warmup = Number(values.warmup);
const rounds = Math.max(1, Number(values.rounds));
/** CPU of the server under test and CPU of everything else, with --pin. */
const [SERVER_CPU, LOAD_CPU] = values.pin ? [0, 1] : [undefined, undefined];
const clients = Number(values.clients);
const concurrency = Number(values.concurrency);
const duration = Number(values.duration);
if (values.backend !== 'bun' && values.backend !== 'nginx') throw new Error(`--backend must be bun or nginx, not ${values.backend}`);

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUsPerReq?: number;
  /** Of cpuUsPerReq: the part spent in user space (JavaScript, Bun's native code, QUIC, TLS) and in the kernel. */
  userUsPerReq?: number;
  kernelUsPerReq?: number;
  /** Lowest and highest CPU per request over the rounds. */
  cpuRange?: [number, number];
  rss?: number;
}

/** One case of the benchmark: its name, URL and the pid whose CPU is charged to it. */
interface Case {
  name: string;
  url: string;
  pid: number;
}

/** Runs every case `rounds` times, interleaved, after one unmeasured warm-up each; returns each case's median round. */
async function measureCases(cases: Case[]): Promise<Result[]> {
  if (warmup > 0) for (const c of cases) await runH3Load(c.url, clients, concurrency, warmup, LOAD_CPU);
  const runs: Result[][] = cases.map(() => []);
  for (let r = 0; r < rounds; r++) for (const [i, c] of cases.entries()) runs[i]?.push(await measureSpooky(c.name, c.url, c.pid));
  return runs.map((rs) => {
    const byCpu = [...rs].sort((a, b) => (a.cpuUsPerReq ?? 0) - (b.cpuUsPerReq ?? 0));
    const median = byCpu[Math.floor((byCpu.length - 1) / 2)] as Result;
    return { ...median, cpuRange: [byCpu[0]?.cpuUsPerReq ?? 0, byCpu.at(-1)?.cpuUsPerReq ?? 0] };
  });
}

/** Runs the load against `url` and charges the CPU time of process `pid` (the server under test) to it. */
async function measureSpooky(name: string, url: string, pid: number): Promise<Result> {
  const [user0, kernel0] = cpuSplit(pid);
  const r = await runH3Load(url, clients, concurrency, duration, LOAD_CPU);
  const [user1, kernel1] = cpuSplit(pid);
  // warm-up requests are not counted in r.requests but do use CPU: scale by measured share
  const total = r.requests * (1 + H3_LOAD_WARMUP_MS / duration);
  const perRequest = (seconds: number) => (seconds / total) * 1e6;
  return {
    name,
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    errors: r.errors,
    cpuUsPerReq: perRequest(user1 - user0 + kernel1 - kernel0),
    userUsPerReq: perRequest(user1 - user0),
    kernelUsPerReq: perRequest(kernel1 - kernel0),
    rss: rssMiB(pid),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'spooky-bench-'));
const { cert, key } = await ensureSelfSignedCertificate(dir);
const procs: ReturnType<typeof Bun.spawn>[] = [];
try {
  const isPort = (r: Record<string, unknown>) => typeof r.port === 'number';
  const direct = await spawnReady(['bench/direct-h3.ts', cert, key, 'sync'], isPort, undefined, SERVER_CPU);
  const directAsync = await spawnReady(['bench/direct-h3.ts', cert, key, 'async'], isPort, undefined, SERVER_CPU);
  const echo = await spawnReady(['bench/direct-h3.ts', '--echo'], isPort, undefined, LOAD_CPU);
  const roundtrip = await spawnReady(['bench/direct-h3.ts', cert, key, 'roundtrip', String(echo.rec.port)], isPort, undefined, SERVER_CPU);
  procs.push(direct.proc, directAsync.proc, echo.proc, roundtrip.proc);
  let h1Port: number;
  let h2cPort: number;
  if (values.backend === 'nginx') {
    const nginx = await startNginxBackend(dir, LOAD_CPU);
    procs.push(nginx.proc);
    h1Port = nginx.http1Port;
    h2cPort = nginx.h2cPort;
  } else {
    const h1 = await spawnReady(['bench/small-backend.ts', 'http1'], isPort, undefined, LOAD_CPU);
    const h2c = await spawnReady(['bench/small-backend.ts', 'h2c'], isPort, undefined, LOAD_CPU);
    procs.push(h1.proc, h2c.proc);
    h1Port = h1.rec.port as number;
    h2cPort = h2c.rec.port as number;
  }
  const viaH1 = await spawnReady(['bench/transport-h3.ts', cert, key, 'http1', String(h1Port)], isPort, undefined, SERVER_CPU);
  const viaH2c = await spawnReady(['bench/transport-h3.ts', cert, key, 'h2c', String(h2cPort)], isPort, undefined, SERVER_CPU);
  procs.push(viaH1.proc, viaH2c.proc);
  const config = join(dir, 'spooky.yaml');
  writeFileSync(
    config,
    benchConfig(
      cert,
      key,
      `  h1:
    route: { path_prefix: /h1 }
    backends: [{ id: h1, address: "http://127.0.0.1:${h1Port}" }]
  h2c:
    route: { path_prefix: /h2c }
    backends: [{ id: h2c, address: "h2c://127.0.0.1:${h2cPort}" }]
`,
    ),
  );
  const spooky = await spawnReady(
    ['src/main.ts', 'run', '--config', config, '--log-level', 'info'],
    (r) => r.event === 'listening',
    undefined,
    SERVER_CPU,
  );
  procs.push(spooky.proc);
  const port = (spooky.rec.listeners as { port: number }[])[0]?.port;

  const reference: Case[] = [];
  if (values.caddy) {
    const viaCaddyH1 = await startCaddy(dir, cert, key, `127.0.0.1:${h1Port}`, SERVER_CPU);
    const viaCaddyH2c = await startCaddy(dir, cert, key, `h2c://127.0.0.1:${h2cPort}`, SERVER_CPU);
    procs.push(viaCaddyH1.proc, viaCaddyH2c.proc);
    reference.push(
      { name: `(n1) Caddy ${viaCaddyH1.version} -> HTTP/1.1`, url: `https://127.0.0.1:${viaCaddyH1.port}/h1/x`, pid: viaCaddyH1.proc.pid },
      { name: `(n2) Caddy ${viaCaddyH2c.version} -> h2c`, url: `https://127.0.0.1:${viaCaddyH2c.port}/h2c/x`, pid: viaCaddyH2c.proc.pid },
    );
  }

  const results = await measureCases([
    { name: '(a) direct Bun HTTP/3 server', url: `https://127.0.0.1:${direct.rec.port}/`, pid: direct.proc.pid },
    { name: "(a') direct, answers next turn", url: `https://127.0.0.1:${directAsync.rec.port}/`, pid: directAsync.proc.pid },
    { name: "(a'') direct, one TCP round trip", url: `https://127.0.0.1:${roundtrip.rec.port}/`, pid: roundtrip.proc.pid },
    { name: '(t1) h3 + HTTP/1.1 transport', url: `https://127.0.0.1:${viaH1.rec.port}/`, pid: viaH1.proc.pid },
    { name: '(t2) h3 + HTTP/2 transport, h2c', url: `https://127.0.0.1:${viaH2c.rec.port}/`, pid: viaH2c.proc.pid },
    { name: '(b) Spooky -> HTTP/1.1 backend', url: `https://127.0.0.1:${port}/h1/x`, pid: spooky.proc.pid },
    { name: '(c) Spooky -> h2c backend', url: `https://127.0.0.1:${port}/h2c/x`, pid: spooky.proc.pid },
    ...reference,
  ]);
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
    writeFileSync(
      traced,
      `${readFileSync(config, 'utf8')}tracing: { enabled: true, sample_ratio: 1, endpoint: "http://127.0.0.1:${sink.port}/v1/traces" }\n`,
    );
    const spookyTraced = await spawnReady(
      ['src/main.ts', 'run', '--config', traced, '--log-level', 'info'],
      (r) => r.event === 'listening',
      undefined,
      SERVER_CPU,
    );
    procs.push(spookyTraced.proc);
    const tracedPort = (spookyTraced.rec.listeners as { port: number }[])[0]?.port;
    const [r] = await measureCases([
      { name: '(d) Spooky+tracing -> HTTP/1.1', url: `https://127.0.0.1:${tracedPort}/h1/x`, pid: spookyTraced.proc.pid },
    ]);
    if (r) results.push(r);
    spookyTraced.proc.kill('SIGTERM');
    await spookyTraced.proc.exited;
    void sink.stop(true);
    spans = Math.round(spans / 2);
  }

  const base = results[0] as Result;
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}`);
  console.log(
    `load: ${clients} HTTP/3 client processes x ${concurrency} loops, small GET responses from ${values.backend === 'nginx' ? 'nginx' : 'Bun'} backends; ${warmup} ms warm-up per case, then ${rounds} interleaved rounds of ${duration} ms (median round shown)${values.pin ? '; server under test pinned to CPU 0, everything else to CPU 1' : ''}`,
  );
  console.log('');
  console.log(
    'case                               req/s   p50 ms   p99 ms  errors  server CPU us/req  (range over rounds)  server RSS MiB  req/s vs (a)  p50 vs (a)  CPU vs (a)',
  );
  for (const r of results) {
    const range = r.cpuRange ? `${r.cpuRange[0].toFixed(1)}-${r.cpuRange[1].toFixed(1)}` : '-';
    console.log(
      `${r.name.padEnd(32)} ${r.rps.toFixed(0).padStart(7)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${String(r.errors).padStart(7)} ${(r.cpuUsPerReq?.toFixed(1) ?? '-').padStart(18)} ${range.padStart(20)} ${(r.rss?.toFixed(0) ?? '-').padStart(15)} ${(r.rps / base.rps).toFixed(2).padStart(13)} ${(r.p50 / base.p50).toFixed(2).padStart(11)} ${((r.cpuUsPerReq ?? 0) / (base.cpuUsPerReq ?? 1)).toFixed(2).padStart(11)}`,
    );
  }
  // The split shows where a case's CPU goes beyond its floor: (a''), (t1) and (b) make the same system calls per
  // request (counted with `perf stat -e 'syscalls:sys_enter_*'`: one sendto and one recvfrom for the TCP round trip,
  // a recvmmsg or sendmmsg per about 8 requests, an epoll wait per about 14), so their kernel parts stay about the
  // same and what the transport and Spooky's request path add shows up in user space.
  console.log('\nCPU of the median round, user space + kernel, us per request:');
  for (const r of results) {
    if (r.userUsPerReq === undefined || r.kernelUsPerReq === undefined) continue;
    console.log(`${r.name.padEnd(32)} ${r.userUsPerReq.toFixed(1).padStart(6)} + ${r.kernelUsPerReq.toFixed(1).padStart(5)}`);
  }
  const d = results.at(-1);
  if (values.tracing && d) {
    console.log(
      `\n(d) the OTLP sink received ${spans} traces (SERVER + CLIENT span pairs) for about ${Math.round((d.rps * duration * rounds) / 1000)} measured requests plus the warm-ups`,
    );
  }
} finally {
  for (const p of procs) p.kill();
}
