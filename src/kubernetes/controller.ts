/**
 * The Kubernetes ingress controller: keeps a cache of the cluster's Ingresses, IngressClasses, Services,
 * EndpointSlices and TLS Secrets (list + watch through `@kubernetes/client-node` informers, one per kind and
 * watched namespace), asks for a reload when any of them changes (once per `debounce_ms`), and composes the
 * config every reload runs: the file plus the translated Ingresses (`translate.ts`, `compose.ts`). TLS
 * Secrets are written as PEM files to a private folder for the listener to read. After a reload it writes the
 * publish address into the status of each Ingress it serves.
 *
 * A watch that fails is started again after a backoff (1 s doubling to 30 s); the cache keeps what it had,
 * so traffic goes on with the last known state while the API server is away.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, type KubernetesObject, ListWatch } from '@kubernetes/client-node';
import type { Config, KubernetesConfig } from '../config/types.ts';
import type { Logger } from '../observability/logger.ts';
import { KubeApi } from './api.ts';
import { type CertificateFiles, type Composed, composeConfig } from './compose.ts';
import type { ClusterState, EndpointSlice, Ingress, IngressClass, Secret, Service } from './objects.ts';
import { type Translation, translate } from './translate.ts';

/** The kinds watched, with their API paths (cluster-wide and per namespace). */
type Kind = 'ingresses' | 'ingressclasses' | 'services' | 'endpointslices' | 'secrets';

/** The longest wait between two attempts to start a failed watch again. */
const MAX_BACKOFF_MS = 30_000;

/** How the controller is set up. */
export interface IngressControllerOptions {
  /** The `kubernetes` section. */
  config: KubernetesConfig;
  /** Logger. */
  log: Logger;
  /** Called (at most once per `debounce_ms`) when the cluster state changed: the caller reloads. */
  onChange: () => void;
  /** A ready KubeConfig (tests); default: from `config.kubeconfig`, the pod's service account, or the default file. */
  kubeConfig?: KubeConfig;
}

/** One informer and the state of its restarts. */
interface Watched {
  kind: Kind;
  namespace: string | undefined;
  watch: ListWatch<KubernetesObject>;
  synced: boolean;
  /** Failures so far (a start that failed resolves all the same: the count tells). */
  failures: number;
  backoffMs: number;
  retry?: ReturnType<typeof setTimeout>;
}

