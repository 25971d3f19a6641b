/**
 * `bun bench/log-sampling.ts [N] [REPS]`: CPU cost per request of the proxy handler (real handler, router,
 * header hygiene, access log into a discarding sink; an instant in-process transport) for the log features:
 *   off          no access_sampling, no body_sampling (what every config without them pays)
 *   access 0.1   log.access_sampling.ratio 0.1
 *   body 1       a route with body_sampling ratio 1 (request and response streamed through the tee, 1 KiB each)
 *   body 0       the same route with ratio 0 (one random draw)
 * The body variants send a 1 KiB streamed request body and get a 1 KiB streamed response, so compare them with
 * each other (`stream, no sampling` is the same request without body_sampling). Process CPU time (user +
 * system), variants interleaved, the minimum of REPS runs reported.
 */

import type { Server } from 'bun';
import pino from 'pino';
import { loadConfigText } from '../src/config/load.ts';
import { systemClock } from '../src/lib/clock.ts';
import { AccessLog } from '../src/observability/access-log.ts';
import { accessWriterFor } from '../src/observability/access-sampling.ts';
import { BodySampleLog } from '../src/observability/body-sample.ts';
import { BodySampler } from '../src/proxy/body-sampling.ts';
import { createProxyHandler } from '../src/proxy/handler.ts';
import { buildGeneration } from '../src/runtime/generation.ts';
import { EndpointRegistry } from '../src/upstream/registry.ts';
import type { Transport, UpstreamRequest } from '../src/upstream/transport.ts';

const N = Number(process.argv[2] ?? 20_000);
const REPS = Number(process.argv[3] ?? 5);
const KIB = new Uint8Array(1024).fill(97);

function chunks(): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (sent) return c.close();
        sent = true;
        c.enqueue(KIB);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Answers at once; drains a request body; streams a 1 KiB body for /stream, else 2 bytes in memory. */
const transport: Transport = {
  async request(req: UpstreamRequest, opts) {
    if (req.body) for await (const _ of req.body);
    if (!req.target.startsWith('/stream')) {
      opts.onEnd?.();
      return { status: 200, headers: [['content-type', 'text/plain']], body: new Uint8Array([111, 107]) };
    }
    return { status: 200, headers: [['content-type', 'text/plain']], body: endOnDone(chunks(), opts.onEnd) };
  },
  openWebSocket: async () => ({ ok: false, status: 501 }),
  stats: () => ({ connectionsOpened: 0, connectionsOpen: 0, connectionsIdle: 0 }),
  close() {},
};

function endOnDone(s: ReadableStream<Uint8Array>, onEnd?: () => void): ReadableStream<Uint8Array> {
  const r = s.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        const x = await r.read();
        if (x.done) {
          c.close();
          onEnd?.();
        } else c.enqueue(x.value);
      },
    },
    { highWaterMark: 0 },
  );
}

const sink = { write: (_l: string) => true };
const log = pino({ level: 'silent' });
const access = new AccessLog(sink, 'json');
const sampler = new BodySampler(new BodySampleLog(sink), Math.random);
const server = { requestIP: () => ({ address: '127.0.0.1', port: 1, family: 'IPv4' }), port: 443 } as unknown as Server<unknown>;

function handlerFor(yaml: string) {
  const r = loadConfigText(`listen: { tls: { cert: c.pem, key: k.pem } }\n${yaml}`, 'bench.yaml', '/tmp');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const registry = new EndpointRegistry(
    systemClock,
    () => transport,
    () => {},
  );
  const gen = buildGeneration(r.config, registry, 1, Math.random);
  const stats = { sampledOut: 0 };
  return createProxyHandler({
    generation: () => gen,
    clock: systemClock,
    log,
    accessLog: () => accessWriterFor(access, gen.config.log.access_sampling, Math.random, stats),
    bodySampler: sampler,
  });
}

const POOL = (sampling: string) => `upstream:
  web:
    route: { path_prefix: /${sampling ? `, body_sampling: ${sampling}` : ''} }
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`;

const variants: [string, ReturnType<typeof handlerFor>, boolean][] = [
  ['off (GET)', handlerFor(POOL('')), false],
  ['access 0.1 (GET)', handlerFor(`log: { access_sampling: { ratio: 0.1 } }\n${POOL('')}`), false],
  ['stream, no sampling', handlerFor(POOL('')), true],
  ['stream, body 0', handlerFor(POOL('{ ratio: 0 }')), true],
  ['stream, body 1', handlerFor(POOL('{ ratio: 1 }')), true],
];

async function runOnce(h: ReturnType<typeof handlerFor>, streamed: boolean, n: number): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const req = streamed
      ? new Request('https://bench.test/stream', {
          method: 'POST',
          body: chunks(),
          headers: { host: 'bench.test', 'content-type': 'text/plain' },
          duplex: 'half',
        } as RequestInit)
      : new Request('https://bench.test/x', { headers: { host: 'bench.test' } });
    const res = await h(req, server, 'tcp');
    await res?.arrayBuffer();
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const best = new Map<string, number>();
for (const [, h, s] of variants) await runOnce(h, s, 2000); // warm-up
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, h, s] of variants) {
    const us = await runOnce(h, s, N);
    best.set(name, Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, us));
  }
}
for (const [name, us] of best) console.log(`${name.padEnd(22)} ${us.toFixed(2)} us/request`);
