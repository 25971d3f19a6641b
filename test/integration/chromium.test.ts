/**
 * Interop with an independent HTTP/3 client: headless Chromium (Debian's `chromium`) loads a page through
 * Spooky over HTTP/3; the page and its 20 subresources must all arrive over h3, from both backends.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificate } from '../support/certs.ts';
import { type Backend, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => Bun.file(p).size > 0);

let a: Backend;
let b: Backend;
let spooky: SpookyProcess;

beforeAll(async () => {
  [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  spooky = await startSpooky(`
upstream:
  site:
    load_balancing: { type: round-robin }
    backends:
      - { id: a, address: "${a.address}" }
      - { id: b, address: "${b.address}" }
`);
});
afterAll(async () => {
  await spooky?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
});

test('Chromium loads a page and 20 subresources over HTTP/3 from both backends', async () => {
  if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install -y chromium); .ci/run installs it');
  const { cert } = await testCertificate();
  const spki = createHash('sha256')
    .update(createPublicKey(readFileSync(cert, 'utf8')).export({ type: 'spki', format: 'der' }))
    .digest('base64');
  const profile = mkdtempSync(join(tmpdir(), 'spooky-chromium-'));
  const origin = `127.0.0.1:${spooky.port}`;
  try {
    const proc = Bun.spawn(
      [
        CHROMIUM,
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        `--ignore-certificate-errors-spki-list=${spki}`,
        '--enable-quic',
        `--origin-to-force-quic-on=${origin}`,
        '--virtual-time-budget=10000',
        '--dump-dom',
        `https://${origin}/interop/page`,
      ],
      { stdout: 'pipe', stderr: 'pipe' },
    );
    const timer = setTimeout(() => proc.kill('SIGKILL'), 45_000);
    const dom = await new Response(proc.stdout).text();
    clearTimeout(timer);
    await proc.exited;
    const match = /<pre id="result">([^<]*)<\/pre>/.exec(dom);
    expect(match?.[1]).toBeDefined();
    const result = JSON.parse((match?.[1] ?? '').replaceAll('&quot;', '"')) as {
      page: { protocol: string };
      resources: { name: string; protocol: string; backend: string | null }[];
    };
    expect(result.page.protocol).toBe('h3');
    expect(result.resources).toHaveLength(20);
    expect(result.resources.every((r) => r.protocol === 'h3')).toBe(true);
    expect(new Set(result.resources.map((r) => r.backend))).toEqual(new Set(['a', 'b']));
    await spooky.child.waitFor((r) => r.event === 'access' && r.protocol === 'h3' && String(r.path).startsWith('/interop/res/'), 5000, 'h3 access line');
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}, 60_000);
