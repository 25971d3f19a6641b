/**
 * One client HTTP/2 connection (RFC 9113) over a {@link ByteChannel}: connection preface and SETTINGS exchange,
 * stream ids, flow control in both directions, header blocks (HEADERS + CONTINUATION, HPACK), RST_STREAM, PING
 * answers, GOAWAY, and connection errors. It knows nothing about HTTP semantics beyond framing: the transport
 * checks the request header fields (the session HPACK-encodes them with its dynamic table as it writes the
 * HEADERS frame) and interprets the decoded response fields through a {@link StreamHandler}.
 *
 * Writes are coalesced: frames are appended to one buffer, and every session with something to send is flushed
 * once per event-loop turn (in the check phase, `setImmediate`), or at once when the buffer passes
 * {@link FLUSH_THRESHOLD_BYTES}. So the frames of every stream opened in one turn leave in one socket write.
 *
 * Flow control. Receiving: the stream window is `SETTINGS_INITIAL_WINDOW_SIZE` (the `streamWindowBytes` option)
 * and the connection window {@link CONNECTION_WINDOW_BYTES}. A stream's received bytes are credited back
 * (WINDOW_UPDATE) only once consumed: at once while it is not paused, else when its consumer resumes it; so a
 * paused stream stops the peer after one stream window. The connection window is credited as data arrives (in
 * batches of half of it): what the streams buffer is already bounded by their own windows, and credit held back
 * at the connection level would let slow consumers (or stream credits still below their batch threshold on many
 * streams) starve every other stream of the connection. Sending: DATA never exceeds
 * the peer's stream and connection windows or its maximum frame size, and bulk data waits while the channel is
 * congested; a stream whose data could not all be sent is told when it can write again.
 */

import { ByteWriter } from './bytes.ts';
import type { ByteChannel, ChannelReceiver } from './channel.ts';
import {
  CLIENT_PREFACE,
  contentStart,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  errorName,
  Flag,
  FrameReader,
  type FrameSink,
  FrameType,
  MAX_ALLOWED_FRAME_SIZE,
  MAX_WINDOW,
  paddingOf,
  readU32,
  Setting,
  writeData,
  writeGoaway,
  writeHeaders,
  writePing,
  writeRstStream,
  writeSettings,
  writeSettingsAck,
  writeWindowUpdate,
} from './frames.ts';
import { HpackDecoder, HpackEncoder, HpackError } from './hpack.ts';

/** Receive window of the whole connection (we raise it from the default 65535 right after the preface). */
export const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;
/** Pending output above which a session writes at once instead of at the end of the event-loop turn. */
export const FLUSH_THRESHOLD_BYTES = 64 * 1024;
/** Concurrent streams assumed when the peer's SETTINGS do not limit them. */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/**
 * Largest header block (HEADERS plus CONTINUATION fragments) accepted from the peer: twice the announced header
 * list limit, so a list just over that limit, even sent as plain literals, fails only its stream; a larger
 * block fails the connection (a flood guard).
 */
const MAX_HEADER_BLOCK_BYTES = 512 * 1024;
/**
 * Most CONTINUATION frames in one header block. Empty (or tiny) fragments would otherwise let a peer grow the list
 * of fragments without ever reaching {@link MAX_HEADER_BLOCK_BYTES} (a CONTINUATION flood).
 */
export const MAX_CONTINUATION_FRAMES = 512;
/**
 * Most PING and SETTINGS acknowledgements written while the channel is congested. A peer that sends them without
 * reading our answers would otherwise pile up our output without bound (a PING or SETTINGS flood).
 */
export const MAX_ACKS_WHILE_CONGESTED = 1000;
/** Largest stream id a client may use. */
const MAX_STREAM_ID = 0x7fffffff;

/** Why a stream ended abnormally. */
export interface StreamFailure {
  /**
   * `refused`: the peer certainly did not process the request (REFUSED_STREAM, above a GOAWAY's last stream id,
   * or never written before the connection was lost); `reset`: the peer sent RST_STREAM; `protocol`: the peer
   * broke the protocol (we reset the stream or failed the connection); `closed`: the connection was lost.
   */
  kind: 'refused' | 'reset' | 'protocol' | 'closed';
  /** HTTP/2 error code (RST_STREAM's or GOAWAY's or ours). */
  code: number;
  /** Human-readable detail. */
  message: string;
}

