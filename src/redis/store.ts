/**
 * One Redis server as a shared store: a connection that is opened eagerly and again after it broke, a deadline
 * on every answer, and a circuit breaker in front of it, so that while Redis is down or stalled callers are
 * told at once instead of each waiting out the deadline. Lua scripts are sent by digest (`EVALSHA`) and loaded
 * with `EVAL` the first time a server does not know one.
 *
 * The socket, RESP and reconnection are Bun's built-in Redis client; this module decides when to use it.
 */
import { readFileSync } from 'node:fs';
import type { RedisConfig } from '../config/types.ts';
import type { Clock } from '../lib/clock.ts';
import { CircuitBreaker } from '../resilience/breaker.ts';

/** What the store needs of a Redis client (Bun's `RedisClient` has it). */
export interface RedisConnection {
  /** True while the connection is open. */
  readonly connected: boolean;
  /** Opens the connection. */
  connect(): Promise<unknown>;
  /** Sends one command and resolves with its reply. */
  send(command: string, args: string[]): Promise<unknown>;
  /** Closes the connection; pending commands are rejected. */
  close(): void;
}

/** Why Redis could not answer. */
export type RedisFailure = 'down' | 'timeout' | 'error';

/** A command the store did not get an answer to (the caller falls back to its failure mode). */
export class RedisUnavailable extends Error {
  /** A failure for `reason`. */
  constructor(
    /** `down`: not tried, the store is waiting out `retry_ms`; `timeout`: no answer in time; `error`: refused or broken. */
    readonly reason: RedisFailure,
    message: string,
  ) {
    super(message);
    this.name = 'RedisUnavailable';
  }
}

/** One Lua script: its text and its SHA-1 digest. */
export interface RedisScript {
  /** Lua source. */
  text: string;
  /** Lowercase hex SHA-1 of `text`, as `SCRIPT LOAD` returns it. */
  sha: string;
}

/** A script with its digest computed. */
export function redisScript(text: string): RedisScript {
  return { text, sha: new Bun.CryptoHasher('sha1').update(text).digest('hex') };
}

/** Settings of a store. */
export interface RedisStoreOptions {
  /** Longest wait for connecting and for each answer, in ms. */
  timeoutMs: number;
  /** How long the store stays down after a failure before one call tries Redis again, in ms. */
  retryMs: number;
  /** Monotonic clock for the breaker. */
  clock: Clock;
  /** Makes a new (unconnected) client. */
  connection: () => RedisConnection;
  /** Called when the store goes down (with why) or comes back up. */
  onStateChange?: (up: boolean, why: string) => void;
  /** Where failures are counted (shared by the stores a reload replaces); default: the store's own. */
  failures?: RedisFailureCounts;
}

/** Counts of a store's failures since it was made, by reason (for metrics). */
export type RedisFailureCounts = Record<RedisFailure, number>;

/** A Redis server used through Lua scripts, with deadlines and a breaker. */
export class RedisStore {
  private conn: RedisConnection | undefined;
  private connecting: Promise<void> | undefined;
  private readonly breaker: CircuitBreaker;
  private closed = false;
  private isUp = true;
  /** Failures by reason (`opts.failures` when given). */
  readonly failures: RedisFailureCounts;

  /** A store that connects at once in the background. */
  constructor(private readonly opts: RedisStoreOptions) {
    this.failures = opts.failures ?? { down: 0, timeout: 0, error: 0 };
    // One failure opens it; after retry_ms one call is let through as the probe.
    this.breaker = new CircuitBreaker({
      consecutiveFailures: 1,
      failureRate: 0,
      windowMs: 1000,
      minRequests: 1,
      openMs: opts.retryMs,
      halfOpenMax: 1,
    });
    this.ensureConnected().catch((e: unknown) => {
      // Not a call, so the breaker is left alone (the first request still tries), but a server that cannot be
      // reached at start (or after a reload) must not show as up in /status, the gauge and the log until traffic comes.
      if (this.closed || !this.isUp) return;
      this.isUp = false;
      this.opts.onStateChange?.(false, e instanceof Error ? e.message : String(e));
    });
  }

  /** True unless the last attempt failed (and no later one succeeded). */
  get up(): boolean {
    return this.isUp;
  }

