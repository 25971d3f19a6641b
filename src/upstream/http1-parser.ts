/**
 * HTTP/1.1 wire format for the upstream client (RFC 9112): request head serialisation with defensive
 * validation, a strict response-head parser working on latin1 strings, and an incremental chunked-body
 * decoder working on bytes. Pure code, no I/O; the transport in `http1.ts` drives it.
 */

import { hexVal, isToken, parseContentLength as parseFieldLength, TCHAR } from '../lib/http-syntax.ts';

export { isToken };

/** Largest accepted response head (status line plus header section), in bytes. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** Largest accepted chunked trailer section, in bytes (trailers are read and dropped). */
export const MAX_TRAILER_BYTES = 64 * 1024;

/** Largest accepted chunk-extension text on one chunk-size line, in bytes (extensions are dropped). */
export const MAX_CHUNK_EXT_BYTES = 4096;

/** `\r\n\r\n`, the end of a head section, for `Buffer.indexOf`. */
export const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/** Header-name bytes: 0 not a tchar, 1 tchar, 2 upper-case letter (needs lower-casing). */
const NAME_CHAR = new Uint8Array(256);
for (let c = 0; c < 128; c++) NAME_CHAR[c] = TCHAR[c]! === 0 ? 0 : c >= 0x41 && c <= 0x5a ? 2 : 1;

/** A character other than HTAB, space and visible ASCII. */
const NOT_PLAIN_VALUE = /[^\t\x20-\x7e]/;

/**
 * Checks a header value for sending: no NUL, CR, LF or other control character except HTAB, nothing above
 * U+00FF. Returns -1 when invalid, else a number that is above 0x7f exactly when the value has obs-text bytes
 * (then the head must be written as latin1 bytes, not as a UTF-8 string).
 */
export function checkFieldValue(s: string): number {
  // Fast path: visible ASCII, space and HTAB only (nearly every value). One compiled regex scan is cheaper
  // than the loop below.
  if (!NOT_PLAIN_VALUE.test(s)) return 0;
  let acc = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return -1;
    acc |= c;
  }
  return acc;
}

/** True when `s` is a request target we can put on the request line: visible ASCII only, non-empty. */
export function isValidTarget(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/** A request head ready to write, or the reason it cannot be sent. */
export type SerializedHead = { ok: true; head: string | Uint8Array } | { ok: false; reason: string };

/** Request framing for {@link serializeRequestHead}: no body and no framing header. */
export const FRAMING_NONE = -1;
/** Request framing for {@link serializeRequestHead}: `transfer-encoding: chunked`. */
export const FRAMING_CHUNKED = -2;

/**
 * Builds `METHOD target HTTP/1.1\r\n` + headers + framing header + `\r\n`, validating everything defensively:
 * method and header names must be tokens, the target visible ASCII, values free of CR/LF/NUL/CTL.
 * `content-length` and `transfer-encoding` in `headers` are refused (the transport owns framing). When no
 * `host` header is present, `defaultHost` is added. `framing` is a content-length (>= 0), {@link FRAMING_NONE}
 * or {@link FRAMING_CHUNKED}. The result is a string when it is pure ASCII (cheapest to write), else latin1
 * bytes.
 */
export function serializeRequestHead(
  method: string,
  target: string,
  headers: readonly (readonly [string, string])[],
  framing: number,
  defaultHost: string,
): SerializedHead {
  if (!isToken(method)) return { ok: false, reason: 'invalid method' };
  if (!isValidTarget(target)) return { ok: false, reason: 'invalid request target' };
  let head = `${method} ${target} HTTP/1.1\r\n`;
  let acc = 0;
  let sawHost = false;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const name = h[0];
    const value = h[1];
    if (!isToken(name)) return { ok: false, reason: 'invalid header name' };
    const v = checkFieldValue(value);
    if (v < 0) return { ok: false, reason: `invalid value for header ${name}` };
    acc |= v;
    const len = name.length;
    if (len === 4 || len === 14 || len === 17) {
      const lower = name.toLowerCase();
      if (lower === 'host') sawHost = true;
      else if (lower === 'content-length' || lower === 'transfer-encoding') {
        return { ok: false, reason: `${lower} must not be set by the caller` };
      }
    }
    head += `${name}: ${value}\r\n`;
  }
  if (!sawHost) head += `host: ${defaultHost}\r\n`;
  if (framing >= 0) head += `content-length: ${framing}\r\n\r\n`;
  else if (framing === FRAMING_CHUNKED) head += 'transfer-encoding: chunked\r\n\r\n';
  else head += '\r\n';
  if (acc > 0x7f) return { ok: true, head: Buffer.from(head, 'latin1') };
  return { ok: true, head };
}

