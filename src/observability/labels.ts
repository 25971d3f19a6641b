/**
 * Custom metric label values of one request, captured on the request path for pools with `metrics`
 * configured (request headers and the route's tags once routed, response headers once the backend answered).
 * Pools without `metrics` cost one property check. The values are raw here; capping distinct values and
 * mapping overflow to `other` is the metrics module's job.
 */
import type { PoolConfig } from '../config/types.ts';
import type { HeaderLookup } from '../lib/request-fields.ts';

/** Longest label value kept; longer values are cut (header values can be long). */
export const MAX_LABEL_VALUE_LENGTH = 64;

function clip(v: string | null | undefined): string {
  if (!v) return '';
  return v.length > MAX_LABEL_VALUE_LENGTH ? v.slice(0, MAX_LABEL_VALUE_LENGTH) : v;
}

/**
 * The label values known once a request is routed (request headers, route tags), or undefined when the pool
 * has no custom metrics. `routeId` is the matched route, `pool#index`.
 */
export function requestLabels(pool: PoolConfig, routeId: string, headers: HeaderLookup): Record<string, string> | undefined {
  const cfg = pool.metrics;
  if (!cfg) return undefined;
  const out: Record<string, string> = {};
  let tags: Record<string, string> | undefined;
  for (const l of cfg.labels) {
    switch (l.from.kind) {
      case 'request_header':
        out[l.name] = clip(headers.get(l.from.name));
        break;
      case 'route_tag':
        tags ??= pool.routes[Number(routeId.slice(routeId.lastIndexOf('#') + 1))]?.tags ?? {};
        out[l.name] = clip(tags[l.from.name]);
        break;
      case 'response_header':
        out[l.name] = '';
        break;
    }
  }
  return out;
}

/** Adds the values that come from response headers (names lower case, as transports deliver them). */
export function addResponseLabels(pool: PoolConfig, headers: readonly [string, string][], labels: Record<string, string>): void {
  const cfg = pool.metrics;
  if (!cfg) return;
  for (const l of cfg.labels) {
    if (l.from.kind !== 'response_header') continue;
    const name = l.from.name;
    for (const [k, v] of headers) {
      if (k === name) {
        labels[l.name] = clip(v);
        break;
      }
    }
  }
}
