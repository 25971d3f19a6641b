/**
 * HPACK header compression (RFC 7541) for the HTTP/2 client: a decoder (static and dynamic table, table size
 * updates, integer and string codecs, Huffman-coded strings) and a small encoder.
 *
 * Written here because no well-kept HPACK library exists on npm (the maintained implementations live inside
 * HTTP/2 stacks such as nghttp2 and Node's http2, which expose no HPACK API).
 *
 * The encoder never adds to the peer's dynamic table: a field is sent as an indexed static entry when name and
 * value match one, else as a literal without indexing (with the static name index when the name is there), and
 * strings are sent raw (not Huffman-coded). That costs a few bytes per request on the wire and saves the CPU and
 * state of a second table. Header strings are latin1 (one byte per char), as Bun hands them over.
 */
import type { ByteWriter } from './bytes.ts';
import { latin1String } from './bytes.ts';
import { huffmanDecode } from './huffman.ts';

/** The static table (RFC 7541 Appendix A), index 1 first, as [name, value]. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

const STATIC_COUNT = STATIC_TABLE.length;

/** Per-entry overhead counted in table sizes (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

/** A malformed header block: a connection error of type COMPRESSION_ERROR (RFC 9113 §4.3). */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}

/** Decodes header blocks; keeps the dynamic table across blocks of one connection. */
export class HpackDecoder {
  /** Dynamic table, oldest first (the newest entry is dynamic index 1). */
  private names: string[] = [];
  private values: string[] = [];
  private size = 0;
  /** Current maximum size (changed by size updates in the blocks). */
  private maxSize: number;

  /**
   * @param settingsMaxSize our SETTINGS_HEADER_TABLE_SIZE: the largest size a table size update may ask for
   * @param maxListBytes largest decoded header list (names + values + 32 per field), RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE
   */
  constructor(
    private readonly settingsMaxSize = 4096,
    private readonly maxListBytes = 256 * 1024,
  ) {
    this.maxSize = settingsMaxSize;
  }

  /** Current dynamic table size in bytes (RFC 7541 §4.1), for tests. */
  get tableSize(): number {
    return this.size;
  }

