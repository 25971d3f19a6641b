/**
 * Holds a request body to its declared `content-length` before any of it decides what a backend sees.
 *
 * Why: a body longer than its `content-length` is only known to be malformed when the byte after the
 * declared end arrives. Forwarded chunk by chunk, the backend would already hold a complete request (head and
 * exactly `content-length` bytes) when the client's stream turns out to be bad, and may act on it. So the
 * chunk that completes the declared length is held back until the client's stream ends (FIN): a clean end
 * releases it; more bytes or a stream error fail the body instead, and the backend never gets the last bytes.
 * (When the client sends FIN with its last DATA frame, as clients do, holding costs nothing measurable.) A body
 * that ends short of its declared length fails too. Bun and lsquic already refuse both mismatches on HTTP/3
 * (the whole connection is closed); this makes the guarantee Spooky's own, independent of the listener.
 */
import { SpookyError } from '../errors.ts';

/** One read: a chunk, or the end. */
export type ChunkRead = { done: true; value?: Uint8Array | undefined } | { done: false; value: Uint8Array };

/** The part of a `ReadableStreamDefaultReader` that {@link DeclaredLengthReader} uses. */
export interface ChunkReader {
  /** The next chunk, or the end. */
  read(): Promise<ChunkRead>;
  /** Stops reading; the source is told `reason`. */
  cancel(reason?: unknown): Promise<void>;
}

/** A reader that yields the chunks of `source` but enforces `declared` bytes as described at the top of this file. */
export class DeclaredLengthReader implements ChunkReader {
  /** Bytes read from the source so far. */
  private received = 0;

  /** Reads `source`, holding it to `declared` bytes. */
  constructor(
    private readonly source: ChunkReader,
    private readonly declared: number,
  ) {}

  /** The next chunk, or done; rejects with a `bad_request` SpookyError when the body does not match its length. */
  async read(): Promise<ChunkRead> {
    const r = await this.source.read();
    if (r.done) {
      if (this.received < this.declared) throw this.fail(`request body of ${this.received} bytes shorter than its content-length ${this.declared}`);
      return r;
    }
    this.received += r.value.byteLength;
    if (this.received > this.declared) throw this.fail(`request body longer than its content-length ${this.declared}`);
    if (this.received < this.declared) return r;
    // The declared end: release this chunk only once the source has ended cleanly.
    for (;;) {
      const next = await this.source.read();
      if (next.done) return r;
      if (next.value.byteLength > 0) throw this.fail(`request body longer than its content-length ${this.declared}`);
    }
  }

  /** Cancels the source. */
  cancel(reason?: unknown): Promise<void> {
    return this.source.cancel(reason);
  }

  private fail(reason: string): SpookyError {
    const err = new SpookyError('bad_request', reason);
    void this.source.cancel(err).catch(() => {});
    return err;
  }
}
