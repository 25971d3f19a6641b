/**
 * WebSocket proxying on the TCP listener: a real Spooky in front of real Bun WebSocket backends, a real
 * WebSocket client over TLS. Messages both ways (text and binary, up to 1 MiB), the handshake's forwarding
 * fields and subprotocol, close codes carried across in both directions, a refusal passed on as its status, a
 * dead backend skipped, the access-log line at the end, and the 1001 close at shutdown.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import tls from 'node:tls';
import type { Server } from 'bun';
import { testCertificate } from '../support/certs.ts';
import { accessLine, type SpookyProcess, startSpooky } from '../support/process.ts';
import { closedPort } from '../support/raw-http-server.ts';
import { waitUntil } from '../support/wait.ts';

/** What the backend saw in a handshake; sent as the first message of every session. */
interface Seen {
  path: string;
  host: string | null;
  xff: string | null;
  via: string | null;
  requestId: string | null;
  cookie: string | null;
  protocol: string | null;
  upgrade: string | null;
}

let backend: Server<Seen>;
/** An echo backend over TLS (wss://), with the test certificate, reached through `upstream_tls.ca_file`. */
let tlsBackend: Server<unknown>;
let deadPort: number;
let spooky: SpookyProcess;
/** Close codes and reasons the backend saw, by path. */
const backendClosed = new Map<string, [number, string]>();

beforeAll(async () => {
  backend = Bun.serve<Seen>({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req, server) {
      const url = new URL(req.url);
      if (url.pathname.startsWith('/ws/deny')) return new Response('no', { status: 403 });
      const h = req.headers;
      const seen: Seen = {
        path: url.pathname + url.search,
        host: h.get('host'),
        xff: h.get('x-forwarded-for'),
        via: h.get('via'),
        requestId: h.get('x-request-id'),
        cookie: h.get('cookie'),
        protocol: h.get('sec-websocket-protocol'),
        upgrade: h.get('upgrade'),
      };
      const offered = seen.protocol?.split(',').map((p) => p.trim()) ?? [];
      const headers: Record<string, string> = offered.includes('chat.v2') ? { 'sec-websocket-protocol': 'chat.v2' } : {};
      if (server.upgrade(req, { data: seen, headers })) return undefined;
      return new Response('not a websocket', { status: 426 });
    },
    websocket: {
      open(ws) {
        ws.send(JSON.stringify(ws.data));
        if (ws.data.path.startsWith('/ws/say-and-go')) ws.close(4005, 'said it');
      },
      message(ws, m) {
        if (ws.data.path.startsWith('/ws/backend-closes')) ws.close(4002, 'bye from backend');
        else ws.send(m);
      },
      close(ws, code, reason) {
        backendClosed.set(ws.data.path, [code, reason]);
      },
    },
  });
  const cert = await testCertificate();
  tlsBackend = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    fetch: (req, server) => (server.upgrade(req, { data: undefined }) ? undefined : new Response('not a websocket', { status: 426 })),
    websocket: {
      message(ws, m) {
        ws.send(`tls:${m}`);
      },
    },
  });
  deadPort = closedPort();
  spooky = await startSpooky(`
upstream:
  sockets:
    load_balancing: { type: round-robin }
    route: { path_prefix: /ws }
    backends:
      - { id: dead, address: "http://127.0.0.1:${deadPort}" }
      - { id: live, address: "http://127.0.0.1:${backend.port}" }
  rewritten:
    route: { path_prefix: /wsr/, rewrite: { prefix: /ws/echo/ } }
    backends:
      - { id: live, address: "http://127.0.0.1:${backend.port}" }
  limited:
    route: { path_prefix: /lim }
    backends:
      - { id: one, address: "http://127.0.0.1:${backend.port}", limits: { max_connections: 1 } }
  secure:
    route: { path_prefix: /tls }
    tls: { ca_file: "@CERT@" }
    backends:
      - { id: tls, address: "https://127.0.0.1:${tlsBackend.port}" }
`);
});
afterAll(async () => {
  await spooky?.stop();
  backend?.stop(true);
  tlsBackend?.stop(true);
});

