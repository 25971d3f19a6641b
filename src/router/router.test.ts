import { describe, expect, test } from 'bun:test';
import type { HeaderMatch, RouteConfig } from '../config/types.ts';
import { seededRandom } from '../lib/random.ts';
import { normalisePath, parseAuthority } from '../proxy/request-target.ts';
import { caseInput, describeRouterConformance, routeConfig } from './conformance.ts';
import { compileRouter, type RouteEntry, type RouteInput, type Router, routeInput } from './router.ts';

/**
 * A deliberately naive reference router: checks every route and keeps the best by the documented precedence.
 * Written independently of the bucketed implementation so the two can be compared on random inputs.
 */
function referenceRouter<T>(routes: readonly RouteEntry<T>[]): Router<T> {
  const hostRank = (r: RouteConfig, host: string): number => {
    if (r.hosts.length === 0) return 0;
    let best = -1;
    for (const raw of r.hosts) {
      let p = raw.toLowerCase();
      if (p.length > 1 && p.endsWith('.')) p = p.slice(0, -1);
      if (p === '*') best = Math.max(best, 0);
      else if (p.startsWith('*.')) {
        const suffix = p.slice(1);
        if (host.endsWith(suffix) && host.length > suffix.length) best = Math.max(best, suffix.length);
      } else if ((p.startsWith('[') ? (parseAuthority(p)?.host ?? p) : p) === host) best = Math.max(best, 1e9);
    }
    return best;
  };
  // Configured paths go through the request normaliser (its own table tests are in request-target.test.ts).
  const canon = (path: string, prefix = false): string => {
    const dots = prefix && path.endsWith('/.') ? '.' : undefined;
    const n = normalisePath(dots === undefined ? path : path.slice(0, -dots.length));
    return typeof n === 'string' ? (dots === undefined ? n : `${n}${dots}`) : path;
  };
  // Header values arrive one character per byte; they are compared as UTF-8 text when they are valid UTF-8.
  const asUtf8 = (v: string | null): string | null => {
    if (v === null) return v;
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.from(v, 'latin1'));
    } catch {
      return v;
    }
  };
  const holds = (m: HeaderMatch, v: string | null): boolean =>
    m.kind === 'present'
      ? v !== null
      : m.kind === 'absent'
        ? v === null
        : m.kind === 'equals'
          ? v === m.value
          : v !== null && new RegExp(m.regex.source, m.regex.flags.replace(/[gy]/g, '')).test(v);
  return {
    match(input: RouteInput) {
      let best: { key: number[]; target: T } | undefined;
      routes.forEach((e, seq) => {
        const r = e.route;
        const hr = hostRank(r, input.host);
        if (hr < 0) return;
        if (r.path_exact !== undefined && input.path !== canon(r.path_exact)) return;
        if (r.path_prefix !== undefined && !input.path.startsWith(canon(r.path_prefix, true))) return;
        if (r.methods.length > 0 && !r.methods.includes(input.method)) return;
        if (!r.headers.every((m) => holds(m, asUtf8(input.header(m.name.toLowerCase()))))) return;
        if (!r.query.every((m) => holds(m, input.query?.get(m.name) ?? null))) return;
        const pathRank = r.path_exact !== undefined ? 1e9 : r.path_prefix ? canon(r.path_prefix, true).length + 1 : 0;
        const conds = (r.methods.length > 0 ? 1 : 0) + r.headers.length + r.query.length;
        const key = [pathRank, hr, conds, -e.order, -seq];
        if (best === undefined || compareKeys(key, best.key) > 0) best = { key, target: e.target };
      });
      return best?.target;
    },
  };
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

describeRouterConformance('compileRouter', compileRouter);
describeRouterConformance('reference (naive)', referenceRouter);

