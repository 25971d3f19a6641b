/**
 * A scriptable raw TCP "HTTP" server on 127.0.0.1 (port 0) for testing clients against misbehaving backends:
 * the test decides byte for byte what goes back, when, and whether the connection closes or resets. It splits
 * incoming bytes into requests (head up to CRLFCRLF, then a content-length or chunked body) and hands each
 * one to `onRequest`. Also: {@link waitUntil} to poll for a condition with a deadline instead of sleeping.
 */
import { readFileSync } from 'node:fs';
import type { Socket, TCPSocketListener } from 'bun';
import { waitUntil as poll } from './wait.ts';

/** One parsed incoming request. */
export interface RawRequest {
  /** Request head text (latin1), without the final blank line. */
  head: string;
  /** Request line, e.g. `GET / HTTP/1.1`. */
  line: string;
  /** Header fields, names lower-cased. */
  headers: Map<string, string>;
  /** Body bytes (content-length or de-chunked). */
  body: Buffer;
  /** 0 for the first request on its connection, 1 for the second, ... */
  index: number;
}

/** One accepted connection. */
export interface RawConnection {
  /** 0-based accept order. */
  readonly id: number;
  /** Bytes received so far. */
  bytesReceived: number;
  /** Bytes the kernel accepted from {@link write}/{@link stream} so far. */
  bytesSent: number;
  /** True once the connection closed (either side). */
  closed: boolean;
  /** Requests parsed on it so far. */
  requests: RawRequest[];
  /** Writes now (may write partially; the rest is dropped — use {@link stream} for big bodies). */
  write(data: string | Uint8Array): number;
  /** Writes `total` bytes of `fill` as fast as the client takes them (drain-driven); resolves when done. */
  stream(total: number, fill?: number): Promise<void>;
  /** Stops reading from the client (its writes stall once the socket buffers are full). */
  pause(): void;
  /** Reads again after {@link pause}. */
  resume(): void;
  /** Half-closes (FIN) after what was written. */
  end(): void;
  /** Resets the connection (RST). */
  destroy(): void;
}

/** Options of {@link startRawServer}. */
export interface RawServerOptions {
  /** Called for each complete request. Default: no answer. */
  onRequest?: (conn: RawConnection, req: RawRequest) => void;
  /** Called when a connection is accepted. */
  onConnection?: (conn: RawConnection) => void;
  /** When true, bytes are only counted, not parsed (for uploads nobody looks at). */
  countOnly?: boolean;
  /** Called with every chunk of bytes received, before parsing (to record exactly what arrived). */
  onData?: (conn: RawConnection, data: Buffer) => void;
}

/** A running raw server. */
export interface RawServer {
  readonly port: number;
  /** Every connection accepted so far, in order. */
  readonly connections: RawConnection[];
  /** Stops listening and closes every connection. */
  stop(): void;
}

interface ConnState {
  conn: Conn;
  buf: Buffer;
}

class Conn implements RawConnection {
  readonly id: number;
  bytesReceived = 0;
  bytesSent = 0;
  closed = false;
  requests: RawRequest[] = [];
  socket: Socket<ConnState> | null = null;
  private streamLeft = 0;
  private streamChunk: Buffer | null = null;
  private streamDone: (() => void) | null = null;

  constructor(id: number) {
    this.id = id;
  }

  write(data: string | Uint8Array): number {
    if (this.closed || this.socket === null) return -1;
    const n = this.socket.write(data);
    if (n > 0) this.bytesSent += n;
    return n;
  }

  stream(total: number, fill = 0x61): Promise<void> {
    this.streamLeft = total;
    this.streamChunk = Buffer.alloc(64 * 1024, fill);
    return new Promise<void>((resolve) => {
      this.streamDone = resolve;
      this.pump();
    });
  }

