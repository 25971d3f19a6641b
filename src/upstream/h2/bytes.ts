/** A growable byte buffer that frames and header blocks are written into. */
export class ByteWriter {
  /** Backing store; bytes `[0, length)` are written. */
  buf: Uint8Array;
  /** Bytes written so far. */
  length = 0;

  /** @param capacity initial size of the backing store */
  constructor(capacity = 4096) {
    this.buf = new Uint8Array(capacity);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Appends one byte (room must have been ensured). */
  byte(b: number): void {
    this.buf[this.length++] = b;
  }

  /** Appends a 32-bit big-endian number (room must have been ensured). */
  u32(n: number): void {
    const b = this.buf;
    const at = this.length;
    b[at] = (n >>> 24) & 0xff;
    b[at + 1] = (n >>> 16) & 0xff;
    b[at + 2] = (n >>> 8) & 0xff;
    b[at + 3] = n & 0xff;
    this.length = at + 4;
  }

  /** Appends bytes. */
  bytes(src: Uint8Array): void {
    this.ensure(src.byteLength);
    this.buf.set(src, this.length);
    this.length += src.byteLength;
  }

  /** Appends a string as latin1 (one byte per char, the low 8 bits). */
  latin1(s: string): void {
    const n = s.length;
    this.ensure(n);
    const b = this.buf;
    let at = this.length;
    for (let i = 0; i < n; i++) b[at++] = s.charCodeAt(i);
    this.length = at;
  }

  /** The written bytes as a copy. */
  copy(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  /** Forgets the written bytes (keeps the backing store). */
  reset(): void {
    this.length = 0;
  }
}

/** `src[start, end)` as a latin1 string. */
export function latin1String(src: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 24) {
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(src[i] as number);
    return s;
  }
  if (n <= 8192) return String.fromCharCode.apply(null, src.subarray(start, end) as unknown as number[]);
  let s = '';
  for (let at = start; at < end; at += 8192) s += String.fromCharCode.apply(null, src.subarray(at, Math.min(end, at + 8192)) as unknown as number[]);
  return s;
}
