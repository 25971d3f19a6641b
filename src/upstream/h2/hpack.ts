/**
 * HPACK header compression (RFC 7541) for the HTTP/2 client: a decoder (static and dynamic table, table size
 * updates, integer and string codecs, Huffman-coded strings) and a small encoder.
 *
 * Written here because no well-kept HPACK library exists on npm (the maintained implementations live inside
 * HTTP/2 stacks such as nghttp2 and Node's http2, which expose no HPACK API).
 *
 * The encoder ({@link HpackEncoder}, one per connection) keeps its own copy of the dynamic table that the peer's
 * decoder builds from our blocks (RFC 7541 §2.3, §4): entry size = name + value + 32, oldest evicted first, and
 * a maximum that is the smaller of our cap ({@link ENCODER_TABLE_BYTES}) and the peer's
 * SETTINGS_HEADER_TABLE_SIZE. A change of that maximum is announced with Dynamic Table Size Updates at the start
 * of the next block (§4.2, §6.3). Blocks must reach the peer in the order they were encoded (the session encodes
 * each block at the moment it appends the HEADERS frame to its output).
 *
 * Indexing policy, per field:
 * 1. (name, value) in the static table, then in the dynamic table: an indexed field (one or two bytes).
 * 2. Sensitive: `authorization`, `proxy-authorization`, and `cookie` values shorter than 20 bytes (short ones
 *    are guessable, §7.1.3): a literal never indexed, so neither we nor an intermediary ever index it.
 * 3. Not worth indexing: values that change on every request and would only evict useful entries
 *    (`x-request-id`, `traceparent`, `tracestate`, `content-length`, and `:path` longer than
 *    {@link MAX_INDEXED_PATH} bytes), and any field larger than half the table: a literal without indexing.
 * 4. Anything else (user-agent, accept, x-forwarded-*, forwarded, via, :authority, short paths, longer cookies):
 *    a literal with incremental indexing, so the next request sends a reference.
 * Literal names are sent by index when the name is in either table. Strings are sent raw, not Huffman-coded: a
 * repeated request is almost all indexed references, so Huffman would only shorten the first occurrences, at a
 * CPU cost on every literal. Header strings are latin1 (one byte per char), as Bun hands them over.
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

/** Our cap on the encoder's dynamic table (the peer's SETTINGS_HEADER_TABLE_SIZE may lower it). */
export const ENCODER_TABLE_BYTES = 4096;
/** The table size both sides assume before any SETTINGS (RFC 9113 §6.5.2 SETTINGS_HEADER_TABLE_SIZE default). */
export const DEFAULT_TABLE_BYTES = 4096;
/** Longest `:path` value the encoder adds to the dynamic table (longer ones are usually unique). */
export const MAX_INDEXED_PATH = 64;
/** `cookie` values shorter than this are sent never-indexed (short secrets are guessable, RFC 7541 §7.1.3). */
const MIN_INDEXED_COOKIE = 20;

/** A malformed header block: a connection error of type COMPRESSION_ERROR (RFC 9113 §4.3). */
export class HpackError extends Error {
  /** The error's name, for logs. */
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
   * Throws {@link HpackError} when the block is malformed (the connection must then fail). A well-formed list
   * over the list limit comes back empty with {@link listTooLarge} set.
   */
  decode(src: Uint8Array, start = 0, end = src.length): string[] {
    const out: string[] = [];
    let at = start;
    let listBytes = 0;
    let fieldsSeen = false;
    this.listTooLarge = false;
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
      // Over the list limit: decoded to the end all the same (the dynamic table must stay in step with the
      // peer's), but the fields are dropped and the caller fails only this stream (RFC 9113 section 10.5.1).
      if (listBytes > this.maxListBytes) this.listTooLarge = true;
      if (!this.listTooLarge) out.push(name, value);
    }
    return this.listTooLarge ? [] : out;
  }

  /** Offset after the last integer or string read. */
  private next = 0;

  /** The last {@link decode}d list was over the list limit (its fields were dropped). */
  listTooLarge = false;

  /** The largest decoded header list accepted, in bytes (announced as SETTINGS_MAX_HEADER_LIST_SIZE). */
  get maxHeaderListBytes(): number {
    return this.maxListBytes;
  }

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
 * literal without indexing. Stateless (no dynamic table): for blocks built outside a connection's
 * {@link HpackEncoder}, such as test peers. `name` must be lower case.
 */
