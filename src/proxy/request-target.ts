/**
 * Request target and authority normalisation: turns what Bun hands the handler (`req.url` plus the `host`
 * header) into the host and path Spooky routes on and the origin-form target it sends upstream.
 *
 * Why: `req.url` is not a trustworthy routing input. Bun builds it from the Host header for most requests
 * (`https://<host lower-cased>/path`), but an HTTP/3 absolute-form `:path` becomes `req.url` verbatim, a request
 * without an authority gets a relative `req.url`, and `OPTIONS *` gives `"*"`.
 *
 * Choices (documented for the README):
 * - **Host** comes from the `host` header (`:authority` arrives as `host`), never from `req.url`. Missing or
 *   invalid → 400. Accepted: a DNS-style reg-name (letters, digits, `-`, `_`, `.`; non-empty labels; at most
 *   253 characters; one trailing dot is dropped), a strict dotted-quad IPv4, or a bracketed IPv6 literal
 *   (no zone, no IPvFuture); each with an optional port 1..65535 (an empty `host:` port is refused). This is
 *   stricter than RFC 3986 reg-name: percent-encoding, sub-delims, userinfo (`@`), spaces, commas (two Host
 *   headers joined) and control characters are all refused. A name whose last label is all digits must be a
 *   valid IPv4 address. The routing `host` is lower case without the port; IPv6 is canonical RFC 5952 text in
 *   brackets (`[2001:db8::1]`). `authority` is the header value exactly as sent.
 * - **Absolute-form** (`https://a.example/x`): only its path and query are used. Its authority must name the same
 *   host and port as the Host header (case-insensitive; a missing port is the scheme's default, 443 for
 *   `https`, 80 for `http`; IPv6 compared by value), otherwise 400 (`bad_request`), because the two disagree
 *   about which site is meant. Userinfo in it → 400. Bun's own `req.url` (always absolute, built from Host)
 *   passes this check.
 * - **`*`** is accepted only for OPTIONS (when the method is given): path and target are `*`.
 * - **Path**, one pass, for routing *and* forwarding (the backend sees exactly what was routed):
 *   - must start with `/`; a fragment (`#`) is refused (400): a request target never carries one;
 *   - percent-encoded unreserved characters are decoded (`%41` → `A`, `%7e` → `~`, `%2E` → `.`); every other
 *     escape keeps its encoding with upper-case hex (`%2f` → `%2F`); a malformed escape (`%zz`, `%4`) → 400;
 *   - `%00` → 400; raw control characters (0x00-0x1F, 0x7F) and raw spaces → 400;
 *   - `%2F` stays encoded and is **not** a segment separator (`/a%2F..%2Fb` is one segment), nor is `\`;
 *   - other characters not allowed raw in a path (`"<>\^`{|}` and non-ASCII) are percent-encoded (UTF-8),
 *     so each path has exactly one spelling. (Bun already turns a raw `\` into `/` when it builds `req.url`
 *     from the Host header, as WHATWG URL parsing does; Spooky itself never treats `\` as a separator.)
 *   - consecutive slashes are **merged** (`//a///b` → `/a/b`), as nginx does by default: otherwise `//admin`
 *     would not match a route for `/admin` yet many backends treat it as `/admin`;
 *   - `.` and `..` segments (also spelled `%2e`, `.%2E`, ...) are resolved as RFC 3986 §5.2.4 does; `..` at the
 *     root stays at the root (`/../../etc` → `/etc`), it never escapes it. A trailing `.`/`..` leaves a
 *     trailing slash (`/a/b/..` → `/a/`).
 * - **Query** is kept as sent (escapes are not touched: their meaning belongs to the application, and a signature
 *   or cache key over the raw query must see the client's bytes, as behind nginx and Envoy), except that raw
 *   control characters, spaces and `#` → 400 and non-ASCII characters are percent-encoded (UTF-8). Visible ASCII
 *   that RFC 3986 does not allow raw (`[]"<>\^`{|}`) is passed on too: browsers send it so. `rawQuery` includes
 *   the leading `?` (a bare `?` is kept), or is ''.
 * - Length limits are the caller's job.
 */

import { formatIPv6, parseIPv4, parseIPv6 } from '../lib/cidr.ts';
import { hexVal } from '../lib/http-syntax.ts';

/** The result of {@link parseRequestTarget}: the routing and forwarding view of a request, or why it is refused. */
export type RequestTarget =
  | {
      ok: true;
      /** Routing host: lower case, no port, no trailing dot; IPv6 as canonical `[...]`. */
      host: string;
      /** The Host header exactly as the client sent it (validated). */
      authority: string;
      /** Normalised path (or `*`). */
      path: string;
      /** The query including its leading `?`, or ''. */
      rawQuery: string;
      /** Origin-form target for the upstream request: `path + rawQuery` (or `*`). */
      target: string;
    }
  | { ok: false; code: 'bad_request' | 'misdirected_request'; reason: string };

