/**
 * Response bodies that arrive over several reads, from a raw backend that controls every byte: a body with a
 * `content-length` up to 64 KiB keeps that header for HTTP/3, HTTP/2 and HTTP/1.1 clients, and when it breaks
 * off the client gets a 502 instead of a short body that looks complete; a larger body that breaks off is cut
 * for HTTP/2 and HTTP/1.1 clients (stream reset, connection closed); the access log counts the bytes actually
 * relayed, not the declared length.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { accessLine, type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { type RawConnection, type RawServer, startRawServer } from '../support/raw-http-server.ts';

const PROTOCOLS = ['http3', 'http2', 'http1.1'] as const;
const SMALL = 20_000;
const LARGE = 300_000;

/** Sends `total` declared bytes as `first` bytes now and, 30 ms later, either the rest or a FIN. */
function answer(conn: RawConnection, total: number, first: number, finish: boolean): void {
  conn.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${total}\r\n\r\n`);
  void conn.stream(first, 97).then(() =>
    setTimeout(() => {
      if (finish) void conn.stream(total - first, 98);
      else conn.end();
    }, 30),
  );
}

describe('response bodies over several reads', () => {
  let raw: RawServer;
  let spooky: SpookyProcess;
  let h1: Backend;
  let h2c: Backend;

  beforeAll(async () => {
    raw = startRawServer({
      onRequest(conn, req) {
        const path = req.line.split(' ')[1] ?? '';
        if (path.startsWith('/whole')) answer(conn, SMALL, SMALL / 2, true);
        else if (path.startsWith('/cut-small')) answer(conn, SMALL, SMALL / 2, false);
        else if (path.startsWith('/cut-large')) answer(conn, LARGE, LARGE / 3, false);
        else if (path.startsWith('/notype-split')) {
          conn.write('HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n<html>');
          setTimeout(() => conn.write('hi</html>'), 20);
        } else if (path.startsWith('/notype')) conn.write('HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n<html>hi</html>');
        else if (path.startsWith('/dup-cl-cut')) {
          conn.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\ncontent-length: 1000\r\ncontent-type: text/plain\r\n\r\n');
          setTimeout(() => conn.write('x'.repeat(500)), 20);
          setTimeout(() => conn.end(), 60);
        } else if (path.startsWith('/stall-small')) conn.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\ncontent-type: text/plain\r\n\r\n0123456789');
        else conn.write('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      },
    });
    [h1, h2c] = await Promise.all([startBackend('h1'), startBackend('h2c', { protocol: 'h2c' })]);
    spooky = await startSpooky(`log: { level: info }
timeouts: { response_header_ms: 1000 }
upstream:
  h1:
    route: { path_prefix: /h1/ }
    backends: [{ id: h1, address: "${h1.address}" }]
  h2c:
    route: { path_prefix: /h2c/ }
    backends: [{ id: h2c, address: "${h2c.address}" }]
  raw:
    health_check: { passive_failure_threshold: 0, probes: [] }
    backends: [{ id: raw, address: "http://127.0.0.1:${raw.port}" }]
`);
  });

  afterAll(async () => {
    await spooky?.stop();
    raw?.stop();
    await Promise.all([h1?.stop(), h2c?.stop()]);
  });

  const access = (path: string) => accessLine(spooky, path);

  test.each(PROTOCOLS)('%s: a 20 kB body in two reads arrives whole, with its content-length', async (protocol) => {
    const path = `/whole-${protocol}`;
    const res = await request(`${spooky.url}${path}`, { protocol });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(SMALL));
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body.byteLength).toBe(SMALL);
    expect(body[0]).toBe(97);
    expect(body[SMALL - 1]).toBe(98);
    expect(await access(path)).toMatchObject({ status: 200, bytes_out: SMALL });
  });

  test.each(PROTOCOLS)('%s: a 20 kB body that breaks off half way is a 502, not a short 200', async (protocol) => {
    const path = `/cut-small-${protocol}`;
    const res = await request(`${spooky.url}${path}`, { protocol });
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(text).toBe('502 the backend connection broke\n'); // never the detail
    const line = await access(path);
    expect(line).toMatchObject({ status: 502, error: 'upstream_reset', bytes_out: 0 });
    expect(String(line.error_detail)).toContain('before the end of the response body');
    expect(spooky.child.lines.some((r) => r.event === 'response_cut')).toBe(true);
  });

  test.each(['http2', 'http1.1'] as const)('%s: a 300 kB body that breaks off is cut for the client too', async (protocol) => {
    const path = `/cut-large-${protocol}`;
    const res = await request(`${spooky.url}${path}`, { protocol });
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toBeDefined();
    const rec = await access(path);
    expect(rec).toMatchObject({ status: 200, error: 'upstream_reset' });
    // the bytes relayed before the break (at most what the backend sent), not the declared 300 kB
    expect(rec.bytes_out as number).toBeGreaterThan(0);
    expect(rec.bytes_out as number).toBeLessThanOrEqual(LARGE / 3);
  });

  test('http3: a 300 kB body that breaks off is logged with the bytes actually relayed (the client side is Bun\'s, see the README)', async () => {
    const path = '/cut-large-h3';
    const res = await request(`${spooky.url}${path}`);
    expect(res.status).toBe(200);
    const got = await res.arrayBuffer().then(
      (b) => b.byteLength,
      () => -1,
    );
    const rec = await access(path);
    expect(rec).toMatchObject({ status: 200, error: 'upstream_reset' });
    expect(rec.bytes_out as number).toBeLessThanOrEqual(LARGE / 3);
    // whatever Bun's HTTP/3 server makes of the break-off, the client never gets the declared length
    expect(got).toBeLessThan(LARGE);
  });

  test.each(['h1', 'h2c'])('%s backend: a streamed 200 kB body without a length is logged with all its bytes, once relayed', async (kind) => {
    const path = `/${kind}/big`;
    const res = await request(`${spooky.url}${path}?bytes=200000`);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(200_000);
    expect(await access(path)).toMatchObject({ status: 200, bytes_out: 200_000 });
  });

  test.each(PROTOCOLS)('%s: a body the backend sent without a content-type reaches the client without one, with its length', async (protocol) => {
    for (const path of [`/notype-${protocol}`, `/notype-split-${protocol}`]) {
      const res = await request(`${spooky.url}${path}`, { protocol });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBeNull();
      expect(res.headers.get('content-length')).toBe('15');
      expect(await res.text()).toBe('<html>hi</html>');
    }
  });

  test('a repeated, agreeing content-length is still a declared length: a break-off is a 502', async () => {
    const res = await request(`${spooky.url}/dup-cl-cut`);
    expect(res.status).toBe(502);
    await res.arrayBuffer();
    expect(await access('/dup-cl-cut')).toMatchObject({ status: 502, error: 'upstream_reset' });
  });

  test('a small body that stalls after the head: 504 within response_header_ms, not a hang', async () => {
    const t0 = performance.now();
    const res = await request(`${spooky.url}/stall-small`);
    expect(res.status).toBe(504);
    await res.arrayBuffer();
    expect(performance.now() - t0).toBeLessThan(3000);
    const line = await access('/stall-small');
    expect(line).toMatchObject({ status: 504, error: 'upstream_timeout' });
    expect(String(line.error_detail)).toContain('timeouts.response_header_ms');
  });

  test('Via on a response names the version it came from the backend with, not the client\'s', async () => {
    const fromH1 = await request(`${spooky.url}/notype-via`);
    expect(fromH1.headers.get('via')).toBe('1.1 spooky');
    await fromH1.arrayBuffer();
    const fromH2c = await request(`${spooky.url}/h2c/x`);
    expect(fromH2c.headers.get('via')).toBe('2 spooky');
    await fromH2c.arrayBuffer();
  });
});
