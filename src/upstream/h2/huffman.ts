/**
 * The HPACK Huffman code (RFC 7541 Appendix B): a table-driven decoder and an encoder.
 *
 * The code is canonical (within one code length, codes are assigned in symbol order, and every length
 * continues from the last code of the previous one), so the table is stored as the symbols of each code length
 * and the codes are rebuilt from that at load time. Decoding walks the input four bits at a time through a
 * state table derived from the code tree: a state is an inner node of the tree; for every state and nibble the
 * table gives the next state and the symbol completed on the way (at most one, the shortest code being 5 bits).
 */

/** Symbols (byte values, 256 = EOS) of each code length, from RFC 7541 Appendix B. */
const SYMBOLS_BY_LENGTH: Record<number, readonly number[]> = {
  5: [0x30, 0x31, 0x32, 0x61, 0x63, 0x65, 0x69, 0x6f, 0x73, 0x74],
  6: [
    0x20, 0x25, 0x2d, 0x2e, 0x2f, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3d, 0x41, 0x5f, 0x62, 0x64, 0x66, 0x67, 0x68, 0x6c, 0x6d, 0x6e, 0x70,
    0x72, 0x75,
  ],
  7: [
    0x3a, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x59,
    0x6a, 0x6b, 0x71, 0x76, 0x77, 0x78, 0x79, 0x7a,
  ],
  8: [0x26, 0x2a, 0x2c, 0x3b, 0x58, 0x5a],
  10: [0x21, 0x22, 0x28, 0x29, 0x3f],
  11: [0x27, 0x2b, 0x7c],
  12: [0x23, 0x3e],
  13: [0x00, 0x24, 0x40, 0x5b, 0x5d, 0x7e],
  14: [0x5e, 0x7d],
  15: [0x3c, 0x60, 0x7b],
  19: [0x5c, 0xc3, 0xd0],
  20: [0x80, 0x82, 0x83, 0xa2, 0xb8, 0xc2, 0xe0, 0xe2],
  21: [0x99, 0xa1, 0xa7, 0xac, 0xb0, 0xb1, 0xb3, 0xd1, 0xd8, 0xd9, 0xe3, 0xe5, 0xe6],
  22: [
    0x81, 0x84, 0x85, 0x86, 0x88, 0x92, 0x9a, 0x9c, 0xa0, 0xa3, 0xa4, 0xa9, 0xaa, 0xad, 0xb2, 0xb5, 0xb9, 0xba, 0xbb, 0xbd, 0xbe, 0xc4, 0xc6, 0xe4,
    0xe8, 0xe9,
  ],
  23: [
    0x01, 0x87, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8f, 0x93, 0x95, 0x96, 0x97, 0x98, 0x9b, 0x9d, 0x9e, 0xa5, 0xa6, 0xa8, 0xae, 0xaf, 0xb4, 0xb6, 0xb7,
    0xbc, 0xbf, 0xc5, 0xe7, 0xef,
  ],
  24: [0x09, 0x8e, 0x90, 0x91, 0x94, 0x9f, 0xab, 0xce, 0xd7, 0xe1, 0xec, 0xed],
  25: [0xc7, 0xcf, 0xea, 0xeb],
  26: [0xc0, 0xc1, 0xc8, 0xc9, 0xca, 0xcd, 0xd2, 0xd5, 0xda, 0xdb, 0xee, 0xf0, 0xf2, 0xf3, 0xff],
  27: [0xcb, 0xcc, 0xd3, 0xd4, 0xd6, 0xdd, 0xde, 0xdf, 0xf1, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe],
  28: [
    0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0b, 0x0c, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
    0x1e, 0x1f, 0x7f, 0xdc, 0xf9,
  ],
  30: [0x0a, 0x0d, 0x16, 0x100],
};

/** The end-of-string symbol (never valid inside a string). */
const EOS = 256;

/** Code of each symbol (0..256), right-aligned. */
export const HUFFMAN_CODES = new Uint32Array(257);
/** Length in bits of each symbol's code. */
export const HUFFMAN_LENGTHS = new Uint8Array(257);

{
  let code = 0;
  let prevLength = 0;
  const lengths = Object.keys(SYMBOLS_BY_LENGTH)
    .map(Number)
    .sort((a, b) => a - b);
  for (const length of lengths) {
    code *= 2 ** (length - prevLength);
    prevLength = length;
    for (const sym of SYMBOLS_BY_LENGTH[length] as readonly number[]) {
      HUFFMAN_CODES[sym] = code;
      HUFFMAN_LENGTHS[sym] = length;
      code++;
    }
  }
}

