/**
 * Http1Transport against real servers on 127.0.0.1, port 0: Bun.serve backends for normal behaviour, raw
 * TCP servers (test/support/raw-http-server.ts) for byte-exact and misbehaving responses. No bare sleeps for
 * readiness: conditions are polled with deadlines.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { makeTempCertificate } from '../../test/support/certs.ts';
import { closedPort, type RawConnection, type RawRequest, startRawServer, waitUntil } from '../../test/support/raw-http-server.ts';
import { type ErrorCode, SpookyError } from '../errors.ts';
import { type Http1Origin, type Http1PoolOptions, Http1Transport } from './http1.ts';
import { type ExchangeOptions, SMALL_BODY_BYTES, type UpstreamRequest, type UpstreamResponse } from './transport.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function transport(origin: Http1Origin, opts?: Http1PoolOptions): Http1Transport {
  const t = new Http1Transport(origin, opts);
  cleanups.push(() => t.close());
  return t;
}

function rawServer(opts: Parameters<typeof startRawServer>[0]) {
  const s = startRawServer(opts);
  cleanups.push(() => s.stop());
  return s;
}

/** A request with defaults (GET /, host header, fresh signal). */
function rq(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return { method: 'GET', target: '/', headers: [['host', 'backend.test']], body: null, signal: new AbortController().signal, ...over };
}

/** Exchange options that record every onEnd call. */
function track(over: Partial<ExchangeOptions> = {}): { opts: ExchangeOptions; ends: (SpookyError | undefined)[] } {
  const ends: (SpookyError | undefined)[] = [];
  return { opts: { connectTimeoutMs: 2000, responseHeaderTimeoutMs: 2000, onEnd: (e) => ends.push(e), ...over }, ends };
}

async function text(res: UpstreamResponse): Promise<string> {
  return res.body === null ? '' : await new Response(res.body).text();
}

/** Awaits a rejection and returns it as a SpookyError with the given code. */
async function rejection(p: Promise<unknown>, code: ErrorCode): Promise<SpookyError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SpookyError);
    expect((e as SpookyError).code).toBe(code);
    return e as SpookyError;
  }
  throw new Error(`expected a ${code} rejection`);
}

/** The body as a stream; fails the test when it is bytes or null. */
function streamOf(res: UpstreamResponse): ReadableStream<Uint8Array> {
  if (!(res.body instanceof ReadableStream)) throw new Error(`expected a body stream, got ${res.body === null ? 'null' : 'bytes'}`);
  return res.body;
}

function header(res: UpstreamResponse, name: string): string | undefined {
  return res.headers.find(([n]) => n === name)?.[1];
}

/** A byte stream of `total` bytes in `chunk`-sized pieces, pulled on demand; `produced` counts what was pulled. */
function producer(total: number, chunk = 64 * 1024): { stream: ReadableStream<Uint8Array>; produced: () => number } {
  let produced = 0;
  const piece = new Uint8Array(chunk).fill(0x62);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (produced >= total) {
          c.close();
          return;
        }
        const n = Math.min(chunk, total - produced);
        produced += n;
        c.enqueue(n === chunk ? piece.slice() : piece.slice(0, n));
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, produced: () => produced };
}

// A Bun.serve backend that counts connections by client port.
const ports = new Set<number>();
let backend: ReturnType<typeof Bun.serve>;
let uploadBytes = 0;

beforeAll(() => {
  backend = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    development: false,
    async fetch(req, srv) {
      const ip = srv.requestIP(req);
      if (ip !== null) ports.add(ip.port);
      const url = new URL(req.url);
      const p = url.pathname;
      if (p === '/echo') {
        const body = req.body === null ? '' : await req.text();
        return Response.json(
          { method: req.method, path: url.pathname + url.search, headers: Object.fromEntries(req.headers), body },
          { headers: { 'x-reply': 'yes' } },
        );
      }
      if (p.startsWith('/status/')) return new Response(null, { status: Number(p.slice(8)) });
      if (p === '/stream') {
        const parts = ['one,', 'two,', 'three'];
        return new Response(
          new ReadableStream({
            async pull(c) {
              const next = parts.shift();
              if (next === undefined) c.close();
              else {
                c.enqueue(new TextEncoder().encode(next));
                await Bun.sleep(5);
              }
            },
          }),
        );
      }
      if (p === '/upload') {
        let n = 0;
        if (req.body !== null) for await (const c of req.body) n += c.byteLength;
        uploadBytes = n;
        return Response.json({ bytes: n, te: req.headers.get('transfer-encoding'), cl: req.headers.get('content-length') });
      }
      if (p === '/slow') {
        await Bun.sleep(Number(url.searchParams.get('ms') ?? '20'));
        return new Response('slow');
      }
      return new Response('hello');
    },
  });
});
afterAll(() => {
  backend.stop(true);
});

function local(): Http1Origin {
  return { host: '127.0.0.1', port: backend.port as number };
}

