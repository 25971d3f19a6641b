/**
 * Ingress objects → Spooky pools (pure: the cluster state in, config fragments out, no I/O).
 *
 * - Spooky serves an Ingress whose `spec.ingressClassName` (or the older `kubernetes.io/ingress.class`
 *   annotation) is its class, or that names no class while Spooky's IngressClass is marked the default one;
 *   none when an IngressClass of that name names another controller than `spooky.dev/ingress-controller`.
 * - One pool per Service port (`namespace/service:port`), shared by every Ingress path that leads to it, its
 *   backends the ready endpoints of the Service's EndpointSlices (an `ExternalName` Service: its DNS name).
 *   The scheme comes from the port's `appProtocol`: `kubernetes.io/h2c` or `h2c` → `h2c://`, `https` →
 *   `https://`, else `http://`.
 * - Paths: `Exact` → Spooky's exact `path`; `Prefix` (and `ImplementationSpecific`) matches whole segments as
 *   the Ingress API says (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`), so it becomes the exact path
 *   plus the prefix `/foo/`. Spooky's precedence (longest path, exact over prefix, then the more specific
 *   host) then gives the Ingress API's. One difference is closed with extra routes: Ingress picks the host
 *   first, so a request for a host that has rules never takes a path of a rule without host (or of a matching
 *   wildcard) unless its own rules have no answer; for each such path Spooky adds a route for the host that
 *   leads where the host's own rules (or the default backend) send it.
 * - Conflicts (the same host and path in two Ingresses, two default backends): the older Ingress wins, as in
 *   ingress-nginx; the other is named in a warning.
 * - `spec.tls`: each host gets the certificate of the Secret named for it (first Ingress wins).
 */
import { parseBackendAddress, parseHostPattern, parsePath, parseServerName } from '../config/parse.ts';
import {
  type ClusterState,
  type EndpointSlice,
  type Ingress,
  type IngressBackend,
  type IngressClass,
  objectKey,
  SERVICE_NAME_LABEL,
  type Service,
} from './objects.ts';

/** A route in the YAML shape of `upstream.<pool>.route[]`. */
export interface RawRoute {
  /** Host pattern; absent: any host. */
  host?: string;
  /** Exact path. */
  path?: string;
  /** Path prefix. */
  path_prefix?: string;
}

/** A backend in the YAML shape of `upstream.<pool>.backends[]`. */
export interface RawBackend {
  /** The pod's name (or address:port when there is none). */
  id: string;
  /** `http://`, `https://` or `h2c://` address of the endpoint. */
  address: string;
}

/** A pool in the YAML shape of `upstream.<pool>`: routes and backends (possibly none: every request 503). */
export interface RawPool {
  /** Routes leading to the pool. */
  route: RawRoute[];
  /** Ready endpoints. */
  backends: RawBackend[];
}

/** An SNI certificate for a host, from a `kubernetes.io/tls` Secret. */
export interface HostCertificate {
  /** The TLS server name (a host of the Ingress's `spec.tls`). */
  host: string;
  /** The Secret, `namespace/name`. */
  secret: string;
}

/** The result of a translation. */
export interface Translation {
  /** Pools by name, in a stable order (same state → same config). */
  pools: Record<string, RawPool>;
  /** SNI certificates, by host. */
  certificates: HostCertificate[];
  /** The Ingresses served (`namespace/name`), oldest first: their status gets the publish address. */
  served: string[];
  /** What was skipped and why, each naming its object. */
  warnings: string[];
}

/** What the translation needs to know of Spooky's own settings. */
export interface TranslateOptions {
  /** The IngressClass name Spooky serves. */
  ingressClass: string;
}

/** The annotation that makes an IngressClass the cluster's default. */
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
/** The annotation older Ingresses name their class with. */
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
/** The `spec.controller` of Spooky's IngressClass (the Helm chart's). */
export const CONTROLLER_NAME = 'spooky.dev/ingress-controller';

/** A compiled Ingress path: one Spooky path condition. */
interface PathCondition {
  kind: 'exact' | 'prefix';
  /** The exact path, or the prefix (`/` or ending in `/`). */
  path: string;
  /** The exact path of a `Prefix` (`/foo` of `/foo`): an `Exact` path of the same spelling wins over it. */
  ofPrefix?: true;
}

/** A route placed in a pool, with what placed it. */
interface Placed {
  host: string | undefined;
  cond: PathCondition;
  pool: string;
  by: string;
}

/** Milliseconds of a creation timestamp (0 when missing, so such objects sort first, then by name). */
function createdAt(o: Ingress): number {
  const t = o.metadata?.creationTimestamp;
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : Number.NaN;
  return Number.isFinite(ms) ? ms : 0;
}

