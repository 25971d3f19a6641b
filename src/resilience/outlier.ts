/**
 * Passive outlier detection for one pool, after Envoy's: a backend that answers `consecutiveFailures` gateway
 * errors in a row (connect failure, reset, timeout, or a 5xx status) is ejected for `baseEjectionMs * 2^(k-1)`,
 * `k` being how many times it was ejected, capped at `maxEjectionMs`. After the ejection it is back (and its
 * run of failures starts from 0). A backend that stays in for `maxEjectionMs` without being ejected again has
 * its ejection count reset. At most floor(members × maxEjectedPercent / 100) backends are ejected at once; an
 * ejection over that share is skipped (so a one-backend pool is never ejected: the breaker protects it).
 * Pure, time passed in.
 */

/** Outlier detection parameters. */
export interface OutlierPolicy {
  /** Consecutive gateway errors that eject a backend (>= 1). */
  consecutiveFailures: number;
  /** First ejection length (ms); doubles with each further ejection. */
  baseEjectionMs: number;
  /** Longest ejection (ms). */
  maxEjectionMs: number;
  /** The largest share of the pool (percent) ejected at once. */
  maxEjectedPercent: number;
}

interface MemberState {
  consecutive: number;
  ejections: number;
  ejectedUntil: number;
}

/** Outlier state of the members of one pool, keyed by member (the endpoint key: pool and address, so a renamed backend keeps its state). */
export class OutlierDetector {
  private readonly members = new Map<string, MemberState>();

  /** A detector for the given member ids. */
  constructor(
    private readonly policy: OutlierPolicy,
    ids: Iterable<string>,
  ) {
    for (const id of ids) this.members.set(id, { consecutive: 0, ejections: 0, ejectedUntil: 0 });
  }

  /** Makes the member set `ids` (on reload): new ids start clean, kept ones keep their state, others are dropped. */
  setMembers(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const id of this.members.keys()) if (!keep.has(id)) this.members.delete(id);
    for (const id of keep) if (!this.members.has(id)) this.members.set(id, { consecutive: 0, ejections: 0, ejectedUntil: 0 });
  }

  /** True while `id` is ejected at `now`. */
  ejected(id: string, now: number): boolean {
    const m = this.members.get(id);
    return m !== undefined && now < m.ejectedUntil;
  }

  /** Monotonic ms until which `id` is ejected (0 if never). */
  ejectedUntil(id: string): number {
    return this.members.get(id)?.ejectedUntil ?? 0;
  }

  /** How many members are ejected at `now`. */
  ejectedCount(now: number): number {
    let n = 0;
    for (const m of this.members.values()) if (now < m.ejectedUntil) n++;
    return n;
  }

  /**
   * Feeds one request outcome of member `id` at `now`. Returns the ejection length in ms when this outcome
   * ejected it, else undefined. Outcomes of an ejected member (requests started before) are ignored.
   */
  record(id: string, failed: boolean, now: number): number | undefined {
    const m = this.members.get(id);
    if (!m || now < m.ejectedUntil) return undefined;
    if (m.ejections > 0 && now - m.ejectedUntil >= this.policy.maxEjectionMs) m.ejections = 0;
    if (!failed) {
      m.consecutive = 0;
      return undefined;
    }
    m.consecutive++;
    if (m.consecutive < this.policy.consecutiveFailures) return undefined;
    const allowed = Math.floor((this.members.size * this.policy.maxEjectedPercent) / 100);
    if (this.ejectedCount(now) + 1 > allowed) return undefined;
    m.consecutive = 0;
    m.ejections++;
    const ms = Math.min(this.policy.maxEjectionMs, this.policy.baseEjectionMs * 2 ** Math.min(m.ejections - 1, 40));
    m.ejectedUntil = now + ms;
    return ms;
  }
}