export function encodeField(w: ByteWriter, name: string, value: string): void {
  const exact = STATIC_FIELD_INDEX.get(name)?.get(value);
  if (exact !== undefined) {
    writeInt(w, 0x80, 7, exact);
    return;
  }
  writeLiteralName(w, 0x00, 4, STATIC_NAME_INDEX.get(name) ?? 0, name);
  writeString(w, value);
}

/**
 * Writes the name part of a literal: the representation bits with `nameIndex` (0: a literal name, written as a
 * string after them).
 */
function writeLiteralName(w: ByteWriter, first: number, prefixBits: number, nameIndex: number, name: string): void {
  writeInt(w, first, prefixBits, nameIndex);
  if (nameIndex === 0) writeString(w, name);
}

/** How {@link HpackEncoder.field} treats a field that is in no table: see the module comment. */
const NEVER = 0;
const NO_INDEX = 1;
const INDEX = 2;

/** Names whose values change on every request: sent without indexing. */
const UNINDEXED_NAMES = new Set(['x-request-id', 'traceparent', 'tracestate', 'content-length']);

/**
 * The HPACK encoder of one connection: a mirror of the peer decoder's dynamic table and the indexing policy of the
 * module comment. Blocks must be sent in the order they are encoded, each started with {@link beginBlock}.
 */
export class HpackEncoder {
  /** Dynamic table entries, oldest at `head`; entry `i` was the `base + i`-th inserted. */
  private names: string[] = [];
  private values: string[] = [];
  private head = 0;
  /** Insertion number of `names[0]`. */
  private base = 0;
  private size = 0;
  /** Newest insertion number per name, and per name and value. */
  private readonly byName = new Map<string, number>();
  private readonly byField = new Map<string, Map<string, number>>();
  /** The maximum size the peer's decoder currently applies (changed only by the updates we send). */
  private maxSize = DEFAULT_TABLE_BYTES;
  /** The maximum the next block must establish: min(cap, peer setting). */
  private targetSize: number;
  /** Smallest target since the last block (a shrink then grow needs two updates, §4.2). */
  private lowestTarget: number;
  /** Header block bytes and blocks written through {@link beginBlock} (for stats and tests). */
  bytesEncoded = 0;
  /** Header blocks begun. */
  blocksEncoded = 0;
  private blockStart = 0;

  /** @param cap our own limit on the table size; the peer's SETTINGS_HEADER_TABLE_SIZE may lower it further */
  constructor(private readonly cap = ENCODER_TABLE_BYTES) {
    this.targetSize = Math.min(cap, DEFAULT_TABLE_BYTES);
    this.lowestTarget = this.targetSize;
  }

  /** Current dynamic table size in bytes (RFC 7541 §4.1). */
  get tableSize(): number {
    return this.size;
  }

  /** The maximum table size the peer's decoder applies now. */
  get maxTableSize(): number {
    return this.maxSize;
  }

