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
import { benchConfig, type InterleavedRound, measureInterleaved, spawnReady } from './support.ts';

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
  const url = (c: string) => `https://127.0.0.1:${port}/${c}/x`;
  const results = await measureInterleaved(
    { none: url('none'), local: url('local'), redis: url('redis') },
    { spooky: spooky.proc.pid, redis: redis.proc.pid },
    { clients, concurrency, durationMs: duration, warmupMs: Number(values.warmup), rounds },
  );
  const base = results.none as InterleavedRound;
  const cpu = (r: InterleavedRound, p: string) => r.cpuUs[p] ?? 0;
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}`);
  console.log(
    `load: ${clients} HTTP/3 clients x ${concurrency} loops, ${rounds} interleaved rounds of ${duration} ms (median round by Spooky CPU)\n`,
  );
  console.log('case       req/s   p50 ms   p99 ms  errors  Spooky CPU us/req  Redis CPU us/req  CPU vs (none)  p50 vs (none)');
  for (const [c, m] of Object.entries(results)) {
    console.log(
      `(${c})`.padEnd(8) +
        `${m.rps.toFixed(0).padStart(8)} ${m.p50.toFixed(2).padStart(8)} ${m.p99.toFixed(2).padStart(8)} ${String(m.errors).padStart(7)}` +
        `${cpu(m, 'spooky').toFixed(1).padStart(19)} ${(c === 'redis' ? cpu(m, 'redis').toFixed(1) : '-').padStart(17)}` +
        `${(cpu(m, 'spooky') / cpu(base, 'spooky')).toFixed(2).padStart(15)} ${(m.p50 / base.p50).toFixed(2).padStart(14)}`,
    );
  }
} finally {
  for (const p of procs) p.kill();
  await redis.stop();
}
