import { describe, expect, test } from 'bun:test';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { waitUntil } from '../../test/support/wait.ts';
import { loadConfigText } from '../config/load.ts';
import { redactConfig } from '../config/redact.ts';
import type { TracingConfig } from '../config/types.ts';
import type { RequestRecord } from './access-log.ts';
import { PASS_THROUGH_TRACING, parseTraceparent } from './trace-context.ts';
import { OtelTracing, TracingController } from './tracing.ts';

const silent = pino({ level: 'silent' });
const TID = '0af7651916cd43dd8448eb211c80319c';
const SID = 'b7ad6b7169203331';

function config(over: Partial<TracingConfig> = {}): TracingConfig {
  return {
    enabled: true,
    endpoint: 'http://127.0.0.1:1/v1/traces',
    sample_ratio: 1,
    service_name: 'spooky-test',
    resource_attributes: { 'deployment.environment.name': 'test' },
    headers: {},
    export_timeout_ms: 1000,
    batch_delay_ms: 10,
    max_batch_size: 512,
    max_queue_size: 2048,
    ...over,
  };
}

function record(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    request_id: 'r1',
    client: '10.0.0.9',
    protocol: 'h3',
    method: 'GET',
    host: 'api.test',
    path: '/v1/x',
    status: 200,
    bytes_in: 0,
    bytes_out: 10,
    duration_ms: 1,
    attempts: 1,
    route: 'api#0',
    pool: 'api',
    backend: 'b',
    ...over,
  };
}

const attempt = (n: number, backend: string) => ({
  pool: 'api',
  backend,
  route: 'api#0',
  attempt: n,
  url: new URL('http://10.0.0.1:8080'),
  method: 'GET',
});

/** Runs one request with the given attempt outcomes; returns the traceparents sent to the backends and the spans. */
async function run(
  cfg: TracingConfig,
  incoming: Record<string, string>,
  outcomes: { backend: string; status: number; error?: string }[],
  final: Partial<RequestRecord>,
): Promise<{ sent: string[]; spans: ReadableSpan[]; traceId: string }> {
  const exporter = new InMemorySpanExporter();
  const tracing = new OtelTracing(cfg, silent, exporter);
  const t = tracing.start(new Headers(incoming), 'GET', 'h3');
  const sent: string[] = [];
  outcomes.forEach((o, i) => {
    const headers = t.attemptStart([['host', 'api.test'], ...Object.entries(incoming)], attempt(i + 1, o.backend));
    expect(headers.filter(([n]) => n === 'traceparent')).toHaveLength(1);
    sent.push(headers.find(([n]) => n === 'traceparent')?.[1] ?? '');
    t.attemptEnd({ pool: 'api', backend: o.backend, attempt: i + 1, status: o.status, upstream_ms: 1, ...(o.error ? { error: o.error } : {}) });
  });
  t.end(record({ attempts: outcomes.length, ...final }));
  expect(tracing.active).toBe(0);
  await tracing.flush();
  return { sent, spans: exporter.getFinishedSpans(), traceId: t.traceId };
}

