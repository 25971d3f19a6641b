/**
 * The Kubernetes API stand-in (test/support/kube-api.ts) against the real `@kubernetes/client-node` v2:
 * an ingress informer sees adds, updates and deletes made before and after it started; it resumes after
 * dropped watches (abrupt, where the caller must restart it on 'error', and graceful, where it reconnects on
 * its own); after a compaction it gets 410 Expired, relists and converges; label and field selectors filter
 * lists; status writes (JSON patch, merge patch, replace) land, are recorded and reach the informer; a missing
 * or wrong token gets 401. Also the raw watch protocol: initial chunk, replay from a resource version,
 * timeoutSeconds, the 410 ERROR event.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiException,
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  makeInformer,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Ingress,
} from '@kubernetes/client-node';
import { type KubeApi, startKubeApi } from '../support/kube-api.ts';
import { waitUntil } from '../support/wait.ts';

const TOKEN = 'stand-in-token';
let api: KubeApi;
let dir: string;
let kc: KubeConfig;
let net: NetworkingV1Api;

beforeAll(async () => {
  api = await startKubeApi({ token: TOKEN });
  dir = mkdtempSync(join(tmpdir(), 'kube-api-'));
  kc = new KubeConfig();
  kc.loadFromFile(api.kubeconfig(dir));
  net = kc.makeApiClient(NetworkingV1Api);
});

afterAll(() => {
  api?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ingress(namespace: string, name: string, host = `${name}.example`, labels?: Record<string, string>) {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace, labels },
    spec: {
      ingressClassName: 'spooky',
      rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
    },
  };
}

/** An ingress informer on one namespace that, like a controller should, restarts itself after an 'error' event. */
async function startInformer(namespace: string) {
  const events: string[] = [];
  const errors: unknown[] = [];
  let stopped = false;
  const informer = makeInformer<V1Ingress>(kc, `/apis/networking.k8s.io/v1/namespaces/${namespace}/ingresses`, () =>
    net.listNamespacedIngress({ namespace }),
  );
  informer.on('add', (o) => events.push(`add ${o.metadata?.name}`));
  informer.on('update', (o) => events.push(`update ${o.metadata?.name}`));
  informer.on('delete', (o) => events.push(`delete ${o.metadata?.name}`));
  informer.on('error', (err) => {
    // client-node v2 does not restart after a non-410 error (e.g. a reset connection); the caller must. It also
    // reports the abort of its own stop() as an 'error', hence the flag.
    if (stopped) return;
    errors.push(err);
    setTimeout(() => {
      if (!stopped) void informer.start();
    }, 50);
  });
  await informer.start();
  return {
    informer,
    events,
    errors,
    names: () =>
      informer
        .list()
        .map((o) => o.metadata?.name ?? '')
        .sort()
        .join(','),
    async stop() {
      stopped = true;
      await informer.stop();
    },
  };
}

function watchesOf(namespace: string) {
  return api.requests.filter(
    (r) => r.path.startsWith(`/apis/networking.k8s.io/v1/namespaces/${namespace}/ingresses?`) && r.path.includes('watch=true'),
  );
}

