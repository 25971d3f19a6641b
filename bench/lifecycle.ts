/**
 * The lifecycle experiments behind the README's "Operations" section, on bare `Bun.serve` (no Spooky), so
 * the numbers show what Bun itself does (not part of the tests; about 2 minutes):
 *
 *   bun --experimental-http3-fetch --experimental-http2-fetch bench/lifecycle.ts [rotation|drain]
 *
 * rotation: a TCP + UDP server pair (SO_REUSEPORT) with certificate A serves 4 client processes (one HTTP/3
 *   connection each, 4 request loops per connection). Mid-run a second pair with certificate B binds the same
 *   port and the old pair is released by one of three strategies:
 *     close     old UDP `stop(true)` at once (what Spooky does), old TCP `stop(false)`
 *     graceful  old UDP `stop(false)`, then `stop(true)` once it has no request in flight (at most 3 s)
 *     keep      the old pair stays open (shows the kernel re-hashing QUIC flows over both sockets)
 *   for four workloads: GET answered after 200 ms, GET answered after 1500 ms, streamed POST uploads
 *   (4 x 1 KB, 100 ms apart), and 4 MB downloads. Printed per run: requests, failed, of which timed out
 *   (hung until the client's 4 s timeout), and how many of the 4 connections got answers from the new pair.
 *
 * drain: what `server.stop()` (graceful) does to requests in flight, to new requests on open HTTP/1.1,
 *   HTTP/2 and HTTP/3 connections, to new TCP connections and to new HTTP/3 handshakes.
 */
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Server } from 'bun';
import { makeCertificate } from '../test/support/certs.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    role: { type: 'string', default: 'main' },
    strategy: { type: 'string', default: 'close' },
    workload: { type: 'string', default: 'get200' },
    url: { type: 'string', default: '' },
    'duration-ms': { type: 'string', default: '6000' },
    'cert-a': { type: 'string', default: '' },
    'key-a': { type: 'string', default: '' },
    'cert-b': { type: 'string', default: '' },
    'key-b': { type: 'string', default: '' },
  },
});
const BUN = process.execPath;
const FLAGS = ['--experimental-http3-fetch', '--experimental-http2-fetch'];

function pair(name: string, cert: string, key: string, port: number): { tcp: Server<unknown>; udp: Server<unknown>; port: number } {
  const make = (h3: boolean, p: number) =>
    Bun.serve({
      hostname: '127.0.0.1',
      port: p,
      reusePort: true,
      tls: { cert: Bun.file(cert), key: Bun.file(key) },
      http1: !h3,
      http2: !h3,
      http3: h3,
      development: false,
      idleTimeout: 30,
      async fetch(req: Request) {
        const u = new URL(req.url);
        if (req.body) for await (const _ of req.body);
        const ms = Number(u.searchParams.get('ms') ?? 0);
        if (ms) await Bun.sleep(ms);
        const big = Number(u.searchParams.get('big') ?? 0);
        if (big) return new Response(new Uint8Array(big).fill(name.charCodeAt(0)), { headers: { 'x-server': name } });
        return new Response(name, { headers: { 'x-server': name } });
      },
    } as Parameters<typeof Bun.serve>[0]);
  const tcp = make(false, port);
  const udp = make(true, tcp.port ?? port);
  return { tcp, udp, port: tcp.port ?? port };
}

async function serverRole(): Promise<void> {
  const a = pair('A', values['cert-a'] as string, values['key-a'] as string, 0);
  console.log(JSON.stringify({ event: 'ready', port: a.port }));
  process.on('SIGHUP', async () => {
    const t0 = performance.now();
    const inFlight = a.udp.pendingRequests;
    pair('B', values['cert-b'] as string, values['key-b'] as string, a.port);
    const strategy = values.strategy;
    if (strategy === 'close') {
      void a.udp.stop(true);
      void a.tcp.stop(false);
    } else if (strategy === 'graceful') {
      void a.udp.stop(false);
      void a.tcp.stop(false);
      while (a.udp.pendingRequests > 0 && performance.now() - t0 < 3000) await Bun.sleep(10);
      void a.udp.stop(true);
    }
    console.log(JSON.stringify({ event: 'rotated', strategy, h3_in_flight: inFlight, ms: Math.round(performance.now() - t0) }));
  });
}

