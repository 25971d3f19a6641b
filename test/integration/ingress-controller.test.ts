/**
 * Spooky as a Kubernetes ingress controller: a real Spooky process with a `kubernetes` section, against the
 * API server stand-in (`test/support/kube-api.ts`, over HTTPS with its own CA and a bearer token, as a real
 * cluster's API server), with real backend processes as the Services' endpoints. Routing follows the Ingress
 * rules, endpoint and Ingress changes are reloads without a restart, TLS Secrets become SNI certificates, the
 * Ingress status gets the publish address, and a dropped watch is resumed.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { makeTempCertificate, testCertificate } from '../support/certs.ts';
import { type KubeApi, startKubeApi } from '../support/kube-api.ts';
import { endpointSlice, ingress, prefixPath, service } from '../support/kube-objects.ts';
import { admin, type Backend, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

let api: KubeApi;
let a: Backend;
let b: Backend;
let spooky: SpookyProcess;

/** Which backend answered a request for `host` + `target` over HTTP/1.1 (the status when it was not a backend). */
async function who(host: string, target: string): Promise<string> {
  const res = await request(`${spooky.url}${target}`, { protocol: 'http1.1', headers: { host } });
  const body = await res.text();
  return res.status === 200 ? (JSON.parse(body) as { backend: string }).backend : String(res.status);
}

beforeAll(async () => {
  const cert = await testCertificate();
  api = await startKubeApi({ token: 'spooky-sa-token', tls: { cert: cert.certPem, key: cert.keyPem } });
  [a, b] = await Promise.all([startBackend('A'), startBackend('B')]);
  api.apply({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IngressClass',
    metadata: { name: 'spooky' },
    spec: { controller: 'spooky.dev/ingress-controller' },
  });
  api.apply(service('web', 80));
  api.apply(service('api', 8080));
  api.apply(endpointSlice('web', 'web-1', a.port));
  api.apply(endpointSlice('api', 'api-1', b.port));
  api.apply(
    ingress('shop', [
      { host: 'shop.example', paths: [prefixPath('/', 'web', 80), prefixPath('/api', 'api', 8080)] },
      { paths: [prefixPath('/h3', 'web', 80)] },
    ]),
  );
  // Another controller's Ingress: not Spooky's business.
  api.apply(ingress('theirs', [{ host: 'theirs.example', paths: [prefixPath('/', 'api', 8080)] }], { ingressClassName: 'nginx' }));
  const kubeconfig = api.kubeconfig(mkdtempSync(join(tmpdir(), 'spooky-kubeconfig-')));
  spooky = await startSpooky(`
kubernetes:
  kubeconfig: "${kubeconfig}"
  publish_address: 203.0.113.7
  debounce_ms: 50
# As in the Helm chart: file changes are reloads too (the certificate files Spooky writes for Secrets among them).
reload: { watch: true, debounce_ms: 50 }
`);
}, 60_000);

afterAll(async () => {
  await spooky?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
  api?.stop();
});

test('the Ingress rules of its class route requests from the first config on; Prefix matches whole segments; the status gets the address', async () => {
  expect(spooky.child.lines.find((r) => r.event === 'kubernetes_synced')).toBeDefined();
  expect(await who('shop.example', '/')).toBe('A');
  expect(await who('shop.example', '/cart/1')).toBe('A');
  expect(await who('shop.example', '/api/orders')).toBe('B');
  expect(await who('shop.example', '/api')).toBe('B');
  expect(await who('shop.example', '/apix')).toBe('A'); // not the segment /api
  expect(await who('theirs.example', '/')).toBe('404'); // class nginx
  expect(await who('other.example', '/')).toBe('404');
  // HTTP/3 to a rule without host (the request's authority is 127.0.0.1).
  const h3 = await request(`${spooky.url}/h3/x`);
  expect([h3.status, ((await h3.json()) as { backend: string }).backend]).toEqual([200, 'A']);
  // Every request to the API server carried the token (the stand-in answers 401 otherwise) over TLS checked
  // against the kubeconfig's CA.
  expect(api.requests.filter((r) => r.status === 401)).toEqual([]);
  await eventually(() => api.statusWrites.some((w) => w.name === 'shop'), 5000, 'the status write');
  expect(api.get('Ingress', 'shop', 'shop')?.status).toEqual({ loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } });
  expect(api.statusWrites.filter((w) => w.name === 'theirs')).toEqual([]);
}, 30_000);

test('endpoint changes are reloads: a replaced pod gets the traffic, no ready pod is 503, a removed Ingress is 404', async () => {
  const reloadsBefore = spooky.child.lines.filter((r) => r.event === 'audit' && r.trigger === 'kubernetes').length;
  api.apply(endpointSlice('web', 'web-1', b.port)); // the pod moved
  await eventually(async () => (await who('shop.example', '/')) === 'B', 10_000, 'traffic on the new endpoint');
  const kubernetesAudits = () => spooky.child.lines.filter((r) => r.event === 'audit' && r.trigger === 'kubernetes');
  await eventually(() => kubernetesAudits().length > reloadsBefore, 5000, 'the audit record of the reload');
  const reload = kubernetesAudits().slice(reloadsBefore);
  expect(reload.every((r) => r.result === 'ok')).toBe(true);

  api.apply(endpointSlice('web', 'web-1', b.port, false)); // failing its readiness probe
  await eventually(async () => (await who('shop.example', '/')) === '503', 10_000, '503 without a ready endpoint');
  expect(await who('shop.example', '/api/x')).toBe('B'); // the other Service is untouched

  api.apply(endpointSlice('web', 'web-1', a.port));
  await eventually(async () => (await who('shop.example', '/')) === 'A', 10_000, 'ready again');

  api.apply(ingress('late', [{ host: 'late.example', paths: [prefixPath('/', 'api', 8080)] }]));
  await eventually(async () => (await who('late.example', '/')) === 'B', 10_000, 'a new Ingress');
  api.remove('Ingress', 'shop', 'late');
  await eventually(async () => (await who('late.example', '/')) === '404', 10_000, 'the Ingress removed');
}, 60_000);

