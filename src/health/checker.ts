/**
 * Active health checks: one loop per endpoint that sends its probes and feeds the results to the endpoint's
 * health state. All probes of a backend run together, at the shortest configured interval; the round passes
 * only when every probe answers in time with an expected status.
 */
import type { HealthProbeConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import type { Transport } from '../upstream/transport.ts';

/**
 * Makes a probe-only transport: for a probe that targets another address than the backend's own, or (address
 * undefined) for the backend's own address when probes must not share its limited connection pool.
 */
export type ProbeTransportFactory = (address: string | undefined) => Transport;

/** Runs the probes of one endpoint until stopped. */
export class HealthChecker {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private running = false;
  private readonly extraTransports = new Map<string, Transport>();
  /** The probe-only transports are to be replaced before the next round (see {@link resetTransports}). */
  private stale = false;
  /** Resolves after the first round finished (for readiness). */
  readonly firstRound: Promise<void>;
  private resolveFirst!: () => void;

  /**
   * @param ownConnections probes of the backend's own address use a connection pool of their own instead of the
   *   backend's (set when the backend has `max_connections`: a busy backend must not fail its probes)
   */
  constructor(
    private readonly endpoint: Endpoint,
    private probes: HealthProbeConfig[],
    private readonly transportFor: ProbeTransportFactory,
    private ownConnections = false,
  ) {
    this.firstRound = new Promise((r) => {
      this.resolveFirst = r;
    });
  }

  /** Starts probing now. */
  start(): void {
    this.schedule(0);
  }

  /**
   * Replaces the probes (on reload); the next round uses them. A shorter interval takes effect at once: a round
   * already waiting for the old, longer interval is moved up to the new one.
   */
  update(probes: HealthProbeConfig[], ownConnections = this.ownConnections): void {
    const before = minInterval(this.probes);
    this.probes = probes;
    if (ownConnections !== this.ownConnections) {
      this.ownConnections = ownConnections;
      this.stale = true;
    }
    const after = minInterval(probes);
    if (!this.running && !this.stopped && this.timer !== undefined && after < before) {
      clearTimeout(this.timer);
      this.schedule(after);
    }
  }

  /**
   * Replaces the probe-only transports before the next round (the backend's TLS policy or CA bundle changed on a
   * reload). A round in progress finishes on the old ones.
   */
  resetTransports(): void {
    this.stale = true;
  }

  /** Stops probing and closes probe-only transports. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.extraTransports.values()) t.close();
    this.extraTransports.clear();
    this.resolveFirst();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.round(), ms);
    this.timer.unref?.();
  }

  private async round(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    if (this.stale) {
      this.stale = false;
      for (const t of this.extraTransports.values()) t.close();
      this.extraTransports.clear();
    }
    const probes = this.probes;
    try {
      const results = await Promise.all(probes.map((p) => this.runProbe(p)));
      if (this.stopped) return;
      const failed = results.find((r) => !r.ok);
      this.endpoint.probeResult(!failed, failed ? failed.detail : (results[0]?.detail ?? 'ok'));
    } finally {
      this.running = false;
      this.resolveFirst();
      const interval = minInterval(this.probes);
      if (Number.isFinite(interval)) this.schedule(interval);
    }
  }

  private transport(probe: HealthProbeConfig): Transport {
    if (!probe.address && !this.ownConnections) return this.endpoint.transport;
    const key = probe.address ?? '';
    let t = this.extraTransports.get(key);
    if (!t) {
      t = this.transportFor(probe.address);
      this.extraTransports.set(key, t);
    }
    return t;
  }

  private async runProbe(probe: HealthProbeConfig): Promise<{ ok: boolean; detail: string }> {
    const started = this.endpoint.now();
    const result = await this.probeOnce(probe);
    if (!this.stopped) this.endpoint.observeProbe({ ...result, duration_ms: this.endpoint.now() - started });
    return result;
  }

  private async probeOnce(probe: HealthProbeConfig): Promise<{ ok: boolean; detail: string }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), probe.timeout_ms);
    const headers: [string, string][] = [
      ['host', probe.host ?? this.endpoint.authority],
      ['user-agent', 'spooky-health-check'],
    ];
    for (const [k, v] of Object.entries(probe.headers)) {
      const name = k.toLowerCase();
      // One Host only (two make a strict backend answer 400): a Host among the headers stands in for an unset
      // `host` key; the `host` key wins over it.
      if (name === 'host') {
        if (probe.host === undefined) (headers[0] as [string, string])[1] = v;
      } else headers.push([name, v]);
    }
    try {
      const res = await this.transport(probe).request(
        { method: probe.method, target: probe.path, headers, body: null, signal: controller.signal },
        { connectTimeoutMs: probe.timeout_ms, responseHeaderTimeoutMs: probe.timeout_ms },
      );
      if (res.body instanceof ReadableStream) await res.body.cancel().catch(() => {});
      const [lo, hi] = probe.expected_status;
      const ok = res.status >= lo && res.status <= hi;
      return { ok, detail: `${probe.path}: status ${res.status}` };
    } catch (err) {
      const code = err instanceof SpookyError ? (err.code === 'client_aborted' ? 'timeout' : err.code) : String(err);
      return { ok: false, detail: `${probe.path}: ${code}` };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The shortest probe interval in milliseconds (Infinity without probes). */
function minInterval(probes: readonly HealthProbeConfig[]): number {
  return Math.min(...probes.map((p) => p.interval));
}