describe('informer', () => {
  test('sees ADDED, MODIFIED and DELETED for objects applied before and after start', async () => {
    api.apply(ingress('inf', 'before'));
    api.apply(ingress('other', 'elsewhere'));
    const inf = await startInformer('inf');
    try {
      expect(inf.names()).toBe('before');
      expect(inf.informer.get('before', 'inf')?.spec?.rules?.[0]?.host).toBe('before.example');
      await waitUntil(() => api.openWatches > 0, 5000, 'the watch to open');

      api.apply(ingress('inf', 'after'));
      await waitUntil(() => inf.names() === 'after,before', 5000, 'the informer to see "after"');
      api.apply(ingress('inf', 'before', 'changed.example'));
      await waitUntil(() => inf.informer.get('before', 'inf')?.spec?.rules?.[0]?.host === 'changed.example', 5000, 'the update');
      expect(inf.informer.get('before', 'inf')?.metadata?.generation).toBe(2);
      api.remove('Ingress', 'inf', 'after');
      await waitUntil(() => inf.names() === 'before', 5000, 'the delete');
      expect(inf.events).toEqual(['add before', 'add after', 'update before', 'delete after']);
      expect(inf.errors).toEqual([]);
      const list = api.requests.find((r) => r.path === '/apis/networking.k8s.io/v1/namespaces/inf/ingresses');
      expect(list?.status).toBe(200);
      expect(watchesOf('inf')[0]?.path).toContain(`resourceVersion=`);
    } finally {
      await inf.stop();
    }
  });

  test('resumes after dropped watches: abrupt (restart on error) and graceful (automatic)', async () => {
    api.apply(ingress('drop', 'one'));
    const inf = await startInformer('drop');
    try {
      await waitUntil(() => watchesOf('drop').length === 1 && api.openWatches > 0, 5000, 'the first watch');

      api.dropWatches();
      await waitUntil(() => inf.errors.length === 1, 5000, 'the reset to be reported as an error');
      await waitUntil(() => watchesOf('drop').length === 2, 5000, 'the restarted watch');
      api.apply(ingress('drop', 'two'));
      await waitUntil(() => inf.names() === 'one,two', 5000, 'a change after the abrupt drop');

      api.dropWatches({ graceful: true });
      await waitUntil(() => watchesOf('drop').length === 3, 5000, 'the automatic reconnect');
      api.apply(ingress('drop', 'three'));
      await waitUntil(() => inf.names() === 'one,three,two', 5000, 'a change after the graceful drop');
      expect(inf.errors.length).toBe(1);
      // Resumed from where it was, without relisting: still one list request.
      expect(api.requests.filter((r) => r.path === '/apis/networking.k8s.io/v1/namespaces/drop/ingresses').length).toBe(1);
      expect(watchesOf('drop').every((r) => !r.expired)).toBe(true);
    } finally {
      await inf.stop();
    }
  });

  test('gets 410 Expired after a compaction, relists and converges', async () => {
    api.apply(ingress('relist', 'keep'));
    api.apply(ingress('relist', 'gone'));
    const inf = await startInformer('relist');
    try {
      await waitUntil(() => watchesOf('relist').length === 1 && api.openWatches > 0, 5000, 'the first watch');
      // All in one tick, before the client can reconnect: it resumes from a resource version that is compacted away.
      api.dropWatches({ graceful: true });
      api.remove('Ingress', 'relist', 'gone');
      api.apply(ingress('relist', 'new'));
      api.apply(ingress('relist', 'keep', 'keep2.example'));
      api.compact();

      await waitUntil(
        () => inf.names() === 'keep,new' && inf.informer.get('keep', 'relist')?.spec?.rules?.[0]?.host === 'keep2.example',
        5000,
        'convergence',
      );
      expect(watchesOf('relist')[1]?.expired).toBe(true);
      const lists = api.requests.filter((r) => r.path === '/apis/networking.k8s.io/v1/namespaces/relist/ingresses');
      expect(lists.length).toBe(2);
      expect(api.requests.indexOf(lists[1]!)).toBeGreaterThan(api.requests.indexOf(watchesOf('relist')[1]!));
      expect(inf.events).toContain('delete gone');
      expect(inf.events).toContain('add new');
      expect(inf.events).toContain('update keep');
      // And it watches again from the fresh list.
      await waitUntil(() => watchesOf('relist').length === 3, 5000, 'the watch after the relist');
      api.apply(ingress('relist', 'later'));
      await waitUntil(() => inf.names() === 'keep,later,new', 5000, 'a change after the relist');
    } finally {
      await inf.stop();
    }
  });
});

