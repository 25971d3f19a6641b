/**
 * Checks that span several fields, and the Rust-compatibility warnings. They run on the plain JS value
 * of the YAML document even when the schema found errors elsewhere, so one load reports every problem;
 * every check therefore looks at the types itself and stays silent about values the schema rejects.
 */
import { HOP_BY_HOP } from '../lib/http-syntax.ts';
import { bindAddressesOverlap, isLoopback, parseBackendAddress } from './parse.ts';
import { canonicalStrategy, HOST_POLICY_MODES, STICKY_CID_NAMES } from './schema.ts';
import type { PathSegment, SourceMap, Target } from './source.ts';
import type { ConfigIssue } from './types.ts';

/** A YAML map as read. */
export type Obj = Record<string, unknown>;

/** True for a YAML map (not a list, set or binary value). */
export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Set) && !(v instanceof Map);
}

/** Where issues go. */
interface Sink {
  error(path: readonly PathSegment[], target: Target, message: string): void;
  warn(path: readonly PathSegment[], target: Target, message: string): void;
  line(path: readonly PathSegment[], target?: Target): number;
}

const ROOT_RUST_ONLY: Readonly<Record<string, string>> = {
  performance: 'tune with `timeouts` and `limits` instead',
  resilience: 'retries, breakers and passive health are built in; see `health_check`',
  observability: 'metrics and status are served by `admin`',
  security: 'run Spooky as an unprivileged user (or bind low ports with a capability) instead of dropping privileges',
  secrets: 'put values into the file or template the file before loading',
};

const TLS_RUST_ONLY: Readonly<Record<string, string>> = {
  ca_dir: 'put the CAs into one PEM bundle and use `ca_file`',
  client_certificate_ref: 'write the PEM to a file and use `client_certificate`',
  client_key_ref: 'write the PEM to a file and use `client_key`',
};

/** Runs the cross-field checks and Rust-compat warnings over the raw document value. */
export function crossFieldChecks(raw: unknown, src: SourceMap): { errors: ConfigIssue[]; warnings: ConfigIssue[] } {
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const sink: Sink = {
    error: (p, t, m) => errors.push(src.issue('error', p, t, m)),
    warn: (p, t, m) => warnings.push(src.issue('warning', p, t, m)),
    line: (p, t = 'value') => src.pos(p, t).line,
  };
  if (!isObj(raw)) return { errors, warnings };
  for (const [key, hint] of Object.entries(ROOT_RUST_ONLY)) {
    if (key in raw) sink.warn([key], 'key', `\`${key}\` is a Rust Spooky section that this Spooky does not implement; it is ignored (${hint})`);
  }
  checkListeners(raw, sink);
  checkAdmin(raw, sink);
  checkRedirect(raw, sink);
  if (isObj(raw.upstream_tls)) checkTlsCompat(raw.upstream_tls, ['upstream_tls'], sink);
  checkLoadBalancing(raw.load_balancing, ['load_balancing'], sink);
  checkPools(raw, sink);
  if (isObj(raw.kubernetes) && (raw.workers === 'auto' || (typeof raw.workers === 'number' && raw.workers > 1)))
    sink.error(['workers'], 'value', '`kubernetes` runs in one process: `workers` must be 1 (run more replicas instead)');
  return { errors, warnings };
}

/** The traffic listeners the config describes, with their YAML paths: `listeners` when non-empty, else `listen`. */
function listenerEntries(root: Obj): Array<[unknown, PathSegment[]]> {
  if (Array.isArray(root.listeners) && root.listeners.length > 0)
    return root.listeners.map((l, i): [unknown, PathSegment[]] => [l, ['listeners', i]]);
  return root.listen === undefined ? [] : [[root.listen, ['listen']]];
}

