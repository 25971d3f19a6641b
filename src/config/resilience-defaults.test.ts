/**
 * Config resolution of the resilience defaults added for issue 5: top-level `circuit_breaker` and
 * `outlier_detection` as pool defaults (field by field, `enabled: false` opts a pool out), per-backend limits
 * (pool `backend_limits` under backend `limits`), and `load_balancing.slow_start`.
 */
import { describe, expect, test } from 'bun:test';
import { formatIssue, loadConfigText } from './load.ts';
import type { Config, ConfigIssue } from './types.ts';

const L = 'listen:\n  tls: { cert: c.pem, key: k.pem }\n';

function ok(text: string): { config: Config; warnings: ConfigIssue[] } {
  const r = loadConfigText(`${L}${text}`, 'spooky.yaml', '/srv');
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.errors.map(formatIssue).join('\n')}`);
  return r;
}

function errors(text: string): string[] {
  const r = loadConfigText(`${L}${text}`, 'spooky.yaml', '/srv');
  if (r.ok) throw new Error('expected errors');
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

const POOLS = `upstream:
  a:
    route: { path_prefix: /a }
    POOL_A
    backends: [{ id: x, address: "http://x" }]
  b:
    route: { path_prefix: /b }
    backends: [{ id: y, address: "http://y" }]
`;

function pools(top: string, poolA = ''): Config['pools'] {
  return ok(`${top}${POOLS.replace('POOL_A', poolA || '# none')}`).config.pools;
}

describe('top-level circuit_breaker and outlier_detection', () => {
  const BREAKER = { consecutive_failures: 5, failure_rate: 0.5, window_ms: 10000, min_requests: 20, open_ms: 10000, half_open_max: 1 };
  const OUTLIER = { consecutive_failures: 5, base_ejection_ms: 30000, max_ejection_ms: 300000, max_ejected_percent: 50 };

  test.each<[string, string, string, unknown, unknown]>([
    ['nowhere: off in every pool', '', '', null, null],
    ['only a pool: that pool, defaults filled in', '', 'circuit_breaker: { open_ms: 100 }', { ...BREAKER, open_ms: 100 }, null],
    [
      'top level: every pool gets it',
      'circuit_breaker: { consecutive_failures: 3 }\n',
      '',
      { ...BREAKER, consecutive_failures: 3 },
      { ...BREAKER, consecutive_failures: 3 },
    ],
    [
      'a pool overrides field by field',
      'circuit_breaker: { consecutive_failures: 3, open_ms: 500 }\n',
      'circuit_breaker: { open_ms: 100 }',
      { ...BREAKER, consecutive_failures: 3, open_ms: 100 },
      { ...BREAKER, consecutive_failures: 3, open_ms: 500 },
    ],
    ['a pool opts out with enabled: false', 'circuit_breaker: {}\n', 'circuit_breaker: { enabled: false }', null, BREAKER],
    [
      'enabled: false at the top is off unless a pool turns it on',
      'circuit_breaker: { enabled: false }\n',
      'circuit_breaker: { enabled: true }',
      BREAKER,
      null,
    ],
  ])('circuit_breaker %s', (_name, top, poolA, wantA, wantB) => {
    const [a, b] = pools(top, poolA);
    expect([a?.circuit_breaker, b?.circuit_breaker]).toEqual([wantA, wantB] as never);
  });

  test.each<[string, string, string, unknown, unknown]>([
    ['nowhere: off', '', '', null, null],
    [
      'top level: every pool',
      'outlier_detection: { base_ejection_ms: 1000 }\n',
      '',
      { ...OUTLIER, base_ejection_ms: 1000 },
      { ...OUTLIER, base_ejection_ms: 1000 },
    ],
    [
      'a pool overrides field by field',
      'outlier_detection: { base_ejection_ms: 1000 }\n',
      'outlier_detection: { consecutive_failures: 2 }',
      { ...OUTLIER, base_ejection_ms: 1000, consecutive_failures: 2 },
      { ...OUTLIER, base_ejection_ms: 1000 },
    ],
    ['a pool opts out', 'outlier_detection: {}\n', 'outlier_detection: { enabled: false }', null, OUTLIER],
  ])('outlier_detection %s', (_name, top, poolA, wantA, wantB) => {
    const [a, b] = pools(top, poolA);
    expect([a?.outlier_detection, b?.outlier_detection]).toEqual([wantA, wantB] as never);
  });

  test('values are checked at the top level too', () => {
    expect(errors(`circuit_breaker: { failure_rate: 2 }\n${POOLS.replace('POOL_A', '# none')}`).join('\n')).toContain('circuit_breaker.failure_rate');
  });
});

describe('backend limits', () => {
  const D = { max_connections: 0, max_concurrent_requests: 0, max_queued_requests: 100, queue_timeout_ms: 1000 };

  test('pool defaults, backend overrides field by field, absent when neither is set', () => {
    const { config } = ok(`upstream:
  a:
    backend_limits: { max_concurrent_requests: 10, queue_timeout_ms: 200 }
    backends:
      - { id: x, address: "http://x" }
      - { id: y, address: "http://y", limits: { max_concurrent_requests: 2, max_connections: 4 } }
  b:
    route: { path_prefix: /b }
    backends:
      - { id: z, address: "http://z" }
      - { id: w, address: "http://w", limits: { max_queued_requests: 0 } }
`);
    const [a, b] = config.pools;
    expect(a?.backends.map((x) => x.limits)).toEqual([
      { ...D, max_concurrent_requests: 10, queue_timeout_ms: 200 },
      { ...D, max_concurrent_requests: 2, max_connections: 4, queue_timeout_ms: 200 },
    ]);
    expect(b?.backends.map((x) => x.limits)).toEqual([undefined, { ...D, max_queued_requests: 0 }]);
  });

  test.each([
    ['negative', 'backend_limits: { max_concurrent_requests: -1 }', 'max_concurrent_requests'],
    ['queue timeout 0', 'backend_limits: { queue_timeout_ms: 0 }', 'queue_timeout_ms'],
    ['unknown key with a suggestion', 'backend_limits: { max_conections: 2 }', 'did you mean `max_connections`'],
  ])('%s is an error', (_name, line, want) => {
    expect(errors(POOLS.replace('POOL_A', line)).join('\n')).toContain(want);
  });
});

describe('load_balancing.slow_start', () => {
  test.each<[string, string, unknown]>([
    ['off by default', 'load_balancing: { type: random }', undefined],
    ['an empty map: the defaults', 'load_balancing: { type: random, slow_start: {} }', { window_ms: 30000, aggression: 1, min_fraction: 0.1 }],
    [
      'all fields',
      'load_balancing: { type: least-connections, slow_start: { window_ms: 5000, aggression: 2, min_weight_percent: 25 } }',
      { window_ms: 5000, aggression: 2, min_fraction: 0.25 },
    ],
  ])('%s', (_name, line, want) => {
    expect(pools('', line)[0]?.load_balancing.slow_start).toEqual(want as never);
  });

  test('inherited from the top-level load_balancing', () => {
    const [a] = pools('load_balancing: { type: wrr, slow_start: { window_ms: 1000 } }\n');
    expect(a?.load_balancing.slow_start?.window_ms).toBe(1000);
  });

  test.each(['ip-hash', 'consistent-hash'])('ignored with a warning for %s', (type) => {
    const { config, warnings } = ok(POOLS.replace('POOL_A', `load_balancing: { type: ${type}, slow_start: {} }`));
    expect(config.pools[0]?.load_balancing.slow_start).toBeUndefined();
    expect(warnings.map((w) => w.message).join('\n')).toContain('`slow_start` is not applied');
  });
});