/** True when Spooky serves `ing` (see the module comment). */
export function isServed(ing: Ingress, ingressClass: string, classes: readonly IngressClass[]): boolean {
  const own = classes.find((c) => c.metadata?.name === ingressClass);
  // An IngressClass of that name that another controller implements is not Spooky's.
  if (own?.spec?.controller !== undefined && own.spec.controller !== CONTROLLER_NAME) return false;
  const named = ing.spec?.ingressClassName ?? ing.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
  if (named !== undefined && named !== '') return named === ingressClass;
  return own?.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true';
}

/**
 * The Spooky path conditions of an Ingress path, or a problem. `Prefix` /foo → exact /foo and prefix /foo/
 * (whole segments); `/` → prefix `/`.
 */
export function pathConditions(pathType: string | undefined, path: string | undefined): PathCondition[] | string {
  const type = pathType ?? 'ImplementationSpecific';
  const p = path === undefined || path === '' ? '/' : path;
  const checked = parsePath(p);
  if (!checked.ok) return `path "${p}": ${checked.message}`;
  if (type === 'Exact') return [{ kind: 'exact', path: p }];
  if (type !== 'Prefix' && type !== 'ImplementationSpecific') return `pathType "${type}" is not Exact, Prefix or ImplementationSpecific`;
  const stem = p.replace(/\/+$/, '');
  if (stem === '') return [{ kind: 'prefix', path: '/' }];
  return [
    { kind: 'exact', path: stem, ofPrefix: true },
    { kind: 'prefix', path: `${stem}/` },
  ];
}

/** The scheme of a Service port's backends, from its `appProtocol`. */
function schemeOf(appProtocol: string | undefined): 'http' | 'https' | 'h2c' {
  const a = (appProtocol ?? '').toLowerCase();
  if (a === 'kubernetes.io/h2c' || a === 'h2c') return 'h2c';
  if (a === 'https' || a === 'kubernetes.io/https') return 'https';
  return 'http';
}

/**
 * The backend address of `host` (an IP address or DNS name as the API gives it) and `port`, or a problem: an
 * absolute DNS name loses its trailing dot, an IPv6 address gets brackets, and what the config loader would
 * refuse (which would refuse the whole reload) is a problem instead.
 */
function addressOf(scheme: string, host: string, port: number): { address: string; authority: string } | string {
  const h = host.replace(/\.$/, '');
  const authority = `${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${port}`;
  const address = `${scheme}://${authority}`;
  const checked = parseBackendAddress(address);
  return checked.ok ? { address, authority } : `address "${host}" port ${port}: ${checked.message}`;
}

/** Finds objects by namespace and name. */
function byKey<T extends { metadata?: { namespace?: string; name?: string } }>(list: readonly T[]): Map<string, T> {
  const m = new Map<string, T>();
  for (const o of list) m.set(objectKey(o), o);
  return m;
}