describe('OtelTracing', () => {
  test('a SERVER span whose parent is the client span, one CLIENT span per attempt, the backend sees the CLIENT span', async () => {
    const { sent, spans, traceId } = await run(
      config(),
      { traceparent: `00-${TID}-${SID}-01`, tracestate: 'vendor=1' },
      [
        { backend: 'a', status: 0, error: 'upstream_connect_failed' },
        { backend: 'b', status: 200 },
      ],
      { backend: 'b' },
    );
    expect(traceId).toBe(TID);
    const server = spans.find((s) => s.kind === SpanKind.SERVER);
    const clients = spans.filter((s) => s.kind === SpanKind.CLIENT);
    expect(server?.parentSpanContext?.spanId).toBe(SID);
    expect(clients).toHaveLength(2);
    for (const c of clients) {
      expect(c.spanContext().traceId).toBe(TID);
      expect(c.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    }
    expect(sent.map((v) => parseTraceparent(v)?.spanId)).toEqual(clients.map((c) => c.spanContext().spanId));
    expect(sent.every((v) => v.endsWith('-01'))).toBe(true);
    const [first, second] = clients;
    expect(first?.attributes).toMatchObject({
      'spooky.attempt': 1,
      'spooky.backend': 'a',
      'error.type': 'upstream_connect_failed',
      'server.port': 8080,
    });
    expect(first?.status.code).toBe(SpanStatusCode.ERROR);
    expect(second?.attributes).toMatchObject({
      'spooky.attempt': 2,
      'http.request.resend_count': 1,
      'http.response.status_code': 200,
      'spooky.route': 'api#0',
    });
    expect(server?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'network.protocol.version': '3',
      'url.path': '/v1/x',
      'client.address': '10.0.0.9',
      'spooky.route': 'api#0',
      'spooky.pool': 'api',
      'spooky.backend': 'b',
      'spooky.attempts': 2,
    });
    expect(server?.resource.attributes).toMatchObject({ 'service.name': 'spooky-test', 'deployment.environment.name': 'test' });
  });

  test('the client tracestate goes on to the backend', async () => {
    const exporter = new InMemorySpanExporter();
    const t = new OtelTracing(config(), silent, exporter).start(
      new Headers({ traceparent: `00-${TID}-${SID}-01`, tracestate: 'vendor=1' }),
      'GET',
      'h2',
    );
    const headers = t.attemptStart([['tracestate', 'vendor=1']], attempt(1, 'a'));
    expect(headers.filter(([n]) => n === 'tracestate')).toEqual([['tracestate', 'vendor=1']]);
  });

  test('a client tracestate that does not parse is dropped, not sent on as an empty header', async () => {
    const exporter = new InMemorySpanExporter();
    const bad = 'not a valid = tracestate,,=';
    const t = new OtelTracing(config(), silent, exporter).start(new Headers({ traceparent: `00-${TID}-${SID}-01`, tracestate: bad }), 'GET', 'h2');
    const headers = t.attemptStart([['tracestate', bad]], attempt(1, 'a'));
    expect(headers.filter(([n]) => n === 'tracestate').every(([, v]) => v.length > 0)).toBe(true);
    expect(headers.some(([n]) => n === 'traceparent')).toBe(true);
  });

  test.each([
    ['a root with ratio 0: nothing recorded, an unsampled context still propagated', 0, {}, false],
    ['a root with ratio 1: recorded', 1, {}, true],
    ['ratio 0, client sampled: the client decides (recorded)', 0, { traceparent: `00-${TID}-${SID}-01` }, true],
    ['ratio 1, client not sampled: the client decides (not recorded)', 1, { traceparent: `00-${TID}-${SID}-00` }, false],
  ])('sampling: %s', async (_name, ratio, incoming: Record<string, string>, recorded) => {
    const { sent, spans, traceId } = await run(config({ sample_ratio: ratio }), incoming, [{ backend: 'a', status: 200 }], {});
    expect(spans.length > 0).toBe(recorded);
    if (recorded) expect(spans).toHaveLength(2);
    const tp = parseTraceparent(sent[0]);
    expect(tp?.traceId).toBe(traceId);
    expect(tp?.flags).toBe(recorded ? 1 : 0);
    if (incoming.traceparent) expect(traceId).toBe(TID);
  });

  test('an invalid client traceparent starts a new trace', async () => {
    const { spans, traceId } = await run(config(), { traceparent: 'nonsense' }, [{ backend: 'a', status: 200 }], {});
    expect(traceId).not.toBe(TID);
    expect(spans.find((s) => s.kind === SpanKind.SERVER)?.parentSpanContext).toBeUndefined();
  });

  test('a 5xx answer marks the SERVER span as an error; a request refused before any attempt has only the SERVER span', async () => {
    const failed = await run(config(), {}, [{ backend: 'a', status: 502 }], { status: 502 });
    const server = failed.spans.find((s) => s.kind === SpanKind.SERVER);
    expect(server?.status.code).toBe(SpanStatusCode.ERROR);
    expect(server?.attributes['error.type']).toBe('502');
    const refused = await run(config(), {}, [], {
      status: 404,
      error: 'no_route',
      attempts: 0,
      route: undefined,
      pool: undefined,
      backend: undefined,
    });
    expect(refused.spans).toHaveLength(1);
    expect(refused.spans[0]?.attributes).toMatchObject({
      'http.response.status_code': 404,
      'spooky.error_code': 'no_route',
      'error.type': 'no_route',
    });
    expect(refused.spans[0]?.status.code).toBe(SpanStatusCode.UNSET);
  });

  test('a method outside the known set gives spans named HTTP with http.request.method _OTHER (semantic conventions)', async () => {
    // Over HTTP/1.1 and HTTP/2 any token is a method: as span names they would be unbounded.
    const exporter = new InMemorySpanExporter();
    const tracing = new OtelTracing(config(), silent, exporter);
    for (const method of ['X-RANDOM-0a1b2c', 'PATCH']) {
      const t = tracing.start(new Headers(), method, 'h1.1');
      t.attemptStart([['host', 'api.test']], { ...attempt(1, 'a'), method });
      t.attemptEnd({ pool: 'api', backend: 'a', attempt: 1, status: 200, upstream_ms: 1 });
      t.end(record({ method }));
    }
    await tracing.flush();
    const seen = exporter.getFinishedSpans().map((s) => [s.name, s.attributes['http.request.method'], s.attributes['http.request.method_original']]);
    expect(seen).toEqual([
      ['HTTP', '_OTHER', 'X-RANDOM-0a1b2c'],
      ['HTTP', '_OTHER', 'X-RANDOM-0a1b2c'],
      ['PATCH', 'PATCH', undefined],
      ['PATCH', 'PATCH', undefined],
    ]);
  });
});

