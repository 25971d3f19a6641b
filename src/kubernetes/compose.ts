/**
 * The config Spooky runs in ingress-controller mode: the config file, plus the pools and SNI certificates the
 * Ingresses bring (see `translate.ts`), checked by the same loader as a file. The file wins every clash: a
 * generated pool whose name or route a pool of the file already has is left out with a warning, and so is a
 * certificate for a server name the file already names. A Service port without ready endpoints is a pool
 * without backends, whose requests get 503 (the file format asks for at least one backend; this is the one
 * place a pool may have none).
 */
import { dirname } from 'node:path';
import { parse } from 'yaml';
import { isObj, type Obj, routeSignature } from '../config/checks.ts';
import { type LoadResult, loadConfigText } from '../config/load.ts';
import type { Translation } from './translate.ts';

/** Certificate and key files written for a TLS Secret. */
export interface CertificateFiles {
  /** PEM chain file. */
  cert: string;
  /** PEM key file. */
  key: string;
}

/** The composed config, and what was left out. */
export interface Composed {
  /** The loader's verdict on the whole. */
  result: LoadResult;
  /** Generated parts left out, each with the reason. */
  warnings: string[];
}

/** Stands in for the missing backend of an empty pool while the loader checks the config; removed after. */
const PLACEHOLDER = { id: 'no-ready-endpoints', address: 'http://127.0.0.1:9' };

/** The routes of a pool as written (none: the catch-all). */
function routesOf(pool: unknown): unknown[] {
  if (!isObj(pool) || pool.route === undefined) return [{}];
  return Array.isArray(pool.route) ? pool.route : [pool.route];
}

/**
 * Adds `t` to the config file `baseText` (read from `path`, already loaded without errors) and loads the
 * whole. `certificates` maps each Secret (`namespace/name`) of `t.certificates` to its written files; hosts
 * whose Secret has none are left to the default certificate.
 */
export function composeConfig(baseText: string, path: string, t: Translation, certificates: ReadonlyMap<string, CertificateFiles>): Composed {
  const warnings: string[] = [];
  const raw = (parse(baseText, { merge: true }) ?? {}) as Obj;
  const upstream: Obj = isObj(raw.upstream) ? { ...raw.upstream } : {};
  const taken = new Set<string>();
  for (const pool of Object.values(upstream)) for (const r of routesOf(pool)) taken.add(routeSignature(r) ?? '');

  const empty: string[] = [];
  for (const [name, pool] of Object.entries(t.pools)) {
    if (name in upstream) {
      warnings.push(`pool ${name}: the config file has a pool of that name; the Ingress paths to it are left out`);
      continue;
    }
    const route = pool.route.filter((r) => {
      const clash = taken.has(routeSignature(r) ?? '');
      if (clash) warnings.push(`pool ${name}: the route ${JSON.stringify(r)} is the config file's already; left out`);
      return !clash;
    });
    if (route.length === 0) continue;
    if (pool.backends.length === 0) empty.push(name);
    upstream[name] = { route, backends: pool.backends.length > 0 ? pool.backends : [PLACEHOLDER] };
  }
  raw.upstream = upstream;

  const listener = Array.isArray(raw.listeners) && raw.listeners.length > 0 ? raw.listeners[0] : raw.listen;
  if (isObj(listener) && t.certificates.length > 0) {
    const tls: Obj = isObj(listener.tls) ? { ...listener.tls } : {};
    const list = Array.isArray(tls.certificates) ? [...tls.certificates] : [];
    const named = new Set(list.map((c) => (isObj(c) && typeof c.server_name === 'string' ? c.server_name.toLowerCase() : '')));
    for (const c of t.certificates) {
      const files = certificates.get(c.secret);
      if (!files) continue;
      if (named.has(c.host)) {
        warnings.push(`certificate for ${c.host} (Secret ${c.secret}): the config file names a certificate for it; left out`);
        continue;
      }
      named.add(c.host);
      list.push({ server_name: c.host, cert: files.cert, key: files.key });
    }
    tls.certificates = list;
    listener.tls = tls;
  }

  const result = loadConfigText(JSON.stringify(raw, null, 1), `${path} (with the Ingresses)`, dirname(path));
  if (result.ok) for (const pool of result.config.pools) if (empty.includes(pool.name)) pool.backends = [];
  return { result, warnings };
}
