import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Server } from 'bun';
import { Http1Transport } from './http1.ts';
import { Http2Transport } from './http2.ts';
import type { Transport, WebSocketDial } from './transport.ts';

let server: Server<undefined>;
beforeAll(() => {
  server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: (req, s) => (s.upgrade(req, { data: undefined }) ? undefined : new Response('plain')),
    websocket: { message() {} },
  });
});
afterAll(() => server.stop(true));
const port = (): number => server.port as number;

const dial = (t: Transport): Promise<WebSocketDial> =>
  t.openWebSocket({
    target: '/ws',
    headers: [['host', `127.0.0.1:${port()}`]],
    protocols: [],
    timeoutMs: 5000,
    signal: new AbortController().signal,
  });

async function opened(t: Transport): Promise<WebSocket> {
  const d = await dial(t);
  if (!d.ok) throw new Error(`refused ${d.status}`);
  return d.socket;
}

async function closedNow(ws: WebSocket): Promise<void> {
  const closed = new Promise((resolve) => ws.addEventListener('close', resolve, { once: true }));
  ws.close();
  await closed;
}

describe('WebSocket sessions count against max_connections', () => {
  test.each([
    ['HTTP/1.1 transport (max_connections: 2)', () => new Http1Transport({ host: '127.0.0.1', port: port() }, { maxConnections: 2 })],
    ['HTTP/2 transport (max_connections: 2)', () => new Http2Transport({ host: '127.0.0.1', port: port() }, { maxSessions: 2, maxWebSockets: 2 })],
  ])('%s: a third session is refused as queue_full (busy, not broken) until one closes', async (_what, make) => {
    const t = make();
    const a = await opened(t);
    const b = await opened(t);
    await expect(dial(t)).rejects.toMatchObject({ code: 'queue_full' });
    await closedNow(a);
    const c = await opened(t);
    await closedNow(b);
    await closedNow(c);
    t.close();
  });

  test('without a limit, sessions are not counted (the HTTP/2 default of 8 sessions does not apply to them)', async () => {
    const t = new Http2Transport({ host: '127.0.0.1', port: port() });
    const sockets = await Promise.all(Array.from({ length: 10 }, () => opened(t)));
    for (const s of sockets) await closedNow(s);
    t.close();
  });

  test('a refused or failed dial gives its slot back', async () => {
    const t = new Http1Transport({ host: '127.0.0.1', port: port() }, { maxConnections: 1 });
    const refused = await t
      .openWebSocket({ target: '/ws', headers: [['host', 'x']], protocols: ['a b'], timeoutMs: 5000, signal: AbortSignal.abort() })
      .catch((e) => e);
    expect(refused).toMatchObject({ code: 'client_aborted' });
    const s = await opened(t); // the slot is free again
    await closedNow(s);
    t.close();
  });
});