/** Keeps every exported span; `stopped` once shut down. */
class RecordingExporter implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  stopped = false;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.spans.push(...spans);
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {
    this.stopped = true;
  }
}

test('an unreachable collector: the export fails, one trace_export_failed line is logged, requests go on', async () => {
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
  const tracing = new OtelTracing(config({ endpoint: 'http://127.0.0.1:1/v1/traces', export_timeout_ms: 2000 }), log);
  for (let i = 0; i < 3; i++) {
    const t = tracing.start(new Headers(), 'GET', 'h3');
    expect(t.attemptStart([], attempt(1, 'a')).some(([n]) => n === 'traceparent')).toBe(true);
    t.end(record());
  }
  await tracing.flush().catch(() => {});
  await waitUntil(() => lines.some((l) => l.includes('"trace_export_failed"')), 10_000, 'export failure logged');
  const rec = JSON.parse(lines.find((l) => l.includes('"trace_export_failed"')) ?? '{}') as Record<string, unknown>;
  expect(rec).toMatchObject({ level: 40, endpoint: 'http://127.0.0.1:1/v1/traces', spans: 6 }); // 3 SERVER + 3 CLIENT spans (an attempt still open at the end is ended too)
  await tracing.shutdown(2000);
});

describe('TracingController', () => {
  function controller() {
    const built: { cfg: TracingConfig; exporter: RecordingExporter; tracing: OtelTracing }[] = [];
    const c = new TracingController(silent, (cfg, log) => {
      const exporter = new RecordingExporter();
      const tracing = new OtelTracing(cfg, log, exporter);
      built.push({ cfg, exporter, tracing });
      return tracing;
    });
    return { c, built };
  }

  test('off: trace ids only; on: spans; an unchanged section keeps its exporter; off again: trace ids only', () => {
    const { c, built } = controller();
    c.update(config({ enabled: false }));
    expect(c.enabled).toBe(false);
    expect(c.start(new Headers(), 'GET', 'h3').traceId).toMatch(/^[0-9a-f]{32}$/);
    c.update(config());
    c.update(config());
    expect(built).toHaveLength(1);
    expect(c.enabled).toBe(true);
    c.update(config({ sample_ratio: 0.5 }));
    expect(built).toHaveLength(2);
    c.update(config({ enabled: false }));
    expect(c.enabled).toBe(false);
    expect(built).toHaveLength(2);
  });

  test('a reload keeps the old exporter until the requests that started on it have ended, then flushes and stops it', async () => {
    const { c, built } = controller();
    c.update(config({ service_name: 'before' }));
    const inFlight = c.start(new Headers(), 'GET', 'h3');
    c.update(config({ service_name: 'after' }));
    const [old, current] = built;
    if (!old || !current) throw new Error('not built');
    expect(old.exporter.stopped).toBe(false);
    c.start(new Headers(), 'GET', 'h3').end(record());
    inFlight.end(record());
    await waitUntil(() => old.exporter.stopped, 5000, 'old exporter stopped');
    expect(old.exporter.spans.map((s) => s.resource.attributes['service.name'])).toEqual(['before']);
    await c.shutdown();
    expect(current.exporter.stopped).toBe(true);
    expect(current.exporter.spans.map((s) => s.resource.attributes['service.name'])).toEqual(['after']);
    expect(c.enabled).toBe(false);
  });
});

