/**
 * The shared router conformance suite: one table of routes × requests → expected route, run against every
 * router implementation (`describeRouterConformance`). It pins the precedence rules and matching semantics
 * documented in `router.ts`; a new implementation (a trie, a radix tree) must pass it unchanged.
 * Test-only: imports `bun:test`; nothing at run time imports this file.
 */

import { describe, expect, test } from 'bun:test';
import type { HeaderMatch, RouteConfig } from '../config/types.ts';
import type { RouteEntry, RouteInput, Router } from './router.ts';

/** A route of a conformance case: conditions (defaults: any host, any path, any method) and an id. */
export type CaseRoute = Partial<RouteConfig> & { id: string; order?: number };

/** A request of a conformance case. */
export interface CaseRequest {
  /** Host (default `example.com`). */
  host?: string;
  /** Normalised path (default `/`). */
  path?: string;
  /** Method (default `GET`). */
  method?: string;
  /** Request headers. */
  headers?: Record<string, string>;
  /** Raw query including `?`, or ''. */
  query?: string;
}

/** One conformance case: routes, then requests with the id of the route that must win (null: no match). */
export interface ConformanceCase {
  /** What the case shows. */
  name: string;
  /** The routes, in config order. */
  routes: CaseRoute[];
  /** Requests and the id of the route that must win (null: no route matches). */
  requests: [CaseRequest, string | null][];
}

/** Fills a partial route config with "no condition" defaults. */
export function routeConfig(r: Partial<RouteConfig>): RouteConfig {
  return {
    hosts: r.hosts ?? [],
    methods: r.methods ?? [],
    headers: r.headers ?? [],
    query: r.query ?? [],
    ...(r.path_prefix !== undefined ? { path_prefix: r.path_prefix } : {}),
    ...(r.path_exact !== undefined ? { path_exact: r.path_exact } : {}),
  };
}

/** Builds a {@link RouteInput} for a case request. */
export function caseInput(q: CaseRequest): RouteInput {
  const headers = new Headers(q.headers ?? {});
  const raw = q.query ?? '';
  return {
    host: q.host ?? 'example.com',
    path: q.path ?? '/',
    method: q.method ?? 'GET',
    header: (name: string) => headers.get(name),
    query: raw.length > 1 ? new URLSearchParams(raw) : null,
  };
}

const h = (name: string, kind: 'present' | 'absent'): HeaderMatch => ({ name, kind });
const eq = (name: string, value: string): HeaderMatch => ({ name, kind: 'equals', value });
const re = (name: string, regex: RegExp): HeaderMatch => ({ name, kind: 'regex', regex });
/** `text` sent in UTF-8, as Bun hands a header value over: one character per byte. */
const wire = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