  /** Dynamic table entries, newest first, for tests (must equal the peer decoder's). */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = this.names.length - 1; i >= this.head; i--) out.push([this.names[i] as string, this.values[i] as string]);
    return out;
  }

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE arrived (call when processing its SETTINGS frame, before encoding any
   * later block). The next block starts with the size update(s) this needs.
   */
  setPeerTableSize(peerSize: number): void {
    this.targetSize = Math.min(this.cap, peerSize);
    if (this.targetSize < this.lowestTarget) this.lowestTarget = this.targetSize;
  }

  /** Starts a header block in `w` (at its current length): writes the pending table size updates. */
  beginBlock(w: ByteWriter): void {
    this.blocksEncoded++;
    this.blockStart = w.length;
    if (this.lowestTarget < this.maxSize && this.lowestTarget < this.targetSize) {
      writeInt(w, 0x20, 5, this.lowestTarget);
      this.resize(this.lowestTarget);
    }
    if (this.targetSize !== this.maxSize) {
      writeInt(w, 0x20, 5, this.targetSize);
      this.resize(this.targetSize);
    }
    this.lowestTarget = this.targetSize;
  }

  /** Ends the block begun in `w` by {@link beginBlock}: counts its bytes. */
  endBlock(w: ByteWriter): void {
    this.bytesEncoded += w.length - this.blockStart;
  }

  /** Appends one header field (lower-case `name`) to the block being encoded, following the module's policy. */
  field(w: ByteWriter, name: string, value: string): void {
    const staticExact = STATIC_FIELD_INDEX.get(name)?.get(value);
    if (staticExact !== undefined) {
      writeInt(w, 0x80, 7, staticExact);
      return;
    }
    const policy = this.policy(name, value);
    if (policy !== NEVER) {
      const seq = this.byField.get(name)?.get(value);
      if (seq !== undefined) {
        writeInt(w, 0x80, 7, this.indexOf(seq));
        return;
      }
    }
    let nameIndex = STATIC_NAME_INDEX.get(name) ?? 0;
    if (nameIndex === 0) {
      const seq = this.byName.get(name);
      if (seq !== undefined) nameIndex = this.indexOf(seq);
    }
    if (policy === INDEX) {
      writeLiteralName(w, 0x40, 6, nameIndex, name);
      writeString(w, value);
      this.add(name, value);
    } else {
      writeLiteralName(w, policy === NEVER ? 0x10 : 0x00, 4, nameIndex, name);
      writeString(w, value);
    }
  }

  /** {@link NEVER}, {@link NO_INDEX} or {@link INDEX} for a field not in the static table. */
  private policy(name: string, value: string): number {
    if (name === 'authorization' || name === 'proxy-authorization') return NEVER;
    if (name === 'cookie' && value.length < MIN_INDEXED_COOKIE) return NEVER;
    if (UNINDEXED_NAMES.has(name)) return NO_INDEX;
    if (name === ':path' && value.length > MAX_INDEXED_PATH) return NO_INDEX;
    if ((name.length + value.length + ENTRY_OVERHEAD) * 2 > this.maxSize) return NO_INDEX;
    return INDEX;
  }

  /** HPACK index of the entry inserted as number `seq` (the newest is {@link STATIC_COUNT} + 1). */
  private indexOf(seq: number): number {
    return STATIC_COUNT + this.base + this.names.length - seq;
  }

  /** Adds an entry (§4.4), evicting the oldest ones to make room (the policy never adds one larger than the table). */
  private add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    this.evict(this.maxSize - entrySize);
    const seq = this.base + this.names.length;
    this.names.push(name);
    this.values.push(value);
    this.size += entrySize;
    this.byName.set(name, seq);
    let byValue = this.byField.get(name);
    if (!byValue) this.byField.set(name, (byValue = new Map()));
    byValue.set(value, seq);
  }

  /** Applies a size update we wrote: the new maximum, evicting what no longer fits. */
  private resize(max: number): void {
    this.maxSize = max;
    this.evict(max);
  }

  /** Evicts the oldest entries until the table size is at most `limit`. */
  private evict(limit: number): void {
    while (this.size > limit && this.head < this.names.length) {
      const name = this.names[this.head] as string;
      const value = this.values[this.head] as string;
      const seq = this.base + this.head;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
      if (this.byName.get(name) === seq) this.byName.delete(name);
      const byValue = this.byField.get(name);
      if (byValue !== undefined && byValue.get(value) === seq) {
        byValue.delete(value);
        if (byValue.size === 0) this.byField.delete(name);
      }
      this.head++;
    }
    // Compact the arrays now and then instead of shifting them on every eviction.
    if (this.head > 32 && this.head * 2 > this.names.length) {
      this.names.splice(0, this.head);
      this.values.splice(0, this.head);
      this.base += this.head;
      this.head = 0;
    }
  }
}
