/**
 * The audit trail: one structured record per reload attempt and per operator action (shutdown), written to
 * the log as `{"event":"audit",...}` and kept in memory (the last {@link AUDIT_LIMIT}) for `/status`.
 */
import type { ConfigChanges } from '../config/diff.ts';
import type { Logger } from '../observability/logger.ts';
import type { ListenerChange } from './listeners.ts';

/** How many audit records `/status` keeps. */
export const AUDIT_LIMIT = 100;

/**
 * What started an action: a signal, a watched file change, an admin call, or (`worker_start`) a worker that was
 * restarted while a reload ran and is brought to the config the others run.
 */
export type AuditTrigger = 'signal' | 'file' | 'admin' | 'worker_start' | 'kubernetes';

/** One audit record. */
export interface AuditRecord {
  /** When the action ended (ISO 8601). */
  time: string;
  /** What was done. */
  action: 'reload' | 'shutdown';
  /** What started it. */
  trigger: AuditTrigger;
  /** `ok`, or `error` when a reload was refused (the running config stays). */
  result: 'ok' | 'error';
  /** The generation running afterwards. */
  generation: number;
  /** Milliseconds the action took (for reloads: read, check, bind, swap). */
  duration_ms?: number;
  /** For a successful reload: what changed. */
  changes?: ConfigChanges;
  /** For a successful reload: listeners added, replaced (new certificates) or removed. */
  listeners?: ListenerChange[];
  /** For a refused reload: every error (`file:line:col: error: message` for config errors). */
  errors?: string[];
  /** The signal (for `trigger: "signal"`). */
  signal?: string;
  /** For `trigger: "file"`: the files whose change started the reload. */
  files?: string[];
  /** For `trigger: "admin"`: the caller's address. */
  client?: string;
  /** With workers: each worker's result of a reload the supervisor coordinated. */
  workers?: WorkerReloadOutcome[];
}

/** One worker's result of a reload the supervisor coordinated. */
export interface WorkerReloadOutcome {
  /** Worker index. */
  worker: number;
  /** Its process id. */
  pid: number;
  /** Whether it applied the config. */
  ok: boolean;
  /** The generation it runs afterwards. */
  generation: number;
  /** Why it did not apply it. */
  errors?: string[];
}

/** The last {@link AUDIT_LIMIT} audit records, oldest first. */
export class AuditTrail {
  private readonly records: AuditRecord[] = [];

  constructor(private readonly limit = AUDIT_LIMIT) {}

  /** Adds a record, dropping the oldest beyond the limit. */
  add(record: AuditRecord): void {
    this.records.push(record);
    if (this.records.length > this.limit) this.records.splice(0, this.records.length - this.limit);
  }

  /**
   * Stamps `rec` with the wall-clock time `wallNowMs`, keeps it, and logs it as `{"event":"audit",...}` (at error
   * level when the result is an error).
   */
  record(rec: Omit<AuditRecord, 'time'>, msg: string, log: Pick<Logger, 'info' | 'error'>, wallNowMs: number): void {
    const full: AuditRecord = { time: new Date(wallNowMs).toISOString(), ...rec };
    this.add(full);
    const { time: _time, ...fields } = full;
    log[rec.result === 'ok' ? 'info' : 'error']({ event: 'audit', ...fields }, msg);
  }

  /** The records, oldest first. */
  list(): readonly AuditRecord[] {
    return this.records;
  }
}
