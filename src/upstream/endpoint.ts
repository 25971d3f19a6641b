/**
 * Per-backend state that outlives a config generation: the connection pool (transport), requests in flight,
 * latency estimate and health. Pools of a generation refer to endpoints through {@link PoolMember}s, which add
 * the pool-specific id and weight.
 */
import type { Candidate } from '../balancer/types.ts';
import type { BackendConfig, CircuitBreakerConfig, HealthCheckConfig } from '../config/types.ts';
import type { SpookyError } from '../errors.ts';
import { HealthState, type HealthTransition } from '../health/state.ts';
import type { Clock } from '../lib/clock.ts';
import { type BreakerStateName, CircuitBreaker } from '../resilience/breaker.ts';
import { PeakEwma } from '../resilience/ewma.ts';
import type { OutlierDetector } from '../resilience/outlier.ts';
import type { BackendGate } from './backend-gate.ts';
import type { Transport } from './transport.ts';

/** Called when an endpoint's health changes. */
export type HealthListener = (endpoint: Endpoint, transition: HealthTransition) => void;

/** One finished active probe (each probe of a round separately), for metrics. */
export interface ProbeObservation {
  /** True when the probe answered in time with an expected status. */
  ok: boolean;
  /** Milliseconds from sending the probe to its answer (or failure). */
  duration_ms: number;
  /** `path: status N` or `path: error_code`. */
  detail: string;
}

/** A circuit-breaker or outlier-detection change of one backend, for logs. */
export type ResilienceChange = { kind: 'circuit'; state: BreakerStateName } | { kind: 'ejected'; ms: number };

/** Called when a backend's circuit changes state or outlier detection ejects it. */
export type ResilienceListener = (endpoint: Endpoint, change: ResilienceChange) => void;

/** Called after every active probe. */
export type ProbeListener = (endpoint: Endpoint, probe: ProbeObservation) => void;

/** Shared state of one backend address. */
export class Endpoint {
  /** Registry key: pool, protocol and origin (and TLS policy). */
  readonly key: string;
  /** Backend id (a reload that renames the backend of the same address renames it here too). */
  id: string;
  /** Parsed backend URL. */
  readonly url: URL;
  /** Upstream protocol. */
  readonly protocol: BackendConfig['protocol'];
  /** `host:port` of the backend, for the `upstream` host policy and logs. */
  readonly authority: string;
  /** Connection pool and protocol client (replaced by the registry when a reload changes `max_connections`). */
  transport: Transport;
  /** Health state machine. */
  readonly health: HealthState;
  /** Peak-EWMA of response-header latency. */
  readonly latency = new PeakEwma();
  /** Requests in flight now. */
  inFlight = 0;
  /** Requests finished (any outcome charged to the backend). */
  requests = 0;
  /** Requests that failed because of the backend. */
  failures = 0;
  /** Circuit breaker, or null when the pool has none. */
  breaker: CircuitBreaker | null = null;
  private breakerPolicy: CircuitBreakerConfig | null = null;
  /** The pool's outlier detector (shared by its endpoints), or null when off. */
  outlier: OutlierDetector | null = null;
  /** Times outlier detection ejected this backend. */
  ejections = 0;
  /** Told about circuit changes and ejections (set by the registry). */
  onResilience?: ResilienceListener;
  /** Concurrency slots and queue when the backend has `max_concurrent_requests`; null otherwise (set by the registry). */
  gate: BackendGate | null = null;
  /** Monotonic ms when the backend last (re)joined: created, or available again after being out (for slow start). */
  joinedAt: number;
  /** True while the backend was seen out (unhealthy, circuit not letting requests through, ejected). */
  private out = false;
  /** The pending cooldown-end report (see {@link watchCooldown}). */
  private cooldownTimer: ReturnType<typeof setTimeout> | undefined;