/** A validated authority: routing host (see {@link RequestTarget}) and port (-1 when absent). */
export interface Authority {
  /** Lower case, no trailing dot; IPv6 canonical in brackets. */
  host: string;
  /** The explicit port, or -1 when none was given. */
  port: number;
}

// Character classes for the path scanner.
const C_PLAIN = 1; // allowed raw in a path segment: unreserved, sub-delims, ':' and '@'
const C_UNRESERVED = 2; // ALPHA / DIGIT / - . _ ~
const C_HOST = 8; // allowed in a reg-name here: ALPHA DIGIT - _ .
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  const unreserved = alnum || c === 45 || c === 46 || c === 95 || c === 126;
  const subDelim = "!$&'()*+,;=".includes(String.fromCharCode(c));
  const pchar = unreserved || subDelim || c === 58 || c === 64;
  let k = 0;
  if (pchar) k |= C_PLAIN;
  if (unreserved) k |= C_UNRESERVED;
  if (alnum || c === 45 || c === 95 || c === 46) k |= C_HOST;
  CLASS[c] = k;
}
const HEX = '0123456789ABCDEF';

function pctByte(b: number): string {
  return `%${HEX[b >> 4]}${HEX[b & 15]}`;
}

/** Percent-encodes one code point (UTF-8); lone surrogates become U+FFFD. Returns the encoded text and advances. */
function pctCodePoint(s: string, i: number): [string, number] {
  let cp = s.charCodeAt(i);
  let next = i + 1;
  if (cp >= 0xd800 && cp <= 0xdbff && next < s.length) {
    const lo = s.charCodeAt(next);
    if (lo >= 0xdc00 && lo <= 0xdfff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      next++;
    }
  }
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
  if (cp < 0x80) return [pctByte(cp), next];
  if (cp < 0x800) return [pctByte(0xc0 | (cp >> 6)) + pctByte(0x80 | (cp & 63)), next];
  if (cp < 0x10000) return [pctByte(0xe0 | (cp >> 12)) + pctByte(0x80 | ((cp >> 6) & 63)) + pctByte(0x80 | (cp & 63)), next];
  return [pctByte(0xf0 | (cp >> 18)) + pctByte(0x80 | ((cp >> 12) & 63)) + pctByte(0x80 | ((cp >> 6) & 63)) + pctByte(0x80 | (cp & 63)), next];
}

/**
 * Validates an authority (`host[:port]`) as described at the top of this file.
 * @returns the routing host and port, or null when it is not acceptable.
 */
export function parseAuthority(a: string): Authority | null {
  const len = a.length;
  if (len === 0) return null;
  let hostEnd = len;
  let host: string;
  if (a.charCodeAt(0) === 91) {
    const close = a.indexOf(']');
    if (close < 0) return null;
    const g = parseIPv6(a, 1, close);
    if (g === null) return null;
    host = `[${formatIPv6(g)}]`;
    hostEnd = close + 1;
    if (hostEnd < len && a.charCodeAt(hostEnd) !== 58) return null;
  } else {
    // reg-name or IPv4: scan once, checking characters and label shape
    let labelStart = 0;
    let lastLabelNumeric = true;
    let upper = false;
    for (let i = 0; i < len; i++) {
      const c = a.charCodeAt(i);
      if (c === 58) {
        hostEnd = i;
        break;
      }
      if (c >= 128 || ((CLASS[c] as number) & C_HOST) === 0) return null;
      if (c === 46) {
        if (i === labelStart) return null; // empty label
        if (i - labelStart > 63) return null;
        labelStart = i + 1;
        lastLabelNumeric = true;
      } else {
        if (c < 48 || c > 57) lastLabelNumeric = false;
        if (c >= 65 && c <= 90) upper = true;
      }
    }
    let end = hostEnd;
    if (end === 0) return null;
    if (a.charCodeAt(end - 1) === 46) {
      end--; // one trailing dot: the same name in absolute form
      if (end === 0 || a.charCodeAt(end - 1) === 46) return null;
      // the label before the dot decides numeric-ness
      lastLabelNumeric = true;
      for (let i = end - 1; i >= 0 && a.charCodeAt(i) !== 46; i--) {
        const c = a.charCodeAt(i);
        if (c < 48 || c > 57) {
          lastLabelNumeric = false;
          break;
        }
      }
    } else if (end - labelStart > 63) {
      return null;
    }
    if (end > 253) return null;
    if (lastLabelNumeric && parseIPv4(a, 0, end) < 0) return null;
    host = end === len ? a : a.slice(0, end);
    if (upper) host = host.toLowerCase();
  }
  let port = -1;
  if (hostEnd < len) {
    // a.charCodeAt(hostEnd) is ':'
    const digits = len - hostEnd - 1;
    if (digits < 1 || digits > 5) return null;
    port = 0;
    for (let i = hostEnd + 1; i < len; i++) {
      const c = a.charCodeAt(i);
      if (c < 48 || c > 57) return null;
      port = port * 10 + (c - 48);
    }
    if (port < 1 || port > 65535) return null;
  }
  return { host, port };
}

