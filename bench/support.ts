/**
 * Helpers shared by the benchmark scripts: spawning a child Bun process and waiting for its ready line, reading
 * a process's CPU time and RSS from /proc, running the HTTP/3 load clients of bench/h3-load.ts, pinning
 * processes to a CPU, and the request loop the observer benchmarks time.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Server } from 'bun';
import type { RequestRecord } from '../src/observability/access-log.ts';
import type { ProxyObserver } from '../src/observability/events.ts';
import type { Generation } from '../src/runtime/generation.ts';

/** The repository root: the working directory of every spawned child. */
export const ROOT = resolve(import.meta.dir, '..');
/** The Bun executable running this script. */
export const BUN = process.execPath;
/** USER_HZ: /proc/<pid>/stat reports CPU time in 1/100 s. */
const TICK = 100;

/**
 * The command prefix that runs a child on one CPU (`taskset -c N`, which execs the command, so the child's pid
 * stays the one measured), or nothing when `cpu` is undefined.
 */
export function pinnedTo(cpu: number | undefined): string[] {
  return cpu === undefined ? [] : ['taskset', '-c', String(cpu)];
}

/**
 * Starts a Bun server on 127.0.0.1 (a free port) that speaks HTTP/3 only, with the PEM files `cert` and `key`,
 * and prints `{"port":N}`: the server under test of the direct and transport-only benchmark cases.
 */
export function serveH3Only(cert: string, key: string, fetch: (req: Request, server: Server<undefined>) => Response | Promise<Response>): void {
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    tls: { cert: Bun.file(cert), key: Bun.file(key) },
    http3: true,
    http1: false,
    http2: false,
    development: false,
    fetch,
  });
  console.log(JSON.stringify({ port: server.port }));
}

/**
 * A Spooky config for the benchmarks: TLS listener on a free port of 127.0.0.1 with `cert` and `key`, admin on a
 * free port, no access log; `upstream` is the YAML of the `upstream:` section's body (indented two spaces).
 */
export function benchConfig(cert: string, key: string, upstream: string): string {
  return `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${cert}", key: "${key}" } }
admin: { port: 0 }
log: { level: warn, access_log: false }
upstream:
${upstream}`;
}

/** The median of `xs` (the mean of the two middle values when their number is even); NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Moves every thread of this process to CPU `cpu` (`taskset -a -p`); throws when that fails. */
export function pinSelf(cpu: number): void {
  const r = Bun.spawnSync(['taskset', '-a', '-p', '-c', String(cpu), String(process.pid)]);
  if (r.exitCode !== 0) throw new Error(`taskset failed: ${r.stderr.toString()}`);
}

/** One JSON line a child printed on stdout. */
export type Rec = Record<string, unknown>;

/**
 * Spawns `bun ...args` in `where.cwd` (default ROOT, with `where.env` added to the environment) and reads its
 * stdout line by line until a JSON line satisfies `pred` (then keeps draining stdout so the child never blocks
 * on a full pipe). Kills the child and throws when none does within `timeoutMs` milliseconds (default 20000) or
 * stdout ends first.
 */
export async function spawnReady(
  args: string[],
  pred: (rec: Rec) => boolean,
  timeoutMs = 20_000,
  cpu?: number,
  where: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ proc: ReturnType<typeof Bun.spawn>; rec: Rec }> {
  const proc = Bun.spawn([...pinnedTo(cpu), BUN, ...args], {
    cwd: where.cwd ?? ROOT,
    stdout: 'pipe',
    stderr: 'inherit',
    ...(where.env ? { env: { ...process.env, ...where.env } } : {}),
  });
  return { proc, rec: await readyRecord(proc, proc.stdout as ReadableStream<Uint8Array>, pred, timeoutMs, args.join(' ')) };
}

/**
 * Reads `stream` (the child `proc`'s stdout or stderr) line by line until a JSON line satisfies `pred`, returns
 * it and keeps draining the stream so the child never blocks on a full pipe. Kills the child and throws (naming
 * `what`) when no line does within `timeoutMs` milliseconds or the stream ends first.
 */
export async function readyRecord(
  proc: ReturnType<typeof Bun.spawn>,
  stream: ReadableStream<Uint8Array>,
  pred: (rec: Rec) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Rec> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  // A child that prints nothing is killed at the deadline, which ends its output and the loop below.
  const killer = setTimeout(() => proc.kill(), timeoutMs);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const line of lines) {
      try {
        const rec = JSON.parse(line) as Rec;
        if (pred(rec)) {
          clearTimeout(killer);
          void (async () => {
            for (;;) if ((await reader.read()).done) break;
          })();
          return rec;
        }
      } catch {}
    }
  }
  proc.kill();
  throw new Error(`not ready: ${what}`);
}

/** CPU time (user + system, seconds) process `pid` has used so far; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  const [user, system] = cpuSplit(pid);
  return user + system;
}

/** CPU time process `pid` has used so far in user space and in the kernel, seconds each; zeros when it is gone. */
export function cpuSplit(pid: number): [user: number, system: number] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(f[11]) / TICK, Number(f[12]) / TICK];
  } catch {
    return [0, 0];
  }
}

/** Resident set size of process `pid` in MiB; 0 when /proc does not say. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** What one bench/h3-load.ts client process prints. */
export interface LoadClientResult {
  requests: number;
  errors: number;
  elapsedMs: number;
  p50: number;
  p99: number;
}

/** Milliseconds each bench/h3-load.ts client runs unmeasured before counting (its default); its CPU is still charged. */
export const H3_LOAD_WARMUP_MS = 500;

/** The load clients' results summed: requests/s over the longest client, p50 request-weighted, p99 the worst. */
export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

