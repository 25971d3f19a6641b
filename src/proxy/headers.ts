/**
 * Header hygiene between the client and the backend: what is removed, what is added, and whom to believe.
 *
 * Request side ({@link buildUpstreamHeaders}), choices documented for the README:
 * - **Hop-by-hop** headers are removed: RFC 9110 §7.6.1's `connection`, `keep-alive`, `proxy-connection`, `te`,
 *   `transfer-encoding`, `upgrade`; also `proxy-authorization` and `proxy-authenticate` (credentials meant for a
 *   forward proxy must not leak to a backend) and `trailer` (Spooky forwards no trailers, so announcing them
 *   would be a lie), `http2-settings` (RFC 9113 §3.2.1: for its one connection only); and every header named
 *   in `Connection`. Names Spooky manages itself (`host`,
 *   `content-length`, `x-forwarded-*`, `forwarded`, `via`, `x-request-id`) are always computed from the
 *   incoming values even when `Connection` names them, so a client cannot use `Connection` to strip them.
 * - **Other forwarding claims** (`x-forwarded-port`, `x-forwarded-prefix`, any other `x-forwarded-*`,
 *   `x-real-ip`, `true-client-ip`, `x-client-ip`, `client-ip`, `x-original-forwarded-for`) pass only from a
 *   trusted proxy; from anyone else they are removed, so a backend that believes them cannot be fooled.
 * - **Underscore spellings** of the names above (`x_forwarded_for`, `x_real_ip`, `x_request_id`, ...) are
 *   removed from everyone: CGI, WSGI and PHP read `X_Forwarded_For` and `X-Forwarded-For` as the same variable,
 *   so passing the underscore form would let a client forge what the backend takes for ours (nginx drops every
 *   header with an underscore for the same reason).
 * - **Pseudo-headers** (`:path` ...) that leak into the header list are dropped.
 * - **Malformed fields reject the request (400)**: a name that is not an RFC 9110 token, or a value containing
 *   CR, LF or NUL. Dropping them silently could change what the request means. (Other control characters
 *   pass, as RFC 9110 allows a recipient to keep them.)
 * - **`content-length`** is removed (the upstream transport frames the body) and returned as `contentLength`
 *   when valid: digits only, at most `Number.MAX_SAFE_INTEGER`; a list of identical values (`5, 5`) is one
 *   value; differing values or non-digits → 400. When `transfer-encoding` is also present, `contentLength`
 *   is left undefined (RFC 9112 §6.3: transfer coding wins).
 * - **Host** per the pool's host policy: `pass-through` → the client's authority as sent; `rewrite` → the
 *   policy's host (falling back to the client's authority if none is set); `upstream` → `backendAuthority`.
 * - **Trust** is decided once, for the direct peer (`trusted(clientIp)`):
 *   - `X-Forwarded-For`: trusted peer → the incoming chain plus `, <peer>`; otherwise just `<peer>`.
 *   - `X-Forwarded-Proto` / `X-Forwarded-Host`: a trusted peer's incoming values are kept; otherwise (or when
 *     absent) they are set to `https` and the original authority.
 *   - `Forwarded` (RFC 7239): trusted peer → incoming elements plus ours; otherwise only ours. Ours is
 *     `for=<peer>;proto=https;host=<authority>`; IPv6 is quoted and bracketed (`for="[2001:db8::1]"`), and
 *     `host` is quoted when it is not a token (it has a port or is an IPv6 literal).
 *   - `x-request-id`: a trusted peer's value is kept when it is 1..128 characters of `A-Z a-z 0-9 - _ . : + / =`;
 *     otherwise the generated `requestId` is used. The one used is returned as `requestId`.
 * - **Via** is appended to (never replaces) the incoming `Via`, whoever sent it.
 * - IPv4-mapped peers (`::ffff:10.0.0.1`, as dual-stack sockets report them) are written as plain IPv4.
 * - Order of the result: `host` first, then the kept client headers in their order, then the Spooky-managed
 *   headers.
 *
 * Response side ({@link sanitizeResponseHeaders}): hop-by-hop headers (same list) and those named in the
 * response's `Connection` are removed, as is the backend's `alt-svc` (Spooky's own applies); `set-cookie`
 * stays one entry per cookie; `content-length` is kept (HEAD and 304 need it); fields with an invalid name or
 * a CR/LF/NUL value are dropped (the backend is at fault, not the client); `Via` is appended.
 */

