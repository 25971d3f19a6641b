/**
 * `Max-Forwards` on OPTIONS and TRACE (RFC 9110 section 7.6.2): an intermediary that gets one of them with
 * `Max-Forwards: 0` answers it itself instead of forwarding it, and forwards a larger value decremented by one.
 * Other methods ignore the field (it passes unchanged), as the RFC says.
 */

/** Methods a route answers when it lists no `allowed_methods`, for the `Allow` of a final-recipient answer. */
export const DEFAULT_ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * The `Max-Forwards` of an OPTIONS or TRACE request as a number, or undefined when the method is another one or the
 * field is absent or not a plain decimal number (then it is forwarded as it came).
 */
export function maxForwardsOf(method: string, value: string | null): number | undefined {
  if ((method !== 'OPTIONS' && method !== 'TRACE') || value === null || !/^[0-9]{1,10}$/.test(value)) return undefined;
  return Number(value);
}

/** Sets the forwarded `max-forwards` field of `headers` to `received - 1` (the caller checked `received > 0`). */
export function decrementMaxForwards(headers: [string, string][], received: number): void {
  for (const h of headers) if (h[0] === 'max-forwards') h[1] = String(received - 1);
}