describe('round trips against Bun.serve', () => {
  test('GET with headers, response headers and body', async () => {
    const t = transport(local());
    const { opts, ends } = track();
    const res = await t.request(
      rq({
        target: '/echo?x=1',
        headers: [
          ['host', 'backend.test'],
          ['x-custom', 'v 1'],
          ['accept', '*/*'],
        ],
      }),
      opts,
    );
    expect(res.status).toBe(200);
    expect(header(res, 'x-reply')).toBe('yes');
    expect(header(res, 'content-type')).toContain('application/json');
    const body = JSON.parse(await text(res));
    expect(body.method).toBe('GET');
    expect(body.path).toBe('/echo?x=1');
    expect(body.headers['x-custom']).toBe('v 1');
    expect(body.headers.host).toBe('backend.test');
    await waitUntil(() => ends.length === 1);
    expect(ends).toEqual([undefined]);
  });

  test('POST with a known length', async () => {
    const t = transport(local());
    const { opts, ends } = track();
    const payload = 'name=spooky&x=1';
    const res = await t.request(
      rq({
        method: 'POST',
        target: '/echo',
        body: new Blob([payload]).stream(),
        contentLength: payload.length,
        headers: [
          ['host', 'h'],
          ['content-type', 'text/plain'],
        ],
      }),
      opts,
    );
    const body = JSON.parse(await text(res));
    expect(body.method).toBe('POST');
    expect(body.body).toBe(payload);
    expect(body.headers['content-length']).toBe(String(payload.length));
    expect(body.headers['transfer-encoding']).toBeUndefined();
    await waitUntil(() => ends.length === 1);
    expect(ends).toEqual([undefined]);
  });

  test('request body of unknown length goes chunked', async () => {
    const t = transport(local());
    const { opts } = track();
    const parts = ['abc', 'defgh', 'i'];
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        const p = parts.shift();
        if (p === undefined) c.close();
        else c.enqueue(new TextEncoder().encode(p));
      },
    });
    const res = await t.request(rq({ method: 'PUT', target: '/upload', body }), opts);
    expect(JSON.parse(await text(res))).toEqual({ bytes: 9, te: 'chunked', cl: null });
  });

  test('streamed (chunked) response arrives piece by piece', async () => {
    const t = transport(local());
    const { opts, ends } = track();
    const res = await t.request(rq({ target: '/stream' }), opts);
    expect(header(res, 'transfer-encoding')).toBe('chunked');
    expect(await text(res)).toBe('one,two,three');
    await waitUntil(() => ends.length === 1);
    expect(ends).toEqual([undefined]);
  });

  test('keep-alive: sequential requests share one connection', async () => {
    ports.clear();
    const t = transport(local());
    for (let i = 0; i < 5; i++) {
      const res = await t.request(rq(), track().opts);
      expect(await text(res)).toBe('hello');
    }
    expect(ports.size).toBe(1);
    expect(t.stats()).toEqual({ connectionsOpened: 1, connectionsOpen: 1, connectionsIdle: 1 });
  });

  test('HEAD, 204 and 304 have no body and keep the connection', async () => {
    ports.clear();
    const t = transport(local());
    const head = await t.request(rq({ method: 'HEAD' }), track().opts);
    expect(head.status).toBe(200);
    expect(head.body).toBeNull();
    const r204 = await t.request(rq({ target: '/status/204' }), track().opts);
    expect(r204.status).toBe(204);
    expect(r204.body).toBeNull();
    const r304 = await t.request(rq({ target: '/status/304' }), track().opts);
    expect(r304.status).toBe(304);
    expect(r304.body).toBeNull();
    expect(await text(await t.request(rq(), track().opts))).toBe('hello');
    expect(t.stats().connectionsOpened).toBe(1);
    expect(ports.size).toBe(1);
  });

  test(
    '512 concurrent requests open at most 512 connections; the next batch opens none',
    async () => {
      ports.clear();
      const t = transport(local(), { maxIdlePerBackend: 512 });
      const batch = () =>
        Promise.all(
          Array.from({ length: 512 }, async () => {
            const res = await t.request(rq({ target: '/slow?ms=5' }), track().opts);
            return text(res);
          }),
        );
      const first = await batch();
      expect(first.every((b) => b === 'slow')).toBe(true);
      const opened = t.stats().connectionsOpened;
      expect(opened).toBeLessThanOrEqual(512);
      expect(ports.size).toBeLessThanOrEqual(512);
      await batch();
      expect(t.stats().connectionsOpened).toBe(opened);
      expect(t.stats().connectionsIdle).toBe(opened);
    },
    { timeout: 30_000 },
  );

  test('maxConnections queues requests instead of opening more', async () => {
    const t = transport(local(), { maxConnections: 2 });
    const bodies = await Promise.all(Array.from({ length: 10 }, async () => text(await t.request(rq({ target: '/slow?ms=5' }), track().opts))));
    expect(bodies.every((b) => b === 'slow')).toBe(true);
    expect(t.stats().connectionsOpened).toBe(2);
  });

  test(
    'a 50 MB upload streams with bounded buffering',
    async () => {
      const t = transport(local());
      const total = 50 * 1024 * 1024;
      const { stream, produced } = producer(total);
      Bun.gc(true); // measure this test's growth, not garbage left by earlier test files in this process
      const rssBefore = process.memoryUsage().rss;
      let maxRss = rssBefore;
      const timer = setInterval(() => {
        maxRss = Math.max(maxRss, process.memoryUsage().rss);
      }, 20);
      try {
        const res = await t.request(
          rq({ method: 'POST', target: '/upload', body: stream, contentLength: total }),
          track({ responseHeaderTimeoutMs: 20_000 }).opts,
        );
        expect(JSON.parse(await text(res))).toEqual({ bytes: total, te: null, cl: String(total) });
      } finally {
        clearInterval(timer);
      }
      expect(produced()).toBe(total);
      expect(uploadBytes).toBe(total);
      // Client and server share this process; both stream, so growth stays far below the 50 MB body.
      expect(maxRss - rssBefore).toBeLessThan(40 * 1024 * 1024);
    },
    { timeout: 30_000 },
  );
});

