import { describe, expect, test } from 'bun:test';
import { SpookyError } from '../errors.ts';
import { type ChunkRead, type ChunkReader, DeclaredLengthReader } from './request-body.ts';

type Step = string | 'END' | 'ERROR';

/** A scripted source: each read() takes the next step; `gate` lets a test see what was released before a step. */
function scripted(steps: Step[]): ChunkReader & { reads: number; cancelled: boolean } {
  const s = {
    reads: 0,
    cancelled: false,
    async read(): Promise<ChunkRead> {
      const step = steps[s.reads++] ?? 'END';
      if (step === 'END') return { done: true, value: undefined };
      if (step === 'ERROR') throw new Error('client stream reset');
      return { done: false, value: new TextEncoder().encode(step) };
    },
    async cancel(): Promise<void> {
      s.cancelled = true;
    },
  };
  return s;
}

async function drain(r: ChunkReader): Promise<{ chunks: string[]; error?: string }> {
  const chunks: string[] = [];
  try {
    for (;;) {
      const x = await r.read();
      if (x.done) return { chunks };
      chunks.push(new TextDecoder().decode(x.value));
    }
  } catch (e) {
    return { chunks, error: e instanceof SpookyError ? `${e.code}: ${e.message}` : String(e) };
  }
}

describe('DeclaredLengthReader', () => {
  test.each<[string, number, Step[], string[], string | undefined]>([
    ['exact, one chunk', 3, ['abc', 'END'], ['abc'], undefined],
    ['exact, several chunks', 6, ['ab', 'cd', 'ef', 'END'], ['ab', 'cd', 'ef'], undefined],
    ['exact, empty chunk before the end', 3, ['abc', '', 'END'], ['abc'], undefined],
    ['empty body declared 0', 0, ['END'], [], undefined],
    ['longer in one chunk', 3, ['abcd', 'END'], [], 'bad_request: request body longer than its content-length 3'],
    [
      'longer after the exact end: the last chunk is never released',
      3,
      ['ab', 'c', 'd', 'END'],
      ['ab'],
      'bad_request: request body longer than its content-length 3',
    ],
    ['stream error after the exact end: the last chunk is never released', 3, ['abc', 'ERROR'], [], 'Error: client stream reset'],
    ['shorter', 6, ['abc', 'END'], ['abc'], 'bad_request: request body of 3 bytes shorter than its content-length 6'],
    ['stream error before the end', 6, ['abc', 'ERROR'], ['abc'], 'Error: client stream reset'],
  ])('%s', async (_name, declared, steps, released, error) => {
    const source = scripted(steps);
    const out = await drain(new DeclaredLengthReader(source, declared));
    expect(out.chunks).toEqual(released);
    expect(out.error).toBe(error);
    if (error?.startsWith('bad_request')) expect(source.cancelled).toBe(true);
  });
});
