import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { parseExposition, sample } from '../../test/support/prom.ts';
import { registerLogMetrics } from './log-metrics.ts';

describe('log metrics', () => {
  const registry = new Registry();
  const sampling = { sampledOut: 0 };
  const bodySamples = { request: 0, response: 0 };
  const reopens = { success: 0, failure: 0 };
  registerLogMetrics(registry, { sampling, bodySamples, reopens });

  test('values are read from the counters when scraped', async () => {
    sampling.sampledOut = 7;
    bodySamples.request = 2;
    bodySamples.response = 3;
    reopens.success = 1;
    const s = parseExposition(await registry.metrics());
    expect(sample(s, 'spooky_access_log_sampled_out_total')).toBe(7);
    expect(sample(s, 'spooky_body_samples_total', { direction: 'request' })).toBe(2);
    expect(sample(s, 'spooky_body_samples_total', { direction: 'response' })).toBe(3);
    expect(sample(s, 'spooky_log_reopens_total', { result: 'success' })).toBe(1);
    expect(sample(s, 'spooky_log_reopens_total', { result: 'failure' })).toBe(0);
  });

  test('the README lists them', async () => {
    const names = [...(await registry.metrics()).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string);
    expect(names).toHaveLength(3);
    const readme = readFileSync(resolve(import.meta.dir, '../../README.md'), 'utf8');
    expect(names.filter((n) => !readme.includes(`\`${n}\``))).toEqual([]);
  });
});
