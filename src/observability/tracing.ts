/**
 * OpenTelemetry tracing of the request path: a SERVER span per request and a CLIENT span per upstream attempt,
 * W3C `traceparent`/`tracestate` accepted from clients and sent to backends (the backend's parent is the
 * CLIENT span of its attempt), exported in batches over OTLP/HTTP (JSON). With `tracing.enabled: false` the
 * {@link PassThroughTracing} of `trace-context.ts` only keeps trace ids.
 *
 * {@link TracingController} is what the runtime wires into the handler: it applies `tracing` from each config
 * generation (a changed section builds a new exporter; the old one is flushed and shut down once the requests
 * that started on it have ended) and flushes on shutdown.
 */
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import { endpointForDisplay } from '../config/redact.ts';
import type { TracingConfig } from '../config/types.ts';
import type { HeaderLookup } from '../lib/request-fields.ts';
import type { RequestRecord } from './access-log.ts';
import type { AttemptRecord } from './events.ts';
import type { Logger } from './logger.ts';
import { type AttemptStart, PASS_THROUGH_TRACING, type RequestTrace, type Tracing, withTraceHeaders } from './trace-context.ts';

const propagator = new W3CTraceContextPropagator();

const headersGetter: TextMapGetter<HeaderLookup> = {
  keys: (h) => [...h.keys()],
  get: (h, key) => h.get(key) ?? undefined,
};

const pairsSetter: TextMapSetter<[string, string][]> = {
  set: (carrier, key, value) => {
    // An incoming `tracestate` that failed to parse leaves an empty state: send no header rather than an empty one.
    if (value.length > 0) carrier.push([key, value]);
  },
};

const PROTOCOL_VERSION: Record<string, string> = { h3: '3', h2: '2', 'h1.1': '1.1' };

/** The methods the HTTP semantic conventions call known (RFC 9110 and PATCH); any other is `_OTHER`. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

/** A span's name: its method, or `HTTP` for a method outside the known set (span names must stay few). */
function spanName(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'HTTP';
}

/** `http.request.method`, and `http.request.method_original` when the method is not a known one. */
function methodAttributes(method: string): Attributes {
  return KNOWN_METHODS.has(method)
    ? { [ATTR_HTTP_REQUEST_METHOD]: method }
    : { [ATTR_HTTP_REQUEST_METHOD]: '_OTHER', [ATTR_HTTP_REQUEST_METHOD_ORIGINAL]: method };
}

/** One traced request: its SERVER span and the CLIENT span of the attempt in progress. */
class SpanTrace implements RequestTrace {
  readonly traceId: string;
  private readonly serverContext: Context;
  private client: Span | undefined;

  constructor(
    private readonly tracer: Tracer,
    private readonly server: Span,
    private readonly done: () => void,
  ) {
    this.traceId = server.spanContext().traceId;
    this.serverContext = trace.setSpan(ROOT_CONTEXT, server);
  }

  attemptStart(headers: [string, string][], a: AttemptStart): [string, string][] {
    this.client?.end();
    const attributes: Attributes = {
      ...methodAttributes(a.method),
      [ATTR_SERVER_ADDRESS]: a.url.hostname,
      [ATTR_SERVER_PORT]: Number(a.url.port) || (a.url.protocol === 'https:' ? 443 : 80),
      [ATTR_NETWORK_PROTOCOL_NAME]: 'http',
      'spooky.route': a.route,
      'spooky.pool': a.pool,
      'spooky.backend': a.backend,
      'spooky.attempt': a.attempt,
    };
    if (a.attempt > 1) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = a.attempt - 1;
    const span = this.tracer.startSpan(spanName(a.method), { kind: SpanKind.CLIENT, attributes }, this.serverContext);
    this.client = span;
    const context: [string, string][] = [];
    propagator.inject(trace.setSpan(ROOT_CONTEXT, span), context, pairsSetter);
    return withTraceHeaders(headers, context);
  }

