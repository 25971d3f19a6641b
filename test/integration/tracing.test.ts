/**
 * OpenTelemetry tracing end to end: Spooky from its CLI, real backends, and a real OTLP/HTTP receiver that records
 * every exported span. Checks parent/child links, attributes, retries as several CLIENT spans, the trace context
 * the backend saw, sampling, reload, the flush at shutdown, and `trace_id` on access-log lines with tracing off
 * (the text format's `trace_id` is covered by `src/observability/access-log.test.ts`: the readiness line the
 * harness waits for is JSON only).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseTraceparent } from '../../src/observability/trace-context.ts';
import { failWith } from '../support/backend-status.ts';
import { OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.ts';
import { admin, type Backend, firstBackendStatus, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';
import { waitUntil } from '../support/wait.ts';

const TID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SID = '00f067aa0ba902b7';
const SERVER = 2;
const CLIENT = 3;

type Echo = { backend: string; headers: Record<string, string> };

function pools(a: Backend, b: Backend): string {
  return `upstream:
  traced:
    route: { path_prefix: /t }
    retries: { backoff: { base_ms: 0 }, budget: { ratio: 1, min_per_second: 100 } }
    health_check: { passive_failure_threshold: 0 }
    backends: [{ id: a, address: "${a.address}" }, { id: b, address: "${b.address}" }]
`;
}

async function accessLine(spooky: SpookyProcess, path: string): Promise<Record<string, unknown>> {
  return spooky.child.waitFor((r) => r.event === 'access' && r.path === path, 10_000, `access line for ${path}`);
}

/** Waits until the receiver has `n` spans of `traceId`; returns them. */
async function spansOf(receiver: OtlpReceiver, traceId: string, n: number): Promise<ReceivedSpan[]> {
  await waitUntil(() => receiver.trace(traceId).length >= n, 15_000, `${n} spans of trace ${traceId}`, 25);
  return receiver.trace(traceId);
}

describe('tracing on', () => {
  let a: Backend;
  let b: Backend;
  let receiver: OtlpReceiver;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    receiver = new OtlpReceiver();
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    spooky = await startSpooky(`tracing:
  enabled: true
  endpoint: "${receiver.url}"
  batch_delay_ms: 100
  service_name: spooky-it
  resource_attributes: { deployment.environment.name: test }
  headers: { x-api-key: it-secret }
${pools(a, b)}`);
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    receiver?.stop();
  });

  test("the SERVER span continues the client's trace, the CLIENT span is its child, and the backend's parent is the CLIENT span", async () => {
    const res = await request(`${spooky.url}/t/echo-1`, { headers: { traceparent: `00-${TID}-${SID}-01`, tracestate: 'vendor=x' } });
    expect(res.status).toBe(200);
    const echo = (await res.json()) as Echo;
    const seen = parseTraceparent(echo.headers.traceparent);
    expect(seen?.traceId).toBe(TID);
    expect(seen?.flags).toBe(1);
    expect(echo.headers.tracestate).toBe('vendor=x');

    const line = await accessLine(spooky, '/t/echo-1');
    expect(line.trace_id).toBe(TID);

    const spans = await spansOf(receiver, TID, 2);
    const server = spans.find((s) => s.kind === SERVER);
    const client = spans.find((s) => s.kind === CLIENT);
    expect(server?.parentSpanId).toBe(SID);
    expect(client?.parentSpanId).toBe(server?.spanId);
    expect(seen?.spanId).toBe(client?.spanId);
    expect(server?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'url.path': '/t/echo-1',
      'network.protocol.version': '3',
      'spooky.route': 'traced#0',
      'spooky.pool': 'traced',
      'spooky.backend': echo.backend,
      'spooky.attempts': 1,
    });
    expect(client?.attributes).toMatchObject({
      'spooky.backend': echo.backend,
      'spooky.attempt': 1,
      'http.response.status_code': 200,
      'server.address': '127.0.0.1',
    });
    expect(server?.resource).toMatchObject({ 'service.name': 'spooky-it', 'deployment.environment.name': 'test' });
    expect(receiver.requests[0]?.contentType).toBe('application/json');
    expect(receiver.requests[0]?.headers['x-api-key']).toBe('it-secret');

    const config = (await admin(spooky, '/config')).body as { config: { tracing: { headers: Record<string, string> } } };
    expect(config.config.tracing.headers['x-api-key']).toBe('[redacted]');
  });

  test('a retry shows as two CLIENT spans under one SERVER span; the backend saw the trace id of the access log', async () => {
    await failWith(a, 503);
    try {
      // Round robin over a (503) and b: one of two requests starts on a and is retried on b.
      for (let i = 0; i < 2; i++) {
        const res = await request(`${spooky.url}/t/retry-${i}`);
        expect(res.status).toBe(200);
        const echo = (await res.json()) as Echo;
        const line = await accessLine(spooky, `/t/retry-${i}`);
        expect(parseTraceparent(echo.headers.traceparent)?.traceId).toBe(line.trace_id as string);
      }
      const lines = await Promise.all([accessLine(spooky, '/t/retry-0'), accessLine(spooky, '/t/retry-1')]);
      const retried = lines.find((l) => l.attempts === 2);
      expect(retried).toBeDefined();
      const spans = await spansOf(receiver, retried?.trace_id as string, 3);
      const server = spans.find((s) => s.kind === SERVER);
      const clients = spans
        .filter((s) => s.kind === CLIENT)
        .sort((x, y) => Number(x.attributes['spooky.attempt']) - Number(y.attributes['spooky.attempt']));
      expect(server?.parentSpanId).toBe('');
      expect(server?.attributes).toMatchObject({ 'spooky.attempts': 2, 'spooky.backend': 'b', 'http.response.status_code': 200 });
      expect(clients.map((c) => [c.attributes['spooky.attempt'], c.attributes['spooky.backend'], c.attributes['http.response.status_code']])).toEqual(
        [
          [1, 'a', 503],
          [2, 'b', 200],
        ],
      );
      expect(clients.every((c) => c.parentSpanId === server?.spanId)).toBe(true);
      expect(clients[0]?.statusCode).toBe(2);
    } finally {
      await failWith(a, 0);
    }
  });

  test('after a reload to sample_ratio 0 nothing is exported for new traces, but backends still get the trace context', async () => {
    writeFileSync(
      spooky.configPath,
      readFileSync(spooky.configPath, 'utf8').replace('batch_delay_ms: 100', 'batch_delay_ms: 100\n  sample_ratio: 0'),
    );
    spooky.child.signal('SIGHUP');
    await spooky.child.waitFor((r) => r.event === 'audit' && r.result === 'ok' && r.generation === 2, 10_000, 'reload ok');

    const res = await request(`${spooky.url}/t/unsampled`);
    const echo = (await res.json()) as Echo;
    const line = await accessLine(spooky, '/t/unsampled');
    const seen = parseTraceparent(echo.headers.traceparent);
    expect(seen?.traceId).toBe(line.trace_id as string);
    expect(seen?.flags).toBe(0);

    // A client's sampled flag still wins (ParentBased); once that later trace has arrived, the unsampled one
    // would have arrived too had it been exported.
    const later = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    await (await request(`${spooky.url}/t/sampled-by-client`, { headers: { traceparent: `00-${later}-${SID}-01` } })).text();
    await spansOf(receiver, later, 2);
    expect(receiver.trace(line.trace_id as string)).toEqual([]);
  });
});