/** A client session through Spooky: its messages as they come, its close event, and the open/close promises. */
function connect(path: string, protocols?: string[]) {
  const ws = new WebSocket(`wss://127.0.0.1:${spooky.port}${path}`, {
    protocols,
    headers: { cookie: 'session=abc', 'x-forwarded-for': '203.0.113.9' },
    tls: { rejectUnauthorized: false },
  } as unknown as string[]);
  ws.binaryType = 'arraybuffer';
  const messages: (string | ArrayBuffer)[] = [];
  ws.onmessage = (e) => messages.push(e.data as string | ArrayBuffer);
  const opened = new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error((e as ErrorEvent).message));
  });
  const closed = new Promise<CloseEvent>((resolve) => {
    ws.onclose = (e) => resolve(e);
  });
  return { ws, messages, opened, closed, next: (n: number) => waitUntil(() => messages.length >= n, 5000, `${n} messages on ${path}`) };
}

test("a WebSocket holds one of the backend's max_connections while open: an idle keep-alive connection makes room, a second session gets 503, HTTP waits", async () => {
  const plain = (path: string, init: RequestInit = {}) =>
    fetch(`https://127.0.0.1:${spooky.port}${path}`, { ...init, tls: { rejectUnauthorized: false } } as RequestInit);
  const warm = await plain('/lim/warm');
  expect(warm.status).toBe(426); // the backend's answer to a plain GET; its connection stays idle in the pool
  await warm.arrayBuffer();
  const first = connect('/lim/first');
  await first.opened; // the idle connection was closed to make room
  await first.next(1);
  const second = connect('/lim/second');
  await expect(second.opened).rejects.toThrow();
  const refused = await accessLine(spooky, '/lim/second');
  expect([refused.status, refused.error]).toEqual([503, 'queue_full']);
  // A plain request cannot get a connection while the session holds the only one: it waits, then is freed.
  const waiting = plain('/lim/after');
  // Not answered while the session is open (observed for 300 ms, well under the 5 s connect timeout).
  expect(await Promise.race([waiting.then(() => 'answered'), Bun.sleep(300).then(() => 'waiting')])).toBe('waiting');
  first.ws.close(1000, 'done');
  await first.closed;
  const after = await waiting;
  expect(after.status).toBe(426);
  await after.arrayBuffer();
  const third = connect('/lim/third');
  await third.opened;
  third.ws.close(1000, 'done');
  await third.closed;
});

test('messages pass both ways; the backend sees the forwarding fields, the client the chosen subprotocol', async () => {
  // Round-robin puts every second handshake on the dead backend first: all must still open (another backend
  // is tried when the connect fails).
  for (let i = 0; i < 4; i++) {
    const path = `/ws/echo/${i}?q=${i}`;
    const c = connect(path, ['chat.v1', 'chat.v2']);
    await c.opened;
    expect(c.ws.protocol).toBe('chat.v2');
    await c.next(1);
    const seen = JSON.parse(c.messages[0] as string) as Seen;
    expect(seen).toEqual({
      path,
      host: `127.0.0.1:${spooky.port}`,
      xff: '127.0.0.1', // the client's own X-Forwarded-For is not trusted (no trusted_proxies)
      via: '1.1 spooky',
      requestId: expect.any(String),
      cookie: 'session=abc',
      protocol: 'chat.v1, chat.v2',
      upgrade: 'websocket',
    });
    c.ws.send('hello');
    const big = new Uint8Array(1024 * 1024).map((_, j) => j % 251);
    c.ws.send(big);
    await c.next(3);
    expect(c.messages[1]).toBe('hello');
    expect(new Uint8Array(c.messages[2] as ArrayBuffer)).toEqual(big);
    c.ws.close(4001, 'bye from client');
    const line = await accessLine(spooky, `/ws/echo/${i}`);
    expect(line).toMatchObject({
      status: 101,
      protocol: 'h1.1',
      pool: 'sockets',
      backend: 'live',
      bytes_in: 5 + big.length,
      bytes_out: c.messages[0] && Buffer.byteLength(c.messages[0] as string) + 5 + big.length,
      websocket_close: { by: 'client', code: 4001 },
    });
    expect(line.request_id).toBe(seen.requestId as string);
    await waitUntil(() => backendClosed.get(path), 5000, 'the backend saw the close');
    expect(backendClosed.get(path)).toEqual([4001, 'bye from client']);
  }
}, 60_000);

