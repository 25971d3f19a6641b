/**
 * A generation: everything a request needs, built once from a validated config and then never changed.
 * A request reads the current generation once, so a reload never changes it mid-flight.
 */
import { strategyByName } from '../balancer/index.ts';
import type { Picker } from '../balancer/types.ts';
import type { Config, HashKeySource, PoolConfig, RouteConfig } from '../config/types.ts';
import { compileTrust } from '../lib/cidr.ts';
import type { Random } from '../lib/random.ts';
import type { HeaderLookup } from '../lib/request-fields.ts';
import { BasicAuth } from '../proxy/basic-auth.ts';
import { clientAccess } from '../proxy/client-access.ts';
import { pathRewriter } from '../proxy/rewrite.ts';
import { compileRouter, normaliseConfigPath, type Router } from '../router/router.ts';
import { PoolMember } from '../upstream/endpoint.ts';
import type { EndpointRegistry } from '../upstream/registry.ts';
import { SlowStartMember } from '../upstream/slow-start-member.ts';

/** What a hash key is computed from. */
export interface HashKeyInput {
  /** Real client address (after trusted-proxy resolution). */
  clientIp: string;
  /** Request headers. */
  headers: HeaderLookup;
  /** Normalised path. */
  path: string;
  /** Raw query string including `?`, or empty. */
  rawQuery: string;
  /** Authority (host[:port]) as sent. */
  authority: string;
  /** Method. */
  method: string;
}

/** A pool, ready to serve. */
export interface PoolRuntime {
  /** Pool name. */
  readonly name: string;
  /** Its config. */
  readonly config: PoolConfig;
  /** Members in config order. */
  readonly members: readonly PoolMember[];
  /** The balancer. */
  readonly picker: Picker<PoolMember>;
  /** True when some backend has `max_concurrent_requests` (the handler then admits through its gate). */
  readonly limited?: boolean;
  /** Hash key for ip-hash / consistent-hash; undefined for other strategies or when the key is missing. */
  hashKey(input: HashKeyInput): string | undefined;
}

/** What the router returns: the pool, and which of its routes matched (`pool#index`, for logs). */
export interface RouteTarget {
  /** The pool to forward to. */
  readonly pool: PoolRuntime;
  /** `poolname#n`: the n-th route (0-based) of the pool. */
  readonly routeId: string;
  /** The route that matched (its limits). */
  readonly route: RouteConfig;
  /** Rewrites the routed path for the backend (`route.rewrite`; undefined: refused, see `pathRewriter`); absent when the route has none. */
  readonly rewrite?: (path: string) => string | undefined;
  /** True when a client address may use the route (`route.client_ips`); absent when the route admits everyone. */
  readonly clientAllowed?: (ip: string) => boolean;
  /** The route's Basic authentication (`route.basic_auth`, with its remembered outcomes); absent: none. */
  readonly basicAuth?: BasicAuth;
}

/** One immutable configuration generation. */
export interface Generation {
  /** Increasing number, 1 for the first config. */
  readonly id: number;
  /** Wall-clock time it was built (ms since epoch). */
  readonly loadedAt: number;
  /** The config it was built from. */
  readonly config: Config;
  /** Request router to pools. */
  readonly router: Router<RouteTarget>;
  /** Pools by name. */
  readonly pools: ReadonlyMap<string, PoolRuntime>;
  /** Whether a peer address is a trusted proxy. */
  readonly trusted: (ip: string) => boolean;
}

function cookieValue(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Builds the function that extracts a hash key from a request. */
export function hashKeyExtractor(strategy: string, key: HashKeySource): (input: HashKeyInput) => string | undefined {
  if (strategy === 'ip-hash') return (i) => i.clientIp;
  if (strategy !== 'consistent-hash') return () => undefined;
  switch (key.kind) {
    case 'client_ip':
      return (i) => i.clientIp;
    case 'header':
      return (i) => i.headers.get(key.name) ?? undefined;
    case 'cookie':
      return (i) => cookieValue(i.headers.get('cookie'), key.name);
    case 'query':
      return (i) => (i.rawQuery ? (new URLSearchParams(i.rawQuery).get(key.name) ?? undefined) : undefined);
    case 'path':
      return (i) => i.path;
    case 'authority':
      return (i) => i.authority;
    case 'method':
      return (i) => i.method;
  }
}

/** Builds a generation from a validated config, syncing the endpoint registry to it. */
export function buildGeneration(config: Config, registry: EndpointRegistry, id: number, random: Random): Generation {
  const endpoints = registry.sync(config);
  const pools = new Map<string, PoolRuntime>();
  const routes: { route: PoolConfig['routes'][number]; target: RouteTarget; order: number }[] = [];
  let order = 0;
  for (const pool of config.pools) {
    const eps = endpoints.get(pool.name) as Map<string, import('../upstream/endpoint.ts').Endpoint>;
    const lb = pool.load_balancing;
    const ramp = lb.slow_start;
    const members = pool.backends.map((b) => {
      const ep = eps.get(b.id) as import('../upstream/endpoint.ts').Endpoint;
      return ramp ? new SlowStartMember(b.id, b.weight, ep, ramp) : new PoolMember(b.id, b.weight, ep);
    });
    const picker = strategyByName(lb.type).build(members, { random, virtualNodes: lb.virtual_nodes });
    const limited = pool.backends.some((b) => (b.limits?.max_concurrent_requests ?? 0) > 0);
    const runtime: PoolRuntime = { name: pool.name, config: pool, members, picker, limited, hashKey: hashKeyExtractor(lb.type, lb.key) };
    pools.set(pool.name, runtime);
    pool.routes.forEach((route, i) => {
      const rewrite = pathRewriter(route.rewrite, route.path_prefix === undefined ? undefined : normaliseConfigPath(route.path_prefix, true));
      const clientAllowed = clientAccess(route.client_ips);
      const target: RouteTarget = {
        pool: runtime,
        routeId: `${pool.name}#${i}`,
        route,
        ...(rewrite ? { rewrite } : {}),
        ...(clientAllowed ? { clientAllowed } : {}),
        ...(route.basic_auth ? { basicAuth: new BasicAuth(route.basic_auth) } : {}),
      };
      routes.push({ route, target, order: order++ });
    });
  }
  return {
    id,
    loadedAt: Date.now(),
    config,
    router: compileRouter(routes),
    pools,
    trusted: compileTrust(config.trusted_proxies),
  };
}
