/**
 * Delivery of alerts to webhooks: POST JSON, retries with exponential backoff and full jitter, a bounded
 * queue per webhook. Each webhook has its own queue and sends one alert at a time, in order, so a slow or
 * hanging receiver only delays (and, once its queue is full, drops) its own alerts. `enqueue` never waits:
 * callers on the request path or in health checks hand over an alert and go on.
 *
 * An attempt succeeds on a 2xx answer. Network errors, timeouts, 408, 429 and 5xx are retried; any other
 * status (a 3xx, since redirects are not followed, or a 4xx) fails the delivery at once.
 */
import type { AlertsConfig, AlertWebhookConfig } from '../config/types.ts';
import type { Random } from '../lib/random.ts';
import { backoffDelay } from '../resilience/backoff.ts';
import type { AlertPayload } from './alert.ts';

/** Outcome of one attempt. */
export type AttemptResult = 'success' | 'http_error' | 'timeout' | 'network_error';

/** Sends one POST; resolves with the response status, rejects on a network error or after `timeoutMs` (a `TimeoutError`). */
export type PostFn = (url: string, init: { headers: Record<string, string>; body: string; timeoutMs: number }) => Promise<number>;

/** What the queue reports (metrics and logs). */
export interface DeliveryHooks {
  /** One attempt ended. */
  attempt(webhook: string, result: AttemptResult, detail: string, attempt: number, payload: AlertPayload): void;
  /** A delivery ended: delivered, or failed after its last attempt (or a status that is not retried). */
  done(webhook: string, delivered: boolean, attempts: number, detail: string, payload: AlertPayload): void;
  /** The webhook's queue was full: the alert was dropped for it. */
  dropped(webhook: string, payload: AlertPayload): void;
}

/** What the queue needs from outside. */
export interface DeliveryDeps {
  /** Sends a POST. Default {@link fetchPost}. */
  post: PostFn;
  /** Waits `ms` milliseconds (backoff). */
  sleep(ms: number): Promise<void>;
  /** Random source for the jitter. */
  random: Random;
  /** Metrics and logs. */
  hooks: DeliveryHooks;
}

/** POST with Bun's fetch: JSON body, no redirects, the response body is not read. */
export const fetchPost: PostFn = async (url, init) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'spooky-alerts/1', ...init.headers },
    body: init.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(init.timeoutMs),
  });
  void res.body?.cancel().catch(() => {});
  return res.status;
};

/** Whether a failed attempt with this status may be retried. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

function classify(err: unknown): { result: AttemptResult; detail: string } {
  const name = (err as { name?: string } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return { result: 'timeout', detail: 'timed out' };
  return { result: 'network_error', detail: err instanceof Error ? err.message : String(err) };
}

/** The queue and sender of one webhook. */
export class WebhookQueue {
  private readonly items: AlertPayload[] = [];
  private running = false;
  private closed = false;

  /** An empty queue of at most `capacity` alerts for one webhook, retried as `retries` says. */
  constructor(
    /** The webhook. */
    readonly cfg: AlertWebhookConfig,
    private readonly retries: AlertsConfig['retries'],
    private readonly capacity: number,
    private readonly deps: DeliveryDeps,
  ) {}

  /** Whether this webhook takes `payload` (its `kinds` and `send_resolved`). */
  accepts(payload: Pick<AlertPayload, 'kind' | 'status'>): boolean {
    return this.cfg.kinds.includes(payload.kind) && (payload.status === 'firing' || this.cfg.send_resolved);
  }

  /** Alerts waiting or being sent. */
  get length(): number {
    return this.items.length;
  }

  /** Queues `payload` (never waits); false when the queue was full and it was dropped. */
  push(payload: AlertPayload): boolean {
    if (this.closed) return false;
    if (this.items.length >= this.capacity) {
      this.deps.hooks.dropped(this.cfg.name, payload);
      return false;
    }
    this.items.push(payload);
    if (!this.running) void this.run();
    return true;
  }

  /** Stops after the attempt in progress; what waits is not sent. */
  close(): void {
    this.closed = true;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (!this.closed && this.items.length > 0) {
        const payload = this.items[0] as AlertPayload;
        await this.deliver(payload);
        this.items.shift();
      }
    } finally {
      this.running = false;
    }
  }

  private async deliver(payload: AlertPayload): Promise<void> {
    const body = JSON.stringify(payload);
    const policy = { baseMs: this.retries.base_ms, capMs: this.retries.cap_ms };
    let detail = '';
    for (let attempt = 1; attempt <= this.retries.attempts; attempt++) {
      if (attempt > 1) await this.deps.sleep(backoffDelay(attempt - 2, policy, this.deps.random));
      if (this.closed) return;
      let retry: boolean;
      try {
        const status = await this.deps.post(this.cfg.url, { headers: this.cfg.headers, body, timeoutMs: this.cfg.timeout_ms });
        if (status >= 200 && status <= 299) {
          this.deps.hooks.attempt(this.cfg.name, 'success', `HTTP ${status}`, attempt, payload);
          this.deps.hooks.done(this.cfg.name, true, attempt, `HTTP ${status}`, payload);
          return;
        }
        detail = `HTTP ${status}`;
        retry = retryableStatus(status);
        this.deps.hooks.attempt(this.cfg.name, 'http_error', detail, attempt, payload);
      } catch (e) {
        const c = classify(e);
        detail = c.detail;
        retry = true;
        this.deps.hooks.attempt(this.cfg.name, c.result, detail, attempt, payload);
      }
      if (!retry) {
        this.deps.hooks.done(this.cfg.name, false, attempt, `${detail} (not retried)`, payload);
        return;
      }
    }
    this.deps.hooks.done(this.cfg.name, false, this.retries.attempts, detail, payload);
  }
}

/** Every webhook's queue. */
export class DeliveryQueue {
  /** The webhook queues, in config order. */
  readonly webhooks: WebhookQueue[];

  /** One {@link WebhookQueue} per configured webhook. */
  constructor(cfg: Pick<AlertsConfig, 'webhooks' | 'retries' | 'queue_size'>, deps: DeliveryDeps) {
    this.webhooks = cfg.webhooks.map((w) => new WebhookQueue(w, cfg.retries, cfg.queue_size, deps));
  }

  /** Hands `payload` to every webhook that takes it; never waits. Returns how many took it. */
  enqueue(payload: AlertPayload): number {
    let n = 0;
    for (const w of this.webhooks) if (w.accepts(payload) && w.push(payload)) n++;
    return n;
  }

  /** Stops every webhook after its attempt in progress. */
  close(): void {
    for (const w of this.webhooks) w.close();
  }
}
