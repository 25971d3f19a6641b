/**
 * Spooky as a Kubernetes ingress controller, at start: with the API server answering errors at first (it is
 * starting, or overloaded), Spooky keeps trying for up to `sync_timeout_ms` before it starts, so its first
 * config serves the Ingresses, as the README says; it does not start at once with no routes (every request
 * 404) because the first attempt of every watch failed.
 */
import { afterAll, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCertificate } from '../support/certs.ts';
import { type KubeApi, startKubeApi } from '../support/kube-api.ts';
import { endpointSlice, ingress, prefixPath, service } from '../support/kube-objects.ts';
import { type Backend, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

const apis: KubeApi[] = [];
const backends: Backend[] = [];
const spookies: SpookyProcess[] = [];

afterAll(async () => {
  await Promise.all(spookies.map((s) => s.stop()));
  await Promise.all(backends.map((b) => b.stop()));
  for (const a of apis) a.stop();
});

/** An API server stand-in refusing every request (503), holding an Ingress for shop.example → a backend answering `A`. */
async function refusingCluster(): Promise<KubeApi> {
  const cert = await testCertificate();
  const kube = await startKubeApi({ token: 't', tls: { cert: cert.certPem, key: cert.keyPem } });
  apis.push(kube);
  const backend = await startBackend('A');
  backends.push(backend);
  kube.apply(service('web', 80));
  kube.apply(endpointSlice('web', 'web-1', backend.port));
  kube.apply(ingress('shop', [{ host: 'shop.example', paths: [prefixPath('/', 'web', 80)] }]));
  kube.refuseAll(503);
  return kube;
}

/** Starts Spooky against `kube` (not waiting for it), watching `namespaces` (default: all). */
function spookyOf(kube: KubeApi, syncTimeoutMs: number, namespaces: string[] = []): Promise<SpookyProcess> {
  return startSpooky(`
kubernetes:
  kubeconfig: "${kube.kubeconfig(mkdtempSync(join(tmpdir(), 'spooky-kubeconfig-')))}"
  sync_timeout_ms: ${syncTimeoutMs}
  debounce_ms: 50
  namespaces: [${namespaces.join(', ')}]
`).then((s) => {
    spookies.push(s);
    return s;
  });
}

/** Which backend answered a request for shop.example (the status when it was not a backend). */
async function who(spooky: SpookyProcess): Promise<string> {
  const res = await request(`${spooky.url}/`, { protocol: 'http1.1', headers: { host: 'shop.example' } });
  const body = await res.text();
  return res.status === 200 ? (JSON.parse(body) as { backend: string }).backend : String(res.status);
}

test('an API server that refuses the first requests: Spooky waits for the lists (within sync_timeout_ms) and its first config serves the Ingresses', async () => {
  const kube = await refusingCluster();
  const starting = spookyOf(kube, 20_000);
  // Every watch's first list failed: then the API server comes up.
  await eventually(() => kube.requests.filter((r) => r.status === 503).length >= 5, 15_000, 'the first lists refused');
  kube.refuseAll(undefined);
  const spooky = await starting;
  const lines = spooky.child.lines;
  expect(lines.filter((r) => r.event === 'kubernetes_sync_incomplete')).toEqual([]);
  expect(lines.find((r) => r.event === 'kubernetes_synced')).toBeDefined();
  // The first generation serves the Ingress: no reload needed.
  expect(lines.filter((r) => r.event === 'audit' && r.action === 'reload')).toEqual([]);
  expect(await who(spooky)).toBe('A');
}, 60_000);

test('an API server away for longer than sync_timeout_ms: Spooky starts, names what is missing, and serves the Ingresses once it answers', async () => {
  const kube = await refusingCluster();
  const spooky = await spookyOf(kube, 1500);
  const incomplete = spooky.child.lines.find((r) => r.event === 'kubernetes_sync_incomplete');
  expect(incomplete?.missing).toEqual(['ingressclasses', 'ingresses', 'services', 'endpointslices', 'secrets']);
  expect(await who(spooky)).toBe('404');
  kube.refuseAll(undefined);
  await eventually(async () => (await who(spooky)) === 'A', 40_000, 'the Ingress served after the API server came back');
}, 60_000);

test('with namespaces set, only those are watched (namespaced paths, as a Role allows): an Ingress elsewhere is not served', async () => {
  const kube = await refusingCluster();
  kube.refuseAll(undefined);
  kube.apply(service('web', 80, 'other'));
  kube.apply(endpointSlice('web', 'web-1', backends.at(-1)?.port ?? 0, true, 'other'));
  kube.apply(ingress('elsewhere', [{ host: 'other.example', paths: [prefixPath('/', 'web', 80)] }], {}, 'other'));
  const spooky = await spookyOf(kube, 10_000, ['shop']);
  expect(await who(spooky)).toBe('A');
  const res = await request(`${spooky.url}/`, { protocol: 'http1.1', headers: { host: 'other.example' } });
  expect(res.status).toBe(404);
  await res.text();
  // Namespaced lists and watches, and the cluster-scoped IngressClasses: nothing cluster-wide of the rest.
  const paths = kube.requests.map((r) => r.path.split('?')[0]);
  expect(paths.filter((p) => /^\/(api\/v1|apis\/[^/]+\/v1)\/(ingresses|services|endpointslices|secrets)$/.test(p ?? ''))).toEqual([]);
  expect(paths).toContain('/apis/networking.k8s.io/v1/namespaces/shop/ingresses');
  expect(paths).toContain('/apis/networking.k8s.io/v1/ingressclasses');
}, 60_000);
