/** A self-signed certificate for 127.0.0.1/localhost, made once per test process in a temp folder. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSelfSignedCertificate } from '../../src/demo/demo.ts';

let cached: Promise<{ cert: string; key: string; dir: string }> | undefined;

/** Paths of a test certificate and key (created on first call). */
export function testCertificate(): Promise<{ cert: string; key: string; dir: string }> {
  cached ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-cert-'));
    const { cert, key } = await ensureSelfSignedCertificate(dir);
    return { cert, key, dir };
  })();
  return cached;
}

/** Options of {@link makeCertificate}. */
export interface MakeCertificateOptions {
  /** Common name (also the DNS SAN). Default `localhost`. */
  name?: string;
  /** Start of validity. Default now minus one hour. */
  notBefore?: Date;
  /** End of validity. Default one year from now. */
  notAfter?: Date;
  /** Encrypt the key with this passphrase (Spooky refuses encrypted keys). */
  passphrase?: string;
}

/**
 * Writes a fresh self-signed EC certificate for `name`, 127.0.0.1 and ::1 to `dir` as `<file>-cert.pem` and
 * `<file>-key.pem`; returns the paths, the PEM texts and the SHA-256 fingerprint.
 */
export async function makeCertificate(
  dir: string,
  file: string,
  opts: MakeCertificateOptions = {},
): Promise<{ cert: string; key: string; certPem: string; keyPem: string; fingerprint256: string }> {
  const { default: selfsigned } = await import('selfsigned');
  const { X509Certificate } = await import('node:crypto');
  const { writeFileSync } = await import('node:fs');
  const name = opts.name ?? 'localhost';
  const pems = await selfsigned.generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: opts.notBefore ?? new Date(Date.now() - 3_600_000),
    notAfterDate: opts.notAfter ?? new Date(Date.now() + 365 * 86_400_000),
    ...(opts.passphrase ? { passphrase: opts.passphrase } : {}),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: name },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  } as Parameters<typeof selfsigned.generate>[1]);
  const cert = join(dir, `${file}-cert.pem`);
  const key = join(dir, `${file}-key.pem`);
  writeFileSync(cert, pems.cert);
  writeFileSync(key, pems.private, { mode: 0o600 });
  return { cert, key, certPem: pems.cert, keyPem: pems.private, fingerprint256: new X509Certificate(pems.cert).fingerprint256 };
}
