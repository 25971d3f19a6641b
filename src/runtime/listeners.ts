/**
 * The set of running traffic listeners and how a reload changes it. A listener is identified by its
 * configured `address:port`. On reload:
 *
 * - unchanged (same certificate file contents, same idle timeout): kept as is, open connections untouched;
 * - certificates (content or paths) or idle timeout changed: a new TCP + UDP pair is bound on the **same port**
 *   (`SO_REUSEPORT`) before the old pair is released ("replaced");
 * - a new `address:port`: bound (after checking the port is free); a listener no longer configured is
 *   released after the new ones are bound ("removed"). A new address on the port of a running listener (say
 *   `127.0.0.1` to `0.0.0.0`) is bound beside it with `SO_REUSEPORT`, like a replacement, since the port cannot
 *   be checked free while Spooky holds it; the old listener is then released as a replaced one.
 *
 * Everything that can fail (reading and checking certificates, binding) happens in {@link ListenerSet.prepare}
 * before anything is released; {@link ListenerSet.commit} then swaps and retires the old servers, and
 * {@link ListenerSet.rollback} undoes a prepare whose reload failed later.
 *
 * Retiring, measured on Bun 1.4.5 (see the README, "Operations"):
 * - TCP: `stop(false)` closes the listening socket at once (new connections reach the new pair); requests in
 *   flight on old connections finish, idle keep-alive connections are closed; after `drainMs` the rest is cut.
 * - UDP of a **replaced** listener: `stop(true)` at once. When the new socket joins the port, the kernel
 *   re-hashes the QUIC flows over both sockets and about half of the old connections' packets already reach the
 *   new socket, which does not know them; waiting only makes those hang. Closing sends CONNECTION_CLOSE on every
 *   old connection, clients reconnect (to the new certificate) at once, and requests without a response yet are
 *   retried by the client when idempotent (Bun's fetch does); requests whose body was streaming are cut.
 * - UDP of a **removed** listener (another port: no re-hashing): `stop(false)`, in-flight requests finish
 *   (bounded by `drainMs`), then `stop(true)`.
 */

import { readFileSync } from 'node:fs';
import type { Server } from 'bun';
import { listenerId } from '../config/diff.ts';
import { bindAddressesOverlap } from '../config/parse.ts';
import type { ListenerConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import { CertificateError, type ListenerCertificates, loadListenerCertificates } from '../listener/certs.ts';
import { bindListener, type FetchHandler, type PortReservation, type RunningListener, reservePort } from '../listener/listener.ts';
import type { Logger } from '../observability/logger.ts';
import { closeTunnels } from '../proxy/websocket.ts';

/**
 * The kernel's `net.ipv4.tcp_migrate_req` (Linux 5.14+): `on` moves the connections queued on a closing
 * `SO_REUSEPORT` listening socket to another socket of the port; `off` resets them, so a replaced listener's
 * queue is lost. `unknown` where the setting does not exist.
 */
export function tcpMigrateReq(): 'on' | 'off' | 'unknown' {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() === '0' ? 'off' : 'on';
  } catch {
    return 'unknown';
  }
}

/** Why an old listener was retired. */
export type RetireReason = 'replaced' | 'removed';

/** A listener change made by a reload, for the audit record. */
export interface ListenerChange {
  /** Configured `address:port`. */
  id: string;
  /** What happened. */
  action: 'added' | 'replaced' | 'removed';
  /** For `replaced`: what changed (`certificates`, `idle_timeout_s`). */
  fields?: string[];
  /** Bound port (of the new listener; of the old one for `removed`). */
  port: number;
}

/** The outcome of {@link ListenerSet.prepare}: new servers bound, nothing released yet. */
export interface PreparedListeners {
  /** The listener list after the commit. */
  readonly next: RunningListener[];
  /** Servers bound by this prepare (stopped again by a rollback). */
  readonly started: RunningListener[];
  /** Old listeners to release on commit. */
  readonly retire: { listener: RunningListener; reason: RetireReason }[];
  /** What changes, for the audit record. */
  readonly changes: ListenerChange[];
  /** Certificate warnings (expiring soon, not valid yet, SNI name not in the certificate). */
  readonly warnings: string[];
}

function fieldsChanged(old: RunningListener, cfg: ListenerConfig, certs: ListenerCertificates): string[] {
  const fields: string[] = [];
  if (old.certs.digest !== certs.digest) fields.push('certificates');
  if (old.config.idle_timeout_s !== cfg.idle_timeout_s) fields.push('idle_timeout_s');
  return fields;
}

/** The running traffic listeners. */
export class ListenerSet {
  private running: RunningListener[] = [];
  private readonly retiring = new Set<RunningListener>();
  /** The `tcp_migrate_req_off` warning is logged once per process. */
  private warnedMigrate = false;

