/**
 * Deduplication and the minimum interval per alert key (kind + subject): pure, time passed in.
 *
 * - A signal with the state already notified (or already waiting) is a **duplicate** and dropped; so is a
 *   `resolved` for a key that never fired.
 * - A state change less than `minIntervalMs` after the key's last notification is **held**: only the latest
 *   held state counts, and it is released by {@link AlertGate.due} once the interval is over. A change back to
 *   the notified state meanwhile cancels it (a flap inside the interval sends nothing more).
 * - Events (`reload_failed`) have no state: one inside the interval is dropped.
 */
import { type AlertSignal, alertKey, EVENT_KINDS } from './alert.ts';

/** Why a signal was not sent (now or later). */
export type SuppressReason = 'duplicate' | 'min_interval';

/** The gate's answer to one signal. */
export type GateDecision = { action: 'send' } | { action: 'hold'; until: number } | { action: 'suppress'; reason: SuppressReason };

interface KeyState {
  /** Status of the last notification sent. */
  sent?: AlertSignal['status'];
  /** When it was sent (monotonic ms). */
  sentAt: number;
  /** A change waiting for the interval to pass. */
  held?: AlertSignal;
}

/** Per-key notification state. */
export class AlertGate {
  private readonly keys = new Map<string, KeyState>();

  /** `minIntervalMs`: shortest time between two notifications of one key. */
  constructor(private minIntervalMs: number) {}

  /** Changes the minimum interval (on reload); state is kept. */
  setMinInterval(ms: number): void {
    this.minIntervalMs = ms;
  }

  /** Decides what happens to `signal` at `now`; a `send` is recorded as sent. */
  offer(signal: AlertSignal, now: number): GateDecision {
    const key = alertKey(signal);
    let st = this.keys.get(key);
    if (!st) {
      st = { sentAt: Number.NEGATIVE_INFINITY };
      this.keys.set(key, st);
    }
    const open = now - st.sentAt < this.minIntervalMs;
    if (EVENT_KINDS.has(signal.kind)) {
      if (open) return { action: 'suppress', reason: 'min_interval' };
      return this.sent(st, signal, now);
    }
    const effective = st.held?.status ?? st.sent;
    if (signal.status === effective) {
      if (st.held) st.held = signal; // keep the latest values of the waiting change
      return { action: 'suppress', reason: 'duplicate' };
    }
    if (st.sent === undefined && signal.status === 'resolved') return { action: 'suppress', reason: 'duplicate' };
    if (st.held) {
      // back to the state already notified: the change that waited is void
      st.held = undefined;
      return { action: 'suppress', reason: 'min_interval' };
    }
    if (open) {
      st.held = signal;
      return { action: 'hold', until: st.sentAt + this.minIntervalMs };
    }
    return this.sent(st, signal, now);
  }

  /** Held changes whose interval is over at `now`, recorded as sent. */
  due(now: number): AlertSignal[] {
    const out: AlertSignal[] = [];
    for (const st of this.keys.values()) {
      if (!st.held || now - st.sentAt < this.minIntervalMs) continue;
      out.push(st.held);
      st.sent = st.held.status;
      st.sentAt = now;
      st.held = undefined;
    }
    return out;
  }

  /** Number of keys with a held change. */
  heldCount(): number {
    let n = 0;
    for (const st of this.keys.values()) if (st.held) n++;
    return n;
  }

  private sent(st: KeyState, signal: AlertSignal, now: number): GateDecision {
    st.sent = signal.status;
    st.sentAt = now;
    return { action: 'send' };
  }
}