function checkListeners(root: Obj, sink: Sink): void {
  const list = listenerEntries(root);
  if (list.length === 0) {
    sink.error([], 'missing', 'missing required key `listen` (or a non-empty `listeners` list)');
    return;
  }
  if (list[0]?.[1][0] === 'listeners' && root.listen !== undefined) sink.warn(['listen'], 'key', '`listen` is ignored because `listeners` is given');
  const bound: { address: string; port: number; path: PathSegment[] }[] = [];
  const anyPort = new Map<string, PathSegment[]>();
  for (const [l, path] of list) {
    if (!isObj(l)) continue;
    checkListenerTls(l, path, sink);
    const address = l.address ?? '0.0.0.0';
    const port = l.port ?? 9889;
    if (typeof address === 'string' && port === 0) {
      // A listener is known across reloads by its configured address and port: two on port 0 at one address
      // would be one listener to a reload (each reload would bind another port and lose track of the old one).
      const first = anyPort.get(address);
      if (first)
        sink.error(
          path,
          'value',
          `another listener (line ${sink.line(first)}) is also ${address} port 0; give one of them a fixed port or another address`,
        );
      else anyPort.set(address, path);
    }
    if (typeof address === 'string' && typeof port === 'number' && port !== 0) {
      // The same port on an overlapping address (equal, a wildcard, localhost and loopback) cannot be bound twice.
      const first = bound.find((b) => b.port === port && bindAddressesOverlap(b.address, address));
      if (first) sink.error(path, 'value', `another listener already uses ${first.address} port ${port} (line ${sink.line(first.path)})`);
      else bound.push({ address, port, path });
    }
  }
}

function checkListenerTls(l: Obj, path: PathSegment[], sink: Sink): void {
  const tls = l.tls;
  if (tls === undefined) {
    sink.error(path, 'missing', 'the listener has no certificate: set `tls.cert` and `tls.key` (HTTP/3 always uses TLS)');
    return;
  }
  if (!isObj(tls)) return;
  const tp = [...path, 'tls'];
  if (tls.cert !== undefined && tls.key === undefined) sink.error(tp, 'missing', '`tls.cert` is set but `tls.key` is missing');
  if (tls.key !== undefined && tls.cert === undefined) sink.error(tp, 'missing', '`tls.key` is set but `tls.cert` is missing');
  const certs = tls.certificates;
  if (tls.cert === undefined && tls.key === undefined && !(Array.isArray(certs) && certs.length > 0)) {
    sink.error(tp, 'missing', 'the listener has no certificate: set `cert` and `key` (or list SNI `certificates`)');
  }
  if (Array.isArray(certs)) {
    const seen = new Map<string, PathSegment[]>();
    certs.forEach((c, i) => {
      if (!isObj(c) || typeof c.server_name !== 'string') return;
      const name = c.server_name.toLowerCase();
      const p = [...tp, 'certificates', i, 'server_name'];
      const first = seen.get(name);
      if (first) sink.error(p, 'value', `duplicate SNI server name "${name}" (first at line ${sink.line(first)})`);
      else seen.set(name, p);
    });
  }
  if ('client_auth' in tls) {
    const ca = tls.client_auth;
    const p = [...tp, 'client_auth'];
    if (isObj(ca) && ca.enabled === true) {
      sink.error(
        p,
        'key',
        'client certificate authentication (`client_auth`, a Rust Spooky feature) is not implemented; ignoring it would accept any client, so remove it or set `enabled: false`',
      );
    } else {
      sink.warn(p, 'key', '`client_auth` is a Rust Spooky setting that this Spooky does not implement; it is ignored');
    }
  }
}

function checkAdmin(root: Obj, sink: Sink): void {
  const admin = root.admin ?? {};
  if (!isObj(admin) || admin.enabled === false) return;
  const address = admin.address;
  if (typeof address === 'string' && !isLoopback(address) && admin.token === undefined) {
    sink.warn(['admin', 'address'], 'value', `the admin listener is reachable beyond loopback (${address}) without a \`token\``);
  }
  // The admin listener must not share a port with a traffic listener: TCP connections would be split
  // between the two servers at random.
  const adminAddress = typeof address === 'string' ? address : '127.0.0.1';
  const adminPort = admin.port ?? 9901;
  if (typeof adminPort !== 'number' || adminPort === 0) return;
  for (const path of listenersOn(root, adminAddress, adminPort)) {
    const at: PathSegment[] = admin.port !== undefined ? ['admin', 'port'] : root.admin !== undefined ? ['admin'] : path;
    // A warning, not an error: `run --port/--admin-port` may move one of them; if not, binding refuses it (exit 3).
    sink.warn(
      at,
      'value',
      `the admin listener cannot use port ${adminPort}: the traffic listener at line ${sink.line(path)} uses it (Spooky will not start unless --port or --admin-port moves one)`,
    );
  }
}

/** The paths of the traffic listeners the file puts on `port` at an address overlapping `address`. */
function listenersOn(root: Obj, address: string, port: number): PathSegment[][] {
  const paths: PathSegment[][] = [];
  for (const [l, path] of listenerEntries(root)) {
    if (!isObj(l)) continue;
    const lAddress = typeof l.address === 'string' ? l.address : '0.0.0.0';
    if ((l.port ?? 9889) === port && bindAddressesOverlap(lAddress, address)) paths.push(path);
  }
  return paths;
}

