import { describe, expect, test } from 'bun:test';
import { scriptedRandom } from '../lib/random.ts';
import type { RequestRecord } from './access-log.ts';
import { accessWriterFor, keepRecord, SampledAccessLog } from './access-sampling.ts';

function rec(status: number, error?: string): RequestRecord {
  return {
    request_id: `r${status}`,
    client: '127.0.0.1',
    protocol: 'h3',
    method: 'GET',
    host: 'a',
    path: '/',
    status,
    bytes_in: 0,
    bytes_out: 0,
    duration_ms: 1,
    attempts: 1,
    ...(error !== undefined ? { error } : {}),
  };
}

describe('access-log sampling', () => {
  test.each([
    // ratio, always_log_errors, status, error, random draw, kept
    [1, true, 200, undefined, 0.99, true],
    [0.5, true, 200, undefined, 0.49, true],
    [0.5, true, 200, undefined, 0.5, false],
    [0, true, 200, undefined, 0, false],
    [0, true, 502, 'upstream_reset', 0.99, true],
    [0, true, 503, undefined, 0.99, true],
    [0, true, 404, 'no_route', 0.99, true],
    [0, true, 499, 'client_aborted', 0.99, true],
    [0, true, 404, undefined, 0.99, false],
    [0, false, 502, 'upstream_reset', 0, false],
    [0.1, false, 500, undefined, 0.05, true],
    [0.1, false, 500, undefined, 0.5, false],
  ] as const)('ratio %p, errors kept %p: status %p error %p, draw %p -> kept %p', (ratio, always, status, error, draw, kept) => {
    expect(keepRecord(rec(status, error), { ratio, always_log_errors: always }, scriptedRandom([draw]))).toBe(kept);
  });

  test('a certain outcome draws nothing from the random source', () => {
    let draws = 0;
    const random = () => {
      draws++;
      return 0;
    };
    keepRecord(rec(200), { ratio: 1, always_log_errors: true }, random);
    keepRecord(rec(502, 'upstream_reset'), { ratio: 0.5, always_log_errors: true }, random);
    keepRecord(rec(200), { ratio: 0, always_log_errors: true }, random);
    expect(draws).toBe(0);
  });

  test('about ratio of 10,000 records are written, every error is, and the dropped ones are counted', () => {
    const written: RequestRecord[] = [];
    const stats = { sampledOut: 0 };
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const log = new SampledAccessLog({ write: (r) => written.push(r) }, { ratio: 0.1, always_log_errors: true }, random, stats);
    for (let i = 0; i < 10_000; i++) log.write(rec(i % 100 === 0 ? 503 : 200));
    const errors = written.filter((r) => r.status === 503).length;
    expect(errors).toBe(100);
    expect(written.length - errors).toBeGreaterThan(800);
    expect(written.length - errors).toBeLessThan(1200);
    expect(stats.sampledOut + written.length).toBe(10_000);
  });

  test('without sampling the access log itself is used (nothing added on the request path)', () => {
    const access = { write() {} };
    const stats = { sampledOut: 0 };
    expect(accessWriterFor(access, undefined, Math.random, stats)).toBe(access);
    expect(accessWriterFor(access, { ratio: 1, always_log_errors: false }, Math.random, stats)).toBe(access);
    const cfg = { ratio: 0.5, always_log_errors: true };
    const w = accessWriterFor(access, cfg, Math.random, stats);
    expect(w).not.toBe(access);
    expect(accessWriterFor(access, cfg, Math.random, stats)).toBe(w);
  });
});