describe('lists', () => {
  test('label-selected EndpointSlices: only the service’s slices', async () => {
    const slice = (name: string, service: string) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name, namespace: 'eps', labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'test' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    api.apply(slice('web-a', 'web'));
    api.apply(slice('web-b', 'web'));
    api.apply(slice('api-a', 'api'));
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const list = await discovery.listNamespacedEndpointSlice({ namespace: 'eps', labelSelector: 'kubernetes.io/service-name=web' });
    expect(list.kind).toBe('EndpointSliceList');
    expect(list.items.map((s) => s.metadata?.name)).toEqual(['web-a', 'web-b']);
    expect(list.items[0]?.endpoints?.[0]?.addresses).toEqual(['10.0.0.1']);
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThan(0);
    const notWeb = await discovery.listEndpointSliceForAllNamespaces({
      labelSelector: 'kubernetes.io/service-name!=web,endpointslice.kubernetes.io/managed-by',
    });
    expect(notWeb.items.map((s) => s.metadata?.name)).toEqual(['api-a']);
    const setBased = await discovery.listNamespacedEndpointSlice({ namespace: 'eps', labelSelector: 'kubernetes.io/service-name in (api, other)' });
    expect(setBased.items.map((s) => s.metadata?.name)).toEqual(['api-a']);
  });

  test('field-selected Secrets by type; single GET and 404', async () => {
    api.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'tls', namespace: 'sec' },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': 'Y3J0', 'tls.key': 'a2V5' },
    });
    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'opaque', namespace: 'sec' }, type: 'Opaque', data: {} });
    const core = kc.makeApiClient(CoreV1Api);
    const tls = await core.listSecretForAllNamespaces({ fieldSelector: 'type=kubernetes.io/tls' });
    expect(tls.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`)).toEqual(['sec/tls']);
    const one = await core.readNamespacedSecret({ namespace: 'sec', name: 'tls' });
    expect(one.data?.['tls.crt']).toBe('Y3J0');
    expect(one.metadata?.uid).toBeTruthy();
    const missing = await core.readNamespacedSecret({ namespace: 'sec', name: 'nope' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiException);
    expect((missing as ApiException<unknown>).code).toBe(404);
    api.apply({ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'spooky' }, spec: { controller: 'spooky.dev/ingress' } });
    const classes = await net.listIngressClass();
    expect(classes.items.map((c) => [c.metadata?.name, c.metadata?.namespace, c.spec?.controller])).toEqual([
      ['spooky', undefined, 'spooky.dev/ingress'],
    ]);
  });
});

describe('status writes', () => {
  test('JSON patch, merge patch and replace land, are recorded and reach the informer', async () => {
    api.apply(ingress('status', 'web'));
    const inf = await startInformer('status');
    try {
      const before = api.get('Ingress', 'status', 'web')!;
      const patched = await net.patchNamespacedIngressStatus({
        namespace: 'status',
        name: 'web',
        body: [{ op: 'add', path: '/status', value: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } } }],
      });
      expect(patched.status?.loadBalancer?.ingress?.[0]?.ip).toBe('192.0.2.10');
      expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
      expect(patched.metadata?.generation).toBe(1); // status writes do not bump generation
      await waitUntil(
        () => inf.informer.get('web', 'status')?.status?.loadBalancer?.ingress?.[0]?.ip === '192.0.2.10',
        5000,
        'the status in the informer',
      );

      await net.patchNamespacedIngressStatus(
        {
          namespace: 'status',
          name: 'web',
          body: { status: { loadBalancer: { ingress: [{ hostname: 'lb.example' }] } }, spec: { ingressClassName: 'ignored' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const current = await net.readNamespacedIngressStatus({ namespace: 'status', name: 'web' });
      expect(current.status?.loadBalancer?.ingress).toEqual([{ hostname: 'lb.example' }]);
      expect(current.spec?.ingressClassName).toBe('spooky'); // only status is written through /status

      current.status = { loadBalancer: { ingress: [{ ip: '192.0.2.20', ports: [{ port: 443, protocol: 'UDP' }] }] } };
      const replaced = await net.replaceNamespacedIngressStatus({ namespace: 'status', name: 'web', body: current });
      expect(replaced.status?.loadBalancer?.ingress?.[0]?.ports?.[0]?.port).toBe(443);
      // A stale resourceVersion conflicts, as with the real server's optimistic concurrency.
      const stale = await net.replaceNamespacedIngressStatus({ namespace: 'status', name: 'web', body: current }).catch((e: unknown) => e);
      expect((stale as ApiException<unknown>).code).toBe(409);

      expect(api.statusWrites.map((w) => [w.method, w.contentType, w.namespace, w.name])).toEqual([
        ['PATCH', 'application/json-patch+json', 'status', 'web'],
        ['PATCH', 'application/merge-patch+json', 'status', 'web'],
        ['PUT', 'application/json', 'status', 'web'],
      ]);
      expect(api.statusWrites[2]?.status).toEqual({ loadBalancer: { ingress: [{ ip: '192.0.2.20', ports: [{ port: 443, protocol: 'UDP' }] }] } });
      expect(api.get('Ingress', 'status', 'web')?.status).toEqual(api.statusWrites[2]?.status);
      await waitUntil(() => inf.informer.get('web', 'status')?.status?.loadBalancer?.ingress?.[0]?.ip === '192.0.2.20', 5000, 'the replaced status');
      expect(inf.events.filter((e) => e === 'update web').length).toBe(3);
    } finally {
      await inf.stop();
    }
  });
});

describe('auth', () => {
  test('a request without the token, or with a wrong one, gets 401 and a Status', async () => {
    const res = await fetch(`${api.url}/apis/networking.k8s.io/v1/ingresses`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
    const wrong = new KubeConfig();
    wrong.loadFromFile(api.kubeconfig(dir, { token: 'wrong', fileName: 'wrong-kubeconfig' }));
    const err = await wrong
      .makeApiClient(NetworkingV1Api)
      .listIngressForAllNamespaces()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<unknown>).code).toBe(401);
    expect(api.requests.at(-1)?.status).toBe(401);
  });
});

describe('raw watch protocol', () => {
  const auth = { authorization: `Bearer ${TOKEN}` };
  const base = '/apis/networking.k8s.io/v1/namespaces/raw/ingresses';

  async function events(
    res: Response,
  ): Promise<{ type: string; object: Record<string, unknown> & { metadata?: { name?: string; resourceVersion?: string } } }[]> {
    const text = await res.text();
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l));
  }

  test('replays from a resource version, adds a bookmark, ends at timeoutSeconds', async () => {
    const a = api.apply(ingress('raw', 'a'));
    api.apply(ingress('raw', 'b'));
    api.remove('Ingress', 'raw', 'a');
    const started = performance.now();
    const res = await fetch(`${api.url}${base}?watch=1&resourceVersion=${a.metadata.resourceVersion}&allowWatchBookmarks=true&timeoutSeconds=1`, {
      headers: auth,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const evs = await events(res);
    expect(performance.now() - started).toBeGreaterThan(900);
    expect(evs.map((e) => `${e.type} ${e.object.metadata?.name ?? ''}`)).toEqual(['ADDED b', 'DELETED a', 'BOOKMARK ']);
    expect(Number(evs[1]?.object.metadata?.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    expect(evs[2]?.object.metadata?.resourceVersion).toBe(api.resourceVersion);
  });

  test('without a resource version, current objects come as ADDED; selector transitions become ADDED/DELETED', async () => {
    api.apply(ingress('raw2', 'x', 'x.example', { team: 'a' }));
    const res = await fetch(`${api.url}/apis/networking.k8s.io/v1/namespaces/raw2/ingresses?watch=true&labelSelector=team%3Da&timeoutSeconds=1`, {
      headers: auth,
    });
    api.apply(ingress('raw2', 'x', 'x.example', { team: 'b' }));
    api.apply(ingress('raw2', 'y', 'y.example', { team: 'a' }));
    expect((await events(res)).map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED x', 'DELETED x', 'ADDED y']);
  });

  test('a compacted resource version gets the 410 Expired ERROR event and the stream ends', async () => {
    const old = api.resourceVersion;
    api.apply(ingress('raw', 'c'));
    api.compact();
    const res = await fetch(`${api.url}${base}?watch=true&resourceVersion=${old}`, { headers: auth });
    expect(res.status).toBe(200);
    expect(await events(res)).toEqual([
      {
        type: 'ERROR',
        object: expect.objectContaining({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 }),
      },
    ]);
    // The current resource version is still fine.
    const ok = await fetch(`${api.url}${base}?watch=true&resourceVersion=${api.resourceVersion}&timeoutSeconds=1`, { headers: auth });
    expect(await events(ok)).toEqual([]);
  });
});