function checkRedirect(root: Obj, sink: Sink): void {
  const r = root.http_redirect;
  if (!isObj(r) || typeof r.port !== 'number') return;
  const at: PathSegment[] = ['http_redirect', 'port'];
  if (r.port === 0) {
    if (typeof root.workers === 'number' && root.workers > 1)
      sink.error(at, 'value', 'port `0` (a free port) cannot be shared by several workers; give the redirect a fixed port');
    return;
  }
  const first = listenerEntries(root)[0]?.[0];
  const firstAddress = isObj(first) && typeof first.address === 'string' ? first.address : '0.0.0.0';
  const address = typeof r.address === 'string' ? r.address : firstAddress;
  // Every server binds with SO_REUSEPORT: two on one port would split its connections between them at random.
  for (const path of listenersOn(root, address, r.port))
    sink.error(at, 'value', `port ${r.port} is the traffic listener's at line ${sink.line(path)}; the redirect needs a port of its own`);
  const admin = isObj(root.admin) ? root.admin : {};
  const adminAddress = typeof admin.address === 'string' ? admin.address : '127.0.0.1';
  if (admin.enabled !== false && (admin.port ?? 9901) === r.port && bindAddressesOverlap(adminAddress, address))
    sink.error(at, 'value', `port ${r.port} is the admin listener's; the redirect needs a port of its own`);
}

function checkTlsCompat(tls: Obj, path: PathSegment[], sink: Sink): void {
  for (const [key, hint] of Object.entries(TLS_RUST_ONLY)) {
    if (key in tls)
      sink.warn([...path, key], 'key', `\`${key}\` is a Rust Spooky setting that this Spooky does not implement; it is ignored (${hint})`);
  }
  // A client certificate is useless without its key and the other way round (null counts as not written).
  const cert = tls.client_certificate !== undefined && tls.client_certificate !== null;
  const key = tls.client_key !== undefined && tls.client_key !== null;
  if (cert && !key)
    sink.error([...path, 'client_certificate'], 'key', '`client_certificate` needs `client_key` (its private key) in the same section');
  if (key && !cert) sink.error([...path, 'client_key'], 'key', '`client_key` needs `client_certificate` in the same section');
}

function checkLoadBalancing(lb: unknown, path: PathSegment[], sink: Sink): void {
  if (!isObj(lb)) return;
  if (lb.hash_on !== undefined) {
    if (lb.key !== undefined) sink.error([...path, 'hash_on'], 'key', '`hash_on` and `key` are both set; keep `key` only');
    else sink.warn([...path, 'hash_on'], 'key', '`hash_on` is read as `key` (the name this Spooky and the Rust Spooky use); rename it');
  }
  const type = lb.type === undefined ? 'round-robin' : lb.type;
  if (typeof type !== 'string') return;
  if (STICKY_CID_NAMES.has(type)) {
    const ignored = lb.key !== undefined || lb.hash_on !== undefined ? '; `key` is ignored' : '';
    sink.warn(
      [...path, 'type'],
      'value',
      `\`${type}\` (the Rust Spooky's affinity by QUIC connection id) cannot be honoured here; using consistent-hash keyed by client_ip instead${ignored}`,
    );
  }
  const canonical = STICKY_CID_NAMES.has(type) ? 'consistent-hash' : canonicalStrategy(type);
  if ((canonical === 'ip-hash' || canonical === 'consistent-hash') && lb.slow_start !== undefined)
    sink.warn([...path, 'slow_start'], 'key', `\`slow_start\` is not applied by \`${canonical}\` (it would move sticky keys); it is ignored`);
  if (canonical === undefined || canonical === 'consistent-hash') return;
  for (const k of ['key', 'hash_on', 'virtual_nodes']) {
    if (lb[k] !== undefined) sink.warn([...path, k], 'key', `\`${k}\` is only used by consistent-hash; it is ignored for \`${canonical}\``);
  }
}

