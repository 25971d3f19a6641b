/**
 * The live dashboard in headless Chromium (playwright-core with Debian's chromium, never a downloaded
 * browser): the page renders from `/stats`, shows traffic, and shows a backend going down within two seconds
 * of Spooky noticing. A screenshot is kept in test-artifacts/dashboard.png.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => Bun.file(p).size > 0);
const ARTIFACTS = resolve(import.meta.dir, '../../test-artifacts');
const TOKEN = 'dashboard-token';

let a: Backend;
let b: Backend;
let spooky: SpookyProcess;
let browser: Browser | undefined;
let traffic = true;
let trafficDone: Promise<void> = Promise.resolve();

beforeAll(async () => {
  [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  spooky = await startSpooky(`
admin: { token: ${TOKEN} }
upstream:
  web:
    load_balancing: { type: round-robin }
    health_check: { path: /health, interval: 100, timeout_ms: 300, failure_threshold: 1, success_threshold: 1, cooldown_ms: 100 }
    backends:
      - { id: a, address: "${a.address}" }
      - { id: b, address: "${b.address}" }
`);
});
afterAll(async () => {
  traffic = false;
  await Promise.race([trafficDone, Bun.sleep(3000)]); // bounded: a request stuck on a dying backend must not hold the suite
  await browser?.close();
  await spooky?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
});

test('the dashboard renders, shows traffic, and shows a backend going down within two seconds', async () => {
  if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install -y chromium); .ci/run installs it');
  // steady traffic in the background: 4 loops over HTTP/3 and HTTP/2
  trafficDone = Promise.all(
    Array.from({ length: 4 }, async (_, i) => {
      while (traffic) {
        try {
          await (await request(`${spooky.url}/page/${i}`, { protocol: i % 2 ? 'http2' : 'http3' })).arrayBuffer();
        } catch {}
        await Bun.sleep(5);
      }
    }),
  ).then(() => {});

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const external: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(`http://127.0.0.1:${spooky.adminPort}/`)) external.push(r.url());
  });
  await page.goto(`http://127.0.0.1:${spooky.adminPort}/dashboard#token=${TOKEN}`);

  // renders: both backends up, connection live
  await page.waitForSelector('[data-backend="web/a"][data-healthy="true"]', { timeout: 5000 });
  await page.waitForSelector('[data-backend="web/b"][data-healthy="true"]', { timeout: 5000 });
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 5000 });
  expect(page.url()).not.toContain(TOKEN); // the page drops the token from the address bar

  // shows traffic: requests/s above zero in total and for each backend
  await page.waitForFunction(
    () => {
      const d = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document;
      const n = (s: string) => Number.parseFloat(d.querySelector(s)?.textContent ?? '');
      return n('#total-rps') > 0 && n('[data-backend="web/a"] .rps') > 0 && n('[data-backend="web/b"] .rps') > 0;
    },
    undefined,
    { timeout: 8000, polling: 100 },
  );

  // a backend goes down: the page shows it within two seconds of Spooky's health_change
  await b.stop();
  await spooky.child.waitFor((r) => r.event === 'health_change' && r.backend === 'b' && r.healthy === false, 5000, 'b marked unhealthy');
  const noticed = Date.now();
  await page.waitForSelector('[data-backend="web/b"][data-healthy="false"]', { timeout: 2000 });
  const shownAfter = Date.now() - noticed;
  expect(shownAfter).toBeLessThan(2000);
  expect(await page.textContent('[data-backend="web/b"] .badge')).toBe('DOWN');
  expect(await page.getAttribute('[data-backend="web/a"]', 'data-healthy')).toBe('true');
  await page.waitForSelector('#events li[data-kind="health"]', { timeout: 2000 });
  expect(await page.textContent('#events')).toContain('web/b is DOWN');
  expect(external).toEqual([]); // works offline: nothing but the admin listener was asked

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
}, 40_000);