  /**
   * Runs `script` with `keys` and `args` and resolves with its reply. Rejects with {@link RedisUnavailable}: at once
   * while the store is down, else when connecting or the answer takes longer than `timeoutMs` or fails.
   */
  async evalScript(script: RedisScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const now = this.opts.clock.now();
    if (this.closed || !this.breaker.allows(now)) {
      this.failures.down++;
      throw new RedisUnavailable('down', 'Redis is down; waiting before the next try');
    }
    this.breaker.onStart(now);
    const call: { conn?: RedisConnection } = {};
    try {
      const reply = await this.deadline(this.run(script, keys, args, call));
      this.settle(undefined, now);
      return reply;
    } catch (e) {
      const failure = e instanceof RedisUnavailable ? e : new RedisUnavailable('error', e instanceof Error ? e.message : String(e));
      this.failures[failure.reason]++;
      // A stalled server: drop the connection this call waited on (and every command waiting on it), not a newer
      // one a later call opened meanwhile; the next try connects afresh.
      if (failure.reason === 'timeout') this.drop(call.conn ?? this.conn);
      this.settle(failure, now);
      throw failure;
    }
  }

  /** Closes the connection; later calls fail with `down`. */
  close(): void {
    this.closed = true;
    this.conn?.close();
    this.conn = undefined;
  }

  private async run(script: RedisScript, keys: readonly string[], args: readonly string[], call: { conn?: RedisConnection }): Promise<unknown> {
    await this.ensureConnected();
    const conn = this.conn as RedisConnection;
    call.conn = conn;
    const rest = [String(keys.length), ...keys, ...args];
    try {
      return await conn.send('EVALSHA', [script.sha, ...rest]);
    } catch (e) {
      if (!(e instanceof Error && e.message.startsWith('NOSCRIPT'))) throw e;
      return await conn.send('EVAL', [script.text, ...rest]); // loads it for the next EVALSHA
    }
  }

  private ensureConnected(): Promise<void> {
    if (this.conn?.connected) return Promise.resolve();
    if (!this.connecting) {
      this.conn?.close();
      const conn = this.opts.connection();
      this.conn = conn;
      this.connecting = this.deadline(conn.connect()).then(
        () => {
          this.connecting = undefined;
        },
        (e: unknown) => {
          this.connecting = undefined;
          conn.close();
          throw e;
        },
      );
    }
    return this.connecting;
  }

  private drop(conn: RedisConnection | undefined): void {
    conn?.close();
    if (conn === this.conn) this.conn = undefined;
  }

  private deadline<T>(work: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // Timers run before the socket I/O of the same event-loop turn: after a stall of this process (GC, CPU
        // starvation, a long synchronous task) the answer may already be waiting to be read. One more turn lets
        // it be read, so that only Redis's own slowness counts as a timeout (and opens the breaker).
        timer = setTimeout(() => reject(new RedisUnavailable('timeout', `no answer from Redis within ${this.opts.timeoutMs} ms`)), 0);
      }, this.opts.timeoutMs);
    });
    return Promise.race([work, expired]).finally(() => clearTimeout(timer));
  }

  private settle(failure: RedisUnavailable | undefined, startedAt: number): void {
    const now = this.opts.clock.now();
    const state = this.breaker.onResult(failure !== undefined, now, startedAt);
    if (state === 'open' && this.isUp) {
      this.isUp = false;
      this.opts.onStateChange?.(false, failure?.message ?? 'failed');
    } else if (!this.isUp && (state === 'closed' || (failure === undefined && this.breaker.state(now) === 'closed'))) {
      this.isUp = true;
      this.opts.onStateChange?.(true, 'answered again');
    }
  }
}

/**
 * The URL Bun's client connects to: `config.url` with the user name and the password from `password_file`.
 * Throws when the password file cannot be read.
 */
export function connectionUrl(config: RedisConfig): string {
  const url = new URL(config.url);
  if (config.username !== undefined) url.username = encodeURIComponent(config.username);
  if (config.password_file !== undefined) {
    let password: string;
    try {
      password = readFileSync(config.password_file, 'utf8').trim();
    } catch (e) {
      throw new Error(`cannot read redis.password_file ${config.password_file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    url.password = encodeURIComponent(password);
    if (config.username === undefined) url.username = 'default';
  }
  return url.href;
}

/** A Bun `RedisClient` for `url`: no offline queue (a command while disconnected fails at once), no reconnection of its own. */
export function bunConnection(url: string, timeoutMs: number): () => RedisConnection {
  return () =>
    // Bun's own connect timer gets slack: the store's deadline bounds the wait, and a timer that fires right after
    // a stall of this process would close a connection that was about to complete.
    new Bun.RedisClient(url, {
      enableOfflineQueue: false,
      autoReconnect: false,
      connectionTimeout: Math.max(1000, timeoutMs * 2),
      enableAutoPipelining: true,
    }) as unknown as RedisConnection;
}
