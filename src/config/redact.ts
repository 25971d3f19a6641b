/**
 * The effective (resolved) config as plain JSON for the admin `/config` endpoint, with secrets replaced by
 * {@link REDACTED}: the admin token, and the values of headers and query parameters whose names look like
 * credentials (health-check probe headers, and `equals`/`regex` values of route header and query conditions),
 * every value of `tracing.headers` (exporter headers are usually credentials), and `basic_auth` password hashes.
 * URLs become their `href`, regular expressions their `/source/flags` text.
 */
import type { Config } from './types.ts';

/** What a secret is replaced with. */
export const REDACTED = '[redacted]';

const SECRET_NAMES = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'api-key', 'apikey']);
const SECRET_PARTS = /(token|secret|password|passwd|auth|session|api[-_]?key|credential|signature|private)/i;

/** True when a header (or query parameter) name looks like it carries a credential. */
export function isSecretName(name: string): boolean {
  return SECRET_NAMES.has(name.toLowerCase()) || SECRET_PARTS.test(name);
}

function plain(value: unknown): unknown {
  if (value instanceof URL) return value.href;
  if (value instanceof RegExp) return `/${value.source}/${value.flags}`;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

function redactConditions(list: unknown): void {
  if (!Array.isArray(list)) return;
  for (const c of list as Record<string, unknown>[]) {
    if (typeof c.name !== 'string' || !isSecretName(c.name)) continue;
    if ('value' in c) c.value = REDACTED;
    if ('regex' in c) c.regex = REDACTED;
  }
}

/** The config as JSON-ready data with secrets redacted. Never changes `config`. */
export function redactConfig(config: Config): Record<string, unknown> {
  const out = plain(config) as Record<string, unknown> & { admin: Record<string, unknown>; pools: Record<string, unknown>[] };
  if (out.admin.token !== undefined) out.admin.token = REDACTED;
  const exportHeaders = (out.tracing as { headers?: Record<string, unknown> } | undefined)?.headers;
  for (const name of Object.keys(exportHeaders ?? {})) if (exportHeaders) exportHeaders[name] = REDACTED;
  const tracing = out.tracing as { endpoint?: unknown } | undefined;
  if (tracing && typeof tracing.endpoint === 'string') tracing.endpoint = endpointForDisplay(tracing.endpoint);
  for (const pool of out.pools) {
    for (const route of (pool.routes ?? []) as Record<string, unknown>[]) {
      redactConditions(route.headers);
      redactConditions(route.query);
      const auth = route.basic_auth as { users?: { password_hash?: string }[] } | undefined;
      for (const user of auth?.users ?? []) user.password_hash = REDACTED;
    }
    for (const backend of (pool.backends ?? []) as Record<string, unknown>[]) {
      const hc = backend.health_check as { probes?: { headers?: Record<string, string> }[] } | undefined;
      for (const probe of hc?.probes ?? []) {
        for (const name of Object.keys(probe.headers ?? {})) if (isSecretName(name) && probe.headers) probe.headers[name] = REDACTED;
      }
    }
  }
  redactAlerts(out.alerts);
  return out;
}

/**
 * Alert webhooks: every extra header value is redacted (they are there for credentials), and so is a URL's
 * path and query (many webhook services put the secret there), keeping its origin.
 */
function redactAlerts(alerts: unknown): void {
  const hooks = (alerts as { webhooks?: { url?: string; headers?: Record<string, string> }[] } | undefined)?.webhooks;
  for (const hook of hooks ?? []) {
    for (const name of Object.keys(hook.headers ?? {})) if (hook.headers) hook.headers[name] = REDACTED;
    if (typeof hook.url === 'string') {
      try {
        const u = new URL(hook.url);
        if (u.pathname !== '/' || u.search !== '') hook.url = `${u.origin}/${REDACTED}`;
      } catch {}
    }
  }
}

/** A URL as it may be shown or logged: its query (which may carry a key) replaced by `?[redacted]`. */
export function endpointForDisplay(url: string): string {
  try {
    const u = new URL(url);
    return u.search === '' ? url : `${u.origin}${u.pathname}?${REDACTED}`;
  } catch {
    return url;
  }
}