  attemptEnd(a: AttemptRecord): void {
    const span = this.client;
    if (!span) return;
    this.client = undefined;
    if (a.status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, a.status);
    if (a.error !== undefined) {
      span.setAttributes({ [ATTR_ERROR_TYPE]: a.error, 'spooky.error_code': a.error });
      span.setStatus({ code: SpanStatusCode.ERROR, message: a.error });
    } else if (a.status >= 400) {
      span.setAttribute(ATTR_ERROR_TYPE, String(a.status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  end(rec: RequestRecord): void {
    this.client?.end();
    this.client = undefined;
    const s = this.server;
    const attributes: Attributes = {
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: rec.status,
      [ATTR_URL_PATH]: rec.path,
      [ATTR_SERVER_ADDRESS]: rec.host,
      [ATTR_CLIENT_ADDRESS]: rec.client,
      'spooky.attempts': rec.attempts,
      'spooky.request_id': rec.request_id,
    };
    if (rec.route !== undefined) attributes['spooky.route'] = rec.route;
    if (rec.pool !== undefined) attributes['spooky.pool'] = rec.pool;
    if (rec.backend !== undefined) attributes['spooky.backend'] = rec.backend;
    if (rec.error !== undefined) {
      attributes[ATTR_ERROR_TYPE] = rec.error;
      attributes['spooky.error_code'] = rec.error;
    } else if (rec.status >= 500) attributes[ATTR_ERROR_TYPE] = String(rec.status);
    s.setAttributes(attributes);
    // Semantic conventions: a SERVER span is an error for 5xx only (4xx are the client's doing).
    if (rec.status >= 500) s.setStatus({ code: SpanStatusCode.ERROR, ...(rec.error ? { message: rec.error } : {}) });
    s.end();
    this.done();
  }
}

/**
 * Logs failed exports (the first, then at most one line a minute with the count since), so a collector that is
 * down is visible without flooding the log; never throws into the SDK.
 */
class LoggingExporter implements SpanExporter {
  private failures = 0;
  private lastLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly inner: SpanExporter,
    private readonly log: Logger,
    private readonly endpoint: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) {
        this.failures++;
        const now = performance.now();
        if (now - this.lastLog >= 60_000) {
          this.lastLog = now;
          this.log.warn(
            { event: 'trace_export_failed', endpoint: this.endpoint, spans: spans.length, failures: this.failures, err: result.error?.message },
            'trace export failed; spans dropped',
          );
          this.failures = 0;
        }
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Tracing on: an OpenTelemetry tracer provider with a batch processor and an OTLP/HTTP exporter. */
export class OtelTracing implements Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  /** Requests started here and not yet ended. */
  active = 0;
  private readonly release = (): void => {
    this.active--;
    if (this.active === 0) this.onIdle?.();
  };
  /** Called when {@link active} drops to 0 (set once this tracing is retired). */
  onIdle: (() => void) | undefined;

  /** A tracer provider with a batch exporter for `config`; export failures are logged to `log`. */
  constructor(
    readonly config: TracingConfig,
    log: Logger,
    /** The exporter; default OTLP/HTTP JSON to `config.endpoint` (injected in tests). */
    exporter?: SpanExporter,
  ) {
    const otlp = exporter ?? new OTLPTraceExporter({ url: config.endpoint, headers: { ...config.headers }, timeoutMillis: config.export_timeout_ms });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ ...config.resource_attributes, [ATTR_SERVICE_NAME]: config.service_name }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sample_ratio) }),
      spanProcessors: [
        new BatchSpanProcessor(new LoggingExporter(otlp, log, endpointForDisplay(config.endpoint)), {
          maxQueueSize: config.max_queue_size,
          maxExportBatchSize: Math.min(config.max_batch_size, config.max_queue_size),
          scheduledDelayMillis: config.batch_delay_ms,
          exportTimeoutMillis: config.export_timeout_ms,
        }),
      ],
    });
    this.tracer = this.provider.getTracer('spooky');
  }

  /** Starts the SERVER span of a request, as a child of the client's `traceparent` when it sent a valid one. */
  start(headers: HeaderLookup, method: string, protocol: string): RequestTrace {
    const parent = headers.has('traceparent') ? propagator.extract(ROOT_CONTEXT, headers, headersGetter) : ROOT_CONTEXT;
    const span = this.tracer.startSpan(
      spanName(method),
      {
        kind: SpanKind.SERVER,
        attributes: {
          ...methodAttributes(method),
          [ATTR_URL_SCHEME]: 'https',
          [ATTR_NETWORK_PROTOCOL_NAME]: 'http',
          [ATTR_NETWORK_PROTOCOL_VERSION]: PROTOCOL_VERSION[protocol] ?? protocol,
        },
      },
      parent,
    );
    this.active++;
    return new SpanTrace(this.tracer, span, this.release);
  }

  /** Exports every finished span now. */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  /** Exports what is queued and stops; waits at most `timeoutMs`. */
  async shutdown(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.provider.shutdown().catch(() => {}), expired]);
    clearTimeout(timer);
  }
}

