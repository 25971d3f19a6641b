/**
 * A stand-in for a Spooky worker process, for supervisor tests: speaks the worker IPC protocol
 * (`src/workers/protocol.ts`) without serving anything. It appends one JSON line per event to the file named
 * by `FAKE_WORKER_LOG` (`{"pid","worker","event":"start"|"op","op"?,"trigger"?}`), answers every request with
 * success, and reports `listening` at once, or, when the file named by `FAKE_WORKER_GATE` does not exist yet and
 * this is not the first start of its slot, only once it appears (so a test can hold a restarted worker between
 * starting and listening). `FAKE_WORKER_RELOAD_DELAY_MS` delays its answer to a reload (a slow reload).
 */
import { appendFileSync, existsSync } from 'node:fs';

const worker = Number(process.env.SPOOKY_WORKER ?? '0');
const logFile = process.env.FAKE_WORKER_LOG ?? '';
const gate = process.env.FAKE_WORKER_GATE ?? '';
const reloadDelayMs = Number(process.env.FAKE_WORKER_RELOAD_DELAY_MS ?? '0');
const record = (rec: Record<string, unknown>) => appendFileSync(logFile, `${JSON.stringify({ pid: process.pid, worker, ...rec })}\n`);
const restarted = existsSync(`${logFile}.started-${worker}`);
appendFileSync(`${logFile}.started-${worker}`, '');
record({ event: 'start' });

let generation = 1;
process.on('message', (m: unknown) => {
  const msg = m as { type: string; id?: number; op?: string; trigger?: string };
  if (msg.type === 'request') {
    record({ event: 'op', op: msg.op, trigger: msg.trigger });
    let value: unknown = true;
    if (msg.op === 'reload') value = { ok: true, generation: ++generation, listeners_bound: [] };
    else if (msg.op === 'metrics') value = [];
    setTimeout(() => process.send?.({ type: 'response', id: msg.id, ok: true, value }), msg.op === 'reload' ? reloadDelayMs : 0);
  } else if (msg.type === 'shutdown' || msg.type === 'exit_now') process.exit(0);
});

const listen = () => process.send?.({ type: 'listening', pid: process.pid, listeners: [], generation });
if (!restarted || gate === '' || existsSync(gate)) listen();
else {
  const timer = setInterval(() => {
    if (!existsSync(gate)) return;
    clearInterval(timer);
    listen();
  }, 10);
}
