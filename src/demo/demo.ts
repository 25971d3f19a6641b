/**
 * What `npm start` runs with no config: two built-in demo backends on loopback, a self-signed certificate in
 * the data folder (made on first start), and an embedded config balancing across the two.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'bun';
import type selfsignedModule from 'selfsigned';

/** Where Spooky keeps generated files: `$SPOOKY_DATA_DIR`, else `$XDG_DATA_HOME/spooky`, else `~/.local/share/spooky`. */
export function dataDir(): string {
  if (process.env.SPOOKY_DATA_DIR) return process.env.SPOOKY_DATA_DIR;
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'spooky');
}

/**
 * Whether `cert` and `key` hold a certificate and the private key that belongs to it, still valid for a day.
 * A pair left half-written (a first start killed, two first starts at once) or expired is not.
 */
function usablePair(cert: string, key: string): boolean {
  try {
    const x = new X509Certificate(readFileSync(cert));
    return x.checkPrivateKey(createPrivateKey(readFileSync(key))) && Date.parse(x.validTo) > Date.now() + 86_400_000;
  } catch {
    return false;
  }
}

/** Writes `text` to `path` through a temporary file and a rename, so `path` is never seen half-written. */
function writeAtomically(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

/**
 * Returns paths to a self-signed certificate for localhost/127.0.0.1/::1, creating it on first use, and again
 * when the pair found is not usable (half-written, mismatched or expiring). Each file is written atomically.
 */
export async function ensureSelfSignedCertificate(dir = dataDir()): Promise<{ cert: string; key: string; created: boolean }> {
  const cert = join(dir, 'self-signed-cert.pem');
  const key = join(dir, 'self-signed-key.pem');
  if (existsSync(cert) && existsSync(key) && usablePair(cert, key)) return { cert, key, created: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Loaded only when a certificate must be made: the library and its ASN.1 stack add about 20 MB of RSS.
  const { default: selfsigned } = (await import('selfsigned')) as { default: typeof selfsignedModule };
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    days: 825,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  } as Parameters<typeof selfsignedModule.generate>[1]);
  // Key first, then the certificate: a start killed in between leaves a pair usablePair refuses, made anew next time.
  writeAtomically(key, pems.private, 0o600);
  writeAtomically(cert, pems.cert, 0o644);
  return { cert, key, created: true };
}

/** Starts a demo backend: `/` an HTML page, `/health` ok, anything else a JSON echo of the request. */
export function startDemoBackend(name: string): Server<unknown> {
  return Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    development: false,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === '/health') return new Response('ok\n');
      if (url.pathname === '/') {
        return new Response(
          `<!doctype html><meta charset="utf-8"><title>Spooky demo</title><h1>Hello from demo backend ${name}</h1><p>Reload to see the load balancer alternate between backends.</p>\n`,
          { headers: { 'content-type': 'text/html; charset=utf-8', 'x-demo-backend': name } },
        );
      }
      const body = req.body ? await req.text() : '';
      return Response.json(
        { backend: name, method: req.method, path: url.pathname + url.search, headers: Object.fromEntries(req.headers), body_bytes: body.length },
        { headers: { 'x-demo-backend': name } },
      );
    },
  });
}

/** The embedded default config; `{{...}}` placeholders are filled in by {@link defaultConfigText}. */
const DEFAULT_CONFIG = `# Spooky's embedded default config (npm start with no --config).
version: 1
listen:
  protocol: http3
  address: 127.0.0.1
  port: 8443
  tls:
    cert: {{cert}}
    key: {{key}}
admin:
  address: 127.0.0.1
  port: 9901
upstream:
  demo:
    load_balancing:
      type: round-robin
    backends:
      - id: demo-a
        address: "http://127.0.0.1:{{portA}}"
        health_check:
          path: /health
          interval: 2000
      - id: demo-b
        address: "http://127.0.0.1:{{portB}}"
        health_check:
          path: /health
          interval: 2000
log:
  level: info
`;

/**
 * Fills the embedded config with the certificate paths and the demo backends' ports. The paths go in as JSON
 * strings, which are YAML double-quoted scalars, so a data folder with `"` or `\` in its name reads back as it is.
 */
export function defaultConfigText(v: { cert: string; key: string; portA: number; portB: number }): string {
  return DEFAULT_CONFIG.replaceAll('{{cert}}', JSON.stringify(v.cert))
    .replaceAll('{{key}}', JSON.stringify(v.key))
    .replaceAll('{{portA}}', String(v.portA))
    .replaceAll('{{portB}}', String(v.portB));
}
