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