function fail(reason: string): RequestTarget {
  return { ok: false, code: 'bad_request', reason };
}

/**
 * Normalises a path as described at the top of this file.
 * @param s the string holding the path; the path is `s[start, end)` and must start with `/`.
 * @returns the normalised path, or an object with the reason it is refused.
 */
export function normalisePath(s: string, start = 0, end = s.length): string | { error: string } {
  return normaliseAt(s, start, end);
}

/** {@link normalisePath} without default parameters (they cost on the hot path). */
function normaliseAt(s: string, start: number, end: number): string | { error: string } {
  if (start >= end || s.charCodeAt(start) !== 47) return { error: 'path must start with /' };
  // Fast path: only plain characters, no empty segment, no dot segment → already normal.
  let segStart = start + 1;
  let plain = true;
  for (let i = start + 1; i <= end; i++) {
    const c = i === end ? 47 : s.charCodeAt(i);
    if (c === 47) {
      const n = i - segStart;
      if (i < end && n === 0) {
        plain = false; // '//'
        break;
      }
      if (n === 1 && s.charCodeAt(segStart) === 46) {
        plain = false;
        break;
      }
      if (n === 2 && s.charCodeAt(segStart) === 46 && s.charCodeAt(segStart + 1) === 46) {
        plain = false;
        break;
      }
      segStart = i + 1;
    } else if (c >= 128 || ((CLASS[c] as number) & C_PLAIN) === 0) {
      plain = false;
      break;
    }
  }
  if (plain) return start === 0 && end === s.length ? s : s.slice(start, end);
  return slowNormalise(s, start, end);
}

function slowNormalise(s: string, start: number, end: number): string | { error: string } {
  let out = ''; // always of the form ('/' segment)*
  const starts: number[] = []; // out-index of the '/' that begins each output segment
  let i = start + 1;
  for (;;) {
    // one segment: s[i, next '/' or end)
    let seg = '';
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c === 47) break;
      if (c === 37) {
        const h1 = i + 1 < end ? hexVal(s.charCodeAt(i + 1)) : -1;
        const h2 = i + 2 < end ? hexVal(s.charCodeAt(i + 2)) : -1;
        if (h1 < 0 || h2 < 0) return { error: 'malformed percent-encoding in path' };
        const b = h1 * 16 + h2;
        if (b === 0) return { error: '%00 in path' };
        seg += b < 128 && ((CLASS[b] as number) & C_UNRESERVED) !== 0 ? String.fromCharCode(b) : pctByte(b);
        i += 3;
        continue;
      }
      if (c < 128) {
        if (c < 32 || c === 127) return { error: 'control character in path' };
        if (c === 32) return { error: 'space in path' };
        if (c === 35) return { error: 'fragment in request target' };
        seg += ((CLASS[c] as number) & C_PLAIN) !== 0 ? s[i] : pctByte(c);
        i++;
        continue;
      }
      const [enc, next] = pctCodePoint(s, i);
      seg += enc;
      i = next;
    }
    const last = i >= end;
    if (seg === '..') {
      const p = starts.pop();
      if (p !== undefined) out = out.slice(0, p);
      if (last) out += '/';
    } else if (seg === '.') {
      if (last) out += '/';
    } else if (seg.length === 0) {
      if (last) out += '/'; // trailing slash kept; inner empty segments merged away
    } else {
      starts.push(out.length);
      out += `/${seg}`;
    }
    if (last) break;
    i++; // skip '/'
  }
  return out.length === 0 ? '/' : out;
}