import type { HostPolicyConfig } from '../config/types.ts';
import { canonicalIp, unmapIPv4 } from '../lib/cidr.ts';
import { HOP_BY_HOP, isToken, parseContentLength } from '../lib/http-syntax.ts';
import type { FieldRecord, HeaderLookup } from '../lib/request-fields.ts';
import { checkFieldValue } from '../upstream/http1-parser.ts';

export { isToken, parseContentLength };

/**
 * The request headers as {@link buildUpstreamHeaders} reads them: a `Headers` (names lower case, repeated fields
 * joined). `toJSON()` gives them all in one native call (a third of the cost of iterating a `Headers`); only
 * `set-cookie` comes as a list there.
 */
export type HeaderSource = Pick<HeaderLookup, 'get'> & { toJSON(): FieldRecord };

/** Everything {@link buildUpstreamHeaders} needs to know about one request. */
export interface UpstreamHeaderInput {
  /** The client's request headers (a `Headers`). */
  headers: HeaderSource;
  /** The direct peer's IP address (the TCP/UDP peer, not a forwarded one). */
  clientIp: string;
  /** The scheme the client used towards Spooky. */
  listenerProto: 'https';
  /** The Host/`:authority` the client sent (validated; see `parseRequestTarget`). */
  authority: string;
  /** Routing host (lower case, no port). Informational: header values use `authority`. */
  host?: string;
  /** The pool's Host header policy. */
  hostPolicy: HostPolicyConfig;
  /** `host:port` of the chosen backend (used by the `upstream` host policy). */
  backendAuthority: string;
  /** Whether an address belongs to a trusted proxy (see `compileTrust`). */
  trusted: (ip: string) => boolean;
  /** This hop's Via entry: received protocol version and pseudonym, e.g. `3 spooky`. */
  via: string;
  /** A freshly generated request id, used unless a trusted peer sent a sane one. */
  requestId: string;
}

/** The result of {@link buildUpstreamHeaders}. */
export type UpstreamHeaderResult =
  | {
      ok: true;
      /** Header list for the upstream request (names lower case). */
      headers: [string, string][];
      /** The declared body length, when the client sent a valid `content-length` (and no transfer coding). */
      contentLength?: number;
      /** The request id that was forwarded. */
      requestId: string;
      /** Size of the client's header section: names + values + 4 per field (for the 431 limit). */
      headerBytes: number;
    }
  | { ok: false; code: 'bad_request'; reason: string };

// RFC 9110 tchar: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~
// Characters allowed in a forwarded x-request-id.
const RID = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  RID[c] = alnum || '-_.:+/='.includes(String.fromCharCode(c)) ? 1 : 0;
}

/** Whether a field value contains CR, LF or NUL (native searches: fast on long values such as cookies). */
export function hasForbiddenValueChar(v: string): boolean {
  return v.indexOf('\n') !== -1 || v.indexOf('\r') !== -1 || v.indexOf('\0') !== -1;
}

/**
 * The id of a request: the `x-request-id` a trusted proxy sent (`incoming`, when it passes
 * {@link isSaneRequestId}), else `generated()`. The access record, error answers, body samples, spans and the
 * forwarded header all carry this one id.
 */
export function requestIdOf(incoming: string | null, peer: string, trusted: (ip: string) => boolean, generated: () => string): string {
  return incoming !== null && peer.length > 0 && isSaneRequestId(incoming) && trusted(peer) ? incoming : generated();
}

/** Whether `v` may be forwarded as a client-supplied `x-request-id` (1..128 chars of `A-Za-z0-9-_.:+/=`). */
export function isSaneRequestId(v: string): boolean {
  const n = v.length;
  if (n === 0 || n > 128) return false;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c >= 128 || RID[c] === 0) return false;
  }
  return true;
}

