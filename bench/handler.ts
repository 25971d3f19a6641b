/**
 * The proxy handler's own cost (`bun --experimental-http3-fetch bench/handler.ts [--duration MS]`).
 *
 * Runs, under the same HTTP/3 load as `bench/proxy.ts`: (a) the direct Bun HTTP/3 server answering at once,
 * (a') the same answering one event-loop turn later, and (h) Spooky's real `createProxyHandler` behind a bare
 * `Bun.serve` whose backend is an in-process transport that answers at once with a small body (no upstream
 * socket). (h) minus (a') is what target parsing, routing, header hygiene, the response, metrics and the rest of
 * the request path cost; `bench/http1-client.ts` measures the HTTP/1.1 transport alone.
 *
 * `bun bench/handler.ts --serve CERT KEY` is the child that serves (h) and prints `{"port":N}`.
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigText } from '../src/config/load.ts';
import { ensureSelfSignedCertificate } from '../src/demo/demo.ts';
import { systemClock } from '../src/lib/clock.ts';
import { systemRandom } from '../src/lib/random.ts';
import { Telemetry } from '../src/observability/telemetry.ts';
import { createLogging } from '../src/observability/logger.ts';
import { createProxyHandler } from '../src/proxy/handler.ts';
import { buildGeneration, type Generation } from '../src/runtime/generation.ts';
import { EndpointRegistry } from '../src/upstream/registry.ts';
import type { Transport } from '../src/upstream/transport.ts';
import { cpuSeconds, runH3Load, spawnReady } from './support.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { serve: { type: 'boolean', default: false }, duration: { type: 'string', default: '4000' } },
});

if (values.serve) {
  const [cert = '', key = ''] = positionals;
  const body = new TextEncoder().encode('hello from the backend\n');
  const instant: Transport = {
    async request(_req, opts) {
      opts.onEnd?.();
      return {
        status: 200,
        headers: [
          ['content-type', 'text/plain'],
          ['content-length', String(body.length)],
        ],
        body,
      };
    },
    stats: () => ({ connectionsOpened: 0, connectionsOpen: 0, connectionsIdle: 0 }),
    close() {},
  };
  const loaded = loadConfigText(
    `listen: { address: 127.0.0.1, port: 0, tls: { cert: a, key: b } }
log: { access_log: false }
upstream:
  p:
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`,
    'bench.yaml',
    '/',
  );
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  const registry = new EndpointRegistry(
    systemClock,
    () => instant,
    () => {},
  );
  const gen: Generation = buildGeneration(loaded.config, registry, 1, systemRandom);
  const telemetry = new Telemetry({ generation: () => gen, clock: systemClock, processMetrics: false });
  const { log } = createLogging({ level: 'warn', format: 'json', file: undefined, access_file: undefined });
  const handle = createProxyHandler({ generation: () => gen, clock: systemClock, log, accessLog: () => null, observer: telemetry });
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    tls: { cert: Bun.file(cert), key: Bun.file(key) },
    http3: true,
    http1: false,
    http2: false,
    development: false,
    fetch: (req, s) => handle(req, s, 'h3'),
  });
  console.log(JSON.stringify({ port: server.port }));
} else {
  const duration = Number(values.duration);
  const dir = mkdtempSync(join(tmpdir(), 'spooky-bench-'));
  const { cert, key } = await ensureSelfSignedCertificate(dir);
  const cases: [string, string[]][] = [
    ['(a) direct Bun HTTP/3 server', ['bench/direct-h3.ts', cert, key, 'sync']],
    ["(a') direct, answers async", ['bench/direct-h3.ts', cert, key, 'async']],
    ['(h) handler, instant transport', ['bench/handler.ts', '--serve', cert, key]],
  ];
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}`);
  console.log('load: 4 HTTP/3 client processes x 16 loops, small GET responses');
  console.log('case                               req/s   server CPU us/req');
  for (const [name, args] of cases) {
    const { proc, rec } = await spawnReady(args, (r) => typeof r.port === 'number');
    try {
      const cpu0 = cpuSeconds(proc.pid);
      const r = await runH3Load(`https://127.0.0.1:${rec.port}/x`, 4, 16, duration);
      const cpu = cpuSeconds(proc.pid) - cpu0;
      // warm-up requests (500 ms per client) are not counted in r.requests but do use CPU: scale by their share
      const total = r.requests * (1 + 500 / duration);
      console.log(`${name.padEnd(32)} ${r.rps.toFixed(0).padStart(7)} ${((cpu / total) * 1e6).toFixed(1).padStart(19)}`);
    } finally {
      proc.kill();
    }
  }
}