// ---- decoder tables

/** Decoder state table: for state s and nibble n, entry `s * 16 + n`. */
const NEXT_STATE = new Uint16Array(256 * 16);
/** Symbol completed by that transition, or -1; EOS is reported as 256 (an error). */
const EMITTED = new Int16Array(256 * 16).fill(-1);
/** Per state: true when the bits since the last symbol are all ones and fewer than 8 (valid end padding). */
const ACCEPTING = new Uint8Array(256);

{
  // Build the code tree: children[node * 2 + bit] (node 0 is the root), leaves are ~symbol.
  const children = new Int32Array(512 * 2);
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym] as number;
    const length = HUFFMAN_LENGTHS[sym] as number;
    let node = 0;
    for (let i = length - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = node * 2 + bit;
      if (i === 0) {
        children[slot] = ~sym;
      } else {
        if (children[slot] === 0) children[slot] = nodes++;
        node = children[slot] as number;
      }
    }
  }
  // Depth and all-ones flag of each inner node, for the padding rule.
  const depth = new Uint8Array(nodes);
  const allOnes = new Uint8Array(nodes);
  allOnes[0] = 1;
  for (let node = 0; node < nodes; node++) {
    for (let bit = 0; bit < 2; bit++) {
      const child = children[node * 2 + bit] as number;
      if (child > 0) {
        depth[child] = (depth[node] as number) + 1;
        allOnes[child] = allOnes[node] === 1 && bit === 1 ? 1 : 0;
      }
    }
  }
  for (let state = 0; state < nodes; state++) {
    ACCEPTING[state] = allOnes[state] === 1 && (depth[state] as number) < 8 ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let emitted = -1;
      for (let i = 3; i >= 0; i--) {
        const next = children[node * 2 + ((nibble >> i) & 1)] as number;
        if (next < 0) {
          emitted = ~next;
          node = 0;
          if (emitted === EOS) break;
        } else node = next;
      }
      NEXT_STATE[state * 16 + nibble] = node;
      EMITTED[state * 16 + nibble] = emitted;
    }
  }
}

/**
 * Decodes Huffman-coded `src[start, end)` into a latin1 string (one char per byte value). Returns undefined when
 * the input is invalid: an EOS symbol, or padding that is longer than 7 bits or not all ones (RFC 7541 §5.2).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string | undefined {
  let state = 0;
  let out = '';
  let codes: number[] | undefined;
  for (let i = start; i < end; i++) {
    const byte = src[i] as number;
    let t = state * 16 + (byte >> 4);
    let sym = EMITTED[t] as number;
    state = NEXT_STATE[t] as number;
    if (sym >= 0) {
      if (sym === EOS) return undefined;
      (codes ??= []).push(sym);
    }
    t = state * 16 + (byte & 15);
    sym = EMITTED[t] as number;
    state = NEXT_STATE[t] as number;
    if (sym >= 0) {
      if (sym === EOS) return undefined;
      (codes ??= []).push(sym);
    }
    if (codes !== undefined && codes.length >= 4096) {
      out += String.fromCharCode.apply(null, codes);
      codes.length = 0;
    }
  }
  if (ACCEPTING[state] !== 1) return undefined;
  if (codes !== undefined && codes.length > 0) out += String.fromCharCode.apply(null, codes);
  return out;
}

/** Bytes `huffmanEncode` produces for the latin1 string `s`. */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff] as number;
  return Math.ceil(bits / 8);
}

/**
 * Huffman-encodes the latin1 string `s` into `dst` at `offset` (which must have room for
 * {@link huffmanEncodedLength} bytes); pads with ones. Returns the offset after the last byte written.
 */
export function huffmanEncode(s: string, dst: Uint8Array, offset: number): number {
  let acc = 0; // pending bits, right-aligned
  let pending = 0;
  let at = offset;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = HUFFMAN_CODES[sym] as number;
    let length = HUFFMAN_LENGTHS[sym] as number;
    // Feed at most 16 bits at a time so `acc` stays within 31 bits.
    while (length > 0) {
      const take = length > 16 ? length - 16 : length;
      const shift = length - take;
      const part = Math.floor(code / 2 ** shift);
      code -= part * 2 ** shift;
      length = shift;
      acc = (acc << take) | part;
      pending += take;
      while (pending >= 8) {
        pending -= 8;
        dst[at++] = (acc >>> pending) & 0xff;
      }
      acc &= (1 << pending) - 1;
    }
  }
  if (pending > 0) dst[at++] = ((acc << (8 - pending)) | ((1 << (8 - pending)) - 1)) & 0xff;
  return at;
}
