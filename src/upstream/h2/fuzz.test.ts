/**
 * Randomized robustness tests (deterministic seeds, fixed iteration counts, about a second in all): random and
 * mutated valid input to the HPACK decoder, the Huffman decoder, the frame reader and a whole session. The only
 * acceptable reactions are the normal error paths (HpackError, undefined, a connection or stream error reported
 * to the listener and handlers); no other exception, no hang, and state that stays within its bounds.
 */
import { describe, expect, test } from 'bun:test';
import { seededRandom } from '../../lib/random.ts';
import { ByteWriter } from './bytes.ts';
import type { ByteChannel } from './channel.ts';
import { ErrorCode, Flag, FrameReader, FrameType, Setting, writeData, writeFrameHeader, writeHeaders, writeSettings } from './frames.ts';
import { encodeField, HpackDecoder, HpackError, writeInt } from './hpack.ts';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.ts';
import { H2Session, type H2Stream, type SessionListener, type StreamFailure, type StreamHandler } from './session.ts';

/** Deterministic random helpers over {@link seededRandom}. */
function rng(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number): number => Math.floor(next() * n);
  const bytes = (n: number): Uint8Array => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  return { next, int, bytes, pick };
}
type Rng = ReturnType<typeof rng>;

const NAMES = ['content-type', 'x-a', 'set-cookie', 'server', 'x-long-header-name', ':status', 'date', 'cache-control'];

/** A random string of latin1 chars (sometimes any byte, usually printable). */
function randomText(r: Rng, max: number): string {
  const n = r.int(max + 1);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(r.next() < 0.9 ? 32 + r.int(95) : r.int(256));
  return s;
}

/** Writes a string literal, Huffman-coded half of the time. */
function writeStringLiteral(r: Rng, w: ByteWriter, s: string): void {
  if (r.next() < 0.5) {
    writeInt(w, 0, 7, s.length);
    w.latin1(s);
    return;
  }
  const n = huffmanEncodedLength(s);
  writeInt(w, 0x80, 7, n);
  w.ensure(n);
  w.length = huffmanEncode(s, w.buf, w.length);
}

/**
 * A valid header block using every representation (indexed, literals of all three kinds, size updates) for a
 * decoder whose dynamic table holds `dynamicEntries` entries. Dynamic indexes are used only while they are
 * certainly valid: not after a size update or an insertion (which may evict) in the same block.
 */
function validBlock(r: Rng, w: ByteWriter, dynamicEntries: number, sizeUpdate = true): void {
  w.reset();
  let dynamic = dynamicEntries;
  if (sizeUpdate && r.next() < 0.2) {
    writeInt(w, 0x20, 5, r.int(4097)); // table size update first
    dynamic = 0;
  }
  const fields = 1 + r.int(12);
  for (let i = 0; i < fields; i++) {
    const kind = r.int(6);
    if (kind === 0) writeInt(w, 0x80, 7, 1 + r.int(61));
    else if (kind === 1 && dynamic > 0) writeInt(w, 0x80, 7, 62 + r.int(dynamic));
    else if (kind === 2) encodeField(w, r.pick(NAMES), randomText(r, 40));
    else {
      // Literal with incremental indexing (01), without (0000) or never indexed (0001); new or indexed name.
      const first = r.pick([0x40, 0x00, 0x10]);
      const bits = first === 0x40 ? 6 : 4;
      if (first === 0x40) dynamic = 0;
      if (r.next() < 0.5) {
        writeInt(w, first, bits, 0);
        writeStringLiteral(r, w, r.pick(NAMES));
      } else writeInt(w, first, bits, 1 + r.int(61));
      writeStringLiteral(r, w, randomText(r, r.next() < 0.05 ? 1000 : 60));
    }
  }
}