/** A canonical text of a route's conditions, or undefined when its shape is invalid (the schema reports it). */
export function routeSignature(r: unknown): string | undefined {
  if (!isObj(r)) return undefined;
  const list = (v: unknown, f: (s: string) => string): string[] | undefined | null => {
    if (v === undefined) return [];
    const items = Array.isArray(v) ? v : [v];
    if (!items.every((x) => typeof x === 'string')) return null;
    return [...new Set(items.map((x) => f(x as string)))].sort();
  };
  const hosts = list(r.host, (s) => s.toLowerCase());
  const methods = list(r.method, (s) => s.toUpperCase());
  if (!hosts || !methods) return undefined;
  const exact = r.path ?? r.path_exact;
  let prefix = r.path_prefix;
  if (prefix === '/') prefix = undefined; // "/" matches every path, like no prefix at all
  const conds = (v: unknown, lower: boolean): Array<[string, string]> | undefined => {
    if (v === undefined) return [];
    if (!isObj(v)) return undefined;
    const out: Array<[string, string]> = [];
    for (const [name, c] of Object.entries(v)) {
      let sig: string;
      if (typeof c === 'string' || typeof c === 'number' || typeof c === 'boolean') sig = `=${String(c)}`;
      else if (isObj(c) && c.present === true) sig = '?';
      else if (isObj(c) && c.present === false) sig = '!';
      else if (isObj(c) && typeof c.regex === 'string') sig = `~${c.regex}`;
      else if (isObj(c) && typeof c.equals === 'string') sig = `=${c.equals}`;
      else return undefined;
      out.push([lower ? name.toLowerCase() : name, sig]);
    }
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  };
  const headers = conds(r.headers, true);
  const query = conds(r.query, false);
  if (!headers || !query) return undefined;
  return JSON.stringify({ hosts, prefix, exact, methods, headers, query });
}

/** A rule kept in Redis needs the top-level `redis` that says which server. */
function checkRateLimitStores(r: Obj, path: PathSegment[], root: Obj, sink: Sink): void {
  if (!Array.isArray(r.rate_limits) || root.redis !== undefined) return;
  r.rate_limits.forEach((rule, i) => {
    if (isObj(rule) && rule.store === 'redis')
      sink.error(
        [...path, 'rate_limits', i, 'store'],
        'value',
        '`store: redis` needs the top-level `redis` section (the server whose buckets every instance shares)',
      );
  });
}

