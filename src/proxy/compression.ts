/**
 * Response compression (a route's `compression`, as Caddy's `encode` and nginx's `gzip`): picks a coding from
 * the client's `Accept-Encoding` (RFC 9110 section 12.5.3), decides whether a backend's answer is worth
 * compressing, rewrites its headers, and compresses the body: in one call when Spooky already holds the whole
 * body, else chunk by chunk with a flush after each chunk, so a streamed answer (server-sent events, long
 * polls) reaches the client as promptly as without compression.
 */
import * as zlib from 'node:zlib';
import type { CompressionConfig, ContentCoding } from '../config/types.ts';

/** Codings Spooky can produce, and the names clients use for them. */
const CODING_NAMES: Readonly<Record<string, ContentCoding>> = { gzip: 'gzip', 'x-gzip': 'gzip', br: 'br', zstd: 'zstd' };

/**
 * The coding to answer with: among `offered` (in the server's order of preference), the one the client
 * weights highest (`q`), the server's order breaking ties; undefined when the client accepts none of them, or
 * sent no `Accept-Encoding` at all (then only the identity is safe to assume).
 */
export function negotiateEncoding(acceptEncoding: string | null | undefined, offered: readonly ContentCoding[]): ContentCoding | undefined {
  if (!acceptEncoding) return undefined;
  const weights = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const [rawName = '', ...params] = part.split(';');
    const name = rawName.trim().toLowerCase();
    if (name === '') continue;
    let q = 1;
    let valid = true;
    for (const p of params) {
      if (!/^\s*q\s*=/i.test(p)) continue;
      // RFC 9110 section 12.4.2: qvalue = 0[.ddd] / 1[.000]; a member with any other weight is ignored.
      const m = /^\s*q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
      else valid = false;
    }
    if (!valid) continue;
    const coding = CODING_NAMES[name] ?? name;
    weights.set(coding, Math.max(q, weights.get(coding) ?? 0));
  }
  const any = weights.get('*');
  let best: ContentCoding | undefined;
  let bestQ = 0;
  for (const coding of offered) {
    const q = weights.get(coding) ?? any ?? 0;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  return best;
}

/** True when media type `type` (no parameters, lower case) matches one of `patterns` (`text/*` style). */
export function typeMatches(type: string, patterns: readonly string[]): boolean {
  for (const p of patterns) {
    if (p === type) return true;
    if (p.endsWith('/*') && type.startsWith(p.slice(0, -1))) return true;
    // `application/*+json` matches any structured-syntax suffix type.
    const star = p.indexOf('/*+');
    if (star > 0 && type.startsWith(p.slice(0, star + 1)) && type.endsWith(p.slice(star + 2))) return true;
  }
  return false;
}

/**
 * Whether an answer may be compressed at all under `policy`, whatever the client accepts: a body the client
 * will get (not HEAD, not 1xx/204/304, not a 206 range), not already encoded, no `no-transform`, a listed
 * type, and not declared shorter than `min_bytes`. Such answers get `Vary: Accept-Encoding` either way.
 */
export function compressible(method: string, status: number, headers: Headers, policy: CompressionConfig): boolean {
  if (method === 'HEAD' || status < 200 || status === 204 || status === 206 || status === 304) return false;
  return representationCompressible(headers, policy, false);
}

/**
 * The checks of the representation itself (coding, `no-transform`, type, length). For a 304 (`revalidation`) a
 * missing type passes and no length applies: it stands for a 200 whose fields it need not repeat.
 */
function representationCompressible(headers: Headers, policy: CompressionConfig, revalidation: boolean): boolean {
  const encoding = headers.get('content-encoding');
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') return false;
  const cacheControl = headers.get('cache-control');
  if (cacheControl !== null && /(^|[\s,])no-transform($|[\s,])/i.test(cacheControl)) return false;
  const type = headers.get('content-type');
  if (type === null) return revalidation;
  if (!typeMatches(type.split(';', 1)[0]?.trim().toLowerCase() ?? '', policy.types)) return false;
  if (revalidation) return true;
  const length = headers.get('content-length');
  return length === null || !(Number(length) < policy.min_bytes);
}

/** Adds `accept-encoding` to `Vary` (unless it is there, or `*`). */
export function varyOnAcceptEncoding(headers: Headers): void {
  const vary = headers.get('vary');
  if (vary === null) headers.set('vary', 'accept-encoding');
  else if (!vary.split(',').some((v) => ['accept-encoding', '*'].includes(v.trim().toLowerCase()))) headers.set('vary', `${vary}, accept-encoding`);
}

/**
 * The headers of an answer Spooky compresses with `coding`: `Content-Encoding` set, `Content-Length` and
 * `Accept-Ranges` removed (ranges of the backend's bytes do not apply to the compressed ones), and a strong
 * `ETag` made weak (the bytes differ; the content is the same, as nginx does).
 */
export function encodeHeaders(headers: Headers, coding: ContentCoding): void {
  headers.set('content-encoding', coding);
  headers.delete('content-length');
  headers.delete('accept-ranges');
  // Digests of the backend's bytes would be wrong for the compressed ones.
  for (const name of DIGEST_FIELDS) headers.delete(name);
  weakenETag(headers);
}

