/**
 * Benchmark of the HTTP/1.1 upstream client (src/upstream/http1.ts) against `fetch` and against a floor: raw
 * keep-alive sockets that write a fixed request head and only look for the end of the known response (no
 * parsing, no objects per request), i.e. what one HTTP/1.1 round trip over Bun sockets costs at the least.
 *
 *   bun bench/http1-client.ts [--seconds 3] [--concurrency 64,512] [--pin]
 *
 * Starts a Bun.serve backend in a child process on 127.0.0.1 (port 0; it prints its port), then for each
 * client and concurrency runs that many request loops (small GET, body read to the end) for a fixed time and
 * prints requests/s, client CPU µs per request (process.cpuUsage, user + system) and connections opened
 * during the measured run (kernel `ActiveOpens` counter delta, system-wide; for our transport also its stats).
 * `--pin` (Linux, needs `taskset`) puts all client threads on CPU 0 and the backend on CPU 1, which makes the
 * numbers much less noisy on a shared 2-core machine.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Http1Transport } from '../src/upstream/http1.ts';
import type { UpstreamRequest } from '../src/upstream/transport.ts';
import { pinnedTo, pinSelf } from './support.ts';

const { values } = parseArgs({
  options: {
    backend: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64,512' },
    pin: { type: 'boolean', default: false },
  },
});

if (values.backend) {
  const body = 'hello, world!';
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    development: false,
    fetch() {
      return new Response(body);
    },
  });
  console.log(JSON.stringify({ event: 'ready', port: server.port }));
} else {
  await main();
}

async function main(): Promise<void> {
  const seconds = Number(values.seconds);
  const levels = (values.concurrency as string).split(',').map(Number);
  if (values.pin) pinSelf(0);
  const backendCmd = [...pinnedTo(values.pin ? 1 : undefined), process.execPath, import.meta.path, '--backend'];
  const child = Bun.spawn(backendCmd, { stdout: 'pipe', stderr: 'inherit' });
  const port = await readPort(child.stdout);
  const base = `http://127.0.0.1:${port}`;

  type Client = { name: string; one: () => Promise<void>; opened?: () => number; close?: () => void };
  const makeTransport = (): Client => {
    const t = new Http1Transport({ host: '127.0.0.1', port }, { maxIdlePerBackend: 1024 });
    const opts = { connectTimeoutMs: 5000, responseHeaderTimeoutMs: 5000 };
    const headers: [string, string][] = [
      ['host', `127.0.0.1:${port}`],
      ['accept', '*/*'],
    ];
    return {
      name: 'Http1Transport',
      async one() {
        // Like the proxy: a fresh request object and abort signal per request.
        const req: UpstreamRequest = { method: 'GET', target: '/', headers, body: null, signal: new AbortController().signal };
        const res = await t.request(req, opts);
        // small bodies come as bytes (nothing to read); others as a stream, read to the end
        if (res.body instanceof ReadableStream) {
          const reader = res.body.getReader();
          while (!(await reader.read()).done);
        }
      },
      opened: () => t.stats().connectionsOpened,
      close: () => t.close(),
    };
  };
  // The floor: keep-alive connections over Bun.connect that write a fixed request head and count a response
  // as complete once its head and the backend's known 13-byte body are in; no parsing, no objects per request.
  const makeRaw = (): Client => {
    const head = `GET / HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\naccept: */*\r\n\r\n`;
    type Conn = { sock: Bun.Socket<{ done: (() => void) | null }> | null };
    const idle: Conn[] = [];
    const open = async (): Promise<Conn> => {
      const c: Conn = { sock: null };
      c.sock = await Bun.connect<{ done: (() => void) | null }>({
        hostname: '127.0.0.1',
        port,
        data: { done: null },
        socket: {
          data(sock, d) {
            // a response ends with the body 'hello, world!' (no chunking: Bun sends content-length)
            if (d[d.length - 1] === 0x21) {
              const done = sock.data.done;
              sock.data.done = null;
              done?.();
            }
          },
        },
      });
      return c;
    };
    return {
      name: 'raw socket (floor)',
      async one() {
        const c = idle.pop() ?? (await open());
        await new Promise<void>((resolve) => {
          (c.sock as NonNullable<Conn['sock']>).data.done = resolve;
          c.sock?.write(head);
        });
        idle.push(c);
      },
      close: () => {
        for (const c of idle) c.sock?.end();
      },
    };
  };
  const makeFetch = (): Client => ({
    name: 'fetch',
    async one() {
      const res = await fetch(`${base}/`, { headers: { accept: '*/*' }, signal: new AbortController().signal });
      await res.arrayBuffer();
    },
  });

  // Warm the backend's JIT (and ours) before measuring anything, so the first row is not penalised.
  for (const make of [makeTransport, makeRaw, makeFetch]) {
    const client = make();
    await run(client.one, 64, 1);
    client.close?.();
  }
  const rows: string[][] = [['client', 'concurrency', 'req/s', 'CPU µs/req', 'TCP connects (kernel)', 'connectionsOpened']];
  for (const conc of levels) {
    for (const make of [makeTransport, makeRaw, makeFetch]) {
      const client = make();
      await run(client.one, conc, 0.5); // warm-up (opens the pool)
      const connects0 = tcpActiveOpens();
      const openedBefore = client.opened?.() ?? 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const n = await run(client.one, conc, seconds);
      const elapsed = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const connects = tcpActiveOpens() - connects0;
      const openedDuring = client.opened ? String(client.opened() - openedBefore) : '-';
      rows.push([
        client.name,
        String(conc),
        Math.round(n / elapsed).toString(),
        ((cpu.user + cpu.system) / n).toFixed(1),
        String(connects),
        openedDuring,
      ]);
      client.close?.();
      await Bun.sleep(200);
    }
  }
  printTable(rows);
  console.log(
    `(${seconds} s per row after 0.5 s warm-up${values.pin ? '; client pinned to CPU 0, backend to CPU 1' : ''}; connects counted during the measured run only: kernel`,
  );
  console.log(' TcpExt ActiveOpens delta, system-wide, and Http1Transport.stats().connectionsOpened delta)');
  child.kill();
  await child.exited;
}

/** Outgoing TCP connects of the whole machine so far (/proc/net/snmp `Tcp: ActiveOpens`). */
function tcpActiveOpens(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n');
  const tcp = lines.filter((l) => l.startsWith('Tcp:'));
  const names = tcp[0]!.split(/\s+/);
  const vals = tcp[1]!.split(/\s+/);
  return Number(vals[names.indexOf('ActiveOpens')]);
}

async function run(one: () => Promise<void>, conc: number, seconds: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  // Every loop makes at least one request, so a warm-up opens `conc` connections even when a loaded machine
  // starts some loops only after the deadline.
  const loop = async (): Promise<void> => {
    do {
      await one();
      count++;
    } while (performance.now() < deadline);
  };
  await Promise.all(Array.from({ length: conc }, loop));
  return count;
}

async function readPort(stream: ReadableStream<Uint8Array>): Promise<number> {
  const dec = new TextDecoder();
  let buf = '';
  const deadline = performance.now() + 10_000;
  for await (const chunk of stream) {
    buf += dec.decode(chunk, { stream: true });
    const nl = buf.indexOf('\n');
    if (nl >= 0) return (JSON.parse(buf.slice(0, nl)) as { port: number }).port;
    if (performance.now() > deadline) break;
  }
  throw new Error('backend did not report its port');
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
}