async function clientRole(): Promise<void> {
  const workload = values.workload as string;
  const duration = Number(values['duration-ms']);
  const t0 = performance.now();
  const r = { requests: 0, failed: 0, timedOut: 0, fromB: 0, samples: [] as string[] };
  const one = async () => {
    const init: RequestInit & Record<string, unknown> = { protocol: 'http3', tls: { rejectUnauthorized: false }, signal: AbortSignal.timeout(4000) };
    let query = '?ms=0';
    if (workload === 'get200') query = '?ms=200';
    if (workload === 'get1500') query = '?ms=1500';
    if (workload === 'big') query = `?big=${4 << 20}`;
    if (workload === 'post') {
      let n = 0;
      init.method = 'POST';
      init.duplex = 'half';
      init.body = new ReadableStream<Uint8Array>({
        async pull(c) {
          c.enqueue(new Uint8Array(1000));
          await Bun.sleep(100);
          if (++n >= 4) c.close();
        },
      });
    }
    const res = await fetch(`${values.url}/${query}`, init as RequestInit);
    const body = await res.arrayBuffer();
    if (workload === 'big' && body.byteLength !== 4 << 20) throw new Error(`short body ${body.byteLength}`);
    return res.headers.get('x-server');
  };
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() - t0 < duration) {
        try {
          if ((await one()) === 'B') r.fromB++;
        } catch (e) {
          r.failed++;
          const msg = String((e as Error).name === 'TimeoutError' ? 'timeout' : (e as Error).message).slice(0, 60);
          if (msg === 'timeout') r.timedOut++;
          if (r.samples.length < 2) r.samples.push(msg);
        }
        r.requests++;
      }
    }),
  );
  console.log(JSON.stringify({ event: 'result', ...r }));
  process.exit(0);
}

async function lines(proc: Bun.Subprocess<'ignore', 'pipe', 'inherit'>, onLine: (rec: Record<string, unknown>) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of proc.stdout) {
    buf += decoder.decode(chunk, { stream: true });
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        onLine(JSON.parse(line) as Record<string, unknown>);
      } catch {}
    }
  }
}

async function rotation(certs: Record<string, string>): Promise<void> {
  console.log('strategy  workload  requests  failed  timed-out  connections-on-new-cert');
  for (const workload of ['get200', 'get1500', 'post', 'big']) {
    for (const strategy of ['close', 'graceful', 'keep']) {
      const server = Bun.spawn(
        [BUN, ...FLAGS, import.meta.path, '--role', 'server', '--strategy', strategy, ...Object.entries(certs).flatMap(([k, v]) => [`--${k}`, v])],
        {
          stdin: 'ignore',
          stdout: 'pipe',
          stderr: 'inherit',
        },
      );
      let port = 0;
      let rotated: Record<string, unknown> = {};
      const ready = new Promise<void>((res) => {
        void lines(server, (rec) => {
          if (rec.event === 'ready') {
            port = Number(rec.port);
            res();
          }
          if (rec.event === 'rotated') rotated = rec;
        });
      });
      await ready;
      const clients = Array.from({ length: 4 }, () =>
        Bun.spawn([BUN, ...FLAGS, import.meta.path, '--role', 'client', '--workload', workload, '--url', `https://127.0.0.1:${port}`], {
          stdin: 'ignore',
          stdout: 'pipe',
          stderr: 'inherit',
        }),
      );
      const results: Record<string, number>[] = [];
      const done = clients.map((c) => lines(c, (rec) => rec.event === 'result' && results.push(rec as Record<string, number>)));
      await Bun.sleep(2000);
      server.kill('SIGHUP');
      await Promise.all(done);
      server.kill('SIGKILL');
      const sum = (k: string) => results.reduce((n, x) => n + (x[k] ?? 0), 0);
      const moved = results.filter((x) => (x.fromB ?? 0) > 0).length;
      console.log(
        `${strategy.padEnd(9)} ${workload.padEnd(9)} ${String(sum('requests')).padStart(8)}  ${String(sum('failed')).padStart(6)}  ${String(sum('timedOut')).padStart(9)}  ${moved}/4   (h3 in flight at the switch: ${rotated.h3_in_flight ?? '?'})`,
      );
    }
  }
}

