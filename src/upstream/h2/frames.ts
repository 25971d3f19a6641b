/**
 * HTTP/2 framing (RFC 9113 §4 and §6): frame type, flag, setting and error-code constants, writers that append
 * frames to a {@link ByteWriter}, and a {@link FrameReader} that cuts a byte stream into frames.
 */
import type { ByteWriter } from './bytes.ts';

/** The client connection preface (RFC 9113 §3.4), sent before our first SETTINGS frame. */
export const CLIENT_PREFACE = new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Size of a frame header. */
export const FRAME_HEADER_BYTES = 9;
/** Smallest (and default) SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
/** Largest allowed SETTINGS_MAX_FRAME_SIZE. */
export const MAX_ALLOWED_FRAME_SIZE = 16_777_215;
/** Initial flow-control window of streams and connections. */
export const DEFAULT_WINDOW = 65_535;
/** Largest flow-control window. */
export const MAX_WINDOW = 0x7fffffff;

/** Frame types (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags. */
export const Flag = {
  /** DATA, HEADERS: last frame of the stream from this side. */
  END_STREAM: 0x1,
  /** SETTINGS, PING: acknowledgement. */
  ACK: 0x1,
  /** HEADERS, CONTINUATION: the header block is complete. */
  END_HEADERS: 0x4,
  /** DATA, HEADERS: a pad length byte and padding are present. */
  PADDED: 0x8,
  /** HEADERS: stream dependency and weight are present. */
  PRIORITY: 0x20,
} as const;

/** SETTINGS identifiers (RFC 9113 §6.5.2). */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Error codes (RFC 9113 §7). */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const ERROR_NAMES = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k])) as Record<number, string>;

/** Name of an error code for messages (`PROTOCOL_ERROR`, or `0x..` when unknown). */
export function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

// ---- writers

/** Appends a frame header (the payload of `length` bytes must follow). */
export function writeFrameHeader(w: ByteWriter, length: number, type: number, flags: number, streamId: number): void {
  w.ensure(FRAME_HEADER_BYTES + length);
  w.byte((length >>> 16) & 0xff);
  w.byte((length >>> 8) & 0xff);
  w.byte(length & 0xff);
  w.byte(type);
  w.byte(flags);
  w.u32(streamId & 0x7fffffff);
}

/** Appends a SETTINGS frame with `settings` as [identifier, value] pairs. */
export function writeSettings(w: ByteWriter, settings: readonly (readonly [number, number])[]): void {
  writeFrameHeader(w, settings.length * 6, FrameType.SETTINGS, 0, 0);
  for (const [id, value] of settings) {
    w.byte((id >>> 8) & 0xff);
    w.byte(id & 0xff);
    w.u32(value);
  }
}

/** Appends a SETTINGS acknowledgement. */
export function writeSettingsAck(w: ByteWriter): void {
  writeFrameHeader(w, 0, FrameType.SETTINGS, Flag.ACK, 0);
}

/** Appends a PING frame (`ack` for the answer) with its 8 opaque bytes. */
export function writePing(w: ByteWriter, payload: Uint8Array, ack: boolean): void {
  writeFrameHeader(w, 8, FrameType.PING, ack ? Flag.ACK : 0, 0);
  w.buf.set(payload.subarray(0, 8), w.length);
  w.length += 8;
}