/** Lower-cased, trimmed, non-empty tokens of a comma-separated header value (`Connection`, `Upgrade`), appended to `into`. */
export function connectionTokens(value: string, into: string[]): void {
  let start = 0;
  const n = value.length;
  for (let i = 0; i <= n; i++) {
    if (i === n || value.charCodeAt(i) === 44) {
      const t = value.slice(start, i).trim().toLowerCase();
      if (t.length > 0) into.push(t);
      start = i + 1;
    }
  }
}

/**
 * `headers` for one attempt on a backend at `authority`: with the `upstream` host policy the `host` field names
 * that backend (the backend is known only per attempt); otherwise `headers` as they are.
 */
export function hostForAttempt(headers: [string, string][], policy: HostPolicyConfig, authority: string): [string, string][] {
  if (policy.mode !== 'upstream') return headers;
  return headers.map((h): [string, string] => (h[0] === 'host' ? ['host', authority] : h));
}

/** A `Forwarded` node for an address: IPv4 bare, IPv6 quoted and bracketed, unknown for anything else. */
export function forwardedNode(ip: string): string {
  if (ip.length === 0) return 'unknown';
  if (ip.indexOf(':') >= 0) return `"[${ip}]"`;
  return ip;
}

function forwardedValue(s: string): string {
  if (isToken(s)) return s;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    out += c === '"' || c === '\\' ? `\\${c}` : c;
  }
  return `${out}"`;
}

function fail(reason: string): UpstreamHeaderResult {
  return { ok: false, code: 'bad_request', reason };
}

/**
 * Builds the header list for the upstream request from the client's headers (rules at the top of this file).
 * @returns the headers, the declared content length and the forwarded request id; or a 400 reason.
 */
export function buildUpstreamHeaders(input: UpstreamHeaderInput): UpstreamHeaderResult {
  const incoming = input.headers;
  const peer = unmapIPv4(input.clientIp);
  const trustedPeer = peer.length > 0 && input.trusted(peer);

  let nominated: string[] | undefined;
  const conn = incoming.get('connection');
  if (conn !== null) {
    nominated = [];
    connectionTokens(conn, nominated);
    if (nominated.length === 0) nominated = undefined;
  }

  let host: string;
  const policy = input.hostPolicy;
  if (policy.mode === 'rewrite') host = policy.host ?? input.authority;
  else if (policy.mode === 'upstream') host = input.backendAuthority;
  else host = input.authority;
  const out: [string, string][] = [['host', host]];

  let xff: string | null = null;
  let xfp: string | null = null;
  let xfh: string | null = null;
  let fwd: string | null = null;
  let via: string | null = null;
  let rid: string | null = null;
  let cl: string | null = null;
  let chunked = false;
  let headerBytes = 0;

  const fields = incoming.toJSON();
  for (const name in fields) {
    const value = fields[name] as string | string[];
    if (typeof value !== 'string') {
      // Only set-cookie comes as a list: meaningless in a request, but forwarded field by field as received
      // (none of the rules below but a Connection nomination applies to it).
      if (nominated?.includes(name)) continue;
      if (!isToken(name)) return fail('invalid header name');
      for (const v of value) {
        headerBytes += name.length + v.length + 4;
        if (hasForbiddenValueChar(v)) return fail(`CR, LF or NUL in header ${name}`);
        out.push([name, v]);
      }
      continue;
    }
    headerBytes += name.length + value.length + 4;
    if (name.charCodeAt(0) === 58) continue; // pseudo-header
    if (!isToken(name)) return fail('invalid header name');
    if (hasForbiddenValueChar(value)) return fail(`CR, LF or NUL in header ${name}`);
    switch (name) {
      case 'host':
        continue;
      case 'content-length':
        cl = value;
        continue;
      case 'transfer-encoding':
        chunked = true;
        continue;
      case 'x-forwarded-for':
        xff = value;
        continue;
      case 'x-forwarded-proto':
        xfp = value;
        continue;
      case 'x-forwarded-host':
        xfh = value;
        continue;
      case 'forwarded':
        fwd = value;
        continue;
      case 'via':
        via = value;
        continue;
      case 'x-request-id':
        rid = value;
        continue;
    }
    if (HOP_BY_HOP.has(name)) continue;
    if (nominated?.includes(name)) continue;
    if (name.indexOf('_') >= 0 && isManagedOrClaim(name.replaceAll('_', '-'))) continue;
    // Other client-address and forwarding claims (`x-real-ip`, `true-client-ip`, `x-forwarded-port`,
    // `x-forwarded-prefix`, ...) are believed only from a trusted proxy, like the ones Spooky sets itself.
    if (!trustedPeer && isForwardingClaim(name)) continue;
    out.push([name, value]);
  }

  let contentLength: number | undefined;
  if (cl !== null) {
    const n = parseContentLength(cl);
    if (n < 0) return fail('invalid content-length');
    if (!chunked) contentLength = n;
  }

  out.push(['x-forwarded-for', trustedPeer && xff !== null && xff.length > 0 ? `${xff}, ${peer}` : peer]);
  out.push(['x-forwarded-proto', trustedPeer && xfp !== null && xfp.length > 0 ? xfp : input.listenerProto]);
  out.push(['x-forwarded-host', trustedPeer && xfh !== null && xfh.length > 0 ? xfh : input.authority]);
  const element = `for=${forwardedNode(peer)};proto=${input.listenerProto};host=${forwardedValue(input.authority)}`;
  out.push(['forwarded', trustedPeer && fwd !== null && fwd.length > 0 ? `${fwd}, ${element}` : element]);
  out.push(['via', via !== null && via.length > 0 ? `${via}, ${input.via}` : input.via]);
  const requestId = trustedPeer && rid !== null && isSaneRequestId(rid) ? rid : input.requestId;
  out.push(['x-request-id', requestId]);

  return contentLength === undefined
    ? { ok: true, headers: out, requestId, headerBytes }
    : { ok: true, headers: out, contentLength, requestId, headerBytes };
}

