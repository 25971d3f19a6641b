/**
 * The traffic listener: HTTP/3 on UDP and HTTP/1.1 + HTTP/2 on TCP at the same address and port.
 *
 * It is two `Bun.serve` instances on one port number (TCP and UDP ports do not clash): one with only
 * `http3`, one with only `http1` + `http2`. That way the handler knows for certain whether a request came over
 * HTTP/3 (one `Bun.serve` with all three gives no way to tell), and Spooky sets the `Alt-Svc` header of TCP
 * responses itself (Bun only adds its own when `http3` is on in the same instance).
 *
 * Both servers set `SO_REUSEPORT`, so a replacement pair (a new certificate) can bind the same port before
 * the old pair is released; a start-up check without `SO_REUSEPORT` makes sure no other socket already holds
 * the port (see {@link startListener}).
 */

import type { Server } from 'bun';
import type { ListenerConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { bindFailureReason } from '../lib/bind-error.ts';
import { TUNNEL_HANDLERS } from '../proxy/websocket.ts';
import { type ListenerCertificates, loadListenerCertificates } from './certs.ts';

/** A running listener. */
export interface RunningListener {
  /** The TCP server (HTTP/1.1 and HTTP/2). */
  readonly tcp: Server<unknown>;
  /** The UDP server (HTTP/3). */
  readonly udp: Server<unknown>;
  /** Bound address. */
  readonly address: string;
  /** Bound port (TCP and UDP). */
  readonly port: number;
  /** Config it was started from. */
  readonly config: ListenerConfig;
  /** The certificates it serves. */
  readonly certs: ListenerCertificates;
}

/** How a request arrived: over QUIC (HTTP/3) or over TCP (HTTP/1.1 or HTTP/2). */
export type Transport = 'h3' | 'tcp';

/** Answers a request; undefined once it was upgraded to a WebSocket (TCP only; Bun then answers 101 itself). */
export type FetchHandler = (req: Request, server: Server<unknown>, transport: Transport) => Response | undefined | Promise<Response | undefined>;

/** How to start a listener. */
export interface StartOptions {
  /** The listener's checked certificates (see `loadListenerCertificates`); read from `cfg` when absent. */
  certs?: ListenerCertificates;
  /** Port to bind instead of `cfg.port` (a replacement for a listener that was started on port 0). */
  port?: number;
  /**
   * Check first that no other socket holds the TCP or UDP port (default `true`). The sockets are opened with
   * `SO_REUSEPORT`, so that a replacement (new certificate) can bind the same port before the old one closes;
   * without this check a second process could silently share the port. A replacement of a running listener
   * passes `false`: the port is Spooky's own.
   */
  exclusive?: boolean;
}

/** A port held by plain (not `SO_REUSEPORT`) TCP and UDP sockets; see {@link reservePort}. */
export interface PortReservation {
  /** The reserved port. */
  readonly port: number;
  /** Closes the holding sockets (at once), so the listener can bind the port. */
  release(): void;
}

/** Binds the TCP and UDP port without `SO_REUSEPORT`, which fails when any other socket holds either. */
async function holdPort(address: string, port: number): Promise<PortReservation> {
  const tcp = Bun.listen({ hostname: address, port, socket: { data() {} } });
  try {
    const udp = await Bun.udpSocket({ hostname: address, port: tcp.port });
    return {
      port: tcp.port,
      release() {
        udp.close();
        tcp.stop(true);
      },
    };
  } catch (e) {
    tcp.stop(true);
    throw e;
  }
}

/**
 * Checks that no socket holds `port` on TCP or UDP (for `0`: finds a port free on both) and holds it until
 * `release()`. Hold every port a change needs, release them together, then bind: two new listeners on port
 * `0` can then never get the same port. Throws a SpookyError naming the address when the port is in use.
 */
export async function reservePort(address: string, port: number): Promise<PortReservation> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (port === 0 ? 10 : 1); attempt++) {
    try {
      return await holdPort(address, port);
    } catch (e) {
      lastError = e;
    }
  }
  const why = lastError instanceof Error ? lastError.message : String(lastError);
  throw new SpookyError('config_invalid', `cannot listen on ${address}:${port}: ${bindFailureReason(lastError)} (${why})`, { cause: lastError });
}

/**
 * Starts one listener: checks its certificates (unless given), makes sure the port is free (unless
 * `exclusive: false`), then binds TCP and UDP with `SO_REUSEPORT`. Throws a SpookyError with a clear message
 * when a certificate is refused or the port cannot be bound.
 */
export async function startListener(
  cfg: ListenerConfig,
  fetch: FetchHandler,
  onError: (err: Error) => void,
  opts: StartOptions = {},
): Promise<RunningListener> {
  const certs = opts.certs ?? loadListenerCertificates(cfg);
  const wanted = opts.port ?? cfg.port;
  if (opts.exclusive === false) return bindListener(cfg, certs, wanted, fetch, onError);
  const reservation = await reservePort(cfg.address, wanted);
  reservation.release();
  return bindListener(cfg, certs, reservation.port, fetch, onError);
}

/** Binds the TCP and UDP servers of a listener on `port` (synchronously: no request runs in between). */
export function bindListener(
  cfg: ListenerConfig,
  certs: ListenerCertificates,
  port: number,
  fetch: FetchHandler,
  onError: (err: Error) => void,
): RunningListener {
  const entries = certs.list.map((c) => (c.serverName ? { cert: c.cert, key: c.key, serverName: c.serverName } : { cert: c.cert, key: c.key }));
  // The default certificate (no server name) goes first; Bun picks SNI entries by serverName.
  const tls = entries.length === 1 ? entries[0] : entries;
  const common = {
    hostname: cfg.address,
    tls,
    development: false,
    reusePort: true,
    idleTimeout: cfg.idle_timeout_s,
    // Spooky enforces its own (reloadable) body limit with a 413 and a log line.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    error(err: Error) {
      onError(err);
      return new Response('500 internal error\n', { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' } });
    },
  };
  let tcp: Server<unknown> | undefined;
  try {
    tcp = Bun.serve({
      ...common,
      port,
      http1: true,
      http2: true,
      http3: false,
      // WebSocket sessions the proxy handler upgraded (HTTP/1.1 only; see proxy/websocket.ts).
      websocket: TUNNEL_HANDLERS,
      fetch: (req: Request, server: Server<unknown>) => fetch(req, server, 'tcp'),
    } as Parameters<typeof Bun.serve>[0]);
    const udp = Bun.serve({
      ...common,
      port: tcp.port,
      http1: false,
      http2: false,
      http3: true,
      fetch: (req: Request, server: Server<unknown>) => fetch(req, server, 'h3'),
    } as Parameters<typeof Bun.serve>[0]);
    return { tcp, udp, address: cfg.address, port: tcp.port ?? port, config: cfg, certs };
  } catch (e) {
    void tcp?.stop(true);
    throw new SpookyError('config_invalid', `cannot listen on ${cfg.address}:${port}: ${(e as Error).message}`, { cause: e });
  }
}