async function drain(certs: Record<string, string>): Promise<void> {
  const server = pair('A', certs['cert-a'] as string, certs['key-a'] as string, 0);
  const base = `https://127.0.0.1:${server.port}`;
  const req = async (path: string, protocol: string) => {
    const t = performance.now();
    try {
      const r = await fetch(`${base}${path}`, { protocol, tls: { rejectUnauthorized: false }, signal: AbortSignal.timeout(4000) } as RequestInit);
      await r.text();
      return `${r.status} after ${Math.round(performance.now() - t)} ms`;
    } catch (e) {
      const name = (e as Error).name === 'TimeoutError' ? 'no answer (client timeout 4 s)' : (e as Error).message.split(' fetching')[0];
      return `${name} after ${Math.round(performance.now() - t)} ms`;
    }
  };
  for (const p of ['http3', 'http2', 'http1.1']) await req('/', p);
  const inFlight = ['http3', 'http2', 'http1.1'].map((p) => req('/?ms=2500', p));
  await Bun.sleep(300);
  void server.tcp.stop(false);
  void server.udp.stop(false);
  await Bun.sleep(100);
  const tcpConnect = await new Promise<string>((res) => {
    const t = performance.now();
    const s = connect({ host: '127.0.0.1', port: server.port }, () => {
      res('connected');
      s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => res(`${e.code} after ${Math.round(performance.now() - t)} ms`));
  });
  const fresh = Bun.spawn(
    [
      BUN,
      ...FLAGS,
      '-e',
      `const t=performance.now();try{const r=await fetch('${base}/',{protocol:'http3',tls:{rejectUnauthorized:false},signal:AbortSignal.timeout(4000)});console.log(r.status+' after '+Math.round(performance.now()-t)+' ms')}catch(e){console.log((e.name==='TimeoutError'?'no answer (client timeout 4 s)':e.message.split(' fetching')[0])+' after '+Math.round(performance.now()-t)+' ms')}`,
    ],
    {
      stdout: 'pipe',
      stderr: 'inherit',
    },
  );
  const [onH3, onH2, onH1, freshH3] = await Promise.all([
    req('/again', 'http3'),
    req('/again', 'http2'),
    req('/again', 'http1.1'),
    new Response(fresh.stdout).text(),
  ]);
  const done = await Promise.all(inFlight);
  console.log('after server.stop() (graceful) on a TCP + UDP pair:');
  console.log(`  requests in flight (h3, h2, h1.1):      ${done.join('; ')}`);
  console.log(`  new request on the open h3 connection:  ${onH3}`);
  console.log(`  new request on the open h2 connection:  ${onH2}`);
  console.log(`  new request on the open h1.1 connection: ${onH1}`);
  console.log(`  new TCP connection:                     ${tcpConnect}`);
  console.log(`  new HTTP/3 handshake (fresh process):   ${freshH3.trim()}`);
  void server.udp.stop(true);
}

if (values.role === 'server') await serverRole();
else if (values.role === 'client') await clientRole();
else {
  const dir = mkdtempSync(join(tmpdir(), 'spooky-lifecycle-'));
  const [a, b] = await Promise.all([makeCertificate(dir, 'a'), makeCertificate(dir, 'b')]);
  const certs = { 'cert-a': a.cert, 'key-a': a.key, 'cert-b': b.cert, 'key-b': b.key };
  const what = positionals[0] ?? 'all';
  if (what === 'all' || what === 'drain') await drain(certs);
  if (what === 'all' || what === 'rotation') await rotation(certs);
  process.exit(0);
}
