/**
 * The request router: host / path / method / header / query conditions → a target (a pool), compiled once per
 * config generation.
 *
 * Precedence — when several routes match, the first by these rules wins (deterministic, independent of how the
 * routes are bucketed):
 * 1. **Path kind**: an exact path (`path_exact`) beats any prefix.
 * 2. **Prefix length**: a longer `path_prefix` beats a shorter one. A route without a path condition counts as a
 *    prefix of length 0, so it ranks below `path_prefix: /`.
 * 3. **Host specificity**: an exact host beats a wildcard, a wildcard with a longer suffix beats a shorter one
 *    (`*.api.example.com` over `*.example.com`), and any wildcard beats a route without hosts (any host).
 *    A route listing several host patterns competes with the most specific of them that matches.
 * 4. **Condition count**: more conditions win. A non-empty method list counts as one condition; each header
 *    and each query condition counts as one.
 * 5. **Config order**: the lower `order` wins (then the position in the list given to {@link compileRouter}).
 *
 * Matching semantics:
 * - Hosts are compared case-insensitively (patterns are lower-cased at compile time; the input host must be
 *   lower case already, without port — see `parseRequestTarget`). A trailing dot on a pattern is ignored.
 *   `*.example.com` matches `a.example.com` and `a.b.example.com`, never the apex `example.com`. A pattern of
 *   `*` alone means any host.
 * - Paths are compared against the normalised path. `path_prefix` is a plain string prefix, as in the Rust
 *   Spooky: `/api` matches `/api`, `/api/x` *and* `/apix` (write `/api/` to require the segment boundary).
 *   Configured paths are canonicalised like request paths' percent-encoding (`%7e` → `~`, `%2f` → `%2F`), so
 *   they compare equal to what a client's request normalises to.
 * - Methods are compared exactly (upper case); `HEAD` is not implied by `GET`.
 * - Header conditions (name case-insensitive): `present`, `absent`, `equals` (exact, case-sensitive value; a
 *   repeated header is seen as its values joined with `, `, as `Headers.get` gives them) and `regex` (tested
 *   against that value; `g`/`y` flags are dropped so matching is stateless). Values are read as UTF-8 text
 *   first ({@link fieldText}), so a non-ASCII value in the config matches what a client sends.
 * - Query conditions (name case-sensitive) use the same kinds on `URLSearchParams.get` (the first value);
 *   `?a` has `a` present with value `''`. The query is only read when a candidate with query conditions is
 *   reached.
 *
 * Speed: routes are bucketed by exact host (a `Map`), then by wildcard suffix (found by walking the input
 * host's dots, longest suffix first), then any-host. Each bucket holds every route that can match such a host,
 * pre-sorted by precedence, so `match` is one or a few map lookups plus a scan that stops at the first full match.
 */

import type { HeaderMatch, RouteConfig } from '../config/types.ts';
import { fieldText } from '../lib/field-text.ts';
import { normalisePath, parseAuthority } from '../proxy/request-target.ts';

/** What the router looks at in a request. */
export interface RouteInput {
  /** Host, lower case, port stripped (IPv6 in brackets). */
  readonly host: string;
  /** Normalised path (see `parseRequestTarget`). */
  readonly path: string;
  /** Request method (upper case as sent). */
  readonly method: string;
  /** A request header by lower-case name (repeated fields joined), or null when absent. */
  header(name: string): string | null;
  /** Parsed query, or null when the request has none. May be a lazy getter: it is read only when needed. */
  readonly query: URLSearchParams | null;
}

/** One route as handed to {@link compileRouter}. */
export interface RouteEntry<T> {
  /** The route's conditions. */
  readonly route: RouteConfig;
  /** What `match` returns when this route wins. */
  readonly target: T;
  /** Config order (lower wins the last tie). */
  readonly order: number;
}

/** A compiled, immutable router. */
export interface Router<T> {
  /** The target of the highest-precedence route that matches, or undefined when none does. */
  match(input: RouteInput): T | undefined;
}

type Cond =
  | { readonly name: string; readonly kind: 0 } // present
  | { readonly name: string; readonly kind: 1 } // absent
  | { readonly name: string; readonly kind: 2; readonly value: string } // equals
  | { readonly name: string; readonly kind: 3; readonly regex: RegExp }; // regex

