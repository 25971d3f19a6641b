/**
 * Picks and builds the {@link Transport} (connection pool and protocol client) for one backend:
 * `http1` -> {@link Http1Transport} over plain TCP; `h2c` -> {@link Http2Transport} cleartext (prior knowledge);
 * `h2` -> {@link Http2Transport} over TLS, which falls back to HTTP/1.1 when the backend's ALPN answer is not h2.
 *
 * The TLS policy comes from the pool's `upstream_tls`. `verify_certificates: false` is honoured silently here:
 * the caller logs the warning once per start, not once per backend.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { BackendConfig, Config, UpstreamTlsConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { type Http1PoolOptions, Http1Transport } from './http1.ts';
import { Http2Transport, type Http2TransportOptions, type UpstreamOrigin } from './http2.ts';
import type { Transport } from './transport.ts';

/** Tuning passed through to the transports. Every field is optional. */
export interface TransportFactoryOptions {
  /** Pool options of HTTP/1.1 transports (also used by an h2 transport's HTTP/1.1 fallback). */
  http1?: Http1PoolOptions;
  /** Options of HTTP/2 transports. */
  http2?: Omit<Http2TransportOptions, 'http1'>;
}

/** Host of a URL without IPv6 brackets (`[::1]` -> `::1`), as sockets want it. */
function bareHost(url: URL): string {
  const h = url.hostname;
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** Port of a backend URL, with the scheme's default when the address had none (h2c is carried as `http:`). */
function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** The text of the TLS file named by `upstream_tls.<field>`; throws `config_invalid` when it cannot be read. */
function readTlsFile(field: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SpookyError('config_invalid', `cannot read upstream_tls.${field} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The client certificate and key of `tls`, read and checked: a PEM certificate, an unencrypted PEM key, and the
 * key the certificate was made for. Throws `config_invalid` naming the file otherwise, so a wrong pair fails the
 * load or reload instead of every handshake with the backend.
 */
function clientIdentity(certPath: string, keyPath: string): { cert: string; key: string } {
  const cert = readTlsFile('client_certificate', certPath);
  const key = readTlsFile('client_key', keyPath);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new SpookyError('config_invalid', `upstream_tls.client_certificate ${certPath} is not a PEM certificate`, { cause: err });
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new SpookyError('config_invalid', `upstream_tls.client_key ${keyPath} is not an unencrypted PEM private key`, { cause: err });
  }
  if (!leaf.checkPrivateKey(privateKey))
    throw new SpookyError('config_invalid', `upstream_tls.client_key ${keyPath} is not the key of client_certificate ${certPath}`);
  return { cert, key };
}

/** One reading of each TLS file group of `tls` (the CA bundle; the client certificate with its key), each throwing its problem. */
function tlsFileChecks(tls: UpstreamTlsConfig): (() => unknown)[] {
  const { ca_file: ca, client_certificate: cert, client_key: key } = tls;
  const checks: (() => unknown)[] = [];
  if (ca !== undefined) checks.push(() => readTlsFile('ca_file', ca));
  if (cert !== undefined && key !== undefined) checks.push(() => clientIdentity(cert, key));
  return checks;
}

/**
 * Reads the TLS files of `tls` (`ca_file`, the client certificate and key) as a transport would, and throws the
 * first problem as `config_invalid`; for a pool whose TLS is used only by probe connections made later.
 */
export function checkUpstreamTlsFiles(tls: UpstreamTlsConfig): void {
  for (const check of tlsFileChecks(tls)) check();
}

/** True when one of `backend`'s health probes targets an `https://` address of its own. */
export function probesUseTls(backend: BackendConfig): boolean {
  return backend.health_check.probes.some((p) => p.address?.startsWith('https:'));
}

/**
 * The origin (host, port, TLS policy) a transport for `backend` connects to. TLS is set only for `h2`:
 * SNI carries the backend host when `strict_sni` is on and the host is a name (never for an IP literal);
 * `ca_file` and the client certificate are read here, synchronously, once. Throws `config_invalid` when a file
 * cannot be read or the client certificate and key do not make a pair.
 */
export function originFor(backend: BackendConfig, tls: UpstreamTlsConfig): UpstreamOrigin {
  const host = bareHost(backend.url);
  const port = portOf(backend.url);
  if (backend.protocol !== 'h2') return { host, port };
  const ca = tls.ca_file !== undefined ? readTlsFile('ca_file', tls.ca_file) : undefined;
  const client =
    tls.client_certificate !== undefined && tls.client_key !== undefined ? clientIdentity(tls.client_certificate, tls.client_key) : undefined;
  const serverName = tls.strict_sni && isIP(host) === 0 ? host : undefined;
  return {
    host,
    port,
    tls: {
      rejectUnauthorized: tls.verify_certificates,
      ...(serverName !== undefined ? { serverName } : {}),
      ...(ca !== undefined ? { ca } : {}),
      ...(client !== undefined ? client : {}),
    },
  };
}

/**
 * Every problem with the upstream TLS files of `config` (`ca_file`, the client certificate and key) of the pools
 * that use TLS (an https backend or probe address), one message per problem naming the file and the pools it
 * affects: what a start or reload would refuse, for `spooky validate`.
 */
export function upstreamTlsProblems(config: Config): string[] {
  const pools = new Map<string, string[]>();
  for (const pool of config.pools) {
    if (!pool.backends.some((b) => b.protocol === 'h2' || probesUseTls(b))) continue;
    for (const check of tlsFileChecks(pool.tls)) {
      try {
        check();
      } catch (e) {
        const message = (e as Error).message;
        pools.set(message, [...(pools.get(message) ?? []), pool.name]);
      }
    }
  }
  return [...pools].map(([message, names]) => `${message} (pool${names.length > 1 ? 's' : ''} ${names.join(', ')})`);
}

/**
 * Builds the transport for one backend under the pool's TLS policy (see the module comment).
 * Matches the registry's `TransportFactory` when called with two arguments.
 */
export function createTransport(backend: BackendConfig, tls: UpstreamTlsConfig, opts: TransportFactoryOptions = {}): Transport {
  const origin = originFor(backend, tls);
  const maxConn = backend.limits?.max_connections ?? 0;
  const http1 = maxConn > 0 ? { ...opts.http1, maxConnections: maxConn } : opts.http1;
  const http2 = maxConn > 0 ? { ...opts.http2, maxSessions: maxConn, maxWebSockets: maxConn } : opts.http2;
  switch (backend.protocol) {
    case 'http1':
      return new Http1Transport(origin, http1);
    case 'h2c':
    case 'h2':
      return new Http2Transport(origin, { ...http2, ...(http1 ? { http1 } : {}) });
  }
}
