/**
 * Per-route body sampling on the request path. For a share of requests (`body_sampling.ratio`, decided once
 * per request with an injected random source), the request and/or response body is watched while it streams
 * ({@link teeBody}): at most `max_bytes` are copied, every byte is counted, and when the body is over one
 * `body_sample` record is written. Nothing is buffered beyond the cap, nothing waits for the record, and the
 * proxied stream keeps its backpressure and cancellation.
 *
 * A request record is written when the request body has been read to the end, failed or was cancelled (at
 * once for a request without a body), or at the latest when the request is over ({@link BodySample.close}:
 * a body that was never read to its end, for example because no backend could be reached, is logged with
 * what was seen and `complete: false`). A response record is written when the response body is over (at
 * once when the backend sent no body or a small body Spooky already holds).
 */
import type { BodySamplingConfig } from '../config/types.ts';
import { type Random, systemRandom } from '../lib/random.ts';
import { type BodyDirection, type BodySampleRecord, encodeBody, redactHeaders } from '../observability/body-sample.ts';
import { BodyCapture, type TeeOutcome, teeBody } from './body-tee.ts';

/** Where sample records go. */
export interface BodySampleSink {
  /** Writes one record. */
  write(rec: BodySampleRecord): void;
}

/** What the sampler needs to know about a request. */
export interface SampledRequest {
  /** Request id. */
  requestId: string;
  /** Trace id (the access record's `trace_id`), when there is one. */
  traceId?: string;
  /** Matched route id, `pool#index`. */
  route: string;
  /** The client's request headers. */
  headers: Headers;
  /** The request body as it will be forwarded, or null when there is none. */
  body: ReadableStream<Uint8Array> | null;
}

/** Decides which requests are sampled. */
export class BodySampler {
  /** A sampler writing to `sink`, drawing from `random`. */
  constructor(
    private readonly sink: BodySampleSink,
    private readonly random: Random = systemRandom,
    /** Whether samples are written at all now (false while logging is `silent`). */
    private readonly enabled: () => boolean = () => true,
  ) {}

  /** A {@link BodySample} when this request is sampled under `cfg`, else undefined. */
  begin(cfg: BodySamplingConfig, req: SampledRequest): BodySample | undefined {
    if (cfg.ratio <= 0 || (cfg.ratio < 1 && this.random() >= cfg.ratio) || !this.enabled()) return undefined;
    return new BodySample(cfg, req, this.sink);
  }
}

/** The bodies of one sampled request. */
export class BodySample {
  /** The request body to forward instead of the original (watched when request bodies are sampled). */
  readonly requestBody: ReadableStream<Uint8Array> | null;
  private readonly requestCapture: BodyCapture | undefined;

  /** The sample of request `req` under `cfg`; its request body is wrapped at once when `cfg` samples requests. */
  constructor(
    private readonly cfg: BodySamplingConfig,
    private readonly req: SampledRequest,
    private readonly sink: BodySampleSink,
  ) {
    if (!cfg.request) this.requestBody = req.body;
    else {
      const headers = redactHeaders(req.headers, cfg.redact_headers);
      const capture = new BodyCapture(cfg.max_bytes, (c, outcome) => this.write('request', headers, c, outcome));
      this.requestCapture = capture;
      if (req.body) this.requestBody = teeBody(req.body, capture);
      else {
        this.requestBody = null;
        capture.end('end');
      }
    }
  }

  /** The request is over: writes the request record now if its body was not read to the end (`complete: false`). */
  close(): void {
    this.requestCapture?.end('cancel');
  }

  /** The response body to send instead of `body` (watched when response bodies are sampled). */
  response(status: number, headers: Headers, body: ReadableStream<Uint8Array> | Uint8Array | null): ReadableStream<Uint8Array> | Uint8Array | null {
    if (!this.cfg.response) return body;
    const shown = redactHeaders(headers, this.cfg.redact_headers);
    const capture = new BodyCapture(this.cfg.max_bytes, (c, outcome) => this.write('response', shown, c, outcome, status));
    if (body instanceof ReadableStream) return teeBody(body, capture);
    if (body) capture.chunk(body);
    capture.end('end');
    return body;
  }

  private write(direction: BodyDirection, headers: Record<string, string>, c: BodyCapture, outcome: TeeOutcome, status?: number): void {
    const truncated = c.truncated;
    // A sample must never break the proxied stream: a failing log output loses the sample, nothing else.
    try {
      this.sink.write({
        request_id: this.req.requestId,
        ...(this.req.traceId !== undefined ? { trace_id: this.req.traceId } : {}),
        route: this.req.route,
        direction,
        ...(status !== undefined ? { status } : {}),
        headers,
        ...encodeBody(c.captured(), truncated),
        bytes_seen: c.bytes,
        truncated,
        complete: outcome === 'end',
      });
    } catch {}
  }
}
