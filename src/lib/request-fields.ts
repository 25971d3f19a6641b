/**
 * A request's header fields, read out of Bun's `Headers` once per request.
 *
 * Every `Headers` lookup is a call into native code. The request path looks fields up about a dozen times
 * (host, connection, trace context, forwarding, and per route: header matches, hash keys, rate-limit keys,
 * labels), and reads them all once more to build the upstream request. One `toJSON()` call instead, and plain
 * property reads after it, cost less.
 */

/** Read access to request header fields: what `Headers` offers and {@link RequestFields} does too. */
export interface HeaderLookup {
  /** The field's value (repeated lines joined with `, `), or null when absent. Names are case-insensitive. */
  get(name: string): string | null;
  /** Whether the field is present. */
  has(name: string): boolean;
  /** Field names, lower case. */
  keys(): Iterable<string>;
}

/** Header fields as `Headers.toJSON()` gives them: lower-case names, `set-cookie` as a list, others joined. */
export type FieldRecord = Record<string, string | string[]>;

/** The fields of one request, from one `Headers.toJSON()`. */
export class RequestFields implements HeaderLookup {
  /** Wraps `fields` (not copied). */
  constructor(readonly fields: FieldRecord) {}

  /** Reads the fields of `headers` once. */
  static of(headers: Headers): RequestFields {
    return new RequestFields(headers.toJSON());
  }

  /** The value of field `name` (any case); repeated fields joined with `, `; null when absent. */
  get(name: string): string | null {
    const v = this.fields[name.toLowerCase()];
    // typeof guards against names such as `constructor`, which an object literal inherits
    if (typeof v === 'string') return v;
    return Array.isArray(v) ? v.join(', ') : null;
  }

  /** Whether field `name` (any case) is present. */
  has(name: string): boolean {
    const v = this.fields[name.toLowerCase()];
    return typeof v === 'string' || Array.isArray(v);
  }

  /** The field names, lower case. */
  keys(): string[] {
    return Object.keys(this.fields);
  }

  /** The fields themselves, as `Headers.toJSON()` returned them. */
  toJSON(): FieldRecord {
    return this.fields;
  }
}
