/**
 * The Helm chart in deploy/helm/spooky, checked with a real `helm` (test/support/helm.ts): `helm lint --strict`,
 * and the manifests `helm template` renders, parsed: the Service carries HTTPS on TCP and HTTP/3 on UDP to the same
 * pod port, the pod runs non-root on a read-only root file system without capabilities, the config in the
 * ConfigMap is one Spooky itself accepts (`spooky validate`), RBAC grants exactly what the ingress controller
 * needs, a config change changes the checksum that rolls the pods, and the IngressClass names the controller.
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { testCertificate } from '../support/certs.ts';
import { helmBinary } from '../support/helm.ts';

const ROOT = resolve(import.meta.dir, '../..');
const CHART = join(ROOT, 'deploy/helm/spooky');
const dir = mkdtempSync(join(tmpdir(), 'spooky-helm-chart-'));
const RELEASE_NAMESPACE = 'ingress';
const CONTROLLER = 'spooky.dev/ingress-controller';

/** A values file an operator with stricter needs would write: watched namespaces only, the default class, 8443 inside. */
const VARIANT = {
  replicas: 3,
  tls: { secretName: 'edge-cert' },
  controller: {
    ingressClass: { name: 'edge', default: true },
    namespaces: ['team-a', 'team-b'],
    publishAddress: 'edge.example.com',
    debounceMs: 500,
  },
  config: {
    log: { level: 'debug', accessLog: false },
    drainTimeoutMs: 60_500,
    listen: { idle_timeout_s: 60 },
    upstream: { legacy: { route: { host: 'legacy.example.com' }, backends: [{ id: 'vm1', address: 'http://10.1.2.3:8080' }] } },
    extra: { limits: { max_in_flight: 10_000 }, trusted_proxies: ['10.0.0.0/8'] },
  },
  containerPorts: { https: 8443, http: 8080, admin: 9901 },
  service: { type: 'NodePort', externalTrafficPolicy: 'Local' },
  preStopSleepSeconds: 10,
};
const variantFile = join(dir, 'variant-values.yaml');
writeFileSync(variantFile, stringify(VARIANT));

/** A rendered Kubernetes object (or part of one), read field by field. */
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are untyped YAML; the assertions check their shape
type Loose = any;
type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> } } & Record<
  string,
  Loose
>;

let helm: string;
/** Helm's own cache, config and data folders, kept out of the user's home. */
const helmEnv = { ...process.env, HELM_CACHE_HOME: join(dir, 'cache'), HELM_CONFIG_HOME: join(dir, 'config'), HELM_DATA_HOME: join(dir, 'data') };

