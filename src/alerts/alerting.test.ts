import { describe, expect, test } from 'bun:test';
import { Registry } from 'prom-client';
import { waitUntil } from '../../test/support/wait.ts';
import { diffConfigs } from '../config/diff.ts';
import { formatIssue, loadConfigText } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { ManualClock } from '../lib/clock.ts';
import { scriptedRandom } from '../lib/random.ts';
import { NO_OBSERVER } from '../observability/events.ts';
import { createLogging } from '../observability/logger.ts';
import type { HealthTransition } from '../health/state.ts';
import type { Generation } from '../runtime/generation.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
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

/** A notification as the recording webhook of {@link recording} received it. */
interface Sent {
  kind: string;
  status: string;
  message: string;
}

/** Alerting over `generation()` whose webhook answers 200 at once and records every payload in `sent`. */
function recording(generation: () => Generation, clock = new ManualClock()) {
  const sent: Sent[] = [];
  const { log } = createLogging({ level: 'silent', format: 'json' });
  const alerting = new Alerting({
    base: NO_OBSERVER,
    registry: new Registry(),
    generation,
    listeners: () => [],
    clock,
    random: scriptedRandom([0]),
    log,
    post: (_url, init) => {
      const p = JSON.parse(init.body);
      sent.push({ kind: p.kind, status: p.status, message: p.message });
      return Promise.resolve(200);
    },
  });
  return { alerting, sent, tags: () => sent.map((x) => `${x.kind}:${x.status}`) };
}

/**
 * A stand-in for backend `id` of pool `api` at 127.0.0.1:`port` (what the alerts read of an Endpoint): health
 * from `state.healthy`, taking requests per `state.available` (default: when healthy), `changedAt` 0 unless set.
 */