/** Appends a WINDOW_UPDATE frame (`streamId` 0: the connection). */
export function writeWindowUpdate(w: ByteWriter, streamId: number, increment: number): void {
  writeFrameHeader(w, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  w.u32(increment & 0x7fffffff);
}

/** Appends a RST_STREAM frame. */
export function writeRstStream(w: ByteWriter, streamId: number, code: number): void {
  writeFrameHeader(w, 4, FrameType.RST_STREAM, 0, streamId);
  w.u32(code);
}

/** Appends a GOAWAY frame (no debug data). */
export function writeGoaway(w: ByteWriter, lastStreamId: number, code: number): void {
  writeFrameHeader(w, 8, FrameType.GOAWAY, 0, 0);
  w.u32(lastStreamId & 0x7fffffff);
  w.u32(code);
}

/** Appends one DATA frame carrying `data[start, end)` (at most the peer's frame size). */
export function writeData(w: ByteWriter, streamId: number, data: Uint8Array, start: number, end: number, endStream: boolean): void {
  const length = end - start;
  writeFrameHeader(w, length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
  if (length > 0) {
    w.buf.set(start === 0 && end === data.length ? data : data.subarray(start, end), w.length);
    w.length += length;
  }
}

/**
 * Appends a header block `block[0, blockLength)` as one HEADERS frame plus CONTINUATION frames, none longer than
 * `maxFrameSize`.
 */
export function writeHeaders(
  w: ByteWriter,
  streamId: number,
  block: Uint8Array,
  blockLength: number,
  endStream: boolean,
  maxFrameSize: number,
): void {
  let at = 0;
  let first = true;
  do {
    const n = Math.min(maxFrameSize, blockLength - at);
    const last = at + n === blockLength;
    const flags = (last ? Flag.END_HEADERS : 0) | (first && endStream ? Flag.END_STREAM : 0);
    writeFrameHeader(w, n, first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId);
    const out = w.buf;
    let o = w.length;
    if (n <= 512) for (let i = at; i < at + n; i++) out[o++] = block[i] as number;
    else {
      out.set(block.subarray(at, at + n), o);
      o += n;
    }
    w.length = o;
    at += n;
    first = false;
  } while (at < blockLength);
}

// ---- reader

/** Receives the frames a {@link FrameReader} cuts out. */
export interface FrameSink {
  /**
   * One complete frame whose payload is `buf[start, end)` (the received bytes, never reused by the reader, so
   * views of them may be kept). Returns false to stop reading (the connection is being torn down).
   */
  onFrame(type: number, flags: number, streamId: number, buf: Uint8Array, start: number, end: number): boolean;
  /** A frame longer than the allowed maximum was announced: a FRAME_SIZE_ERROR (RFC 9113 §4.2). */
  onOversizedFrame(length: number, type: number): void;
}

/** Cuts a stream of received bytes into frames. */
export class FrameReader {
  /** Received bytes of an incomplete frame, in order (joined only once the frame is complete). */
  private pending: Uint8Array[] | undefined = undefined;
  private pendingBytes = 0;
  /** Bytes needed before the pending ones can be looked at again (a frame header, or the whole frame). */
  private needed = 0;
  /** Largest payload accepted (our SETTINGS_MAX_FRAME_SIZE). */
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE;

  /** @param sink receives the frames */
  constructor(private readonly sink: FrameSink) {}

  /** Feeds received bytes (never changed afterwards); delivers every complete frame to the sink. */
  push(chunk: Uint8Array): void {
    let b = chunk;
    const pending = this.pending;
    if (pending !== undefined) {
      // A frame trickling in is copied once, when complete (not once per read).
      pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.needed) return;
      b = new Uint8Array(this.pendingBytes);
      let at = 0;
      for (const part of pending) {
        b.set(part, at);
        at += part.length;
      }
      this.pending = undefined;
    }
    const total = b.length;
    let at = 0;
    while (total - at >= FRAME_HEADER_BYTES) {
      const length = ((b[at] as number) << 16) | ((b[at + 1] as number) << 8) | (b[at + 2] as number);
      const type = b[at + 3] as number;
      if (length > this.maxFrameSize) {
        this.sink.onOversizedFrame(length, type);
        return;
      }
      const end = at + FRAME_HEADER_BYTES + length;
      if (end > total) break;
      const flags = b[at + 4] as number;
      const streamId =
        ((b[at + 5] as number) & 0x7f) * 0x1000000 + (((b[at + 6] as number) << 16) | ((b[at + 7] as number) << 8) | (b[at + 8] as number));
      const start = at + FRAME_HEADER_BYTES;
      at = end;
      if (!this.sink.onFrame(type, flags, streamId, b, start, end)) return;
    }
    if (at < total) {
      const rest = at === 0 ? b : b.subarray(at);
      this.pending = [rest];
      this.pendingBytes = rest.length;
      this.needed =
        rest.length < FRAME_HEADER_BYTES
          ? FRAME_HEADER_BYTES
          : FRAME_HEADER_BYTES + (((rest[0] as number) << 16) | ((rest[1] as number) << 8) | (rest[2] as number));
    }
  }
}

/**
 * Where the content of a DATA or HEADERS payload `[start, end)` begins once the pad length byte (and, for
 * HEADERS, the priority fields) are skipped; -1 when the frame is too short for them. See {@link paddingOf}.
 */
export function contentStart(start: number, end: number, flags: number, type: number): number {
  let at = start;
  if (flags & Flag.PADDED) at++;
  if (type === FrameType.HEADERS && flags & Flag.PRIORITY) at += 5;
  return at <= end ? at : -1;
}

/** Bytes of padding at the end of a DATA or HEADERS payload `buf[start, end)` (0 without the PADDED flag). */
export function paddingOf(buf: Uint8Array, start: number, flags: number): number {
  return flags & Flag.PADDED ? (buf[start] as number) : 0;
}

/** Reads a 32-bit big-endian number at `at`. */
export function readU32(b: Uint8Array, at: number): number {
  return ((b[at] as number) * 0x1000000 + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number))) >>> 0;
}
