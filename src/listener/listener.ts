/**
 * The traffic listener: HTTP/3 on UDP and HTTP/1.1 + HTTP/2 on TCP at the same address and port.
 *
 * It is two `Bun.serve` instances on one port number (TCP and UDP ports do not clash): one with only
 * `http3`, one with only `http1` + `http2`. That way the handler knows for certain whether a request came over
 * HTTP/3 (one `Bun.serve` with all three gives no way to tell), and Spooky sets the `Alt-Svc` header of TCP
 * responses itself (Bun only adds its own when `http3` is on in the same instance).
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'bun';
import type { ListenerConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';

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
}

/** How a request arrived: over QUIC (HTTP/3) or over TCP (HTTP/1.1 or HTTP/2). */
export type Transport = 'h3' | 'tcp';

/** The request handler a listener runs. */
export type FetchHandler = (req: Request, server: Server<unknown>, transport: Transport) => Response | Promise<Response>;

/** Reads the PEM files of a listener, failing with one clear message per unreadable file. */
export function readCertificates(cfg: ListenerConfig): { cert: string; key: string; serverName?: string }[] {
  const problems: string[] = [];
  const out: { cert: string; key: string; serverName?: string }[] = [];
  for (const c of cfg.certificates) {
    let cert = '';
    let key = '';
    try {
      cert = readFileSync(c.cert, 'utf8');
    } catch (e) {
      problems.push(`cannot read certificate ${c.cert}: ${(e as Error).message}`);
    }
    try {
      key = readFileSync(c.key, 'utf8');
    } catch (e) {
      problems.push(`cannot read key ${c.key}: ${(e as Error).message}`);
    }
    if (cert && !cert.includes('-----BEGIN CERTIFICATE-----')) problems.push(`${c.cert} is not a PEM certificate`);
    if (key && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) problems.push(`${c.key} is not a PEM private key`);
    out.push(c.server_name ? { cert, key, serverName: c.server_name } : { cert, key });
  }
  if (problems.length) throw new SpookyError('config_invalid', problems.join('; '));
  return out;
}

/** Starts one listener. Throws a SpookyError with a clear message when it cannot bind or load certificates. */
export function startListener(cfg: ListenerConfig, fetch: FetchHandler, onError: (err: Error) => void): RunningListener {
  const certs = readCertificates(cfg);
  // The default certificate (no server name) goes first; Bun picks SNI entries by serverName.
  const tls = certs.length === 1 ? certs[0] : certs;
  const common = {
    hostname: cfg.address,
    tls,
    development: false,
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
      port: cfg.port,
      http1: true,
      http2: true,
      http3: false,
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
    return { tcp, udp, address: cfg.address, port: tcp.port ?? cfg.port, config: cfg };
  } catch (e) {
    void tcp?.stop(true);
    throw new SpookyError('config_invalid', `cannot listen on ${cfg.address}:${cfg.port}: ${(e as Error).message}`, { cause: e });
  }
}
