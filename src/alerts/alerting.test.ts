import { expect, test } from 'bun:test';
import { Registry } from 'prom-client';
import { waitUntil } from '../../test/support/wait.ts';
import { diffConfigs } from '../config/diff.ts';
import { formatIssue, loadConfigText } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { ManualClock } from '../lib/clock.ts';
import { scriptedRandom } from '../lib/random.ts';
import { NO_OBSERVER } from '../observability/events.ts';
import { createLogging } from '../observability/logger.ts';
import type { Generation } from '../runtime/generation.ts';
import { Alerting, tickMs } from './alerting.ts';

const BASE = `listen: { tls: { cert: c.pem, key: k.pem } }
upstream:
  api:
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`;

function config(alerts: string): Config {
  const r = loadConfigText(`${BASE}${alerts}`, 'spooky.yaml', '/srv');
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}

function setup(cfg: Config) {
  const registry = new Registry();
  const posts: string[] = [];
  const { log } = createLogging({ level: 'silent', format: 'json' });
  const gen = { id: 1, loadedAt: 0, config: cfg, pools: new Map() } as unknown as Generation;
  const alerting = new Alerting({
    base: NO_OBSERVER,
    registry,
    generation: () => gen,
    listeners: () => [],
    configPath: '/srv/spooky.yaml',
    clock: new ManualClock(),
    random: scriptedRandom([0]),
    log,
    post: (_url, init) => {
      posts.push(JSON.parse(init.body).kind);
      return new Promise<number>(() => {}); // a receiver that never answers
    },
  });
  alerting.apply(cfg);
  const value = async (name: string, labels: Record<string, string>) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
  };
  return { alerting, posts, value };
}

test('a hanging webhook: reload alerts beyond queue_size are dropped and counted, the hook returns at once', async () => {
  const { alerting, posts, value } = setup(
    config('alerts: { min_interval_ms: 0, queue_size: 2, webhooks: [{ name: w, url: "http://127.0.0.1:9/h" }] }\n'),
  );
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) alerting.reloadFailed('signal', [`error ${i}`], 1);
  expect(performance.now() - t0).toBeLessThan(100);
  await waitUntil(() => posts.length === 1, 2000, 'first POST');
  expect(await value('spooky_alerts_total', { kind: 'reload_failed', status: 'firing' })).toBe(5);
  expect(await value('spooky_alerts_dropped_total', { webhook: 'w' })).toBe(3);
  expect(await value('spooky_alert_queue_length', { webhook: 'w' })).toBe(2);
  alerting.stop();
});

test('rules that are switched off raise nothing; reload_failed inside the interval is suppressed', async () => {
  const off = setup(config('alerts: { rules: { reload_failed: false } }\n'));
  off.alerting.reloadFailed('signal', ['x'], 1);
  expect(await off.value('spooky_alerts_total', { kind: 'reload_failed' })).toBe(0);
  off.alerting.stop();
  const on = setup(config('alerts: { min_interval_ms: 60000 }\n'));
  on.alerting.reloadFailed('signal', ['x'], 1);
  on.alerting.reloadFailed('signal', ['y'], 1);
  expect(await on.value('spooky_alerts_total', { kind: 'reload_failed' })).toBe(1);
  expect(await on.value('spooky_alerts_suppressed_total', { kind: 'reload_failed', reason: 'min_interval' })).toBe(1);
  on.alerting.stop();
});

test('the request path sees the route rules only while one is configured', () => {
  const { alerting } = setup(config('alerts: {}\n'));
  const plain = alerting.observer.requestEnd;
  alerting.apply(config('alerts: { rules: { route_error_rate: {} } }\n'));
  expect(alerting.observer.requestEnd).not.toBe(plain);
  alerting.apply(config(''));
  expect(alerting.observer.requestEnd.name).toContain('bound');
  alerting.stop();
});

test.each([
  ['alerts: {}\n', 1000],
  ['alerts: { rules: { route_error_rate: { window_ms: 3000 } } }\n', 300],
  ['alerts: { rules: { route_error_rate: { window_ms: 500 }, route_latency_p99: { window_ms: 600000 } } }\n', 100],
])('evaluation period, case %#', (yaml, ms) => {
  const a = config(yaml).alerts;
  if (!a) throw new Error('no alerts');
  expect(tickMs(a)).toBe(ms);
});

test('a reload that changes only alerts shows up in the audit changes', () => {
  expect(diffConfigs(config(''), config('alerts: {}\n')).settings).toEqual(['alerts']);
  expect(diffConfigs(config('alerts: {}\n'), config('alerts: {}\n')).settings).toEqual([]);
});
