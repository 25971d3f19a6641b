/**
 * W3C Trace Context (`traceparent`) without OpenTelemetry: parsing, formatting, random ids, and the
 * pass-through tracing used when `tracing.enabled` is false, so every access-log line still has a trace id that
 * the backend also sees. Pure apart from the injected random byte source.
 */
import type { RequestRecord } from './access-log.ts';
import type { AttemptRecord } from './events.ts';
import type { HeaderLookup } from '../lib/request-fields.ts';

/** The fields of a valid `traceparent` header. */
export interface TraceParent {
  /** 32 lower-case hex digits, not all zero. */
  traceId: string;
  /** 16 lower-case hex digits (the caller's span), not all zero. */
  spanId: string;
  /** The trace-flags byte (bit 0: sampled). */
  flags: number;
}

const HEX_FIELD = /^[0-9a-f]+$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/**
 * Parses a `traceparent` value per W3C Trace Context level 1: `version-traceid-parentid-flags`, lower-case
 * hex; version `ff` and all-zero ids are invalid; version `00` must be exactly 55 characters, a higher version
 * may carry more fields after a `-` (they are ignored). Returns undefined for anything invalid.
 */
export function parseTraceparent(value: string | null | undefined): TraceParent | undefined {
  if (!value || value.length < 55) return undefined;
  const v = value.trim();
  if (v.length < 55 || v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const version = v.slice(0, 2);
  if (!HEX_FIELD.test(version) || version === 'ff') return undefined;
  if (version === '00' ? v.length !== 55 : v.length > 55 && v[55] !== '-') return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flagsText = v.slice(53, 55);
  if (!HEX_FIELD.test(traceId) || !HEX_FIELD.test(spanId) || !HEX_FIELD.test(flagsText)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, flags: Number.parseInt(flagsText, 16) };
}

/** A version-00 `traceparent` value. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/** Fills a buffer with random bytes (default: `crypto.getRandomValues`); injected in tests. */
export type ByteSource = (buf: Uint8Array) => void;

/** `id`, or when it is all zeros (invalid; a chance of 2^-64 or less, but a scripted source can draw it) with 1 as its last digit. */
function nonZero(id: string): string {
  return id === ZERO_TRACE || id === ZERO_SPAN ? `${id.slice(0, -1)}1` : id;
}

/** Random trace and span ids, drawn from a pool of random bytes refilled 4 KiB at a time. */
export class IdSource {
  private readonly pool = Buffer.alloc(4096);
  private at = this.pool.length;

  /** Ids from `fill` (default `crypto.getRandomValues`), drawn in blocks. */
  constructor(private readonly fill: ByteSource = (b) => crypto.getRandomValues(b)) {}

  private hex(n: number): string {
    if (this.at + n > this.pool.length) {
      this.fill(this.pool);
      this.at = 0;
    }
    // one native call per draw (string concatenation per byte cost several times more per request)
    const s = this.pool.toString('hex', this.at, this.at + n);
    this.at += n;
    return s;
  }

  /** 32 hex digits, not all zero. */
  traceId(): string {
    return nonZero(this.hex(16));
  }

  /** 16 hex digits, not all zero. */
  spanId(): string {
    return nonZero(this.hex(8));
  }

  /** A trace id and a span id as {@link traceId} and {@link spanId} give them, from one draw. */
  traceAndSpanIds(): [string, string] {
    const s = this.hex(24);
    return [nonZero(s.slice(0, 32)), nonZero(s.slice(32))];
  }
}

/** What the handler tells the tracer about an upstream attempt before sending it. */
export interface AttemptStart {
  /** Pool name. */
  pool: string;
  /** Backend id. */
  backend: string;
  /** Matched route id (`pool#index`). */
  route: string;
  /** 1-based attempt number. */
  attempt: number;
  /** The backend's address. */
  url: URL;
  /** Request method. */
  method: string;
}

/** Tracing state of one request. Methods never throw. */
export interface RequestTrace {
  /** The trace id written to the access log (32 hex digits). */
  readonly traceId: string;
  /**
   * An attempt begins: returns the upstream headers to send (with the trace context for the backend). The caller
   * hands over `headers`: an implementation may append to it in place and return it.
   */
  attemptStart(headers: [string, string][], a: AttemptStart): [string, string][];
  /** The attempt got its response headers or failed. */
  attemptEnd(a: AttemptRecord): void;
  /** The request is over (its access-log record). */
  end(rec: RequestRecord): void;
}

/** Starts the tracing of a request. */
export interface Tracing {
  /** Called once per request, before any validation; `protocol` is the client's. */
  start(headers: HeaderLookup, method: string, protocol: string): RequestTrace;
}

/** True for the trace-context headers Spooky replaces when it sends its own. */
export function isTraceHeader(name: string): boolean {
  return name === 'traceparent' || name === 'tracestate';
}

/** `headers` without `traceparent`/`tracestate`, plus `extra`. */
export function withTraceHeaders(headers: [string, string][], extra: [string, string][]): [string, string][] {
  const out: [string, string][] = [];
  for (const h of headers) if (!isTraceHeader(h[0])) out.push(h);
  for (const h of extra) out.push(h);
  return out;
}

/** A request whose valid incoming `traceparent` goes to the backend unchanged. */
class IncomingTrace implements RequestTrace {
  constructor(readonly traceId: string) {}
  attemptStart(headers: [string, string][]): [string, string][] {
    return headers;
  }
  attemptEnd(): void {}
  end(): void {}
}

/**
 * A request without a valid `traceparent`: the backend gets a fresh, unsampled one (the same on every attempt).
 * When nothing has to be stripped, the header is appended to the caller's list in place (no copy per request).
 */
class FreshTrace implements RequestTrace {
  private sent: [string, string][] | undefined;
  private from: [string, string][] | undefined;

  constructor(
    readonly traceId: string,
    private readonly traceparent: string,
    /** A `traceparent` or `tracestate` came in and must be removed first. */
    private readonly strip: boolean,
  ) {}

  attemptStart(headers: [string, string][]): [string, string][] {
    if (this.sent && this.from === headers) return this.sent;
    const tp: [string, string] = ['traceparent', this.traceparent];
    this.from = headers;
    if (this.strip) this.sent = withTraceHeaders(headers, [tp]);
    else {
      headers.push(tp);
      this.sent = headers;
    }
    return this.sent;
  }
  attemptEnd(): void {}
  end(): void {}
}

/**
 * Tracing off: no spans, only trace ids. A valid incoming `traceparent` is passed to the backend unchanged and
 * its trace id logged; otherwise a fresh random trace id is logged and sent as an unsampled `traceparent`
 * (replacing an invalid one, and dropping `tracestate`, which means nothing without a valid `traceparent`).
 */
export class PassThroughTracing implements Tracing {
  /** Pass-through tracing; fresh trace ids come from `ids`. */
  constructor(private readonly ids: IdSource = new IdSource()) {}

  /** The trace of one request. */
  start(headers: HeaderLookup): RequestTrace {
    const incoming = headers.get('traceparent');
    if (incoming !== null) {
      const parsed = parseTraceparent(incoming);
      if (parsed) return new IncomingTrace(parsed.traceId);
    }
    const [traceId, spanId] = this.ids.traceAndSpanIds();
    const strip = incoming !== null || headers.has('tracestate');
    return new FreshTrace(traceId, formatTraceparent(traceId, spanId, false), strip);
  }
}

/** The shared pass-through tracing (tracing off). */
export const PASS_THROUGH_TRACING = new PassThroughTracing();