  /** The state of `backend` in `pool`, keyed by `key`, sending over `transport`; health changes go to `onHealth`. */
  constructor(
    key: string,
    /** Pool this endpoint belongs to. */
    readonly pool: string,
    backend: BackendConfig,
    transport: Transport,
    private readonly clock: Clock,
    private readonly onHealth: HealthListener,
    private readonly onProbe?: ProbeListener,
  ) {
    this.key = key;
    this.id = backend.id;
    this.url = backend.url;
    this.protocol = backend.protocol;
    this.authority = backend.url.host;
    this.transport = transport;
    this.health = new HealthState(backend.health_check);
    this.joinedAt = clock.now();
    // A backend that starts `initial: unhealthy` is out from the start, like one that went down: it ramps up
    // when it first comes up, whether or not anything (a request, /status) asked about it while it was down.
    this.out = !this.serves(clock.now());
  }

  /**
   * True while the backend may take traffic: healthy, its circuit lets a request through, and not ejected.
   * The first time it answers true after being out, the backend counts as rejoined ({@link joinedAt}).
   */
  available(): boolean {
    const now = this.clock.now();
    const ok = this.serves(now);
    if (!ok) this.out = true;
    else if (this.out) {
      // Back since whichever reason for being out ended last (a recovery noticed only at this pick still
      // counts from when it happened, so slow start does not restart at the first request after it).
      this.out = false;
      const back = Math.max(this.health.availableSince(), this.outlier?.ejectedUntil(this.key) ?? 0, this.breaker?.openEndsAt() ?? 0);
      this.joinedAt = Math.min(now, back);
    }
    return ok;
  }

  /**
   * Whether the backend may take traffic now, like {@link available} but with no bookkeeping: for observers
   * (alerts), whose asking must not change when a backend counts as rejoined (slow start).
   */
  canServe(): boolean {
    return this.serves(this.clock.now());
  }

  private serves(now: number): boolean {
    return (
      this.health.available(now) &&
      (this.breaker === null || this.breaker.allows(now)) &&
      (this.outlier === null || !this.outlier.ejected(this.key, now))
    );
  }

  /** Circuit state at `now` (`closed` when there is no breaker). */
  circuit(now: number): BreakerStateName {
    return this.breaker?.state(now) ?? 'closed';
  }

  /** True while outlier detection keeps this backend out. */
  ejected(now: number): boolean {
    return this.outlier?.ejected(this.key, now) === true;
  }

  /** Sets the circuit breaker policy on (re)load; an unchanged policy keeps the breaker and its state. */
  setBreakerPolicy(policy: CircuitBreakerConfig | null): void {
    if (policy === null) {
      this.breaker = null;
      this.breakerPolicy = null;
      return;
    }
    if (this.breaker !== null && JSON.stringify(policy) === JSON.stringify(this.breakerPolicy)) return;
    this.breakerPolicy = policy;
    this.breaker = new CircuitBreaker({
      consecutiveFailures: policy.consecutive_failures,
      failureRate: policy.failure_rate,
      windowMs: policy.window_ms,
      minRequests: policy.min_requests,
      openMs: policy.open_ms,
      halfOpenMax: policy.half_open_max,
    });
  }

  /**
   * Updates the health policy on reload (state is kept). A backend that is out and has no probes any more comes
   * back at the end of its cooldown: that moment is reported like any cooldown's end (at once when it has passed).
   */
  setHealthPolicy(policy: HealthCheckConfig): void {
    this.health.setPolicy(policy);
    const now = this.clock.now();
    const back = this.health.expire(now);
    if (back) this.report(back, now);
    else this.watchCooldown(now);
  }

  /** Marks the start of a request; returns the start time to pass to {@link end}. */
  begin(): number {
    this.inFlight++;
    const now = this.clock.now();
    this.breaker?.onStart(now);
    return now;
  }