function checkRoute(r: Obj, path: PathSegment[], sink: Sink): void {
  if (r.path !== undefined && r.path_exact !== undefined) {
    sink.error([...path, 'path_exact'], 'key', '`path` and `path_exact` are the same setting; use only one');
  }
  if ((r.path !== undefined || r.path_exact !== undefined) && r.path_prefix !== undefined) {
    sink.error([...path, 'path_prefix'], 'key', '`path_prefix` cannot be combined with an exact `path`; use one of them');
  }
  for (const dir of ['request_headers', 'response_headers'] as const) {
    const rules = r[dir];
    if (!isObj(rules)) continue;
    // Framing and connection management stay Spooky's; Host follows the pool's host_policy.
    const owned = (name: string): string | undefined => {
      const n = name.toLowerCase();
      if (HOP_BY_HOP.has(n)) return `\`${n}\` is a hop-by-hop field, managed per connection by Spooky`;
      if (n === 'content-length') return '`content-length` is set by Spooky from the body it sends';
      if (dir === 'request_headers' && n === 'host') return "`host` is set by the pool's `host_policy`";
      if (dir === 'request_headers' && (n === 'traceparent' || n === 'tracestate'))
        return `\`${n}\` is the trace context Spooky passes on (see \`tracing\`)`;
      return undefined;
    };
    for (const kind of ['set', 'add'] as const) {
      const fields = rules[kind];
      if (!isObj(fields)) continue;
      for (const name of Object.keys(fields)) {
        const why = owned(name);
        if (why) sink.error([...path, dir, kind, name], 'key', `${why}; a route cannot change it`);
      }
    }
    const removed = rules.remove;
    if (Array.isArray(removed))
      removed.forEach((name, i) => {
        const why = typeof name === 'string' ? owned(name) : undefined;
        if (why) sink.error([...path, dir, 'remove', i], 'value', `${why}; a route cannot change it`);
      });
  }
  const rw = r.rewrite;
  if (isObj(rw)) {
    if (rw.prefix !== undefined && rw.path !== undefined) sink.error([...path, 'rewrite', 'path'], 'key', 'use only one of `prefix` and `path`');
    else if (rw.prefix === undefined && rw.path === undefined) sink.error([...path, 'rewrite'], 'missing', 'a rewrite needs `prefix` or `path`');
    else if (typeof rw.prefix === 'string' && typeof r.path_prefix === 'string' && !r.path_prefix.endsWith('/') && rw.prefix.endsWith('/'))
      // `/api` + `/v1/`: `/api/x` -> `/v1/x`, but `/apix` -> `/v1/x` too (a string prefix), and `/api../x` is refused.
      sink.warn(
        [...path, 'path_prefix'],
        'value',
        `\`path_prefix: ${r.path_prefix}\` is a string prefix, so \`${r.path_prefix}x\` is rewritten to \`${rw.prefix}x\` as well; write \`${r.path_prefix}/\` to rewrite below \`${r.path_prefix}/\` only`,
      );
    else if (rw.prefix !== undefined && typeof r.path_prefix !== 'string')
      sink.error(
        [...path, 'rewrite', 'prefix'],
        'key',
        "`rewrite.prefix` replaces what the route's `path_prefix` matched, and this route has no `path_prefix`; use `rewrite.path` to replace the whole path",
      );
  }
  for (const kind of ['headers', 'query'] as const) {
    const conds = r[kind];
    if (!isObj(conds)) continue;
    for (const [name, c] of Object.entries(conds)) {
      if (!isObj(c)) continue;
      const set = ['present', 'regex', 'equals'].filter((k) => c[k] !== undefined);
      const unknown = Object.keys(c).some((k) => !['present', 'regex', 'equals'].includes(k));
      if (set.length === 0 && !unknown) {
        sink.error([...path, kind, name], 'missing', 'a condition needs one of `present`, `regex` or `equals`');
      } else if (set.length > 1) {
        sink.error(
          [...path, kind, name],
          'value',
          `use only one of \`present\`, \`regex\`, \`equals\` (found ${set.map((s) => `\`${s}\``).join(', ')})`,
        );
      }
    }
  }
}

/**
 * Whether a raw pool makes TLS connections: a backend or health-probe address that is https:// (or a bare
 * `host:port`, https in the Rust Spooky's meaning). An address that does not parse counts as TLS, so this stays
 * silent where the schema reports an error.
 */
function poolUsesTls(pool: Obj): boolean {
  const addresses: unknown[] = [];
  const probes = (hc: unknown) => {
    if (!isObj(hc)) return;
    addresses.push(hc.address);
    if (Array.isArray(hc.probes)) for (const p of hc.probes) if (isObj(p)) addresses.push(p.address);
  };
  probes(pool.health_check);
  if (Array.isArray(pool.backends))
    for (const b of pool.backends) {
      if (!isObj(b)) continue;
      addresses.push(b.address);
      probes(b.health_check);
    }
  return addresses.some((a) => {
    if (typeof a !== 'string') return false;
    const parsed = parseBackendAddress(a);
    return !parsed.ok || parsed.value.protocol === 'h2';
  });
}

function checkPools(root: Obj, sink: Sink): void {
  const upstream = root.upstream;
  // With `kubernetes`, Ingresses bring the pools: the file may have none.
  if (upstream === undefined && root.kubernetes === undefined) sink.error([], 'missing', 'missing required key `upstream`');
  if (!isObj(upstream)) return;
  if (Object.keys(upstream).length === 0 && root.kubernetes === undefined) {
    sink.error(['upstream'], 'value', '`upstream` needs at least one pool');
    return;
  }
  const signatures: Array<{ pool: string; sig: string; path: PathSegment[]; target: Target }> = [];
  for (const [name, pool] of Object.entries(upstream)) {
    if (!isObj(pool)) continue;
    const pp: PathSegment[] = ['upstream', name];
    if ('forwarded_headers' in pool) {
      sink.warn([...pp, 'forwarded_headers'], 'key', '`forwarded_headers` is ignored: Spooky trusts forwarding headers only from trusted_proxies');
    }
    if (isObj(pool.tls)) {
      checkTlsCompat(pool.tls, [...pp, 'tls'], sink);
      if (typeof pool.tls.client_certificate === 'string' && !poolUsesTls(pool))
        sink.warn(
          [...pp, 'tls', 'client_certificate'],
          'key',
          '`client_certificate` is not used: no backend or health probe of this pool is https:// (a client certificate is presented on TLS connections only)',
        );
    }
    checkLoadBalancing(pool.load_balancing, [...pp, 'load_balancing'], sink);
    checkHostPolicy(pool.host_policy, [...pp, 'host_policy'], sink);

    // Routes: shape checks, then signatures for the identical-route check across pools.
    const routes: Array<[unknown, PathSegment[], Target]> = [];
    if (pool.route === undefined) routes.push([{}, [...pp], 'key']);
    else if (Array.isArray(pool.route)) {
      pool.route.forEach((r, i) => {
        routes.push([r, [...pp, 'route', i], 'value']);
      });
    } else routes.push([pool.route, [...pp, 'route'], 'value']);
    const own = new Set<string>();
    for (const [r, path, target] of routes) {
      if (!isObj(r)) continue;
      checkRoute(r, path, sink);
      checkRateLimitStores(r, path, root, sink);
      const sig = routeSignature(r);
      if (sig === undefined || own.has(sig)) continue;
      own.add(sig);
      const clash = signatures.find((s) => s.sig === sig && s.pool !== name);
      if (clash) {
        const what = pool.route === undefined ? 'has no route (catch-all), like' : 'has the same route as';
        const theirs = clash.target === 'key' && pool.route !== undefined ? ', which has no route' : '';
        sink.error(
          path,
          target,
          `pool \`${name}\` ${what} pool \`${clash.pool}\` (line ${sink.line(clash.path, clash.target)}${theirs}); the router could never choose between them, so make the routes differ`,
        );
      } else {
        signatures.push({ pool: name, sig, path, target });
      }
    }

    checkRouteTags(pool, routes, pp, sink);

    if (Array.isArray(pool.backends)) {
      const ids = new Map<string, PathSegment[]>();
      const addresses = new Map<string, PathSegment[]>();
      pool.backends.forEach((b, i) => {
        if (!isObj(b)) return;
        if (typeof b.id === 'string') {
          const p = [...pp, 'backends', i, 'id'];
          const first = ids.get(b.id);
          if (first) sink.error(p, 'value', `duplicate backend id "${b.id}" in pool \`${name}\` (first at line ${sink.line(first)})`);
          else ids.set(b.id, p);
        }
        if (typeof b.address === 'string') {
          const p = [...pp, 'backends', i, 'address'];
          const key = originKey(b.address);
          const first = addresses.get(key);
          if (first)
            sink.error(
              p,
              'value',
              `duplicate backend address "${b.address}" in pool \`${name}\` (first at line ${sink.line(first)}): both would share one connection pool, health state and limits; use \`weight\` instead`,
            );
          else addresses.set(key, p);
        }
      });
    }
  }
}

