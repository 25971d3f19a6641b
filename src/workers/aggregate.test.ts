import { describe, expect, test } from 'bun:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { aggregateMetrics, type MetricJson } from './aggregate.ts';

/** A worker's registry with a request counter, the in-flight gauge, backend health and reload counts. */
async function worker(requests: number, inFlight: number, healthy: number, generation: number): Promise<MetricJson[]> {
  const r = new Registry();
  new Counter({ name: 'spooky_requests_total', help: 'h', labelNames: ['pool'], registers: [r] }).inc({ pool: 'api' }, requests);
  new Gauge({ name: 'spooky_requests_in_flight', help: 'h', registers: [r] }).set(inFlight);
  new Gauge({ name: 'spooky_backend_healthy', help: 'h', labelNames: ['backend'], registers: [r] }).set({ backend: 'a' }, healthy);
  new Gauge({ name: 'spooky_config_generation', help: 'h', registers: [r] }).set(generation);
  new Gauge({ name: 'spooky_backend_effective_weight', help: 'h', labelNames: ['backend'], registers: [r] }).set({ backend: 'a' }, 5);
  new Gauge({ name: 'spooky_process_max_fds', help: 'h', registers: [r] }).set(20000);
  new Gauge({ name: 'spooky_redis_up', help: 'h', labelNames: ['url'], registers: [r] }).set({ url: 'redis://r:6379' }, healthy);
  new Counter({ name: 'spooky_config_reloads_total', help: 'h', labelNames: ['result'], registers: [r] }).inc({ result: 'success' }, 7);
  return r.getMetricsAsJSON();
}

async function supervisor(reloads: number): Promise<MetricJson[]> {
  const r = new Registry();
  new Counter({ name: 'spooky_worker_restarts_total', help: 'h', registers: [r] }).inc(2);
  new Counter({ name: 'spooky_config_reloads_total', help: 'h', labelNames: ['result'], registers: [r] }).inc({ result: 'success' }, reloads);
  return r.getMetricsAsJSON();
}

describe('aggregated worker metrics', () => {
  test.each([
    ['spooky_requests_total{pool="api"}', 30], // counters: summed
    ['spooky_requests_in_flight', 5], // additive gauge: summed
    ['spooky_backend_healthy{backend="a"}', 0], // healthy only when every worker sees it healthy
    ['spooky_config_generation', 4], // the newest
    ['spooky_backend_effective_weight{backend="a"}', 5], // a setting, not a share of the load
    ['spooky_process_max_fds', 20000], // the per-process limit
    ['spooky_redis_up{url="redis://r:6379"}', 0], // up only when every worker reaches Redis (never 2)
    ['spooky_config_reloads_total{result="success"}', 3], // the supervisor's count, not the workers' sum
    ['spooky_worker_restarts_total', 2],
  ])('%s = %d', async (series, want) => {
    const text = await aggregateMetrics([await worker(10, 2, 1, 4), await worker(20, 3, 0, 1)], await supervisor(3)).metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    expect(Number(line?.split(' ')[1])).toBe(want);
  });

  test('no workers answered: only the supervisor series', async () => {
    const text = await aggregateMetrics([], await supervisor(1)).metrics();
    expect(text).toContain('spooky_worker_restarts_total 2');
    expect(text).not.toContain('spooky_requests_total');
  });
});