/** Forwarding headers Spooky does not set but backends may believe: dropped unless the peer is a trusted proxy. */
const FORWARDING_CLAIMS: ReadonlySet<string> = new Set(['x-real-ip', 'true-client-ip', 'x-client-ip', 'x-original-forwarded-for', 'client-ip']);

/** True for a forwarding claim a client could spoof: any other `x-forwarded-*`, or one of {@link FORWARDING_CLAIMS}. */
function isForwardingClaim(name: string): boolean {
  return name.startsWith('x-forwarded-') || FORWARDING_CLAIMS.has(name);
}

/** True for a name Spooky sets itself (`x-request-id`, `x-forwarded-*`) or a forwarding claim. */
function isManagedOrClaim(name: string): boolean {
  return name === 'x-request-id' || isForwardingClaim(name);
}

/** Strips an optional port from an `X-Forwarded-For` element: `1.2.3.4:80` → `1.2.3.4`, `[::1]:80` → `::1`. */
function stripPort(e: string): string {
  if (e.charCodeAt(0) === 91) {
    const close = e.indexOf(']');
    return close > 0 ? e.slice(1, close) : e;
  }
  const colon = e.indexOf(':');
  if (colon > 0 && e.indexOf(':', colon + 1) < 0) return e.slice(0, colon); // IPv4:port (IPv6 has 2+ colons)
  return e;
}

/**
 * The real client address, for ip-hash, logs, rate limiting and `client_ips`. When the direct peer is a trusted
 * proxy, the `X-Forwarded-For` chain (or, without one, the `for=` nodes of `Forwarded`, RFC 7239) is walked from
 * right to left, skipping trusted addresses; the first untrusted one is the client. An element that is not an IP
 * address (`unknown`, an obfuscated `_name`, a `Forwarded` element without `for=`, garbage) stops the walk: the
 * last address walked (a trusted proxy, or the peer) is returned, since nothing left of it can be believed. If
 * every element is trusted, the leftmost one is returned. Elements may carry a port (`1.2.3.4:5`, `[::1]:5`).
 * Addresses are returned in canonical form (IPv4-mapped IPv6 as IPv4).
 * @param peerIp the direct TCP/UDP peer.
 * @param headers request headers (`x-forwarded-for`, else `forwarded`).
 * @param trusted the trusted-proxy predicate (see `compileTrust`).
 */
