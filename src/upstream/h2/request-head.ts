/**
 * Turns an {@link UpstreamRequest} into an HTTP/2 request header block (RFC 9113 §8.3.1): pseudo-headers first
 * (`:authority` from the `host` header, else the backend's host:port), connection-specific fields dropped
 * (§8.2.2; `te` only as `trailers`), names lower-cased, and every name and value checked, so a field HTTP/2
 * cannot carry fails this one request instead of the connection.
 *
 * Checking and encoding are separate steps: {@link requestFields} only checks and collects, and the session encodes
 * the list when it writes the HEADERS frame, so a request that fails a check never touches the connection's
 * HPACK state and blocks are encoded in the order they are sent.
 */
import { TCHAR } from '../../lib/http-syntax.ts';
import { checkFieldValue } from '../http1-parser.ts';
import type { UpstreamRequest } from '../transport.ts';

/** Connection-specific header fields that HTTP/2 forbids (RFC 9113 §8.2.2), plus the framing ones we set. */
const FORBIDDEN_H2_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'content-length',
]);

/** The name lower-cased when it is a valid token (RFC 9110 §5.6.2), else undefined. */
function checkedName(name: string): string | undefined {
  const n = name.length;
  if (n === 0) return undefined;
  let upper = false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return undefined;
    if (c >= 65 && c <= 90) upper = true;
  }
  return upper ? name.toLowerCase() : name;
}

/** True when `value` holds only HTAB, visible ASCII, SP and obs-text (no NUL, CR, LF or other controls). */
function validValue(value: string): boolean {
  return checkFieldValue(value) >= 0;
}

/**
 * Fills `out` (emptied first) with the request's HTTP/2 header fields as `[name, value, ...]`, pseudo-headers
 * first, names lower-case. Returns undefined, or the reason the request cannot be sent over HTTP/2 (then `out`
 * holds garbage).
 */
export function requestFields(req: UpstreamRequest, scheme: string, defaultAuthority: string, out: string[]): string | undefined {
  out.length = 0;
  const headers = req.headers;
  let authority = defaultAuthority;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as [string, string];
    if (h[0] === 'host') {
      authority = h[1];
      break;
    }
  }
  if (!validValue(authority)) return 'invalid host header';
  if (!validValue(req.target) || req.target.includes(' ')) return 'invalid request target';
  out.push(':method', req.method);
  out.push(':scheme', scheme);
  out.push(':authority', authority);
  out.push(':path', req.target);
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as [string, string];
    const rawName = h[0];
    const value = h[1];
    if (rawName === 'host' || rawName.charCodeAt(0) === 58 /* ':' */ || FORBIDDEN_H2_HEADERS.has(rawName)) continue;
    const name = checkedName(rawName);
    if (name === undefined) return `invalid header name ${JSON.stringify(rawName)}`;
    if (name !== rawName && (name === 'host' || FORBIDDEN_H2_HEADERS.has(name))) continue;
    if (name === 'te' && value.toLowerCase() !== 'trailers') continue;
    if (!validValue(value)) return `invalid value of header ${name}`;
    out.push(name, value);
  }
  if (req.contentLength !== undefined) out.push('content-length', String(req.contentLength));
  return undefined;
}