/** Loads the KubeConfig the `kubernetes` section names, else the in-cluster one, else the default file. */
export function loadKubeConfig(cfg: KubernetesConfig): KubeConfig {
  const kc = new KubeConfig();
  if (cfg.kubeconfig !== undefined) kc.loadFromFile(cfg.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** The Spooky ingress controller (see the module comment). */
export class IngressController {
  private readonly api: KubeApi;
  private readonly watched: Watched[] = [];
  private readonly certDir: string;
  private debounce: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  /** The {@link fingerprint} of the last config composed without errors ('' before the first). */
  private applied = '';
  /** The Ingresses served by the running config, for status updates. */
  private served: string[] = [];
  /** The last warnings logged, so an unchanged problem is not logged at every reload. */
  private lastWarnings = new Set<string>();
  /** While `start()` waits: called once every watch has listed. */
  private allSynced: (() => void) | undefined;

  constructor(private readonly opts: IngressControllerOptions) {
    this.api = new KubeApi(opts.kubeConfig ?? loadKubeConfig(opts.config));
    this.certDir = mkdtempSync(join(tmpdir(), 'spooky-ingress-tls-'));
    chmodSync(this.certDir, 0o700);
  }

  /**
   * Starts every watch and waits until each has its first complete list, or `sync_timeout_ms` passed (then the
   * kinds still missing are logged and Spooky starts with what it has; they fill in when their watch works).
   */
  async start(): Promise<void> {
    const api = this.api;
    const namespaces = this.opts.config.namespaces.length > 0 ? this.opts.config.namespaces : [undefined];
    const add = (kind: Kind, namespace: string | undefined, path: string, fieldSelector?: string): void => {
      const watch = new ListWatch<KubernetesObject>(path, api.watcher(), () => api.list(path, fieldSelector), false, undefined, fieldSelector);
      const w: Watched = { kind, namespace, watch, synced: false, failures: 0, backoffMs: 1000 };
      for (const verb of ['add', 'update', 'delete'] as const) watch.on(verb, () => this.changed());
      watch.on('error', (err: unknown) => this.failed(w, err));
      this.watched.push(w);
    };
    add('ingressclasses', undefined, '/apis/networking.k8s.io/v1/ingressclasses');
    for (const ns of namespaces) {
      const base = (group: string) => (ns === undefined ? group : `${group}/namespaces/${ns}`);
      add('ingresses', ns, `${base('/apis/networking.k8s.io/v1')}/ingresses`);
      add('services', ns, `${base('/api/v1')}/services`);
      add('endpointslices', ns, `${base('/apis/discovery.k8s.io/v1')}/endpointslices`);
      add('secrets', ns, `${base('/api/v1')}/secrets`, 'type=kubernetes.io/tls');
    }
    // A watch whose first list failed is retried after its backoff: the wait goes on until every watch listed
    // (not until every first attempt ended, which with the API server away is at once, with nothing listed).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.opts.config.sync_timeout_ms);
    });
    const synced = new Promise<void>((resolve) => {
      this.allSynced = resolve;
    });
    for (const w of this.watched) void this.begin(w);
    await Promise.race([synced, deadline]);
    clearTimeout(timer);
    this.allSynced = undefined;
    const missing = this.watched.filter((w) => !w.synced).map((w) => (w.namespace ? `${w.kind} in ${w.namespace}` : w.kind));
    if (missing.length > 0)
      this.opts.log.warn(
        { event: 'kubernetes_sync_incomplete', missing },
        `starting without a complete list of ${missing.join(', ')}; they are added when their watch works`,
      );
    else this.opts.log.info({ event: 'kubernetes_synced', watches: this.watched.length }, 'Kubernetes objects listed');
  }

  /** Starts (or restarts) one watch; resolves once it listed, or failed (a retry is then scheduled). */
  private async begin(w: Watched): Promise<void> {
    const failures = w.failures;
    try {
      await w.watch.start();
    } catch (err) {
      this.failed(w, err);
    }
    if (w.failures !== failures) return;
    w.backoffMs = 1000;
    if (!w.synced) {
      w.synced = true;
      this.changed();
      if (this.watched.every((x) => x.synced)) this.allSynced?.();
    }
  }

  /** A watch failed: logged, and started again after its backoff. */
  private failed(w: Watched, err: unknown): void {
    w.failures++;
    if (this.stopped || w.retry !== undefined) return;
    const message = err instanceof Error ? err.message : String(err);
    this.opts.log.warn(
      { event: 'kubernetes_watch_error', kind: w.kind, namespace: w.namespace, retry_ms: w.backoffMs, error: message },
      `watch of ${w.kind} failed; retrying`,
    );
    w.retry = setTimeout(() => {
      w.retry = undefined;
      void this.begin(w);
    }, w.backoffMs);
    w.backoffMs = Math.min(w.backoffMs * 2, MAX_BACKOFF_MS);
  }

  /** Something changed: one `onChange` per `debounce_ms`. */
  private changed(): void {
    if (this.stopped || this.debounce !== undefined) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      if (this.stopped) return;
      // Most changes in a cluster do not touch what Spooky serves (other namespaces' endpoints, its own status
      // writes): no reload for those.
      const state = this.state();
      if (this.fingerprint(state, this.translate(state)) === this.applied) return;
      this.opts.onChange();
    }, this.opts.config.debounce_ms);
  }

  /** The translation of `state` with this controller's class. */
  private translate(state: ClusterState): Translation {
    return translate(state, { ingressClass: this.opts.config.ingress_class });
  }

  /** What the running config takes from the cluster: the pools, the served Ingresses and the certificates' contents. */
  private fingerprint(state: ClusterState, t: Translation): string {
    const secrets = new Set(t.certificates.map((c) => c.secret));
    const data = state.secrets
      .filter((s) => secrets.has(`${s.metadata?.namespace}/${s.metadata?.name}`))
      .map((s) => [s.metadata?.namespace, s.metadata?.name, s.type, s.data]);
    return createHash('sha256')
      .update(JSON.stringify([t.pools, t.certificates, t.served, data]))
      .digest('hex');
  }

  /** The objects known now. */
  state(): ClusterState {
    const of = <T>(kind: Kind): T[] => this.watched.filter((w) => w.kind === kind).flatMap((w) => w.watch.list() as T[]);
    return {
      ingresses: of<Ingress>('ingresses'),
      ingressClasses: of<IngressClass>('ingressclasses'),
      services: of<Service>('services'),
      endpointSlices: of<EndpointSlice>('endpointslices'),
      secrets: of<Secret>('secrets'),
    };
  }

  /**
   * The config to run: the file at `path` (already loaded without errors) plus the Ingresses as they are now.
   * Logs the translation's warnings that are new since the last call.
   */
  compose(path: string): Composed {
    const state = this.state();
    const t = this.translate(state);
    const problems: string[] = [...t.warnings];
    const files = this.writeCertificates(
      state.secrets,
      t.certificates.map((c) => c.secret),
      problems,
    );
    const composed = composeConfig(readFileSync(path, 'utf8'), path, t, files);
    problems.push(...composed.warnings);
    const now = new Set(problems);
    for (const p of now) if (!this.lastWarnings.has(p)) this.opts.log.warn({ event: 'kubernetes_warning' }, p);
    this.lastWarnings = now;
    if (composed.result.ok) {
      this.served = t.served;
      this.applied = this.fingerprint(state, t);
    }
    return composed;
  }

  /** Writes the PEM files of the Secrets `wanted` names (files already written are left as they are) and removes the others. */
  private writeCertificates(secrets: readonly Secret[], wanted: readonly string[], problems: string[]): Map<string, CertificateFiles> {
    const files = new Map<string, CertificateFiles>();
    const keep = new Set<string>();
    for (const key of new Set(wanted)) {
      const [namespace, name] = key.split('/');
      const secret = secrets.find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name);
      const crt = secret?.data?.['tls.crt'];
      const pem = secret?.data?.['tls.key'];
      if (secret?.type !== 'kubernetes.io/tls' || !crt || !pem) {
        problems.push(`Secret ${key} is missing or not a kubernetes.io/tls Secret with tls.crt and tls.key; its hosts get the default certificate`);
        continue;
      }
      const hash = createHash('sha256').update(crt).update('\n').update(pem).digest('hex').slice(0, 16);
      const stem = `${namespace}_${name}_${hash}`;
      const cert = join(this.certDir, `${stem}.crt`);
      const keyFile = join(this.certDir, `${stem}.key`);
      // The name holds the contents' hash: a file already there is this one. Written again, its new time would
      // be a change to `reload.watch`, whose reload would write it again, and so on.
      if (!existsSync(cert) || !existsSync(keyFile)) {
        writeFileSync(cert, Buffer.from(crt, 'base64'), { mode: 0o600 });
        writeFileSync(keyFile, Buffer.from(pem, 'base64'), { mode: 0o600 });
      }
      keep.add(`${stem}.crt`).add(`${stem}.key`);
      files.set(key, { cert, key: keyFile });
    }
    for (const f of readdirSync(this.certDir)) if (!keep.has(f)) rmSync(join(this.certDir, f), { force: true });
    return files;
  }

  /**
   * After a reload that took: writes `publish_address` into the status of every served Ingress whose status
   * says something else (a conflict or failure is logged; the next change tries again).
   */
  async publishStatus(config: Config): Promise<void> {
    const address = config.kubernetes?.publish_address ?? this.opts.config.publish_address;
    if (address === undefined || this.stopped) return;
    const wanted = isIP(address) !== 0 ? { ip: address } : { hostname: address };
    const ingresses = this.state().ingresses;
    for (const key of this.served) {
      const [namespace, name] = key.split('/') as [string, string];
      const ing = ingresses.find((i) => i.metadata?.namespace === namespace && i.metadata?.name === name);
      if (!ing) continue;
      const current = ing.status?.loadBalancer?.ingress ?? [];
      if (current.length === 1 && current[0]?.ip === wanted.ip && current[0]?.hostname === wanted.hostname) continue;
      const body = { ...ing, apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', status: { loadBalancer: { ingress: [wanted] } } };
      try {
        await this.api.request('PUT', `/apis/networking.k8s.io/v1/namespaces/${namespace}/ingresses/${name}/status`, body);
      } catch (err) {
        this.opts.log.warn(
          { event: 'kubernetes_status_error', ingress: key, error: err instanceof Error ? err.message : String(err) },
          'Ingress status not written',
        );
      }
    }
  }

  /** Stops every watch and removes the certificate files. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.debounce);
    for (const w of this.watched) {
      clearTimeout(w.retry);
      await w.watch.stop();
    }
    rmSync(this.certDir, { recursive: true, force: true });
  }
}
