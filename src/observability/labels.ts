/**
 * Custom metric label values of one request, captured on the request path for pools with `metrics`
 * configured (request headers and the route's tags once routed, response headers once the backend answered).
 * Pools without `metrics` cost one property check. The values are raw here; capping distinct values and
 * mapping overflow to `other` is the metrics module's job.
 */
import type { PoolConfig } from '../config/types.ts';
import { fieldText } from '../lib/field-text.ts';
import type { HeaderLookup } from '../lib/request-fields.ts';

/** Longest label value kept; longer values are cut (header values can be long). */
export const MAX_LABEL_VALUE_LENGTH = 64;

function clip(v: string | null | undefined): string {
  if (!v) return '';
  if (v.length <= MAX_LABEL_VALUE_LENGTH) return v;
  // Never keep half of a surrogate pair (a character outside the BMP, e.g. an emoji, read from UTF-8).
  const high = v.charCodeAt(MAX_LABEL_VALUE_LENGTH - 1);
  return v.slice(0, high >= 0xd800 && high <= 0xdbff ? MAX_LABEL_VALUE_LENGTH - 1 : MAX_LABEL_VALUE_LENGTH);
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
        out[l.name] = clip(fieldText(headers.get(l.from.name)));
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
        labels[l.name] = clip(fieldText(v));
        break;
      }
    }
  }
}
