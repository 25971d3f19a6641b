/**
 * Benchmark of the HTTP/2 upstream client (h2c): requests per second and client CPU microseconds per request
 * (`process.cpuUsage()`, user + system, of this process only) at several concurrency levels, against a
 * `node:http2` h2c server in a child process (`Bun.spawn`). For reference it also measures bare `node:http2`
 * client streams without the transport, so the transport's own overhead is visible.
 *
 * Three clients: `Http2Transport` (each request builds an {@link UpstreamRequest} with its own AbortController, as
 * the proxy hands every request its own signal); bare `node:http2` streams; and bare streams that also create an
 * AbortController per request and hold its signal until the stream closes, i.e. the same harness cost as the
 * transport rows, so the difference to that row is the transport's own overhead. Small bodies come back from the
 * transport as bytes (`Uint8Array`); the run reports how many did.
 *
 * Run: `bun bench/http2-client.ts [seconds-per-run=4] [concurrency list=64,256] [repetitions=3] [--pin] [--typical]`
 * `--typical` sends the header set the proxy typically forwards (13 fields: user-agent, accept*, cookie,
 * x-forwarded-*, forwarded, via, and a fresh x-request-id and traceparent per request) instead of two headers,
 * in every row, and prints the transport's request header bytes per request.
 * `--pin` (Linux, needs `taskset`) puts all client threads on CPU 0 and the server on CPU 1, as
 * `bench/http1-client.ts --pin` does, so the two benchmarks can be compared.
 * Each configuration runs `repetitions` times (interleaved); the table shows the median run and the range.
 * Client and server share the machine's cores, so absolute numbers depend on the host and its other load.
 */
import http2 from 'node:http2';
import { Http2Transport } from '../src/upstream/http2.ts';
import type { UpstreamRequest } from '../src/upstream/transport.ts';
import { typicalProxyHeaders } from '../test/support/typical-headers.ts';
import { median, pinnedTo, pinSelf } from './support.ts';

/** The child: a small h2c server answering every request with 200 and a short body. */
async function serve(): Promise<void> {
  const srv = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  srv.on('session', (s) => s.on('error', () => {}));
  srv.on('stream', (st: http2.ServerHttp2Stream) => {
    st.on('error', () => {});
    st.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': '11' });
    st.end('hello world');
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  process.stdout.write(`${JSON.stringify({ port: (srv.address() as { port: number }).port })}\n`);
}

/** Starts the server child (on CPU 1 when `pin`) and returns its port and a stop function. */
async function startServer(pin: boolean): Promise<{ port: number; stop: () => Promise<void> }> {
  const cmd = [...pinnedTo(pin ? 1 : undefined), process.execPath, import.meta.path, 'serve'];
  const proc = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'inherit' });
  const reader = proc.stdout.getReader();
  let buf = '';
  const deadline = setTimeout(() => proc.kill(), 10_000);
  while (!buf.includes('\n')) {
    const { done, value } = await reader.read();
    if (done) throw new Error('server exited');
    buf += new TextDecoder().decode(value);
  }
  clearTimeout(deadline);
  reader.releaseLock();
  const { port } = JSON.parse(buf.slice(0, buf.indexOf('\n'))) as { port: number };
  return {
    port,
    stop: async () => {
      proc.kill();
      await proc.exited;
    },
  };
}

interface Result {
  label: string;
  concurrency: number;
  requests: number;
  seconds: number;
  cpuUsPerReq: number;
}

/** The two-header request of the default run, as [name, value] pairs (without `host`). */
const SMALL_HEADERS: [string, string][] = [
  ['accept', '*/*'],
  ['user-agent', 'spooky-bench'],
];

let requestNumber = 0;

/** The header set the proxy typically forwards (`--typical`), with fresh per-request ids. */
function typicalHeaders(): [string, string][] {
  return typicalProxyHeaders(requestNumber++, 'bench.local');
}