function normaliseQuery(s: string, start: number, end: number): string | { error: string } {
  // s[start] is '?'
  let ok = true;
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 35) {
      ok = false;
      break;
    }
  }
  if (ok) return start === 0 && end === s.length ? s : s.slice(start, end);
  let out = '?';
  for (let i = start + 1; i < end; ) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      if (c < 32 || c === 127) return { error: 'control character in query' };
      if (c === 32) return { error: 'space in query' };
      if (c === 35) return { error: 'fragment in request target' };
      out += s[i];
      i++;
    } else {
      const [enc, next] = pctCodePoint(s, i);
      out += enc;
      i = next;
    }
  }
  return out;
}

function sameAuthority(a: Authority, b: Authority, defaultPort: number): boolean {
  return a.host === b.host && (a.port < 0 ? defaultPort : a.port) === (b.port < 0 ? defaultPort : b.port);
}

/**
 * Validates and normalises a request's target and authority (see the top of this file for every rule).
 * @param rawUrl `req.url` as Bun gives it: absolute (`https://host/path?q`), origin-form (`/path?q`) or `*`.
 * @param hostHeader the `host` header (`:authority` for HTTP/2 and HTTP/3), or null when absent.
 * @param method the request method; when given, `*` is accepted only for `OPTIONS`. When omitted, `*` is
 *   accepted and the caller must check the method.
 * @returns the routing host, validated authority, normalised path, raw query and upstream target; or a 400
 *   reason. (`misdirected_request` is reserved for callers that check the host against the listener.)
 */
export function parseRequestTarget(rawUrl: string, hostHeader: string | null, method?: string): RequestTarget {
  if (hostHeader === null || hostHeader.length === 0) return fail('missing Host');
  const auth = parseAuthority(hostHeader);
  if (auth === null) return fail('invalid Host');

  const len = rawUrl.length;
  if (len === 0) return fail('empty request target');
  let pathStart: number;
  const c0 = rawUrl.charCodeAt(0);
  if (c0 === 47) {
    pathStart = 0;
  } else if (c0 === 42 && len === 1) {
    if (method !== undefined && method !== 'OPTIONS') return fail('* target is only allowed for OPTIONS');
    return { ok: true, host: auth.host, authority: hostHeader, path: '*', rawQuery: '', target: '*' };
  } else {
    // absolute-form: scheme "://" authority [path-abempty] [? query]
    let i = 0;
    while (i < len) {
      const c = rawUrl.charCodeAt(i);
      const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
      if (alpha || (i > 0 && ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46))) i++;
      else break;
    }
    if (i === 0 || rawUrl.charCodeAt(i) !== 58 || rawUrl.charCodeAt(i + 1) !== 47 || rawUrl.charCodeAt(i + 2) !== 47) {
      return fail('request target is neither origin-form, absolute-form nor *');
    }
    const scheme = rawUrl.slice(0, i).toLowerCase();
    const defaultPort = scheme === 'https' ? 443 : scheme === 'http' ? 80 : -1;
    if (defaultPort < 0) return fail(`unsupported scheme ${scheme}`);
    const authStart = i + 3;
    let authEnd = authStart;
    while (authEnd < len) {
      const c = rawUrl.charCodeAt(authEnd);
      if (c === 47 || c === 63 || c === 35) break;
      authEnd++;
    }
    const urlAuthority = rawUrl.slice(authStart, authEnd);
    if (urlAuthority !== hostHeader) {
      if (urlAuthority.indexOf('@') >= 0) return fail('userinfo in request target');
      const ua = parseAuthority(urlAuthority);
      if (ua === null) return fail('invalid authority in request target');
      if (!sameAuthority(ua, auth, defaultPort)) return fail('request target authority differs from Host');
    }
    if (authEnd === len) return { ok: true, host: auth.host, authority: hostHeader, path: '/', rawQuery: '', target: '/' };
    pathStart = authEnd;
    if (rawUrl.charCodeAt(authEnd) === 35) return fail('fragment in request target');
    if (rawUrl.charCodeAt(authEnd) === 63) {
      // "https://host?q": empty path means "/"
      const q = normaliseQuery(rawUrl, authEnd, len);
      if (typeof q !== 'string') return fail(q.error);
      return { ok: true, host: auth.host, authority: hostHeader, path: '/', rawQuery: q, target: `/${q}` };
    }
  }

  const qm = rawUrl.indexOf('?', pathStart);
  const pathEnd = qm < 0 ? len : qm;
  const path = normaliseAt(rawUrl, pathStart, pathEnd);
  if (typeof path !== 'string') return fail(path.error);
  let rawQuery = '';
  if (qm >= 0) {
    const q = normaliseQuery(rawUrl, qm, len);
    if (typeof q !== 'string') return fail(q.error);
    rawQuery = q;
  }
  return { ok: true, host: auth.host, authority: hostHeader, path, rawQuery, target: rawQuery.length === 0 ? path : path + rawQuery };
}