/** A parsed response head. */
export interface ResponseHead {
  /** Status code, 100..999. */
  status: number;
  /** HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 (higher minors are treated as 1.1). */
  minor: number;
  /** Header fields in order, names lower case, values with surrounding whitespace removed. */
  headers: [string, string][];
  /** Declared content-length, or -1 when absent. */
  contentLength: number;
  /** True when `transfer-encoding: chunked`. */
  chunked: boolean;
  /** True when the connection may be reused after this response (per version and `connection`). */
  keepAlive: boolean;
}

/** Result of {@link parseResponseHead}: the head, or an error message. */
export type HeadResult = ResponseHead | string;

const SP = 0x20;
const HTAB = 0x09;

/**
 * Parses a response head. `s` is the latin1 text from the first byte of the status line up to and including
 * the CRLF that ends the last header line (the blank line is not included). Strict: CRLF line endings only,
 * no obs-fold, token header names, no control characters in values, content-length digits only (repeats must
 * agree; leading zeros are digits too), transfer-encoding must be exactly `chunked`, and a message with both
 * transfer-encoding and content-length is rejected, as is an HTTP/1.0 response with transfer-encoding (its
 * framing cannot be trusted, RFC 9112 section 6.1). Whitespace between a field name and its colon is removed,
 * as RFC 9112 section 5.1 asks of a proxy. Returns an error string on failure.
 */
