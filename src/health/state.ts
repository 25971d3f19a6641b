/**
 * The health state machine of one backend: pure, time passed in. Active probe results and passive
 * (real-traffic) outcomes both feed it; the balancer asks {@link HealthState.available}.
 *
 * Rules (the Rust Spooky's, made precise):
 * - healthy: `failure_threshold` consecutive failed probes, or `passive_failure_threshold` consecutive failed
 *   requests, mark it unhealthy and start a cooldown of `cooldown_ms`.
 * - unhealthy with active probes: probe results during the cooldown are ignored; after it,
 *   `success_threshold` consecutive successful probes mark it healthy.
 * - unhealthy without active probes (tripped by passive checks): it becomes available again when the cooldown
 *   ends; the next failed requests can trip it again.
 */
import type { HealthCheckConfig } from '../config/types.ts';

/** Why the state changed, for logs and metrics. */
export type HealthTransitionReason = 'probe_failures' | 'probe_successes' | 'passive_failures' | 'cooldown_over';

/** A state change, reported to the caller so it can log it. */
export interface HealthTransition {
  /** New state. */
  healthy: boolean;
  /** What caused it. */
  reason: HealthTransitionReason;
}

/** Health of one backend. */
export class HealthState {
  private up: boolean;
  private probeFailures = 0;
  private probeSuccesses = 0;
  private passiveFailures = 0;
  private cooldownUntil = 0;
  /** Monotonic time (ms) of the last transition; 0 at start. */
  changedAt = 0;
  /** Result of the last probe: undefined before the first. */
  lastProbe?: { ok: boolean; at: number; detail: string };

  constructor(private policy: HealthCheckConfig) {
    this.up = policy.initial === 'healthy';
    // Without probes nothing could ever bring an initially-unhealthy backend up: it stays out.
    if (!this.up && policy.probes.length === 0) this.cooldownUntil = Number.POSITIVE_INFINITY;
  }

  /** Replaces the policy (on reload) without losing the current state. */
  setPolicy(policy: HealthCheckConfig): void {
    this.policy = policy;
    // A backend kept out for good (initially unhealthy, nothing to probe it) can come back once probes exist.
    if (this.cooldownUntil === Number.POSITIVE_INFINITY && policy.probes.length > 0) this.cooldownUntil = 0;
  }

  /** True while the backend may receive traffic at `now`. */
  available(now: number): boolean {
    if (this.up) return true;
    return this.policy.probes.length === 0 && now >= this.cooldownUntil;
  }

  /** Monotonic ms since which the backend has been available, health-wise (meaningful while it is). */
  availableSince(): number {
    return this.up ? this.changedAt : this.cooldownUntil;
  }

  /** The reported state (what /status and metrics show). */
  healthy(now: number): boolean {
    return this.available(now);
  }

  /**
   * Without active probes, a backend tripped by passive checks is healthy again once its cooldown is over:
   * makes that a transition (`cooldown_over`) when the time has come, so it can be logged. Undefined otherwise.
   */
  expire(now: number): HealthTransition | undefined {
    if (this.up || this.policy.probes.length > 0 || now < this.cooldownUntil) return undefined;
    return this.markUp(now, 'cooldown_over');
  }

  /** Milliseconds until {@link expire} can report `cooldown_over` (Infinity when nothing is pending). */
  cooldownLeft(now: number): number {
    if (this.up || this.policy.probes.length > 0) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.cooldownUntil - now);
  }

  /** Feeds one active probe result. Returns the transition, if any. */
  probe(ok: boolean, now: number, detail = ''): HealthTransition | undefined {
    this.lastProbe = { ok, at: now, detail };
    if (this.up) {
      if (ok) {
        this.probeFailures = 0;
        return undefined;
      }
      this.probeFailures++;
      if (this.probeFailures >= this.policy.failure_threshold) return this.markDown(now, 'probe_failures');
      return undefined;
    }
    if (now < this.cooldownUntil) return undefined;
    if (!ok) {
      this.probeSuccesses = 0;
      return undefined;
    }
    this.probeSuccesses++;
    if (this.probeSuccesses >= this.policy.success_threshold) return this.markUp(now, 'probe_successes');
    return undefined;
  }

  /**
   * Feeds one real request outcome (`failed`: connect error, reset, timeout, or 502/503/504 from the backend).
   * Returns the transition, if any.
   */
  outcome(failed: boolean, now: number): HealthTransition | undefined {
    const threshold = this.policy.passive_failure_threshold;
    if (threshold <= 0) return undefined;
    if (!failed) {
      this.passiveFailures = 0;
      if (!this.up && this.policy.probes.length === 0 && now >= this.cooldownUntil) return this.markUp(now, 'cooldown_over');
      return undefined;
    }
    this.passiveFailures++;
    if (this.passiveFailures < threshold) return undefined;
    if (this.up) return this.markDown(now, 'passive_failures');
    if (this.policy.probes.length === 0 && now >= this.cooldownUntil) {
      // Tripped again right after its cooldown: start a new cooldown.
      this.passiveFailures = 0;
      this.cooldownUntil = now + this.policy.cooldown_ms;
    }
    return undefined;
  }

  private markDown(now: number, reason: HealthTransitionReason): HealthTransition {
    this.up = false;
    this.probeFailures = 0;
    this.probeSuccesses = 0;
    this.passiveFailures = 0;
    this.cooldownUntil = now + this.policy.cooldown_ms;
    this.changedAt = now;
    return { healthy: false, reason };
  }

  private markUp(now: number, reason: HealthTransitionReason): HealthTransition {
    this.up = true;
    this.probeFailures = 0;
    this.probeSuccesses = 0;
    this.passiveFailures = 0;
    this.changedAt = now;
    return { healthy: true, reason };
  }
}