/** A strong `ETag` made weak (`"x"` to `W/"x"`); a weak one or none left alone. */
function weakenETag(headers: Headers): void {
  const etag = headers.get('etag');
  if (etag?.startsWith('"')) headers.set('etag', `W/${etag}`);
}

const DIGEST_FIELDS = ['content-digest', 'repr-digest', 'content-md5', 'digest'];

/**
 * Applies a route's compression to an answer's headers and returns the coding to compress its body with
 * (undefined: sent as it came). HEAD gets the header fields its GET would get (RFC 9110 section 9.3.2: the same
 * `Content-Encoding`, `Vary` and weak `ETag`, no length), and a 304 the `Vary` and weak `ETag` of the 200 it
 * stands for (section 15.4.5); neither has a body to compress.
 */
export function planCompression(
  method: string,
  status: number,
  headers: Headers,
  policy: CompressionConfig,
  acceptEncoding: string | null,
): ContentCoding | undefined {
  if (status === 304) {
    if (!representationCompressible(headers, policy, true)) return undefined;
    varyOnAcceptEncoding(headers);
    if (negotiateEncoding(acceptEncoding, policy.encodings) !== undefined) weakenETag(headers);
    return undefined;
  }
  const head = method === 'HEAD';
  if (!compressible(head ? 'GET' : method, status, headers, policy)) return undefined;
  varyOnAcceptEncoding(headers);
  const coding = negotiateEncoding(acceptEncoding, policy.encodings);
  if (coding === undefined) return undefined;
  encodeHeaders(headers, coding);
  return head ? undefined : coding;
}

/** Compression levels: fast ones, for answers compressed on the fly (nginx's gzip default is 1, Caddy's 5). */
const GZIP_LEVEL = 5;
const BROTLI_QUALITY = 4;
const ZSTD_LEVEL = 3;

/** `bytes` compressed with `coding` in one call. */
export function compressBytes(bytes: Uint8Array, coding: ContentCoding): Uint8Array {
  switch (coding) {
    case 'gzip':
      return Bun.gzipSync(bytes as Uint8Array<ArrayBuffer>, { level: GZIP_LEVEL });
    case 'zstd':
      return Bun.zstdCompressSync(bytes, { level: ZSTD_LEVEL });
    case 'br':
      return zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY } });
  }
}

function streamingCompressor(coding: ContentCoding): zlib.Gzip | zlib.BrotliCompress | zlib.ZstdCompress {
  switch (coding) {
    case 'gzip':
      return zlib.createGzip({ level: GZIP_LEVEL });
    case 'br':
      return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY } });
    case 'zstd':
      return zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
  }
}

/** The flush of each coding that ends a chunk's output on a boundary the client can decode up to. */
function chunkFlush(coding: ContentCoding): number {
  switch (coding) {
    case 'gzip':
      return zlib.constants.Z_SYNC_FLUSH;
    case 'br':
      return zlib.constants.BROTLI_OPERATION_FLUSH;
    case 'zstd':
      return zlib.constants.ZSTD_e_flush;
  }
}

/**
 * `body` compressed with `coding` as it streams: each chunk is compressed and flushed before the next is read,
 * so nothing the backend sent waits in the compressor; what one chunk became leaves as one chunk.
 * Cancelling the result cancels `body`; an error of `body` errors the result.
 */
export function compressStream(body: ReadableStream<Uint8Array>, coding: ContentCoding): ReadableStream<Uint8Array> {
  const z = streamingCompressor(coding);
  const flushKind = chunkFlush(coding);
  const pending: Uint8Array[] = [];
  // Paused mode: a flush's output is in the readable buffer when its callback runs ('data' events may come later).
  const drain = (): void => {
    for (let chunk = z.read() as Buffer | null; chunk !== null; chunk = z.read() as Buffer | null) pending.push(chunk);
  };
  // Drained on every 'readable', not only after a flush: once a chunk's output fills the readable buffer
  // (highWaterMark), zlib waits for a read() before going on, and the write or flush callback would never come.
  z.on('readable', drain);
  z.on('error', () => {}); // reported through the write and end callbacks below
  const reader = body.getReader();
  // What one source chunk became leaves as one chunk.
  const take = (controller: ReadableStreamDefaultController<Uint8Array>): void => {
    const out = pending.length === 1 ? (pending[0] as Uint8Array) : Buffer.concat(pending);
    pending.length = 0;
    if (out.byteLength > 0) controller.enqueue(out);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let next: Awaited<ReturnType<typeof reader.read>>;
        try {
          next = await reader.read();
        } catch (e) {
          z.destroy();
          throw e;
        }
        const { value, done } = next;
        if (done) {
          await new Promise<void>((resolve, reject) => {
            z.once('end', resolve);
            z.once('error', reject);
            z.end();
          });
          drain();
          take(controller);
          controller.close();
          return;
        }
        if (value.byteLength === 0) continue;
        await new Promise<void>((resolve, reject) => {
          z.write(value, (err) => (err ? reject(err) : z.flush(flushKind, () => resolve())));
        });
        drain();
        if (pending.length > 0) {
          take(controller);
          return;
        }
      }
    },
    cancel(reason) {
      z.destroy();
      return reader.cancel(reason);
    },
  });
}
