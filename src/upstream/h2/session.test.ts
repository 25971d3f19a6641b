import { describe, expect, test } from 'bun:test';
import { ByteWriter } from './bytes.ts';
import type { ByteChannel } from './channel.ts';
import {
  CLIENT_PREFACE,
  ErrorCode,
  Flag,
  FrameReader,
  FrameType,
  readU32,
  Setting,
  writeData,
  writeFrameHeader,
  writeGoaway,
  writeHeaders,
  writePing,
  writeRstStream,
  writeSettings,
  writeSettingsAck,
  writeWindowUpdate,
} from './frames.ts';
import { encodeField, writeInt } from './hpack.ts';
import {
  H2Session,
  type H2Stream,
  MAX_ACKS_WHILE_CONGESTED,
  MAX_CONTINUATION_FRAMES,
  type SessionListener,
  type StreamFailure,
  type StreamHandler,
} from './session.ts';

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/** A channel that records what the session writes. */
class FakeChannel implements ByteChannel {
  written: Uint8Array[] = [];
  ended = false;
  destroyed = false;
  congested = false;
  write(bytes: Uint8Array, length: number): boolean {
    this.written.push(bytes.slice(0, length));
    return !this.congested;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

/** Records a stream's events. */
class Recorder implements StreamHandler {
  headers: { fields: string[]; end: boolean }[] = [];
  data: number[] = [];
  ended = false;
  failure: StreamFailure | undefined;
  writable = 0;
  onHeaders(fields: string[], endStream: boolean): void {
    this.headers.push({ fields, end: endStream });
    if (endStream) this.ended = true;
  }
  onData(chunk: Uint8Array, endStream: boolean): void {
    this.data.push(...chunk);
    if (endStream) this.ended = true;
  }
  onReset(failure: StreamFailure): void {
    this.failure = failure;
  }
  onWritable(): void {
    this.writable++;
  }
}
/** A session on a fake channel plus a scripted peer. */
function setup(streamWindowBytes = 65_535) {
  const channel = new FakeChannel();
  const events: string[] = [];
  let closedWith: StreamFailure | undefined;
  const listener: SessionListener = {
    onReady: () => events.push('ready'),
    onSettings: () => events.push('settings'),
    onStreamClosed: () => events.push('stream-closed'),
    onGoaway: () => events.push('goaway'),
    onClosed: (_s, failure) => {
      events.push('closed');
      closedWith = failure;
    },
  };
  const session = new H2Session(channel, listener, { streamWindowBytes });
  session.start();
  let readOffset = 0;
  let prefaceSeen = false;
  /** Frames the session wrote since the last call (flushes first). */
  const sent = (): Frame[] => {
    session.flush();
    const all = Buffer.concat(channel.written);
    let bytes: Uint8Array = all.subarray(readOffset);
    readOffset = all.length;
    if (!prefaceSeen) {
      expect(Buffer.from(bytes.subarray(0, CLIENT_PREFACE.length))).toEqual(Buffer.from(CLIENT_PREFACE));
      bytes = bytes.subarray(CLIENT_PREFACE.length);
      prefaceSeen = true;
    }
    const frames: Frame[] = [];
    new FrameReader({
      onFrame: (type, flags, streamId, buf, start, end) => {
        frames.push({ type, flags, streamId, payload: buf.slice(start, end) });
        return true;
      },
      onOversizedFrame: () => {
        throw new Error('oversized frame from the session');
      },
    }).push(bytes);
    return frames;
  };
  /** Feeds frames written by `build` to the session as the peer. */
  const peer = (build: (w: ByteWriter) => void) => {
    const w = new ByteWriter();
    build(w);
    session.onBytes(w.copy());
  };
  /** Completes the handshake with the peer's SETTINGS. */
  const handshake = (settings: [number, number][] = []) => {
    peer((w) => writeSettings(w, settings));
    expect(session.ready).toBe(true);
  };
  /** Opens a GET stream. */
  const open = (handler: StreamHandler = new Recorder(), endStream = true): H2Stream => {
    return session.openRequest([':method', 'GET', ':path', '/'], endStream, handler);
  };
  return { channel, session, events, sent, peer, handshake, open, closed: () => closedWith };
}

/** A response header block `:status: <status>` plus fields. */
function responseBlock(status: string, ...fields: [string, string][]): Uint8Array {
  const w = new ByteWriter();
  encodeField(w, ':status', status);
  for (const [n, v] of fields) encodeField(w, n, v);
  return w.copy();
}

describe('H2Session', () => {
  test('start: preface, SETTINGS (push off, our stream window) and the connection window; ready after the peer SETTINGS', () => {
    const h = setup(262_144);
    const first = h.sent();
    expect(first.map((f) => f.type)).toEqual([FrameType.SETTINGS, FrameType.WINDOW_UPDATE]);
    expect([...(first[0] as Frame).payload]).toEqual([
      0,
      Setting.ENABLE_PUSH,
      0,
      0,
      0,
      0,
      0,
      Setting.INITIAL_WINDOW_SIZE,
      0,
      4,
      0,
      0,
      0,
      Setting.MAX_HEADER_LIST_SIZE,
      0,
      4,
      0,
      0,
    ]);
    expect((first[1] as Frame).streamId).toBe(0);
    expect(h.session.canOpen()).toBe(false);
    h.handshake([[Setting.MAX_CONCURRENT_STREAMS, 7]]);
    expect(h.events).toEqual(['ready']);
    expect(h.session.peerMaxConcurrentStreams).toBe(7);
    expect(h.sent().map((f) => [f.type, f.flags])).toEqual([[FrameType.SETTINGS, Flag.ACK]]);
  });

  test('the frames of several streams opened in one turn leave in one write', async () => {
    const h = setup();
    h.handshake();
    h.sent();
    const before = h.channel.written.length;
    h.open();
    h.open();
    h.open();
    expect(h.channel.written.length).toBe(before);
    await new Promise((r) => setImmediate(r));
    expect(h.channel.written.length).toBe(before + 1);
    expect(h.sent().map((f) => f.streamId)).toEqual([1, 3, 5]);
  });

  test('PING is answered with an ACK carrying the same payload', () => {
    const h = setup();
    h.handshake();
    h.sent();
    const payload = Uint8Array.of(8, 7, 6, 5, 4, 3, 2, 1);
    h.peer((w) => writePing(w, payload, false));
    const frames = h.sent();
    expect(frames.map((f) => [f.type, f.flags])).toEqual([[FrameType.PING, Flag.ACK]]);
    expect([...(frames[0] as Frame).payload]).toEqual([...payload]);
    h.peer((w) => writePing(w, payload, true)); // an ACK is not answered
    expect(h.sent()).toEqual([]);
  });

  test('a response header block split over HEADERS and CONTINUATION frames', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    h.open(r);
    const block = responseBlock('200', ['x-long', 'y'.repeat(100)], ['content-type', 'text/plain']);
    h.peer((w) => writeHeaders(w, 1, block, block.length, true, 30));
    expect(r.headers).toEqual([{ fields: [':status', '200', 'x-long', 'y'.repeat(100), 'content-type', 'text/plain'], end: true }]);
    expect(h.events).toContain('stream-closed');
  });

  test('a frame between HEADERS and CONTINUATION is a connection PROTOCOL_ERROR', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    h.open(r);
    h.sent();
    const block = responseBlock('200', ['x-long', 'y'.repeat(100)]);
    h.peer((w) => {
      writeFrameHeader(w, 10, FrameType.HEADERS, 0, 1);
      w.bytes(block.subarray(0, 10));
      writePing(w, new Uint8Array(8), false);
    });
    expect(r.failure?.kind).toBe('protocol');
    const goaway = h.sent().find((f) => f.type === FrameType.GOAWAY);
    expect(readU32((goaway as Frame).payload, 4)).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  test.each([
    [
      'WINDOW_UPDATE of 3 bytes',
      (w: ByteWriter) => {
        writeFrameHeader(w, 3, FrameType.WINDOW_UPDATE, 0, 0);
        w.bytes(Uint8Array.of(0, 0, 1));
      },
      ErrorCode.FRAME_SIZE_ERROR,
    ],
    ['DATA on stream 0', (w: ByteWriter) => writeData(w, 0, new Uint8Array(1), 0, 1, false), ErrorCode.PROTOCOL_ERROR],
    ['PUSH_PROMISE', (w: ByteWriter) => writeFrameHeader(w, 0, FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1), ErrorCode.PROTOCOL_ERROR],
    ['HEADERS on a stream never opened', (w: ByteWriter) => writeHeaders(w, 9, Uint8Array.of(0x88), 1, true, 16384), ErrorCode.PROTOCOL_ERROR],
    ['an invalid header block', (w: ByteWriter) => writeHeaders(w, 1, Uint8Array.of(0x80), 1, true, 16384), ErrorCode.COMPRESSION_ERROR],
    ['a frame above the maximum frame size', (w: ByteWriter) => writeFrameHeader(w, 20_000, FrameType.DATA, 0, 1), ErrorCode.FRAME_SIZE_ERROR],
  ])('%s: GOAWAY with the error, the connection ends, open streams fail as protocol errors', (_name, build, code) => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    h.open(r);
    h.sent();
    h.peer(build);
    expect(r.failure?.kind).toBe('protocol');
    expect(r.failure?.code).toBe(code);
    const frames = h.sent();
    expect(frames.map((f) => f.type)).toEqual([FrameType.GOAWAY]);
    expect(readU32((frames[0] as Frame).payload, 4)).toBe(code);
    expect(h.channel.ended).toBe(true);
    expect(h.closed()?.kind).toBe('protocol');
    expect(h.session.canOpen()).toBe(false);
  });

  test('a first frame other than SETTINGS fails the connection', () => {
    const h = setup();
    h.peer((w) => writePing(w, new Uint8Array(8), false));
    expect(h.events).toEqual(['closed']);
    expect(h.closed()?.code).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  test.each([1, 2])('SETTINGS_ENABLE_PUSH %i from the server fails the connection (RFC 9113 section 6.5.2)', (value) => {
    const h = setup();
    h.peer((w) => writeSettings(w, [[Setting.ENABLE_PUSH, value]]));
    expect(h.session.ready).toBe(false);
    expect(h.events.at(-1)).toBe('closed');
    expect(h.closed()?.code).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  test('unknown frame types and PRIORITY frames are ignored', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    h.open(r);
    h.peer((w) => {
      writeFrameHeader(w, 3, 0xfa, 0xff, 1);
      w.bytes(Uint8Array.of(1, 2, 3));
      writeFrameHeader(w, 5, FrameType.PRIORITY, 0, 1);
      w.bytes(new Uint8Array(5));
    });
    expect(r.failure).toBeUndefined();
    expect(h.session.closed).toBe(false);
  });

  test('padded DATA: the handler gets the content only, and padding is credited', () => {
    const h = setup(300);
    h.handshake();
    const r = new Recorder();
    h.open(r);
    const block = responseBlock('200');
    h.peer((w) => writeHeaders(w, 1, block, block.length, false, 16384));
    h.sent();
    h.peer((w) => {
      writeFrameHeader(w, 1 + 3 + 200, FrameType.DATA, Flag.PADDED, 1);
      w.byte(200);
      w.bytes(Uint8Array.of(1, 2, 3));
      w.bytes(new Uint8Array(200));
    });
    expect(r.data).toEqual([1, 2, 3]);
    const updates = h.sent().filter((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1);
    expect(updates.map((f) => readU32(f.payload, 0))).toEqual([204]);
  });

  test('receive flow control follows consumption: a paused stream gets no credit until resumed', () => {
    const h = setup(1000);
    h.handshake();
    const r = new Recorder();
    const s = h.open(r);
    const block = responseBlock('200');
    h.peer((w) => writeHeaders(w, 1, block, block.length, false, 16384));
    h.sent();
    h.peer((w) => writeData(w, 1, new Uint8Array(600), 0, 600, false));
    expect(h.sent().map((f) => [f.type, f.streamId, readU32(f.payload, 0)])).toEqual([[FrameType.WINDOW_UPDATE, 1, 600]]);
    s.pause();
    h.peer((w) => writeData(w, 1, new Uint8Array(1000), 0, 1000, false));
    expect(h.sent()).toEqual([]);
    expect(r.data.length).toBe(1600);
    s.resume();
    expect(h.sent().map((f) => [f.type, f.streamId, readU32(f.payload, 0)])).toEqual([[FrameType.WINDOW_UPDATE, 1, 1000]]);
    // More than the window: a stream FLOW_CONTROL_ERROR.
    h.peer((w) => writeData(w, 1, new Uint8Array(1001), 0, 1001, false));
    expect(r.failure).toEqual(expect.objectContaining({ kind: 'protocol', code: ErrorCode.FLOW_CONTROL_ERROR }));
    const rst = h.sent().find((f) => f.type === FrameType.RST_STREAM);
    expect(readU32((rst as Frame).payload, 0)).toBe(ErrorCode.FLOW_CONTROL_ERROR);
    expect(h.session.closed).toBe(false);
  });

  test('send flow control: DATA stays within the peer stream window and frame size; WINDOW_UPDATE releases the rest', () => {
    const h = setup();
    h.handshake([[Setting.INITIAL_WINDOW_SIZE, 1000]]);
    const r = new Recorder();
    const s = h.open(r, false);
    h.sent();
    expect(s.write(new Uint8Array(5000).fill(7))).toBe(false);
    s.end();
    const dataBytes = (frames: Frame[]) => frames.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
    expect(dataBytes(h.sent())).toBe(1000);
    h.peer((w) => writeWindowUpdate(w, 1, 3000));
    expect(dataBytes(h.sent())).toBe(3000);
    expect(r.writable).toBe(0);
    h.peer((w) => writeWindowUpdate(w, 1, 100_000));
    const last = h.sent().filter((f) => f.type === FrameType.DATA);
    expect(last.reduce((n, f) => n + f.payload.length, 0)).toBe(1000);
    expect((last.at(-1) as Frame).flags & Flag.END_STREAM).toBe(Flag.END_STREAM);
    expect(r.writable).toBe(1);
  });

  test('send flow control: the connection window and a SETTINGS change of the initial window', () => {
    const h = setup();
    h.handshake([[Setting.INITIAL_WINDOW_SIZE, 1_000_000]]);
    const s = h.open(new Recorder(), false);
    h.sent();
    s.write(new Uint8Array(100_000));
    const frames = h.sent().filter((f) => f.type === FrameType.DATA);
    expect(frames.reduce((n, f) => n + f.payload.length, 0)).toBe(65_535); // the connection window
    expect(Math.max(...frames.map((f) => f.payload.length))).toBe(16_384); // the default max frame size
    h.peer((w) => writeWindowUpdate(w, 0, 50_000));
    expect(h.sent().reduce((n, f) => n + (f.type === FrameType.DATA ? f.payload.length : 0), 0)).toBe(34_465);
    // A smaller initial window makes the stream window negative: nothing more may be sent.
    const t = h.open(new Recorder(), false);
    h.peer((w) => writeSettings(w, [[Setting.INITIAL_WINDOW_SIZE, 0]]));
    h.sent();
    t.write(new Uint8Array(10));
    expect(h.sent().filter((f) => f.type === FrameType.DATA)).toEqual([]);
  });

  test('a congested channel holds back DATA until it drains', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    const s = h.open(r, false);
    h.sent();
    h.channel.congested = true;
    s.write(new Uint8Array(100));
    h.session.flush();
    expect(s.write(new Uint8Array(100))).toBe(false);
    h.channel.congested = false;
    h.session.onDrain();
    expect(r.writable).toBe(1);
  });

  test('GOAWAY: streams above the last stream id are refused, the others finish, then the connection closes', () => {
    const h = setup();
    h.handshake();
    const r1 = new Recorder();
    const r3 = new Recorder();
    h.open(r1);
    h.open(r3);
    h.peer((w) => writeGoaway(w, 1, ErrorCode.NO_ERROR));
    expect(r3.failure?.kind).toBe('refused');
    expect(r1.failure).toBeUndefined();
    expect(h.session.canOpen()).toBe(false);
    expect(h.channel.ended).toBe(false);
    const block = responseBlock('204');
    h.peer((w) => writeHeaders(w, 1, block, block.length, true, 16384));
    expect(r1.headers.length).toBe(1);
    expect(h.channel.ended).toBe(true);
    expect(h.closed()).toBeUndefined();
  });

  test('RST_STREAM from the peer: REFUSED_STREAM is refused, other codes reset', () => {
    const h = setup();
    h.handshake();
    const r1 = new Recorder();
    const r3 = new Recorder();
    h.open(r1);
    h.open(r3);
    h.peer((w) => {
      writeRstStream(w, 1, ErrorCode.REFUSED_STREAM);
      writeRstStream(w, 3, ErrorCode.INTERNAL_ERROR);
    });
    expect(r1.failure?.kind).toBe('refused');
    expect(r3.failure).toEqual(expect.objectContaining({ kind: 'reset', code: ErrorCode.INTERNAL_ERROR }));
    expect(h.session.streamCount).toBe(0);
  });

  test('connection lost: written streams fail as closed, unwritten ones as refused', () => {
    const h = setup();
    h.handshake();
    const written = new Recorder();
    const unwritten = new Recorder();
    h.open(written);
    h.session.flush();
    h.open(unwritten);
    h.session.onClosed(new Error('reset by peer'));
    expect(written.failure?.kind).toBe('closed');
    expect(unwritten.failure?.kind).toBe('refused');
    expect(h.events.filter((e) => e === 'stream-closed').length).toBe(2);
  });

  test('a reset we send closes the stream without calling its handler; late frames for it are ignored', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    const s = h.open(r);
    h.sent();
    s.reset();
    expect(h.sent().map((f) => [f.type, readU32(f.payload, 0)])).toEqual([[FrameType.RST_STREAM, ErrorCode.CANCEL]]);
    const block = responseBlock('200');
    h.peer((w) => {
      writeHeaders(w, 1, block, block.length, false, 16384);
      writeData(w, 1, new Uint8Array(10), 0, 10, true);
      writeSettingsAck(w);
    });
    expect(r.headers).toEqual([]);
    expect(r.failure).toBeUndefined();
    expect(h.session.closed).toBe(false);
  });

  test('a CONTINUATION flood (endless empty fragments) is cut off: ENHANCE_YOUR_CALM, bounded state', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    h.open(r);
    h.sent();
    h.peer((w) => {
      writeFrameHeader(w, 1, FrameType.HEADERS, 0, 1);
      w.byte(0x88);
      for (let i = 0; i < MAX_CONTINUATION_FRAMES * 4; i++) writeFrameHeader(w, 0, FrameType.CONTINUATION, 0, 1);
    });
    expect(r.failure).toEqual(expect.objectContaining({ kind: 'protocol', code: ErrorCode.ENHANCE_YOUR_CALM }));
    expect(h.session.closed).toBe(true);
    const goaway = h.sent().find((f) => f.type === FrameType.GOAWAY);
    expect(readU32((goaway as Frame).payload, 4)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
  });

  test('a header block in many small CONTINUATION frames below the limit is fine', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    h.open(r);
    const block = responseBlock('200', ['x-a', 'b'.repeat(200)]);
    h.peer((w) => writeHeaders(w, 1, block, block.length, true, 1));
    expect(r.failure).toBeUndefined();
    expect(r.headers).toEqual([{ fields: [':status', '200', 'x-a', 'b'.repeat(200)], end: true }]);
  });

  test('PINGs from a peer that does not read our answers: the connection fails once too many acks are owed', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    h.open(r);
    h.sent();
    h.channel.congested = true;
    h.session.flush(); // nothing pending: stays uncongested until a write fails
    const ping = (n: number) =>
      h.peer((w) => {
        for (let i = 0; i < n; i++) writePing(w, new Uint8Array(8), false);
      });
    ping(10);
    h.session.flush();
    expect(h.session.congested).toBe(true);
    // A drain forgives what was owed before it; the next failed write makes the channel congested again.
    h.channel.congested = false;
    h.session.onDrain();
    h.channel.congested = true;
    ping(1);
    h.session.flush();
    expect(h.session.congested).toBe(true);
    ping(MAX_ACKS_WHILE_CONGESTED);
    h.session.flush();
    expect(h.session.closed).toBe(false);
    ping(1);
    expect(h.session.closed).toBe(true);
    expect(r.failure).toEqual(expect.objectContaining({ kind: 'protocol', code: ErrorCode.ENHANCE_YOUR_CALM }));
    // The peer is not reading: the socket is dropped instead of waiting for a graceful close that never completes.
    expect(h.channel.destroyed).toBe(true);
  });

  test('SETTINGS with INITIAL_WINDOW_SIZE repeated: the last value counts, windows may go negative and recover', () => {
    const h = setup();
    h.handshake();
    const s = h.open(new Recorder(), false);
    h.sent();
    h.peer((w) => {
      const entries: [number, number][] = [];
      for (let i = 0; i < 2000; i++) entries.push([Setting.INITIAL_WINDOW_SIZE, i % 2 === 0 ? 2 ** 31 - 1 : 0]);
      entries.push([Setting.INITIAL_WINDOW_SIZE, 10]);
      writeSettings(w, entries);
    });
    expect(h.session.closed).toBe(false);
    expect(s.sendWindow).toBe(10);
    s.write(new Uint8Array(50)); // 10 go out
    h.peer((w) => writeSettings(w, [[Setting.INITIAL_WINDOW_SIZE, 0]]));
    expect(s.sendWindow).toBe(-10);
    h.sent();
    h.peer((w) => writeWindowUpdate(w, 1, 15));
    expect(
      h
        .sent()
        .filter((f) => f.type === FrameType.DATA)
        .reduce((n, f) => n + f.payload.length, 0),
    ).toBe(5);
    // A stream with no data queued keeps its credit: raising the initial window past 2^31-1 overflows it.
    const t = h.open(new Recorder(), false);
    h.peer((w) => writeWindowUpdate(w, 3, 5));
    expect(t.sendWindow).toBe(5);
    h.peer((w) => writeSettings(w, [[Setting.INITIAL_WINDOW_SIZE, 2 ** 31 - 1]]));
    expect(h.session.closed).toBe(true);
    expect(h.closed()?.code).toBe(ErrorCode.FLOW_CONTROL_ERROR);
  });

  test('repeated INITIAL_WINDOW_SIZE entries count in order: an overflow at an earlier entry fails the connection although the last value fits', () => {
    const h = setup();
    h.handshake();
    const s = h.open(new Recorder(), false);
    h.peer((w) => writeWindowUpdate(w, 1, 5)); // 5 bytes of credit beyond the initial window
    expect(s.sendWindow).toBe(65_535 + 5);
    h.peer((w) =>
      writeSettings(w, [
        [Setting.INITIAL_WINDOW_SIZE, 2 ** 31 - 1],
        [Setting.INITIAL_WINDOW_SIZE, 10],
      ]),
    );
    expect(h.session.closed).toBe(true);
    expect(h.closed()?.code).toBe(ErrorCode.FLOW_CONTROL_ERROR);
  });

  test('a handler that throws fails the connection instead of throwing into the socket', () => {
    const h = setup();
    h.handshake();
    const r = new Recorder();
    r.onHeaders = () => {
      throw new Error('handler bug');
    };
    h.open(r);
    const block = responseBlock('200');
    expect(() => h.peer((w) => writeHeaders(w, 1, block, block.length, false, 16384))).not.toThrow();
    expect(h.session.closed).toBe(true);
    expect(r.failure).toEqual(expect.objectContaining({ code: ErrorCode.INTERNAL_ERROR }));
    expect(h.channel.destroyed).toBe(true);
  });

  test('a graceful close while the peer is not reading drops the socket instead of waiting forever', () => {
    const h = setup();
    h.handshake();
    h.open(new Recorder());
    h.channel.congested = true;
    h.session.flush();
    expect(h.session.congested).toBe(true);
    const block = responseBlock('204');
    h.peer((w) => {
      writeGoaway(w, 1, ErrorCode.NO_ERROR);
      writeHeaders(w, 1, block, block.length, true, 16384);
    });
    expect(h.session.closed).toBe(true);
    expect(h.closed()).toBeUndefined();
    expect(h.channel.destroyed).toBe(true);
    expect(h.channel.ended).toBe(false);
  });
});

describe('flow control: credit that can never come back, and a write that is never followed by onWritable', () => {
  /** A handler that counts body bytes (without keeping them) and records onWritable calls. */
  class Counter implements StreamHandler {
    bytes = 0;
    ended = false;
    writable = 0;
    onHeaders(_fields: string[], endStream: boolean): void {
      if (endStream) this.ended = true;
    }
    onData(chunk: Uint8Array, endStream: boolean): void {
      this.bytes += chunk.byteLength;
      if (endStream) this.ended = true;
    }
    onReset(): void {}
    onWritable(): void {
      this.writable++;
    }
  }

  test('a write() whose own DATA congests the channel still gets onWritable after the drain', () => {
    const h = setup();
    h.handshake([[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]);
    h.peer((w) => writeWindowUpdate(w, 0, 1 << 20));
    const r = new Counter();
    const s = h.open(r, false);
    h.sent();
    h.channel.congested = true; // the kernel takes no more
    // 64 KiB: the fourth 16 KiB DATA frame passes the flush threshold, so the session flushes inside write().
    expect(s.write(new Uint8Array(65_536))).toBe(false);
    h.channel.congested = false;
    h.session.onDrain();
    expect(r.writable).toBe(1);
  });

  test('DATA consumed on many streams, each below its own credit threshold, is credited to the connection', () => {
    const h = setup(256 * 1024);
    h.handshake([[Setting.MAX_CONCURRENT_STREAMS, 1000]]);
    const counters: Counter[] = [];
    for (let i = 0; i < 256; i++) {
      const c = new Counter();
      counters.push(c);
      h.open(c);
    }
    h.sent();
    const head = responseBlock('200');
    const chunk = new Uint8Array(16_384);
    // The server spreads its 16 MiB connection window evenly: 64 KiB per stream.
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 256; i++) {
        const id = 1 + 2 * i;
        h.peer((w) => {
          if (round === 0) writeHeaders(w, id, head, head.length, false, 16_384);
          writeData(w, id, chunk, 0, chunk.length, false);
        });
      }
    }
    expect(counters.every((c) => c.bytes === 65_536)).toBe(true);
    expect(h.session.closed).toBe(false);
    const connUpdates = h.sent().filter((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
    expect(connUpdates.length).toBeGreaterThan(0); // else the connection window is 0 for good
  });

  test('paused (slow-client) streams do not use up the connection window: another stream still gets its data', () => {
    const h = setup(256 * 1024);
    h.handshake([[Setting.MAX_CONCURRENT_STREAMS, 1000]]);
    const slow: H2Stream[] = [];
    for (let i = 0; i < 64; i++) slow.push(h.open(new Counter()));
    const fresh = new Counter();
    h.open(fresh); // stream 129
    for (const s of slow) s.pause();
    h.sent();
    const head = responseBlock('200');
    const chunk = new Uint8Array(16_384);
    for (const s of slow) {
      h.peer((w) => {
        writeHeaders(w, s.id, head, head.length, false, 16_384);
        for (let k = 0; k < 16; k++) writeData(w, s.id, chunk, 0, chunk.length, false); // one stream window each
      });
    }
    // Each slow stream is stopped by its own window (no stream WINDOW_UPDATE while paused) ...
    expect(h.sent().some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId !== 0)).toBe(false);
    // ... but the connection stays open for the others.
    h.peer((w) => {
      writeHeaders(w, 129, head, head.length, false, 16_384);
      writeData(w, 129, chunk, 0, 1, true);
    });
    expect(h.closed()).toBeUndefined();
    expect(fresh.ended).toBe(true);
  });
});

test('a response header list over the announced limit fails only its stream, and the connection stays in step', () => {
  const h = setup();
  h.handshake();
  const r1 = new Recorder();
  const r3 = new Recorder();
  h.open(r1);
  h.open(r3);
  h.sent();
  // Valid HPACK: one 3000-byte field added to the dynamic table, then referenced 100 times (about 300 KB decoded).
  const w = new ByteWriter();
  w.byte(0x88); // :status 200
  w.byte(0x40); // literal with incremental indexing, new name
  writeInt(w, 0, 7, 5);
  w.latin1('x-big');
  writeInt(w, 0, 7, 3000);
  w.latin1('v'.repeat(3000));
  for (let i = 0; i < 100; i++) w.byte(0x80 | 62); // indexed: dynamic entry 1
  const big = w.copy();
  h.peer((x) => writeHeaders(x, 1, big, big.length, true, 16_384));
  // The next block refers to the entry the oversized one added: the table stayed in step.
  h.peer((x) => writeHeaders(x, 3, Uint8Array.of(0x88, 0x80 | 62), 2, true, 16_384));
  expect(r1.failure?.kind).toBe('protocol');
  expect(r3.failure).toBeUndefined();
  expect(r3.headers).toEqual([{ fields: [':status', '200', 'x-big', 'v'.repeat(3000)], end: true }]);
  expect(h.session.closed).toBe(false);
});

describe('onWritable after a congested channel drains, whatever happens meanwhile', () => {
  /** A stream that wrote 64 KiB into a congested channel (write() said false). */
  function congestedWriter(initialConnWindow = 1 << 20) {
    const h = setup();
    h.handshake([[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]);
    h.peer((w) => writeWindowUpdate(w, 0, initialConnWindow));
    const r = new Recorder();
    const s = h.open(r, false);
    h.sent();
    h.channel.congested = true;
    return { h, r, s };
  }

  test('a connection WINDOW_UPDATE before the drain', () => {
    const { h, r, s } = congestedWriter();
    expect(s.write(new Uint8Array(65_536))).toBe(false);
    h.peer((w) => writeWindowUpdate(w, 0, 65_536));
    h.channel.congested = false;
    h.session.onDrain();
    expect(r.writable).toBe(1);
  });

  test('a SETTINGS that raises INITIAL_WINDOW_SIZE before the drain', () => {
    const { h, r, s } = congestedWriter();
    expect(s.write(new Uint8Array(65_536))).toBe(false);
    h.peer((w) => writeSettings(w, [[Setting.INITIAL_WINDOW_SIZE, 2 << 20]]));
    h.channel.congested = false;
    h.session.onDrain();
    expect(r.writable).toBe(1);
  });

  test('data blocked on the connection window, sent by a WINDOW_UPDATE into a congested channel', () => {
    const h = setup();
    h.handshake([[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]);
    const r = new Recorder();
    const s = h.open(r, false);
    expect(s.write(new Uint8Array(131_071))).toBe(false); // the connection window (65535) holds half
    h.sent();
    h.channel.congested = true;
    h.peer((w) => writeWindowUpdate(w, 0, 1 << 20)); // the rest goes out and congests the channel
    expect(r.writable).toBe(0);
    h.channel.congested = false;
    h.session.onDrain();
    expect(r.writable).toBe(1);
  });
});

test('a header list just over the limit sent as plain literals (a block over 256 KiB) fails only its stream', () => {
  const h = setup();
  h.handshake();
  const r1 = new Recorder();
  const r3 = new Recorder();
  h.open(r1);
  h.open(r3);
  h.sent();
  const w = new ByteWriter();
  w.byte(0x88);
  for (let i = 0; i < 30; i++) {
    w.byte(0x00); // literal without indexing, new name
    writeInt(w, 0, 7, 5);
    w.latin1('x-big');
    writeInt(w, 0, 7, 10_000);
    w.latin1('v'.repeat(10_000));
  }
  const big = w.copy(); // about 300 KB: over the list limit, under the block limit
  h.peer((x) => writeHeaders(x, 1, big, big.length, true, 16_384));
  h.peer((x) => writeHeaders(x, 3, responseBlock('200'), responseBlock('200').length, true, 16_384));
  expect(r1.failure?.kind).toBe('protocol');
  expect(r3.failure).toBeUndefined();
  expect(h.session.closed).toBe(false);
});
