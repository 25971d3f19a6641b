/**
 * What response compression costs: `bun --experimental-http3-fetch bench/compression.ts [--bytes N]
 * [--duration MS] [--rounds R] [--clients N] [--concurrency C]`.
 *
 * One Spooky, two routes to the same HTTP/1.1 backend answering an HTML page of `--bytes` (default 16384),
 * under the same HTTP/3 load (Bun's fetch, which sends `Accept-Encoding: gzip, deflate, br, zstd`), rounds
 * interleaved:
 *   (plain)  no compression (the baseline),
 *   (zstd), (br), (gzip)  `compression` offering that one coding.
 * Prints requests/s, p50/p99, Spooky's CPU per request, the bytes of one answer, and the ratios to (plain).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureSelfSignedCertificate } from '../src/demo/demo.ts';
import { benchConfig, type InterleavedRound, measureInterleaved, spawnReady } from './support.ts';

const { values } = parseArgs({
  options: {
    bytes: { type: 'string', default: '16384' },
    clients: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '4000' },
    warmup: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
  },
});
const opts = {
  clients: Number(values.clients),
  concurrency: Number(values.concurrency),
  durationMs: Number(values.duration),
  warmupMs: Number(values.warmup),
  rounds: Math.max(1, Number(values.rounds)),
};

const dir = mkdtempSync(join(tmpdir(), 'spooky-bench-gz-'));
const { cert, key } = await ensureSelfSignedCertificate(dir);
const procs: ReturnType<typeof Bun.spawn>[] = [];
try {
  const backend = await spawnReady(['bench/small-backend.ts', 'http1', String(values.bytes)], (r) => typeof r.port === 'number');
  procs.push(backend.proc);
  const address = `http://127.0.0.1:${backend.rec.port}`;
  const codings = ['zstd', 'br', 'gzip'];
  const pool = (name: string, compression: string) => `  ${name}:
    route: { path_prefix: /${name}/${compression} }
    backends: [{ id: b, address: "${address}" }]
`;
  const config = join(dir, 'spooky.yaml');
  writeFileSync(config, benchConfig(cert, key, pool('plain', '') + codings.map((c) => pool(c, `, compression: { encodings: [${c}] }`)).join('')));
  const spooky = await spawnReady(['src/main.ts', 'run', '--config', config, '--log-level', 'info'], (r) => r.event === 'listening');
  procs.push(spooky.proc);
  const port = (spooky.rec.listeners as { port: number }[])[0]?.port;
  const url = (c: string) => `https://127.0.0.1:${port}/${c}/page`;
  const cases = Object.fromEntries(['plain', ...codings].map((c) => [c, url(c)]));
  const size: Record<string, number> = {};
  for (const [c, u] of Object.entries(cases)) {
    const res = await fetch(u, {
      protocol: 'http3',
      tls: { rejectUnauthorized: false },
      decompress: false,
      headers: { 'accept-encoding': c === 'plain' ? 'identity' : c },
    } as RequestInit);
    size[c] = (await res.bytes()).byteLength;
  }
  const results = await measureInterleaved(cases, { spooky: spooky.proc.pid }, opts);
  const base = results.plain as InterleavedRound;
  const cpu = (r: InterleavedRound) => r.cpuUs.spooky ?? 0;
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}`);
  console.log(
    `load: ${opts.clients} HTTP/3 clients x ${opts.concurrency} loops, ${opts.rounds} interleaved rounds of ${opts.durationMs} ms (median round by Spooky CPU); page ${values.bytes} bytes\n`,
  );
  console.log('case       req/s   p50 ms   p99 ms  errors  Spooky CPU us/req  bytes/answer  CPU vs (plain)  bytes vs (plain)');
  for (const [c, m] of Object.entries(results)) {
    console.log(
      `(${c})`.padEnd(8) +
        `${m.rps.toFixed(0).padStart(8)} ${m.p50.toFixed(2).padStart(8)} ${m.p99.toFixed(2).padStart(8)} ${String(m.errors).padStart(7)}` +
        `${cpu(m).toFixed(1).padStart(19)} ${String(size[c]).padStart(13)}` +
        `${(cpu(m) / cpu(base)).toFixed(2).padStart(16)} ${((size[c] ?? 0) / (size.plain ?? 1)).toFixed(3).padStart(17)}`,
    );
  }
} finally {
  for (const p of procs) p.kill();
}