/** Receives the events of one stream. Calls stop once the stream closed. */
export interface StreamHandler {
  /** A decoded header block (`[name, value, ...]`, pseudo-headers included); `endStream`: nothing follows. */
  onHeaders(fields: string[], endStream: boolean): void;
  /** Response body bytes (maybe empty when only `endStream` is news); `endStream`: the peer finished the stream. */
  onData(chunk: Uint8Array, endStream: boolean): void;
  /** The stream ended abnormally (not called for resets we sent ourselves). */
  onReset(failure: StreamFailure): void;
  /** Data queued by {@link H2Stream.write} that returned false has been sent; more may be written. */
  onWritable(): void;
}

/** Receives the connection-level events of a session. */
export interface SessionListener {
  /** The peer's first SETTINGS frame arrived: streams may be opened. */
  onReady(session: H2Session): void;
  /** Later SETTINGS changed the peer's limits (for example MAX_CONCURRENT_STREAMS). */
  onSettings(session: H2Session): void;
  /** A stream closed (its slot is free). */
  onStreamClosed(session: H2Session): void;
  /** The peer sent GOAWAY: no new streams on this session. */
  onGoaway(session: H2Session): void;
  /** The connection is gone (after every stream was failed). `failure` is set unless we closed it gracefully. */
  onClosed(session: H2Session, failure: StreamFailure | undefined): void;
}

/** Settings we announce. */
export interface SessionOptions {
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: the receive window of each stream. */
  streamWindowBytes: number;
}

/** One stream of a {@link H2Session}: flow-control state and the send queue. */
export class H2Stream {
  /** Bytes we may still send (the peer's window for this stream). */
  sendWindow: number;
  /** Bytes the peer may still send. */
  recvWindow: number;
  /** Received and consumed, not yet credited back. */
  unacked = 0;
  /** Received while paused (credited on resume). */
  held = 0;
  /** The handler asked to stop reading (flow control: no window credited until it resumes). */
  paused = false;
  /** We sent END_STREAM. */
  localEnded = false;
  /** The peer sent END_STREAM. */
  remoteEnded = false;
  /** The stream is over (both ends done, reset, or the connection went). */
  closed = false;
  /** Data waiting for window or for the channel. */
  queue: Uint8Array[] | undefined = undefined;
  /** Offset into `queue[0]` already sent. */
  queueOffset = 0;
  /** END_STREAM is to follow the queued data. */
  endQueued = false;
  /** A write returned false: call `onWritable` once the queue is empty. */
  wantsWritable = false;
  /** In the session's list of streams waiting to send. */
  blocked = false;

