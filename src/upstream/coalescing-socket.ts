/**
 * A `node:stream` Duplex over a `Bun.connect` TCP socket whose writes are coalesced per event-loop turn, for
 * `http2.connect({ createConnection })`.
 *
 * Why: Bun's `node:http2` writes straight to a `net.Socket`'s native handle and flushes once per stream (the
 * HEADERS frame, and again from the stream's `_final`), so every request costs at least one `write` syscall even
 * when many streams are opened in the same event-loop turn. Given any other Duplex, the session writes its frames
 * through `write()`; this socket queues them and hands everything queued in one turn to the kernel in one write
 * in the check phase (`setImmediate`), so N streams opened in one turn cost one syscall.
 *
 * Backpressure: a write is acknowledged at once while less than {@link HIGH_WATER_BYTES} wait for the kernel;
 * beyond that the acknowledgement waits for the socket's `drain`, so `write()` returns false and the session
 * waits for `'drain'`. Reads are pushed as they arrive (HTTP/2 flow control bounds them).
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'bun';

/** Bytes that may wait for the kernel before writes are held back. */
const HIGH_WATER_BYTES = 256 * 1024;

type WriteCallback = (err?: Error | null) => void;

/** Flushes a socket's queue (shared, so scheduling a flush allocates no closure). */
function flushSocket(s: CoalescingSocket): void {
  s.flushQueued();
}

/** See the module comment. Create with {@link CoalescingSocket.connect}. */
export class CoalescingSocket extends Duplex {
  /** Always false: the socket is handed out connected (the http2 session waits for nothing). */
  readonly connecting = false;
  private sock: Socket<undefined> | undefined = undefined;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private scheduled = false;
  /** Bytes the kernel did not take yet (written on `drain`). */
  private unsent: Uint8Array | undefined = undefined;
  /** Acknowledgement held back until the backlog drained. */
  private held: WriteCallback | undefined = undefined;
  private ending: WriteCallback | undefined = undefined;

  private constructor() {
    super({ allowHalfOpen: false, decodeStrings: true });
  }

  /** Connects to `host:port` (TCP, no delay); rejects when the connection cannot be made. */
  static async connect(host: string, port: number): Promise<CoalescingSocket> {
    const self = new CoalescingSocket();
    self.sock = await Bun.connect<undefined>({
      hostname: host,
      port,
      socket: {
        data: (_s, data) => {
          self.push(data);
        },
        drain: () => self.onDrain(),
        end: () => {
          self.push(null);
        },
        close: (_s, err) => {
          self.sock = undefined;
          if (err) self.destroy(err);
          else {
            self.push(null);
            self.destroy();
          }
        },
        error: (_s, err) => {
          self.destroy(err);
        },
      },
    });
    self.sock.setNoDelay(true);
    return self;
  }

  /** Keeps the process alive while the socket is open (default). */
  ref(): void {
    this.sock?.ref();
  }

  /** Lets the process exit while the socket is open. */
  unref(): void {
    this.sock?.unref();
  }

  /** No-op (TCP_NODELAY is always on); present for `net.Socket` compatibility. */
  setNoDelay(): this {
    return this;
  }

  override _read(): void {
    // Reads are pushed as they arrive.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.enqueue(chunk);
    this.ack(callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: WriteCallback): void {
    for (const c of chunks) this.enqueue(c.chunk);
    this.ack(callback);
  }

  override _final(callback: WriteCallback): void {
    this.flushQueued();
    if (this.unsent !== undefined) {
      this.ending = callback;
      return;
    }
    this.sock?.shutdown();
    callback();
  }

  override _destroy(err: Error | null, callback: WriteCallback): void {
    const sock = this.sock;
    this.sock = undefined;
    this.queue = [];
    this.queued = 0;
    this.unsent = undefined;
    const held = this.held;
    this.held = undefined;
    held?.(err ?? new Error('socket closed'));
    sock?.end();
    callback(err);
  }

  /** Writes everything queued this turn in one write (called from the check phase). */
  flushQueued(): void {
    this.scheduled = false;
    if (this.queued === 0) return;
    const queue = this.queue;
    let data: Uint8Array;
    if (queue.length === 1) data = queue[0] as Uint8Array;
    else {
      data = new Uint8Array(this.queued);
      let at = 0;
      for (const c of queue) {
        data.set(c, at);
        at += c.byteLength;
      }
    }
    this.queue = [];
    this.queued = 0;
    if (this.unsent !== undefined) {
      this.unsent = concat(this.unsent, data);
      return;
    }
    this.send(data);
    if (this.unsent === undefined) this.release();
  }

  private enqueue(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.queue.push(chunk);
    this.queued += chunk.byteLength;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(flushSocket, this);
    }
  }

  private ack(callback: WriteCallback): void {
    if (this.queued + (this.unsent?.byteLength ?? 0) < HIGH_WATER_BYTES) callback();
    else this.held = callback;
  }

  private send(data: Uint8Array): void {
    const sock = this.sock;
    if (!sock) return;
    const n = sock.write(data);
    if (n < data.byteLength) this.unsent = data.subarray(Math.max(0, n));
  }

  private onDrain(): void {
    const rest = this.unsent;
    if (rest === undefined) return;
    this.unsent = undefined;
    this.send(rest);
    if (this.unsent === undefined) this.release();
  }

  /** The backlog is gone: acknowledges a held write and finishes a pending end. */
  private release(): void {
    const held = this.held;
    this.held = undefined;
    held?.();
    const ending = this.ending;
    if (ending) {
      this.ending = undefined;
      this.sock?.shutdown();
      ending();
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