/** A route placed in a bucket, with the sort keys of its precedence there. */
interface Candidate<T> {
  readonly target: T;
  readonly exact: string | undefined;
  readonly prefix: string | undefined;
  readonly methods: readonly string[] | undefined;
  readonly headers: readonly Cond[] | undefined;
  readonly query: readonly Cond[] | undefined;
  readonly pathRank: number;
  readonly hostRank: number;
  readonly conds: number;
  readonly order: number;
  readonly seq: number;
}

const EXACT_RANK = 0x7fffffff;

/** Compiles a header or query condition. */
function compileCond(m: HeaderMatch, lowerName: boolean): Cond {
  const name = lowerName ? m.name.toLowerCase() : m.name;
  switch (m.kind) {
    case 'present':
      return { name, kind: 0 };
    case 'absent':
      return { name, kind: 1 };
    case 'equals':
      return { name, kind: 2, value: m.value };
    case 'regex': {
      const r = m.regex;
      const regex = r.global || r.sticky ? new RegExp(r.source, r.flags.replace(/[gy]/g, '')) : r;
      return { name, kind: 3, regex };
    }
  }
}

function condHolds(c: Cond, v: string | null): boolean {
  switch (c.kind) {
    case 0:
      return v !== null;
    case 1:
      return v === null;
    case 2:
      return v === c.value;
    case 3:
      return v !== null && c.regex.test(v);
  }
}

/**
 * A configured path in the form request paths are matched in: the request normaliser itself (percent-encoding
 * canonical, raw non-ASCII and `"<>\^`{|}` encoded, `//` merged, dot segments resolved), so a route written
 * `/café/` or `/a//b/` matches the requests it names. Validation refused what the normaliser refuses.
 */
export function normaliseConfigPath(p: string, prefix = false): string {
  // A prefix may end in `.` on purpose (`/app/.` for dotfiles): as a string prefix that is no dot segment, so
  // only the part before it is normalised. (`..` at the end still goes up a segment.)
  const dots = prefix && p.endsWith('/.') ? '.' : undefined;
  const n = normalisePath(dots === undefined ? p : p.slice(0, -dots.length));
  return typeof n === 'string' ? (dots === undefined ? n : `${n}${dots}`) : p;
}

type HostPattern = { kind: 'exact'; host: string } | { kind: 'wild'; suffix: string } | { kind: 'any' };

function parseHostPattern(p: string): HostPattern {
  let h = p.trim().toLowerCase();
  if (h === '*.') throw new Error(`invalid host pattern "${p}"`);
  if (h.length > 1 && h.endsWith('.')) h = h.slice(0, -1);
  if (h === '*') return { kind: 'any' };
  if (h.startsWith('*.')) {
    const suffix = h.slice(1);
    if (suffix.length < 2 || suffix.includes('*')) throw new Error(`invalid host pattern "${p}"`);
    return { kind: 'wild', suffix };
  }
  if (h.length === 0 || h.includes('*')) throw new Error(`invalid host pattern "${p}": only a leading "*." wildcard is supported`);
  // An IPv6 literal in the canonical text requests are routed on (`[0:0::1]` is `[::1]`).
  if (h.startsWith('[')) h = parseAuthority(h)?.host ?? h;
  return { kind: 'exact', host: h };
}

/** Sort order: highest precedence first. */
function byPrecedence<T>(a: Candidate<T>, b: Candidate<T>): number {
  return b.pathRank - a.pathRank || b.hostRank - a.hostRank || b.conds - a.conds || a.order - b.order || a.seq - b.seq;
}

/**
 * Compiles routes into a {@link Router}. Call once per config generation; the result is immutable.
 * @throws Error on an invalid host pattern (anything but `name`, `*.suffix` or `*`); config validation is
 *   expected to have refused it already.
 */
