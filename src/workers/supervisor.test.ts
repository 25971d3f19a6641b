import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { waitUntil } from '../../test/support/wait.ts';
import { formatIssue, loadConfigText } from '../config/load.ts';
import { systemClock } from '../lib/clock.ts';
import { filesToWatch } from '../runtime/watch.ts';
import { Supervisor } from './supervisor.ts';

const FAKE_WORKER = resolve(import.meta.dir, '../../test/support/fake-worker.ts');
let running: Supervisor | undefined;

afterEach(async () => {
  await running?.shutdown('SIGTERM');
  running = undefined;
});

/** The JSON lines the fake workers logged. */
function events(log: string): { pid: number; worker: number; event: string; op?: string; trigger?: string }[] {
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
}

const TEXT =
  'listen: { tls: { cert: c.pem, key: k.pem } }\nadmin: { enabled: false }\nupstream:\n  a:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n';

/**
 * Starts a supervisor of two fake workers on the config `text` (written to a fresh folder). A restarted worker
 * waits for the `gate` file before it listens; each reload is answered after `reloadDelayMs`.
 */
async function startSupervisor(text: string, reloadDelayMs = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'spooky-sup-'));
  const configPath = join(dir, 'spooky.yaml');
  writeFileSync(configPath, text);
  const loaded = loadConfigText(text, configPath, dir);
  if (!loaded.ok) throw new Error(loaded.errors.map(formatIssue).join('\n'));
  const log = join(dir, 'workers.log');
  const gate = join(dir, 'gate');
  writeFileSync(log, '');
  process.env.FAKE_WORKER_LOG = log;
  process.env.FAKE_WORKER_GATE = gate;
  process.env.FAKE_WORKER_RELOAD_DELAY_MS = String(reloadDelayMs);
  const records: Record<string, unknown>[] = [];
  const sup = new Supervisor({
    config: loaded.config,
    configPath,
    overrides: (c) => c,
    count: 2,
    command: [process.execPath, FAKE_WORKER],
    log: pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line)) }),
    clock: systemClock,
  });
  running = sup;
  await sup.start();
  return { sup, dir, configPath, config: loaded.config, log, gate, records };
}

/** A supervisor of two fake workers whose worker 0 was killed; its replacement waits for the gate file to listen. */
async function withHeldReplacement(reloadDelayMs: number) {
  const started = await startSupervisor(TEXT, reloadDelayMs);
  const { log } = started;
  const first = events(log).filter((e) => e.worker === 0 && e.event === 'start');
  expect(first).toHaveLength(1);
  // Worker 0 dies; its replacement starts (it reads the file now) but does not listen until the gate opens.
  process.kill(first[0]?.pid as number, 'SIGKILL');
  await waitUntil(() => events(log).filter((e) => e.worker === 0 && e.event === 'start').length === 2, 5000, 'worker 0 restarted');
  const replacement = events(log).filter((e) => e.worker === 0 && e.event === 'start')[1]?.pid as number;
  return { ...started, replacement };
}

test('a worker restarted while a reload ran is brought to the current config once it listens', async () => {
  const { sup, configPath, log, gate, replacement } = await withHeldReplacement(0);
  // A reload meanwhile reaches only worker 1, the one listening.
  writeFileSync(configPath, `${TEXT}  b:\n    route: { path_prefix: /b }\n    backends: [{ id: b, address: "http://127.0.0.1:2" }]\n`);
  const result = await sup.reload('signal', { signal: 'SIGHUP' });
  expect(result.ok).toBe(true);
  expect(events(log).some((e) => e.pid === replacement && e.op === 'reload')).toBe(false);
  // Once it listens, it reloads too.
  writeFileSync(gate, '');
  await waitUntil(
    () => events(log).some((e) => e.pid === replacement && e.op === 'reload' && e.trigger === 'worker_start'),
    5000,
    'catch-up reload of the restarted worker',
  );
}, 30_000);

test('with reload.watch the supervisor watches what one process watches: config, certificates, upstream ca_files', async () => {
  const text = `listen: { tls: { cert: c.pem, key: k.pem } }\nadmin: { enabled: false }\nreload: { watch: true }\nupstream:\n  a:\n    tls: { ca_file: ca.pem }\n    backends: [{ id: a, address: "https://127.0.0.1:1" }]\n`;
  const { sup, dir, configPath, config } = await startSupervisor(text);
  const watching = (sup as unknown as { watcher: { files(): string[] } }).watcher.files();
  expect(watching).toEqual(filesToWatch(config, configPath));
  expect(watching).toContain(join(dir, 'ca.pem'));
});

test('a worker that the next reload reached is not reloaded a second time by its catch-up', async () => {
  const { sup, log, gate, replacement } = await withHeldReplacement(400);
  const r1 = sup.reload('signal', { signal: 'SIGHUP' }); // reaches worker 1 only; answered after 400 ms
  const r2 = sup.reload('signal', { signal: 'SIGHUP' });
  await Bun.sleep(100);
  writeFileSync(gate, ''); // worker 0 listens while r1 runs
  expect((await r1).ok).toBe(true);
  expect((await r2).workers?.map((w) => w.worker).sort()).toEqual([0, 1]);
  await Bun.sleep(1000);
  expect(
    events(log)
      .filter((e) => e.pid === replacement && e.op === 'reload')
      .map((e) => e.trigger),
  ).toEqual(['signal']);
}, 30_000);

test('a refused reload does not make a restarted worker catch up (it runs what the others run)', async () => {
  const { sup, configPath, log, gate, replacement } = await withHeldReplacement(0);
  writeFileSync(configPath, 'listen: {\n');
  expect((await sup.reload('signal', { signal: 'SIGHUP' })).ok).toBe(false);
  writeFileSync(gate, '');
  await waitUntil(() => events(log).some((e) => e.pid === replacement && e.op === undefined && e.event === 'start'), 2000, 'replacement started');
  await Bun.sleep(500);
  expect(events(log).filter((e) => e.pid === replacement && e.op === 'reload')).toEqual([]);
}, 30_000);

test('a shutdown during a catch-up is not logged as an error', async () => {
  const { sup, gate, records } = await withHeldReplacement(500);
  const r1 = sup.reload('signal', { signal: 'SIGHUP' });
  await Bun.sleep(100);
  writeFileSync(gate, '');
  await r1;
  await Bun.sleep(150); // the catch-up's reload request is in flight
  await sup.shutdown('SIGTERM');
  running = undefined;
  expect(records.filter((r) => (r.level as number) >= 50)).toEqual([]);
}, 30_000);