  /**
   * Marks the end of a request started with {@link begin}. `headersAt` is when response headers arrived (for
   * latency); `error` says what went wrong (undefined: the backend answered, judged by `status`). An error that
   * is not the backend's (`source` other than `upstream`: the client went away, was too slow, sent a body over the
   * limit or shorter than its content-length) is no verdict either way: it neither fails the backend nor counts
   * as a success that could close a half-open circuit or end a failure streak.
   */
  end(startedAt: number, headersAt: number | undefined, error: SpookyError | undefined, status: number): void {
    this.inFlight--;
    const now = this.clock.now();
    if (headersAt !== undefined) this.latency.observe(headersAt - startedAt, headersAt);
    if (error !== undefined && error.source !== 'upstream') {
      this.breaker?.onCancel(now, startedAt);
      return;
    }
    const gatewayError = error !== undefined;
    const failed = gatewayError || status === 502 || status === 503 || status === 504;
    this.requests++;
    if (failed) this.failures++;
    if (this.breaker !== null) {
      const state = this.breaker.onResult(failed, now, startedAt);
      if (state === 'open') this.out = true;
      if (state !== undefined) this.onResilience?.(this, { kind: 'circuit', state });
    }
    if (this.outlier !== null) {
      const ms = this.outlier.record(this.key, gatewayError || status >= 500, now);
      if (ms !== undefined) {
        this.out = true;
        this.ejections++;
        this.onResilience?.(this, { kind: 'ejected', ms });
      }
    }
    const back = this.health.expire(now); // a cooldown that ended since the timer below was armed
    if (back) this.report(back, now);
    const transition = this.health.outcome(failed, now);
    if (transition) this.report(transition, now);
  }

  /** Reports a health transition; without probes, arms a timer that reports the end of the cooldown. */
  private report(transition: HealthTransition, now: number): void {
    if (!transition.healthy) this.out = true;
    this.onHealth(this, transition);
    if (!transition.healthy) this.watchCooldown(now);
  }

  /**
   * Without probes, while out: the timer that reports the end of the cooldown when it comes (one at a time: a
   * reload or a new trip re-arms it). Nothing otherwise.
   */
  private watchCooldown(now: number): void {
    clearTimeout(this.cooldownTimer);
    this.cooldownTimer = undefined;
    const left = this.health.cooldownLeft(now);
    if (left === Number.POSITIVE_INFINITY) return;
    this.cooldownTimer = setTimeout(() => {
      this.cooldownTimer = undefined;
      const t = this.health.expire(this.clock.now());
      if (t) this.report(t, this.clock.now());
    }, left + 1);
    this.cooldownTimer.unref?.();
  }

  /** Monotonic milliseconds of the endpoint's clock (for probe durations). */
  now(): number {
    return this.clock.now();
  }

  /** Reports one finished probe to the probe listener (metrics); health is fed per round by {@link probeResult}. */
  observeProbe(probe: ProbeObservation): void {
    this.onProbe?.(this, probe);
  }

  /** Feeds one active probe result. */
  probeResult(ok: boolean, detail: string): void {
    const now = this.clock.now();
    const transition = this.health.probe(ok, now, detail);
    if (transition) this.report(transition, now);
  }
}

/** An endpoint as a member of one pool: adds the pool's backend id and weight. */
export class PoolMember implements Candidate {
  /** A balancer candidate for `endpoint` under `id` and `weight`. */
  constructor(
    /** Backend id within the pool. */
    readonly id: string,
    /** Relative weight. */
    readonly weight: number,
    /** Shared endpoint state. */
    readonly endpoint: Endpoint,
  ) {}

  /** True while the backend may take traffic. */
  available(): boolean {
    return this.endpoint.available();
  }

  /** Requests in flight to this endpoint. */
  inFlight(): number {
    return this.endpoint.inFlight;
  }

  /** The weight at `now` while slow start ramps it (only on `SlowStartMember`s of pools with slow start). */
  currentWeight?(now: number): number;

  /** False while the backend is at its concurrency limit (or others are queued for it). */
  hasCapacity(): boolean {
    const g = this.endpoint.gate;
    return g === null || g.hasCapacity();
  }

  /** Peak-EWMA latency in milliseconds at `now`. */
  latency(now: number): number {
    return this.endpoint.latency.get(now);
  }
}