test("a route's path rewrite applies to the backend handshake", async () => {
  const c = connect('/wsr/x?q=1');
  await c.opened;
  await c.next(1);
  expect((JSON.parse(c.messages[0] as string) as Seen).path).toBe('/ws/echo/x?q=1');
  c.ws.close(1000);
  expect(await accessLine(spooky, '/wsr/x')).toMatchObject({ status: 101, pool: 'rewritten' });
}, 30_000);

test("an https backend is reached over wss:// with the pool's CA", async () => {
  const c = connect('/tls/echo');
  await c.opened;
  c.ws.send('over tls');
  await c.next(1);
  expect(c.messages[0]).toBe('tls:over tls');
  c.ws.close(1000);
  expect(await accessLine(spooky, '/tls/echo')).toMatchObject({ status: 101, backend: 'tls', websocket_close: { by: 'client', code: 1000 } });
}, 30_000);

test('a close by the backend reaches the client with its code and reason', async () => {
  const c = connect('/ws/backend-closes');
  await c.opened;
  await c.next(1);
  c.ws.send('close please');
  const e = await c.closed;
  expect([e.code, e.reason]).toEqual([4002, 'bye from backend']);
  const line = await accessLine(spooky, '/ws/backend-closes');
  expect(line).toMatchObject({ status: 101, websocket_close: { by: 'backend', code: 4002 } });
  expect(line.error).toBeUndefined();
}, 30_000);

test('a backend that sends and closes at once: the client gets the message, then the close code', async () => {
  for (let i = 0; i < 5; i++) {
    const c = connect(`/ws/say-and-go/${i}`);
    const e = await c.closed;
    expect([c.messages.length, e.code, e.reason]).toEqual([1, 4005, 'said it']);
  }
}, 30_000);

test('a backend that refuses the handshake: the client gets its status over plain HTTP, the backend stays in', async () => {
  for (let i = 0; i < 2; i++) {
    const res = await handshake(`/ws/deny/${i}`, {});
    expect(res.status).toBe(403);
    const line = await accessLine(spooky, `/ws/deny/${i}`);
    expect(line).toMatchObject({ status: 403, backend: 'live' });
  }
  // Still open for business.
  const c = connect('/ws/echo/after-deny');
  await c.opened;
  c.ws.close();
}, 30_000);

