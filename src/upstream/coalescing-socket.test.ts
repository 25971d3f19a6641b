import { afterEach, describe, expect, test } from 'bun:test';
import type { TCPSocketListener } from 'bun';
import { CoalescingSocket } from './coalescing-socket.ts';

/** A TCP server that records what each connection received and when it ended. */
function sink() {
  const received: Buffer[] = [];
  let ended = false;
  const server: TCPSocketListener<undefined> = Bun.listen<undefined>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(_s, d) {
        received.push(Buffer.from(d));
      },
      end() {
        ended = true;
      },
      close() {
        ended = true;
      },
    },
  });
  return {
    server,
    text: () => Buffer.concat(received).toString(),
    ended: () => ended,
  };
}

const until = async (pred: () => boolean, ms = 3000) => {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error('timed out');
    await Bun.sleep(2);
  }
};

let servers: TCPSocketListener<undefined>[] = [];
afterEach(() => {
  for (const s of servers) s.stop(true);
  servers = [];
});

describe('CoalescingSocket', () => {
  test('writes of one event-loop turn arrive together, in order, after the turn', async () => {
    const k = sink();
    servers.push(k.server);
    const sock = await CoalescingSocket.connect('127.0.0.1', k.server.port);
    for (let i = 0; i < 50; i++) expect(sock.write(Buffer.from(`${i},`))).toBe(true);
    expect(k.text()).toBe('');
    await until(() => k.text().length === Array.from({ length: 50 }, (_, i) => `${i},`).join('').length);
    expect(k.text()).toBe(Array.from({ length: 50 }, (_, i) => `${i},`).join(''));
    sock.destroy();
  });

  test('end() sends what is queued, then FIN', async () => {
    const k = sink();
    servers.push(k.server);
    const sock = await CoalescingSocket.connect('127.0.0.1', k.server.port);
    sock.write(Buffer.from('last words'));
    sock.end();
    await until(() => k.ended());
    expect(k.text()).toBe('last words');
  });

  test('reads arrive as data events; the peer closing ends and closes the stream', async () => {
    const got: string[] = [];
    const server = Bun.listen<undefined>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open(s) {
          s.write('hello');
          s.end();
        },
        data() {},
      },
    });
    servers.push(server);
    const sock = await CoalescingSocket.connect('127.0.0.1', server.port);
    sock.on('data', (d: Buffer) => got.push(d.toString()));
    let closed = false;
    sock.on('close', () => {
      closed = true;
    });
    await until(() => closed);
    expect(got.join('')).toBe('hello');
  });

  test('a large backlog makes write() return false until drained, and all bytes arrive', async () => {
    const k = sink();
    servers.push(k.server);
    const sock = await CoalescingSocket.connect('127.0.0.1', k.server.port);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let full = false;
    let n = 0;
    while (!full && n < 1000) {
      full = !sock.write(chunk);
      n++;
    }
    expect(full).toBe(true);
    await new Promise<void>((resolve) => sock.once('drain', () => resolve()));
    await until(() => k.text().length === n * chunk.byteLength, 10_000);
    sock.destroy();
  });

  test('a refused connection rejects', async () => {
    const server = Bun.listen<undefined>({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
    const port = server.port;
    server.stop(true);
    await expect(CoalescingSocket.connect('127.0.0.1', port)).rejects.toBeDefined();
  });
});