/** Runs `one` in `concurrency` loops for a warm-up second, then for `seconds`, and measures. */
async function measure(label: string, concurrency: number, seconds: number, one: () => Promise<void>): Promise<Result> {
  let running = true;
  let count = 0;
  const loop = async () => {
    while (running) {
      await one();
      count++;
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  await Bun.sleep(1000); // warm-up (JIT, connection)
  const c0 = count;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Bun.sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  const t = (performance.now() - t0) / 1000;
  const n = count - c0;
  running = false;
  await Promise.all(loops);
  return { label, concurrency, requests: n, seconds: t, cpuUsPerReq: (cpu.user + cpu.system) / n };
}

/** Consumes a response body: nothing to do for a small body handed over as bytes (or none). */
async function drain(body: ReadableStream<Uint8Array> | Uint8Array | null): Promise<void> {
  if (!body || body instanceof Uint8Array) return;
  const r = body.getReader();
  while (!(await r.read()).done) {
    // discard
  }
}

async function main(): Promise<void> {
  const pin = process.argv.includes('--pin');
  const typical = process.argv.includes('--typical');
  const headersOf = typical ? typicalHeaders : () => SMALL_HEADERS;
  const args = process.argv.slice(2).filter((a) => a !== '--pin' && a !== '--typical');
  const seconds = Number(args[0] ?? 4);
  const levels = (args[1] ?? '64,256').split(',').map(Number);
  const reps = Number(args[2] ?? 3);
  if (pin) pinSelf(0);
  const server = await startServer(pin);
  const results: Result[] = [];
  try {
    for (let rep = 0; rep < reps; rep++)
      for (const c of levels) {
        const t = new Http2Transport({ host: '127.0.0.1', port: server.port });
        const opts = { connectTimeoutMs: 5000, responseHeaderTimeoutMs: 10_000 };
        let responses = 0;
        let asBytes = 0;
        results.push(
          await measure('Http2Transport', c, seconds, async () => {
            const req: UpstreamRequest = {
              method: 'GET',
              target: '/',
              headers: [['host', 'bench.local'], ...headersOf()],
              body: null,
              signal: new AbortController().signal,
            };
            const res = await t.request(req, opts);
            if (res.status !== 200) throw new Error(`status ${res.status}`);
            responses++;
            if (res.body instanceof Uint8Array) asBytes++;
            await drain(res.body);
          }),
        );
        const st = t.stats();
        t.close();
        if (typical && st.requestHeaderBlocks)
          console.error(`note: ${((st.requestHeaderBytes ?? 0) / st.requestHeaderBlocks).toFixed(1)} request header bytes per request`);
        if (st.connectionsOpened !== 1) console.error(`note: ${st.connectionsOpened} connections were opened`);
        if (asBytes !== responses) console.error(`note: ${responses - asBytes} of ${responses} bodies came back as streams, not bytes`);

        const session = http2.connect(`http://127.0.0.1:${server.port}`);
        session.on('error', () => {});
        await new Promise((r) => session.once('remoteSettings', r));
        results.push(
          await measure('bare node:http2', c, seconds, () => {
            return new Promise<void>((resolve, reject) => {
              const s = session.request(
                { ':method': 'GET', ':path': '/', ':authority': 'bench.local', ...Object.fromEntries(headersOf()) },
                { endStream: true },
              );
              s.on('error', reject);
              s.on('data', () => {});
              s.on('close', () => resolve());
            });
          }),
        );
        results.push(
          await measure('bare node:http2 + AbortController', c, seconds, () => {
            const signal = new AbortController().signal;
            return new Promise<void>((resolve, reject) => {
              const s = session.request(
                { ':method': 'GET', ':path': '/', ':authority': 'bench.local', ...Object.fromEntries(headersOf()) },
                { endStream: true },
              );
              s.on('error', reject);
              s.on('data', () => {});
              s.on('close', () => (signal.aborted ? reject(signal.reason) : resolve()));
            });
          }),
        );
        session.close();
      }
  } finally {
    await server.stop();
  }
  console.log('| client | concurrency | req/s median (range) | client CPU µs/req median (range) |');
  console.log('| --- | --- | --- | --- |');
  const keys = [...new Set(results.map((r) => `${r.label}|${r.concurrency}`))];
  for (const key of keys) {
    const rs = results.filter((r) => `${r.label}|${r.concurrency}` === key);
    const rps = rs.map((r) => r.requests / r.seconds);
    const cpu = rs.map((r) => r.cpuUsPerReq);
    const [label, c] = key.split('|');
    console.log(
      `| ${label} | ${c} | ${Math.round(median(rps))} (${Math.round(Math.min(...rps))}-${Math.round(Math.max(...rps))}) | ` +
        `${median(cpu).toFixed(1)} (${Math.min(...cpu).toFixed(1)}-${Math.max(...cpu).toFixed(1)}) |`,
    );
  }
}

if (process.argv[2] === 'serve') await serve();
else await main();
