/**
 * A real OTLP/HTTP trace receiver for tests: a Bun server on 127.0.0.1 (port 0) that accepts
 * `POST /v1/traces` with a JSON `ExportTraceServiceRequest`, answers 200 `{}`, and keeps every span it got,
 * flattened with its resource and attributes as plain values.
 */
import type { Server } from 'bun';

/** One received span, attributes decoded. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty string for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP span kind: 2 = SERVER, 3 = CLIENT. */
  kind: number;
  attributes: Record<string, unknown>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, unknown>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };
type OtlpSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: KeyValue[];
  status?: { code?: number };
};
type ExportRequest = { resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[] };

function decode(v: AnyValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return undefined;
}

function attrs(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = decode(kv.value);
  return out;
}

/** A running receiver. */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Export requests received (with their headers). */
  readonly requests: { contentType: string | null; headers: Record<string, string> }[] = [];
  private readonly server: Server<unknown>;

  constructor() {
    this.server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      development: false,
      fetch: async (req) => {
        const url = new URL(req.url);
        if (req.method !== 'POST' || url.pathname !== '/v1/traces') return new Response('not found', { status: 404 });
        this.requests.push({ contentType: req.headers.get('content-type'), headers: Object.fromEntries(req.headers) });
        const body = (await req.json()) as ExportRequest;
        for (const rs of body.resourceSpans ?? []) {
          const resource = attrs(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              this.spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId ?? '',
                name: s.name,
                kind: s.kind,
                attributes: attrs(s.attributes),
                statusCode: s.status?.code ?? 0,
                resource,
              });
            }
          }
        }
        return Response.json({});
      },
    });
  }

  /** `http://127.0.0.1:port/v1/traces`. */
  get url(): string {
    return `http://127.0.0.1:${this.server.port}/v1/traces`;
  }

  /** Spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  /** Stops the server. */
  stop(): void {
    void this.server.stop(true);
  }
}
