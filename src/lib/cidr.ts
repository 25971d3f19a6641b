/**
 * IP address parsing and trusted-proxy matching.
 *
 * - IPv4 is strict dotted-quad: four decimal octets 0..255 without leading zeros (`010.0.0.1` is refused, so
 *   there is no octal ambiguity), no shorthand (`127.1`).
 * - IPv6 is RFC 4291 text form, with `::` compression and an optional dotted IPv4 tail. A zone (`fe80::1%eth0`)
 *   is accepted in addresses to check (and ignored) but not in CIDR entries.
 * - An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, also `::ffff:a00:1`) *is* the IPv4 address: it matches IPv4
 *   entries, and a mapped CIDR entry with prefix >= 96 (`::ffff:10.0.0.0/104`) is the IPv4 range `10.0.0.0/8`.
 *   IPv6 ranges never match IPv4 addresses (so `::/0` trusts all of IPv6 but no IPv4).
 *
 * Pure code: no allocation on the IPv4 path of a trust check beyond the parse.
 */
import { hexVal } from './http-syntax.ts';

/** A parsed address: IPv4 as an unsigned 32-bit number, IPv6 as eight 16-bit groups. */
export type ParsedIp = { readonly v: 4; readonly n: number } | { readonly v: 6; readonly g: readonly number[] };

/** A parsed CIDR range (a single address is a /32 or /128). */
export type Cidr =
  | { readonly v: 4; readonly net: number; readonly mask: number; readonly prefix: number }
  | { readonly v: 6; readonly words: readonly [number, number, number, number]; readonly prefix: number };

/**
 * Parses a strict dotted-quad IPv4 address in `s[start, end)`.
 * @returns the address as an unsigned 32-bit number, or -1 when it is not one.
 */
export function parseIPv4(s: string, start = 0, end = s.length): number {
  return ipv4At(s, start, end);
}

/** {@link parseIPv4} without default parameters (they cost on the hot path). */
function ipv4At(s: string, start: number, end: number): number {
  let acc = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  let firstDigit = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 0) firstDigit = c;
      else if (firstDigit === 48) return -1; // leading zero
      if (++digits > 3) return -1;
      octet = octet * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || octet > 255 || parts === 3) return -1;
      acc = acc * 256 + octet;
      parts++;
      octet = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (digits === 0 || octet > 255 || parts !== 3) return -1;
  return acc * 256 + octet;
}

/**
 * Parses an IPv6 address (no brackets, no zone) in `s[start, end)`.
 * @returns the eight 16-bit groups, or null when it is not one.
 */
export function parseIPv6(s: string, start = 0, end = s.length): number[] | null {
  return ipv6At(s, start, end);
}

/** {@link parseIPv6} without default parameters. */
function ipv6At(s: string, start: number, end: number): number[] | null {
  const groups: number[] = [];
  let gap = -1; // index in `groups` where `::` stands
  let i = start;
  if (end - start < 2) return null;
  if (s.charCodeAt(i) === 58) {
    if (s.charCodeAt(i + 1) !== 58) return null;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    const groupStart = i;
    let v = 0;
    let n = 0;
    while (i < end) {
      const h = hexVal(s.charCodeAt(i));
      if (h < 0) break;
      v = v * 16 + h;
      n++;
      i++;
    }
    if (i < end && s.charCodeAt(i) === 46) {
      // dotted IPv4 tail: takes the last two groups
      if (groups.length > 6) return null;
      const v4 = ipv4At(s, groupStart, end);
      if (v4 < 0) return null;
      groups.push(v4 >>> 16, v4 & 0xffff);
      i = end;
      break;
    }
    if (n === 0 || n > 4) return null;
    groups.push(v);
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return null;
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return null;
      gap = groups.length;
      i++;
    } else if (i === end) {
      return null; // trailing single colon
    }
    if (groups.length > 8) return null;
  }
  if (gap >= 0) {
    if (groups.length > 7) return null;
    const out = groups.slice(0, gap);
    for (let k = groups.length; k < 8; k++) out.push(0);
    for (let k = gap; k < groups.length; k++) out.push(groups[k] as number);
    return out;
  }
  return groups.length === 8 ? groups : null;
}

function isMapped(g: readonly number[]): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

/**
 * Parses an IPv4 or IPv6 address. Accepts `[v6]` brackets and ignores a `%zone` on IPv6. IPv4-mapped IPv6
 * addresses come back as IPv4.
 * @returns the parsed address, or null when `s` is not an IP address.
 */
export function parseIp(s: string): ParsedIp | null {
  let start = 0;
  let end = s.length;
  if (end === 0) return null;
  if (s.indexOf(':') < 0) {
    const n = ipv4At(s, 0, end);
    return n < 0 ? null : { v: 4, n };
  }
  if (s.charCodeAt(0) === 91) {
    if (s.charCodeAt(end - 1) !== 93) return null;
    start = 1;
    end--;
  }
  const zone = s.indexOf('%', start);
  if (zone >= 0 && zone < end) {
    if (zone === end - 1) return null;
    end = zone;
  }
  const g = ipv6At(s, start, end);
  if (g === null) return null;
  if (isMapped(g)) return { v: 4, n: (((g[6] as number) << 16) | (g[7] as number)) >>> 0 };
  return { v: 6, g };
}

/** Formats an unsigned 32-bit number as dotted-quad IPv4. */
export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Formats eight 16-bit groups as RFC 5952 canonical IPv6 text (lower case, longest zero run compressed). */
export function formatIPv6(g: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    out += (g[i] as number).toString(16);
    if (i < 7) out += ':';
  }
  return out;
}