function fakeEndpoint(id: string, port: number, state: { healthy: boolean; available?: boolean; changedAt?: number }): Endpoint {
  return {
    id,
    pool: 'api',
    url: new URL(`http://127.0.0.1:${port}`),
    health: {
      healthy: () => state.healthy,
      lastProbe: undefined,
      get changedAt() {
        return state.changedAt ?? 0;
      },
    },
    canServe: () => state.available ?? state.healthy,
  } as unknown as Endpoint;
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

describe('a reload ends backend and pool alerts it made moot', () => {
  /** Backend `a`'s health, and whether it takes requests (healthy, circuit closed, not ejected; default: healthy). */
  const state: { healthy: boolean; available?: boolean; changedAt: number } = { healthy: false, changedAt: 1 };
  const generationWith = (members: { id: string; endpoint: Endpoint }[] | undefined) =>
    ({ id: 1, loadedAt: 0, config: {}, pools: new Map(members ? [['api', { name: 'api', members }]] : []) }) as unknown as Generation;
  const RULES = 'alerts: { min_interval_ms: 0, webhooks: [{ name: w, url: "http://127.0.0.1:9/h" }] }\n';

  /** Alerting whose webhook records every payload; the backend `a` of pool `api` has gone down. */
  async function withDownBackend() {
    state.healthy = false;
    state.available = undefined;
    state.changedAt = 1; // it went down: a transition
    const down = fakeEndpoint('a', 1, state);
    let gen = generationWith([{ id: 'a', endpoint: down }]);
    const { alerting, sent } = recording(() => gen);
    alerting.apply(config(RULES));
    alerting.healthChanged(down, { healthy: false, reason: 'probe_failures' } satisfies HealthTransition);
    await waitUntil(() => sent.length === 2, 2000, 'the two firing alerts');
    return {
      alerting,
      sent,
      down,
      reload: (g: Generation, yaml = RULES) => {
        gen = g;
        alerting.apply(config(yaml));
      },
    };
  }

  test('the pool (and its backend) removed: both resolved', async () => {
    const { alerting, sent, reload } = await withDownBackend();
    reload(generationWith(undefined));
    await waitUntil(() => sent.length === 4, 2000, 'the two resolved alerts');
    expect(sent.slice(2)).toEqual([
      { kind: 'backend_unhealthy', status: 'resolved', message: 'backend a of pool api (127.0.0.1:1): alert ended, removed or replaced by a reload' },
      { kind: 'pool_unavailable', status: 'resolved', message: 'pool api: alert ended, removed by a reload' },
    ]);
    reload(generationWith(undefined)); // nothing is resolved twice
    await Bun.sleep(50);
    expect(sent.length).toBe(4);
    alerting.stop();
  });

  test('the backend available again after the reload (a changed health_check needs no transition): both resolved', async () => {
    const { alerting, sent, reload, down } = await withDownBackend();
    state.healthy = true;
    reload(generationWith([{ id: 'a', endpoint: down }]));
    await waitUntil(() => sent.length === 4, 2000, 'the two resolved alerts');
    expect(sent.slice(2).map((p) => [p.kind, p.status])).toEqual([
      ['backend_unhealthy', 'resolved'],
      ['pool_unavailable', 'resolved'],
    ]);
    expect(sent[2]?.message).toBe('backend a of pool api (127.0.0.1:1) is healthy again (after a reload)');
    alerting.stop();
  });

  test('the backend renamed (same address, same health state) and still down: the alert moves to the new name', async () => {
    const { alerting, sent, reload, down } = await withDownBackend();
    reload(generationWith([{ id: 'a2', endpoint: down }]));
    await waitUntil(() => sent.length === 4, 2000, 'resolved under the old name, firing under the new one');
    expect(sent.slice(2)).toEqual([
      { kind: 'backend_unhealthy', status: 'resolved', message: 'backend a of pool api (127.0.0.1:1): alert ended, renamed by a reload' },
      {
        kind: 'backend_unhealthy',
        status: 'firing',
        message: 'backend a2 of pool api (127.0.0.1:1) is unhealthy (still down after a rename by a reload)',
      },
    ]);
    alerting.stop();
  });

  test('alerts removed from the config and added back after the backend recovered: both resolved then', async () => {
    const { alerting, sent, reload, down } = await withDownBackend();
    const same = generationWith([{ id: 'a', endpoint: down }]);
    alerting.apply(config('')); // no alerts section: nothing can be sent
    state.healthy = true;
    alerting.healthChanged(down, { healthy: true, reason: 'probe_successes' } satisfies HealthTransition); // ignored without alerts
    reload(same);
    await waitUntil(() => sent.length === 4, 2000, 'the two resolved alerts');
    expect(sent.slice(2).map((p) => [p.kind, p.status])).toEqual([
      ['backend_unhealthy', 'resolved'],
      ['pool_unavailable', 'resolved'],
    ]);
    alerting.stop();
  });

  test('a healthy backend whose circuit is open (or that is ejected) leaves the pool unavailable: found by the tick', async () => {
    const { alerting, sent, reload, down } = await withDownBackend();
    state.healthy = true;
    state.available = false; // healthy again, but its circuit is still open
    alerting.healthChanged(down, { healthy: true, reason: 'probe_successes' } satisfies HealthTransition);
    await waitUntil(() => sent.length === 3, 2000, 'the backend resolved');
    expect(sent[2]?.kind).toBe('backend_unhealthy');
    state.available = true; // the circuit closed: no health transition, the tick sees it
    alerting.tick();
    await waitUntil(() => sent.length === 4, 2000, 'the pool resolved');
    expect(sent[3]).toEqual({ kind: 'pool_unavailable', status: 'resolved', message: 'pool api has an available backend again (1 of 1)' });
    state.available = false; // the circuit opened again
    alerting.tick();
    await waitUntil(() => sent.length === 5, 2000, 'the pool firing again');
    expect(sent[4]).toEqual({
      kind: 'pool_unavailable',
      status: 'firing',
      message: 'pool api has no available backend (1 of 1 healthy, but kept out by circuit breakers or outlier detection)',
    });
    reload(generationWith([{ id: 'a', endpoint: down }]));
    await Bun.sleep(50);
    expect(sent.length).toBe(5); // still unavailable after the reload: nothing new
    alerting.stop();
  });

  test('a pool down on health alone at start (initial: unhealthy) raises nothing from the tick', async () => {
    state.healthy = false;
    state.available = undefined;
    state.changedAt = 0; // no transition yet
    const gen = generationWith([{ id: 'a', endpoint: fakeEndpoint('a', 1, state) }]);
    const { alerting, sent } = recording(() => gen);
    alerting.apply(config(RULES));
    alerting.tick();
    await Bun.sleep(50);
    expect(sent).toEqual([]);
    alerting.stop();
  });

  test("a reload that removes the pool's last healthy backend: the tick fires pool_unavailable", async () => {
    const { alerting, sent, reload, down } = await withDownBackend(); // backend a down, pool down
    // The pool of the next config has a second, healthy backend: the pool is available again.
    const up = fakeEndpoint('b', 2, { healthy: true });
    reload(
      generationWith([
        { id: 'a', endpoint: down },
        { id: 'b', endpoint: up },
      ]),
    );
    await waitUntil(() => sent.length === 3, 2000, 'the pool resolved');
    expect(sent[2]).toMatchObject({ kind: 'pool_unavailable', status: 'resolved' });
    reload(generationWith([{ id: 'a', endpoint: down }])); // b removed again: only the down backend is left
    alerting.tick();
    await waitUntil(() => sent.length === 4, 2000, 'the pool firing');
    expect(sent[3]).toEqual({ kind: 'pool_unavailable', status: 'firing', message: 'pool api has no healthy backend (0 of 1)' });
    alerting.stop();
  });

  test('a reload that removes the last healthy backend of a pool whose other backends never came up: the tick fires', async () => {
    const up = fakeEndpoint('a', 1, { healthy: true });
    const neverUp = fakeEndpoint('b', 2, { healthy: false }); // initial: unhealthy, its probes still failing: no transition yet
    let gen = generationWith([
      { id: 'a', endpoint: up },
      { id: 'b', endpoint: neverUp },
    ]);
    const { alerting, sent, tags } = recording(() => gen);
    alerting.apply(config(RULES));
    alerting.tick(); // the pool is available
    gen = generationWith([{ id: 'b', endpoint: neverUp }]);
    alerting.apply(config(RULES));
    alerting.tick();
    await waitUntil(() => sent.length === 1, 2000, 'the pool firing');
    expect(tags()).toEqual(['pool_unavailable:firing']);
    alerting.stop();
  });

  test('seen available while alerts were off, then left without one by the reload that switches them on: fires', async () => {
    const neverUp = fakeEndpoint('b', 2, { healthy: false });
    let gen = generationWith([
      { id: 'a', endpoint: fakeEndpoint('a', 1, { healthy: true }) },
      { id: 'b', endpoint: neverUp },
    ]);
    const { alerting, sent, tags } = recording(() => gen);
    alerting.apply(config('')); // start without alerts
    gen = generationWith([{ id: 'b', endpoint: neverUp }]);
    alerting.apply(config(RULES)); // a removed, alerts on
    alerting.tick();
    await waitUntil(() => sent.length === 1, 2000, 'the pool firing');
    expect(tags()).toEqual(['pool_unavailable:firing']);
    alerting.stop();
  });

  test('a pool that came up on a health transition while alerts were off counts as seen: the reload leaving it down fires', async () => {
    const aState = { healthy: false };
    const a = fakeEndpoint('a', 1, aState);
    const neverUp = fakeEndpoint('b', 2, { healthy: false });
    let gen = generationWith([
      { id: 'a', endpoint: a },
      { id: 'b', endpoint: neverUp },
    ]);
    const { alerting, sent, tags } = recording(() => gen);
    alerting.apply(config('')); // alerts off; nothing is available yet
    aState.healthy = true;
    alerting.healthChanged(a, { healthy: true, reason: 'probe_successes' } satisfies HealthTransition);
    gen = generationWith([{ id: 'b', endpoint: neverUp }]);
    alerting.apply(config(RULES)); // a removed, alerts on
    alerting.tick();
    await waitUntil(() => sent.length === 1, 2000, 'the pool firing');
    expect(tags()).toEqual(['pool_unavailable:firing']);
    alerting.stop();
  });

  test('a pool removed while alerts are off and added again with a backend that never came up is a new pool: nothing fires', async () => {
    let gen = generationWith([{ id: 'a', endpoint: fakeEndpoint('a', 1, { healthy: true }) }]);
    const { alerting, sent } = recording(() => gen);
    alerting.apply(config(RULES));
    alerting.tick(); // available: seen up
    gen = generationWith(undefined);
    alerting.apply(config('')); // the pool removed, alerts off
    gen = generationWith([{ id: 'c', endpoint: fakeEndpoint('c', 3, { healthy: false }) }]);
    alerting.apply(config(RULES)); // added again: new endpoints that never came up
    alerting.tick();
    await Bun.sleep(50);
    expect(sent).toEqual([]);
    alerting.stop();
  });

  test('still down after the reload: nothing; the rules switched off: both resolved', async () => {
    const { alerting, sent, reload, down } = await withDownBackend();
    const stillDown = generationWith([{ id: 'a', endpoint: down }]);
    reload(stillDown);
    await Bun.sleep(50);
    expect(sent.length).toBe(2);
    reload(
      stillDown,
      'alerts: { min_interval_ms: 0, rules: { backend_unhealthy: false, pool_unavailable: false }, webhooks: [{ name: w, url: "http://127.0.0.1:9/h" }] }\n',
    );
    await waitUntil(() => sent.length === 4, 2000, 'the two resolved alerts');
    expect(sent.slice(2).map((p) => p.message)).toEqual([
      'backend a of pool api (127.0.0.1:1): alert ended, backend_unhealthy alerts switched off by a reload',
      'pool api: alert ended, pool_unavailable alerts switched off by a reload',
    ]);
    alerting.stop();
  });
});

test('route alerts survive an alerts section that is removed and added back: the recovery is still reported', async () => {
  const clock = new ManualClock();
  const gen = { id: 1, loadedAt: 0, config: {}, pools: new Map() } as unknown as Generation;
  const { alerting, sent, tags } = recording(() => gen, clock);
  const yaml =
    'alerts: { min_interval_ms: 0, rules: { route_error_rate: { window_ms: 1000, min_requests: 5, threshold: 0.5 } }, webhooks: [{ name: w, url: "http://127.0.0.1:9/h" }] }\n';
  const requests = (status: number) => {
    for (let i = 0; i < 10; i++)
      alerting.requestEnd({
        request_id: 'r',
        client: '',
        protocol: 'h3',
        method: 'GET',
        host: 'h',
        path: '/',
        status,
        bytes_in: 0,
        bytes_out: 0,
        duration_ms: 1,
        attempts: 1,
        route: 'api#0',
        pool: 'api',
      });
  };
  alerting.apply(config(yaml));
  requests(500);
  alerting.tick();
  await waitUntil(() => sent.length === 1, 2000, 'the route alert');
  alerting.apply(config('')); // alerts removed: nothing is measured or sent
  alerting.apply(config(yaml)); // and back, unchanged
  clock.advance(2000);
  requests(200);
  alerting.tick();
  await waitUntil(() => sent.length === 2, 2000, 'the recovery');
  expect(tags()).toEqual(['route_error_rate:firing', 'route_error_rate:resolved']);
  alerting.stop();
});