  constructor(
    readonly session: H2Session,
    readonly id: number,
    public handler: StreamHandler,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /**
   * Queues request body bytes (the array must not be changed afterwards). Returns false when they could not all
   * be sent now (window or channel): wait for {@link StreamHandler.onWritable} before writing more.
   */
  write(chunk: Uint8Array): boolean {
    if (this.closed || this.localEnded || this.endQueued) return false;
    if (chunk.byteLength > 0) (this.queue ??= []).push(chunk);
    this.session.sendQueued(this);
    if (this.queue !== undefined || this.session.congested) {
      this.wantsWritable = true;
      // All sent, but the channel is congested (its last flush said so): wait for the drain like a blocked stream,
      // so onWritable follows.
      if (this.queue === undefined) this.session.waitForDrain(this);
      return false;
    }
    return true;
  }

  /** Ends our side of the stream (END_STREAM after any queued data). */
  end(): void {
    if (this.closed || this.localEnded || this.endQueued) return;
    this.endQueued = true;
    this.session.sendQueued(this);
  }

  /** Resets the stream (RST_STREAM with `code`, CANCEL by default) and closes it; the handler is not called. */
  reset(code: number = ErrorCode.CANCEL): void {
    this.session.resetStream(this, code);
  }

  /** Stops crediting received bytes: the peer stops after the rest of its window. */
  pause(): void {
    this.paused = true;
  }

  /** Credits what arrived while paused and goes on crediting. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.unacked += this.held;
    this.held = 0;
    this.session.creditStream(this);
  }
}

const EMPTY = new Uint8Array(0);

/** Sessions with output waiting for the end of this event-loop turn. */
let flushList: H2Session[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  const list = flushList;
  flushList = [];
  for (let i = 0; i < list.length; i++) (list[i] as H2Session).flush();
}

/** Scratch buffer for one header block (encoded and framed synchronously, so one buffer serves every session). */
const blockWriter = new ByteWriter(4096);

/** A client HTTP/2 connection; see the module comment. Start it with {@link start}. */
export class H2Session implements ChannelReceiver, FrameSink {
  /** Output not yet handed to the channel. */
  private readonly out = new ByteWriter(16 * 1024);
  private flushQueued = false;
  private readonly reader: FrameReader;
  private readonly decoder = new HpackDecoder();
  /**
   * Our HPACK encoder (a mirror of the peer's decoding table). Blocks are encoded only in
   * {@link openRequest}, right where their HEADERS frame is appended to {@link out}, so encoder state and the
   * byte stream stay in the same order.
   */
  private readonly encoder = new HpackEncoder();
  private readonly streams = new Map<number, H2Stream>();
  /** Streams with data waiting for window or channel. */
  private blockedStreams: H2Stream[] = [];
  private nextStreamId = 1;
  /** Highest stream id whose HEADERS were handed to the channel. */
  private writtenStreamId = 0;
  /** Peer settings. */
  peerMaxConcurrentStreams = DEFAULT_MAX_CONCURRENT_STREAMS;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow = CONNECTION_WINDOW_BYTES;
  private connUnacked = 0;
  private readonly streamWindow: number;
  /** The peer's first SETTINGS arrived. */
  ready = false;
  /** The peer sent GOAWAY. */
  goawayReceived = false;
  /** Error code of the last GOAWAY received (NO_ERROR before any). */
  goawayCode: number = ErrorCode.NO_ERROR;
  /** We sent GOAWAY (graceful close): no new streams; the connection closes when the last stream does. */
  closing = false;
  /** The connection is gone. */
  closed = false;
  /** The channel said it is congested; bulk data waits for its drain. */
  congested = false;
  /** Header block being assembled from HEADERS and CONTINUATION frames. */
  private blockStreamId = 0;
  private blockFlags = 0;
  private blockParts: Uint8Array[] | undefined = undefined;
  private blockBytes = 0;
  /** Acknowledgements written since the channel last reported congestion (see {@link MAX_ACKS_WHILE_CONGESTED}). */
  private acksWhileCongested = 0;

  /**
   * @param channel where frames are written (events must be delivered to this session: `attach(session)`)
   * @param listener connection-level events
   * @param options settings we announce
   */
  constructor(
    private readonly channel: ByteChannel,
    private readonly listener: SessionListener,
    options: SessionOptions,
  ) {
    this.streamWindow = Math.min(MAX_WINDOW, Math.max(1, options.streamWindowBytes));
    this.reader = new FrameReader(this);
  }

  /** Sends the connection preface, our SETTINGS and the connection window, at once. */
  start(): void {
    const w = this.out;
    w.bytes(CLIENT_PREFACE);
    writeSettings(w, [
      [Setting.ENABLE_PUSH, 0],
      [Setting.INITIAL_WINDOW_SIZE, this.streamWindow],
      [Setting.MAX_HEADER_LIST_SIZE, this.decoder.maxHeaderListBytes],
    ]);
    writeWindowUpdate(w, 0, CONNECTION_WINDOW_BYTES - DEFAULT_WINDOW);
    this.flush();
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** True when a new stream may be opened now (ready, not going away, ids left). */
  canOpen(): boolean {
    return this.ready && !this.closed && !this.closing && !this.goawayReceived && this.nextStreamId <= MAX_STREAM_ID;
  }

  /**
   * Opens a stream whose header block is encoded here from `fields` (`[name, value, ...]`, lower-case names, already
   * checked) with the connection's HPACK encoder. `endStream`: no request body follows. Call only when {@link canOpen}.
   */
  openRequest(fields: readonly string[], endStream: boolean, handler: StreamHandler): H2Stream {
    const w = blockWriter;
    w.reset();
    const enc = this.encoder;
    enc.beginBlock(w);
    for (let i = 0; i < fields.length; i += 2) enc.field(w, fields[i] as string, fields[i + 1] as string);
    enc.endBlock(w);
    return this.openBlock(w.buf, w.length, endStream, handler);
  }

  /** Header block bytes sent so far (all streams), and header blocks: for stats and tests. */
  get headerBlockStats(): { blocks: number; bytes: number } {
    return { blocks: this.encoder.blocksEncoded, bytes: this.encoder.bytesEncoded };
  }

  /** Opens the stream with a complete header block. */
  private openBlock(block: Uint8Array, blockLength: number, endStream: boolean, handler: StreamHandler): H2Stream {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const s = new H2Stream(this, id, handler, this.peerInitialWindow, this.streamWindow);
    s.localEnded = endStream;
    this.streams.set(id, s);
    writeHeaders(this.out, id, block, blockLength, endStream, this.peerMaxFrameSize);
    this.queueFlush();
    return s;
  }

  /** Closes gracefully: GOAWAY now, the connection once the open streams are done. */
  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    writeGoaway(this.out, 0, ErrorCode.NO_ERROR);
    this.flush();
    if (this.streams.size === 0) this.shutdown(undefined);
  }

  /** Closes at once; open streams fail as `closed`. */
  destroy(): void {
    if (this.closed) return;
    this.teardown({ kind: 'closed', code: ErrorCode.CANCEL, message: 'session destroyed' });
    this.channel.destroy();
  }

  // ---- output

  /** Hands the pending output to the channel now. */
  flush(): void {
    this.flushQueued = false;
    const w = this.out;
    if (w.length === 0 || this.closed) {
      w.reset();
      return;
    }
    this.writtenStreamId = this.nextStreamId - 2;
    const ok = this.channel.write(w.buf, w.length);
    w.reset();
    if (!ok) this.congested = true;
  }

  private queueFlush(): void {
    if (this.out.length >= FLUSH_THRESHOLD_BYTES) {
      this.flush();
      return;
    }
    if (this.flushQueued) return;
    this.flushQueued = true;
    flushList.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }

  /** Sends as much of `s`'s queued data (and its END_STREAM) as windows and channel allow. */
  sendQueued(s: H2Stream): void {
    if (s.closed || this.closed) return;
    const q = s.queue;
    if (q !== undefined) {
      while (q.length > 0) {
        if (this.congested) {
          this.block(s);
          return;
        }
        const chunk = q[0] as Uint8Array;
        const left = chunk.byteLength - s.queueOffset;
        const n = Math.min(left, s.sendWindow, this.connSendWindow, this.peerMaxFrameSize);
        if (n <= 0) {
          this.block(s);
          return;
        }
        const endNow = n === left && q.length === 1 && s.endQueued;
        writeData(this.out, s.id, chunk, s.queueOffset, s.queueOffset + n, endNow);
        s.sendWindow -= n;
        this.connSendWindow -= n;
        if (n === left) {
          q.shift();
          s.queueOffset = 0;
        } else s.queueOffset += n;
        if (endNow) {
          s.endQueued = false;
          s.localEnded = true;
        }
        this.queueFlush();
      }
      s.queue = undefined;
    }
    if (s.endQueued) {
      s.endQueued = false;
      s.localEnded = true;
      writeData(this.out, s.id, EMPTY, 0, 0, true);
      this.queueFlush();
    }
    if (s.localEnded && s.remoteEnded) {
      this.closeStream(s);
      return;
    }
    if (s.wantsWritable) {
      if (!this.congested) {
        s.wantsWritable = false;
        s.handler.onWritable();
      } else this.block(s); // still waiting: told once the channel drains (unblock may have taken it off the list)
    }
  }

  /** `s` wrote everything but the channel is congested: it is told (onWritable) once the channel drains. */
  waitForDrain(s: H2Stream): void {
    this.block(s);
  }

  private block(s: H2Stream): void {
    if (s.blocked) return;
    s.blocked = true;
    this.blockedStreams.push(s);
  }

  /** Retries every stream waiting to send (a window opened or the channel drained). */
  private unblock(): void {
    const list = this.blockedStreams;
    if (list.length === 0) return;
    this.blockedStreams = [];
    for (let i = 0; i < list.length; i++) {
      const s = list[i] as H2Stream;
      s.blocked = false;
      this.sendQueued(s);
    }
  }

  /** Sends WINDOW_UPDATEs for what `s` consumed, when enough accumulated (half its window). */
  creditStream(s: H2Stream): void {
    if (s.closed || this.closed) return;
    const n = s.unacked;
    if (n < this.streamWindow / 2) return;
    s.unacked = 0;
    if (!s.remoteEnded) {
      s.recvWindow += n;
      writeWindowUpdate(this.out, s.id, n);
      this.queueFlush();
    }
  }

  private creditConnection(n: number): void {
    this.connUnacked += n;
    if (this.connUnacked < CONNECTION_WINDOW_BYTES / 2 || this.closed) return;
    const inc = this.connUnacked;
    this.connUnacked = 0;
    this.connRecvWindow += inc;
    writeWindowUpdate(this.out, 0, inc);
    this.queueFlush();
  }

  /** Sends RST_STREAM and closes `s` (no handler call). */
  resetStream(s: H2Stream, code: number): void {
    if (s.closed) return;
    if (!this.closed) {
      writeRstStream(this.out, s.id, code);
      this.queueFlush();
    }
    this.closeStream(s);
  }

  private closeStream(s: H2Stream): void {
    if (s.closed) return;
    s.closed = true;
    s.queue = undefined;
    this.streams.delete(s.id);
    if (s.blocked) {
      s.blocked = false;
      const i = this.blockedStreams.indexOf(s);
      if (i >= 0) this.blockedStreams.splice(i, 1);
    }
    this.listener.onStreamClosed(this);
    if ((this.closing || this.goawayReceived) && this.streams.size === 0 && !this.closed) this.shutdown(undefined);
  }

  /** Stream error we detected: RST_STREAM(code) and the handler learns why. */
  private streamError(s: H2Stream, code: number, message: string): void {
    if (s.closed) return;
    this.resetStream(s, code);
    s.handler.onReset({ kind: 'protocol', code, message });
  }

  /** Connection error we detected (RFC 9113 §5.4.1): GOAWAY(code), close, and every stream fails. */
  private connectionError(code: number, message: string): void {
    if (this.closed) return;
    writeGoaway(this.out, 0, code);
    this.shutdown({ kind: 'protocol', code, message: `${errorName(code)}: ${message}` });
  }

  /**
   * Sends what is queued, fails the open streams with `failure` and closes the channel: after the last stream of
   * a going-away session, or after a connection error (its GOAWAY queued).
   */
  private shutdown(failure: StreamFailure | undefined): void {
    if (this.closed) return;
    const stuck = this.congested;
    this.flush();
    this.teardown(failure);
    // Every stream is done; when the peer is not reading, a graceful end would never complete (nor free the socket).
    if (stuck) this.channel.destroy();
    else this.channel.end();
  }

  /** Marks the session closed and fails every open stream with `failure`; reports the close once. */
  private teardown(failure: StreamFailure | undefined): void {
    if (this.closed) return;
    this.closed = true;
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blockedStreams = [];
    const f = failure ?? { kind: 'closed' as const, code: ErrorCode.NO_ERROR, message: 'connection closed' };
    for (const s of streams) {
      s.closed = true;
      s.queue = undefined;
      this.listener.onStreamClosed(this);
      // A stream whose HEADERS never reached the channel was certainly not processed.
      const never = s.id > this.writtenStreamId;
      s.handler.onReset(never && f.kind === 'closed' ? { kind: 'refused', code: f.code, message: `${f.message} before the request was sent` } : f);
    }
    this.listener.onClosed(this, failure);
  }

  // ---- channel events

  /** Channel event: bytes arrived from the peer. */
  onBytes(bytes: Uint8Array): void {
    if (this.closed) return;
    try {
      this.reader.push(bytes);
    } catch (err) {
      // A bug (ours or a handler's) must fail this connection, not escape into the socket's event handler.
      if (this.closed) return;
      this.teardown({
        kind: 'protocol',
        code: ErrorCode.INTERNAL_ERROR,
        message: `INTERNAL_ERROR: ${err instanceof Error ? err.message : String(err)}`,
      });
      this.channel.destroy();
    }
  }

  /** Channel event: everything queued was written; blocked streams may write again. */
  onDrain(): void {
    this.congested = false;
    this.acksWhileCongested = 0;
    this.unblock();
  }

  /** Channel event: the connection closed (`err` when it failed). */
  onClosed(err?: Error): void {
    if (this.closed) return;
    this.teardown({ kind: 'closed', code: ErrorCode.NO_ERROR, message: err ? `connection failed: ${err.message}` : 'connection closed by the peer' });
  }

  // ---- frames

  /** Frame reader event: a frame above the maximum frame size (a connection error). */
  onOversizedFrame(length: number, type: number): void {
    this.connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of type ${type} with ${length} bytes, above the maximum frame size`);
  }

  /** Frame reader event: one frame, its payload `buf[start, end)`; false stops reading (the connection failed). */
  onFrame(type: number, flags: number, streamId: number, buf: Uint8Array, start: number, end: number): boolean {
    if (this.blockParts !== undefined && (type !== FrameType.CONTINUATION || streamId !== this.blockStreamId)) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'header block interrupted by another frame');
      return false;
    }
    if (!this.ready && !(type === FrameType.SETTINGS && (flags & Flag.ACK) === 0)) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'the first frame from the server is not SETTINGS');
      return false;
    }
    switch (type) {
      case FrameType.DATA:
        this.onDataFrame(flags, streamId, buf, start, end);
        break;
      case FrameType.HEADERS:
        this.onHeadersFrame(flags, streamId, buf, start, end);
        break;
      case FrameType.CONTINUATION:
        this.onContinuationFrame(flags, streamId, buf.subarray(start, end));
        break;
      case FrameType.PRIORITY:
        if (streamId === 0) this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        else if (end - start !== 5) {
          const s = this.streams.get(streamId);
          if (s) this.streamError(s, ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY frame of the wrong size');
        }
        break;
      case FrameType.RST_STREAM:
        this.onRstStreamFrame(streamId, buf.subarray(start, end));
        break;
      case FrameType.SETTINGS:
        this.onSettingsFrame(flags, streamId, buf.subarray(start, end));
        break;
      case FrameType.PUSH_PROMISE:
        this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE although push is disabled');
        break;
      case FrameType.PING:
        this.onPingFrame(flags, streamId, buf.subarray(start, end));
        break;
      case FrameType.GOAWAY:
        this.onGoawayFrame(streamId, buf.subarray(start, end));
        break;
      case FrameType.WINDOW_UPDATE:
        this.onWindowUpdateFrame(streamId, buf.subarray(start, end));
        break;
      default:
        break; // unknown frame types are ignored (RFC 9113 §4.1)
    }
    return !this.closed;
  }

  /** True (after failing the connection) when `streamId` names a stream we never opened. */
  private isIdle(streamId: number): boolean {
    if (streamId < this.nextStreamId && (streamId & 1) === 1) return false;
    this.connectionError(ErrorCode.PROTOCOL_ERROR, `frame on stream ${streamId}, which was never opened`);
    return true;
  }

  private onDataFrame(flags: number, streamId: number, buf: Uint8Array, start: number, end: number): void {
    if (streamId === 0) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
      return;
    }
    const from = contentStart(start, end, flags, FrameType.DATA);
    const to = end - paddingOf(buf, start, flags);
    if (from < 0 || to < from) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA padding longer than the frame');
      return;
    }
    const length = end - start;
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) {
      this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
      return;
    }
    const s = this.streams.get(streamId);
    // The connection window is credited as data arrives (each stream's own window bounds what it buffers).
    if (s !== undefined || !this.isIdle(streamId)) this.creditConnection(length);
    if (s === undefined) return; // a stream we closed already
    if (s.remoteEnded) {
      this.streamError(s, ErrorCode.STREAM_CLOSED, 'DATA after END_STREAM');
      return;
    }
    s.recvWindow -= length;
    if (s.recvWindow < 0) {
      this.streamError(s, ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the stream window');
      return;
    }
    const dataLength = to - from;
    // Padding counts against the windows but is never consumed: credit it at once.
    s.unacked += length - dataLength;
    if (s.paused) s.held += dataLength;
    else s.unacked += dataLength;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (endStream) s.remoteEnded = true;
    const chunk = dataLength === 0 ? EMPTY : buf.subarray(from, to);
    s.handler.onData(chunk, endStream);
    if (s.closed) return;
    if (endStream) {
      if (s.localEnded) this.closeStream(s);
    } else this.creditStream(s);
  }

  private onHeadersFrame(flags: number, streamId: number, buf: Uint8Array, start: number, end: number): void {
    if (streamId === 0) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
      return;
    }
    const from = contentStart(start, end, flags, FrameType.HEADERS);
    const to = end - paddingOf(buf, start, flags);
    if (from < 0 || to < from) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
      return;
    }
    if ((flags & Flag.END_HEADERS) !== 0) {
      this.onHeaderBlock(flags, streamId, buf, from, to);
      return;
    }
    this.blockStreamId = streamId;
    this.blockFlags = flags;
    this.blockParts = [buf.subarray(from, to)];
    this.blockBytes = to - from;
  }

  private onContinuationFrame(flags: number, streamId: number, payload: Uint8Array): void {
    const parts = this.blockParts;
    if (parts === undefined) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress');
      return;
    }
    if (parts.length > MAX_CONTINUATION_FRAMES) {
      this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block in more than ${MAX_CONTINUATION_FRAMES} CONTINUATION frames`);
      return;
    }
    parts.push(payload);
    this.blockBytes += payload.length;
    if (this.blockBytes > MAX_HEADER_BLOCK_BYTES) {
      this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block larger than ${MAX_HEADER_BLOCK_BYTES} bytes`);
      return;
    }
    if ((flags & Flag.END_HEADERS) === 0) return;
    const block = new Uint8Array(this.blockBytes);
    let at = 0;
    for (const p of parts) {
      block.set(p, at);
      at += p.length;
    }
    this.blockParts = undefined;
    this.blockBytes = 0;
    this.onHeaderBlock(this.blockFlags, streamId, block, 0, block.length);
  }

  private onHeaderBlock(flags: number, streamId: number, block: Uint8Array, start: number, end: number): void {
    let fields: string[];
    try {
      // Decoded even for streams we closed: the dynamic table must stay in step with the peer's.
      fields = this.decoder.decode(block, start, end);
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      this.connectionError(ErrorCode.COMPRESSION_ERROR, err.message);
      return;
    }
    const s = this.streams.get(streamId);
    if (s === undefined) {
      this.isIdle(streamId);
      return;
    }
    if (this.decoder.listTooLarge) {
      this.streamError(s, ErrorCode.PROTOCOL_ERROR, `header list larger than ${this.decoder.maxHeaderListBytes} bytes`);
      return;
    }
    if (s.remoteEnded) {
      this.streamError(s, ErrorCode.STREAM_CLOSED, 'HEADERS after END_STREAM');
      return;
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (endStream) s.remoteEnded = true;
    s.handler.onHeaders(fields, endStream);
    if (endStream && !s.closed && s.localEnded) this.closeStream(s);
  }

  private onRstStreamFrame(streamId: number, payload: Uint8Array): void {
    if (streamId === 0) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
      return;
    }
    if (payload.length !== 4) {
      this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM of the wrong size');
      return;
    }
    const s = this.streams.get(streamId);
    if (s === undefined) {
      this.isIdle(streamId);
      return;
    }
    const code = readU32(payload, 0);
    this.closeStream(s);
    s.handler.onReset({
      kind: code === ErrorCode.REFUSED_STREAM ? 'refused' : 'reset',
      code,
      message: `RST_STREAM ${errorName(code)}`,
    });
  }

  private onSettingsFrame(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
      return;
    }
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS acknowledgement with a payload');
      return;
    }
    if (payload.length % 6 !== 0) {
      this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
      return;
    }
    // INITIAL_WINDOW_SIZE may appear many times in one frame. Entries count in order (RFC 9113 §6.5.3), but the
    // stream windows are moved once, to the last value (not once per entry and stream): a window overflows at some
    // entry exactly when it would at the largest one, so that is the one checked.
    let initialWindow = -1;
    let largestInitial = -1;
    for (let at = 0; at < payload.length; at += 6) {
      const id = ((payload[at] as number) << 8) | (payload[at + 1] as number);
      const value = readU32(payload, at + 2);
      switch (id) {
        case Setting.ENABLE_PUSH:
          // RFC 9113 section 6.5.2: a server sends only 0; a client treats anything else as a connection error.
          if (value !== 0) {
            this.connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
            return;
          }
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.peerMaxConcurrentStreams = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE:
          if (value > MAX_WINDOW) {
            this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
            return;
          }
          initialWindow = value;
          if (value > largestInitial) largestInitial = value;
          break;
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_ALLOWED_FRAME_SIZE) {
            this.connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
            return;
          }
          this.peerMaxFrameSize = value;
          break;
        case Setting.HEADER_TABLE_SIZE:
          // Our next header block announces the new table size (the peer applies it once it reads our ACK, which
          // is written below, before that block).
          this.encoder.setPeerTableSize(value);
          break;
        default:
          break; // unknown settings are ignored
      }
    }
    let windowGrew = false;
    if (initialWindow >= 0) {
      let widest = Number.NEGATIVE_INFINITY;
      for (const s of this.streams.values()) if (s.sendWindow > widest) widest = s.sendWindow;
      if (widest + largestInitial - this.peerInitialWindow > MAX_WINDOW) {
        this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window');
        return;
      }
      // Every stream window moves by the change, and may become negative (RFC 9113 §6.9.2).
      const delta = initialWindow - this.peerInitialWindow;
      this.peerInitialWindow = initialWindow;
      for (const s of this.streams.values()) s.sendWindow += delta;
      windowGrew = delta > 0;
    }
    writeSettingsAck(this.out);
    this.queueFlush();
    if (this.ackFlood()) return;
    if (!this.ready) {
      this.ready = true;
      this.listener.onReady(this);
    } else this.listener.onSettings(this);
    if (windowGrew) this.unblock();
  }

  private onPingFrame(flags: number, streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
      return;
    }
    if (payload.length !== 8) {
      this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING of the wrong size');
      return;
    }
    if ((flags & Flag.ACK) !== 0) return; // we send no PINGs of our own
    writePing(this.out, payload, true);
    this.queueFlush();
    this.ackFlood();
  }

  /**
   * Counts an acknowledgement just written; true (after failing the connection) when the channel has been congested
   * for more than {@link MAX_ACKS_WHILE_CONGESTED} of them: the peer sends PING or SETTINGS without reading.
   */
  private ackFlood(): boolean {
    if (!this.congested) return false;
    if (++this.acksWhileCongested <= MAX_ACKS_WHILE_CONGESTED) return false;
    this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${MAX_ACKS_WHILE_CONGESTED} PING or SETTINGS to acknowledge while not reading`);
    return true;
  }

