/**
 * A route's client address rules (`client_ips`), compiled once per config generation: a denied address is
 * refused even when an allow entry covers it (the more specific refusal wins, as a deny written before an
 * allow does in nginx); with an allow list, only the addresses it covers pass; what is not an address never does.
 */
import type { ClientIpsConfig } from '../config/types.ts';
import { compileTrust, parseIp } from '../lib/cidr.ts';

/** The predicate "this client address may use the route", or undefined when the route admits every address. */
export function clientAccess(rules: ClientIpsConfig | undefined): ((ip: string) => boolean) | undefined {
  if (rules === undefined || (rules.allow.length === 0 && rules.deny.length === 0)) return undefined;
  const denied = compileTrust(rules.deny);
  // Something that is not an address (never Bun's peer; a forwarded value Spooky could not read) is refused.
  if (rules.allow.length === 0) return (ip) => parseIp(ip) !== null && !denied(ip);
  const allowed = compileTrust(rules.allow);
  return (ip) => allowed(ip) && !denied(ip);
}