  constructor(
    private readonly fetch: FetchHandler,
    private readonly onError: (err: Error) => void,
    private readonly log: Logger,
    private readonly clock: Clock,
    /** Workers: the port another worker already bound for this listener (bound with `SO_REUSEPORT`, no reservation). */
    private readonly sharedPort?: (cfg: ListenerConfig) => number | undefined,
  ) {}

  /** The running listeners (not the ones being retired). */
  list(): readonly RunningListener[] {
    return this.running;
  }

  /** Starts the initial listeners; on any failure stops those already started and throws. */
  async start(configs: readonly ListenerConfig[]): Promise<string[]> {
    const prepared = await this.prepare(configs);
    this.commit(prepared, 0);
    return prepared.warnings;
  }

  /**
   * Checks every listener's certificates and binds what the new config needs, without releasing anything.
   * Throws a {@link CertificateError} (every problem of every listener) or a SpookyError (cannot bind); then
   * nothing was changed.
   */
  async prepare(configs: readonly ListenerConfig[]): Promise<PreparedListeners> {
    // A listener is known across reloads by its configured address and port: two with one id (two port-0
    // listeners at one address, which `--port 0` can make of a file that passed its checks) would be one to a
    // reload, and every reload would bind another port and lose track of the old one.
    const ids = configs.map(listenerId);
    const twice = ids.find((id, i) => ids.indexOf(id) !== i);
    if (twice !== undefined) {
      throw new SpookyError(
        'config_invalid',
        `two listeners are ${twice} (after command-line overrides): give one of them a fixed port or another address`,
      );
    }
    const problems: string[] = [];
    const warnings: string[] = [];
    const loaded: { cfg: ListenerConfig; certs: ListenerCertificates }[] = [];
    for (const cfg of configs) {
      try {
        const certs = loadListenerCertificates(cfg, this.clock.wallNow());
        warnings.push(...certs.warnings.map((w) => `listener ${listenerId(cfg)}: ${w}`));
        loaded.push({ cfg, certs });
      } catch (e) {
        if (!(e instanceof CertificateError)) throw e;
        problems.push(...e.problems.map((p) => `listener ${listenerId(cfg)}: ${p}`));
      }
    }
    if (problems.length) throw new CertificateError(problems);

    const byId = new Map(this.running.map((l) => [listenerId(l.config), l]));
    const plan: { cfg: ListenerConfig; certs: ListenerCertificates; old?: RunningListener; fields?: string[]; port?: number }[] = [];
    for (const { cfg, certs } of loaded) {
      const old = byId.get(listenerId(cfg));
      if (!old) {
        plan.push({ cfg, certs });
        continue;
      }
      byId.delete(listenerId(cfg));
      const fields = fieldsChanged(old, cfg, certs);
      plan.push(fields.length ? { cfg, certs, old, fields } : { cfg, certs, old });
    }
    // Ports of new listeners are reserved (asynchronously) first; the binds below are synchronous, so no
    // request can run on a new listener before the caller swaps in the new generation.
    const started: RunningListener[] = [];
    const next: RunningListener[] = [];
    const retire: PreparedListeners['retire'] = [];
    const changes: ListenerChange[] = [];
    const reservations: PortReservation[] = [];
    try {
      for (const p of plan) {
        if (p.old) continue;
        const shared = this.sharedPort?.(p.cfg);
        if (shared !== undefined) {
          p.port = shared;
          continue;
        }
        // A port one of our own running listeners holds (the same port on another address, as when a reload
        // only changes `address`) cannot be reserved exclusively: bind it beside the old listener, which is
        // retired after the swap.
        const ours = p.cfg.port !== 0 && this.running.some((l) => l.port === p.cfg.port && bindAddressesOverlap(l.address, p.cfg.address));
        if (ours) {
          p.port = p.cfg.port;
          continue;
        }
        const r = await reservePort(p.cfg.address, p.cfg.port);
        reservations.push(r);
        p.port = r.port;
      }
    } finally {
      for (const r of reservations) r.release();
    }
    try {
      for (const p of plan) {
        if (p.old && !p.fields) {
          next.push({ ...p.old, config: p.cfg });
        } else if (p.old && p.fields) {
          const l = bindListener(p.cfg, p.certs, p.old.port, this.fetch, this.onError);
          started.push(l);
          next.push(l);
          retire.push({ listener: p.old, reason: 'replaced' });
          changes.push({ id: listenerId(p.cfg), action: 'replaced', fields: p.fields, port: l.port });
        } else {
          const l = bindListener(p.cfg, p.certs, p.port ?? p.cfg.port, this.fetch, this.onError);
          started.push(l);
          next.push(l);
          changes.push({ id: listenerId(p.cfg), action: 'added', port: l.port });
        }
      }
    } catch (e) {
      for (const l of started) stopPair(l, true);
      throw e;
    }
    for (const old of byId.values()) {
      // A new listener on the same port (only the address changed) re-hashes the QUIC flows like a replaced one.
      const samePort = started.some((l) => l.port === old.port && bindAddressesOverlap(l.address, old.address));
      retire.push({ listener: old, reason: samePort ? 'replaced' : 'removed' });
      changes.push({ id: listenerId(old.config), action: 'removed', port: old.port });
    }
    return { next, started, retire, changes, warnings };
  }