/**
 * Runs `clients` bench/h3-load.ts processes against `url`, each with `concurrency` request loops for
 * `durationMs` milliseconds (after its own {@link H3_LOAD_WARMUP_MS} warm-up), and sums their results. With `cpu`, the clients run
 * on that CPU only.
 */
export async function runH3Load(url: string, clients: number, concurrency: number, durationMs: number, cpu?: number): Promise<LoadResult> {
  const procs = Array.from({ length: clients }, () =>
    Bun.spawn([...pinnedTo(cpu), BUN, '--experimental-http3-fetch', 'bench/h3-load.ts', url, String(concurrency), String(durationMs)], {
      cwd: ROOT,
      stdout: 'pipe',
      stderr: 'inherit',
    }),
  );
  const outs = await Promise.all(procs.map(async (p) => JSON.parse(await new Response(p.stdout as ReadableStream).text()) as LoadClientResult));
  const requests = outs.reduce((s, o) => s + o.requests, 0);
  const errors = outs.reduce((s, o) => s + o.errors, 0);
  const elapsed = Math.max(...outs.map((o) => o.elapsedMs));
  // p50/p99 across clients: request-weighted mean of per-client quantiles (clients are symmetric)
  const p50 = outs.reduce((s, o) => s + o.p50 * o.requests, 0) / Math.max(1, requests);
  const p99 = Math.max(...outs.map((o) => o.p99));
  return { requests, errors, rps: (requests / elapsed) * 1000, p50, p99 };
}

/** A generation with no listeners and no pools, enough for the observers' constructors. */
export const EMPTY_GENERATION = { id: 1, loadedAt: Date.now(), config: { listeners: [], pools: [] }, pools: new Map() } as unknown as Generation;

const backends = ['a', 'b', 'c'];
const routes = ['web#0', 'web#1'];

/**
 * Process CPU time (µs) per request of `n` requests through observer `o`, called as the proxy handler calls it
 * (requestStart, attemptEnd, requestEnd): 3 backends, 2 routes, latencies over several buckets; `status(i)` is
 * the i-th request's status.
 */
export function observerCpuPerRequest(o: ProxyObserver, n: number, status: (i: number) => number): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    o.requestStart();
    const backend = backends[i % 3] as string;
    o.attemptEnd({ pool: 'web', backend, attempt: 1, status: 200, upstream_ms: 0.3 + (i % 13) * 0.7 });
    const rec: RequestRecord = {
      request_id: 'x-1',
      client: '127.0.0.1',
      protocol: i % 2 ? 'h3' : 'h2',
      method: 'GET',
      host: 'h',
      path: '/',
      status: status(i),
      bytes_in: 0,
      bytes_out: 164,
      duration_ms: 0.5 + (i % 17) * 0.9,
      attempts: 1,
      route: routes[i % 2] as string,
      pool: 'web',
      backend,
    };
    o.requestEnd(rec);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

/**
 * Times every variant: one warm-up of 200000 requests each, then REPS interleaved rounds of `n`; returns each
 * variant's minimum CPU µs per request by name.
 */
export function bestOfObservers(variants: [string, ProxyObserver][], n: number, reps: number, status: (i: number) => number): Record<string, number> {
  const best: Record<string, number> = {};
  for (const [, o] of variants) observerCpuPerRequest(o, 200_000, status); // warm up
  for (let r = 0; r < reps; r++) for (const [name, o] of variants) best[name] = Math.min(best[name] ?? Infinity, observerCpuPerRequest(o, n, status));
  return best;
}

/** One measured round of {@link measureInterleaved}: the load's figures and the CPU per request of chosen processes. */
export interface InterleavedRound extends LoadResult {
  /** Microseconds of CPU per request, per process name given to {@link measureInterleaved}. */
  cpuUs: Record<string, number>;
}

/**
 * Runs the HTTP/3 load on each URL of `cases` for `warmupMs` (unmeasured), then `rounds` rounds with the cases
 * interleaved, charging the CPU time of each process in `pids` to the requests of the round. Returns each
 * case's median round by the CPU of the first process in `pids`.
 */
export async function measureInterleaved(
  cases: Record<string, string>,
  pids: Record<string, number>,
  opts: { clients: number; concurrency: number; durationMs: number; warmupMs: number; rounds: number },
): Promise<Record<string, InterleavedRound>> {
  for (const url of Object.values(cases)) await runH3Load(url, opts.clients, opts.concurrency, opts.warmupMs);
  const runs = new Map<string, InterleavedRound[]>(Object.keys(cases).map((c) => [c, []]));
  for (let r = 0; r < opts.rounds; r++) {
    for (const [name, url] of Object.entries(cases)) {
      const before = Object.fromEntries(Object.entries(pids).map(([p, pid]) => [p, cpuSeconds(pid)]));
      const load = await runH3Load(url, opts.clients, opts.concurrency, opts.durationMs);
      const total = load.requests * (1 + H3_LOAD_WARMUP_MS / opts.durationMs);
      const cpuUs = Object.fromEntries(Object.entries(pids).map(([p, pid]) => [p, ((cpuSeconds(pid) - (before[p] ?? 0)) / total) * 1e6]));
      runs.get(name)?.push({ ...load, cpuUs });
    }
  }
  const first = Object.keys(pids)[0] ?? '';
  const out: Record<string, InterleavedRound> = {};
  for (const [name, rs] of runs) {
    out[name] = [...rs].sort((a, b) => (a.cpuUs[first] ?? 0) - (b.cpuUs[first] ?? 0))[Math.floor((rs.length - 1) / 2)] as InterleavedRound;
  }
  return out;
}
