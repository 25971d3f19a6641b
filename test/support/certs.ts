/**
 * Test certificates. {@link makeCertificate} is the only way tests, test servers and benchmarks make one (with
 * the `selfsigned` package, no `openssl` binary needed); {@link makeTempCertificate} puts one in a fresh temp
 * folder and {@link testCertificate} shares one per test process.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate {@link makeCertificate} wrote: file paths, PEM texts and the SHA-256 fingerprint. */
export interface TestCertificate {
  /** Path of the certificate PEM file. */
  cert: string;
  /** Path of the key PEM file. */
  key: string;
  /** The certificate PEM. */
  certPem: string;
  /** The key PEM. */
  keyPem: string;
  /** SHA-256 fingerprint, as `X509Certificate.fingerprint256` gives it. */
  fingerprint256: string;
}

let cached: Promise<TestCertificate & { dir: string }> | undefined;

/** A certificate for localhost, 127.0.0.1 and ::1 shared by the whole test process (made on first call). */
export function testCertificate(): Promise<TestCertificate & { dir: string }> {
  cached ??= makeTempCertificate();
  return cached;
}

/** A fresh certificate ({@link makeCertificate} with `opts`) in a new temp folder `dir`. */
export async function makeTempCertificate(opts: MakeCertificateOptions = {}): Promise<TestCertificate & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'spooky-cert-'));
  return { ...(await makeCertificate(dir, 'test', opts)), dir };
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
  /** IP addresses in the subject alternative names. Default 127.0.0.1 and ::1. */
  ips?: readonly string[];
  /** Make a client certificate (extended key usage `clientAuth`) instead of a server one (`serverAuth`). */
  client?: boolean;
}

/**
 * Writes a fresh self-signed EC certificate for `name` and the `ips` (default 127.0.0.1 and ::1) to `dir` as
 * `<file>-cert.pem` and `<file>-key.pem`; returns the paths, the PEM texts and the SHA-256 fingerprint.
 */
export async function makeCertificate(dir: string, file: string, opts: MakeCertificateOptions = {}): Promise<TestCertificate> {
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
      opts.client ? { name: 'extKeyUsage', clientAuth: true } : { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [{ type: 2, value: name }, ...(opts.ips ?? ['127.0.0.1', '::1']).map((ip) => ({ type: 7, ip }))],
      },
    ],
  } as Parameters<typeof selfsigned.generate>[1]);
  const cert = join(dir, `${file}-cert.pem`);
  const key = join(dir, `${file}-key.pem`);
  writeFileSync(cert, pems.cert);
  writeFileSync(key, pems.private, { mode: 0o600 });
  return { cert, key, certPem: pems.cert, keyPem: pems.private, fingerprint256: new X509Certificate(pems.cert).fingerprint256 };
}

/**
 * A copy of `examples/<name>` in a fresh temp folder, with every `certs/*` file it names (`.pem`, `.key`, `.crt`)
 * written next to it from the shared test certificate (names with `key` get the key, the others the certificate, so every
 * certificate and key it names make a pair): a folder where `spooky validate` can read every file the example
 * names. Returns the copy's path.
 */
export async function exampleWithFiles(name: string): Promise<string> {
  const { readFileSync, writeFileSync, mkdirSync } = await import('node:fs');
  const { resolve } = await import('node:path');
  const { certPem, keyPem } = await testCertificate();
  const text = readFileSync(resolve(import.meta.dir, '../../examples', name), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'spooky-example-'));
  mkdirSync(join(dir, 'certs'));
  for (const [file] of text.matchAll(/certs\/[\w.*-]+\.(?:pem|key|crt)/g))
    writeFileSync(join(dir, file), file.endsWith('.key') || file.includes('key') ? keyPem : certPem);
  mkdirSync(join(dir, 'secrets'));
  for (const [file] of text.matchAll(/secrets\/[\w.-]+/g)) writeFileSync(join(dir, file), 'example-secret\n');
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