  /** Undoes a {@link prepare}: stops the servers it bound. */
  rollback(prepared: PreparedListeners): void {
    for (const l of prepared.started) stopPair(l, true);
  }

  /** Makes the prepared listeners the running ones and retires the old ones (see the module comment). */
  commit(prepared: PreparedListeners, drainMs: number): void {
    this.running = prepared.next;
    for (const { listener, reason } of prepared.retire) void this.retire(listener, reason, drainMs);
  }

  private async retire(l: RunningListener, reason: RetireReason, drainMs: number): Promise<void> {
    this.retiring.add(l);
    const started = this.clock.now();
    const h3InFlight = l.udp.pendingRequests;
    const tcpInFlight = l.tcp.pendingRequests;
    if (reason === 'replaced') void l.udp.stop(true);
    else void l.udp.stop(false);
    void l.tcp.stop(false);
    const migrate = reason === 'replaced' ? tcpMigrateReq() : undefined;
    if (migrate === 'off' && !this.warnedMigrate) {
      this.warnedMigrate = true;
      this.log.warn(
        { event: 'tcp_migrate_req_off', listener: listenerId(l.config) },
        'net.ipv4.tcp_migrate_req is 0: TCP connections the kernel had queued for the replaced listening socket were reset; set it to 1 (Linux 5.14+) so they move to the new one',
      );
    }
    const deadline = started + drainMs;
    const busy = () => l.tcp.pendingRequests + (reason === 'removed' ? l.udp.pendingRequests : 0);
    // A shutdown meanwhile does not cut this short: the drain waits for these requests too (`pending()`),
    // and `stopAll()` ends them at its own deadline.
    while (busy() > 0 && this.clock.now() < deadline && this.retiring.has(l)) {
      l.tcp.closeIdleConnections();
      await Bun.sleep(20);
    }
    const tcpCut = l.tcp.pendingRequests;
    const h3Cut = reason === 'replaced' ? h3InFlight : l.udp.pendingRequests;
    if (!this.retiring.has(l)) return; // stopAll() ended it
    stopPair(l, true);
    this.retiring.delete(l);
    this.log.info(
      {
        event: 'listener_retired',
        listener: listenerId(l.config),
        port: l.port,
        reason,
        ...(migrate !== undefined ? { tcp_migrate_req: migrate } : {}),
        h3_in_flight: h3InFlight,
        tcp_in_flight: tcpInFlight,
        h3_cut: h3Cut,
        tcp_cut: tcpCut,
        ms: Math.round(this.clock.now() - started),
      },
      reason === 'replaced' ? 'old listener sockets released after the new ones were bound' : 'removed listener released',
    );
  }

  /**
   * Shutdown, first step: new TCP connections are refused at once (listening sockets closed) and idle
   * keep-alive connections closed. The UDP servers stay up so that requests on open HTTP/3 connections and new
   * handshakes get a quick answer (the handler answers 503 while draining) instead of hanging, which is what
   * Bun's `stop()` would do to them.
   */
  beginDrain(): void {
    for (const l of this.running) void l.tcp.stop(false);
  }

  /** Closes idle TCP connections (called repeatedly while draining). */
  closeIdle(): void {
    for (const l of this.running) l.tcp.closeIdleConnections();
  }

  /** Requests in flight (response not finished) on every listener, running or being retired. */
  pending(): number {
    let n = 0;
    for (const l of [...this.running, ...this.retiring]) n += l.tcp.pendingRequests + l.udp.pendingRequests;
    return n;
  }

  /** Stops every server at once, cutting whatever is in flight. */
  stopAll(): void {
    for (const l of [...this.running, ...this.retiring]) stopPair(l, true);
    this.running = [];
    this.retiring.clear();
  }
}

function stopPair(l: { tcp: Server<unknown>; udp: Server<unknown> }, force: boolean): void {
  // WebSocket sessions get a close frame (1001, going away) rather than a dropped connection.
  if (force) closeTunnels(1001, 'listener closing', l.tcp);
  void l.tcp.stop(force);
  void l.udp.stop(force);
}
