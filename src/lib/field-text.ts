/**
 * Header values as text. Bun hands every header value over as one character per byte (latin1), on HTTP/1.1,
 * HTTP/2 and HTTP/3 alike, so a client's UTF-8 `José` arrives as `JosÃ©`. Where a value is compared with text
 * from the config (route conditions) or shown to people (metric labels), it is read as UTF-8 first, as nginx
 * and Envoy compare the bytes of a UTF-8 config with the bytes on the wire.
 */

/** A byte above ASCII: the value needs decoding (rare, so the common case is one scan). */
const NON_ASCII = /[\u0080-\uffff]/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // a leading BOM is part of the value

/**
 * `value` (as Bun delivers header values: one character per byte) read as UTF-8 text. ASCII values, values that
 * are not valid UTF-8 (kept byte for byte, as most latin1 text is) and values with a character above U+00FF (not
 * from the wire) come back unchanged; `null` stays `null`.
 */
export function fieldText(value: string | null): string | null {
  if (value === null || !NON_ASCII.test(value)) return value;
  const bytes = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0xff) return value;
    bytes[i] = c;
  }
  try {
    return UTF8.decode(bytes);
  } catch {
    return value;
  }
}
