/**
 * Body sample records: what a sampled request or response looked like (headers with secrets redacted, the
 * first bytes of the body), written as their own log lines with `event: "body_sample"` next to the access
 * records. See `src/proxy/body-sampling.ts` for which requests are sampled and how the body is copied.
 */
import type { LineSink } from './access-log.ts';

/** Which body a sample shows. */
export type BodyDirection = 'request' | 'response';

/** The value written instead of a redacted header's value. */
export const REDACTED = '[redacted]';

/** One `body_sample` record. */
export interface BodySampleRecord {
  /** Request id (the same as in the access record). */
  request_id: string;
  /** Trace id (the same as in the access record), when there is one. */
  trace_id?: string;
  /** Matched route, `pool#index`. */
  route: string;
  /** `request` (client to backend) or `response` (backend to client). */
  direction: BodyDirection;
  /** Response status (response samples only). */
  status?: number;
  /** Header fields by lower-case name; repeated fields joined with `, `; redacted values are `"[redacted]"`. */
  headers: Record<string, string>;
  /** The first bytes of the body (at most the route's `max_bytes`), as text or base64 (see `body_encoding`). */
  body: string;
  /** `utf8` when the kept bytes are valid UTF-8 (a character cut by the cap is dropped), else `base64`. */
  body_encoding: 'utf8' | 'base64';
  /** Body bytes that passed through Spooky. */
  bytes_seen: number;
  /** True when `bytes_seen` is more than the bytes in `body`. */
  truncated: boolean;
  /** False when the body did not end normally (the stream failed or was cancelled). */
  complete: boolean;
}

/** Header fields as a plain object, with the values of the `redact` names (lower case) replaced. */
export function redactHeaders(fields: Iterable<[string, string]>, redact: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of fields) {
    const name = rawName.toLowerCase();
    if (redact.includes(name)) {
      out[name] = REDACTED;
      continue;
    }
    const prev = out[name];
    out[name] = prev === undefined ? value : `${prev}, ${value}`;
  }
  return out;
}

/**
 * The kept bytes as text when they are valid UTF-8, else base64. When the body was cut (`truncated`), a
 * multi-byte character split by the cut is dropped rather than turning the whole sample into base64.
 */
export function encodeBody(bytes: Uint8Array, truncated: boolean): { body: string; body_encoding: 'utf8' | 'base64' } {
  try {
    const body = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes, { stream: truncated });
    return { body, body_encoding: 'utf8' };
  } catch {
    return { body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), body_encoding: 'base64' };
  }
}

/** One JSON line for a record, in the shape of Spooky's other records (level, time, event first). */
export function formatBodySampleJson(rec: BodySampleRecord, time: string): string {
  return `${JSON.stringify({ level: 'info', time, event: 'body_sample', ...rec })}\n`;
}

/** Writes body sample records to the access-log output. */
export class BodySampleLog {
  /** Records written, by direction. */
  readonly written: Record<BodyDirection, number> = { request: 0, response: 0 };

  /** Writes `body_sample` records to `sink`. */
  constructor(
    private readonly sink: LineSink,
    /** Turns a JSON line into the configured text format (`log.format: text`); absent for JSON. */
    private readonly toText?: (jsonLine: string) => string,
    /** Wall clock for the `time` field (injected for tests). */
    private readonly wallNow: () => number = Date.now,
  ) {}

  /** Writes one record. */
  write(rec: BodySampleRecord): void {
    const line = formatBodySampleJson(rec, new Date(this.wallNow()).toISOString());
    this.sink.write(this.toText ? this.toText(line) : line);
    this.written[rec.direction]++;
  }
}
