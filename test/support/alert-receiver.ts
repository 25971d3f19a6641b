/**
 * A webhook receiver for the alert tests: a Bun.serve on 127.0.0.1, port 0, in the test process, that
 * records every POST (path, headers, parsed JSON body, the status it answered). Per path it can fail the
 * next N deliveries with 500, or hang (never answer).
 */
import type { Server } from 'bun';

/** One POST the receiver got. */
export interface ReceivedAlert {
  /** Request path (each Spooky of a test gets its own). */
  path: string;
  /** Request headers. */
  headers: Record<string, string>;
  /** The JSON body. */
  body: Record<string, unknown> & { id: string; kind: string; status: string };
  /** Status the receiver answered (0 when it hung). */
  answered: number;
}

/** The running receiver. */
export interface AlertReceiver {
  /** `http://127.0.0.1:port`. */
  readonly url: string;
  /** Every POST, in arrival order. */
  readonly received: ReceivedAlert[];
  /** Answer the next `n` POSTs to `path` with 500. */
  failNext(path: string, n: number): void;
  /** Never answer POSTs to `path`. */
  hang(path: string): void;
  /** The POSTs to `path` that were answered 2xx (delivered alerts). */
  delivered(path: string): ReceivedAlert['body'][];
  stop(): void;
}

/** Starts a receiver. */
export function startAlertReceiver(): AlertReceiver {
  const received: ReceivedAlert[] = [];
  const failures = new Map<string, number>();
  const hanging = new Set<string>();
  const server: Server<unknown> = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    development: false,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const body = (await req.json().catch(() => ({}))) as ReceivedAlert['body'];
      const rec: ReceivedAlert = { path, headers: Object.fromEntries(req.headers), body, answered: 0 };
      received.push(rec);
      if (hanging.has(path)) return new Promise<Response>(() => {});
      const left = failures.get(path) ?? 0;
      if (left > 0) {
        failures.set(path, left - 1);
        rec.answered = 500;
        return new Response('failing on purpose', { status: 500 });
      }
      rec.answered = 200;
      return new Response('ok');
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    received,
    failNext: (path, n) => failures.set(path, n),
    hang: (path) => hanging.add(path),
    delivered: (path) => received.filter((r) => r.path === path && r.answered === 200).map((r) => r.body),
    stop: () => void server.stop(true),
  };
}
