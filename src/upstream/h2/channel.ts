/**
 * The byte pipes an HTTP/2 session runs over: a {@link ByteChannel} to write to, and a {@link ChannelReceiver}
 * (the session) that the pipe reports received bytes, drain and close to.
 *
 * - {@link connectTcp}: a `Bun.connect` TCP socket (h2c). Writes go straight to the socket; what the kernel does
 *   not take is kept and written on `drain`.
 * - {@link tlsChannel}: a `node:tls` socket (h2 over TLS). TLS stays on `node:tls` because `Bun.connect({ tls })`
 *   always sends the host as SNI (also for IP literals and with `serverName: ''`; measured on Bun 1.4.5), while
 *   this transport must send SNI only when a server name is configured.
 */

import type { TLSSocket } from 'node:tls';
import type { Socket, SocketHandler } from 'bun';

/** Where a session writes. */
export interface ByteChannel {
  /**
   * Writes `bytes[0, length)` (the channel does not keep the array after returning: the caller reuses it).
   * Returns false when the channel is congested: the caller should hold back bulk data until
   * {@link ChannelReceiver.onDrain}.
   */
  write(bytes: Uint8Array, length: number): boolean;
  /** Closes gracefully once everything written has been sent. */
  end(): void;
  /** Closes at once. */
  destroy(): void;
}

/** What a channel reports to. */
export interface ChannelReceiver {
  /** Bytes received (a fresh array the receiver may keep). */
  onBytes(bytes: Uint8Array): void;
  /** The congestion reported by a `write` returning false is over. */
  onDrain(): void;
  /** The channel closed (an error when it failed). Called once. */
  onClosed(err?: Error): void;
}

/** A `Bun.connect` TCP socket as a {@link ByteChannel}. */
export class TcpChannel implements ByteChannel {
  private socket: Socket<TcpChannel> | undefined = undefined;
  private receiver: ChannelReceiver | undefined = undefined;
  /** Bytes received before a receiver was attached. */
  private early: Uint8Array[] | undefined = undefined;
  /** Bytes the kernel did not take yet, in order. */
  private backlog: Uint8Array[] | undefined = undefined;
  private endAfterBacklog = false;
  private closed = false;
  private closeError: Error | undefined = undefined;

  /** Makes `receiver` the target of every event (delivering what arrived before). */
  attach(receiver: ChannelReceiver): void {
    this.receiver = receiver;
    const early = this.early;
    this.early = undefined;
    if (early) for (const b of early) receiver.onBytes(b);
    if (this.closed) receiver.onClosed(this.closeError);
  }

  /** Writes the first `length` bytes of `bytes`; false when they were queued (wait for drain) or the channel is closed. */
  write(bytes: Uint8Array, length: number): boolean {
    const s = this.socket;
    if (s === undefined || this.closed) return false;
    if (this.backlog !== undefined) {
      this.backlog.push(bytes.slice(0, length));
      return false;
    }
    const n = s.write(bytes, 0, length);
    if (n === length) return true;
    if (n < 0) return false; // closed; the close handler reports it
    this.backlog = [bytes.slice(n, length)];
    return false;
  }

  /** Closes gracefully once what is queued is written. */
  end(): void {
    if (this.closed || this.socket === undefined) return;
    if (this.backlog !== undefined) this.endAfterBacklog = true;
    else this.socket.end();
  }

  /** Closes at once, dropping what is queued. */
  destroy(): void {
    if (this.socket === undefined) return;
    this.socket.terminate();
  }

  /** Socket handler: connected. */
  onOpen(s: Socket<TcpChannel>): void {
    this.socket = s;
    s.setNoDelay(true);
  }

  /** Socket handler: bytes. */
  onData(b: Uint8Array): void {
    const r = this.receiver;
    if (r !== undefined) r.onBytes(b);
    else (this.early ??= []).push(b);
  }

  /** Socket handler: the kernel takes more. */
  onWritable(): void {
    const s = this.socket;
    const q = this.backlog;
    if (s === undefined || q === undefined) return;
    while (q.length > 0) {
      const d = q[0] as Uint8Array;
      const n = s.write(d);
      if (n === d.byteLength) {
        q.shift();
        continue;
      }
      if (n > 0) q[0] = d.subarray(n);
      return;
    }
    this.backlog = undefined;
    if (this.endAfterBacklog) {
      s.end();
      return;
    }
    this.receiver?.onDrain();
  }

  /** Socket handler: closed or failed. */
  onClose(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    this.backlog = undefined;
    this.receiver?.onClosed(err);
  }
}

/** Shared socket handlers; the channel is `socket.data`. */
const TCP_HANDLERS: SocketHandler<TcpChannel> = {
  open(s) {
    s.data.onOpen(s);
  },
  data(s, d) {
    s.data.onData(d);
  },
  drain(s) {
    s.data.onWritable();
  },
  close(s, err) {
    s.data.onClose(err);
  },
  error(s, err) {
    s.data.onClose(err);
    s.terminate();
  },
  connectError(s, err) {
    s.data.onClose(err);
  },
};

/** Opens a TCP connection; resolves once connected, rejects when it cannot be made. */
export async function connectTcp(host: string, port: number): Promise<TcpChannel> {
  const channel = new TcpChannel();
  await Bun.connect<TcpChannel>({ hostname: host, port, data: channel, socket: TCP_HANDLERS });
  return channel;
}

/** A connected `node:tls` socket as a {@link ByteChannel}; events go to the receiver given to `attach`. */
export class TlsChannel implements ByteChannel {
  private receiver: ChannelReceiver | undefined = undefined;
  private closed = false;

  /** @param socket a TLS socket whose handshake completed */
  constructor(private readonly socket: TLSSocket) {
    socket.on('close', () => this.onClose());
    socket.on('error', (err: Error) => this.onClose(err));
  }

  /** Makes `receiver` the target of every event. */
  attach(receiver: ChannelReceiver): void {
    this.receiver = receiver;
    this.socket.on('data', (b: Buffer) => receiver.onBytes(b));
    this.socket.on('drain', () => receiver.onDrain());
    if (this.closed) receiver.onClosed();
    else if (this.socket.destroyed) this.onClose();
  }

  /** Writes the first `length` bytes of `bytes`; false when they were queued (wait for drain) or the channel is closed. */
  write(bytes: Uint8Array, length: number): boolean {
    if (this.closed || this.socket.destroyed) return false;
    return this.socket.write(Buffer.from(bytes.subarray(0, length)));
  }

  /** Closes gracefully once what is queued is written. */
  end(): void {
    if (!this.closed) this.socket.end();
  }

  /** Closes at once, dropping what is queued. */
  destroy(): void {
    this.socket.destroy();
  }

  private onClose(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (err) this.socket.destroy();
    this.receiver?.onClosed(err);
  }
}

/** Wraps a handshaken TLS socket (see {@link TlsChannel}). */
export function tlsChannel(socket: TLSSocket): TlsChannel {
  return new TlsChannel(socket);
}
