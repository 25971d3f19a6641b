import { describe, expect, test } from 'bun:test';
import { ByteWriter } from './bytes.ts';
import {
  contentStart,
  ErrorCode,
  Flag,
  FrameReader,
  FrameType,
  paddingOf,
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

interface Parsed {
  type: number;
  flags: number;
  streamId: number;
  payload: number[];
}

/** Parses `bytes` into frames, feeding them in pieces of `step` bytes. */
function parse(bytes: Uint8Array, step = bytes.length, maxFrameSize?: number): { frames: Parsed[]; oversized: number[] } {
  const frames: Parsed[] = [];
  const oversized: number[] = [];
  const reader = new FrameReader({
    onFrame(type, flags, streamId, buf, start, end) {
      frames.push({ type, flags, streamId, payload: [...buf.subarray(start, end)] });
      return true;
    },
    onOversizedFrame(length) {
      oversized.push(length);
    },
  });
  if (maxFrameSize !== undefined) reader.maxFrameSize = maxFrameSize;
  for (let at = 0; at < bytes.length; at += step) reader.push(bytes.slice(at, Math.min(bytes.length, at + step)));
  return { frames, oversized };
}

const PING_DATA = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);

describe('frame writers and reader', () => {
  const cases: [string, (w: ByteWriter) => void, Parsed][] = [
    [
      'SETTINGS',
      (w) =>
        writeSettings(w, [
          [Setting.ENABLE_PUSH, 0],
          [Setting.INITIAL_WINDOW_SIZE, 0x40000],
        ]),
      { type: FrameType.SETTINGS, flags: 0, streamId: 0, payload: [0, 2, 0, 0, 0, 0, 0, 4, 0, 4, 0, 0] },
    ],
    ['SETTINGS ack', (w) => writeSettingsAck(w), { type: FrameType.SETTINGS, flags: Flag.ACK, streamId: 0, payload: [] }],
    ['PING ack', (w) => writePing(w, PING_DATA, true), { type: FrameType.PING, flags: Flag.ACK, streamId: 0, payload: [...PING_DATA] }],
    ['WINDOW_UPDATE', (w) => writeWindowUpdate(w, 5, 0x12345), { type: FrameType.WINDOW_UPDATE, flags: 0, streamId: 5, payload: [0, 1, 0x23, 0x45] }],
    ['RST_STREAM', (w) => writeRstStream(w, 7, ErrorCode.CANCEL), { type: FrameType.RST_STREAM, flags: 0, streamId: 7, payload: [0, 0, 0, 8] }],
    [
      'GOAWAY',
      (w) => writeGoaway(w, 0x7fffffff, ErrorCode.PROTOCOL_ERROR),
      { type: FrameType.GOAWAY, flags: 0, streamId: 0, payload: [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1] },
    ],
    [
      'DATA with END_STREAM (a slice of the source)',
      (w) => writeData(w, 3, Uint8Array.of(9, 8, 7, 6), 1, 3, true),
      { type: FrameType.DATA, flags: Flag.END_STREAM, streamId: 3, payload: [8, 7] },
    ],
    [
      'HEADERS in one frame',
      (w) => writeHeaders(w, 1, Uint8Array.of(0x82, 0x86, 0x84, 0xff), 3, true, 16384),
      { type: FrameType.HEADERS, flags: Flag.END_STREAM | Flag.END_HEADERS, streamId: 1, payload: [0x82, 0x86, 0x84] },
    ],
  ];
  for (const [name, write, expected] of cases) {
    test(`${name}: round trip, whole and byte by byte`, () => {
      const w = new ByteWriter(4);
      write(w);
      const bytes = w.copy();
      expect(bytes.length).toBe(9 + expected.payload.length);
      expect(parse(bytes).frames).toEqual([expected]);
      expect(parse(bytes, 1).frames).toEqual([expected]);
    });
  }

  test('a header block larger than the frame size becomes HEADERS + CONTINUATION frames', () => {
    const block = new Uint8Array(40).map((_, i) => i);
    const w = new ByteWriter();
    writeHeaders(w, 9, block, block.length, false, 16);
    const { frames } = parse(w.copy(), 7);
    expect(frames.map((f) => [f.type, f.flags, f.streamId, f.payload.length])).toEqual([
      [FrameType.HEADERS, 0, 9, 16],
      [FrameType.CONTINUATION, 0, 9, 16],
      [FrameType.CONTINUATION, Flag.END_HEADERS, 9, 8],
    ]);
    expect(frames.flatMap((f) => f.payload)).toEqual([...block]);
  });

  test('several frames in one chunk, and the stream id reserved bit is ignored', () => {
    const w = new ByteWriter();
    writeSettingsAck(w);
    writeWindowUpdate(w, 0, 1);
    const bytes = w.copy();
    bytes[9 + 5] = 0x80; // R bit of the second frame's stream id
    expect(parse(bytes).frames.map((f) => [f.type, f.streamId])).toEqual([
      [FrameType.SETTINGS, 0],
      [FrameType.WINDOW_UPDATE, 0],
    ]);
  });

  test('a frame above the maximum frame size is reported, not buffered', () => {
    const header = Uint8Array.of(0x00, 0x40, 0x01, FrameType.DATA, 0, 0, 0, 0, 1); // 16385 bytes
    const { frames, oversized } = parse(header);
    expect(frames).toEqual([]);
    expect(oversized).toEqual([16385]);
    expect(parse(header, 9, 1 << 20).oversized).toEqual([]);
  });

  test.each([
    ['DATA without padding', FrameType.DATA, 0, [1, 2, 3], 0, 0],
    ['DATA with padding', FrameType.DATA, Flag.PADDED, [2, 7, 7, 0, 0], 1, 2],
    ['HEADERS with priority', FrameType.HEADERS, Flag.PRIORITY, [0, 0, 0, 3, 16, 0x82], 5, 0],
    ['HEADERS padded with priority', FrameType.HEADERS, Flag.PRIORITY | Flag.PADDED, [1, 0, 0, 0, 3, 16, 0x82, 0], 6, 1],
  ])('%s: content start and padding', (_name, type, flags, payload, start, padding) => {
    const buf = Uint8Array.from(payload);
    expect(contentStart(0, buf.length, flags, type)).toBe(start);
    expect(paddingOf(buf, 0, flags)).toBe(padding);
  });

  test('a PRIORITY-flagged HEADERS frame too short for its fields', () => {
    expect(contentStart(0, 3, Flag.PRIORITY, FrameType.HEADERS)).toBe(-1);
  });
});