  /** Dynamic table entries, newest first, for tests. */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = this.names.length - 1; i >= 0; i--) out.push([this.names[i] as string, this.values[i] as string]);
    return out;
  }

  /**
   * Decodes the header block `src[start, end)` into a flat list `[name, value, name, value, ...]`.
   * Throws {@link HpackError} when the block is malformed (the connection must then fail).
   */
  decode(src: Uint8Array, start = 0, end = src.length): string[] {
    const out: string[] = [];
    let at = start;
    let listBytes = 0;
    let fieldsSeen = false;
    while (at < end) {
      const b = src[at] as number;
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed field (§6.1).
        const index = this.readInt(src, at, end, 7);
        at = this.next;
        if (index === 0) throw new HpackError('indexed header field with index 0');
        name = this.nameAt(index);
        value = this.valueAt(index);
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update (§6.3): only before the first field.
        if (fieldsSeen) throw new HpackError('dynamic table size update after a header field');
        const size = this.readInt(src, at, end, 5);
        at = this.next;
        if (size > this.settingsMaxSize) throw new HpackError(`table size update to ${size} above the limit ${this.settingsMaxSize}`);
        this.maxSize = size;
        this.evict(0);
        continue;
      } else {
        // Literal (§6.2): with incremental indexing (01), without indexing (0000) or never indexed (0001).
        const indexing = (b & 0xc0) === 0x40;
        const index = this.readInt(src, at, end, indexing ? 6 : 4);
        at = this.next;
        if (index === 0) {
          name = this.readString(src, at, end);
          at = this.next;
        } else name = this.nameAt(index);
        value = this.readString(src, at, end);
        at = this.next;
        if (indexing) this.add(name, value);
      }
      fieldsSeen = true;
      listBytes += name.length + value.length + ENTRY_OVERHEAD;
      if (listBytes > this.maxListBytes) throw new HpackError(`header list larger than ${this.maxListBytes} bytes`);
      out.push(name, value);
    }
    return out;
  }

  /** Offset after the last integer or string read. */
  private next = 0;

  /** Reads an integer with an N-bit prefix at `src[at]` (§5.1); sets {@link next}. */
  private readInt(src: Uint8Array, at: number, end: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = (src[at] as number) & max;
    at++;
    if (value === max) {
      let shift = 0;
      for (;;) {
        if (at >= end) throw new HpackError('truncated integer');
        const b = src[at++] as number;
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) break;
        if (shift > 28) throw new HpackError('integer too large');
      }
      if (value > 0x7fffffff) throw new HpackError('integer too large');
    }
    this.next = at;
    return value;
  }

  /** Reads a string literal (§5.2), Huffman-coded or raw; sets {@link next}. */
  private readString(src: Uint8Array, at: number, end: number): string {
    if (at >= end) throw new HpackError('truncated string');
    const huffman = ((src[at] as number) & 0x80) !== 0;
    const length = this.readInt(src, at, end, 7);
    const from = this.next;
    const to = from + length;
    if (to > end) throw new HpackError('string longer than the header block');
    this.next = to;
    if (!huffman) return latin1String(src, from, to);
    const s = huffmanDecode(src, from, to);
    if (s === undefined) throw new HpackError('invalid Huffman-coded string');
    return s;
  }

  private nameAt(index: number): string {
    if (index <= STATIC_COUNT) return (STATIC_TABLE[index - 1] as readonly [string, string])[0];
    const i = this.names.length - (index - STATIC_COUNT);
    if (i < 0) throw new HpackError(`header table index ${index} out of range`);
    return this.names[i] as string;
  }

  private valueAt(index: number): string {
    if (index <= STATIC_COUNT) return (STATIC_TABLE[index - 1] as readonly [string, string])[1];
    return this.values[this.values.length - (index - STATIC_COUNT)] as string;
  }

  /** Adds an entry (§4.4): evicts until it fits; an entry larger than the table empties it and is not added. */
  private add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.maxSize) {
      this.names.length = 0;
      this.values.length = 0;
      this.size = 0;
      return;
    }
    this.evict(entrySize);
    this.names.push(name);
    this.values.push(value);
    this.size += entrySize;
  }

  /** Evicts the oldest entries until `room` more bytes fit within the maximum size. */
  private evict(room: number): void {
    let drop = 0;
    while (this.size + room > this.maxSize && drop < this.names.length) {
      this.size -= (this.names[drop] as string).length + (this.values[drop] as string).length + ENTRY_OVERHEAD;
      drop++;
    }
    if (drop > 0) {
      this.names.splice(0, drop);
      this.values.splice(0, drop);
    }
  }
}

/** First static index of each name. */
const STATIC_NAME_INDEX = new Map<string, number>();
/** Static index of each full (name, value) entry that has a value, keyed `name` then `value`. */
const STATIC_FIELD_INDEX = new Map<string, Map<string, number>>();
for (let i = 0; i < STATIC_COUNT; i++) {
  const [name, value] = STATIC_TABLE[i] as readonly [string, string];
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
  if (value !== '') {
    let byValue = STATIC_FIELD_INDEX.get(name);
    if (!byValue) STATIC_FIELD_INDEX.set(name, (byValue = new Map()));
    byValue.set(value, i + 1);
  }
}

/** Writes an integer with an N-bit prefix (§5.1); `first` holds the bits above the prefix. */
export function writeInt(w: ByteWriter, first: number, prefixBits: number, value: number): void {
  const max = (1 << prefixBits) - 1;
  w.ensure(6);
  if (value < max) {
    w.byte(first | value);
    return;
  }
  w.byte(first | max);
  value -= max;
  while (value >= 128) {
    w.byte((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  w.byte(value);
}

/** Writes a raw (not Huffman-coded) string literal (§5.2). */
function writeString(w: ByteWriter, s: string): void {
  writeInt(w, 0, 7, s.length);
  w.latin1(s);
}

/**
 * Appends one header field to a header block: an indexed static entry when name and value match one, else a
 * literal without indexing. `name` must be lower case.
 */
export function encodeField(w: ByteWriter, name: string, value: string): void {
  const exact = STATIC_FIELD_INDEX.get(name)?.get(value);
  if (exact !== undefined) {
    writeInt(w, 0x80, 7, exact);
    return;
  }
  const nameIndex = STATIC_NAME_INDEX.get(name);
  if (nameIndex !== undefined) writeInt(w, 0x00, 4, nameIndex);
  else {
    w.ensure(1);
    w.byte(0x00);
    writeString(w, name);
  }
  writeString(w, value);
}
