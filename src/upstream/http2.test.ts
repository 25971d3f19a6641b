import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import * as net from 'node:net';
import { makeTempCertificate, type TestCertificate } from '../../test/support/certs.ts';
import {
  deadPort,
  frame,
  type H2Server,
  type RawBehaviour,
  type RawH2Server,
  startH2Server,
  startRawH2Server,
  u32,
  waitUntil,
} from '../../test/support/h2-server.ts';
import { SpookyError } from '../errors.ts';
import { ByteWriter } from './h2/bytes.ts';
import { encodeField } from './h2/hpack.ts';
import { ABORT_LISTEN_AFTER_MS, ABORT_POLL_MS, Http2Transport, type Http2TransportOptions, NO_BODY_DRAIN_MS, type UpstreamOrigin } from './http2.ts';
import { type ExchangeOptions, SMALL_BODY_BYTES, type UpstreamRequest, type UpstreamResponse } from './transport.ts';

/** Runs `body` with a transport to a raw HTTP/2 server that behaves as `behaviour`; closes both afterwards, also when an assertion fails. */
async function withRawServer(behaviour: RawBehaviour, body: (t: Http2Transport, raw: RawH2Server) => Promise<void>): Promise<void> {
  const raw = await startRawH2Server(behaviour);
  const t = new Http2Transport({ host: '127.0.0.1', port: raw.port });
  try {
    await body(t, raw);
  } finally {
    t.close();
    await raw.close();
  }
}

const MB = 1024 * 1024;

/** A request with defaults: GET, no body, host `test.local`. */
function mkReq(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: 'GET',
    target: '/echo',
    headers: [['host', 'test.local']],
    body: null,
    signal: new AbortController().signal,
    ...over,
  };
}

/** Exchange options that record every onEnd call. */
function mkOpts(over: Partial<ExchangeOptions> = {}): ExchangeOptions & { ends: (SpookyError | undefined)[] } {
  const ends: (SpookyError | undefined)[] = [];
  return { connectTimeoutMs: 2000, responseHeaderTimeoutMs: 5000, onEnd: (e) => ends.push(e), ends, ...over };
}

/** The whole body as text, whether it came as bytes (small body), as a stream, or not at all. */
async function text(res: UpstreamResponse): Promise<string> {
  if (!res.body) return '';
  if (res.body instanceof Uint8Array) return new TextDecoder().decode(res.body);
  return await new Response(res.body).text();
}

/** The body as a stream; fails the test when it came as bytes (or not at all). */
function streamOf(res: UpstreamResponse): ReadableStream<Uint8Array> {
  expect(res.body).toBeInstanceOf(ReadableStream);
  return res.body as ReadableStream<Uint8Array>;
}

/** True when `bytes` is the `/download` pattern (byte i is `i % 251`) from `offset` on. */
function isPattern(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== (offset + i) % 251) return false;
  return true;
}

async function rejection(p: Promise<unknown>): Promise<SpookyError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(SpookyError);
    return err as SpookyError;
  }
  throw new Error('expected a rejection');
}

function h2c(server: { port: number }, opts?: Http2TransportOptions): Http2Transport {
  const origin: UpstreamOrigin = { host: '127.0.0.1', port: server.port };
  return new Http2Transport(origin, opts);
}

/** Byte `i` of the upload stream. */
const uploadByte = (i: number) => (i * 7 + 3) & 0xff;