function helmRun(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([helm, ...args], { cwd: ROOT, env: helmEnv, timeout: 30_000 });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** `helm template` of the chart with `args` (e.g. `-f file`, `--set k=v`), parsed into objects. */
function render(args: string[] = []): Manifest[] {
  const r = helmRun(['template', 'edge', CHART, '--namespace', RELEASE_NAMESPACE, ...args]);
  if (r.code !== 0) throw new Error(`helm template failed (exit ${r.code}): ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

function one(manifests: Manifest[], kind: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found.map((m) => m.kind)).toEqual([kind]);
  return found[0]!;
}

/** The Spooky config embedded in the ConfigMap the Deployment mounts. */
function spookyConfig(manifests: Manifest[]): { text: string; config: Record<string, Loose> } {
  const text = one(manifests, 'ConfigMap').data['spooky.yaml'] as string;
  return { text, config: parse(text) };
}

function spookyContainer(manifests: Manifest[]): Record<string, Loose> {
  return one(manifests, 'Deployment').spec.template.spec.containers.find((c: { name: string }) => c.name === 'spooky');
}

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([process.execPath, 'src/main.ts', ...args], { cwd: ROOT, timeout: 30_000 });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe('the Helm chart deploy/helm/spooky', () => {
  beforeAll(async () => {
    helm = await helmBinary();
  }, 180_000);

  test('helm lint --strict passes with the default values and with the variant; a misspelt value is refused', () => {
    for (const args of [[], ['-f', variantFile]]) {
      const r = helmRun(['lint', '--strict', CHART, ...args]);
      expect({ args, code: r.code, out: r.stdout.includes('0 chart(s) failed') }).toEqual({ args, code: 0, out: true });
    }
    const typo = helmRun(['lint', '--strict', CHART, '--set', 'replica=3']);
    expect(typo.code).not.toBe(0);
    expect(`${typo.stdout}${typo.stderr}`).toContain('replica');
    // A top-level key the chart writes itself cannot come in a second time through config.extra.
    const clash = helmRun(['template', 'edge', CHART, '--set', 'config.extra.admin.port=1']);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain('config.extra.admin');
  }, 30_000);

  test('the Service takes HTTPS on TCP and HTTP/3 on UDP on port 443, both to the port Spooky listens on; admin is not exposed', () => {
    for (const args of [[], ['-f', variantFile]]) {
      const manifests = render(args);
      const service = one(manifests, 'Service');
      const listenPort = spookyConfig(manifests).config.listen.port as number;
      const ports = service.spec.ports as { name: string; port: number; targetPort: number; protocol: string }[];
      const on443 = ports.filter((p) => p.port === 443).map((p) => `${p.protocol}->${p.targetPort}`);
      expect(on443.toSorted()).toEqual([`TCP->${listenPort}`, `UDP->${listenPort}`]);
      // The container declares that port for both protocols (named https and http3).
      const declared = spookyContainer(manifests).ports as { name: string; containerPort: number; protocol: string }[];
      expect(declared.filter((p) => p.containerPort === listenPort).map((p) => p.protocol)).toEqual(['TCP', 'UDP']);
      // Port 80 goes to the redirect listener, on its own port; nothing reaches the admin listener.
      const config = spookyConfig(manifests).config;
      expect(ports.find((p) => p.port === 80)?.targetPort).toBe(config.http_redirect.port);
      expect(config.http_redirect.https_port).toBe(443);
      expect(ports.map((p) => p.targetPort)).not.toContain(config.admin.port);
    }
    expect(one(render(), 'Service').spec.type).toBe('LoadBalancer');
    expect(one(render(['--set', 'httpRedirect.enabled=false']), 'Service').spec.ports.map((p: { port: number }) => p.port)).toEqual([443, 443]);
  }, 30_000);

  test('the pod runs as non-root on a read-only root file system, with no capability; low ports through the safe sysctl', () => {
    const check = (manifests: Manifest[]) => {
      const pod = one(manifests, 'Deployment').spec.template.spec;
      const container = spookyContainer(manifests);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
      expect(container.securityContext.capabilities).toEqual({ drop: ['ALL'] });
      expect(container.securityContext.privileged).toBeUndefined();
      return pod;
    };
    // Defaults: 443 and 80 inside as outside (so Alt-Svc names the port clients use), opened by the sysctl.
    const pod = check(render());
    expect(pod.securityContext.sysctls).toEqual([{ name: 'net.ipv4.ip_unprivileged_port_start', value: '80' }]);
    // 8443 and 8080 inside: no sysctl at all.
    expect(check(render(['-f', variantFile])).securityContext.sysctls).toBeUndefined();
    // tcpMigrateReq adds the (unsafe) sysctl that keeps queued connections across a listener replacement.
    expect(check(render(['--set', 'tcpMigrateReq=true'])).securityContext.sysctls).toEqual([
      { name: 'net.ipv4.ip_unprivileged_port_start', value: '80' },
      { name: 'net.ipv4.tcp_migrate_req', value: '1' },
    ]);
  }, 30_000);

  test('probes, config mount and shutdown fit the Spooky config: kubelet waits out the drain', () => {
    for (const [args, preStop] of [
      [[], 5],
      [['-f', variantFile], 10],
      [['--kube-version', '1.29.0'], 0], // the preStop sleep action needs 1.30; left out before
    ] as const) {
      const manifests = render([...args]);
      const { config } = spookyConfig(manifests);
      const pod = one(manifests, 'Deployment').spec.template.spec;
      const container = spookyContainer(manifests);
      const adminPort = container.ports.find((p: { name: string }) => p.name === 'admin').containerPort;
      expect(config.admin).toEqual({ enabled: true, address: '0.0.0.0', port: adminPort });
      expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
      expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
      // The config file Spooky is told to read is the ConfigMap's, mounted read-only.
      const configPath = container.args[container.args.indexOf('--config') + 1] as string;
      const mount = container.volumeMounts.find((m: { mountPath: string }) => configPath.startsWith(`${m.mountPath}/`));
      expect(pod.volumes.find((v: { name: string }) => v.name === mount.name).configMap.name).toBe(one(manifests, 'ConfigMap').metadata.name);
      expect(configPath.endsWith('/spooky.yaml')).toBe(true);
      // The certificate files the config names come from the TLS Secret's mount.
      const tlsMount = container.volumeMounts.find((m: { name: string }) => m.name === 'tls');
      expect(config.listen.tls).toEqual({ cert: `${tlsMount.mountPath}/tls.crt`, key: `${tlsMount.mountPath}/tls.key` });
      expect(config.log.format).toBe('json');
      expect(config.log.file).toBeUndefined(); // stdout
      // SIGTERM comes after the preStop sleep; Spooky then drains for up to drain_timeout_ms.
      expect(container.lifecycle?.preStop?.sleep?.seconds ?? 0).toBe(preStop);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStop + config.shutdown.drain_timeout_ms / 1000);
    }
    const variantPod = one(render(['-f', variantFile]), 'Deployment').spec.template.spec;
    expect(variantPod.volumes.find((v: { name: string }) => v.name === 'tls').secret.secretName).toBe('edge-cert');
  }, 30_000);

  test('the config in the ConfigMap is one Spooky accepts (spooky validate), with the kubernetes section from the values', async () => {
    const { cert, key } = await testCertificate();
    for (const [name, args] of [
      ['defaults', []],
      ['variant', ['-f', variantFile]],
    ] as const) {
      const manifests = render([...args]);
      const { text, config } = spookyConfig(manifests);
      expect(config.kubernetes.ingress_class).toBe(name === 'variant' ? 'edge' : 'spooky');
      expect(config.kubernetes.namespaces).toEqual(name === 'variant' ? ['team-a', 'team-b'] : []);
      expect(config.kubernetes.debounce_ms).toBe(name === 'variant' ? 500 : 200);
      expect(config.kubernetes.publish_address).toBe(name === 'variant' ? 'edge.example.com' : undefined);
      expect(config.kubernetes.kubeconfig).toBeUndefined(); // the pod's service account
      // The pod's certificate paths, pointed at a real pair here so validate can read them.
      const checked = text.replaceAll(config.listen.tls.cert, cert).replaceAll(config.listen.tls.key, key);
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, checked);
      const r = cli(['validate', '--config', file]);
      expect({ name, code: r.code, stderr: r.stderr.includes('error') ? r.stderr : '' }).toEqual({ name, code: 0, stderr: '' });
      expect(r.stdout).toContain('configuration is valid');
    }
  }, 30_000);

  test('RBAC grants exactly get/list/watch on what the controller reads and update/patch on ingresses/status, no wildcard', () => {
    const reads = ['core/services', 'core/secrets', 'discovery.k8s.io/endpointslices', 'networking.k8s.io/ingresses'].flatMap((r) =>
      ['get', 'list', 'watch'].map((v) => `${r}:${v}`),
    );
    const namespaced = [...reads, 'networking.k8s.io/ingresses/status:update', 'networking.k8s.io/ingresses/status:patch'].toSorted();
    const classes = ['get', 'list', 'watch'].map((v) => `networking.k8s.io/ingressclasses:${v}`);
    const grants = (role: Manifest) =>
      (role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[])
        .flatMap((rule) => rule.apiGroups.flatMap((g) => rule.resources.flatMap((r) => rule.verbs.map((v) => `${g === '' ? 'core' : g}/${r}:${v}`))))
        .toSorted();
    /** Which grants reach the chart's ServiceAccount, by scope ('cluster' or a namespace). */
    const byScope = (manifests: Manifest[]) => {
      const account = one(manifests, 'Deployment').spec.template.spec.serviceAccountName;
      expect(one(manifests, 'ServiceAccount').metadata.name).toBe(account);
      const scopes: Record<string, string[]> = {};
      for (const binding of manifests.filter((m) => m.kind === 'ClusterRoleBinding' || m.kind === 'RoleBinding')) {
        expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account, namespace: RELEASE_NAMESPACE }]);
        const role = manifests.find(
          (m) => m.kind === binding.roleRef.kind && m.metadata.name === binding.roleRef.name && m.metadata.namespace === binding.metadata.namespace,
        )!;
        scopes[binding.kind === 'ClusterRoleBinding' ? 'cluster' : binding.metadata.namespace!] = grants(role);
      }
      const text = JSON.stringify(manifests.filter((m) => m.kind === 'ClusterRole' || m.kind === 'Role').map((m) => m.rules));
      expect(text).not.toContain('*');
      return scopes;
    };
    expect(byScope(render())).toEqual({ cluster: [...classes, ...namespaced].toSorted() });
    // Namespaces set: the cluster-scoped IngressClasses cluster-wide, everything else only in the watched namespaces.
    expect(byScope(render(['-f', variantFile]))).toEqual({ cluster: classes.toSorted(), 'team-a': namespaced, 'team-b': namespaced });
  }, 30_000);

  test('a config value change changes the checksum/config annotation (pods roll); other changes do not', () => {
    const checksum = (args: string[]) => one(render(args), 'Deployment').spec.template.metadata.annotations['checksum/config'] as string;
    const base = checksum([]);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(checksum(['--set', 'config.log.level=debug'])).not.toBe(base);
    expect(checksum(['--set', 'controller.ingressClass.name=other'])).not.toBe(base);
    expect(checksum(['--set', 'config.drainTimeoutMs=5000'])).not.toBe(base);
    expect(checksum(['--set', 'replicas=5'])).toBe(base);
    expect(checksum([])).toBe(base);
  }, 30_000);

  test('the IngressClass names the controller and the class in the config; default-class annotation only when asked', () => {
    const plain = render();
    const cls = one(plain, 'IngressClass');
    expect(cls.spec.controller).toBe(CONTROLLER);
    expect(cls.metadata.name).toBe(spookyConfig(plain).config.kubernetes.ingress_class);
    expect(cls.metadata.annotations?.['ingressclass.kubernetes.io/is-default-class']).toBeUndefined();
    const variant = one(render(['-f', variantFile]), 'IngressClass');
    expect(variant.metadata.name).toBe('edge');
    expect(variant.spec.controller).toBe(CONTROLLER);
    expect(variant.metadata.annotations?.['ingressclass.kubernetes.io/is-default-class']).toBe('true');
    expect(render(['--set', 'controller.ingressClass.create=false']).filter((m) => m.kind === 'IngressClass')).toEqual([]);
  }, 30_000);

  test('the chart runs the version package.json names, and the Dockerfile builds with the pinned Bun', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    expect(chart.appVersion).toBe(pkg.version);
    expect(spookyContainer(render()).image).toBe(`spooky:${pkg.version}`);
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`ARG BUN_VERSION=${pkg.dependencies.bun}\n`);
    expect(dockerfile).toMatch(/^FROM oven\/bun:\$\{BUN_VERSION\} AS build$/m);
  });
});
