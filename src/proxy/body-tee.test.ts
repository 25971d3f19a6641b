import { describe, expect, test } from 'bun:test';
import { BodyCapture, type TeeOutcome, teeBody } from './body-tee.ts';

const enc = new TextEncoder();

/** A source that records how many chunks were pulled from it and whether it was cancelled. */
function source(chunks: Uint8Array[], opts: { failAt?: number } = {}) {
  const state = { pulled: 0, cancelled: undefined as unknown };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (opts.failAt === state.pulled) {
          c.error(new Error('boom'));
          return;
        }
        const next = chunks[state.pulled];
        state.pulled++;
        if (next) c.enqueue(next);
        else c.close();
      },
      cancel(reason) {
        state.cancelled = reason ?? 'cancelled';
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}

describe('teeBody and BodyCapture', () => {
  test('chunks pass unchanged; the capture keeps the first max bytes and counts all', async () => {
    const chunks = [enc.encode('hello '), enc.encode('wide '), enc.encode('world')];
    const { stream } = source(chunks);
    let outcome: TeeOutcome | undefined;
    const capture = new BodyCapture(8, (_c, o) => {
      outcome = o;
    });
    const out = await new Response(teeBody(stream, capture)).text();
    expect(out).toBe('hello wide world');
    expect(new TextDecoder().decode(capture.captured())).toBe('hello wi');
    expect(capture.bytes).toBe(16);
    expect(capture.truncated).toBe(true);
    expect(outcome).toBe('end');
  });

  test.each([
    [0, 'abc', '', true],
    [3, 'abc', 'abc', false],
    [10, 'abc', 'abc', false],
    [10, '', '', false],
  ])('cap %p over body %p keeps %p (truncated %p)', async (max, body, kept, truncated) => {
    const { stream } = source(body ? [enc.encode(body)] : []);
    const capture = new BodyCapture(max);
    await new Response(teeBody(stream, capture)).arrayBuffer();
    expect(new TextDecoder().decode(capture.captured())).toBe(kept);
    expect(capture.truncated).toBe(truncated);
  });

  test('the copy is taken at once, so a chunk buffer reused later does not change it', async () => {
    const shared = enc.encode('aaaa');
    const { stream } = source([shared]);
    const capture = new BodyCapture(4);
    const reader = teeBody(stream, capture).getReader();
    await reader.read();
    shared.fill(98);
    expect(new TextDecoder().decode(capture.captured())).toBe('aaaa');
  });

  test('reads from the source only when its consumer asks (backpressure)', async () => {
    const { stream, state } = source([enc.encode('a'), enc.encode('b'), enc.encode('c')]);
    const reader = teeBody(stream, new BodyCapture(10)).getReader();
    await Bun.sleep(5);
    expect(state.pulled).toBe(0);
    await reader.read();
    await Bun.sleep(5);
    expect(state.pulled).toBe(1);
  });

  test('a cancel reaches the source and ends the capture as cancelled', async () => {
    const { stream, state } = source([enc.encode('a'), enc.encode('b')]);
    const outcomes: TeeOutcome[] = [];
    const capture = new BodyCapture(10, (_c, o) => outcomes.push(o));
    const reader = teeBody(stream, capture).getReader();
    await reader.read();
    await reader.cancel('client gone');
    expect(state.cancelled).toBe('client gone');
    expect(outcomes).toEqual(['cancel']);
    expect(capture.bytes).toBe(1);
  });

  test('a failing source fails the stream and ends the capture as error, once', async () => {
    const { stream } = source([enc.encode('a')], { failAt: 1 });
    const outcomes: TeeOutcome[] = [];
    const capture = new BodyCapture(10, (_c, o) => outcomes.push(o));
    await expect(new Response(teeBody(stream, capture)).text()).rejects.toThrow('boom');
    expect(outcomes).toEqual(['error']);
  });
});