describe('Http2Transport over h2c', () => {
  let server: H2Server;
  beforeAll(async () => {
    server = await startH2Server({ mode: 'h2c' });
  });
  afterAll(async () => {
    await server.stop();
  });

  test('GET roundtrip: :authority from host, headers preserved, pseudo headers stripped', async () => {
    const t = h2c(server);
    const opts = mkOpts();
    const res = await t.request(
      mkReq({
        headers: [
          ['host', 'api.example.test'],
          ['accept', 'application/json'],
          ['x-multi', 'one'],
          ['x-multi', 'two'],
          ['connection', 'keep-alive'],
        ],
      }),
      opts,
    );
    expect(res.status).toBe(200);
    expect(res.headers.some(([k]) => k.startsWith(':'))).toBe(false);
    expect(res.headers.filter(([k]) => k === 'set-cookie').map(([, v]) => v)).toEqual(['a=1', 'b=2']);
    expect(res.headers).toContainEqual(['x-echo', '1']);
    const echo = JSON.parse(await text(res));
    expect(echo.authority).toBe('api.example.test');
    expect(echo.scheme).toBe('http');
    expect(echo.method).toBe('GET');
    expect(echo.path).toBe('/echo');
    expect(echo.headers.accept).toBe('application/json');
    expect(echo.headers['x-multi']).toBeDefined();
    expect(echo.headers.host).toBeUndefined();
    expect(echo.headers.connection).toBeUndefined();
    await waitUntil(() => opts.ends.length === 1, 2000, 'onEnd');
    expect(opts.ends).toEqual([undefined]);
    t.close();
  }, 10_000);

  test('POST with a body and content-length', async () => {
    const t = h2c(server);
    const payload = new TextEncoder().encode('hello, upstream');
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(payload.subarray(0, 5));
        c.enqueue(payload.subarray(5));
        c.close();
      },
    });
    const opts = mkOpts();
    const res = await t.request(
      mkReq({
        method: 'POST',
        target: '/echo?x=1',
        body,
        contentLength: payload.length,
        headers: [
          ['host', 'h'],
          ['content-type', 'text/plain'],
        ],
      }),
      opts,
    );
    const echo = JSON.parse(await text(res));
    expect(echo.method).toBe('POST');
    expect(echo.path).toBe('/echo?x=1');
    expect(echo.bodyBytes).toBe(payload.length);
    expect(echo.headers['content-length']).toBe(String(payload.length));
    expect(echo.headers['content-type']).toBe('text/plain');
    await waitUntil(() => opts.ends.length === 1, 2000, 'onEnd');
    expect(opts.ends).toEqual([undefined]);
    t.close();
  }, 10_000);

  test('a failing request body -> client_aborted, and the server sees the reset', async () => {
    const t = h2c(server);
    const before = await server.stats();
    let ctl: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        ctl = c;
        c.enqueue(new Uint8Array(1000));
      },
    });
    const opts = mkOpts();
    const p = t.request(mkReq({ method: 'POST', target: '/upload', body }), opts);
    await waitUntil(async () => (await server.stats()).uploadReceived >= 1000, 3000, 'first body bytes');
    ctl?.error(new Error('client went away'));
    const err = await rejection(p);
    expect(err.code).toBe('client_aborted');
    expect(opts.ends.map((e) => e?.code)).toEqual(['client_aborted']);
    await waitUntil(
      async () => (await server.stats()).resets.slice(before.resets.length).some((r) => r.path === '/upload' && r.rstCode === 8),
      3000,
      'server to see the reset',
    );
    t.close();
  }, 10_000);

  test('a header HTTP/2 refuses -> bad_request; the session stays usable', async () => {
    const t = h2c(server);
    await text(await t.request(mkReq(), mkOpts()));
    const opts = mkOpts();
    const err = await rejection(
      t.request(
        mkReq({
          headers: [
            ['host', 'h'],
            ['bad name', 'x'],
          ],
        }),
        opts,
      ),
    );
    expect(err.code).toBe('bad_request');
    expect(opts.ends.map((e) => e?.code)).toEqual(['bad_request']);
    expect((await t.request(mkReq(), mkOpts())).status).toBe(200);
    expect(t.stats().connectionsOpened).toBe(1);
    t.close();
  });

  test('a request body that is already locked -> bad_request and the stream is reset', async () => {
    const t = h2c(server);
    const body = new ReadableStream<Uint8Array>();
    const lock = body.getReader();
    const opts = mkOpts();
    const err = await rejection(t.request(mkReq({ method: 'POST', target: '/upload', body }), opts));
    expect(err.code).toBe('bad_request');
    expect(opts.ends.map((e) => e?.code)).toEqual(['bad_request']);
    lock.releaseLock();
    await waitUntil(() => t.stats().connectionsIdle === 1, 2000, 'the stream slot to be given back');
    t.close();
  });

  test('HEAD, 204 and 304 have a null body and end once', async () => {
    const t = h2c(server);
    for (const [method, target, status] of [
      ['HEAD', '/echo', 200],
      ['GET', '/status/204', 204],
      ['GET', '/status/304', 304],
    ] as const) {
      const opts = mkOpts();
      const res = await t.request(mkReq({ method, target }), opts);
      expect(res.status).toBe(status);
      expect(res.body).toBeNull();
      await waitUntil(() => opts.ends.length === 1, 2000, 'onEnd');
      expect(opts.ends).toEqual([undefined]);
    }
    t.close();
  }, 10_000);

  test('1xx informational responses are consumed; the final response is returned', async () => {
    const t = h2c(server);
    const res = await t.request(mkReq({ target: '/early-hints' }), mkOpts());
    expect(res.status).toBe(200);
    expect(await text(res)).toBe('final');
    t.close();
  });

  test('200 concurrent requests share ONE connection', async () => {
    const before = await server.stats();
    const t = h2c(server);
    const results = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const res = await t.request(mkReq({ target: '/slow?ms=300' }), mkOpts());
        return [res.status, await text(res)] as const;
      }),
    );
    expect(results.every(([s, b]) => s === 200 && b === 'slow')).toBe(true);
    const after = await server.stats();
    expect(after.sessions - before.sessions).toBe(1);
    expect(after.maxActiveStreams).toBeGreaterThanOrEqual(200);
    expect(t.stats().connectionsOpened).toBe(1);
    expect(t.stats().connectionsOpen).toBe(1);
    expect(t.stats().connectionsIdle).toBe(1);
    t.close();
  }, 20_000);

  test('20 MB upload streams with backpressure (bounded buffering, server stalled)', async () => {
    const t = h2c(server);
    const total = 20 * MB;
    const chunk = 64 * 1024;
    let produced = 0;
    let expectedSum = 0;
    const rss0 = process.memoryUsage().rss;
    let rssPeak = rss0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          if (produced >= total) {
            c.close();
            return;
          }
          const n = Math.min(chunk, total - produced);
          const b = new Uint8Array(n);
          for (let i = 0; i < n; i++) b[i] = uploadByte(produced + i);
          for (let i = 0; i < n; i++) expectedSum = (Math.imul(expectedSum, 31) + (b[i] as number)) >>> 0;
          produced += n;
          rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
          c.enqueue(b);
        },
      },
      { highWaterMark: 0 },
    );
    await server.command('stall');
    const p = t.request(mkReq({ method: 'POST', target: '/upload', body, contentLength: total }), mkOpts());
    // Wait until the producer stops because the connection pushes back.
    let last = -1;
    let stableSince = performance.now();
    await waitUntil(
      async () => {
        if (produced !== last) {
          last = produced;
          stableSince = performance.now();
        }
        return produced > 0 && performance.now() - stableSince > 300;
      },
      8000,
      'upload to stall',
    );
    const st = await server.stats();
    expect(produced).toBeLessThan(1 * MB);
    expect(produced - st.uploadReceived).toBeLessThan(1 * MB);
    await server.command('resume');
    const res = await p;
    const out = JSON.parse(await text(res));
    expect(out.bytes).toBe(total);
    expect(out.sum).toBe(expectedSum);
    expect(rssPeak - rss0).toBeLessThan(64 * MB);
    t.close();
  }, 30_000);

  test('20 MB download read slowly: the server write stalls, memory stays bounded', async () => {
    const t = h2c(server);
    const total = 20 * MB;
    const opts = mkOpts();
    const res = await t.request(mkReq({ target: `/download?bytes=${total}` }), opts);
    expect(res.headers).toContainEqual(['content-length', String(total)]);
    const reader = streamOf(res).getReader();
    let got = 0;
    let bad = 0;
    const take = (v: Uint8Array) => {
      for (let i = 0; i < v.length; i += 997) if (v[i] !== (got + i) % 251) bad++;
      got += v.length;
    };
    const first = await reader.read();
    take(first.value as Uint8Array);
    // Not reading: the server must stop being able to write.
    let last = -1;
    let stableSince = performance.now();
    const written = await waitUntil(
      async () => {
        const w = (await server.stats()).downloadWritten;
        if (w !== last) {
          last = w;
          stableSince = performance.now();
        }
        return performance.now() - stableSince > 300 ? w : 0;
      },
      8000,
      'server writes to stall',
    );
    expect(written).toBeLessThan(1 * MB);
    // Now read slowly, checking that the server never runs far ahead of the reader.
    const rss0 = process.memoryUsage().rss;
    let maxAhead = 0;
    let nextCheck = got + 2 * MB;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      take(value);
      if (got >= nextCheck) {
        nextCheck += 2 * MB;
        maxAhead = Math.max(maxAhead, (await server.stats()).downloadWritten - got);
        await Bun.sleep(20); // a slow consumer
      }
    }
    expect(got).toBe(total);
    expect(bad).toBe(0);
    expect(maxAhead).toBeLessThan(1 * MB);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * MB);
    await waitUntil(() => opts.ends.length === 1, 2000, 'onEnd');
    expect(opts.ends).toEqual([undefined]);
    t.close();
  }, 30_000);

  test('a slow upload is not a head timeout: the head wait starts once the body is sent', async () => {
    const t = h2c(server);
    const opts = mkOpts({ responseHeaderTimeoutMs: 200 });
    let sent = 0;
    // Three chunks 150 ms apart: the upload takes about 450 ms, over twice the head timeout.
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent === 3) {
          c.close();
          return;
        }
        if (sent > 0) await Bun.sleep(150);
        sent++;
        c.enqueue(new Uint8Array(10).fill(sent));
      },
    });
    const res = await t.request(mkReq({ method: 'POST', target: '/echo', body, contentLength: 30 }), opts);
    expect(JSON.parse(await text(res)).bodyBytes).toBe(30);
    await waitUntil(() => opts.ends.length === 1, 2000, 'onEnd');
    expect(opts.ends).toEqual([undefined]);
    t.close();
  }, 10_000);

  test('no response headers in time -> upstream_timeout, and the stream is cancelled', async () => {
    const t = h2c(server);
    const opts = mkOpts({ responseHeaderTimeoutMs: 200 });
    const before = (await server.stats()).resets.length;
    const err = await rejection(t.request(mkReq({ target: '/hang' }), opts));
    expect(err.code).toBe('upstream_timeout');
    expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_timeout']);
    await waitUntil(
      async () => (await server.stats()).resets.slice(before).some((r) => r.path === '/hang' && r.rstCode === 8),
      3000,
      'server to see the reset',
    );
    t.close();
  }, 10_000);

  test('abort via signal before the head -> client_aborted and the server sees RST_STREAM(CANCEL)', async () => {
    const t = h2c(server);
    const ac = new AbortController();
    const opts = mkOpts();
    const before = await server.stats();
    const p = t.request(mkReq({ target: '/hang', signal: ac.signal }), opts);
    await waitUntil(async () => (await server.stats()).openPaths.includes('/hang'), 3000, 'server to see the request');
    ac.abort();
    const err = await rejection(p);
    expect(err.code).toBe('client_aborted');
    expect(opts.ends.map((e) => e?.code)).toEqual(['client_aborted']);
    await waitUntil(
      async () => (await server.stats()).resets.slice(before.resets.length).some((r) => r.path === '/hang' && r.rstCode === 8),
      3000,
      'server to see the reset',
    );
    t.close();
  }, 10_000);

  test('abort during the body errors the body with client_aborted and resets the stream', async () => {
    const t = h2c(server);
    const ac = new AbortController();
    const opts = mkOpts();
    const before = await server.stats();
    const res = await t.request(mkReq({ target: `/download?bytes=${10 * MB}`, signal: ac.signal }), opts);
    const reader = streamOf(res).getReader();
    await reader.read();
    ac.abort();
    const err = await rejection(
      (async () => {
        for (;;) if ((await reader.read()).done) return;
      })(),
    );
    expect(err.code).toBe('client_aborted');
    expect(opts.ends.map((e) => e?.code)).toEqual(['client_aborted']);
    await waitUntil(
      async () => (await server.stats()).resets.slice(before.resets.length).some((r) => r.path === '/download' && r.rstCode === 8),
      3000,
      'server to see the reset',
    );
    t.close();
  }, 10_000);

  test('cancelling the body -> client_aborted once, server sees the reset', async () => {
    const t = h2c(server);
    const opts = mkOpts();
    const before = await server.stats();
    const res = await t.request(mkReq({ target: `/download?bytes=${10 * MB}` }), opts);
    await streamOf(res).cancel();
    expect(opts.ends.map((e) => e?.code)).toEqual(['client_aborted']);
    await waitUntil(
      async () => (await server.stats()).resets.slice(before.resets.length).some((r) => r.path === '/download' && r.rstCode === 8),
      3000,
      'server to see the reset',
    );
    t.close();
  }, 10_000);

  test('already aborted signal -> client_aborted without connecting', async () => {
    const t = h2c(server);
    const ac = new AbortController();
    ac.abort();
    const opts = mkOpts();
    const err = await rejection(t.request(mkReq({ signal: ac.signal }), opts));
    expect(err.code).toBe('client_aborted');
    expect(opts.ends.length).toBe(1);
    expect(t.stats().connectionsOpened).toBe(0);
    t.close();
  });

  test('backend resets the stream: before the head -> upstream_reset; during the body -> body error', async () => {
    const t = h2c(server);
    const o1 = mkOpts();
    const e1 = await rejection(t.request(mkReq({ target: '/reset-before' }), o1));
    expect(e1.code).toBe('upstream_reset');
    expect(e1.retryable).toBe(false);
    expect(o1.ends.map((e) => e?.code)).toEqual(['upstream_reset']);

    const o2 = mkOpts();
    const res = await t.request(mkReq({ target: '/reset-after' }), o2);
    expect(res.status).toBe(200);
    const e2 = await rejection(text(res));
    expect(e2.code).toBe('upstream_reset');
    expect(o2.ends.map((e) => e?.code)).toEqual(['upstream_reset']);

    // The session survives stream resets.
    const ok = await t.request(mkReq(), mkOpts());
    expect(ok.status).toBe(200);
    await text(ok);
    expect(t.stats().connectionsOpened).toBe(1);
    t.close();
  }, 10_000);

  test('GOAWAY: in-flight streams finish, new requests go to a new session', async () => {
    const t = h2c(server);
    const before = await server.stats();
    const inflight = t.request(mkReq({ target: '/slow?ms=300' }), mkOpts());
    await waitUntil(async () => (await server.stats()).openPaths.includes('/slow'), 3000, 'slow request to arrive');
    await server.command('goaway');
    const res = await inflight;
    expect(await text(res)).toBe('slow');
    const next = await t.request(mkReq(), mkOpts());
    expect(next.status).toBe(200);
    await text(next);
    expect((await server.stats()).sessions - before.sessions).toBe(2);
    expect(t.stats().connectionsOpened).toBe(2);
    t.close();
  }, 10_000);

  test('close(): sessions close gracefully and later requests fail retryably', async () => {
    const t = h2c(server);
    const before = await server.stats();
    const inflight = t.request(mkReq({ target: '/slow?ms=200' }), mkOpts());
    await waitUntil(async () => (await server.stats()).openPaths.includes('/slow'), 3000, 'slow request to arrive');
    t.close();
    expect(await text(await inflight)).toBe('slow');
    const err = await rejection(t.request(mkReq(), mkOpts()));
    expect(err.code).toBe('upstream_connect_failed');
    expect(err.retryable).toBe(true);
    await waitUntil(() => t.stats().connectionsOpen === 0, 3000, 'sessions to close');
    await waitUntil(async () => (await server.stats()).openSessions <= before.openSessions, 3000, 'server to see the close');
  }, 10_000);

  test('idle sessions are closed after idleTimeoutMs', async () => {
    const t = h2c(server, { idleTimeoutMs: 150 });
    const res = await t.request(mkReq(), mkOpts());
    await text(res);
    expect(t.stats().connectionsOpen).toBe(1);
    await waitUntil(() => t.stats().connectionsOpen === 0, 3000, 'idle session to close');
    const again = await t.request(mkReq(), mkOpts());
    expect(again.status).toBe(200);
    await text(again);
    expect(t.stats().connectionsOpened).toBe(2);
    t.close();
  }, 10_000);
});

