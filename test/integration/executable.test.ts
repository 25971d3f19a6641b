/**
 * The single executable of `npm run build` (`bun build --compile src/main.ts`), built into a temp folder and run
 * with no checkout and no Bun beside it: --version, validate, schema, a config that balances HTTP/3 and HTTP/1.1
 * traffic over two real backends, the ingress-controller mode against the Kubernetes API stand-in (the Kubernetes
 * client is bundled into the file, loaded on demand), and `workers: 2` (the compiled file starts its workers by
 * running itself).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exampleWithFiles, testCertificate } from '../support/certs.ts';
import { startKubeApi } from '../support/kube-api.ts';
import { endpointSlice, ingress, prefixPath, service } from '../support/kube-objects.ts';
import { admin, type Backend, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

const ROOT = resolve(import.meta.dir, '../..');
const dir = mkdtempSync(join(tmpdir(), 'spooky-exe-'));
const exe = join(dir, 'spooky');
const version = (await Bun.file(join(ROOT, 'package.json')).json()) as { version: string };

/** Runs the compiled file with `args` from a folder that is not the checkout. */
function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([exe, ...args], { cwd: dir, env: { ...process.env }, timeout: 20_000 });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe('the compiled spooky executable', () => {
  let a: Backend;
  let b: Backend;
  const running: SpookyProcess[] = [];

  beforeAll(async () => {
    const build = Bun.spawnSync([process.execPath, 'build', '--compile', 'src/main.ts', '--outfile', exe], { cwd: ROOT, timeout: 60_000 });
    if (build.exitCode !== 0) throw new Error(`bun build --compile failed: ${build.stderr.toString()}`);
    [a, b] = await Promise.all([startBackend('A'), startBackend('B')]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(running.map((s) => (s.child.proc.exitCode === null ? s.stop() : undefined)));
    await Promise.all([a?.stop(), b?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('--version names the package version and the Bun inside', () => {
    const r = run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(new RegExp(`^spooky ${version.version.replaceAll('.', '\\.')} \\(bun \\d+\\.\\d+\\.\\d+\\)$`));
  });

  test('validate exits 0 on an example and 1 with file:line:col on a broken file; schema prints JSON Schema', async () => {
    expect(run(['validate', '--config', await exampleWithFiles('api-and-web.yaml')]).code).toBe(0);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'upstream:\n  web:\n    load_balancing: { type: round-robn }\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n');
    const r = run(['validate', '--config', broken]);
    expect(r.code).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toContain(`${broken}:3:`);
    const schema = JSON.parse(run(['schema']).stdout) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toContain('upstream');
  });

  test('runs a config: HTTP/3 requests alternate between the backends, HTTP/1.1 answers advertise h3', async () => {
    const spooky = await startSpooky(
      `log: { level: info }
upstream:
  web:
    load_balancing: { type: round-robin }
    backends:
      - { id: a, address: "${a.address}" }
      - { id: b, address: "${b.address}" }
`,
      { executable: exe },
    );
    running.push(spooky);
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`${spooky.url}/hello`);
      expect(res.status).toBe(200);
      seen.push(res.headers.get('x-backend') ?? '');
      await res.arrayBuffer();
    }
    expect(seen.toSorted()).toEqual(['A', 'A', 'B', 'B']);
    const h1 = await request(`${spooky.url}/hello`, { protocol: 'http1.1' });
    expect(h1.status).toBe(200);
    expect(h1.headers.get('alt-svc')).toBe(`h3=":${spooky.port}"; ma=86400`);
    await h1.arrayBuffer();
    const logged = await spooky.child.waitFor((r) => r.event === 'access' && r.protocol === 'h3', 5000, 'an h3 access-log line');
    expect(logged.path).toBe('/hello');
    expect(await spooky.stop()).toBe(0);
  });

  test('as an ingress controller (what the container image runs): the Kubernetes client inside the file lists, watches and routes', async () => {
    const cert = await testCertificate();
    const kube = await startKubeApi({ token: 'image-token', tls: { cert: cert.certPem, key: cert.keyPem } });
    try {
      kube.apply(service('web', 80));
      kube.apply(endpointSlice('web', 'web-1', a.port));
      kube.apply(ingress('shop', [{ host: 'shop.example', paths: [prefixPath('/', 'web', 80)] }]));
      const spooky = await startSpooky(`kubernetes: { kubeconfig: "${kube.kubeconfig(dir)}", debounce_ms: 50 }\n`, { executable: exe });
      running.push(spooky);
      const res = await request(`${spooky.url}/`, { protocol: 'http1.1', headers: { host: 'shop.example' } });
      expect([res.status, res.headers.get('x-backend')]).toEqual([200, 'A']);
      await res.arrayBuffer();
      kube.apply(endpointSlice('web', 'web-1', b.port));
      await eventually(
        async () => {
          const r = await request(`${spooky.url}/`, { protocol: 'http1.1', headers: { host: 'shop.example' } });
          await r.arrayBuffer();
          return r.headers.get('x-backend') === 'B';
        },
        10_000,
        'the watch moved the traffic',
      );
      expect(await spooky.stop()).toBe(0);
    } finally {
      kube.stop();
    }
  });

  test('workers: 2 starts two worker processes of the same file, and both are ready and serve', async () => {
    const spooky = await startSpooky(
      `workers: 2
log: { level: info, access_log: false }
upstream:
  web:
    backends: [{ id: a, address: "${a.address}" }]
`,
      { executable: exe },
    );
    running.push(spooky);
    const status = (await admin(spooky, '/status')).body as { workers: { pid: number | null; listening: boolean; ready: boolean }[] };
    expect(status.workers).toHaveLength(2);
    expect(status.workers.every((w) => w.listening && w.ready && w.pid !== null && w.pid !== spooky.child.proc.pid)).toBe(true);
    const res = await request(`${spooky.url}/x`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-backend')).toBe('A');
    await res.arrayBuffer();
    expect(await spooky.stop()).toBe(0);
  });
});
