/**
 * Path rewriting of a route (`route.rewrite`, see README "Path rewriting"): pure functions, applied to the
 * normalised path after routing, so the backend gets the rewritten path and the client's query.
 */
import type { PathRewrite } from '../config/types.ts';

/**
 * `path` with `matchedPrefix` (the route's normalised `path_prefix`, which `path` starts with) replaced by
 * `replacement`, joined with one `/` where both sides have one: `/api/` -> `/` maps `/api/users` to `/users`,
 * `/api` -> `/v2` maps `/api/users` to `/v2/users`, and `/` -> `/v1` maps `/users` to `/v1/users`.
 */
export function replacePrefix(path: string, matchedPrefix: string, replacement: string): string {
  let rest = path.slice(matchedPrefix.length);
  if (matchedPrefix.endsWith('/')) rest = `/${rest}`; // the prefix took the slash in front of the rest
  if (replacement.endsWith('/') && rest.startsWith('/')) return replacement + rest.slice(1);
  return replacement + rest;
}

/** A `.` or `..` segment. */
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;

/**
 * The function that rewrites a matched request's path for `rewrite` (`normalisedPrefix` is the route's
 * `path_prefix` as the router matches it), or undefined when the route has none. `*` (OPTIONS) is never
 * rewritten. The function returns undefined when the result would have a `.` or `..` segment: a string prefix
 * that ends inside a segment (`/api` with `/v1/`) glues the rest of that segment (`/api../admin`) onto a
 * segment start, and the backend must never get a path that climbs out of the rewritten prefix.
 */
export function pathRewriter(
  rewrite: PathRewrite | undefined,
  normalisedPrefix: string | undefined,
): ((path: string) => string | undefined) | undefined {
  if (rewrite === undefined) return undefined;
  if ('path' in rewrite) {
    const to = rewrite.path;
    return (path) => (path === '*' ? path : to);
  }
  const from = normalisedPrefix ?? '';
  const to = rewrite.prefix;
  return (path) => {
    if (path === '*' || !path.startsWith(from)) return path;
    const out = replacePrefix(path, from, to);
    return DOT_SEGMENT.test(out) ? undefined : out;
  };
}