describe('Http2Transport: small-body fast path', () => {
  let server: H2Server;
  beforeAll(async () => {
    server = await startH2Server({ mode: 'h2c' });
  });
  afterAll(async () => {
    await server.stop();
  });

  test('a small declared body arrives as one Uint8Array, and onEnd has already run', async () => {
    const t = h2c(server);
    const opts = mkOpts();
    const res = await t.request(mkReq({ target: '/download?bytes=1000' }), opts);
    // Nothing awaited in between: the exchange is over before the head is handed over.
    expect(opts.ends).toEqual([undefined]);
    expect(res.status).toBe(200);
    expect(res.headers).toContainEqual(['content-length', '1000']);
    expect(res.body).toBeInstanceOf(Uint8Array);
    const body = res.body as Uint8Array;
    expect(body.byteLength).toBe(1000);
    expect(isPattern(body)).toBe(true);
    expect(t.stats().connectionsIdle).toBe(1); // the stream slot was given back
    t.close();
  });

  test('exactly SMALL_BODY_BYTES over several DATA frames is joined into one Uint8Array', async () => {
    const t = h2c(server);
    const opts = mkOpts();
    const res = await t.request(mkReq({ target: `/download?bytes=${SMALL_BODY_BYTES}` }), opts);
    expect(opts.ends).toEqual([undefined]);
    expect(res.body).toBeInstanceOf(Uint8Array);
    const body = res.body as Uint8Array;
    expect(body.byteLength).toBe(SMALL_BODY_BYTES);
    expect(isPattern(body)).toBe(true);
    t.close();
  });

  test('a body above the threshold, or of unknown length, is streamed', async () => {
    const t = h2c(server);
    const big = mkOpts();
    const res = await t.request(mkReq({ target: `/download?bytes=${SMALL_BODY_BYTES + 1}` }), big);
    const bytes = new Uint8Array(await new Response(streamOf(res)).arrayBuffer());
    expect(bytes.byteLength).toBe(SMALL_BODY_BYTES + 1);
    expect(isPattern(bytes)).toBe(true);
    await waitUntil(() => big.ends.length === 1, 2000, 'onEnd');
    expect(big.ends).toEqual([undefined]);

    const unknown = mkOpts();
    const res2 = await t.request(mkReq({ target: '/no-length?bytes=11' }), unknown);
    expect(await new Response(streamOf(res2)).text()).toBe('a'.repeat(11));
    await waitUntil(() => unknown.ends.length === 1, 2000, 'onEnd');
    expect(unknown.ends).toEqual([undefined]);
    t.close();
  });

  test('headers in time but a stalled small body: handed over as a stream at the header deadline, nothing lost', async () => {
    const t = h2c(server);
    const opts = mkOpts({ responseHeaderTimeoutMs: 200 });
    const t0 = performance.now();
    const res = await t.request(mkReq({ target: '/stall-body?bytes=1000&first=10&ms=700' }), opts);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(150);
    expect(waited).toBeLessThan(650);
    expect(res.status).toBe(200);
    expect(opts.ends).toEqual([]); // the exchange goes on
    const bytes = new Uint8Array(await new Response(streamOf(res)).arrayBuffer());
    expect(bytes.byteLength).toBe(1000);
    expect(isPattern(bytes)).toBe(true);
    await waitUntil(() => opts.ends.length === 1, 2000, 'onEnd');
    expect(opts.ends).toEqual([undefined]);
    t.close();
  }, 10_000);

  test('a stalled small body handed over as a stream can still be cancelled (the server sees the reset)', async () => {
    const t = h2c(server);
    const before = await server.stats();
    const opts = mkOpts({ responseHeaderTimeoutMs: 150 });
    const res = await t.request(mkReq({ target: '/stall-body?bytes=1000&first=10&ms=60000' }), opts);
    const reader = streamOf(res).getReader();
    const first = await reader.read();
    expect(first.value?.byteLength).toBe(10);
    await reader.cancel();
    expect(opts.ends.map((e) => e?.code)).toEqual(['client_aborted']);
    await waitUntil(
      async () => (await server.stats()).resets.slice(before.resets.length).some((r) => r.path === '/stall-body' && r.rstCode === 8),
      3000,
      'server to see the reset',
    );
    t.close();
  }, 10_000);

  test('a body longer or shorter than its content-length -> upstream_protocol_error', async () => {
    const t = h2c(server);
    for (const target of ['/bad-length?declared=10&actual=20', '/bad-length?declared=20&actual=10']) {
      const opts = mkOpts();
      const err = await rejection(t.request(mkReq({ target }), opts));
      expect(err.code).toBe('upstream_protocol_error');
      expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_protocol_error']);
    }
    // The session survives.
    const ok = await t.request(mkReq({ target: '/download?bytes=5' }), mkOpts());
    expect(ok.body).toBeInstanceOf(Uint8Array);
    expect(t.stats().connectionsOpened).toBe(1);
    t.close();
  });

  test('an abort right after sending is reported even when the response completes before the abort listener is attached', async () => {
    const t = h2c(server);
    await text(await t.request(mkReq({ target: '/download?bytes=10' }), mkOpts())); // warm: the session exists
    const ac = new AbortController();
    const opts = mkOpts();
    const p = t.request(mkReq({ target: '/download?bytes=10', signal: ac.signal }), opts);
    ac.abort();
    expect((await rejection(p)).code).toBe('client_aborted');
    expect(opts.ends.map((e) => e?.code)).toEqual(['client_aborted']);
    t.close();
  });

  test(`an abort while waiting for a slow head is noticed within about ${ABORT_POLL_MS} ms, later at once`, async () => {
    const t = h2c(server);
    await text(await t.request(mkReq({ target: '/download?bytes=10' }), mkOpts())); // warm: the session exists
    /** Sends a slow request, aborts it after `delayMs`, and returns how long the rejection took after the abort. */
    const abortAfter = async (delayMs: number): Promise<number> => {
      const ac = new AbortController();
      const opts = mkOpts();
      const p = t.request(mkReq({ target: '/slow?ms=3000', signal: ac.signal }), opts);
      await Bun.sleep(delayMs);
      const t0 = performance.now();
      ac.abort();
      const err = await rejection(p);
      const took = performance.now() - t0;
      expect(err.code).toBe('client_aborted');
      expect(opts.ends.map((e) => e?.code)).toEqual(['client_aborted']);
      return took;
    };
    // A young exchange: the signal is polled.
    expect(await abortAfter(0)).toBeLessThan(2 * ABORT_POLL_MS + 100);
    expect(await abortAfter(3 * ABORT_POLL_MS)).toBeLessThan(2 * ABORT_POLL_MS + 100);
    // An old one has a real listener, which reacts at once.
    expect(await abortAfter(ABORT_LISTEN_AFTER_MS + 4 * ABORT_POLL_MS)).toBeLessThan(50);
    t.close();
  }, 10_000);

  test('a short exchange never adds an abort listener; a long one adds one and removes it at the end', async () => {
    const t = h2c(server);
    await text(await t.request(mkReq({ target: '/download?bytes=10' }), mkOpts()));
    /** A signal that counts its 'abort' listener additions and removals. */
    const spied = () => {
      const signal = new AbortController().signal;
      const counts = { added: 0, removed: 0 };
      const add = signal.addEventListener.bind(signal) as (...args: unknown[]) => void;
      const remove = signal.removeEventListener.bind(signal) as (...args: unknown[]) => void;
      signal.addEventListener = ((type: string, ...rest: unknown[]) => {
        if (type === 'abort') counts.added++;
        add(type, ...rest);
      }) as typeof signal.addEventListener;
      signal.removeEventListener = ((type: string, ...rest: unknown[]) => {
        if (type === 'abort') counts.removed++;
        remove(type, ...rest);
      }) as typeof signal.removeEventListener;
      return { signal, counts };
    };
    const fast = spied();
    const res = await t.request(mkReq({ target: '/download?bytes=10', signal: fast.signal }), mkOpts());
    expect(res.body).toBeInstanceOf(Uint8Array);
    await Bun.sleep(3 * ABORT_POLL_MS);
    expect(fast.counts).toEqual({ added: 0, removed: 0 });

    const slow = spied();
    const opts = mkOpts();
    const res2 = await t.request(mkReq({ target: `/slow?ms=${ABORT_LISTEN_AFTER_MS + 150}`, signal: slow.signal }), opts);
    expect(await text(res2)).toBe('slow');
    await waitUntil(() => opts.ends.length === 1, 2000, 'onEnd');
    expect(slow.counts).toEqual({ added: 1, removed: 1 });
    t.close();
  }, 10_000);

  test('a POST whose small response completes while the request body is still open: the upload is cancelled', async () => {
    const t = h2c(server);
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(100));
      },
      cancel() {
        cancelled = true;
      },
    });
    const opts = mkOpts();
    const res = await t.request(mkReq({ method: 'POST', target: '/download?bytes=100', body }), opts);
    expect(res.body).toBeInstanceOf(Uint8Array);
    expect((res.body as Uint8Array).byteLength).toBe(100);
    expect(opts.ends).toEqual([undefined]);
    await waitUntil(() => cancelled, 2000, 'the request body to be cancelled');
    t.close();
  }, 10_000);
});

