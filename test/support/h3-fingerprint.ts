/**
 * Opens one fresh QUIC connection (HTTP/3 ALPN) with `node:quic` and prints the server certificate's SHA-256
 * fingerprint as `{"event":"fingerprint","fingerprint256":"AB:CD:…"}`, then exits:
 *   bun test/support/h3-fingerprint.ts --port N [--host 127.0.0.1]
 * Its own process, because `node:quic` and fetch's HTTP/3 client interfere within one process (see
 * h3-load-client.ts).
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string' } } });
interface QuicSession {
  opened: Promise<unknown>;
  peerCertificate?: { fingerprint256: string };
  close(): Promise<unknown>;
}
const quic = (await import('node:quic' as string)) as { connect(addr: unknown, opts: unknown): Promise<QuicSession> };
const session = await quic.connect(
  { address: values.host, port: Number(values.port) },
  { alpn: 'h3', rejectUnauthorized: false, verifyPeer: 'manual', servername: 'localhost', reuseEndpoint: false },
);
await session.opened;
console.log(JSON.stringify({ event: 'fingerprint', fingerprint256: session.peerCertificate?.fingerprint256 ?? null }));
await session.close().catch(() => {});
process.exit(0);