describe('compileRouter', () => {
  test('agrees with the reference router on random routes and requests', () => {
    const rnd = seededRandom(7);
    const pick = <X>(xs: readonly X[]): X => xs[Math.floor(rnd() * xs.length)] as X;
    const hostPatterns = ['example.com', 'a.example.com', 'b.a.example.com', '*.example.com', '*.a.example.com', '*.com', 'other.org', '*'];
    const hosts = ['example.com', 'a.example.com', 'b.a.example.com', 'c.b.a.example.com', 'x.example.com', 'other.org', 'z.org', 'com', 'q.com'];
    const prefixes = ['/', '/a', '/a/', '/a/b', '/ab', '/b'];
    const paths = ['/', '/a', '/a/', '/a/b', '/a/b/c', '/ab', '/b', '/bc', '*'];
    const methods = ['GET', 'POST', 'PUT'];
    const headerConds: HeaderMatch[] = [
      { name: 'x-a', kind: 'present' },
      { name: 'x-a', kind: 'absent' },
      { name: 'x-b', kind: 'equals', value: '1' },
      { name: 'x-b', kind: 'regex', regex: /^[12]$/ },
    ];
    for (let round = 0; round < 300; round++) {
      const n = 1 + Math.floor(rnd() * 8);
      const routes: RouteEntry<number>[] = [];
      for (let i = 0; i < n; i++) {
        const route: Partial<RouteConfig> = {};
        const hc = Math.floor(rnd() * 3);
        route.hosts = Array.from({ length: hc }, () => pick(hostPatterns));
        const pk = rnd();
        if (pk < 0.25) route.path_exact = pick(paths.filter((p) => p !== '*'));
        else if (pk < 0.8) route.path_prefix = pick(prefixes);
        if (rnd() < 0.3) route.methods = [pick(methods), pick(methods)];
        if (rnd() < 0.4) route.headers = [pick(headerConds)];
        if (rnd() < 0.3) route.query = [pick(headerConds)];
        routes.push({ route: routeConfig(route), target: i, order: Math.floor(rnd() * 4) });
      }
      const fast = compileRouter(routes);
      const slow = referenceRouter(routes);
      for (let k = 0; k < 40; k++) {
        const headers: Record<string, string> = {};
        if (rnd() < 0.5) headers['x-a'] = 'y';
        if (rnd() < 0.5) headers['x-b'] = pick(['1', '2', '3']);
        const query = pick(['', '?x-a', '?x-b=1', '?x-b=2&x-a=', '?x-b=3']);
        const req = caseInput({ host: pick(hosts), path: pick(paths), method: pick(methods), headers, query });
        const want = slow.match(req);
        const got = fast.match(req);
        if (got !== want) throw new Error(`round ${round}: ${JSON.stringify({ routes, req: { ...req, query } })} expected ${want} got ${got}`);
      }
    }
    expect(true).toBe(true);
  });

  test.each<[string]>([['a.*.com'], ['*'], ['*.'], ['**.example.com'], ['ex*mple.com'], ['']])('host pattern %p: valid only when it is "*"', (p) => {
    const build = () => compileRouter([{ route: routeConfig({ hosts: [p] }), target: 1, order: 0 }]);
    if (p === '*') expect(build).not.toThrow();
    else expect(build).toThrow();
  });

  test('the query is read only when a candidate with query conditions is reached', () => {
    const router = compileRouter([
      { route: routeConfig({ path_prefix: '/q', query: [{ name: 'a', kind: 'present' }] }), target: 'q', order: 0 },
      { route: routeConfig({ path_prefix: '/' }), target: 'root', order: 1 },
    ]);
    let reads = 0;
    const input = (path: string): RouteInput => ({
      host: 'h',
      path,
      method: 'GET',
      header: () => null,
      get query() {
        reads++;
        return new URLSearchParams('?a=1');
      },
    });
    expect(router.match(input('/x'))).toBe('root');
    expect(reads).toBe(0);
    expect(router.match(input('/q'))).toBe('q');
    expect(reads).toBe(1);
  });
});

describe('routeInput', () => {
  test('reads headers through get and parses the query lazily, once', () => {
    const headers = new Headers({ 'x-a': '1' });
    const i = routeInput('h', '/p', 'GET', headers, '?a=1&b');
    expect(i.header('x-a')).toBe('1');
    expect(i.header('x-b')).toBeNull();
    const q = i.query;
    expect(q?.get('a')).toBe('1');
    expect(q?.get('b')).toBe('');
    expect(i.query).toBe(q);
  });

  test.each<[string]>([[''], ['?']])('no query for %p', (raw) => {
    expect(routeInput('h', '/', 'GET', new Headers(), raw).query).toBeNull();
  });

  test('header values are compared as UTF-8 text; query values as decoded by URLSearchParams', () => {
    const router = compileRouter([
      { route: routeConfig({ path_prefix: '/h', headers: [{ name: 'x-name', kind: 'equals', value: 'José' }] }), target: 'h', order: 0 },
      { route: routeConfig({ path_prefix: '/r', headers: [{ name: 'x-name', kind: 'regex', regex: /^Jos.$/ }] }), target: 'r', order: 0 },
      { route: routeConfig({ path_prefix: '/q', query: [{ name: 'n', kind: 'equals', value: 'José' }] }), target: 'q', order: 0 },
    ]);
    const utf8 = new Headers({ 'x-name': Buffer.from('José', 'utf8').toString('latin1') }); // as Bun hands it over
    expect(router.match(routeInput('h', '/h', 'GET', utf8, ''))).toBe('h');
    expect(router.match(routeInput('h', '/r', 'GET', utf8, ''))).toBe('r');
    expect(router.match(routeInput('h', '/h', 'GET', new Headers({ 'x-name': 'Jose' }), ''))).toBeUndefined();
    expect(router.match(routeInput('h', '/q', 'GET', new Headers(), '?n=Jos%C3%A9'))).toBe('q');
  });

  test('works end to end with compileRouter', () => {
    const router = compileRouter([
      { route: routeConfig({ hosts: ['*.example.com'], query: [{ name: 'v', kind: 'equals', value: '2' }] }), target: 'v2', order: 0 },
    ]);
    expect(router.match(routeInput('a.example.com', '/', 'GET', new Headers(), '?v=2'))).toBe('v2');
    expect(router.match(routeInput('a.example.com', '/', 'GET', new Headers(), '?v=1'))).toBeUndefined();
  });
});
