/**
 * A backend that refuses an upload the usual way: it answers as soon as the request head arrived (`413`) and
 * closes without reading the rest. The close with unread bytes resets the connection, so Spooky's next write of
 * the body fails while the answer still waits in its receive buffer: the client must get that answer, not a
 * `502`, and the backend must not be charged a failure for it.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { accessLine, request, type SpookyProcess, startSpooky } from '../support/process.ts';
import { type RawServer, startRawServer } from '../support/raw-http-server.ts';

let backend: RawServer;
let spooky: SpookyProcess;

beforeAll(async () => {
  backend = startRawServer({
    countOnly: true,
    onData: (c, d) => {
      if (c.bytesReceived !== d.length) return; // only the first bytes: the head (and perhaps some of the body)
      c.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 7\r\nconnection: close\r\n\r\ntoo big');
      c.end();
    },
  });
  spooky = await startSpooky(`
upstream:
  uploads:
    circuit_breaker: { consecutive_failures: 1, open_ms: 60000 }
    backends: [{ id: refuser, address: "http://127.0.0.1:${backend.port}" }]
`);
});
afterAll(async () => {
  await spooky?.stop();
  backend?.stop();
});

test('the early 413 reaches the client over HTTP/1.1, HTTP/2 and HTTP/3, and the circuit stays closed', async () => {
  for (const protocol of ['http1.1', 'http2', 'http3'] as const) {
    for (let i = 0; i < 2; i++) {
      const path = `/upload/${protocol}/${i}`;
      const res = await request(`${spooky.url}${path}`, { protocol, method: 'POST', body: new Uint8Array(4 * 1024 * 1024) });
      const line = await accessLine(spooky, path);
      expect([protocol, res.status, await res.text(), line.status, line.error ?? null]).toEqual([protocol, 413, 'too big', 413, null]);
    }
  }
  expect(spooky.child.lines.some((r) => r.event === 'circuit_change')).toBe(false);
}, 60_000);
