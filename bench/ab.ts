/**
 * Paired A/B of two Spooky checkouts: `bun bench/ab.ts DIR_A DIR_B [--backend http1|h2c] [--rounds R]
 * [--duration MS] [--clients N] [--concurrency C] [--env-a 'K=V ...'] [--env-b 'K=V ...']`. The two directories may
 * be the same, to compare environment settings (`--env-a`, `--env-b`: extra environment variables of each Spooky).
 *
 * On a shared VM the speed of the machine drifts by tens of percent within minutes, so two runs one after the
 * other differ by more than most code changes. Here both run at the same time instead: one backend, one
 * Spooky started from each directory, and in every round N load clients against each (C request loops each),
 * so both are measured over the same seconds, under the same load, on the same cores. Each round prints both
 * CPU times per request (process CPU from /proc over the round / requests) and their difference, and each side's
 * p50 latency and requests/s; the end prints the median difference, in how many rounds B was cheaper, and each
 * side's median p50. (The side that gets more of the shared CPU in a round serves more requests per event-loop
 * turn and so costs less per request: single rounds swing; read the median.) Which Spooky is spawned first swaps every round.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureSelfSignedCertificate } from '../src/demo/demo.ts';
import { benchConfig, cpuSeconds, H3_LOAD_WARMUP_MS, type LoadResult, median, type Rec, runH3Load, spawnReady } from './support.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    backend: { type: 'string', default: 'http1' },
    rounds: { type: 'string', default: '8' },
    duration: { type: 'string', default: '4000' },
    clients: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    'env-a': { type: 'string', default: '' },
    'env-b': { type: 'string', default: '' },
  },
});
const [dirA, dirB] = positionals.map((d) => resolve(d));
if (!dirA || !dirB) {
  console.error(
    "usage: bun bench/ab.ts DIR_A DIR_B [--backend http1|h2c] [--rounds R] [--duration MS] [--clients N] [--concurrency C] [--env-a 'K=V ...'] [--env-b 'K=V ...']",
  );
  process.exit(2);
}
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const clients = Number(values.clients);
const concurrency = Number(values.concurrency);

/** Runs the load clients against `url`; resolves with what they counted (after their own warm-up). */
function load(url: string): Promise<LoadResult> {
  return runH3Load(url, clients, concurrency, duration);
}

const dir = mkdtempSync(join(tmpdir(), 'spooky-ab-'));
const { cert, key } = await ensureSelfSignedCertificate(dir);
const procs: ReturnType<typeof Bun.spawn>[] = [];
try {
  const backend = await spawnReady(['bench/small-backend.ts', values.backend === 'h2c' ? 'h2c' : 'http1'], (r) => typeof r.port === 'number');
  procs.push(backend.proc);
  const config = join(dir, 'spooky.yaml');
  const scheme = values.backend === 'h2c' ? 'h2c' : 'http';
  writeFileSync(
    config,
    benchConfig(
      cert,
      key,
      `  bench:
    backends: [{ id: b, address: "${scheme}://127.0.0.1:${backend.rec.port}" }]
`,
    ),
  );
  const envOf = (s: string): Record<string, string> =>
    Object.fromEntries(
      s
        .split(' ')
        .filter((kv) => kv.includes('='))
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
  const start = (d: string, env: string) =>
    spawnReady(['src/main.ts', 'run', '--config', config, '--log-level', 'info'], (r: Rec) => r.event === 'listening', 20_000, undefined, {
      cwd: d,
      env: envOf(env),
    });
  const a = await start(dirA, values['env-a']);
  const b = await start(dirB, values['env-b']);
  procs.push(a.proc, b.proc);
  const urlOf = (s: { rec: Rec }) => `https://127.0.0.1:${(s.rec.listeners as { port: number }[])[0]?.port}/x`;
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}`);
  console.log(
    `A: ${dirA} ${values['env-a']}\nB: ${dirB} ${values['env-b']}\nbackend ${values.backend}; per round ${clients} clients x ${concurrency} loops against each, at the same time, ${duration} ms`,
  );
  // One unmeasured round warms both up (JIT).
  await Promise.all([load(urlOf(a)), load(urlOf(b))]);
  const diffs: number[] = [];
  const p50s: { a: number[]; b: number[] } = { a: [], b: [] };
  let bCheaper = 0;
  for (let r = 1; r <= rounds; r++) {
    const pair = r % 2 ? [a, b] : [b, a];
    const before = pair.map((s) => cpuSeconds(s.proc.pid));
    const served = await Promise.all(pair.map((s) => load(urlOf(s))));
    const us = pair.map((s, i) => {
      // Requests the clients counted, scaled up by their unmeasured warm-up (its CPU is in the process time too).
      const requests = (served[i] as LoadResult).requests * (1 + H3_LOAD_WARMUP_MS / duration);
      return ((cpuSeconds(s.proc.pid) - (before[i] as number)) / requests) * 1e6;
    });
    const [usA, usB] = pair[0] === a ? us : [us[1], us[0]];
    const [loadA, loadB] = (pair[0] === a ? served : [served[1], served[0]]) as [LoadResult, LoadResult];
    p50s.a.push(loadA.p50);
    p50s.b.push(loadB.p50);
    const d = (usB as number) - (usA as number);
    diffs.push(d);
    if (d < 0) bCheaper++;
    console.log(
      `round ${r}: A ${(usA as number).toFixed(1)} µs/request, B ${(usB as number).toFixed(1)}, B - A ${d >= 0 ? '+' : ''}${d.toFixed(1)}` +
        `   (p50 A ${loadA.p50.toFixed(2)} ms, B ${loadB.p50.toFixed(2)} ms; req/s A ${loadA.rps.toFixed(0)}, B ${loadB.rps.toFixed(0)})`,
    );
  }
  console.log(`median B - A: ${median(diffs).toFixed(1)} µs per request; B cheaper in ${bCheaper} of ${rounds} rounds`);
  console.log(`median p50 latency: A ${median(p50s.a).toFixed(2)} ms, B ${median(p50s.b).toFixed(2)} ms`);
} finally {
  for (const p of procs) p.kill();
}