export function parseResponseHead(s: string): HeadResult {
  const n = s.length;
  let eol = s.indexOf('\r\n');
  if (eol < 12) return 'malformed status line';
  // "HTTP/1.x SSS[ reason]"
  if (
    s.charCodeAt(0) !== 0x48 || // H
    s.charCodeAt(1) !== 0x54 || // T
    s.charCodeAt(2) !== 0x54 || // T
    s.charCodeAt(3) !== 0x50 || // P
    s.charCodeAt(4) !== 0x2f || // /
    s.charCodeAt(5) !== 0x31 || // 1
    s.charCodeAt(6) !== 0x2e // .
  ) {
    return 'unsupported protocol version';
  }
  const minor = s.charCodeAt(7) - 0x30;
  if (minor < 0 || minor > 9 || s.charCodeAt(8) !== SP) return 'malformed status line';
  const d0 = s.charCodeAt(9) - 0x30;
  const d1 = s.charCodeAt(10) - 0x30;
  const d2 = s.charCodeAt(11) - 0x30;
  if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return 'malformed status code';
  const status = d0 * 100 + d1 * 10 + d2;
  if (eol > 12) {
    if (s.charCodeAt(12) !== SP) return 'malformed status line';
    for (let i = 13; i < eol; i++) {
      const c = s.charCodeAt(i);
      if ((c < 0x20 && c !== HTAB) || c === 0x7f) return 'invalid character in reason phrase';
    }
  }

  const headers: [string, string][] = [];
  let contentLength = -1;
  let transferEncoding: string | null = null;
  let connClose = false;
  let connKeepAlive = false;

  let pos = eol + 2;
  while (pos < n) {
    eol = s.indexOf('\r\n', pos);
    if (eol < 0) return 'malformed header line';
    const first = s.charCodeAt(pos);
    if (first === SP || first === HTAB) return 'obsolete line folding';
    // name
    let i = pos;
    let kinds = 0;
    let nameEnd = -1;
    for (; i < eol; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x3a) break; // ':'
      if ((c === SP || c === HTAB) && i > pos) {
        // Whitespace before the colon: removed (RFC 9112 section 5.1), but only whitespace may follow.
        nameEnd = i;
        while (i < eol && (s.charCodeAt(i) === SP || s.charCodeAt(i) === HTAB)) i++;
        if (i < eol && s.charCodeAt(i) === 0x3a) break;
        return 'invalid header name';
      }
      const k = NAME_CHAR[c & 0xff]!;
      if (k === 0 || c > 0xff) return 'invalid header name';
      kinds |= k;
    }
    if (i === pos || i === eol) return 'invalid header line';
    if (nameEnd < 0) nameEnd = i;
    let name = s.slice(pos, nameEnd);
    if (kinds & 2) name = name.toLowerCase();
    const nameLen = nameEnd - pos;
    // value: skip OWS, validate, trim trailing OWS
    let vs = i + 1;
    while (vs < eol) {
      const c = s.charCodeAt(vs);
      if (c !== SP && c !== HTAB) break;
      vs++;
    }
    let ve = eol;
    while (ve > vs) {
      const c = s.charCodeAt(ve - 1);
      if (c !== SP && c !== HTAB) break;
      ve--;
    }
    for (let j = vs; j < ve; j++) {
      const c = s.charCodeAt(j);
      if ((c < 0x20 && c !== HTAB) || c === 0x7f) return 'invalid character in header value';
    }
    const value = s.slice(vs, ve);
    headers.push([name, value]);
    pos = eol + 2;

    if (nameLen !== 14 && nameLen !== 17 && nameLen !== 10) continue;
    switch (name) {
      case 'content-length': {
        const cl = parseContentLength(value);
        if (cl < 0) return 'invalid content-length';
        if (contentLength >= 0 && contentLength !== cl) return 'conflicting content-length';
        contentLength = cl;
        break;
      }
      case 'transfer-encoding':
        transferEncoding = transferEncoding === null ? value : `${transferEncoding},${value}`;
        break;
      case 'connection': {
        const v = value.toLowerCase();
        if (v === 'close') connClose = true;
        else if (v === 'keep-alive') connKeepAlive = true;
        else {
          for (const tok of v.split(',')) {
            const t = tok.trim();
            if (t === 'close') connClose = true;
            else if (t === 'keep-alive') connKeepAlive = true;
          }
        }
        break;
      }
    }
  }

  let chunked = false;
  if (transferEncoding !== null) {
    if (minor === 0) return 'transfer-encoding in an HTTP/1.0 response';
    if (contentLength >= 0) return 'both transfer-encoding and content-length';
    if (transferEncoding.trim().toLowerCase() !== 'chunked') return 'unsupported transfer-encoding';
    chunked = true;
  }
  const keepAlive = minor === 0 ? connKeepAlive && !connClose : !connClose;
  return { status, minor, headers, contentLength, chunked, keepAlive };
}

/** Parses a response `Content-Length` value (at most 15 significant digits per element; see {@link parseFieldLength}). */
export function parseContentLength(v: string): number {
  return parseFieldLength(v, 15);
}

/** Receives decoded body bytes from {@link ChunkedDecoder}. */
export interface ChunkSink {
  /** `buf[start, end)` is body data (never empty). */
  onBodyData(buf: Buffer, start: number, end: number): void;
}

/** {@link ChunkedDecoder.decode} result: more input needed. */
export const DECODE_MORE = -1;
/** {@link ChunkedDecoder.decode} result: malformed input; see {@link ChunkedDecoder.error}. */
export const DECODE_ERROR = -2;

const ST_SIZE_START = 0;
const ST_SIZE = 1;
const ST_EXT = 2;
const ST_SIZE_LF = 3;
const ST_DATA = 4;
const ST_DATA_CR = 5;
const ST_DATA_LF = 6;
const ST_TRAILER_START = 7;
const ST_TRAILER_LINE = 8;
const ST_TRAILER_LF = 9;
const ST_FINAL_LF = 10;
const ST_DONE = 11;

/** Value of a hex digit, or -1. */