/** The backends of a Service port, or a problem (no such Service or port: the pool has no backends). */
function backendsOf(
  namespace: string,
  service: NonNullable<IngressBackend['service']>,
  services: Map<string, Service>,
  slicesByService: Map<string, EndpointSlice[]>,
): { backends: RawBackend[]; problem?: string; skipped?: string[] } {
  const key = `${namespace}/${service.name}`;
  const svc = services.get(key);
  if (!svc) return { backends: [], problem: `Service ${key} does not exist` };
  const wanted = service.port ?? {};
  const ports = svc.spec?.ports ?? [];
  const sp = wanted.number !== undefined ? ports.find((p) => p.port === wanted.number) : ports.find((p) => p.name === wanted.name);
  if (svc.spec?.type === 'ExternalName') {
    const host = svc.spec.externalName;
    const port = sp?.port ?? wanted.number;
    if (!host || port === undefined) return { backends: [], problem: `ExternalName Service ${key} has no externalName or port` };
    const a = addressOf(schemeOf(sp?.appProtocol), host, port);
    if (typeof a === 'string') return { backends: [], problem: `ExternalName Service ${key}: ${a}` };
    return { backends: [{ id: a.authority, address: a.address }] };
  }
  if (!sp) return { backends: [], problem: `Service ${key} has no port ${wanted.number ?? wanted.name ?? '(none given)'}` };
  if (sp.protocol !== undefined && sp.protocol !== 'TCP')
    return { backends: [], problem: `Service ${key} port ${sp.port} is ${sp.protocol}, not TCP` };
  const found = new Map<string, RawBackend>();
  const usedIds = new Set<string>();
  const skipped: string[] = [];
  for (const slice of slicesByService.get(key) ?? []) {
    const port = (slice.ports ?? []).find((p) => (p.name ?? '') === (sp.name ?? ''));
    if (port?.port === undefined || (port.protocol !== undefined && port.protocol !== 'TCP')) continue;
    const scheme = schemeOf(sp.appProtocol ?? port.appProtocol);
    for (const e of slice.endpoints ?? []) {
      if (e.conditions?.ready === false) continue;
      for (const a of e.addresses ?? []) {
        const checked = addressOf(scheme, a, port.port);
        if (typeof checked === 'string') {
          skipped.push(`EndpointSlice ${objectKey(slice)}: ${checked}`);
          continue;
        }
        const { address, authority } = checked;
        if (found.has(address)) continue;
        let id = e.targetRef?.name || authority;
        if (usedIds.has(id)) id = `${id}@${authority}`;
        usedIds.add(id);
        found.set(address, { id, address });
      }
    }
  }
  const backends = [...found.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return skipped.length > 0 ? { backends, skipped } : { backends };
}

/** True when route condition `r` matches every path that `cond` matches (so a shadow route of `cond` may lead where `r` does). */
function covers(r: PathCondition, cond: PathCondition): boolean {
  if (r.kind === 'exact') return cond.kind === 'exact' && cond.path === r.path;
  return cond.path.startsWith(r.path); // a prefix is `/` or ends in `/`: whole segments
}

/** The key that makes two routes the same for the router. */
function routeKey(host: string | undefined, cond: PathCondition): string {
  return `${host ?? ''} ${cond.kind} ${cond.path}`;
}

/** Translates the Ingresses of `state` that Spooky serves into pools (see the module comment). */
export function translate(state: ClusterState, opts: TranslateOptions): Translation {
  const warnings: string[] = [];
  const services = byKey(state.services);
  const slicesByService = new Map<string, EndpointSlice[]>();
  for (const s of state.endpointSlices) {
    const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!svc || !s.metadata?.namespace) continue;
    const key = `${s.metadata.namespace}/${svc}`;
    const list = slicesByService.get(key);
    if (list) list.push(s);
    else slicesByService.set(key, [s]);
  }
  const ingresses = state.ingresses
    .filter((i) => isServed(i, opts.ingressClass, state.ingressClasses))
    .sort((a, b) => createdAt(a) - createdAt(b) || (objectKey(a) < objectKey(b) ? -1 : objectKey(a) > objectKey(b) ? 1 : 0));

  const pools = new Map<string, RawPool>();
  /** The pool of an Ingress backend (created on first use), or undefined with a warning. */
  const poolFor = (namespace: string, backend: IngressBackend | undefined, where: string): string | undefined => {
    const svc = backend?.service;
    if (!svc?.name) {
      warnings.push(`Ingress ${where}: only Service backends are supported; skipped`);
      return undefined;
    }
    // A port by name is named by its number when the Service has it, so both spellings share one pool.
    const named = svc.port?.name;
    const numbered = named === undefined ? undefined : services.get(`${namespace}/${svc.name}`)?.spec?.ports?.find((p) => p.name === named)?.port;
    const port = svc.port?.number ?? numbered ?? named;
    if (port === undefined) {
      warnings.push(`Ingress ${where}: the backend Service ${svc.name} names no port; skipped`);
      return undefined;
    }
    const name = `${namespace}/${svc.name}:${port}`;
    if (!pools.has(name)) {
      const { backends, problem, skipped } = backendsOf(namespace, svc, services, slicesByService);
      if (problem) warnings.push(`Ingress ${where}: ${problem}; its requests get 503 until it does`);
      for (const s of skipped ?? []) warnings.push(`Service ${namespace}/${svc.name}: ${s}; skipped`);
      pools.set(name, { route: [], backends });
    }
    return name;
  };

  const placed = new Map<string, Placed>();
  const place = (host: string | undefined, cond: PathCondition, pool: string, by: string): void => {
    const key = routeKey(host, cond);
    const first = placed.get(key);
    if (first) {
      // Exact over Prefix (the Ingress API's precedence): an Exact path takes its spelling from a Prefix's.
      if (first.cond.ofPrefix && !cond.ofPrefix) placed.set(key, { host, cond, pool, by });
      else if (cond.ofPrefix && !first.cond.ofPrefix) return;
      else if (first.pool !== pool)
        warnings.push(`Ingress ${by}: ${host ?? '(any host)'} ${cond.path} is already served by Ingress ${first.by}, which is older; skipped`);
      return;
    }
    placed.set(key, { host, cond, pool, by });
  };
  let defaultBackend: { pool: string; by: string } | undefined;
  const served: string[] = [];
  const certificates = new Map<string, HostCertificate>();

  for (const ing of ingresses) {
    const id = objectKey(ing);
    const namespace = ing.metadata?.namespace ?? 'default';
    served.push(id);
    const spec = ing.spec ?? {};
    if (spec.defaultBackend) {
      const pool = poolFor(namespace, spec.defaultBackend, `${id} defaultBackend`);
      if (pool && defaultBackend)
        warnings.push(`Ingress ${id}: the default backend of Ingress ${defaultBackend.by}, which is older, is kept; skipped`);
      else if (pool) defaultBackend = { pool, by: id };
    }
    (spec.rules ?? []).forEach((rule, ri) => {
      let host: string | undefined;
      if (rule.host !== undefined && rule.host !== '') {
        const h = parseHostPattern(rule.host);
        if (!h.ok) {
          warnings.push(`Ingress ${id} rules[${ri}]: host "${rule.host}": ${h.message}; skipped`);
          return;
        }
        host = h.value;
      }
      (rule.http?.paths ?? []).forEach((p, pi) => {
        const where = `${id} rules[${ri}].http.paths[${pi}]`;
        const conds = pathConditions(p.pathType, p.path);
        if (typeof conds === 'string') {
          warnings.push(`Ingress ${where}: ${conds}; skipped`);
          return;
        }
        const pool = poolFor(namespace, p.backend, where);
        if (!pool) return;
        for (const c of conds) place(host, c, pool, id);
      });
    });
    for (const t of spec.tls ?? []) {
      if (!t.secretName) {
        warnings.push(`Ingress ${id}: a tls entry without secretName is not supported (the listener's default certificate answers); skipped`);
        continue;
      }
      for (const h of t.hosts ?? []) {
        const checked = parseServerName(h);
        if (!checked.ok) {
          warnings.push(`Ingress ${id}: tls host "${h}": ${checked.message}; skipped`);
          continue;
        }
        const host = checked.value;
        const first = certificates.get(host);
        if (first && first.secret !== `${namespace}/${t.secretName}`)
          warnings.push(
            `Ingress ${id}: the certificate of ${host} comes from Secret ${first.secret} (an older Ingress); ${namespace}/${t.secretName} skipped`,
          );
        else if (!first) certificates.set(host, { host, secret: `${namespace}/${t.secretName}` });
      }
    }
  }

  // Host first (see the module comment): a path of a less specific host gets a route for this host that leads
  // where this host's own rules (or the default backend) send it.
  const lessSpecific = (host: string): Placed[] =>
    [...placed.values()].filter(
      (r) => r.host === undefined || (host !== r.host && r.host.startsWith('*.') && !host.startsWith('*.') && host.endsWith(r.host.slice(1))),
    );
  const direct = [...placed.values()];
  const shadows: Placed[] = [];
  for (const host of new Set(direct.map((r) => r.host))) {
    if (host === undefined) continue;
    const own = direct.filter((r) => r.host === host);
    for (const r of lessSpecific(host)) {
      if (placed.has(routeKey(host, r.cond))) continue;
      // The host's own longest route that takes every request `r` would (an exact one beats a prefix it equals).
      const rank = (c: Placed) => c.cond.path.length * 2 + (c.cond.kind === 'exact' ? 1 : 0);
      let target: Placed | undefined;
      for (const c of own) if (covers(c.cond, r.cond) && (!target || rank(c) > rank(target))) target = c;
      const pool = target?.pool ?? defaultBackend?.pool;
      if (pool) shadows.push({ host, cond: r.cond, pool, by: r.by });
    }
  }
  for (const s of shadows) placed.set(routeKey(s.host, s.cond), s);

  for (const r of placed.values()) {
    const route: RawRoute = {};
    if (r.host !== undefined) route.host = r.host;
    if (r.cond.kind === 'exact') route.path = r.cond.path;
    else route.path_prefix = r.cond.path;
    pools.get(r.pool)?.route.push(route);
  }
  if (defaultBackend && !placed.has(routeKey(undefined, { kind: 'prefix', path: '/' }))) pools.get(defaultBackend.pool)?.route.push({});

  const out: Record<string, RawPool> = {};
  for (const name of [...pools.keys()].sort()) {
    const pool = pools.get(name) as RawPool;
    if (pool.route.length > 0) out[name] = pool;
  }
  return { pools: out, certificates: [...certificates.values()], served, warnings };
}