/** A mutated copy of `src`: bit flips, byte changes, truncation, insertion, duplication of a slice. */
function mutate(r: Rng, src: Uint8Array): Uint8Array {
  let b: Uint8Array = src.slice();
  const rounds = 1 + r.int(4);
  for (let k = 0; k < rounds; k++) {
    const op = r.int(6);
    if (b.length === 0) b = r.bytes(1 + r.int(8));
    const at = r.int(b.length);
    if (op === 0) b[at] = (b[at] as number) ^ (1 << r.int(8));
    else if (op === 1) b[at] = r.pick([0x00, 0x7f, 0x80, 0xff, 0x3f, 0x1f, 0x0f, 0x20]);
    else if (op === 2) b = b.slice(0, at);
    else if (op === 3) {
      const ins = r.next() < 0.3 ? new Uint8Array(1 + r.int(8)).fill(0xff) : r.bytes(1 + r.int(8));
      const out = new Uint8Array(b.length + ins.length);
      out.set(b.subarray(0, at));
      out.set(ins, at);
      out.set(b.subarray(at), at + ins.length);
      b = out;
    } else if (op === 4) {
      const end = Math.min(b.length, at + 1 + r.int(16));
      const slice = b.slice(at, end);
      const out = new Uint8Array(b.length + slice.length);
      out.set(b.subarray(0, end));
      out.set(slice, end);
      out.set(b.subarray(end), end + slice.length);
      b = out;
    } else b = r.bytes(r.int(64));
  }
  return b;
}

/** Checks the decoder's table invariants: size is the sum of entry sizes and within the limit. */
function checkTable(d: HpackDecoder, limit: number): void {
  const entries = d.entries();
  let size = 0;
  for (const [n, v] of entries) size += n.length + v.length + 32;
  expect(d.tableSize).toBe(size);
  expect(size).toBeLessThanOrEqual(limit);
}

describe('fuzz: HPACK', () => {
  test('valid and mutated header blocks: decoded, or rejected with HpackError; table and list stay bounded', () => {
    const r = rng(0x5eed1);
    const maxList = 16 * 1024;
    const w = new ByteWriter();
    let decoded = 0;
    let rejected = 0;
    // One decoder per "connection": its table carries over between blocks, as on a real connection, until a
    // block is rejected (a COMPRESSION_ERROR ends the connection, so the next block starts a new one).
    let d = new HpackDecoder(4096, maxList);
    for (let i = 0; i < 6000; i++) {
      validBlock(r, w, d.entries().length);
      const valid = w.copy();
      const mutated = r.next() < 0.3;
      const input = mutated ? mutate(r, valid) : valid;
      let out: string[] | undefined;
      try {
        out = d.decode(input);
      } catch (err) {
        if (!(err instanceof HpackError)) throw err;
        expect(mutated).toBe(true); // a valid block is never rejected
        rejected++;
        d = new HpackDecoder(4096, maxList);
        continue;
      }
      decoded++;
      expect(out.length % 2).toBe(0);
      let listBytes = 0;
      for (let k = 0; k < out.length; k += 2) listBytes += (out[k] as string).length + (out[k + 1] as string).length + 32;
      expect(listBytes).toBeLessThanOrEqual(maxList);
      checkTable(d, 4096);
    }
    expect(decoded).toBeGreaterThan(4000);
    expect(rejected).toBeGreaterThan(500);
  });

  test('random bytes: HpackError or a list within the limit, never anything else', () => {
    const r = rng(0x5eed2);
    for (let i = 0; i < 20_000; i++) {
      const d = new HpackDecoder(4096, 8192);
      const input = r.bytes(r.int(48));
      try {
        const out = d.decode(input);
        expect(out.length % 2).toBe(0);
      } catch (err) {
        if (!(err instanceof HpackError)) throw err;
      }
      checkTable(d, 4096);
    }
  });

  test('a decompression bomb (one big dynamic entry referenced over and over) is cut at the list limit: no fields kept', () => {
    const d = new HpackDecoder(4096, 64 * 1024);
    const w = new ByteWriter();
    writeInt(w, 0x40, 6, 0);
    writeStringLiteral(rng(1), w, 'x-bomb');
    writeInt(w, 0, 7, 4000);
    w.latin1('b'.repeat(4000));
    for (let i = 0; i < 10_000; i++) writeInt(w, 0x80, 7, 62);
    // Decoded to the end (the table stays in step) without keeping the 40 MB of fields.
    expect(d.decode(w.copy())).toEqual([]);
    expect(d.listTooLarge).toBe(true);
  });
});

