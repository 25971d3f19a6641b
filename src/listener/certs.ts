/**
 * Reading and checking a listener's certificates before any socket uses them, at start-up and on every
 * reload. A certificate is refused (all problems reported at once, each naming the file) when a file cannot
 * be read, is not PEM, the key cannot be parsed (encrypted keys are not supported), the key does not belong
 * to the certificate (`X509Certificate.checkPrivateKey`), or the certificate has expired. A certificate that
 * is not valid yet, expires within {@link EXPIRY_WARNING_DAYS} days, or does not name its SNI `server_name`
 * gives a warning.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { CertificateConfig, ListenerConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';

/** Certificates expiring within this many days give a warning at start-up and on reload. */
export const EXPIRY_WARNING_DAYS = 14;

/** One checked certificate with its PEM text. */
export interface LoadedCertificate {
  /** SNI name it answers for; undefined for the default certificate. */
  serverName?: string;
  /** Certificate file path. */
  certPath: string;
  /** Key file path. */
  keyPath: string;
  /** PEM certificate chain. */
  cert: string;
  /** PEM private key. */
  key: string;
  /** SHA-256 fingerprint of the leaf certificate (`AB:CD:…`, as `X509Certificate.fingerprint256`). */
  fingerprint256: string;
  /** Subject of the leaf certificate. */
  subject: string;
  /** End of validity (ISO 8601). */
  notAfter: string;
}

/** The checked certificates of one listener. */
export interface ListenerCertificates {
  /** In config order: the default certificate first, then the SNI ones. */
  list: LoadedCertificate[];
  /** SHA-256 over every server name, certificate and key: changes when any file content changes. */
  digest: string;
  /** Non-fatal findings (expiring soon, not valid yet, server name not in the certificate). */
  warnings: string[];
}

/** A certificate was refused; `problems` holds one message per problem. */
export class CertificateError extends SpookyError {
  /** Every problem found, one sentence each, naming the file. */
  readonly problems: string[];

  constructor(problems: string[]) {
    super('config_invalid', problems.join('; '));
    this.name = 'CertificateError';
    this.problems = problems;
  }
}

function readText(path: string, what: string, problems: string[]): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    problems.push(`cannot read ${what} ${path}: ${(e as Error).message}`);
    return '';
  }
}

function checkOne(c: CertificateConfig, now: number, problems: string[], warnings: string[]): LoadedCertificate | undefined {
  const before = problems.length;
  const cert = readText(c.cert, 'certificate', problems);
  const key = readText(c.key, 'key', problems);
  if (cert && !cert.includes('-----BEGIN CERTIFICATE-----')) problems.push(`${c.cert} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----")`);
  if (key && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) problems.push(`${c.key} is not a PEM private key (no "-----BEGIN ... PRIVATE KEY-----")`);
  if (problems.length > before) return undefined;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    problems.push(`${c.cert} is not a valid certificate: ${(e as Error).message}`);
    return undefined;
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    const why = /passphrase|encrypted/i.test(String((e as Error).message)) ? 'encrypted keys are not supported' : (e as Error).message;
    problems.push(`${c.key} is not a valid private key: ${why}`);
    return undefined;
  }
  if (!x509.checkPrivateKey(privateKey)) problems.push(`key ${c.key} does not match certificate ${c.cert}`);
  const notAfter = Date.parse(x509.validTo);
  const notBefore = Date.parse(x509.validFrom);
  const until = Number.isFinite(notAfter) ? new Date(notAfter).toISOString() : x509.validTo;
  if (notAfter < now) problems.push(`certificate ${c.cert} expired on ${until}`);
  else if (notAfter < now + EXPIRY_WARNING_DAYS * 86_400_000) warnings.push(`certificate ${c.cert} expires on ${until}, in ${Math.ceil((notAfter - now) / 86_400_000)} day(s)`);
  if (notBefore > now) warnings.push(`certificate ${c.cert} is not valid before ${new Date(notBefore).toISOString()}`);
  if (c.server_name) {
    const name = c.server_name.startsWith('*.') ? `x${c.server_name.slice(1)}` : c.server_name;
    const bare = name.replace(/^\[(.*)\]$/, '$1');
    const named = isIP(bare) ? x509.checkIP(bare) : x509.checkHost(name);
    if (!named) warnings.push(`certificate ${c.cert} does not name ${c.server_name} (subject ${x509.subject.replaceAll('\n', ', ')})`);
  }
  if (problems.length > before) return undefined;
  return {
    ...(c.server_name ? { serverName: c.server_name } : {}),
    certPath: c.cert,
    keyPath: c.key,
    cert,
    key,
    fingerprint256: x509.fingerprint256,
    subject: x509.subject.replaceAll('\n', ', '),
    notAfter: until,
  };
}

/**
 * Reads and checks every certificate of a listener. Throws a {@link CertificateError} listing every
 * problem; returns the PEM texts, fingerprints, a content digest and warnings otherwise.
 */
export function loadListenerCertificates(cfg: Pick<ListenerConfig, 'certificates'>, now = Date.now()): ListenerCertificates {
  const problems: string[] = [];
  const warnings: string[] = [];
  const list: LoadedCertificate[] = [];
  if (cfg.certificates.length === 0) problems.push('the listener has no certificate');
  for (const c of cfg.certificates) {
    const loaded = checkOne(c, now, problems, warnings);
    if (loaded) list.push(loaded);
  }
  if (problems.length) throw new CertificateError(problems);
  const hash = createHash('sha256');
  for (const c of list) hash.update(`${c.serverName ?? ''}\0${c.cert}\0${c.key}\0`);
  return { list, digest: hash.digest('hex'), warnings };
}