describe('flush at shutdown', () => {
  test('spans still queued (long batch delay) are exported on SIGTERM', async () => {
    const receiver = new OtlpReceiver();
    const a = await startBackend('a');
    const spooky = await startSpooky(`tracing:
  enabled: true
  endpoint: "${receiver.url}"
  batch_delay_ms: 600000
upstream:
  p:
    backends: [{ id: a, address: "${a.address}" }]
`);
    try {
      await (await request(`${spooky.url}/queued`)).text();
      const line = await accessLine(spooky, '/queued');
      expect(receiver.spans).toEqual([]);
      expect(await spooky.stop()).toBe(0);
      const spans = receiver.trace(line.trace_id as string);
      expect(spans.map((s) => s.kind).sort()).toEqual([SERVER, CLIENT]);
    } finally {
      await spooky.stop().catch(() => {});
      await a.stop();
      receiver.stop();
    }
  });
});

describe('refused while draining', () => {
  test('a request refused during the drain (503) has its SERVER span, in the client trace, exported at the flush', async () => {
    const receiver = new OtlpReceiver();
    const slow = await startBackend('slow');
    const spooky = await startSpooky(`shutdown: { drain_timeout_ms: 3000 }
tracing: { enabled: true, endpoint: "${receiver.url}", batch_delay_ms: 50 }
upstream:
  slow:
    backends: [{ id: slow, address: "${slow.address}" }]
`);
    try {
      const inFlight = request(`${spooky.url}/slow?ms=1500`).then((r) => r.text());
      await waitUntil(async () => (await firstBackendStatus(spooky))?.in_flight === 1, 3000, 'the slow request in flight');
      spooky.child.signal('SIGTERM');
      await spooky.child.waitFor((r) => r.event === 'audit' && r.action === 'shutdown', 2000, 'draining');
      const refused = await request(`${spooky.url}/slow?ms=10`, { headers: { traceparent: `00-${TID}-${SID}-01` } });
      expect(refused.status).toBe(503);
      await refused.arrayBuffer();
      await inFlight;
      expect(await spooky.child.exited).toBe(0);
      const line = spooky.child.lines.find((r) => r.event === 'access' && r.error === 'draining');
      expect(line?.trace_id).toBe(TID);
      const server = receiver.trace(TID).filter((sp) => sp.kind === SERVER);
      expect(server.map((sp) => [sp.parentSpanId, sp.attributes['http.response.status_code'], sp.attributes['spooky.error_code']])).toEqual([
        [SID, 503, 'draining'],
      ]);
    } finally {
      await spooky.stop().catch(() => {});
      await slow.stop();
      receiver.stop();
    }
  }, 20_000);
});

describe('tracing off', () => {
  let a: Backend;
  let b: Backend;
  let spooky: SpookyProcess;

  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    spooky = await startSpooky(pools(a, b));
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('a valid client traceparent reaches the backend unchanged and its trace id is on the log line', async () => {
    const tp = `00-${TID}-${SID}-01`;
    const res = await request(`${spooky.url}/t/off-1`, { headers: { traceparent: tp, tracestate: 'vendor=x' } });
    const echo = (await res.json()) as Echo;
    expect(echo.headers.traceparent).toBe(tp);
    expect(echo.headers.tracestate).toBe('vendor=x');
    expect((await accessLine(spooky, '/t/off-1')).trace_id).toBe(TID);
  });

  test('without one (or with an invalid one), the backend gets a fresh unsampled traceparent with the logged trace id', async () => {
    for (const [path, headers] of [
      ['/t/off-2', {}],
      ['/t/off-3', { traceparent: 'not-a-traceparent', tracestate: 'vendor=x' }],
    ] as const) {
      const res = await request(`${spooky.url}${path}`, { headers });
      const echo = (await res.json()) as Echo;
      const seen = parseTraceparent(echo.headers.traceparent);
      expect(seen?.flags).toBe(0);
      expect(echo.headers.tracestate).toBeUndefined();
      expect((await accessLine(spooky, path)).trace_id).toBe(seen?.traceId as string);
    }
  });
});
