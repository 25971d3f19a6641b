/**
 * A route's header changes (`request_headers`, `response_headers`; see README "Header rules"): `remove`, then
 * `set`, then `add`, applied after Spooky's own header handling. Pure functions over the two forms headers
 * take on the request path: the upstream list and the client response's `Headers`.
 */
import type { HeaderRules } from '../config/types.ts';

/** `headers` (names lower case) with `rules` applied, as a new list; the input is not changed. */
export function applyToList(headers: readonly [string, string][], rules: HeaderRules): [string, string][] {
  const drop = new Set(rules.remove);
  for (const [name] of rules.set) drop.add(name);
  const out: [string, string][] = drop.size === 0 ? [...headers] : headers.filter((h) => !drop.has(h[0]));
  for (const [name, value] of rules.set) out.push([name, value]);
  for (const [name, value] of rules.add) {
    // One Cookie field towards a backend (RFC 6265 section 5.4): an added cookie joins the one already there.
    const cookie = name === 'cookie' ? out.findIndex((h) => h[0] === 'cookie') : -1;
    const existing = cookie >= 0 ? (out[cookie] as [string, string]) : undefined;
    if (existing !== undefined) out[cookie] = ['cookie', `${existing[1]}; ${value}`];
    else out.push([name, value]);
  }
  return out;
}

/** Applies `rules` to `headers` in place. */
export function applyToHeaders(headers: Headers, rules: HeaderRules): void {
  for (const name of rules.remove) headers.delete(name);
  for (const [name, value] of rules.set) headers.set(name, value);
  for (const [name, value] of rules.add) headers.append(name, value);
}