/**
 * Incremental decoder for the chunked transfer coding (RFC 9112 §7.1). Chunk extensions and trailer fields
 * are validated loosely (CRLF structure, size limits) and dropped. Data is handed to a {@link ChunkSink} as
 * ranges of the input buffers, without copying.
 */
export class ChunkedDecoder {
  private state = ST_SIZE_START;
  private size = 0;
  private digits = 0;
  private extBytes = 0;
  private trailerBytes = 0;
  /** Why decoding failed, after {@link DECODE_ERROR}. */
  error = '';

  /** True once the last chunk and trailer section were read. */
  get done(): boolean {
    return this.state === ST_DONE;
  }

  /**
   * Decodes `buf[pos, end)`. Returns the index just past the end of the chunked body when it completes
   * (bytes after it belong to whatever follows), {@link DECODE_MORE} when all input was consumed, or
   * {@link DECODE_ERROR}.
   */
  decode(buf: Buffer, pos: number, end: number, sink: ChunkSink): number {
    let st = this.state;
    while (pos < end) {
      if (st === ST_DATA) {
        const avail = end - pos;
        const take = Math.min(avail, this.size);
        sink.onBodyData(buf, pos, pos + take);
        pos += take;
        this.size -= take;
        if (this.size === 0) st = ST_DATA_CR;
        continue;
      }
      const c = buf[pos++]!;
      switch (st) {
        case ST_SIZE_START: {
          const h = hexVal(c);
          if (h < 0) return this.fail('invalid chunk size');
          this.size = h;
          this.digits = h === 0 ? 0 : 1; // leading zeros do not count (chunk-size is 1*HEXDIG)
          st = ST_SIZE;
          break;
        }
        case ST_SIZE: {
          const h = hexVal(c);
          if (h >= 0) {
            if ((this.digits > 0 || h > 0) && ++this.digits > 12) return this.fail('chunk size too large');
            this.size = this.size * 16 + h;
          } else if (c === 0x0d) {
            st = ST_SIZE_LF;
          } else if (c === 0x3b || c === SP || c === HTAB) {
            this.extBytes = 0;
            st = ST_EXT;
          } else {
            return this.fail('invalid chunk size');
          }
          break;
        }
        case ST_EXT:
          if (c === 0x0d) st = ST_SIZE_LF;
          else if (c === 0x0a || c === 0 || ++this.extBytes > MAX_CHUNK_EXT_BYTES) {
            return this.fail('invalid chunk extension');
          }
          break;
        case ST_SIZE_LF:
          if (c !== 0x0a) return this.fail('invalid chunk size line');
          if (this.size === 0) {
            this.trailerBytes = 0;
            st = ST_TRAILER_START;
          } else {
            st = ST_DATA;
          }
          break;
        case ST_DATA_CR:
          if (c !== 0x0d) return this.fail('missing CRLF after chunk data');
          st = ST_DATA_LF;
          break;
        case ST_DATA_LF:
          if (c !== 0x0a) return this.fail('missing CRLF after chunk data');
          st = ST_SIZE_START;
          break;
        case ST_TRAILER_START:
          if (c === 0x0d) st = ST_FINAL_LF;
          else if (c === SP || c === HTAB || c === 0x0a || c === 0) return this.fail('invalid trailer');
          else st = ST_TRAILER_LINE;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) return this.fail('trailer section too large');
          break;
        case ST_TRAILER_LINE:
          if (c === 0x0d) st = ST_TRAILER_LF;
          else if (c === 0x0a || c === 0) return this.fail('invalid trailer');
          if (++this.trailerBytes > MAX_TRAILER_BYTES) return this.fail('trailer section too large');
          break;
        case ST_TRAILER_LF:
          if (c !== 0x0a) return this.fail('invalid trailer');
          st = ST_TRAILER_START;
          break;
        case ST_FINAL_LF:
          if (c !== 0x0a) return this.fail('invalid end of chunked body');
          this.state = ST_DONE;
          return pos;
        default:
          return this.fail('data after end of chunked body');
      }
    }
    this.state = st;
    return DECODE_MORE;
  }

  private fail(msg: string): number {
    this.error = msg;
    this.state = ST_DONE;
    return DECODE_ERROR;
  }
}
