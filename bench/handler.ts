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
 *
 * `bun bench/handler.ts --in-process [--rounds R] [--requests N] [--transport h3|tcp]` calls the same handler
 * directly, without HTTP/3 or sockets, in batches of 64 concurrent requests (a fresh `Request` with 7 typical
 * browser headers each), and prints the process CPU µs per request of each round: a much steadier number than the
 * HTTP/3 runs, for A/B comparisons of request-path changes (it includes building the `Request`, about 1.5 µs).
 * `--transport tcp` runs the requests as if they came over HTTP/1.1 or HTTP/2 on TCP (that listener's path:
 * protocol detection, `Alt-Svc`).
 */

import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Server } from 'bun';
import { loadConfigText } from '../src/config/load.ts';
import { ensureSelfSignedCertificate } from '../src/demo/demo.ts';
import { systemClock } from '../src/lib/clock.ts';
import { systemRandom } from '../src/lib/random.ts';
import { createLogging } from '../src/observability/logger.ts';
import { Telemetry } from '../src/observability/telemetry.ts';
import { createProxyHandler } from '../src/proxy/handler.ts';
import { buildGeneration, type Generation } from '../src/runtime/generation.ts';
import { EndpointRegistry } from '../src/upstream/registry.ts';
import type { Transport } from '../src/upstream/transport.ts';
import { cpuSeconds, median, runH3Load, serveH3Only, spawnReady } from './support.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    serve: { type: 'boolean', default: false },
    'in-process': { type: 'boolean', default: false },
    duration: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '100000' },
    transport: { type: 'string', default: 'h3' },
  },
});

/** Spooky's real handler over an in-process transport that answers at once with a small body. */
function instantHandler() {
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
    openWebSocket: async () => ({ ok: false, status: 501 }),
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
  return createProxyHandler({ generation: () => gen, clock: systemClock, log, accessLog: () => null, observer: telemetry });
}

if (values['in-process']) {
  const handle = instantHandler();
  const server = { requestIP: () => ({ address: '127.0.0.1', port: 5555, family: 'IPv4' }), port: 8443 } as unknown as Server<unknown>;
  const headers = {
    host: 'example.test',
    'user-agent': 'bench/1.0',
    accept: '*/*',
    'accept-encoding': 'gzip, deflate, br',
    'accept-language': 'en-US,en;q=0.9',
    'sec-fetch-mode': 'cors',
    cookie: 'session=abc123; theme=dark',
  };
  const listener = values.transport === 'tcp' ? 'tcp' : 'h3';
  const batch = async (): Promise<void> => {
    const pending: Promise<Response | undefined>[] = [];
    for (let i = 0; i < 64; i++) pending.push(handle(new Request('https://example.test/x/y?z=1', { headers }), server, listener));
    for (const r of await Promise.all(pending)) if (r?.status !== 200) throw new Error(`status ${r?.status}`);
  };
  const batches = Math.ceil(Number(values.requests) / 64);
  const n = batches * 64; // requests actually run per round
  for (let i = 0; i < 3000; i++) await batch(); // warm-up: let the JIT compile the request path
  const rounds: number[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < batches; i++) await batch();
    const c = process.cpuUsage(c0);
    rounds.push((c.user + c.system) / n);
  }
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} cores; bun ${Bun.version}`);
  console.log(`handler in-process, CPU µs per request by round: ${rounds.map((x) => x.toFixed(2)).join(' ')}; median ${median(rounds).toFixed(2)}`);
} else if (values.serve) {
  const [cert = '', key = ''] = positionals;
  const handle = instantHandler();
  serveH3Only(cert, key, async (req, s) => (await handle(req, s, 'h3')) as Response); // never undefined over HTTP/3
} else {
  const duration = Number(values.duration);
  const dir = mkdtempSync(join(tmpdir(), 'spooky-bench-'));
  const { cert, key } = await ensureSelfSignedCertificate(dir);
  const cases: [string, string[]][] = [
    ['(a) direct Bun HTTP/3 server', ['bench/direct-h3.ts', cert, key, 'sync']],
    ["(a') direct, answers next turn", ['bench/direct-h3.ts', cert, key, 'async']],
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