/** Structural equality of two tracing sections (plain data). */
function sameConfig(a: TracingConfig, b: TracingConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The handler's {@link Tracing}: pass-through while `tracing.enabled` is false, else the current
 * {@link OtelTracing}. `update()` applies a (re)loaded config; `shutdown()` flushes on exit.
 */
export class TracingController implements Tracing {
  private current: Tracing = PASS_THROUGH_TRACING;
  private otel: OtelTracing | undefined;

  /** Tracing off until {@link TracingController.update} gets an enabled config. */
  constructor(
    private readonly log: Logger,
    /** Builds the tracing for an enabled config (injected in tests). */
    private readonly build: (cfg: TracingConfig, log: Logger) => OtelTracing = (cfg, log) => new OtelTracing(cfg, log),
  ) {}

  /** The tracing of a request (delegates to the current implementation). */
  start(headers: HeaderLookup, method: string, protocol: string): RequestTrace {
    return this.current.start(headers, method, protocol);
  }

  /** True while spans are being recorded and exported. */
  get enabled(): boolean {
    return this.otel !== undefined;
  }

  /**
   * Applies the `tracing` section of a config: nothing happens when it is unchanged; otherwise new requests
   * use the new settings at once, and the previous exporter is flushed and shut down when the last request
   * that started on it has ended (at the latest 30 s after the reload).
   */
  update(cfg: TracingConfig): void {
    const old = this.otel;
    if (old ? cfg.enabled && sameConfig(old.config, cfg) : !cfg.enabled) return;
    if (cfg.enabled) {
      this.otel = this.build(cfg, this.log);
      this.current = this.otel;
      this.log.info(
        {
          event: 'tracing',
          enabled: true,
          endpoint: endpointForDisplay(cfg.endpoint),
          sample_ratio: cfg.sample_ratio,
          service_name: cfg.service_name,
        },
        'tracing on: exporting spans over OTLP/HTTP',
      );
    } else {
      this.otel = undefined;
      this.current = PASS_THROUGH_TRACING;
      this.log.info({ event: 'tracing', enabled: false }, 'tracing off: trace ids only');
    }
    if (old) this.retire(old);
  }

  private retire(old: OtelTracing): void {
    const timeoutMs = old.config.export_timeout_ms;
    let stopped = false;
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      void old.shutdown(timeoutMs);
    };
    if (old.active === 0) {
      stop();
      return;
    }
    old.onIdle = stop;
    // Requests that outlive the reload by much (long downloads) lose their spans rather than keep the old exporter.
    setTimeout(stop, 30_000).unref();
  }

  /** Graceful shutdown: exports every finished span (waits at most `export_timeout_ms`). */
  async shutdown(): Promise<void> {
    const otel = this.otel;
    this.otel = undefined;
    this.current = PASS_THROUGH_TRACING;
    if (otel) await otel.shutdown(otel.config.export_timeout_ms);
  }
}
