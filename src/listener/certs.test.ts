import { beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificate } from '../../test/support/certs.ts';
import { CertificateError, loadListenerCertificates } from './certs.ts';

const DAY = 86_400_000;
let dir: string;
type Pair = Awaited<ReturnType<typeof makeCertificate>>;
let good: Pair;
let other: Pair;
let expired: Pair;
let soon: Pair;
let future: Pair;
let encrypted: Pair;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'spooky-certs-'));
  [good, other, expired, soon, future, encrypted] = await Promise.all([
    makeCertificate(dir, 'good'),
    makeCertificate(dir, 'other', { name: 'other.test' }),
    makeCertificate(dir, 'expired', { notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) }),
    makeCertificate(dir, 'soon', { notAfter: new Date(Date.now() + 3 * DAY) }),
    makeCertificate(dir, 'future', { notBefore: new Date(Date.now() + 2 * DAY) }),
    makeCertificate(dir, 'encrypted', { passphrase: 'secret' }),
  ]);
  writeFileSync(join(dir, 'garbage.pem'), 'hello, not a certificate\n');
  writeFileSync(join(dir, 'broken-cert.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
});

function problems(certificates: { cert: string; key: string; server_name?: string }[]): string[] {
  try {
    loadListenerCertificates({ certificates });
  } catch (e) {
    expect(e).toBeInstanceOf(CertificateError);
    return (e as CertificateError).problems;
  }
  throw new Error('expected the certificates to be refused');
}

describe('loadListenerCertificates', () => {
  test('a good pair loads with fingerprint, subject, expiry and a content digest', () => {
    const r = loadListenerCertificates({ certificates: [{ cert: good.cert, key: good.key }] });
    expect(r.list).toHaveLength(1);
    expect(r.list[0]?.fingerprint256).toBe(good.fingerprint256);
    expect(r.list[0]?.subject).toContain('CN=localhost');
    expect(Date.parse(r.list[0]?.notAfter ?? '')).toBeGreaterThan(Date.now() + 300 * DAY);
    expect(r.warnings).toEqual([]);
    expect(r.digest).toMatch(/^[0-9a-f]{64}$/);
    const again = loadListenerCertificates({ certificates: [{ cert: good.cert, key: good.key }] });
    expect(again.digest).toBe(r.digest);
    const sni = loadListenerCertificates({ certificates: [{ cert: good.cert, key: good.key }, { server_name: 'other.test', cert: other.cert, key: other.key }] });
    expect(sni.digest).not.toBe(r.digest);
    expect(sni.list[1]?.serverName).toBe('other.test');
  });

  test.each([
    ['unreadable certificate', () => [{ cert: join(dir, 'missing.pem'), key: good.key }], /^cannot read certificate .*missing\.pem: /],
    ['unreadable key', () => [{ cert: good.cert, key: join(dir, 'missing-key.pem') }], /^cannot read key .*missing-key\.pem: /],
    ['not PEM', () => [{ cert: join(dir, 'garbage.pem'), key: good.key }], /garbage\.pem is not a PEM certificate/],
    ['key file is not PEM', () => [{ cert: good.cert, key: join(dir, 'garbage.pem') }], /garbage\.pem is not a PEM private key/],
    ['PEM with a broken body', () => [{ cert: join(dir, 'broken-cert.pem'), key: good.key }], /broken-cert\.pem is not a valid certificate/],
    ['key of another certificate', () => [{ cert: good.cert, key: other.key }], /^key .*other-key\.pem does not match certificate .*good-cert\.pem$/],
    ['expired', () => [{ cert: expired.cert, key: expired.key }], /^certificate .*expired-cert\.pem expired on \d{4}-\d\d-\d\dT/],
    ['encrypted key', () => [{ cert: encrypted.cert, key: encrypted.key }], /encrypted-key\.pem is not a valid private key: encrypted keys are not supported/],
  ])('%s is refused with a clear message', (_name, certificates, want) => {
    const got = problems(certificates());
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(want);
  });

  test('every problem of every certificate is reported at once', () => {
    const got = problems([
      { cert: expired.cert, key: expired.key },
      { server_name: 'a.test', cert: good.cert, key: other.key },
    ]);
    expect(got).toHaveLength(2);
  });

  test('a listener without certificates is refused', () => {
    expect(problems([])).toEqual(['the listener has no certificate']);
  });

  test.each([
    ['expiring within 14 days', () => ({ cert: soon.cert, key: soon.key }), /expires on .*, in 3 day\(s\)/],
    ['not valid yet', () => ({ cert: future.cert, key: future.key }), /is not valid before/],
    ['SNI name missing from the certificate', () => ({ server_name: 'api.example.com', cert: good.cert, key: good.key }), /does not name api\.example\.com/],
  ])('%s is a warning', (_name, c, want) => {
    const r = loadListenerCertificates({ certificates: [c()] });
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(want);
  });

  test('a wildcard server name matches a wildcard certificate', async () => {
    const wild = await makeCertificate(dir, 'wild', { name: '*.example.com' });
    expect(loadListenerCertificates({ certificates: [{ server_name: '*.example.com', cert: wild.cert, key: wild.key }] }).warnings).toEqual([]);
  });
});