export function clientAddressFrom(peerIp: string, headers: { get(name: string): string | null }, trusted: (ip: string) => boolean): string {
  const peer = unmapIPv4(peerIp);
  if (!trusted(peer)) return peer;
  const xff = headers.get('x-forwarded-for');
  if (xff !== null) return walkChain(xffNodes(xff), peer, trusted);
  const forwarded = headers.get('forwarded');
  return forwarded === null ? peer : walkChain(forwardedFor(forwarded), peer, trusted);
}

/** The elements of an `X-Forwarded-For` value, leftmost first, trimmed; empty ones (`a, , b`) are no elements. */
function xffNodes(xff: string): string[] {
  const nodes: string[] = [];
  for (const part of xff.split(',')) {
    const node = part.trim();
    if (node.length > 0) nodes.push(node);
  }
  return nodes;
}

/**
 * Walks a forwarding chain (`nodes`, leftmost first) from the right, skipping trusted addresses: the first
 * untrusted one is the client; a node that is not an address stops the walk at the last one walked.
 */
function walkChain(nodes: readonly string[], peer: string, trusted: (ip: string) => boolean): string {
  let last = peer;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const addr = canonicalIp(stripPort(nodes[i] as string));
    if (addr === null) return last;
    if (!trusted(addr)) return addr;
    last = addr;
  }
  return last;
}

/**
 * The `for=` node of each element of a `Forwarded` value (RFC 7239 section 4), leftmost first, unquoted; `''` for
 * an element without one. Commas and semicolons inside quoted strings do not split.
 */
export function forwardedFor(value: string): string[] {
  const nodes: string[] = [];
  let node = '';
  let name = '';
  let token = '';
  let inName = true;
  let quoted = false;
  /** The element has anything but blanks (a doubled or trailing comma leaves one that is no element). */
  let content = false;
  const endPair = (): void => {
    if (name.trim().toLowerCase() === 'for') node = token.trim();
    name = '';
    token = '';
    inName = true;
  };
  const endElement = (): void => {
    endPair();
    if (content) nodes.push(node);
    node = '';
    content = false;
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (quoted) {
      if (c === '\\' && i + 1 < value.length) token += value[++i];
      else if (c === '"') quoted = false;
      else token += c;
      continue;
    }
    if (c === ',') {
      endElement();
      continue;
    }
    if (c !== ' ' && c !== '\t') content = true;
    if (c === '"' && !inName) quoted = true;
    else if (c === '=' && inName) inName = false;
    else if (c === ';') endPair();
    else if (inName) name += c;
    else token += c;
  }
  endElement();
  return nodes;
}

/** Options of {@link sanitizeResponseHeaders}. */
export interface ResponseHeaderOptions {
  /** This hop's Via entry, e.g. `1.1 spooky` (the protocol the response was received with). */
  via: string;
}

/**
 * Cleans a backend's response headers for the client (rules at the top of this file).
 * @param headers the backend's response headers as a list (names in any case; one entry per field line).
 * @returns a `Headers` ready for `new Response(...)`; `set-cookie` entries stay separate.
 */
export function sanitizeResponseHeaders(headers: readonly (readonly [string, string])[], opts: ResponseHeaderOptions): Headers {
  let nominated: string[] | undefined;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as readonly [string, string];
    if (h[0].length === 10 && h[0].toLowerCase() === 'connection') {
      nominated ??= [];
      connectionTokens(h[1], nominated);
    }
  }
  const out = new Headers();
  let via: string | undefined;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as readonly [string, string];
    const name = h[0].toLowerCase();
    const value = h[1];
    if (name.charCodeAt(0) === 58) continue;
    if (HOP_BY_HOP.has(name) || name === 'alt-svc') continue;
    if (nominated?.includes(name)) continue;
    // Control characters other than HTAB (RFC 9110 section 5.5) are dropped with their field, whichever backend
    // protocol sent them: an HTTP/1.1 client would refuse the whole response.
    if (!isToken(name) || checkFieldValue(value) < 0) continue;
    if (name === 'via') {
      via = via === undefined ? value : `${via}, ${value}`;
      continue;
    }
    out.append(name, value);
  }
  out.set('via', via === undefined || via.length === 0 ? opts.via : `${via}, ${opts.via}`);
  return out;
}
