/**
 * The alert as Spooky sends it: one JSON object per webhook POST (see the README, "Alerts"). An alert is
 * identified by its key (kind + subject); `status` says whether the condition started (`firing`) or ended
 * (`resolved`). `reload_failed` is an event: it only ever fires.
 */
import type { AlertKind } from '../config/types.ts';

/** Whether a condition started or ended. */
export type AlertStatus = 'firing' | 'resolved';

/** How bad it is. */
export type AlertSeverity = 'warning' | 'critical';

/** What an alert is about; only the fields that apply are set. */
export interface AlertSubject {
  /** Pool name (backend, pool and route alerts). */
  pool?: string;
  /** Backend id (backend alerts). */
  backend?: string;
  /** Backend origin `host:port` (backend alerts). */
  address?: string;
  /** Route id `pool#index` (route alerts). */
  route?: string;
  /** Listener `address:port` as configured (certificate alerts). */
  listener?: string;
  /** SNI server name, `*` for the default certificate (certificate alerts). */
  server_name?: string;
  /** Config file (reload alerts). */
  config?: string;
}

/** A condition found by a rule, before deduplication. */
export interface AlertSignal {
  /** Alert kind. */
  kind: AlertKind;
  /** Started or ended. */
  status: AlertStatus;
  /** What it is about. */
  subject: AlertSubject;
  /** One sentence for humans. */
  message: string;
  /** The numbers behind it (rates, counts, thresholds, dates). */
  values: Record<string, unknown>;
  /** Wall-clock ms when it was observed (set when it reaches the gate, so a held alert keeps it). */
  at?: number;
}

/** The webhook payload. */
export interface AlertPayload extends AlertSignal {
  /** Payload format version. */
  version: 1;
  /** Unique id of this notification (the same on every delivery attempt, so receivers can drop repeats). */
  id: string;
  /** `kind` + subject: the same for the firing and the resolved notification of one condition. */
  key: string;
  /** Severity of the kind. */
  severity: AlertSeverity;
  /** When the condition was seen (ISO 8601). */
  time: string;
  /** `alerts.instance`, else the host name. */
  instance: string;
  /** Host name of the machine. */
  host: string;
  /** Process id. */
  pid: number;
}

/** Kinds that are events: no state, never resolved; only the minimum interval limits them. */
export const EVENT_KINDS: ReadonlySet<AlertKind> = new Set(['reload_failed']);

/** Severity of each kind. */
export const SEVERITY: Readonly<Record<AlertKind, AlertSeverity>> = {
  backend_unhealthy: 'warning',
  pool_unavailable: 'critical',
  route_error_rate: 'critical',
  route_latency_p99: 'warning',
  certificate_expiring: 'warning',
  reload_failed: 'warning',
};

const SUBJECT_ORDER = ['pool', 'backend', 'route', 'listener', 'server_name', 'config'] as const;

/** The deduplication key of a signal: `kind` and the identifying subject fields, e.g. `backend_unhealthy/pool=api/backend=a`. */
export function alertKey(s: Pick<AlertSignal, 'kind' | 'subject'>): string {
  let key: string = s.kind;
  for (const f of SUBJECT_ORDER) {
    const v = s.subject[f];
    if (v !== undefined) key += `/${f}=${v}`;
  }
  return key;
}