/** The conformance table. */
export const ROUTER_CONFORMANCE: readonly ConformanceCase[] = [
  {
    name: 'no routes: no match',
    routes: [],
    requests: [[{}, null]],
  },
  {
    name: 'rule 1: exact path beats any prefix (even longer, more specific host, more conditions, earlier)',
    routes: [
      { id: 'prefix-long', path_prefix: '/api/users/me/', hosts: ['example.com'], methods: ['GET'], order: 0 },
      { id: 'exact', path_exact: '/api/users/me/', order: 9 },
    ],
    requests: [
      [{ path: '/api/users/me/' }, 'exact'],
      [{ path: '/api/users/me/x' }, 'prefix-long'],
      [{ path: '/api/users/me' }, null],
    ],
  },
  {
    name: 'rule 2: longer prefix wins; no path condition ranks below "/"',
    routes: [
      { id: 'none', order: 0 },
      { id: 'root', path_prefix: '/', order: 1 },
      { id: 'api', path_prefix: '/api', order: 2 },
      { id: 'api-v1', path_prefix: '/api/v1/', order: 3 },
    ],
    requests: [
      [{ path: '/api/v1/users' }, 'api-v1'],
      [{ path: '/api/v2' }, 'api'],
      [{ path: '/other' }, 'root'],
      [{ path: '*' }, 'none'],
    ],
  },
  {
    name: 'prefix is a plain string prefix (Rust Spooky compatible)',
    routes: [
      { id: 'api', path_prefix: '/api' },
      { id: 'api-slash', path_prefix: '/api/' },
    ],
    requests: [
      [{ path: '/api' }, 'api'],
      [{ path: '/apix' }, 'api'],
      [{ path: '/api/x' }, 'api-slash'],
      [{ path: '/ap' }, null],
    ],
  },
  {
    name: 'configured paths are canonicalised like request paths',
    routes: [
      { id: 'tilde', path_prefix: '/%7euser/' },
      { id: 'slash', path_exact: '/a%2fb' },
    ],
    requests: [
      [{ path: '/~user/x' }, 'tilde'],
      [{ path: '/a%2Fb' }, 'slash'],
      [{ path: '/a/b' }, null],
    ],
  },
  {
    name: 'configured paths are normalised like request paths: raw non-ASCII and {}, //, dot segments',
    routes: [
      { id: 'cafe', path_prefix: '/café/' },
      { id: 'braces', path_exact: '/x{y}' },
      { id: 'double', path_prefix: '/a//b/' },
      { id: 'dot', path_exact: '/c/./d' },
    ],
    requests: [
      [{ path: '/caf%C3%A9/menu' }, 'cafe'],
      [{ path: '/x%7By%7D' }, 'braces'],
      [{ path: '/a/b/c' }, 'double'],
      [{ path: '/c/d' }, 'dot'],
    ],
  },
  {
    name: 'a prefix ending in a dot is a string prefix for dotfiles, not a dot segment',
    routes: [
      { id: 'app', path_prefix: '/app/' },
      { id: 'dotfiles', path_prefix: '/app/.' },
      { id: 'docs', path_prefix: '/docs/v1/..' },
    ],
    requests: [
      [{ path: '/app/.env' }, 'dotfiles'],
      [{ path: '/app/index.html' }, 'app'],
      [{ path: '/docs/x' }, 'docs'], // a trailing `..` still goes up a segment
    ],
  },
  {
    name: 'an IPv6 host written in full matches its canonical form',
    routes: [
      { id: 'long', hosts: ['[0:0:0:0:0:0:0:1]'], path_prefix: '/' },
      { id: 'upper', hosts: ['[2001:DB8:0::1]'], path_prefix: '/' },
    ],
    requests: [
      [{ host: '[::1]', path: '/x' }, 'long'],
      [{ host: '[2001:db8::1]', path: '/x' }, 'upper'],
    ],
  },
  {
    name: 'rule 3: exact host > longer wildcard > shorter wildcard > any host (same path)',
    routes: [
      { id: 'any', path_prefix: '/', order: 0 },
      { id: 'wild', hosts: ['*.example.com'], path_prefix: '/', order: 1 },
      { id: 'wild-long', hosts: ['*.api.example.com'], path_prefix: '/', order: 2 },
      { id: 'exact', hosts: ['a.api.example.com'], path_prefix: '/', order: 3 },
    ],
    requests: [
      [{ host: 'a.api.example.com' }, 'exact'],
      [{ host: 'b.api.example.com' }, 'wild-long'],
      [{ host: 'x.y.api.example.com' }, 'wild-long'],
      [{ host: 'api.example.com' }, 'wild'],
      [{ host: 'www.example.com' }, 'wild'],
      [{ host: 'example.com' }, 'any'],
      [{ host: 'other.org' }, 'any'],
    ],
  },
  {
    name: 'path precedence outranks host precedence',
    routes: [
      { id: 'exact-host-short', hosts: ['example.com'], path_prefix: '/' },
      { id: 'any-host-long', path_prefix: '/static/' },
      { id: 'wild-exact-path', hosts: ['*.example.com'], path_exact: '/login' },
    ],
    requests: [
      [{ host: 'example.com', path: '/static/x' }, 'any-host-long'],
      [{ host: 'example.com', path: '/x' }, 'exact-host-short'],
      [{ host: 'a.example.com', path: '/login' }, 'wild-exact-path'],
      [{ host: 'example.com', path: '/login' }, 'exact-host-short'],
    ],
  },
  {
    name: 'wildcard never matches the apex; host match is case-insensitive on patterns',
    routes: [
      { id: 'wild', hosts: ['*.Example.COM'] },
      { id: 'apex', hosts: ['EXAMPLE.com.'] },
    ],
    requests: [
      [{ host: 'a.example.com' }, 'wild'],
      [{ host: 'a.b.example.com' }, 'wild'],
      [{ host: 'example.com' }, 'apex'],
      [{ host: 'badexample.com' }, null],
      [{ host: 'example.com.evil' }, null],
      [{ host: 'com' }, null],
    ],
  },
  {
    name: 'a route with several hosts competes with its most specific matching pattern',
    routes: [
      { id: 'multi', hosts: ['*.example.com', 'a.example.com'], order: 1 },
      { id: 'wild', hosts: ['*.example.com'], methods: ['GET'], order: 0 },
      { id: 'star', hosts: ['*'], order: 2 },
    ],
    requests: [
      [{ host: 'a.example.com' }, 'multi'],
      [{ host: 'b.example.com' }, 'wild'],
      [{ host: 'b.example.com', method: 'POST' }, 'multi'],
      [{ host: 'other.org' }, 'star'],
    ],
  },
  {
    name: 'rule 4: more conditions win; a method list counts once',
    routes: [
      { id: 'plain', path_prefix: '/', order: 0 },
      { id: 'methods', path_prefix: '/', methods: ['GET', 'HEAD', 'POST'], order: 1 },
      { id: 'header+query', path_prefix: '/', headers: [h('x-beta', 'present')], query: [h('debug', 'present')], order: 2 },
      { id: 'header', path_prefix: '/', headers: [h('x-beta', 'present')], order: 3 },
    ],
    requests: [
      [{ headers: { 'x-beta': '1' }, query: '?debug' }, 'header+query'],
      [{ headers: { 'x-beta': '1' } }, 'methods'], // 1 condition each: config order decides
      [{ headers: { 'x-beta': '1' }, method: 'DELETE' }, 'header'],
      [{ method: 'DELETE' }, 'plain'],
    ],
  },
  {
    name: 'rule 5: config order breaks remaining ties, then list position',
    routes: [
      { id: 'second', path_prefix: '/a', order: 2 },
      { id: 'first', path_prefix: '/a', order: 1 },
      { id: 'first-too', path_prefix: '/a', order: 1 },
    ],
    requests: [[{ path: '/a' }, 'first']],
  },
  {
    name: 'methods: exact, case-sensitive, HEAD not implied by GET',
    routes: [{ id: 'get', methods: ['GET', 'POST'] }],
    requests: [
      [{ method: 'GET' }, 'get'],
      [{ method: 'POST' }, 'get'],
      [{ method: 'HEAD' }, null],
      [{ method: 'get' }, null],
    ],
  },
  {
    name: 'header conditions: present / absent / equals / regex',
    routes: [
      { id: 'present', path_prefix: '/p', headers: [h('X-Flag', 'present')] },
      { id: 'absent', path_prefix: '/a', headers: [h('x-flag', 'absent')] },
      { id: 'equals', path_prefix: '/e', headers: [eq('x-env', 'Canary')] },
      { id: 'regex', path_prefix: '/r', headers: [re('user-agent', /mobile/i)] },
      { id: 'regex-g', path_prefix: '/g', headers: [re('x-id', /^\d+$/g)] },
    ],
    requests: [
      [{ path: '/p', headers: { 'x-flag': '' } }, 'present'],
      [{ path: '/p' }, null],
      [{ path: '/a' }, 'absent'],
      [{ path: '/a', headers: { 'x-flag': '1' } }, null],
      [{ path: '/e', headers: { 'x-env': 'Canary' } }, 'equals'],
      [{ path: '/e', headers: { 'x-env': 'canary' } }, null],
      [{ path: '/e', headers: { 'x-env': 'Canary2' } }, null],
      [{ path: '/e' }, null],
      [{ path: '/r', headers: { 'user-agent': 'Foo Mobile Bar' } }, 'regex'],
      [{ path: '/r', headers: { 'user-agent': 'Desktop' } }, null],
      [{ path: '/r' }, null],
      // a global regex must not alternate between calls
      [{ path: '/g', headers: { 'x-id': '42' } }, 'regex-g'],
      [{ path: '/g', headers: { 'x-id': '42' } }, 'regex-g'],
      [{ path: '/g', headers: { 'x-id': '42' } }, 'regex-g'],
    ],
  },
  {
    // Bun hands header values over one character per byte; `wire` builds such a value from text sent in UTF-8.
    name: 'header values are compared as UTF-8 text',
    routes: [
      { id: 'equals', path_prefix: '/e', headers: [eq('x-name', 'José')] },
      { id: 'regex', path_prefix: '/r', headers: [re('x-name', /^Jos.$/)] },
    ],
    requests: [
      [{ path: '/e', headers: { 'x-name': wire('José') } }, 'equals'],
      [{ path: '/r', headers: { 'x-name': wire('José') } }, 'regex'],
      [{ path: '/e', headers: { 'x-name': 'Jose' } }, null],
      [{ path: '/e', headers: { 'x-name': wire('\ufeffJosé') } }, null], // a byte-order mark is part of the value
      [{ path: '/r', headers: { 'x-name': wire('Josée') } }, null],
    ],
  },
  {
    name: 'query conditions: present / absent / equals / regex (first value)',
    routes: [
      { id: 'present', path_prefix: '/p', query: [h('debug', 'present')] },
      { id: 'absent', path_prefix: '/a', query: [h('debug', 'absent')] },
      { id: 'equals', path_prefix: '/e', query: [eq('v', '2')] },
      { id: 'regex', path_prefix: '/r', query: [re('id', /^[0-9]+$/)] },
    ],
    requests: [
      [{ path: '/p', query: '?debug' }, 'present'],
      [{ path: '/p', query: '?debug=' }, 'present'],
      [{ path: '/p', query: '?Debug=1' }, null],
      [{ path: '/p' }, null],
      [{ path: '/a' }, 'absent'],
      [{ path: '/a', query: '?x=1' }, 'absent'],
      [{ path: '/a', query: '?debug=0' }, null],
      [{ path: '/e', query: '?v=2' }, 'equals'],
      [{ path: '/e', query: '?v=2&v=3' }, 'equals'],
      [{ path: '/e', query: '?v=3&v=2' }, null],
      [{ path: '/e', query: '?v=%32' }, 'equals'],
      [{ path: '/r', query: '?id=123' }, 'regex'],
      [{ path: '/r', query: '?id=12a' }, null],
    ],
  },
  {
    name: 'every condition must hold; a failing specific route falls through to a general one',
    routes: [
      {
        id: 'all',
        hosts: ['api.example.com'],
        path_prefix: '/v1/',
        methods: ['POST'],
        headers: [eq('content-type', 'application/json')],
        query: [h('dry', 'absent')],
      },
      { id: 'fallback', hosts: ['api.example.com'] },
    ],
    requests: [
      [{ host: 'api.example.com', path: '/v1/x', method: 'POST', headers: { 'content-type': 'application/json' } }, 'all'],
      [{ host: 'api.example.com', path: '/v1/x', method: 'POST', headers: { 'content-type': 'application/json' }, query: '?dry=1' }, 'fallback'],
      [{ host: 'api.example.com', path: '/v1/x', method: 'PUT', headers: { 'content-type': 'application/json' } }, 'fallback'],
      [{ host: 'api.example.com', path: '/v2/x', method: 'POST', headers: { 'content-type': 'application/json' } }, 'fallback'],
      [{ host: 'www.example.com', path: '/v1/x', method: 'POST', headers: { 'content-type': 'application/json' } }, null],
    ],
  },
  {
    name: 'path_exact and path_prefix together: both must hold',
    routes: [{ id: 'both', path_exact: '/a/b', path_prefix: '/a/' }],
    requests: [
      [{ path: '/a/b' }, 'both'],
      [{ path: '/a/b/c' }, null],
    ],
  },
  {
    name: 'no match',
    routes: [
      { id: 'a', hosts: ['a.example.com'], path_prefix: '/x' },
      { id: 'b', hosts: ['*.b.example.com'] },
    ],
    requests: [
      [{ host: 'a.example.com', path: '/y' }, null],
      [{ host: 'b.example.com' }, null],
      [{ host: 'zzz' }, null],
    ],
  },
];

/** Runs {@link ROUTER_CONFORMANCE} against a router implementation. */
export function describeRouterConformance(name: string, compile: (routes: readonly RouteEntry<string>[]) => Router<string>): void {
  describe(`Router conformance: ${name}`, () => {
    for (const c of ROUTER_CONFORMANCE) {
      test(c.name, () => {
        const router = compile(c.routes.map((r, i) => ({ route: routeConfig(r), target: r.id, order: r.order ?? i })));
        for (const [req, want] of c.requests) {
          const got = router.match(caseInput(req)) ?? null;
          if (got !== want) throw new Error(`${JSON.stringify(req)}: expected ${want}, got ${got}`);
          expect(got).toBe(want);
        }
      });
    }
  });
}