describe('config', () => {
  const BASE = 'listen: { tls: { cert: c.pem, key: k.pem } }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n';

  test('defaults: off, local collector, ratio 1, service spooky', () => {
    const r = loadConfigText(BASE, 'spooky.yaml', '/srv');
    if (!r.ok) throw new Error('config refused');
    expect(r.config.tracing).toEqual({
      enabled: false,
      endpoint: 'http://127.0.0.1:4318/v1/traces',
      sample_ratio: 1,
      service_name: 'spooky',
      resource_attributes: {},
      headers: {},
      export_timeout_ms: 10000,
      batch_delay_ms: 5000,
      max_batch_size: 512,
      max_queue_size: 2048,
    });
  });

  test('every field read; exporter headers redacted in /config', () => {
    const r = loadConfigText(
      `${BASE}tracing:\n  enabled: true\n  endpoint: "https://otel.example:4318/v1/traces"\n  sample_ratio: 0.25\n  service_name: edge\n  resource_attributes: { region: eu, shard: 3 }\n  headers: { x-api-key: s3cret, x-team: edge }\n  export_timeout_ms: 500\n  batch_delay_ms: 100\n  max_batch_size: 64\n  max_queue_size: 256\n`,
      'spooky.yaml',
      '/srv',
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.tracing).toMatchObject({
      enabled: true,
      sample_ratio: 0.25,
      service_name: 'edge',
      resource_attributes: { region: 'eu', shard: 3 },
      max_queue_size: 256,
    });
    const text = JSON.stringify(redactConfig(r.config));
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('"edge"}');
    expect((redactConfig(r.config).tracing as { headers: Record<string, string> }).headers).toEqual({
      'x-api-key': '[redacted]',
      'x-team': '[redacted]',
    });
  });

  test.each([
    ['sample_ratio: 1.5', 'sample_ratio'],
    ['endpoint: "ftp://x/v1/traces"', 'endpoint'],
    ['endpoint: "collector:4318"', 'endpoint'],
    ['headers: { "bad name": x }', 'headers'],
    ['batch_delay_ms: 0', 'batch_delay_ms'],
    ['sampel_ratio: 1', 'sampel_ratio'],
  ])('refused: %s', (line, at) => {
    const r = loadConfigText(`${BASE}tracing:\n  ${line}\n`, 'spooky.yaml', '/srv');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.some((e) => e.path.includes(`tracing.${at}`))).toBe(true);
  });

  test('the pass-through tracing is what the handler uses without a controller', () => {
    expect(PASS_THROUGH_TRACING.start(new Headers({ traceparent: `00-${TID}-${SID}-01` })).traceId).toBe(TID);
  });
});
