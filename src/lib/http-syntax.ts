/**
 * Small pieces of HTTP and URL syntax shared by the request path, the upstream HTTP/1.1 client and the
 * address parsers: tokens (RFC 9110 §5.6.2), `Content-Length` values (§8.6) and hexadecimal digits.
 */

/** tchar lookup (RFC 9110 §5.6.2): 1 for characters allowed in a token. */
export const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

/** True when `s` is a non-empty RFC 9110 token (a field name or a method). */
export function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * Parses a `Content-Length` value: 1*DIGIT, or a comma-separated list of identical values (RFC 9110 §8.6),
 * each trimmed of spaces and tabs and at most `maxDigits` significant digits (default 16; leading zeros are allowed).
 * @returns the length, or -1 when it is invalid, its elements differ, or it exceeds `Number.MAX_SAFE_INTEGER`.
 */
export function parseContentLength(v: string, maxDigits = 16): number {
  let result = -1;
  let start = 0;
  const n = v.length;
  for (let i = 0; i <= n; i++) {
    if (i < n && v.charCodeAt(i) !== 44) continue;
    let a = start;
    let b = i;
    while (a < b && (v.charCodeAt(a) === 32 || v.charCodeAt(a) === 9)) a++;
    while (b > a && (v.charCodeAt(b - 1) === 32 || v.charCodeAt(b - 1) === 9)) b--;
    if (a === b) return -1;
    // Leading zeros are digits too (1*DIGIT): only the significant ones count against maxDigits.
    let z = a;
    while (z < b - 1 && v.charCodeAt(z) === 48) z++;
    if (b - z > maxDigits) return -1;
    let x = 0;
    for (let k = a; k < b; k++) {
      const c = v.charCodeAt(k);
      if (c < 48 || c > 57) return -1;
      x = x * 10 + (c - 48);
    }
    if (x > Number.MAX_SAFE_INTEGER) return -1;
    if (result >= 0 && x !== result) return -1;
    result = x;
    start = i + 1;
  }
  return result;
}

/** The value of a hexadecimal digit's char code, or -1 when it is not one. */
export function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** Methods that RFC 9110 defines as idempotent: sending them twice has the effect of sending them once. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Hop-by-hop headers: removed by the proxy in both directions, and refused as names of a route's header rules. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'trailer',
  'http2-settings',
]);
