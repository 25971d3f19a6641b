/**
 * What a rate limit costs, kept in the process or in Redis: `bun --experimental-http3-fetch
 * bench/rate-limit-store.ts [--duration MS] [--rounds R] [--clients N] [--concurrency C]` (needs Debian's
 * `redis-server`).
 *
 * One Spooky with three routes to the same h2c backend, under the same HTTP/3 load, rounds interleaved:
 *   (none)  no rate limit (the baseline),
 *   (local) one `client_ip` rule with `store: local`,
 *   (redis) the same rule with `store: redis`, against a local redis-server.
 * The rules allow far more than the load sends, so every request is forwarded. Prints requests/s, p50/p99,
 * Spooky's CPU per request (and, for (redis), the Redis server's), and the ratios to (none).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureSelfSignedCertificate } from '../src/demo/demo.ts';
import { startRedis } from '../test/support/redis.ts';
import { benchConfig, cpuSeconds, H3_LOAD_WARMUP_MS, runH3Load, spawnReady } from './support.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '4000' },
    warmup: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
  },
});
const clients = Number(values.clients);
const concurrency = Number(values.concurrency);
const duration = Number(values.duration);
const rounds = Math.max(1, Number(values.rounds));

interface Round {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUs: number;
  redisUs: number;
}

const dir = mkdtempSync(join(tmpdir(), 'spooky-bench-rl-'));
const { cert, key } = await ensureSelfSignedCertificate(dir);
const redis = await startRedis();
const procs: ReturnType<typeof Bun.spawn>[] = [];
try {
  const backend = await spawnReady(['bench/small-backend.ts', 'h2c'], (r) => typeof r.port === 'number');
  procs.push(backend.proc);
  const address = `h2c://127.0.0.1:${backend.rec.port}`;
  const rule = (store: string) => `rate_limits: [{ key: client_ip, rate: 1000000, burst: 1000000, store: ${store} }]`;
  const config = join(dir, 'spooky.yaml');
  writeFileSync(
    config,
    `redis: { url: "${redis.url}", timeout_ms: 1000 }\n${benchConfig(
      cert,
      key,
      `  none:
    route: { path_prefix: /none }
    backends: [{ id: b, address: "${address}" }]
  local:
    route: { path_prefix: /local, ${rule('local')} }
    backends: [{ id: b, address: "${address}" }]
  redis:
    route: { path_prefix: /redis, ${rule('redis')} }
    backends: [{ id: b, address: "${address}" }]
`,
    )}`,
  );
  const spooky = await spawnReady(['src/main.ts', 'run', '--config', config, '--log-level', 'info'], (r) => r.event === 'listening');
  procs.push(spooky.proc);
  const port = (spooky.rec.listeners as { port: number }[])[0]?.port;
  const cases = ['none', 'local', 'redis'];
  const url = (c: string) => `https://127.0.0.1:${port}/${c}/x`;
  for (const c of cases) await runH3Load(url(c), clients, concurrency, Number(values.warmup));
  const runs = new Map<string, Round[]>(cases.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      const s0 = cpuSeconds(spooky.proc.pid);
      const r0 = cpuSeconds(redis.proc.pid);
      const load = await runH3Load(url(c), clients, concurrency, duration);
      const total = load.requests * (1 + H3_LOAD_WARMUP_MS / duration);
      runs.get(c)?.push({
        rps: load.rps,
        p50: load.p50,
        p99: load.p99,
        errors: load.errors,
        cpuUs: ((cpuSeconds(spooky.proc.pid) - s0) / total) * 1e6,
        redisUs: ((cpuSeconds(redis.proc.pid) - r0) / total) * 1e6,
      });
    }
  }
  const medianRound = (rs: Round[]) => [...rs].sort((a, b) => a.cpuUs - b.cpuUs)[Math.floor((rs.length - 1) / 2)] as Round;
  const base = medianRound(runs.get('none') ?? []);
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}`);
  console.log(
    `load: ${clients} HTTP/3 clients x ${concurrency} loops, ${rounds} interleaved rounds of ${duration} ms (median round by Spooky CPU)\n`,
  );
  console.log('case       req/s   p50 ms   p99 ms  errors  Spooky CPU us/req  Redis CPU us/req  CPU vs (none)  p50 vs (none)');
  for (const c of cases) {
    const m = medianRound(runs.get(c) ?? []);
    console.log(
      `(${c})`.padEnd(8) +
        `${m.rps.toFixed(0).padStart(8)} ${m.p50.toFixed(2).padStart(8)} ${m.p99.toFixed(2).padStart(8)} ${String(m.errors).padStart(7)}` +
        `${m.cpuUs.toFixed(1).padStart(19)} ${(c === 'redis' ? m.redisUs.toFixed(1) : '-').padStart(17)}` +
        `${(m.cpuUs / base.cpuUs).toFixed(2).padStart(15)} ${(m.p50 / base.p50).toFixed(2).padStart(14)}`,
    );
  }
} finally {
  for (const p of procs) p.kill();
  await redis.stop();
}