describe('fuzz: Huffman', () => {
  test('random strings round-trip; random bytes decode to a string or undefined', () => {
    const r = rng(0x5eed3);
    const buf = new Uint8Array(4096);
    for (let i = 0; i < 5000; i++) {
      const s = randomText(r, 200);
      const end = huffmanEncode(s, buf, 0);
      expect(end).toBe(huffmanEncodedLength(s));
      expect(huffmanDecode(buf, 0, end)).toBe(s);
      const junk = r.bytes(r.int(32));
      const out = huffmanDecode(junk, 0, junk.length);
      if (out !== undefined) expect(out.length).toBeLessThanOrEqual(junk.length * 2);
    }
  });
});

/** A channel that only counts what the session writes. */
class CountingChannel implements ByteChannel {
  bytes = 0;
  ended = false;
  destroyed = false;
  write(_bytes: Uint8Array, length: number): boolean {
    this.bytes += length;
    return true;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

/** A stream handler that records contract violations instead of throwing (a throw would be caught as a bug). */
class Checker implements StreamHandler {
  /** The stream (set right after open). */
  stream: H2Stream | undefined = undefined;
  /** The peer ended the stream. */
  remoteEnded = false;
  /** The stream closed for good when the peer ended it (our side had ended too): no event may follow. */
  closedAtEnd = false;
  failures = 0;
  problems: string[] = [];
  constructor(all: Checker[]) {
    all.push(this);
  }
  private event(name: string): void {
    if (this.failures > 0) this.problems.push(`${name} after onReset`);
    if (this.closedAtEnd) this.problems.push(`${name} after the stream closed`);
    else if (this.remoteEnded && name !== 'onReset') this.problems.push(`${name} after the peer ended the stream`);
  }
  private end(endStream: boolean): void {
    if (!endStream) return;
    this.remoteEnded = true;
    this.closedAtEnd = this.stream?.localEnded === true;
  }
  onHeaders(fields: string[], endStream: boolean): void {
    this.event('onHeaders');
    if (fields.length % 2 !== 0) this.problems.push('odd field list');
    this.end(endStream);
  }
  onData(_chunk: Uint8Array, endStream: boolean): void {
    this.event('onData');
    this.end(endStream);
  }
  onReset(failure: StreamFailure): void {
    this.event('onReset');
    this.failures++;
    if (failure.code === ErrorCode.INTERNAL_ERROR) this.problems.push(`internal error: ${failure.message}`);
  }
  onWritable(): void {}
}

/** What {@link randomFrame} aims at: the stream ids opened so far, and how often it picks something wild. */
interface Aim {
  /** Highest stream id opened (0: none yet). */
  lastId: number;
  /** Probability of a wild choice (any type, any stream id, any flags, a mutated payload). */
  wild: number;
}

/** A random frame: plausible (known types on our streams, sane flags and lengths) unless a wild choice is made. */
function randomFrame(r: Rng, w: ByteWriter, aim: Aim): void {
  const wild = () => r.next() < aim.wild;
  const type = wild() ? r.int(256) : r.next() < 0.01 ? FrameType.GOAWAY : r.pick([0, 0, 0, 1, 1, 1, 8, 8, 6, 4, 3, 2, 0xbe]);
  const ourStream = aim.lastId > 0 ? 1 + 2 * r.int((aim.lastId + 1) / 2) : 1;
  const connectionLevel = type === FrameType.SETTINGS || type === FrameType.PING || type === FrameType.GOAWAY;
  const id = wild() ? r.pick([0, 2, 4, aim.lastId + 2, 0x7fffffff, ourStream]) : connectionLevel ? 0 : ourStream;
  const flags = wild() ? r.int(256) : r.pick([0, 0, Flag.END_STREAM, Flag.PADDED]);
  switch (type) {
    case FrameType.HEADERS: {
      const block = new ByteWriter();
      encodeField(block, ':status', r.pick(['200', '100', '204', '404', '2x0', '999']));
      const rest = new ByteWriter();
      validBlock(r, rest, 0, false);
      block.bytes(rest.buf.subarray(0, rest.length));
      let payload = block.copy();
      if (wild()) payload = mutate(r, payload);
      if (payload.length > 16_000) payload = payload.subarray(0, 16_000);
      // Sometimes cut into many CONTINUATION frames (never more than the session accepts from a sane peer).
      const fragment = r.next() < 0.7 ? 16_384 : Math.max(1 + r.int(64), Math.ceil(payload.length / 400));
      writeHeaders(w, id, payload, payload.length, (flags & Flag.END_STREAM) !== 0, fragment);
      return;
    }
    case FrameType.CONTINUATION: {
      const n = r.int(30);
      writeFrameHeader(w, n, type, flags | (r.next() < 0.5 ? Flag.END_HEADERS : 0), id);
      w.bytes(r.bytes(n));
      return;
    }
    case FrameType.DATA: {
      const n = r.next() < 0.05 ? 16_384 : r.int(300);
      if ((flags & Flag.PADDED) !== 0 && n < 16_000) {
        const pad = r.int(n + 2);
        writeFrameHeader(w, n + 1 + Math.min(pad, 255), FrameType.DATA, flags, id);
        w.byte(pad);
        w.bytes(r.bytes(n + Math.min(pad, 255)));
        return;
      }
      writeData(w, id, r.bytes(n), 0, n, (flags & Flag.END_STREAM) !== 0);
      return;
    }
    case FrameType.SETTINGS: {
      if (r.next() < 0.2) {
        writeFrameHeader(w, 0, FrameType.SETTINGS, Flag.ACK, id);
        return;
      }
      const entries: [number, number][] = [];
      const count = r.int(4);
      for (let i = 0; i < count; i++) {
        const setting = 1 + r.int(7);
        let value = r.pick([0, 1, 100, 65_535, 1_000_000]);
        if (setting === Setting.ENABLE_PUSH) value = 0; // a server may only send 0 (RFC 9113 section 6.5.2)
        if (setting === Setting.MAX_FRAME_SIZE) value = r.pick([16_384, 65_536, 16_777_215]);
        if (wild()) value = r.pick([2, 16_383, 16_777_216, 0x80000000, 0xffffffff]);
        entries.push([setting, value]);
      }
      writeSettings(w, entries);
      return;
    }
    default: {
      // PRIORITY, RST_STREAM, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE and unknown types, mostly of the right length.
      const lengths: Record<number, number> = { 2: 5, 3: 4, 6: 8, 7: 8, 8: 4 };
      const n = wild() ? r.int(20) : (lengths[type] ?? r.int(16));
      writeFrameHeader(w, n, type, type === FrameType.PING ? flags & ~Flag.PADDED : flags, id);
      const payload = r.bytes(n);
      if (type === FrameType.WINDOW_UPDATE && n === 4) {
        const inc = wild() ? r.pick([0, 0x7fffffff]) : r.pick([1, 1000, 65_535]);
        payload[0] = (inc >>> 24) & 0x7f;
        payload[1] = (inc >>> 16) & 0xff;
        payload[2] = (inc >>> 8) & 0xff;
        payload[3] = inc & 0xff;
      }
      if (type === FrameType.GOAWAY && n >= 4 && !wild()) payload[0] = 0; // mostly a last stream id below ours
      w.bytes(payload);
    }
  }
}

describe('fuzz: session', () => {
  test('random frame sequences in random chunks: only protocol errors through the normal paths, every stream ends once', () => {
    const r = rng(0x5eed4);
    let closedSessions = 0;
    let framesSeen = 0;
    const reasons = new Set<string>();
    for (let run = 0; run < 500; run++) {
      const channel = new CountingChannel();
      const handlers: Checker[] = [];
      let closedCount = 0;
      let streamClosed = 0;
      let failure: StreamFailure | undefined;
      const listener: SessionListener = {
        onReady: () => {},
        onSettings: () => {},
        onStreamClosed: () => streamClosed++,
        onGoaway: () => {},
        onClosed: (_s, f) => {
          closedCount++;
          failure = f;
        },
      };
      const session = new H2Session(channel, listener, { streamWindowBytes: r.pick([1000, 65_535, 262_144]) });
      session.start();
      const aim: Aim = { lastId: 0, wild: r.pick([0, 0.005, 0.02, 0.1]) };
      let opened = 0;
      let inputBytes = 0;
      const open = () => {
        const checker = new Checker(handlers);
        const s = session.openRequest([':method', 'GET'], r.next() < 0.6, checker);
        checker.stream = s;
        opened++;
        aim.lastId = s.id;
        if (!s.localEnded) {
          s.write(r.bytes(r.int(70_000)));
          if (r.next() < 0.5) s.end();
        }
      };
      const feed = (bytes: Uint8Array) => {
        inputBytes += bytes.length;
        // In random chunks, as a socket delivers them.
        for (let at = 0; at < bytes.length && !session.closed; ) {
          const n = 1 + r.int(r.next() < 0.5 ? 16 : 4096);
          const chunk = bytes.slice(at, at + n);
          at += n;
          expect(() => session.onBytes(chunk)).not.toThrow();
        }
      };
      const settings = new ByteWriter();
      writeSettings(settings, [[Setting.INITIAL_WINDOW_SIZE, r.pick([0, 100, 65_535, 1 << 20])]]);
      feed(settings.copy());
      const steps = 5 + r.int(60);
      for (let i = 0; i < steps && !session.closed; i++) {
        if (session.canOpen() && (opened === 0 || r.next() < 0.15)) open();
        const w = new ByteWriter();
        const frames = 1 + r.int(4);
        for (let k = 0; k < frames; k++) randomFrame(r, w, aim);
        framesSeen += frames;
        feed(r.next() < aim.wild ? mutate(r, w.copy()) : w.copy());
        if (r.next() < 0.1) session.onDrain();
      }
      for (const h of handlers) expect(h.problems).toEqual([]);
      for (const h of handlers) expect(h.failures).toBeLessThanOrEqual(1);
      expect(closedCount).toBeLessThanOrEqual(1);
      if (session.closed) {
        closedSessions++;
        reasons.add((failure?.message ?? 'graceful').replace(/[0-9]+/g, 'N'));
        if (aim.wild === 0) expect(failure).toBeUndefined(); // a sane peer only ever closes gracefully (GOAWAY)
        expect(failure?.code).not.toBe(ErrorCode.INTERNAL_ERROR);
        // Every stream was given back exactly once.
        expect(streamClosed).toBe(opened);
        expect(session.streamCount).toBe(0);
      } else expect(streamClosed + session.streamCount).toBe(opened);
      // Our output stays proportional to the input (acks, window updates, resets) plus the request data we queued.
      expect(channel.bytes).toBeLessThan(100_000 + inputBytes * 3 + opened * 70_000);
      session.destroy();
      expect(session.streamCount).toBe(0);
      expect(streamClosed).toBe(opened);
    }
    // The runs reach deep states, and many different errors.
    expect(closedSessions).toBeGreaterThan(100);
    expect(closedSessions).toBeLessThan(450);
    expect(framesSeen).toBeGreaterThan(10_000);
    expect(reasons.size).toBeGreaterThan(15);
  });

  test('the frame reader cuts a valid frame stream identically however it is chunked', () => {
    const r = rng(0x5eed5);
    for (let run = 0; run < 300; run++) {
      const w = new ByteWriter();
      const aim: Aim = { lastId: 9, wild: 0.05 };
      const count = 1 + r.int(30);
      for (let i = 0; i < count; i++) randomFrame(r, w, aim);
      const bytes = w.copy();
      const cut = (chunks: Uint8Array[]) => {
        const seen: string[] = [];
        const reader = new FrameReader({
          onFrame: (type, flags, streamId, buf, start, end) => {
            seen.push(`${type}/${flags}/${streamId}/${Buffer.from(buf.subarray(start, end)).toString('hex')}`);
            return true;
          },
          onOversizedFrame: (length, type) => {
            seen.push(`oversized ${type} ${length}`);
            stopped = true;
          },
        });
        // Like the session, stop at an oversized frame (the connection fails there).
        let stopped = false;
        for (const c of chunks) if (!stopped) reader.push(c);
        return seen;
      };
      const whole = cut([bytes]);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + r.int(r.next() < 0.5 ? 10 : 3000);
        chunks.push(bytes.slice(at, at + n));
        at += n;
      }
      expect(cut(chunks)).toEqual(whole);
    }
  });
});