  private onGoawayFrame(streamId: number, payload: Uint8Array): void {
    if (streamId !== 0) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
      return;
    }
    if (payload.length < 8) {
      this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY too short');
      return;
    }
    const lastStreamId = readU32(payload, 0) & 0x7fffffff;
    const code = readU32(payload, 4);
    this.goawayReceived = true;
    this.goawayCode = code;
    // Streams above the last one the peer processed were not processed: they may be retried elsewhere.
    const refused: H2Stream[] = [];
    for (const s of this.streams.values()) if (s.id > lastStreamId) refused.push(s);
    for (const s of refused) {
      this.closeStream(s);
      s.handler.onReset({ kind: 'refused', code, message: `GOAWAY ${errorName(code)} (last stream ${lastStreamId})` });
    }
    if (!this.closed) {
      this.listener.onGoaway(this);
      if (this.streams.size === 0) this.shutdown(undefined);
    }
  }

  private onWindowUpdateFrame(streamId: number, payload: Uint8Array): void {
    if (payload.length !== 4) {
      this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE of the wrong size');
      return;
    }
    const increment = readU32(payload, 0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) {
        this.connectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
        return;
      }
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_WINDOW) {
        this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
        return;
      }
      this.unblock();
      return;
    }
    const s = this.streams.get(streamId);
    if (s === undefined) {
      this.isIdle(streamId);
      return;
    }
    if (increment === 0) {
      this.streamError(s, ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      return;
    }
    s.sendWindow += increment;
    if (s.sendWindow > MAX_WINDOW) {
      this.streamError(s, ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
      return;
    }
    if (s.queue !== undefined || s.endQueued) this.sendQueued(s);
  }
}