test('changes that do not touch what Spooky serves are no reload: another namespace, another class, an Ingress status', async () => {
  // Reload attempts as the runtime counts them (taken or refused), not log lines that may still be on their way.
  const reloads = async () => {
    const counts = ((await admin(spooky, '/status')).body as { reloads: { ok: number; error: number } }).reloads;
    return counts.ok + counts.error;
  };
  const before = await reloads();
  api.apply(endpointSlice('elsewhere', 'elsewhere-1', 9, true, 'other'));
  const theirs = api.get('Ingress', 'shop', 'theirs');
  api.apply({ ...theirs, status: { loadBalancer: { ingress: [{ ip: '198.51.100.1' }] } } } as never);
  api.apply({
    ...api.get('Ingress', 'shop', 'shop'),
    metadata: { ...api.get('Ingress', 'shop', 'shop')?.metadata, labels: { team: 'shop' } },
  } as never);
  // Watched for ten debounce windows: nothing to reload.
  expect(
    await eventually(async () => (await reloads()) > before, 500, 'a reload').then(
      () => 'reloaded',
      () => 'none',
    ),
  ).toBe('none');
  // A change that does matter still is one.
  api.apply(endpointSlice('api', 'api-1', a.port));
  await eventually(async () => (await who('shop.example', '/api/x')) === 'A', 10_000, 'the api pod moved');
  expect(await reloads()).toBe(before + 1);
  api.apply(endpointSlice('api', 'api-1', b.port));
  await eventually(async () => (await who('shop.example', '/api/x')) === 'B', 10_000, 'the api pod back');
}, 30_000);

test('a TLS Secret named in spec.tls is the certificate of its hosts (SNI); the other names keep the default one', async () => {
  const own = await makeTempCertificate({ name: 'secure.example' });
  api.apply({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { namespace: 'shop', name: 'secure-tls' },
    data: { 'tls.crt': Buffer.from(own.certPem).toString('base64'), 'tls.key': Buffer.from(own.keyPem).toString('base64') },
  });
  api.apply(
    ingress('secure', [{ host: 'secure.example', paths: [prefixPath('/', 'web', 80)] }], {
      tls: [{ hosts: ['secure.example'], secretName: 'secure-tls' }],
    }),
  );
  const subject = (servername: string) =>
    new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: spooky.port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
        resolve(String(s.getPeerCertificate().subject?.CN));
        s.destroy();
      });
      s.on('error', (e) => resolve(`error: ${e.message}`));
    });
  const seen: string[] = [];
  await eventually(
    async () => {
      seen.push(await subject('secure.example'));
      return seen.at(-1) === 'secure.example';
    },
    10_000,
    'the Secret certificate served',
  );
  // A handshake that meets the swap of the listener (a new certificate set means new servers on the same port)
  // may be reset: see README, Limitations. Only the last attempt must have the new certificate.
  expect(await subject('shop.example')).toBe('localhost'); // the listener's default certificate
  expect(await who('secure.example', '/')).toBe('A');
  // Spooky's own certificate files, watched by `reload.watch`, settle after later reloads: none follows another.
  api.apply(endpointSlice('web', 'web-1', b.port));
  await eventually(async () => (await who('secure.example', '/')) === 'B', 10_000, 'a later reload');
  api.apply(endpointSlice('web', 'web-1', a.port));
  await eventually(async () => (await who('secure.example', '/')) === 'A', 10_000, 'and another');
  const reloads = async () => ((await admin(spooky, '/status')).body as { reloads: { ok: number } }).reloads.ok;
  let last = await reloads();
  let quiet = 0;
  await eventually(
    async () => {
      const now = await reloads();
      quiet = now === last ? quiet + 1 : 0;
      last = now;
      return quiet >= 10;
    },
    10_000,
    'ten quiet looks at the reload count, 50 ms apart',
  );
}, 30_000);

test('a dropped watch is logged and resumed; changes made meanwhile arrive', async () => {
  api.dropWatches(); // abrupt, as when the API server restarts
  await spooky.child.waitFor((r) => r.event === 'kubernetes_watch_error', 10_000, 'the watch error');
  api.apply(ingress('after-drop', [{ host: 'after.example', paths: [prefixPath('/', 'api', 8080)] }]));
  await eventually(async () => (await who('after.example', '/')) === 'B', 15_000, 'the change after the drop');
  expect(await who('shop.example', '/')).toBe('A'); // served throughout from the cache
}, 30_000);