describe('request validation', () => {
  test('a header value with CRLF is refused before anything is sent', async () => {
    const server = rawServer({ onRequest: (c) => c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok') });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const err = await rejection(
      t.request(
        rq({
          headers: [
            ['host', 'h'],
            ['x-evil', 'a\r\nx-injected: 1'],
          ],
        }),
        opts,
      ),
      'bad_request',
    );
    expect(ends).toEqual([err]);
    expect(t.stats().connectionsOpened).toBe(0);
    // A valid request afterwards is the only thing the server ever sees.
    expect(await text(await t.request(rq(), track().opts))).toBe('ok');
    expect(server.connections).toHaveLength(1);
    expect(server.connections[0]!.requests.map((r) => r.line)).toEqual(['GET / HTTP/1.1']);
    expect(server.connections[0]!.requests[0]!.head).not.toContain('x-injected');
  });

  test.each([
    ['invalid header name', { headers: [['bad name', 'v']] as [string, string][] }],
    ['NUL in a value', { headers: [['x', 'a\x00b']] as [string, string][] }],
    ['caller-set content-length', { headers: [['content-length', '3']] as [string, string][] }],
    ['target with a space', { target: '/a b' }],
    ['content-length without a body', { contentLength: 5 }],
  ])('refuses %s with bad_request', async (_name, over) => {
    const t = transport({ host: '127.0.0.1', port: closedPort() });
    const { opts, ends } = track();
    const err = await rejection(t.request(rq(over), opts), 'bad_request');
    expect(ends).toEqual([err]);
  });

  test('POST without a body sends content-length: 0; GET sends no framing', async () => {
    const seen: RawRequest[] = [];
    const server = rawServer({
      onRequest: (c, r) => {
        seen.push(r);
        c.write('HTTP/1.1 204 No Content\r\n\r\n');
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq({ method: 'POST' }), track().opts);
    await t.request(rq({ method: 'GET' }), track().opts);
    expect(seen[0]!.headers.get('content-length')).toBe('0');
    expect(seen[1]!.headers.has('content-length')).toBe(false);
    expect(seen[1]!.headers.has('transfer-encoding')).toBe(false);
  });

  test('chunked request body on the wire', async () => {
    const seen: RawRequest[] = [];
    const server = rawServer({
      onRequest: (c, r) => {
        seen.push(r);
        c.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const parts = [new Uint8Array(20000).fill(0x41), new TextEncoder().encode('tail')];
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        const p = parts.shift();
        if (p === undefined) c.close();
        else c.enqueue(p);
      },
    });
    const res = await t.request(rq({ method: 'POST', body }), track().opts);
    expect(res.status).toBe(200);
    expect(res.body).toBeNull();
    expect(seen[0]!.headers.get('transfer-encoding')).toBe('chunked');
    expect(seen[0]!.headers.has('content-length')).toBe(false);
    expect(seen[0]!.body.length).toBe(20004);
    expect(seen[0]!.body.toString('latin1').endsWith('Atail')).toBe(true);
  });

  test.each([
    ['shorter', 10, 'abc'],
    ['longer', 2, 'abc'],
  ])('a body %s than its content-length fails with bad_request', async (_n, declared, payload) => {
    const server = rawServer({ countOnly: true });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const err = await rejection(t.request(rq({ method: 'POST', body: new Blob([payload]).stream(), contentLength: declared }), opts), 'bad_request');
    expect(ends).toEqual([err]);
    await waitUntil(() => server.connections[0]?.closed === true, 2000, 'connection closed');
  });
});

describe('response framing against a raw server', () => {
  function answer(response: string | ((c: RawConnection, r: RawRequest) => void)) {
    return rawServer({ onRequest: typeof response === 'string' ? (c) => c.write(response) : response });
  }

  test('content-length body', async () => {
    const server = answer('HTTP/1.1 200 OK\r\ncontent-length: 11\r\nx-a: 1\r\n\r\nhello world');
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const res = await t.request(rq(), opts);
    expect(res.headers).toEqual([
      ['content-length', '11'],
      ['x-a', '1'],
    ]);
    expect(await text(res)).toBe('hello world');
    expect(ends).toEqual([undefined]);
    expect(t.stats().connectionsIdle).toBe(1);
  });

  test('a small body that arrives with the head is handed over as bytes; the exchange is already over', async () => {
    const server = answer('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello');
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const res = await t.request(rq(), opts);
    expect(res.body).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(res.body as Uint8Array).toString()).toBe('hello');
    expect(ends).toEqual([undefined]);
    expect(t.stats().connectionsIdle).toBe(1);
  });

  test('a small body that arrives after the head is a stream', async () => {
    const server = answer((c) => {
      c.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n');
      setTimeout(() => c.write('hello'), 20);
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const res = await t.request(rq(), track().opts);
    expect(await new Response(streamOf(res)).text()).toBe('hello');
  });

  test('a body over SMALL_BODY_BYTES is a stream even when it is all there', async () => {
    const big = 'z'.repeat(SMALL_BODY_BYTES + 1);
    const server = answer(`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n${big}`);
    const t = transport({ host: '127.0.0.1', port: server.port });
    const res = await t.request(rq(), track().opts);
    expect((await new Response(streamOf(res)).text()).length).toBe(big.length);
  });

  test('content-length: 0 gives a null body', async () => {
    const server = answer('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    const t = transport({ host: '127.0.0.1', port: server.port });
    const res = await t.request(rq(), track().opts);
    expect(res.body).toBeNull();
    expect(t.stats().connectionsIdle).toBe(1);
  });

  test('chunked body with extensions and trailers, split across writes', async () => {
    const server = answer((c) => {
      c.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhel');
      setTimeout(() => c.write('lo\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n'), 10);
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const res = await t.request(rq(), opts);
    expect(await text(res)).toBe('hello world');
    expect(ends).toEqual([undefined]);
    // connection reusable afterwards
    await t.request(rq(), track().opts).then(text);
    expect(t.stats().connectionsOpened).toBe(1);
  });

  test('head split into single bytes', async () => {
    const wire = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-long: abcdefghij\r\n\r\nok';
    const server = answer((c) => {
      let i = 0;
      const tick = setInterval(() => {
        c.write(wire[i++]!);
        if (i === wire.length) clearInterval(tick);
      }, 1);
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const res = await t.request(rq(), track().opts);
    expect(header(res, 'x-long')).toBe('abcdefghij');
    expect(await text(res)).toBe('ok');
  });

  test('interim responses and the final head split into single bytes', async () => {
    const wire = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n';
    const server = answer((c) => {
      let i = 0;
      const tick = setInterval(() => {
        c.write(wire[i++]!);
        if (i === wire.length) clearInterval(tick);
      }, 1);
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const res = await t.request(rq(), opts);
    expect(res.status).toBe(200);
    expect(await text(res)).toBe('ok');
    expect(ends).toEqual([undefined]);
    expect(t.stats().connectionsIdle).toBe(1);
  });

  test('read-until-close body; the connection is not reused', async () => {
    const server = answer((c) => {
      c.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ');
      setTimeout(() => {
        c.write('close');
        c.end();
      }, 10);
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const res = await t.request(rq(), opts);
    expect(await text(res)).toBe('until close');
    expect(ends).toEqual([undefined]);
    await t.request(rq(), track().opts).then(text);
    expect(t.stats().connectionsOpened).toBe(2);
    expect(server.connections).toHaveLength(2);
  });

  test.each([
    ['connection: close', 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok'],
    ['HTTP/1.0 without keep-alive', 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok'],
    ['extra bytes after the body', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA'],
  ])('%s: not reused', async (_n, wire) => {
    const server = answer(wire);
    const t = transport({ host: '127.0.0.1', port: server.port });
    expect(await text(await t.request(rq(), track().opts))).toBe('ok');
    expect(await text(await t.request(rq(), track().opts))).toBe('ok');
    expect(t.stats().connectionsOpened).toBe(2);
  });

  test('HTTP/1.0 with keep-alive is reused', async () => {
    const server = answer('HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok');
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq(), track().opts).then(text);
    await t.request(rq(), track().opts).then(text);
    expect(t.stats().connectionsOpened).toBe(1);
  });

  test('100 Continue and 103 Early Hints are skipped', async () => {
    const server = answer((c) => {
      c.write('HTTP/1.1 100 Continue\r\n\r\n');
      setTimeout(
        () => c.write('HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone'),
        10,
      );
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const res = await t.request(rq(), track().opts);
    expect(res.status).toBe(201);
    expect(res.headers).toEqual([['content-length', '4']]);
    expect(await text(res)).toBe('done');
  });

  test('HEAD response with content-length has no body and the connection is reused', async () => {
    const server = answer((c, r) =>
      c.write(r.line.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n' : 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
    );
    const t = transport({ host: '127.0.0.1', port: server.port });
    const head = await t.request(rq({ method: 'HEAD' }), track().opts);
    expect(head.body).toBeNull();
    expect(header(head, 'content-length')).toBe('1000');
    expect(await text(await t.request(rq(), track().opts))).toBe('ok');
    expect(t.stats().connectionsOpened).toBe(1);
  });

  test.each([
    ['conflicting content-length', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok'],
    ['transfer-encoding with content-length', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n  2\r\ncontent-length: 2\r\n\r\nok'],
    ['101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n'],
    ['garbage status line', 'HTTP/1.1 OK\r\n\r\n'],
    ['status over 599', 'HTTP/1.1 600 Weird\r\ncontent-length: 2\r\n\r\nok'],
    ['invalid chunk size', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'],
    ['head over 64 KiB', `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70 * 1024)}\r\n\r\n`],
    ['bare LF line endings (at once, not at the header timeout)', 'HTTP/1.1 200 OK\ncontent-length: 2\n\nok'],
    ['a bare LF before the blank line', 'HTTP/1.1 200 OK\r\ncontent-length: 2\n\r\nok'],
  ])('%s -> upstream_protocol_error', async (name, wire) => {
    const server = answer(wire);
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    if (name === 'invalid chunk size') {
      const res = await t.request(rq(), opts);
      await rejection(text(res), 'upstream_protocol_error');
    } else {
      const err = await rejection(t.request(rq(), opts), 'upstream_protocol_error');
      expect(err.retryable).toBe(false);
    }
    expect(ends.map((e) => e?.code)).toEqual(['upstream_protocol_error']);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'connection closed');
    expect(t.stats().connectionsOpen).toBe(0);
  });
});

describe('failures', () => {
  test('connection refused -> upstream_connect_failed, retryable', async () => {
    const t = transport({ host: '127.0.0.1', port: closedPort() });
    const { opts, ends } = track();
    const err = await rejection(t.request(rq(), opts), 'upstream_connect_failed');
    expect(err.retryable).toBe(true);
    expect(ends).toEqual([err]);
    expect(t.stats()).toEqual({ connectionsOpened: 0, connectionsOpen: 0, connectionsIdle: 0 });
  });

  test('connect timeout (TLS handshake never completes) -> upstream_connect_failed, retryable', async () => {
    const server = rawServer({ countOnly: true }); // accepts TCP, never speaks TLS
    const t = transport({ host: '127.0.0.1', port: server.port, tls: { rejectUnauthorized: false } });
    const { opts, ends } = track({ connectTimeoutMs: 150 });
    const started = performance.now();
    const err = await rejection(t.request(rq(), opts), 'upstream_connect_failed');
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(err.retryable).toBe(true);
    expect(ends).toEqual([err]);
    await waitUntil(() => server.connections[0]?.closed === true, 2000, 'connection closed');
  });

  test('server that never answers -> upstream_timeout, socket destroyed', async () => {
    const server = rawServer({});
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track({ responseHeaderTimeoutMs: 150 });
    const err = await rejection(t.request(rq(), opts), 'upstream_timeout');
    expect(err.retryable).toBe(false);
    expect(ends).toEqual([err]);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'connection closed');
    expect(t.stats().connectionsOpen).toBe(0);
  });

  test('server closes mid-body -> the stream errors and onEnd gets upstream_reset', async () => {
    const server = rawServer({
      onRequest: (c) => {
        c.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial');
        setTimeout(() => c.end(), 20);
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const res = await t.request(rq(), opts);
    const reader = streamOf(res).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('partial');
    await rejection(reader.read(), 'upstream_reset');
    expect(ends.map((e) => e?.code)).toEqual(['upstream_reset']);
  });

  test('server resets before answering -> upstream_reset', async () => {
    const server = rawServer({ onRequest: (c) => c.destroy() });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const err = await rejection(t.request(rq(), opts), 'upstream_reset');
    expect(err.retryable).toBe(false);
    expect(ends).toEqual([err]);
  });

  test('stale keep-alive connection is retried once on a fresh one for GET', async () => {
    // The first connection answers its first request, then drops the second unanswered (as if its idle
    // timeout had closed it while the request was on the way).
    const server = rawServer({
      onRequest: (c, r) => {
        if (c.id === 0 && r.index === 1) c.end();
        else c.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n${c.id}${r.index}`);
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    expect(await text(await t.request(rq(), track().opts))).toBe('00');
    const { opts, ends } = track();
    expect(await text(await t.request(rq(), opts))).toBe('10');
    expect(ends).toEqual([undefined]);
    expect(server.connections).toHaveLength(2);
    expect(t.stats().connectionsOpened).toBe(2);
  });

  test('stale keep-alive connection with a request body -> upstream_reset, not retryable', async () => {
    const server = rawServer({
      onRequest: (c, r) => {
        if (r.index === 1) c.end();
        else c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq(), track().opts).then(text);
    const { opts, ends } = track();
    const err = await rejection(t.request(rq({ method: 'POST', body: new Blob(['data']).stream(), contentLength: 4 }), opts), 'upstream_reset');
    expect(err.retryable).toBe(false);
    expect(ends).toEqual([err]);
    expect(server.connections).toHaveLength(1);
  });

  test('stale keep-alive connection with a body-less POST -> upstream_reset, not sent again', async () => {
    // The backend may have processed the POST before the connection went away: it must not get it twice.
    const server = rawServer({
      onRequest: (c, r) => {
        if (r.index === 1) c.end();
        else c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq(), track().opts).then(text);
    const { opts } = track();
    await rejection(t.request(rq({ method: 'POST' }), opts), 'upstream_reset');
    expect(server.connections).toHaveLength(1);
    expect(server.connections.flatMap((c) => c.requests).filter((r) => r.line.startsWith('POST'))).toHaveLength(1);
  });

  test('a 204 whose head announces a body: the connection is not reused', async () => {
    const server = rawServer({
      onRequest: (c, r) =>
        c.write(r.line.includes('/nc') ? 'HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n' : 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const r204 = await t.request(rq({ target: '/nc' }), track().opts);
    expect(r204.body).toBeNull();
    expect(await text(await t.request(rq(), track().opts))).toBe('ok');
    expect(t.stats().connectionsOpened).toBe(2);
  });

  test('idle connection closed by the server is dropped from the pool', async () => {
    const server = rawServer({
      onRequest: (c) => {
        c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setTimeout(() => c.end(), 10);
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq(), track().opts).then(text);
    await waitUntil(() => t.stats().connectionsIdle === 0, 2000, 'idle connection dropped');
    expect(t.stats().connectionsOpen).toBe(0);
    expect(await text(await t.request(rq(), track().opts))).toBe('ok');
    expect(t.stats().connectionsOpened).toBe(2);
  });

  test('abort via signal mid-body: the stream errors with client_aborted and the server sees the close', async () => {
    const server = rawServer({ onRequest: (c) => c.write(`HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n${'x'.repeat(1000)}`) });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const ac = new AbortController();
    const { opts, ends } = track();
    const res = await t.request(rq({ signal: ac.signal }), opts);
    const reader = streamOf(res).getReader();
    expect((await reader.read()).value!.byteLength).toBe(1000);
    ac.abort();
    await rejection(reader.read(), 'client_aborted');
    expect(ends.map((e) => e?.code)).toEqual(['client_aborted']);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'server saw the close');
    expect(t.stats().connectionsOpen).toBe(0);
  });

  test('abort while waiting for the response head', async () => {
    const server = rawServer({});
    const t = transport({ host: '127.0.0.1', port: server.port });
    const ac = new AbortController();
    const { opts, ends } = track({ responseHeaderTimeoutMs: 5000 });
    const p = t.request(rq({ signal: ac.signal }), opts);
    await waitUntil(() => (server.connections[0]?.requests.length ?? 0) === 1, 2000, 'request arrived');
    ac.abort();
    const err = await rejection(p, 'client_aborted');
    expect(ends).toEqual([err]);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'server saw the close');
  });

  test('abort while waiting for the head on a reused connection (lazy abort subscription)', async () => {
    const server = rawServer({ onRequest: (c, r) => r.index === 0 && c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok') });
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq(), track().opts).then(text);
    const ac = new AbortController();
    const { opts, ends } = track({ responseHeaderTimeoutMs: 5000 });
    const p = t.request(rq({ signal: ac.signal }), opts);
    await waitUntil(() => server.connections[0]!.requests.length === 2, 2000, 'second request arrived');
    const abortedAt = performance.now();
    ac.abort();
    const err = await rejection(p, 'client_aborted');
    // noticed within the grace period (100 ms) plus scheduling slack
    expect(performance.now() - abortedAt).toBeLessThan(1000);
    expect(ends).toEqual([err]);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'server saw the close');
  });

  test.each([50, 300])('response header timeout of %d ms on a reused connection', async (ms) => {
    const server = rawServer({ onRequest: (c, r) => r.index === 0 && c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok') });
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq(), track().opts).then(text);
    const { opts, ends } = track({ responseHeaderTimeoutMs: ms });
    const started = performance.now();
    const err = await rejection(t.request(rq(), opts), 'upstream_timeout');
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(ms - 5);
    expect(took).toBeLessThan(ms + 1000);
    expect(ends).toEqual([err]);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'connection closed');
  });

  test('abort with a header timeout shorter than the abort grace period still reports client_aborted', async () => {
    const server = rawServer({ onRequest: (c, r) => r.index === 0 && c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok') });
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq(), track().opts).then(text);
    const ac = new AbortController();
    const { opts, ends } = track({ responseHeaderTimeoutMs: 60 });
    const p = t.request(rq({ signal: ac.signal }), opts);
    ac.abort();
    const err = await rejection(p, 'client_aborted');
    expect(ends).toEqual([err]);
  });

  test('infinite timeouts mean no timeout', async () => {
    const server = rawServer({ onRequest: (c) => setTimeout(() => c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), 150) });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const opts = { connectTimeoutMs: Number.POSITIVE_INFINITY, responseHeaderTimeoutMs: Number.POSITIVE_INFINITY };
    expect(await text(await t.request(rq(), opts))).toBe('ok');
    expect(await text(await t.request(rq(), opts))).toBe('ok');
  });

  test('already aborted signal: nothing is sent', async () => {
    const server = rawServer({});
    const t = transport({ host: '127.0.0.1', port: server.port });
    const ac = new AbortController();
    ac.abort();
    const { opts, ends } = track();
    const err = await rejection(t.request(rq({ signal: ac.signal }), opts), 'client_aborted');
    expect(ends).toEqual([err]);
    expect(t.stats().connectionsOpened).toBe(0);
  });

  test('cancelling the body destroys the connection; onEnd gets client_aborted', async () => {
    const server = rawServer({
      onRequest: (c, r) => {
        if (c.id === 0) c.write(`HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n${'y'.repeat(100)}`);
        else c.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n${r.index}${c.id}`);
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { opts, ends } = track();
    const res = await t.request(rq(), opts);
    const reader = streamOf(res).getReader();
    await reader.read();
    await reader.cancel();
    expect(ends.map((e) => e?.code)).toEqual(['client_aborted']);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'server saw the close');
    expect(await text(await t.request(rq(), track().opts))).toBe('01');
  });

  test(
    'backpressure: a 50 MB response that is not read stalls the server',
    async () => {
      const total = 50 * 1024 * 1024;
      let conn: RawConnection | undefined;
      let done: Promise<void> | undefined;
      const server = rawServer({
        onRequest: (c) => {
          conn = c;
          c.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`);
          done = c.stream(total);
        },
      });
      const t = transport({ host: '127.0.0.1', port: server.port });
      const { opts, ends } = track();
      const res = await t.request(rq(), opts);
      const reader = streamOf(res).getReader();
      let received = (await reader.read()).value!.byteLength;
      // Stop reading; wait until the server's writes stop making progress.
      let last = -1;
      const deadline = performance.now() + 10_000;
      while (conn!.bytesSent !== last) {
        last = conn!.bytesSent;
        if (performance.now() > deadline) throw new Error('server never stalled');
        await Bun.sleep(100);
      }
      // What the server got rid of sits in kernel buffers and our 64 KiB queue (+ one read), not in memory.
      expect(conn!.bytesSent).toBeLessThan(20 * 1024 * 1024);
      // Slowly drain the rest.
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        received += r.value.byteLength;
      }
      expect(received).toBe(total);
      await done;
      expect(ends).toEqual([undefined]);
      expect(t.stats().connectionsIdle).toBe(1);
    },
    { timeout: 30_000 },
  );

  test(
    'backpressure: an upload to a server that stops reading stops pulling the body',
    async () => {
      const total = 50 * 1024 * 1024;
      const server = rawServer({ countOnly: true, onConnection: (c) => c.pause() });
      const t = transport({ host: '127.0.0.1', port: server.port });
      const { stream, produced } = producer(total);
      const { opts, ends } = track({ responseHeaderTimeoutMs: 20_000 });
      const p = t.request(rq({ method: 'POST', body: stream, contentLength: total }), opts);
      await waitUntil(() => produced() > 0, 2000, 'upload started');
      let last = -1;
      const deadline = performance.now() + 10_000;
      while (produced() !== last) {
        last = produced();
        if (performance.now() > deadline) throw new Error('producer never stalled');
        await Bun.sleep(100);
      }
      expect(produced()).toBeLessThan(20 * 1024 * 1024);
      const c = server.connections[0]!;
      c.resume();
      await waitUntil(() => c.bytesReceived >= total, 20_000, 'upload complete');
      c.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
      const res = await p;
      expect(res.status).toBe(200);
      expect(produced()).toBe(total);
      expect(ends).toEqual([undefined]);
    },
    { timeout: 40_000 },
  );

  test('an early complete response stops the upload and drops the connection', async () => {
    const server = rawServer({
      countOnly: true,
      onConnection: (c) => {
        setTimeout(() => c.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n'), 20);
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const { stream } = producer(1024 * 1024 * 1024); // never finished
    const { opts, ends } = track();
    const res = await t.request(rq({ method: 'POST', body: stream }), opts);
    expect(res.status).toBe(413);
    await waitUntil(() => ends.length === 1, 2000, 'exchange over');
    expect(ends).toEqual([undefined]);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'connection closed');
  });
});

describe('pool lifecycle', () => {
  test('idle connections are closed after idleTimeoutMs', async () => {
    const server = rawServer({ onRequest: (c) => c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok') });
    const t = transport({ host: '127.0.0.1', port: server.port }, { idleTimeoutMs: 50 });
    await t.request(rq(), track().opts).then(text);
    expect(t.stats().connectionsIdle).toBe(1);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'idle connection closed');
    expect(t.stats()).toEqual({ connectionsOpened: 1, connectionsOpen: 0, connectionsIdle: 0 });
  });

  test('maxIdlePerBackend caps the idle list', async () => {
    const t = transport(local(), { maxIdlePerBackend: 2 });
    await Promise.all(Array.from({ length: 5 }, async () => text(await t.request(rq({ target: '/slow?ms=10' }), track().opts))));
    expect(t.stats().connectionsOpened).toBe(5);
    expect(t.stats().connectionsIdle).toBe(2);
    await waitUntil(() => t.stats().connectionsOpen === 2, 2000, 'extra connections closed');
  });

  test('a request queued behind maxConnections fails after connectTimeoutMs', async () => {
    const server = rawServer({}); // never answers, so the one connection stays busy
    const t = transport({ host: '127.0.0.1', port: server.port }, { maxConnections: 1 });
    const first = track({ responseHeaderTimeoutMs: 400 });
    const p1 = t.request(rq(), first.opts);
    const { opts, ends } = track({ connectTimeoutMs: 100 });
    const err = await rejection(t.request(rq(), opts), 'upstream_connect_failed');
    expect(err.retryable).toBe(true);
    expect(ends).toEqual([err]);
    expect(t.stats().connectionsOpened).toBe(1);
    t.close();
    await rejection(p1, 'upstream_timeout');
  });

  test('close() fails queued requests once no connection is left to serve them', async () => {
    const server = rawServer({});
    const t = transport({ host: '127.0.0.1', port: server.port }, { maxConnections: 1 });
    const p1 = t.request(rq(), track({ responseHeaderTimeoutMs: 300 }).opts);
    const { opts, ends } = track();
    const p2 = t.request(rq(), opts);
    t.close();
    const err = await rejection(p2, 'upstream_connect_failed');
    expect(ends).toEqual([err]);
    await rejection(p1, 'upstream_timeout');
  });

  test('close() while requests wait for a connection: the connection in use serves them, then closes', async () => {
    // What a reload that changes max_connections does to the old pool: queued requests are not failed.
    const server = rawServer({ onRequest: (c) => setTimeout(() => c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), 50) });
    const t = transport({ host: '127.0.0.1', port: server.port }, { maxConnections: 1 });
    const p1 = t.request(rq(), track().opts);
    const p2 = t.request(rq(), track().opts);
    t.close();
    expect(await text(await p1)).toBe('ok');
    expect(await text(await p2)).toBe('ok');
    expect(t.stats().connectionsOpened).toBe(1);
    await waitUntil(() => server.connections[0]!.closed, 2000, 'connection closed after the last waiter');
    await rejection(t.request(rq(), track().opts), 'upstream_connect_failed');
  });

  test('close() closes idle connections and refuses later requests', async () => {
    const server = rawServer({ onRequest: (c) => c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok') });
    const t = transport({ host: '127.0.0.1', port: server.port });
    await t.request(rq(), track().opts).then(text);
    t.close();
    await waitUntil(() => server.connections[0]!.closed, 2000, 'idle connection closed');
    const { opts, ends } = track();
    const err = await rejection(t.request(rq(), opts), 'upstream_connect_failed');
    expect(ends).toEqual([err]);
  });

  test('close() lets an active exchange finish, then closes its connection', async () => {
    const server = rawServer({
      onRequest: (c) => {
        c.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab');
        setTimeout(() => c.write('cd'), 30);
      },
    });
    const t = transport({ host: '127.0.0.1', port: server.port });
    const res = await t.request(rq(), track().opts);
    t.close();
    expect(await text(res)).toBe('abcd');
    await waitUntil(() => server.connections[0]!.closed, 2000, 'connection closed');
    expect(t.stats().connectionsOpen).toBe(0);
  });
});

describe('TLS origin', () => {
  let dir = '';
  let cert = '';
  let tlsServer: ReturnType<typeof Bun.serve>;

  beforeAll(async () => {
    // no IP in the certificate: the test without a serverName expects the name check to fail
    const made = await makeTempCertificate({ name: 'spooky.test', ips: [] });
    dir = made.dir;
    cert = made.certPem;
    tlsServer = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      development: false,
      tls: { cert, key: made.keyPem },
      fetch: () => new Response('secure'),
    });
  });
  afterAll(() => {
    tlsServer.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  const origin = (tls: NonNullable<Http1Origin['tls']>): Http1Origin => ({ host: '127.0.0.1', port: tlsServer.port as number, tls });

  test('rejectUnauthorized: false works, and keeps the connection alive', async () => {
    const t = transport(origin({ rejectUnauthorized: false }));
    expect(await text(await t.request(rq(), track().opts))).toBe('secure');
    expect(await text(await t.request(rq(), track().opts))).toBe('secure');
    expect(t.stats().connectionsOpened).toBe(1);
  });

  test('rejectUnauthorized: true with a self-signed certificate -> upstream_connect_failed', async () => {
    const t = transport(origin({ rejectUnauthorized: true, serverName: 'spooky.test' }));
    const { opts, ends } = track();
    const err = await rejection(t.request(rq(), opts), 'upstream_connect_failed');
    expect(err.retryable).toBe(true);
    expect(ends).toEqual([err]);
    expect(t.stats().connectionsOpen).toBe(0);
  });

  test('ca = that certificate and a matching serverName works', async () => {
    const t = transport(origin({ rejectUnauthorized: true, ca: cert, serverName: 'spooky.test' }));
    expect(await text(await t.request(rq(), track().opts))).toBe('secure');
  });

  test('ca = that certificate but a wrong serverName -> upstream_connect_failed', async () => {
    const t = transport(origin({ rejectUnauthorized: true, ca: cert, serverName: 'other.test' }));
    await rejection(t.request(rq(), track().opts), 'upstream_connect_failed');
  });

  test('ca = that certificate but no serverName (the IP is not in the certificate) -> upstream_connect_failed', async () => {
    const t = transport(origin({ rejectUnauthorized: true, ca: cert }));
    await rejection(t.request(rq(), track().opts), 'upstream_connect_failed');
  });
});