/** A handshake written by hand over TLS (HTTP/1.1), so any header can be sent as is; resolves with the answer's head. */
async function rawHandshake(
  port: number,
  path: string,
  headers: Record<string, string>,
  onSocket?: (close: () => void) => void,
): Promise<{ status: number; headers: Record<string, string> }> {
  const all: Record<string, string> = {
    host: `127.0.0.1:${port}`,
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...headers,
  };
  const head = `GET ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  let text = '';
  const { promise, resolve, reject } = Promise.withResolvers<{ status: number; headers: Record<string, string> }>();
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => socket.write(head));
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return;
    const [status, ...lines] = text.slice(0, end).split('\r\n');
    const fields: Record<string, string> = {};
    for (const l of lines) fields[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    resolve({ status: Number(status?.split(' ')[1]), headers: fields });
    socket.destroy();
  });
  socket.on('error', reject);
  socket.on('close', () => reject(new Error('closed before an answer')));
  onSocket?.(() => socket.destroy());
  return promise;
}

/** A handshake to Spooky's own port. */
const handshake = (path: string, headers: Record<string, string>) => rawHandshake(spooky.port, path, headers);

test('an unsound client handshake is refused with 400 before any backend is contacted, and charged to none', async () => {
  const cases: [string, Record<string, string>][] = [
    ['dup-protocol', { 'sec-websocket-protocol': 'chat, chat' }],
    ['bad-protocol', { 'sec-websocket-protocol': 'a b' }],
    ['bad-key', { 'sec-websocket-key': 'x' }],
    ['bad-version', { 'sec-websocket-version': '8' }],
  ];
  for (const [name, headers] of cases) {
    for (let i = 0; i < 3; i++) {
      const res = await handshake(`/ws/unsound/${name}/${i}`, headers);
      expect([name, res.status, res.headers['sec-websocket-version']]).toEqual([name, 400, '13']);
      expect(await accessLine(spooky, `/ws/unsound/${name}/${i}`)).toMatchObject({ status: 400, error: 'bad_request', attempts: 0 });
    }
  }
  expect([...backendClosed.keys()].filter((k) => k.startsWith('/ws/unsound'))).toEqual([]); // no session reached the backend
  expect(spooky.child.lines.filter((r) => r.event === 'health_change' && r.backend === 'live')).toEqual([]);
  const c = connect('/ws/echo/after-unsound');
  await c.opened;
  c.ws.close();
}, 30_000);

test('a client that leaves while the backend handshake is pending: the backend socket is closed at once, 499', async () => {
  let accepted = 0;
  let closedAt = 0;
  const silent = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open() {
        accepted++;
      },
      data() {}, // never answers the handshake
      close() {
        closedAt = performance.now();
      },
    },
  });
  const other = await startSpooky(`
timeouts: { connect_ms: 1000, response_header_ms: 20000 }
upstream:
  silent:
    backends: [{ id: silent, address: "http://127.0.0.1:${silent.port}" }]
`);
  try {
    let close = () => {};
    const pending = rawHandshake(other.port, '/pending', {}, (c) => {
      close = c;
    }).catch(() => undefined);
    await waitUntil(() => accepted === 1, 5000, 'the backend connection');
    const left = performance.now();
    close();
    await pending;
    await waitUntil(() => closedAt > 0, 3000, 'the backend socket closed');
    expect(closedAt - left).toBeLessThan(2000);
    expect(await accessLine(other, '/pending')).toMatchObject({ status: 499, error: 'client_aborted' });
  } finally {
    await other.stop();
    silent.stop(true);
  }
}, 30_000);

test('a plain GET to the same path is forwarded as HTTP, and a request over HTTP/3 is unaffected', async () => {
  const res = await fetch(`https://127.0.0.1:${spooky.port}/ws/plain`, { tls: { rejectUnauthorized: false }, protocol: 'http3' } as RequestInit);
  expect([res.status, await res.text()]).toEqual([426, 'not a websocket']);
}, 30_000);

test('at shutdown every open session is closed with 1001 (going away) on both sides', async () => {
  const sessions = [connect('/ws/shutdown/a'), connect('/ws/shutdown/b')];
  for (const s of sessions) {
    await s.opened;
    await s.next(1);
  }
  const exit = spooky.stop();
  for (const s of sessions) expect((await s.closed).code).toBe(1001);
  expect(await exit).toBe(0);
  await waitUntil(() => backendClosed.get('/ws/shutdown/b'), 5000, 'the backend saw the close');
  expect(backendClosed.get('/ws/shutdown/a')?.[0]).toBe(1001);
  expect(spooky.child.lines.find((r) => r.event === 'websockets_closed')).toMatchObject({ sessions: 2 });
}, 30_000);
