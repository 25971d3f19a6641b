/**
 * What changed between two resolved configs, for the audit trail of reloads. Pure: two {@link Config}s in,
 * a {@link ConfigChanges} out.
 *
 * Identities:
 * - a **pool** is its name; it is modified when any of its settings, routes or backends changed;
 * - a **backend** is `pool/id`; it is modified when its address, weight or health policy changed;
 * - a **route** is its match conditions (`host=… path_prefix=… method=…`, see {@link describeRoute}); it is
 *   modified when the same conditions now lead to another pool (changing a condition removes the old route
 *   and adds a new one);
 * - a **listener** is its configured `address:port`; it is modified when its certificate files or idle
 *   timeout changed (the runtime also reports certificate files whose content changed under the same path);
 * - **settings** lists the other top-level sections that changed (`limits`, `timeouts`, `log`, ...).
 */
import type { BackendConfig, Config, HeaderMatch, ListenerConfig, PoolConfig, RouteConfig } from './types.ts';
import { isSecretName, REDACTED } from './redact.ts';

/** One modified item: its identity and the fields that changed. */
export interface Modified {
  /** Identity of the item (pool name, `pool/backend`, route description, `address:port`). */
  id: string;
  /** Names of the fields that changed; for a route, `pool: old -> new`. */
  fields: string[];
}

/** Added, removed and modified items of one kind. */
export interface ChangeSet {
  /** Identities present only in the new config. */
  added: string[];
  /** Identities present only in the old config. */
  removed: string[];
  /** Items present in both with different settings. */
  modified: Modified[];
}

/** Everything that changed between two configs. */
export interface ConfigChanges {
  /** Routes (by match conditions). */
  routes: ChangeSet;
  /** Pools (by name). */
  pools: ChangeSet;
  /** Backends (by `pool/id`). */
  backends: ChangeSet;
  /** Traffic listeners (by configured `address:port`). */
  listeners: ChangeSet;
  /** Other top-level sections that changed: `admin`, `trusted_proxies`, `limits`, `timeouts`, `log`, `reload`, `shutdown`, `tracing`. */
  settings: string[];
}

/** A change set with nothing in it. */
export function emptyChangeSet(): ChangeSet {
  return { added: [], removed: [], modified: [] };
}

/** True when nothing changed. */
export function isUnchanged(c: ConfigChanges): boolean {
  const empty = (s: ChangeSet) => s.added.length === 0 && s.removed.length === 0 && s.modified.length === 0;
  return empty(c.routes) && empty(c.pools) && empty(c.backends) && empty(c.listeners) && c.settings.length === 0;
}

/** Structural equality for config values (plain data, RegExp and URL). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof RegExp || b instanceof RegExp) return a instanceof RegExp && b instanceof RegExp && a.source === b.source && a.flags === b.flags;
  if (a instanceof URL || b instanceof URL) return a instanceof URL && b instanceof URL && a.href === b.href;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => same(v, b[i]));
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Names of the keys of two objects whose values differ, in the order of `keys`. */
function changedFields<T extends object>(a: T, b: T, keys: readonly (keyof T & string)[]): string[] {
  return keys.filter((k) => !same(a[k], b[k]));
}

function diffMaps<T>(before: Map<string, T>, after: Map<string, T>, fields: (a: T, b: T) => string[]): ChangeSet {
  const out = emptyChangeSet();
  for (const id of after.keys()) if (!before.has(id)) out.added.push(id);
  for (const [id, old] of before) {
    const now = after.get(id);
    if (now === undefined) {
      out.removed.push(id);
      continue;
    }
    const f = fields(old, now);
    if (f.length > 0) out.modified.push({ id, fields: f });
  }
  return out;
}

function describeMatch(kind: string, m: HeaderMatch): string {
  switch (m.kind) {
    case 'present':
      return `${kind}:${m.name}`;
    case 'absent':
      return `${kind}:!${m.name}`;
    // Values of credential-like names are not written into audit records (as `/config` redacts them).
    case 'equals':
      return `${kind}:${m.name}=${isSecretName(m.name) ? REDACTED : JSON.stringify(m.value)}`;
    case 'regex':
      return `${kind}:${m.name}~${isSecretName(m.name) ? REDACTED : `/${m.regex.source}/`}`;
  }
}

/**
 * A route's match conditions as one readable, canonical line, e.g.
 * `host=api.example.com path_prefix=/v1 method=GET,POST header:x-canary="1"`; `*` for a catch-all route.
 * Lists are sorted, so the order they were written in does not matter.
 */
export function describeRoute(r: RouteConfig): string {
  const parts: string[] = [];
  if (r.hosts.length) parts.push(`host=${[...r.hosts].sort().join(',')}`);
  if (r.path_exact !== undefined) parts.push(`path=${r.path_exact}`);
  else if (r.path_prefix !== undefined && r.path_prefix !== '/') parts.push(`path_prefix=${r.path_prefix}`);
  if (r.methods.length) parts.push(`method=${[...r.methods].sort().join(',')}`);
  parts.push(...r.headers.map((h) => describeMatch('header', h)).sort());
  parts.push(...r.query.map((q) => describeMatch('query', q)).sort());
  return parts.length ? parts.join(' ') : '*';
}

/** Routes of a config: match conditions -> pool name. */
function routesOf(c: Config): Map<string, string> {
  const m = new Map<string, string>();
  for (const pool of c.pools) for (const r of pool.routes) if (!m.has(describeRoute(r))) m.set(describeRoute(r), pool.name);
  return m;
}

const POOL_FIELDS = ['routes', 'load_balancing', 'host_policy', 'tls', 'backends'] as const satisfies readonly (keyof PoolConfig)[];
const BACKEND_FIELDS = ['address', 'protocol', 'weight', 'health_check'] as const satisfies readonly (keyof BackendConfig)[];
const LISTENER_FIELDS = ['certificates', 'idle_timeout_s', 'protocol'] as const satisfies readonly (keyof ListenerConfig)[];
const SETTINGS = [
  'admin',
  'http_redirect',
  'trusted_proxies',
  'limits',
  'timeouts',
  'log',
  'reload',
  'shutdown',
  'tracing',
  'alerts',
  'redis',
] as const satisfies readonly (keyof Config)[];

/** The identity of a listener: its configured `address:port` (port 0 stays 0: "any free port"). */
export function listenerId(l: Pick<ListenerConfig, 'address' | 'port'>): string {
  return l.address.includes(':') ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`;
}

/** What changed from `before` to `after`. */
export function diffConfigs(before: Config, after: Config): ConfigChanges {
  const backendsOf = (c: Config) => new Map(c.pools.flatMap((p) => p.backends.map((b): [string, BackendConfig] => [`${p.name}/${b.id}`, b])));
  const poolsOf = (c: Config) => new Map(c.pools.map((p): [string, PoolConfig] => [p.name, p]));
  const listenersOf = (c: Config) => new Map(c.listeners.map((l): [string, ListenerConfig] => [listenerId(l), l]));
  return {
    routes: diffMaps(routesOf(before), routesOf(after), (a, b) => (a === b ? [] : [`pool: ${a} -> ${b}`])),
    pools: diffMaps(poolsOf(before), poolsOf(after), (a, b) => changedFields(a, b, POOL_FIELDS)),
    backends: diffMaps(backendsOf(before), backendsOf(after), (a, b) => changedFields(a, b, BACKEND_FIELDS)),
    listeners: diffMaps(listenersOf(before), listenersOf(after), (a, b) => changedFields(a, b, LISTENER_FIELDS)),
    settings: SETTINGS.filter((k) => !same(before[k], after[k])),
  };
}