/**
 * What makes two backend addresses one backend: protocol, host and effective port (`http://h` is `http://h:80`,
 * a bare `h:443` is `https://h`, a trailing `/` changes nothing), as the connection pools are keyed. An address
 * that does not parse (reported by the schema) is compared as written.
 */
function originKey(address: string): string {
  const parsed = parseBackendAddress(address.trim());
  return parsed.ok ? `${parsed.value.protocol}|${parsed.value.url.host}` : address.trim().toLowerCase();
}

/** Warns about custom metric labels from a route tag that no route of the pool sets (the value would always be empty). */
function checkRouteTags(pool: Obj, routes: Array<[unknown, PathSegment[], Target]>, pp: PathSegment[], sink: Sink): void {
  if (!isObj(pool.metrics) || !Array.isArray(pool.metrics.labels)) return;
  const tags = new Set<string>();
  for (const [r] of routes) if (isObj(r) && isObj(r.tags)) for (const k of Object.keys(r.tags)) tags.add(k);
  pool.metrics.labels.forEach((l, i) => {
    if (!isObj(l) || typeof l.from !== 'string' || !l.from.startsWith('route_tag:')) return;
    const key = l.from.slice('route_tag:'.length);
    if (key && !tags.has(key)) {
      sink.warn(
        [...pp, 'metrics', 'labels', i, 'from'],
        'value',
        `no route of pool \`${String(pp[1])}\` has the tag \`${key}\`; this label will always be empty`,
      );
    }
  });
}

function checkHostPolicy(hp: unknown, path: PathSegment[], sink: Sink): void {
  if (!isObj(hp)) return;
  const mode =
    hp.mode === undefined
      ? 'pass-through'
      : typeof hp.mode === 'string' && Object.hasOwn(HOST_POLICY_MODES, hp.mode)
        ? HOST_POLICY_MODES[hp.mode]
        : undefined;
  if (mode === 'rewrite' && hp.host === undefined) sink.error(path, 'missing', '`mode: rewrite` needs `host` (the Host header to send)');
  if (mode !== undefined && mode !== 'rewrite' && hp.host !== undefined) {
    sink.error([...path, 'host'], 'key', `\`host\` is only used with \`mode: rewrite\` (mode here is \`${mode}\`)`);
  }
}
