/**
 * The request path's side of per-backend limits: prefer a backend with a free slot when the chosen one is
 * full, and wait for a slot of the chosen backend (FIFO queue, bounded in size and time). Only called for
 * pools with `max_concurrent_requests` on some backend.
 */
import type { SpookyError } from '../errors.ts';
import type { PoolRuntime } from '../runtime/generation.ts';
import type { BackendGate } from '../upstream/backend-gate.ts';
import type { PoolMember } from '../upstream/endpoint.ts';

/**
 * `chosen` is full: another usable backend of the pool with a free slot (picked by the pool's own strategy among
 * those), or `chosen` itself when every other one is full, out or excluded (the request then queues at `chosen`).
 */
export function preferFreeBackend(pool: PoolRuntime, chosen: PoolMember, exclude: ReadonlySet<string> | undefined, now: number): PoolMember {
  const skip = new Set<string>(exclude);
  for (const m of pool.members) if (!m.hasCapacity()) skip.add(m.id);
  if (skip.size >= pool.members.length) return chosen;
  return pool.picker.pick({ exclude: skip, now }) ?? chosen;
}

/**
 * Takes a slot of `gate`, waiting in its queue when needed. Resolves undefined once the request holds a slot
 * (it must release it when the attempt ends), or the refusal: `queue_full`, `queue_timeout` or
 * `client_aborted` (the client went away while queued).
 */
export async function admitToBackend(gate: BackendGate, signal: AbortSignal): Promise<SpookyError | undefined> {
  const r = gate.admit(signal);
  if (r === undefined) return undefined;
  return r instanceof Promise ? await r : r;
}
