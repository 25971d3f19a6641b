/**
 * Small, pure parsers for the string-typed values of the config format (backend addresses, host
 * patterns, CIDRs, hash keys, status ranges, ...). The zod schema uses them to report errors and the
 * loader uses them again to build the resolved {@link Config}, so a value is judged in exactly one place.
 *
 * Each parser returns either `{ ok: true, value }` or `{ ok: false, message }` with a plain-language
 * message that names what was wrong and what is expected.
 */
import { normalisePath } from '../proxy/request-target.ts';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { parseCidr as parseCidrRange } from '../lib/cidr.ts';
import type { BackendProtocol, HashKeySource, LabelSource } from './types.ts';

/** The outcome of parsing one config value. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

/** An HTTP token (RFC 9110 `tchar`), the shape of method and header names. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A parsed backend (or probe) address. */
export interface ParsedAddress {
  /** Origin URL; `h2c://` is carried as an `http:` URL. */
  url: URL;
  /** Protocol implied by the scheme. */
  protocol: BackendProtocol;
  /** The scheme as it should be written back: `http`, `https` or `h2c`. */
  scheme: 'http' | 'https' | 'h2c';
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/**
 * Parses a backend address. `http://` is HTTP/1.1, `https://` is HTTP/2 over TLS (falling back to
 * HTTP/1.1), `h2c://` is HTTP/2 cleartext. A bare `host:port` or bare `host` means `https://` (the Rust
 * Spooky's meaning); default ports are 80 for http/h2c and 443 for https. The address must be an origin:
 * no path, query, fragment or credentials.
 */
export function parseBackendAddress(input: string): Parsed<ParsedAddress> {
  if (input.length === 0) return fail('the address is empty');
  if (/\s/.test(input)) return fail(`the address "${input}" contains whitespace`);
  const m = SCHEME.exec(input);
  let scheme: ParsedAddress['scheme'];
  let rest: string;
  if (m) {
    const s = (m[1] ?? '').toLowerCase();
    if (s !== 'http' && s !== 'https' && s !== 'h2c') {
      return fail(`unsupported scheme "${s}://"; use http:// (HTTP/1.1), https:// (HTTP/2 over TLS) or h2c:// (HTTP/2 cleartext)`);
    }
    scheme = s;
    rest = input.slice(m[0].length);
  } else {
    if (input.includes('://') || input.startsWith('/')) return fail(`"${input}" is not an address; expected scheme://host:port or host:port`);
    if (!input.startsWith('[') && (input.match(/:/g)?.length ?? 0) > 1) {
      return fail(`IPv6 addresses need brackets, e.g. "[::1]:8080"`);
    }
    scheme = 'https';
    rest = input;
  }
  if (rest.length === 0 || rest.startsWith('/') || rest.startsWith(':')) return fail(`the address "${input}" has no host`);
  const slash = rest.indexOf('/');
  if (slash >= 0 && rest.slice(slash) !== '/') {
    return fail(`a backend address is an origin (scheme://host:port) and cannot carry a path ("${rest.slice(slash)}")`);
  }
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  if (authority.includes('@')) return fail('credentials in the address are not supported');
  if (/[?#]/.test(authority)) return fail('a backend address cannot carry a query or fragment');
  const portMatch = /:([^:\]]*)$/.exec(authority);
  if (portMatch) {
    const p = portMatch[1] ?? '';
    if (!/^[0-9]+$/.test(p)) return fail(`invalid port "${p}" in "${input}"; expected a number 1..65535`);
    const n = Number(p);
    if (n < 1 || n > 65535) return fail(`port ${p} is out of range 1..65535`);
  }
  let url: URL;
  try {
    url = new URL(`${scheme === 'https' ? 'https' : 'http'}://${authority}`);
  } catch {
    return fail(`"${input}" is not a valid address; expected scheme://host:port or host:port`);
  }
  if (url.hostname.length === 0) return fail(`the address "${input}" has no host`);
  const host = url.hostname;
  if (!host.startsWith('[') && !isHostName(host) && isIP(host) === 0) {
    return fail(`"${host}" is not a valid host name or IP address`);
  }
  const protocol: BackendProtocol = scheme === 'http' ? 'http1' : scheme === 'https' ? 'h2' : 'h2c';
  return ok({ url, protocol, scheme });
}

/** Whether `s` is a DNS host name (letters, digits, `-`, `_`; labels of 1..63 characters; no trailing dot). */
function isHostName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  return s.split('.').every((l) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
}

/**
 * Checks a listener certificate's SNI `server_name`: a {@link parseHostPattern} that is not an IP address. A client
 * never sends an IP address as SNI (RFC 6066 section 3), so such a certificate could never be chosen.
 */
export function parseServerName(input: string): Parsed<string> {
  const r = parseHostPattern(input);
  if (!r.ok) return r;
  if (r.value.startsWith('[') || isIP(r.value) !== 0) {
    return fail(
      `"${input}" is an IP address, which clients never send as SNI (RFC 6066 section 3): make this certificate the listener's default (\`cert\`, \`key\`) instead`,
    );
  }
  return r;
}

/**
 * Checks a route host pattern and returns it in lower case: an exact host name or IP literal
 * (`api.example.com`, `10.0.0.1`, `[::1]`), or a leading wildcard (`*.example.com`) that matches any
 * name with at least one more label in front of the suffix (not the apex). No ports.
 */
export function parseHostPattern(input: string): Parsed<string> {
  const s = input.toLowerCase();
  if (s.length === 0) return fail('the host is empty');
  if (s === '*') return fail('"*" is not a host pattern; leave `host` out to match any host');
  if (s.startsWith('[')) {
    if (s.endsWith(']') && isIPv6(s.slice(1, -1))) return ok(s);
    return fail(`"${input}" is not a valid host; IPv6 literals look like "[::1]" (no port)`);
  }
  if (isIPv6(s)) return fail(`write IPv6 hosts in brackets: "[${s}]"`);
  if (/:[0-9]*$/.test(s)) return fail(`host patterns match the host name without a port; remove "${s.slice(s.lastIndexOf(':'))}"`);
  let rest = s;
  if (s.startsWith('*.')) rest = s.slice(2);
  if (rest.includes('*')) {
    return fail(`invalid host pattern "${input}": a wildcard must be the whole first label, as in "*.example.com"`);
  }
  if (isIPv4(rest)) {
    if (rest !== s) return fail(`a wildcard cannot be combined with an IP address ("${input}")`);
    return ok(s);
  }
  if (!isHostName(rest)) return fail(`"${input}" is not a valid host name`);
  return ok(s);
}

/**
 * Checks an IPv4/IPv6 CIDR (`10.0.0.0/8`, `fd00::/8`) or a single IP address with the same parser the
 * proxy uses to match trusted proxies (`src/lib/cidr.ts`), so every accepted entry can be compiled.
 * Returns the entry trimmed.
 */
export function parseCidr(input: string): Parsed<string> {
  const s = input.trim();
  if (parseCidrRange(s) !== null) return ok(s);
  const slash = s.indexOf('/');
  if (slash >= 0 && parseCidrRange(s.slice(0, slash)) !== null) {
    const max = s.includes(':') ? 128 : 32;
    return fail(`invalid prefix length "${s.slice(slash)}" in "${input}"; expected /0../${max}`);
  }
  return fail(`"${input}" is not an IP address or CIDR (e.g. "10.0.0.0/8", "192.168.1.7", "fd00::/8")`);
}

/** Checks an HTTP header name (a token); returns it in lower case. */
export function parseHeaderName(input: string): Parsed<string> {
  if (!TOKEN.test(input)) return fail(`"${input}" is not a valid header name`);
  return ok(input.toLowerCase());
}

/** Label names Spooky's own custom-metric series already use (plus Prometheus' reserved `le`). */
export const RESERVED_LABEL_NAMES: readonly string[] = ['pool', 'route', 'status_class', 'le'];

/** Checks a custom metric label name: a Prometheus label name that is not reserved. */
export function parseLabelName(input: string): Parsed<string> {
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(input))
    return fail(`"${input}" is not a valid metric label name (letters, digits and _, not starting with a digit)`);
  if (input.startsWith('__')) return fail(`label names starting with "__" are reserved by Prometheus`);
  if (RESERVED_LABEL_NAMES.includes(input)) return fail(`"${input}" is already a label of the custom metrics; choose another name`);
  return ok(input);
}

/** Checks where a custom metric label comes from: `request_header:NAME`, `response_header:NAME` or `route_tag:KEY`. */
export function parseLabelSource(input: string): Parsed<LabelSource> {
  const colon = input.indexOf(':');
  const kind = colon > 0 ? input.slice(0, colon) : '';
  const name = input.slice(colon + 1);
  if (kind === 'request_header' || kind === 'response_header') {
    const h = parseHeaderName(name);
    return h.ok ? ok({ kind, name: h.value }) : fail(`\`${kind}:\` needs a header name: ${h.message}`);
  }
  if (kind === 'route_tag') {
    if (name.length === 0) return fail('`route_tag:` needs a tag name, e.g. "route_tag:api_version"');
    return ok({ kind, name });
  }
  return fail(`unknown label source "${input}"; expected request_header:NAME, response_header:NAME or route_tag:KEY`);
}

/** Checks an HTTP method (a token); returns it in upper case. */
export function parseMethod(input: string): Parsed<string> {
  if (!TOKEN.test(input)) return fail(`"${input}" is not a valid HTTP method`);
  return ok(input.toUpperCase());
}

/** Checks a URL path used for matching or probing: starts with `/`, no whitespace, no `?` or `#`. */
export function parsePath(input: string): Parsed<string> {
  if (!input.startsWith('/')) return fail(`the path "${input}" must start with "/"`);
  if (/[\s?#]/.test(input)) return fail(`the path "${input}" must not contain whitespace, "?" or "#"`);
  // What the request normaliser refuses could never match a request: malformed escapes, %00, control characters.
  if (/%(?![0-9A-Fa-f]{2})/.test(input)) return fail(`the path "${input}" has a malformed percent-escape (write "%25" for a literal "%")`);
  if (input.includes('%00') || hasControlChar(input)) return fail(`the path "${input}" must not contain NUL or control characters`);
  return ok(input);
}

/**
 * A path a route rewrites requests to: a {@link parsePath} path written the way the request normaliser writes
 * paths (see `proxy/request-target.ts`), so the backend only ever gets normalised paths: no `//`, `.` or `..`
 * segments (also not as `%2e`), escapes of unreserved characters decoded and others in upper case, characters
 * not allowed raw percent-encoded. A path that differs is refused with its normalised spelling.
 */
export function parseRewritePath(input: string): Parsed<string> {
  const p = parsePath(input);
  if (!p.ok) return p;
  const n = normalisePath(input);
  if (typeof n !== 'string') return fail(`the path "${input}": ${n.error}`);
  if (n !== input) return fail(`the path "${input}" is not in normalised form; write "${n}" (no "//", "." or ".." segments, unreserved characters unescaped, others percent-encoded)`);
  return ok(input);
}

/** A header value a route sets or adds: visible ASCII, spaces and tabs, no leading or trailing whitespace. */
export function parseHeaderValue(input: string): Parsed<string> {
  if (!/^[\t\x20-\x7e]*$/.test(input)) return fail('a header value must be visible ASCII, spaces and tabs (no CR, LF or other control characters)');
  if (input !== input.trim()) return fail('a header value must not start or end with whitespace');
  return ok(input);
}

/** True when `s` has a control character (U+0000..U+001F or U+007F). */
function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** Checks a regular expression source and compiles it. */
export function parseRegex(input: string): Parsed<RegExp> {
  try {
    return ok(new RegExp(input));
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^Invalid regular expression: /, '') : String(e);
    return fail(`invalid regular expression: ${why}`);
  }
}

/** Accepted spellings of the `client_ip` hash key source besides `client_ip` itself. */
const CLIENT_IP_NAMES = new Set(['client_ip', 'client-ip', 'ip']);

/**
 * Parses a consistent-hash key: `client_ip` (also `client-ip`, `ip`), `path`, `authority` (also
 * `host`), `method`, `header:NAME`, `cookie:NAME`, `query:NAME`. Header names are lower-cased.
 */
export function parseHashKey(input: string): Parsed<HashKeySource> {
  const s = input.trim();
  if (CLIENT_IP_NAMES.has(s)) return ok({ kind: 'client_ip' });
  if (s === 'path') return ok({ kind: 'path' });
  if (s === 'authority' || s === 'host') return ok({ kind: 'authority' });
  if (s === 'method') return ok({ kind: 'method' });
  const colon = s.indexOf(':');
  if (colon > 0) {
    const kind = s.slice(0, colon);
    const name = s.slice(colon + 1);
    if (kind === 'header') {
      if (name.length === 0) return fail('`header:` needs a header name, e.g. "header:x-user-id"');
      const h = parseHeaderName(name);
      return h.ok ? ok({ kind: 'header', name: h.value }) : h;
    }
    if (kind === 'cookie') {
      if (!TOKEN.test(name)) return fail(`"${name}" is not a valid cookie name`);
      return ok({ kind: 'cookie', name });
    }
    if (kind === 'query') {
      if (name.length === 0) return fail('`query:` needs a parameter name, e.g. "query:user"');
      return ok({ kind: 'query', name });
    }
  }
  return fail(`unknown hash key "${input}"; expected client_ip, header:NAME, cookie:NAME, query:NAME, path, authority or method`);
}

/**
 * Parses an expected-status specification into an inclusive range: a number (`200`), a string with one
 * status (`"204"`), a range (`"200-399"`) or a class (`"2xx"`). Statuses must lie in 100..599.
 */
export function parseStatusRange(input: string | number): Parsed<[number, number]> {
  let lo: number;
  let hi: number;
  if (typeof input === 'number') {
    lo = input;
    hi = input;
  } else {
    const s = input.trim().toLowerCase();
    let m: RegExpExecArray | null;
    if ((m = /^([0-9]{3})$/.exec(s))) {
      lo = Number(m[1]);
      hi = lo;
    } else if ((m = /^([0-9]{3})\s*-\s*([0-9]{3})$/.exec(s))) {
      lo = Number(m[1]);
      hi = Number(m[2]);
    } else if ((m = /^([1-5])xx$/.exec(s))) {
      lo = Number(m[1]) * 100;
      hi = lo + 99;
    } else {
      return fail(`invalid status range "${input}"; expected a status like "200", a range like "200-399" or a class like "2xx"`);
    }
  }
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 100 || hi > 599 || lo > 599 || hi < 100) {
    return fail(`status ${lo === hi ? lo : `${lo}-${hi}`} is outside 100..599`);
  }
  if (lo > hi) return fail(`status range "${input}" is reversed; the lower bound must come first`);
  return ok([lo, hi]);
}

/** Whether an IP address (v4 or v6, no brackets) is a loopback address. */
export function isLoopback(address: string): boolean {
  if (address === 'localhost') return true;
  if (isIPv4(address)) return address.startsWith('127.');
  if (isIPv6(address)) return address === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(address);
  return false;
}

/**
 * Whether two bind addresses can hold the same port at once only by sharing it: equal, either a wildcard
 * (`0.0.0.0` or `::`, which on Linux also takes IPv4), or `localhost` and `127.0.0.1` (what Bun binds it to).
 */
export function bindAddressesOverlap(a: string, b: string): boolean {
  const wild = (x: string) => x === '0.0.0.0' || x === '::';
  if (a === b || wild(a) || wild(b)) return true;
  // Bun binds `localhost` to one address, 127.0.0.1 (not every loopback address).
  return (a === 'localhost' && b === '127.0.0.1') || (b === 'localhost' && a === '127.0.0.1');
}

/** Checks a bind address: an IPv4 or IPv6 literal (no brackets), or `localhost`. */
export function parseBindAddress(input: string): Parsed<string> {
  if (input === 'localhost' || isIP(input) !== 0) return ok(input);
  if (input.startsWith('[') && input.endsWith(']') && isIPv6(input.slice(1, -1))) return ok(input.slice(1, -1));
  return fail(`"${input}" is not an IP address to bind to (e.g. "0.0.0.0", "127.0.0.1", "::")`);
}

/**
 * Restricted Damerau-Levenshtein (optimal string alignment) distance: insertions, deletions,
 * substitutions and transpositions of neighbours each cost 1.
 */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  let prev2: number[] = [];
  let prev: number[] = Array.from({ length: m + 1 }, (_, j) => j);
  for (let i = 1; i <= n; i++) {
    const cur: number[] = [i];
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (prev2[j - 2] ?? 0) + 1);
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[m] ?? 0;
}

/**
 * The closest candidate to `word` when it is close enough to be a likely typo: compared case-, `-`/`_`-
 * insensitively; at most 1 edit for words up to 4 characters, 2 up to 8, 3 beyond. Undefined otherwise.
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/-/g, '_');
  const w = norm(word);
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(w, norm(c));
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = w.length <= 4 ? 1 : w.length <= 8 ? 2 : 3;
  return bestD <= limit ? best : undefined;
}
