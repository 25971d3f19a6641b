/**
 * Access-log sampling: only a share (`log.access_sampling.ratio`) of the access records is written, while the
 * records of failed requests (status >= 500, or any Spooky error code) are kept unless
 * `always_log_errors: false`. The decision is one random draw per record from an injected source.
 */
import type { AccessSamplingConfig } from '../config/types.ts';
import type { Random } from '../lib/random.ts';
import type { RequestRecord } from './access-log.ts';

/** Writes access records (the {@link AccessLog} or a sampling wrapper around it). */
export interface AccessWriter {
  /** Writes one record (or, when sampled out, drops it). */
  write(rec: RequestRecord): void;
}

/** True when the record belongs to a failed request: status >= 500 or a Spooky error code. */
export function isErrorRecord(rec: Pick<RequestRecord, 'status' | 'error'>): boolean {
  return rec.status >= 500 || rec.error !== undefined;
}

/** Whether a record is written under `cfg`; draws from `random` only when the outcome is not already certain. */
export function keepRecord(rec: Pick<RequestRecord, 'status' | 'error'>, cfg: AccessSamplingConfig, random: Random): boolean {
  if (cfg.ratio >= 1) return true;
  if (cfg.always_log_errors && isErrorRecord(rec)) return true;
  if (cfg.ratio <= 0) return false;
  return random() < cfg.ratio;
}

/** Counts of the access-log sampling. */
export interface AccessSamplingStats {
  /** Records not written because of sampling. */
  sampledOut: number;
}

/** An access writer that writes a share of the records to `inner`, counting the ones it drops. */
export class SampledAccessLog implements AccessWriter {
  /** Writes to `inner` the share of records `cfg` keeps (one `random` draw each), counting the others in `stats`. */
  constructor(
    private readonly inner: AccessWriter,
    private readonly cfg: AccessSamplingConfig,
    private readonly random: Random,
    private readonly stats: AccessSamplingStats,
  ) {}

  /** Writes the record when the sampling keeps it. */
  write(rec: RequestRecord): void {
    if (keepRecord(rec, this.cfg, this.random)) this.inner.write(rec);
    else this.stats.sampledOut++;
  }
}

const wrappers = new WeakMap<AccessSamplingConfig, SampledAccessLog>();

/**
 * The writer for one config generation: `access` itself when nothing is sampled out (no cost on the request
 * path), else one {@link SampledAccessLog} per sampling config (kept for the generation's lifetime).
 */
export function accessWriterFor(
  access: AccessWriter,
  cfg: AccessSamplingConfig | undefined,
  random: Random,
  stats: AccessSamplingStats,
): AccessWriter {
  if (cfg === undefined || cfg.ratio >= 1) return access;
  let w = wrappers.get(cfg);
  if (!w) wrappers.set(cfg, (w = new SampledAccessLog(access, cfg, random, stats)));
  return w;
}