describe('Http2Transport: sessions and failures', () => {
  test('opens more sessions when the peer limits concurrent streams', async () => {
    const server = await startH2Server({ mode: 'h2c', maxConcurrentStreams: 10 });
    try {
      const t = h2c(server);
      const all = await Promise.all(Array.from({ length: 25 }, async () => text(await t.request(mkReq({ target: '/slow?ms=200' }), mkOpts()))));
      expect(all.every((b) => b === 'slow')).toBe(true);
      const st = await server.stats();
      expect(st.sessions).toBe(3);
      expect(st.maxActiveStreams).toBeLessThanOrEqual(25);
      expect(t.stats().connectionsOpened).toBe(3);
      t.close();
    } finally {
      await server.stop();
    }
  }, 15_000);

  test('maxSessions reached: requests wait for a free stream', async () => {
    const server = await startH2Server({ mode: 'h2c', maxConcurrentStreams: 5 });
    try {
      const t = h2c(server, { maxSessions: 1 });
      const all = await Promise.all(Array.from({ length: 12 }, async () => text(await t.request(mkReq({ target: '/slow?ms=100' }), mkOpts()))));
      expect(all.every((b) => b === 'slow')).toBe(true);
      const st = await server.stats();
      expect(st.sessions).toBe(1);
      expect(st.maxActiveStreams).toBeLessThanOrEqual(5);
      t.close();
    } finally {
      await server.stop();
    }
  }, 15_000);

  test('server restart: the next request reconnects transparently', async () => {
    const server = await startH2Server({ mode: 'h2c' });
    try {
      const t = h2c(server);
      expect((await t.request(mkReq(), mkOpts())).status).toBe(200);
      await server.restart();
      await waitUntil(() => t.stats().connectionsOpen === 0, 3000, 'client to notice the closed session');
      const res = await t.request(mkReq(), mkOpts());
      expect(res.status).toBe(200);
      await text(res);
      expect(t.stats().connectionsOpened).toBe(2);
      t.close();
    } finally {
      await server.stop();
    }
  }, 15_000);

  test('connect refused -> retryable upstream_connect_failed', async () => {
    const t = new Http2Transport({ host: '127.0.0.1', port: await deadPort() });
    const opts = mkOpts();
    const err = await rejection(t.request(mkReq(), opts));
    expect(err.code).toBe('upstream_connect_failed');
    expect(err.retryable).toBe(true);
    expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_connect_failed']);
    t.close();
  });

  test('a peer that never sends SETTINGS -> connect timeout, retryable', async () => {
    await withRawServer('silent', async (t) => {
      const t0 = performance.now();
      const err = await rejection(t.request(mkReq(), mkOpts({ connectTimeoutMs: 200 })));
      expect(err.code).toBe('upstream_connect_failed');
      expect(err.retryable).toBe(true);
      expect(performance.now() - t0).toBeLessThan(2000);
      // An abort while waiting for the connection wins over the connect.
      const ac = new AbortController();
      const p = t.request(mkReq({ signal: ac.signal }), mkOpts({ connectTimeoutMs: 5000 }));
      ac.abort();
      expect((await rejection(p)).code).toBe('client_aborted');
    });
  }, 10_000);

  test('REFUSED_STREAM every time -> tried twice, then a retryable upstream_connect_failed', async () => {
    await withRawServer('refuse', async (t) => {
      const opts = mkOpts();
      const err = await rejection(t.request(mkReq(), opts));
      expect(err.code).toBe('upstream_connect_failed');
      expect(err.retryable).toBe(true);
      expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_connect_failed']);
    });
  }, 10_000);

  test('GOAWAY that excludes the stream every time -> tried once more on a new session, then retryable', async () => {
    await withRawServer('goaway-unprocessed', async (t, raw) => {
      const err = await rejection(t.request(mkReq(), mkOpts()));
      expect(err.code).toBe('upstream_connect_failed');
      expect(err.retryable).toBe(true);
      expect(raw.connections()).toBe(2); // the going-away session is not reused for the second try
      const err2 = await rejection(t.request(mkReq(), mkOpts()));
      expect(err2.retryable).toBe(true);
      expect(raw.connections()).toBe(4);
    });
  }, 10_000);

  /** A raw server whose first stream (of all connections) gets `first`, and every later one 200 `ok`. */
  async function onceThenOk(first: (id: number) => Buffer): Promise<RawH2Server> {
    let n = 0;
    return startRawH2Server('custom', (id) =>
      n++ === 0 ? first(id) : Buffer.concat([frame(0x1, 0x4, id, Uint8Array.of(0x88)), frame(0x0, 0x1, id, Buffer.from('ok'))]),
    );
  }

  test.each<[string, (id: number) => Buffer, number]>([
    ['REFUSED_STREAM', (id) => frame(0x3, 0, id, u32(0x7)), 1],
    ['GOAWAY below the stream (graceful close of the connection)', () => frame(0x7, 0, 0, Buffer.concat([u32(0), u32(0)])), 2],
  ])(
    'a body-less request the backend did not process (%s) is sent once more and succeeds',
    async (_name, first, connections) => {
      const raw = await onceThenOk(first);
      const t = new Http2Transport({ host: '127.0.0.1', port: raw.port });
      try {
        const opts = mkOpts();
        const res = await t.request(mkReq(), opts);
        expect(res.status).toBe(200);
        expect(await text(res)).toBe('ok');
        expect(opts.ends).toEqual([undefined]); // one onEnd, for the exchange that succeeded
        expect(raw.connections()).toBe(connections);
      } finally {
        t.close();
        await raw.close();
      }
    },
    10_000,
  );

  test('the second try of an unprocessed request waits only for what is left of the response-header timeout', async () => {
    let n = 0;
    // The first stream is refused after 400 ms; the second try is never answered.
    const raw = await startRawH2Server('custom', (id) => (n++ === 0 ? Bun.sleep(400).then(() => frame(0x3, 0, id, u32(0x7))) : new Uint8Array(0)));
    const t = new Http2Transport({ host: '127.0.0.1', port: raw.port });
    try {
      const t0 = performance.now();
      const err = await rejection(t.request(mkReq(), mkOpts({ responseHeaderTimeoutMs: 700 })));
      const took = performance.now() - t0;
      expect(err.code).toBe('upstream_timeout');
      expect(err.message).toContain('within 700 ms'); // the configured timeout, not what was left of it
      expect(n).toBe(2);
      expect(took).toBeGreaterThanOrEqual(650);
      expect(took).toBeLessThan(1000); // a fresh timeout for the second try would end it at 400 + 700 ms
    } finally {
      t.close();
      await raw.close();
    }
  }, 10_000);

  test('a second try that waited for a new connection past the deadline is not sent at all; others still use it', async () => {
    // Connection 1 takes the stream and answers with a GOAWAY after 400 ms; connection 2 finishes its SETTINGS
    // exchange only after 600 ms more, past the 700 ms header deadline of the request. A second request, sent at
    // 450 ms with the usual connect timeout, waits for connection 2 and is answered there.
    let conns = 0;
    const headersOn: number[] = [];
    const srv = net.createServer((sock) => {
      const c = ++conns;
      const delay = c === 1 ? 0 : 600;
      sock.on('error', () => {});
      // SETTINGS_MAX_CONCURRENT_STREAMS = 1: one stream per connection.
      setTimeout(() => sock.write(frame(0x4, 0, 0, Buffer.concat([Uint8Array.of(0, 3), u32(1)]))), delay);
      let buf = Buffer.alloc(0);
      let preface = false;
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (!preface) {
          if (buf.length < 24) return;
          buf = buf.subarray(24);
          preface = true;
        }
        while (buf.length >= 9) {
          const len = buf.readUIntBE(0, 3);
          if (buf.length < 9 + len) return;
          const type = buf[3] as number;
          const flags = buf[4] as number;
          const id = buf.readUInt32BE(5) & 0x7fffffff;
          buf = buf.subarray(9 + len);
          if (type === 0x4 && (flags & 0x1) === 0) setTimeout(() => sock.write(frame(0x4, 0x1, 0, new Uint8Array(0))), delay);
          if (type !== 0x1) continue;
          headersOn.push(c);
          if (c === 1) setTimeout(() => sock.write(frame(0x7, 0, 0, Buffer.concat([u32(0), u32(0)]))), 400);
          else sock.write(Buffer.concat([frame(0x1, 0x4, id, Uint8Array.of(0x88)), frame(0x0, 0x1, id, Buffer.from('ok'))]));
        }
      });
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
    const t = new Http2Transport({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port });
    try {
      const opts = mkOpts({ connectTimeoutMs: 2000, responseHeaderTimeoutMs: 700 });
      const t0 = performance.now();
      const first = rejection(t.request(mkReq(), opts));
      await Bun.sleep(450);
      const second = t.request(mkReq(), mkOpts({ connectTimeoutMs: 2000, responseHeaderTimeoutMs: 5000 }));
      const err = await first;
      expect(err.code).toBe('upstream_timeout');
      expect(err.message).toContain('within 700 ms');
      expect(performance.now() - t0).toBeLessThan(950); // sent anyway, it failed at about 1,015 ms
      expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_timeout']);
      const res = await second; // a connect timeout cut short by the first request's deadline failed it
      expect(await text(res)).toBe('ok');
      expect(headersOn).toEqual([1, 2]); // the first request on connection 1, the second on connection 2
      await Bun.sleep(200);
      expect(conns).toBe(2); // the first request stopped waiting at its deadline: no connection opened for it later
    } finally {
      t.close();
      srv.close();
    }
  }, 10_000);

  test('a request with a body the backend refused is not sent again by the transport (its body may be read)', async () => {
    const raw = await onceThenOk((id) => frame(0x3, 0, id, u32(0x7)));
    const t = new Http2Transport({ host: '127.0.0.1', port: raw.port });
    try {
      const opts = mkOpts();
      const body = new Response('payload').body as ReadableStream<Uint8Array>;
      const err = await rejection(t.request(mkReq({ method: 'POST', body, contentLength: 7 }), opts));
      expect(err.code).toBe('upstream_connect_failed');
      expect(err.retryable).toBe(true);
      expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_connect_failed']);
    } finally {
      t.close();
      await raw.close();
    }
  }, 10_000);

  test(`a body-less answer whose stream the backend never ends is over after NO_BODY_DRAIN_MS (${NO_BODY_DRAIN_MS} ms)`, async () => {
    // HPACK 0x89 is ":status: 204"; flags 0x4 = END_HEADERS only, and the stream is never ended.
    const raw = await startRawH2Server('custom', (id) => frame(0x1, 0x4, id, Uint8Array.of(0x89)));
    const t = new Http2Transport({ host: '127.0.0.1', port: raw.port });
    try {
      const opts = mkOpts();
      const t0 = performance.now();
      const res = await t.request(mkReq(), opts);
      expect(res.status).toBe(204);
      expect(res.body).toBeNull();
      await waitUntil(() => opts.ends.length === 1, NO_BODY_DRAIN_MS + 2000, 'the exchange to end');
      expect(opts.ends).toEqual([undefined]); // the client got its whole answer: not a failure
      expect(performance.now() - t0).toBeGreaterThanOrEqual(NO_BODY_DRAIN_MS - 50);
    } finally {
      t.close();
      await raw.close();
    }
  });

  test('trailers carrying a pseudo-header (RFC 9113 section 8.1: malformed) fail the body', async () => {
    const raw = await startRawH2Server('custom', (id) =>
      Buffer.concat([
        frame(0x1, 0x4, id, Uint8Array.of(0x88)), // :status 200, no content-length: streamed
        frame(0x0, 0, id, Buffer.from('hello')),
        frame(0x1, 0x4 | 0x1, id, Uint8Array.of(0x88)), // trailers with ":status: 200", END_STREAM
      ]),
    );
    const t = new Http2Transport({ host: '127.0.0.1', port: raw.port });
    try {
      const res = await t.request(mkReq(), mkOpts());
      const err = await rejection(new Response(streamOf(res)).text());
      expect(err.code).toBe('upstream_protocol_error');
    } finally {
      t.close();
      await raw.close();
    }
  });

  test('RST_STREAM after the head -> the body fails with upstream_reset', async () => {
    await withRawServer('reset-after-head', async (t) => {
      const opts = mkOpts();
      const res = await t.request(mkReq(), opts);
      expect(res.status).toBe(200);
      const err = await rejection(text(res));
      expect(err.code).toBe('upstream_reset');
      expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_reset']);
    });
  }, 10_000);

  test('a peer sending a malformed frame: the session fails its streams with upstream_protocol_error; the next request reconnects', async () => {
    await withRawServer('malformed', async (t, raw) => {
      const opts = mkOpts();
      const err = await rejection(t.request(mkReq(), opts));
      expect(err.code).toBe('upstream_protocol_error');
      expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_protocol_error']);
      await waitUntil(() => t.stats().connectionsOpen === 0, 2000, 'the failed session to be dropped');
      const err2 = await rejection(t.request(mkReq(), mkOpts()));
      expect(err2.code).toBe('upstream_protocol_error');
      expect(raw.connections()).toBe(2);
      expect(t.stats().connectionsOpened).toBe(2);
    });
  }, 10_000);

  test('a response header block in HEADERS + CONTINUATION frames', async () => {
    await withRawServer('continuation', async (t) => {
      const res = await t.request(mkReq(), mkOpts());
      expect(res.status).toBe(200);
      expect(res.headers).toEqual([['x-long', 'y'.repeat(100)]]);
      expect(await text(res)).toBe('ok');
    });
  }, 10_000);

  test('a PING from the backend is acknowledged with its payload', async () => {
    await withRawServer('ping', async (t, raw) => {
      const res = await t.request(mkReq(), mkOpts());
      expect(await text(res)).toBe('pong');
      expect(raw.pingAcks()).toEqual(['pingpong']);
    });
  }, 10_000);

  test('h2c to a backend that only speaks HTTP/1.1 -> retryable upstream_connect_failed', async () => {
    const h1 = Bun.serve({ hostname: '127.0.0.1', port: 0, development: false, fetch: () => new Response('h1') });
    try {
      const t = new Http2Transport({ host: '127.0.0.1', port: h1.port as number });
      const err = await rejection(t.request(mkReq(), mkOpts({ connectTimeoutMs: 3000 })));
      expect(err.code).toBe('upstream_connect_failed');
      expect(err.retryable).toBe(true);
      t.close();
    } finally {
      await h1.stop(true);
    }
  }, 10_000);

  test('a cancelled upload puts RST_STREAM(CANCEL) on the wire and never END_STREAM', async () => {
    await withRawServer('record', async (t, raw) => {
      let ctl: ReadableStreamDefaultController<Uint8Array> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          ctl = c;
          c.enqueue(new Uint8Array(3000));
        },
      });
      const p = t.request(mkReq({ method: 'POST', target: '/upload', body }), mkOpts());
      await waitUntil(() => raw.frames().some((f) => f.type === 'DATA' && f.length > 0), 3000, 'body bytes on the wire');
      ctl?.error(new Error('client went away'));
      expect((await rejection(p)).code).toBe('client_aborted');
      await waitUntil(() => raw.frames().some((f) => f.type === 'RST_STREAM'), 3000, 'RST_STREAM');
      const frames = raw.frames();
      expect(frames.find((f) => f.type === 'RST_STREAM')?.code).toBe(8);
      expect(frames.some((f) => f.endStream)).toBe(false);

      // The same for an abort signal while the body is still being sent.
      const ac = new AbortController();
      const before = frames.length;
      const p2 = t.request(
        mkReq({ method: 'POST', target: '/upload', signal: ac.signal, body: new ReadableStream({ start: (c) => c.enqueue(new Uint8Array(10)) }) }),
        mkOpts(),
      );
      await waitUntil(
        () =>
          raw
            .frames()
            .slice(before)
            .some((f) => f.type === 'DATA'),
        3000,
        'second body on the wire',
      );
      ac.abort();
      expect((await rejection(p2)).code).toBe('client_aborted');
      await waitUntil(
        () =>
          raw
            .frames()
            .slice(before)
            .some((f) => f.type === 'RST_STREAM'),
        3000,
        'second RST_STREAM',
      );
      expect(
        raw
          .frames()
          .slice(before)
          .some((f) => f.endStream),
      ).toBe(false);
    });
  }, 10_000);

  test('CONNECT and a content-length without a body are refused as bad_request', async () => {
    const t = new Http2Transport({ host: '127.0.0.1', port: 1 });
    expect((await rejection(t.request(mkReq({ method: 'CONNECT', target: 'x:443' }), mkOpts()))).code).toBe('bad_request');
    expect((await rejection(t.request(mkReq({ contentLength: 3 }), mkOpts()))).code).toBe('bad_request');
    t.close();
  });
});

