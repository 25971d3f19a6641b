import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { waitUntil } from '../../test/support/wait.ts';
import type { BackendConfig, HealthCheckConfig, HealthProbeConfig } from '../config/types.ts';
import { systemClock } from '../lib/clock.ts';
import { Endpoint } from '../upstream/endpoint.ts';
import { Http1Transport } from '../upstream/http1.ts';
import { HealthChecker } from './checker.ts';

// A real backend that records what probes send and answers per path.
const seen: { path: string; host: string | null; probeHeader: string | null }[] = [];
let status: Record<string, number> = {};
let server: ReturnType<typeof Bun.serve>;

beforeAll(() => {
  server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      seen.push({ path, host: req.headers.get('host'), probeHeader: req.headers.get('x-probe') });
      return new Response('x', { status: status[path] ?? 200 });
    },
  });
});
afterAll(() => server.stop(true));

function probe(over: Partial<HealthProbeConfig>): HealthProbeConfig {
  return { path: '/health', method: 'GET', interval: 30, timeout_ms: 500, expected_status: [200, 299], headers: {}, ...over };
}

function setup(probes: HealthProbeConfig[], over: Partial<HealthCheckConfig> = {}) {
  const url = new URL(`http://127.0.0.1:${server.port}`);
  const health: HealthCheckConfig = {
    probes,
    failure_threshold: 1,
    success_threshold: 1,
    cooldown_ms: 0,
    initial: 'healthy',
    passive_failure_threshold: 0,
    ...over,
  };
  const backend: BackendConfig = { id: 'b', address: url.href, url, protocol: 'http1', weight: 100, health_check: health };
  const transport = new Http1Transport({ host: '127.0.0.1', port: server.port as number });
  const transitions: boolean[] = [];
  const endpoint = new Endpoint('k', 'pool', backend, transport, systemClock, (_e, t) => transitions.push(t.healthy));
  const checker = new HealthChecker(endpoint, probes, () => transport);
  return { endpoint, checker, transitions, transport };
}

describe('HealthChecker against a real backend', () => {
  test('a reload to a shorter interval takes effect at once, not after the old interval', async () => {
    seen.length = 0;
    status = {};
    const { checker, transport } = setup([probe({ path: '/slow-interval', interval: 60_000 })]);
    checker.start();
    await checker.firstRound;
    checker.update([probe({ path: '/slow-interval', interval: 50 })]);
    await waitUntil(() => seen.filter((x) => x.path === '/slow-interval').length >= 3, 3000, 'probes at the new interval');
    checker.stop();
    transport.close();
  });

  test('sends the configured Host and headers', async () => {
    seen.length = 0;
    status = {};
    const { checker, transport } = setup([probe({ path: '/hc', host: 'probe.example', headers: { 'x-probe': 'yes' } })]);
    checker.start();
    await checker.firstRound;
    checker.stop();
    transport.close();
    expect(seen[0]).toEqual({ path: '/hc', host: 'probe.example', probeHeader: 'yes' });
  });

  test.each<[string, Record<string, string>, string | undefined, string]>([
    ['a Host among the headers is the one Host sent', { Host: 'h.internal' }, undefined, 'h.internal'],
    ['the host key wins over a Host among the headers', { host: 'h.internal' }, 'probe.example', 'probe.example'],
  ])('%s (never two Host fields)', async (_name, headers, host, want) => {
    seen.length = 0;
    status = {};
    const { checker, transport } = setup([probe({ path: '/hc', ...(host ? { host } : {}), headers })]);
    checker.start();
    await checker.firstRound;
    checker.stop();
    transport.close();
    expect(seen[0]?.host).toBe(want);
  });

  test('a status outside expected_status fails the round and takes the backend out; recovery brings it back', async () => {
    status = { '/hc': 503 };
    const { endpoint, checker, transitions, transport } = setup([probe({ path: '/hc' })]);
    checker.start();
    await waitUntil(() => transitions.includes(false));
    expect(endpoint.available()).toBe(false);
    expect(endpoint.health.lastProbe?.detail).toBe('/hc: status 503');
    status = {};
    await waitUntil(() => transitions.at(-1) === true);
    expect(endpoint.available()).toBe(true);
    checker.stop();
    transport.close();
  });

  test('with several probes the backend is up only while all of them pass', async () => {
    status = { '/b': 500 };
    const { endpoint, checker, transitions, transport } = setup([probe({ path: '/a' }), probe({ path: '/b', interval: 60 })]);
    checker.start();
    await waitUntil(() => transitions.includes(false));
    expect(endpoint.health.lastProbe?.detail).toBe('/b: status 500');
    checker.stop();
    transport.close();
  });

  test('an unreachable backend fails with a connect error', async () => {
    const { endpoint, checker, transitions } = setup([probe({ path: '/hc' })]);
    const dead = new Http1Transport({ host: '127.0.0.1', port: 1 });
    const deadChecker = new HealthChecker(endpoint, [probe({ path: '/hc', address: 'http://127.0.0.1:1' })], () => dead);
    deadChecker.start();
    await waitUntil(() => transitions.includes(false));
    expect(endpoint.health.lastProbe?.detail).toBe('/hc: upstream_connect_failed');
    deadChecker.stop();
    checker.stop();
  });
});