export function compileRouter<T>(routes: readonly RouteEntry<T>[]): Router<T> {
  // Per route: its host-independent parts, and its host patterns.
  interface Base {
    patterns: HostPattern[];
    parts: Omit<Candidate<T>, 'hostRank'>;
  }
  const bases: Base[] = routes.map((entry, seq) => {
    const r = entry.route;
    const exact = r.path_exact !== undefined ? normaliseConfigPath(r.path_exact) : undefined;
    const prefix = r.path_prefix !== undefined && r.path_prefix.length > 0 ? normaliseConfigPath(r.path_prefix, true) : undefined;
    const methods = r.methods.length > 0 ? [...r.methods] : undefined;
    const headers = r.headers.length > 0 ? r.headers.map((m) => compileCond(m, true)) : undefined;
    const query = r.query.length > 0 ? r.query.map((m) => compileCond(m, false)) : undefined;
    const pathRank = exact !== undefined ? EXACT_RANK : prefix !== undefined ? prefix.length + 1 : 0;
    const conds = (methods ? 1 : 0) + (headers?.length ?? 0) + (query?.length ?? 0);
    const patterns = r.hosts.length === 0 ? [{ kind: 'any' } as HostPattern] : r.hosts.map(parseHostPattern);
    return { patterns, parts: { target: entry.target, exact, prefix, methods, headers, query, pathRank, conds, order: entry.order, seq } };
  });

  /** A bucket: every route that can match its hosts (`rankOf` gives a pattern's host rank there, or -1), sorted. */
  const bucket = (rankOf: (p: HostPattern) => number): Candidate<T>[] => {
    const list: Candidate<T>[] = [];
    for (const b of bases) {
      let best = -1;
      for (const p of b.patterns) best = Math.max(best, rankOf(p));
      if (best >= 0) list.push({ ...b.parts, hostRank: best });
    }
    return list.sort(byPrecedence);
  };
  const anyRank = (p: HostPattern): number => (p.kind === 'any' ? 0 : -1);

  const exactHosts = new Set<string>();
  const suffixes = new Set<string>();
  for (const b of bases) {
    for (const p of b.patterns) {
      if (p.kind === 'exact') exactHosts.add(p.host);
      else if (p.kind === 'wild') suffixes.add(p.suffix);
    }
  }

  // Exact host H: its exact routes, every wildcard matching H, and any-host routes.
  const byHost = new Map<string, Candidate<T>[]>();
  for (const h of exactHosts) {
    byHost.set(
      h,
      bucket((p) => {
        if (p.kind === 'exact') return p.host === h ? EXACT_RANK : -1;
        if (p.kind === 'wild') return h.length > p.suffix.length && h.endsWith(p.suffix) ? p.suffix.length : -1;
        return 0;
      }),
    );
  }
  // Wildcard suffix S (the longest one matching a host): every wildcard whose suffix ends S, and any-host.
  const bySuffix = new Map<string, Candidate<T>[]>();
  for (const s of suffixes) {
    bySuffix.set(
      s,
      bucket((p) => {
        if (p.kind === 'wild') return s.endsWith(p.suffix) ? p.suffix.length : -1;
        return anyRank(p);
      }),
    );
  }
  const anyHost = bucket(anyRank);
  const hasWild = bySuffix.size > 0;

  const lookup = (host: string): readonly Candidate<T>[] => {
    const exact = byHost.get(host);
    if (exact !== undefined) return exact;
    if (hasWild) {
      for (let d = host.indexOf('.', 1); d > 0; d = host.indexOf('.', d + 1)) {
        const l = bySuffix.get(host.slice(d));
        if (l !== undefined) return l;
      }
    }
    return anyHost;
  };

  return {
    match(input: RouteInput): T | undefined {
      const list = lookup(input.host);
      const path = input.path;
      next: for (let i = 0; i < list.length; i++) {
        const c = list[i] as Candidate<T>;
        if (c.exact !== undefined && path !== c.exact) continue;
        if (c.prefix !== undefined && !path.startsWith(c.prefix)) continue;
        if (c.methods !== undefined && !c.methods.includes(input.method)) continue;
        if (c.headers !== undefined) {
          for (const h of c.headers) {
            const v = input.header(h.name);
            if (!condHolds(h, h.kind >= 2 ? fieldText(v) : v)) continue next;
          }
        }
        if (c.query !== undefined) {
          const q = input.query;
          for (const h of c.query) if (!condHolds(h, q === null ? null : q.get(h.name))) continue next;
        }
        return c.target;
      }
      return undefined;
    },
  };
}

/**
 * A {@link RouteInput} over a `Headers` and a raw query (`?a=1` or ''), parsing the query only if a route asks.
 */
export function routeInput(host: string, path: string, method: string, headers: { get(name: string): string | null }, rawQuery: string): RouteInput {
  let parsed: URLSearchParams | null | undefined;
  return {
    host,
    path,
    method,
    header: (name: string) => headers.get(name),
    get query(): URLSearchParams | null {
      if (parsed === undefined) parsed = rawQuery.length > 1 ? new URLSearchParams(rawQuery) : null;
      return parsed;
    },
  };
}