describe('Http2Transport over TLS', () => {
  let cert: TestCertificate;
  let h2: H2Server;
  let h1: H2Server;
  beforeAll(async () => {
    cert = await makeTempCertificate();
    [h2, h1] = await Promise.all([
      startH2Server({ mode: 'h2', certPath: cert.cert, keyPath: cert.key }),
      startH2Server({ mode: 'h1-tls', certPath: cert.cert, keyPath: cert.key }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([h2.stop(), h1.stop()]);
  });

  test('verification on without the CA -> upstream_connect_failed', async () => {
    const t = new Http2Transport({ host: '127.0.0.1', port: h2.port, tls: { rejectUnauthorized: true } });
    const err = await rejection(t.request(mkReq(), mkOpts()));
    expect(err.code).toBe('upstream_connect_failed');
    expect(err.retryable).toBe(true);
    t.close();
  });

  test('verification on with the CA -> h2 works', async () => {
    const t = new Http2Transport({ host: '127.0.0.1', port: h2.port, tls: { rejectUnauthorized: true, ca: cert.certPem } });
    const res = await t.request(mkReq({ headers: [['host', 'secure.test']] }), mkOpts());
    const echo = JSON.parse(await text(res));
    expect(echo.scheme).toBe('https');
    expect(echo.authority).toBe('secure.test');
    expect(t.protocol).toBe('h2');
    t.close();
  });

  test('SNI is sent only when a server name is given', async () => {
    const plain = new Http2Transport({ host: '127.0.0.1', port: h2.port, tls: { rejectUnauthorized: true, ca: cert.certPem } });
    await text(await plain.request(mkReq(), mkOpts()));
    expect((await h2.stats()).serverNames.at(-1)).toBe('');
    plain.close();
    const t = new Http2Transport({
      host: '127.0.0.1',
      port: h2.port,
      tls: { rejectUnauthorized: true, ca: cert.certPem, serverName: 'localhost' },
    });
    await text(await t.request(mkReq(), mkOpts()));
    expect((await h2.stats()).serverNames.at(-1)).toBe('localhost');
    t.close();
  });

  test('verification off -> works with the self-signed certificate', async () => {
    const t = new Http2Transport({ host: '127.0.0.1', port: h2.port, tls: { rejectUnauthorized: false } });
    const res = await t.request(mkReq(), mkOpts());
    expect(res.status).toBe(200);
    await text(res);
    t.close();
  });

  test('HTTPS backend without h2 -> falls back to HTTP/1.1 and remembers it', async () => {
    const t = new Http2Transport({ host: '127.0.0.1', port: h1.port, tls: { rejectUnauthorized: true, ca: cert.certPem } });
    const before = await h1.stats();
    for (let i = 0; i < 3; i++) {
      const opts = mkOpts();
      const res = await t.request(
        mkReq({ method: 'POST', target: `/echo?i=${i}`, headers: [['host', 'fallback.test']], body: new Blob(['abc']).stream(), contentLength: 3 }),
        opts,
      );
      const echo = JSON.parse(await text(res));
      expect(echo.version).toBe('1.1');
      expect(echo.authority).toBe('fallback.test');
      expect(echo.bodyBytes).toBe(3);
      await waitUntil(() => opts.ends.length === 1, 2000, 'onEnd');
    }
    expect(t.protocol).toBe('http/1.1');
    const after = await h1.stats();
    // One ALPN probe connection plus the HTTP/1.1 pool's keep-alive connection.
    expect(after.sessions - before.sessions).toBeLessThanOrEqual(2);
    t.close();
  });

  test('a backend that switches between HTTP/1.1 and h2 is followed', async () => {
    // Starts as HTTP/1.1-only, becomes h2 on the same port, then HTTP/1.1 again.
    let backend = await startH2Server({ mode: 'h1-tls', certPath: cert.cert, keyPath: cert.key });
    const port = backend.port;
    const t = new Http2Transport({ host: '127.0.0.1', port, tls: { rejectUnauthorized: true, ca: cert.certPem } }, { protocolRecheckMs: 0 });
    try {
      await text(await t.request(mkReq(), mkOpts()));
      expect(t.protocol).toBe('http/1.1');
      await backend.stop();
      backend = await startH2Server({ mode: 'h2', certPath: cert.cert, keyPath: cert.key, port });
      const res = await t.request(mkReq(), mkOpts());
      expect(JSON.parse(await text(res)).scheme).toBe('https');
      expect(t.protocol).toBe('h2');
      await backend.stop();
      backend = await startH2Server({ mode: 'h1-tls', certPath: cert.cert, keyPath: cert.key, port });
      await waitUntil(() => t.stats().connectionsOpen === 0, 3000, 'client to notice the closed session');
      const again = await t.request(mkReq(), mkOpts());
      expect(JSON.parse(await text(again)).version).toBe('1.1');
      expect(t.protocol).toBe('http/1.1');
    } finally {
      t.close();
      await backend.stop();
    }
  }, 20_000);

  test('the HTTP/1.1 decision is re-checked after protocolRecheckMs', async () => {
    const t = new Http2Transport({ host: '127.0.0.1', port: h1.port, tls: { rejectUnauthorized: false } }, { protocolRecheckMs: 0 });
    await text(await t.request(mkReq(), mkOpts()));
    const before = await h1.stats();
    await text(await t.request(mkReq(), mkOpts()));
    const after = await h1.stats();
    expect(after.sessions - before.sessions).toBe(1); // the new probe; requests still work
    expect(t.protocol).toBe('http/1.1');
    t.close();
  });
});

/** A response header block (`:status` first, then `fields`, all as literals or static entries). */
function headBlock(status: string, fields: [string, string][]): Uint8Array {
  const w = new ByteWriter();
  encodeField(w, ':status', status);
  for (const [n, v] of fields) encodeField(w, n, v);
  return w.copy();
}

describe('Http2Transport: malformed responses (RFC 9113 section 8)', () => {
  /** What the raw server answers next: the head fields, whether the head ends the stream, and a body. */
  let answer: { fields: [string, string][]; endWithHead?: boolean; body?: string } = { fields: [] };
  let raw: Awaited<ReturnType<typeof startRawH2Server>>;
  let t: Http2Transport;
  beforeAll(async () => {
    raw = await startRawH2Server('custom', (id) => {
      const block = headBlock('200', answer.fields);
      const head = frame(0x1, 0x4 | (answer.endWithHead ? 0x1 : 0), id, block);
      if (answer.endWithHead) return head;
      return Buffer.concat([head, frame(0x0, 0x1, id, Buffer.from(answer.body ?? 'hello'))]);
    });
    t = new Http2Transport({ host: '127.0.0.1', port: raw.port });
  });
  afterAll(async () => {
    t.close();
    await raw.close();
  });

  test.each<[string, [string, string][], boolean]>([
    ['a non-numeric content-length', [['content-length', '5x']], false],
    ['a negative content-length', [['content-length', '-5']], false],
    [
      'two content-lengths that disagree',
      [
        ['content-length', '5'],
        ['content-length', '6'],
      ],
      false,
    ],
    ['connection: close', [['connection', 'close']], false],
    ['transfer-encoding: chunked', [['transfer-encoding', 'chunked']], false],
    ['keep-alive', [['keep-alive', 'timeout=5']], false],
    ['upgrade', [['upgrade', 'h2c']], false],
    ['te in a response', [['te', 'trailers']], false],
    ['a value with LF', [['x-a', 'a\nb']], false],
    ['a value with CR', [['x-a', 'a\rset-cookie: x=1']], false],
    ['a value with NUL', [['x-a', 'a\u0000b']], false],
    ['an upper-case name', [['X-Up', '1']], false],
    ['a name with a space', [['x a', '1']], false],
    ['a name with a colon inside', [['x:a', '1']], false],
    ['an empty name', [['', '1']], false],
    ['a name with a non-ASCII char', [['x\u00e9', '1']], false],
    ['a head that ends the stream despite content-length 5', [['content-length', '5']], true],
  ])('%s -> upstream_protocol_error, onEnd once, the session stays usable', async (_name, fields, endWithHead) => {
    answer = { fields, endWithHead };
    const opts = mkOpts();
    const err = await rejection(t.request(mkReq(), opts));
    expect(err.code).toBe('upstream_protocol_error');
    expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_protocol_error']);
    answer = {
      fields: [
        ['content-length', '5'],
        ['content-length', '5'],
      ],
    };
    const res = await t.request(mkReq(), mkOpts());
    expect(await text(res)).toBe('hello');
    expect(raw.connections()).toBe(1);
  });

  test('valid edge cases pass: repeated equal content-lengths, leading zeros, a HEAD whose head ends the stream with a content-length', async () => {
    answer = {
      fields: [
        ['content-length', '5'],
        ['content-length', '5'],
        ['x-empty', ''],
      ],
    };
    const res = await t.request(mkReq(), mkOpts());
    expect(res.headers).toEqual([
      ['content-length', '5'],
      ['content-length', '5'],
      ['x-empty', ''],
    ]);
    expect(await text(res)).toBe('hello');
    // Leading zeros are digits too (1*DIGIT): sixteen characters, one significant digit.
    answer = { fields: [['content-length', '0000000000000005']] };
    expect(await text(await t.request(mkReq(), mkOpts()))).toBe('hello');
    answer = { fields: [['content-length', '5']], endWithHead: true };
    const opts = mkOpts();
    const head = await t.request(mkReq({ method: 'HEAD' }), opts);
    expect(head.body).toBeNull();
    expect(opts.ends).toEqual([undefined]);
  });
});

describe('Http2Transport: HTTP_1_1_REQUIRED (RFC 9113 section 7)', () => {
  let cert: TestCertificate;
  beforeAll(async () => {
    cert = await makeTempCertificate();
  });

  /** Runs `body` with a TLS transport to a raw server that behaves as `behaviour` on h2 and answers HTTP/1.1 too. */
  async function withTlsRaw(
    behaviour: RawBehaviour,
    body: (t: Http2Transport, raw: RawH2Server) => Promise<void>,
    opts: Http2TransportOptions = {},
    respond?: (id: number) => Uint8Array | Promise<Uint8Array>,
  ): Promise<void> {
    const raw = await startRawH2Server(behaviour, respond, { tls: { cert: cert.certPem, key: cert.keyPem } });
    const t = new Http2Transport({ host: '127.0.0.1', port: raw.port, tls: { rejectUnauthorized: true, ca: cert.certPem } }, opts);
    try {
      await body(t, raw);
    } finally {
      t.close();
      await raw.close();
    }
  }

  const post = (target: string) => mkReq({ method: 'POST', target, body: new Blob(['abc']).stream(), contentLength: 3 });

  test('RST_STREAM(HTTP_1_1_REQUIRED): the request is sent again over HTTP/1.1, and later ones go there directly', async () => {
    await withTlsRaw('http1-required', async (t, raw) => {
      const opts = mkOpts();
      const res = await t.request(mkReq({ target: '/first' }), opts);
      expect(res.status).toBe(200);
      expect(await text(res)).toBe('h1 GET /first 0');
      expect(opts.ends).toEqual([undefined]); // one onEnd, for the answered second try
      expect(t.protocol).toBe('http/1.1');
      expect(raw.h2Requests()).toBe(1);
      // Later requests, with and without a body, go over HTTP/1.1 without trying h2 again.
      expect(await text(await t.request(post('/upload'), mkOpts()))).toBe('h1 POST /upload 3');
      expect(await text(await t.request(mkReq({ target: '/again' }), mkOpts()))).toBe('h1 GET /again 0');
      expect(raw.h2Requests()).toBe(1);
      expect(raw.http1Requests()).toBe(3);
    });
  });

  test('GOAWAY(HTTP_1_1_REQUIRED) excluding the stream: sent again over HTTP/1.1', async () => {
    await withTlsRaw('goaway-http1-required', async (t, raw) => {
      expect(await text(await t.request(mkReq({ target: '/x' }), mkOpts()))).toBe('h1 GET /x 0');
      expect(t.protocol).toBe('http/1.1');
      expect(raw.h2Requests()).toBe(1);
    });
  });

  test('a request with a body is not sent again (its body may be read): retryable, and the next one goes over HTTP/1.1', async () => {
    await withTlsRaw('http1-required', async (t, raw) => {
      const opts = mkOpts();
      const err = await rejection(t.request(post('/first'), opts));
      expect(err.code).toBe('upstream_connect_failed');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain('HTTP_1_1_REQUIRED');
      expect(opts.ends.map((e) => e?.code)).toEqual(['upstream_connect_failed']);
      expect(await text(await t.request(post('/second'), mkOpts()))).toBe('h1 POST /second 3');
      expect(raw.h2Requests()).toBe(1);
    });
  });

  test('after protocolRecheckMs only body-less requests try h2 again; an h2 answer ends the HTTP/1.1 decision', async () => {
    let n = 0;
    // The first two h2 requests are declined, later ones answered over h2 (0x88 is ":status: 200").
    const respond = (id: number) =>
      n++ < 2 ? frame(0x3, 0, id, u32(0xd)) : Buffer.concat([frame(0x1, 0x4, id, Uint8Array.of(0x88)), frame(0x0, 0x1, id, Buffer.from('h2'))]);
    await withTlsRaw(
      'custom',
      async (t, raw) => {
        expect(await text(await t.request(mkReq({ target: '/a' }), mkOpts()))).toBe('h1 GET /a 0');
        // A body always goes over HTTP/1.1 while the backend's request stands, even when the decision is due for a re-check.
        expect(await text(await t.request(post('/b'), mkOpts()))).toBe('h1 POST /b 3');
        expect(raw.h2Requests()).toBe(1);
        // A body-less request re-checks: declined again, sent again over HTTP/1.1.
        expect(await text(await t.request(mkReq({ target: '/c' }), mkOpts()))).toBe('h1 GET /c 0');
        expect(raw.h2Requests()).toBe(2);
        // The next re-check is answered over h2: from then on bodies go over h2 too.
        expect(await text(await t.request(mkReq({ target: '/d' }), mkOpts()))).toBe('h2');
        expect(await text(await t.request(post('/e'), mkOpts()))).toBe('h2');
        expect(raw.h2Requests()).toBe(4);
        expect(raw.http1Requests()).toBe(3);
        expect(t.protocol).toBe('h2');
      },
      { protocolRecheckMs: 0 },
      respond,
    );
  });

  test('a body-less request first excluded by a graceful GOAWAY, then declined on the new connection, is answered over HTTP/1.1', async () => {
    let n = 0;
    const respond = (id: number) => (n++ === 0 ? frame(0x7, 0, 0, Buffer.concat([u32(0), u32(0)])) : frame(0x3, 0, id, u32(0xd)));
    await withTlsRaw(
      'custom',
      async (t) => {
        const opts = mkOpts();
        expect(await text(await t.request(mkReq({ target: '/x' }), opts))).toBe('h1 GET /x 0');
        expect(opts.ends).toEqual([undefined]);
      },
      {},
      respond,
    );
  });

  test('declined on a transport that a reload closed meanwhile: retryable, and not told it is h2c', async () => {
    const respond = (id: number) => new Promise<Uint8Array>((r) => setTimeout(() => r(frame(0x3, 0, id, u32(0xd))), 300));
    const raw = await startRawH2Server('custom', respond, { tls: { cert: cert.certPem, key: cert.keyPem } });
    const t = new Http2Transport({ host: '127.0.0.1', port: raw.port, tls: { rejectUnauthorized: true, ca: cert.certPem } });
    try {
      const p = rejection(t.request(mkReq(), mkOpts()));
      await waitUntil(() => raw.h2Requests() === 1, 2000, 'the request on the wire');
      t.close(); // in-flight streams finish on a closed transport
      const err = await p;
      expect(err.code).toBe('upstream_connect_failed');
      expect(err.retryable).toBe(true);
      expect(err.message).not.toContain('h2c');
      expect(err.message).not.toContain('http://');
    } finally {
      t.close();
      await raw.close();
    }
  });

  test('h2c: no HTTP/1.1 to fall back to -> upstream_reset naming the fix, not sent again', async () => {
    await withRawServer('http1-required', async (t, raw) => {
      const err = await rejection(t.request(mkReq(), mkOpts()));
      expect(err.code).toBe('upstream_reset');
      expect(err.message).toContain('HTTP_1_1_REQUIRED');
      expect(err.message).toContain('http://');
      expect(raw.h2Requests()).toBe(1);
    });
  });
});