  pump(): void {
    const chunk = this.streamChunk;
    if (chunk === null || this.socket === null) return;
    while (this.streamLeft > 0 && !this.closed) {
      const part = this.streamLeft < chunk.length ? chunk.subarray(0, this.streamLeft) : chunk;
      const n = this.socket.write(part);
      if (n > 0) {
        this.bytesSent += n;
        this.streamLeft -= n;
      }
      if (n < part.length) return; // wait for drain
    }
    this.streamChunk = null;
    const done = this.streamDone;
    this.streamDone = null;
    done?.();
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  end(): void {
    this.socket?.end();
  }

  destroy(): void {
    this.socket?.terminate();
  }
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** Splits complete requests off the front of `st.buf`. */
function parseRequests(st: ConnState, onRequest: RawServerOptions['onRequest']): void {
  for (;;) {
    const buf = st.buf;
    const he = buf.indexOf(HEAD_END);
    if (he < 0) return;
    const head = buf.toString('latin1', 0, he);
    const lines = head.split('\r\n');
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c > 0) headers.set(l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim());
    }
    let pos = he + 4;
    let body: Buffer;
    const cl = headers.get('content-length');
    if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      let p = pos;
      let complete = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const size = Number.parseInt(buf.toString('latin1', p, le).split(';')[0]!, 16);
        if (size === 0) {
          // the trailer section ends with an empty line: "0\r\n\r\n" or "0\r\nx: y\r\n\r\n"
          const te = buf.indexOf(HEAD_END, le);
          if (te < 0) break;
          p = te + 4;
          complete = true;
          break;
        }
        if (buf.length < le + 2 + size + 2) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!complete) return;
      body = Buffer.concat(parts);
      pos = p;
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (buf.length < pos + n) return;
      body = buf.subarray(pos, pos + n);
      pos += n;
    } else {
      body = Buffer.alloc(0);
    }
    st.buf = buf.subarray(pos);
    const req: RawRequest = { head, line: lines[0]!, headers, body, index: st.conn.requests.length };
    st.conn.requests.push(req);
    onRequest?.(st.conn, req);
  }
}

/** Starts a raw server on 127.0.0.1, port 0. */
export function startRawServer(opts: RawServerOptions = {}): RawServer {
  const connections: Conn[] = [];
  const listener: TCPSocketListener<ConnState> = Bun.listen<ConnState>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        const conn = new Conn(connections.length);
        conn.socket = s;
        connections.push(conn);
        s.data = { conn, buf: Buffer.alloc(0) };
        opts.onConnection?.(conn);
      },
      data(s, d) {
        const st = s.data;
        st.conn.bytesReceived += d.length;
        opts.onData?.(st.conn, d);
        if (opts.countOnly) return;
        st.buf = st.buf.length === 0 ? d : Buffer.concat([st.buf, d]);
        parseRequests(st, opts.onRequest);
      },
      drain(s) {
        s.data.conn.pump();
      },
      close(s) {
        s.data.conn.closed = true;
      },
      error(s) {
        s.data.conn.closed = true;
      },
    },
  });
  return {
    port: listener.port,
    connections,
    stop() {
      listener.stop(true);
    },
  };
}

/** Polls `cond` every 2 ms until it is true; throws after `timeoutMs` (see {@link poll}). */
export async function waitUntil(cond: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  await poll(cond, timeoutMs, what, 2);
}

/** The first port of the kernel's ephemeral range (what a bind to port 0 and an outgoing connection take). */
function ephemeralLow(): number {
  try {
    const low = Number.parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), 10);
    return Number.isInteger(low) ? low : 32768;
  } catch {
    return 32768;
  }
}

/** Ports {@link closedPort} handed out in this process, never handed out twice. */
const handedOut = new Set<number>();

/**
 * A port on 127.0.0.1 with nothing listening, to stand for a dead backend or to be bound later by a process
 * the test starts. It lies below the kernel's ephemeral range, checked free by binding it: a port that was
 * bound to port 0 and released could be given again to the next port-0 bind of any process (a Spooky
 * listener started right after, say), and a "dead" backend would then answer.
 */
export function closedPort(): number {
  const low = Math.min(ephemeralLow(), 65536);
  const first = 10_000;
  for (let attempt = 0; low - first > 1000 && attempt < 100; attempt++) {
    const port = first + Math.floor(Math.random() * (low - first));
    if (handedOut.has(port)) continue;
    try {
      Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } }).stop(true);
    } catch {
      continue; // in use
    }
    handedOut.add(port);
    return port;
  }
  const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}