/**
 * Canonical text of an IP address: dotted-quad for IPv4 (also for IPv4-mapped IPv6), RFC 5952 for IPv6
 * (no brackets, no zone). Accepts the same input as {@link parseIp}.
 * @returns the canonical form, or null when `s` is not an IP address.
 */
export function canonicalIp(s: string): string | null {
  const p = parseIp(s);
  if (p === null) return null;
  return p.v === 4 ? formatIPv4(p.n) : formatIPv6(p.g);
}

/**
 * Turns an IPv4-mapped IPv6 address in dotted form (`::ffff:10.0.0.1`, as dual-stack sockets report IPv4
 * peers) into plain IPv4 (`10.0.0.1`); returns anything else unchanged. Cheap: a prefix check and one parse.
 */
export function unmapIPv4(ip: string): string {
  if (
    ip.length > 7 &&
    ip.charCodeAt(0) === 58 &&
    ip.charCodeAt(1) === 58 &&
    (ip.charCodeAt(2) | 0x20) === 102 &&
    (ip.charCodeAt(3) | 0x20) === 102 &&
    (ip.charCodeAt(4) | 0x20) === 102 &&
    (ip.charCodeAt(5) | 0x20) === 102 &&
    ip.charCodeAt(6) === 58 &&
    ipv4At(ip, 7, ip.length) >= 0
  ) {
    return ip.slice(7);
  }
  return ip;
}

function words(g: readonly number[]): [number, number, number, number] {
  return [
    (((g[0] as number) << 16) | (g[1] as number)) >>> 0,
    (((g[2] as number) << 16) | (g[3] as number)) >>> 0,
    (((g[4] as number) << 16) | (g[5] as number)) >>> 0,
    (((g[6] as number) << 16) | (g[7] as number)) >>> 0,
  ];
}

function mask32(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * Parses one trusted-proxy entry: an IPv4 or IPv6 address, optionally with `/prefix`. Host bits below the
 * prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`). A mapped IPv6 range with prefix >= 96 becomes IPv4.
 * @returns the range, or null when the entry is invalid (use it to validate configuration).
 */
export function parseCidr(entry: string): Cidr | null {
  const s = entry.trim();
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  let prefix = -1;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (p.length === 0 || p.length > 3) return null;
    prefix = 0;
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c < 48 || c > 57) return null;
      prefix = prefix * 10 + (c - 48);
    }
    if (p.length > 1 && p.charCodeAt(0) === 48) return null;
  }
  if (addr.indexOf(':') < 0) {
    const n = parseIPv4(addr);
    if (n < 0) return null;
    if (prefix === -1) prefix = 32;
    if (prefix > 32) return null;
    const mask = mask32(prefix);
    return { v: 4, net: (n & mask) >>> 0, mask, prefix };
  }
  const g = parseIPv6(addr);
  if (g === null) return null;
  if (prefix === -1) prefix = 128;
  if (prefix > 128) return null;
  if (isMapped(g) && prefix >= 96) {
    const n = (((g[6] as number) << 16) | (g[7] as number)) >>> 0;
    const mask = mask32(prefix - 96);
    return { v: 4, net: (n & mask) >>> 0, mask, prefix: prefix - 96 };
  }
  const w = words(g);
  for (let k = 0; k < 4; k++) w[k] = ((w[k] as number) & mask32(prefix - 32 * k)) >>> 0;
  return { v: 6, words: w, prefix };
}

/**
 * Compiles a trusted-proxy list (CIDRs or single addresses, IPv4 and IPv6) into a predicate.
 * The predicate accepts the forms {@link parseIp} does (so `::ffff:10.0.0.1` is checked as `10.0.0.1`) and
 * answers false for anything that is not an IP address.
 * @throws Error naming the first invalid entry (configuration is expected to be validated with {@link parseCidr}).
 */
export function compileTrust(list: readonly string[]): (ip: string) => boolean {
  const v4net: number[] = [];
  const v4mask: number[] = [];
  const v6: { words: readonly number[]; masks: readonly number[] }[] = [];
  for (const entry of list) {
    const c = parseCidr(entry);
    if (c === null) throw new Error(`invalid trusted proxy entry "${entry}": expected an IP address or CIDR`);
    if (c.v === 4) {
      v4net.push(c.net);
      v4mask.push(c.mask);
    } else {
      v6.push({ words: c.words, masks: [0, 1, 2, 3].map((k) => mask32(c.prefix - 32 * k)) });
    }
  }
  if (v4net.length === 0 && v6.length === 0) return () => false;
  return (ip: string): boolean => {
    const p = parseIp(ip);
    if (p === null) return false;
    if (p.v === 4) {
      for (let i = 0; i < v4net.length; i++) {
        if ((p.n & (v4mask[i] as number)) >>> 0 === v4net[i]) return true;
      }
      return false;
    }
    if (v6.length === 0) return false;
    const w = words(p.g);
    outer: for (const r of v6) {
      for (let k = 0; k < 4; k++) {
        if (((w[k] as number) & (r.masks[k] as number)) >>> 0 !== r.words[k]) continue outer;
      }
      return true;
    }
    return false;
  };
}

/**
 * The key that stands for one client in per-client limits: an IPv4 address as it is, an IPv6 address as its
 * /64 network (`2001:db8:1:2::/64`), because one subscriber usually gets a whole /64 and could otherwise take a
 * fresh address, and a fresh budget, for every request. Anything that is not an address is returned unchanged.
 */
export function clientKey(ip: string): string {
  if (ip.indexOf(':') < 0) return ip;
  const p = parseIp(ip);
  if (p === null) return ip;
  if (p.v === 4) return formatIPv4(p.n);
  return `${formatIPv6([p.g[0] ?? 0, p.g[1] ?? 0, p.g[2] ?? 0, p.g[3] ?? 0, 0, 0, 0, 0])}/64`;
}
