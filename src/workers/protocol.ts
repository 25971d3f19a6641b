/**
 * The IPC messages between the supervisor and its worker processes (`Bun.spawn` with `ipc`, structured clone).
 * Workers are started by the supervisor with the same command line plus two environment variables
 * ({@link WORKER_ENV}, {@link PORTS_ENV}); everything after that goes through these messages.
 */
import type { ReloadMeta, ReloadTrigger } from '../runtime/runtime.ts';

/** Environment variable holding a worker's index (0-based); set only in worker processes. */
export const WORKER_ENV = 'SPOOKY_WORKER';
/** Environment variable holding the ports already bound by another worker, as JSON `{ "<listener id>": port }`. */
export const PORTS_ENV = 'SPOOKY_WORKER_PORTS';

/** Listener id (configured `address:port`) to the port the workers share. */
export type SharedPorts = Record<string, number>;

/** A bound listener as a worker reports it. */
export interface WorkerListener {
  /** Configured `address:port`. */
  id: string;
  /** Bound address. */
  address: string;
  /** Bound port (TCP and UDP). */
  port: number;
}

/** What the supervisor can ask a worker; each request gets one {@link WorkerResponse}. */
export type WorkerOp =
  | { op: 'status' }
  | { op: 'ready' }
  | { op: 'metrics' }
  | { op: 'stats' }
  | { op: 'config' }
  | { op: 'reload'; trigger: ReloadTrigger; meta: ReloadMeta; ports: SharedPorts }
  /** The supervisor refused a reload itself (the file did not validate): raise the `reload_failed` alert. */
  | { op: 'reload_refused'; trigger: ReloadTrigger; errors: string[] };

/** Supervisor -> worker. */
export type ToWorker =
  | ({ type: 'request'; id: number } & WorkerOp)
  /** Drain and exit 0 (SIGTERM/SIGINT forwarded). */
  | { type: 'shutdown'; signal: string }
  /** Exit at once (second signal). */
  | { type: 'exit_now' };

/** Worker -> supervisor. */
export type FromWorker =
  /** The worker's listeners are bound. */
  | { type: 'listening'; pid: number; listeners: WorkerListener[]; generation: number }
  /** The answer to request `id`. */
  | { type: 'response'; id: number; ok: true; value: unknown }
  | { type: 'response'; id: number; ok: false; error: string };

/** True when `m` looks like a message of this protocol (IPC input is checked, never trusted blindly). */
export function isMessage(m: unknown): m is { type: string } {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

/** Parses {@link PORTS_ENV}; anything malformed gives an empty map. */
export function parseSharedPorts(text: string | undefined): SharedPorts {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
    const out: SharedPorts = {};
    for (const [k, p] of Object.entries(v)) if (Number.isInteger(p) && (p as number) > 0 && (p as number) <= 65535) out[k] = p as number;
    return out;
  } catch {
    return {};
  }
}
