/**
 * What the registry sets up for per-backend limits and slow start: backends of the first config start warm,
 * backends added by a reload start their ramp; a gate per backend with `max_concurrent_requests`, kept with
 * its state across reloads; separate connection pools for different `max_connections`.
 */
import { describe, expect, test } from 'bun:test';
import { formatIssue, loadConfigText } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { ManualClock } from '../lib/clock.ts';
import { EndpointRegistry } from './registry.ts';
import type { Transport } from './transport.ts';
import { unusedTransport } from '../../test/support/endpoint-fixtures.ts';

function config(backends: string, poolExtra = ''): Config {
  const r = loadConfigText(
    `listen:\n  tls: { cert: c.pem, key: k.pem }\nupstream:\n  p:\n    ${poolExtra}\n    backends:\n${backends}`,
    'spooky.yaml',
    '/srv',
  );
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}

function registry(clock: ManualClock): { reg: EndpointRegistry; made: string[] } {
  const made: string[] = [];
  const reg = new EndpointRegistry(
    clock,
    (b) => {
      made.push(`${b.id}:${b.limits?.max_connections ?? 0}`);
      return unusedTransport();
    },
    () => {},
  );
  return { reg, made };
}

describe('registry: slow start and limits', () => {
  test('first-config backends start warm; a backend added by a reload joins now', () => {
    const clock = new ManualClock(1000);
    const { reg } = registry(clock);
    const first = reg.sync(config('      - { id: a, address: "http://10.0.0.1:80" }\n'));
    expect(first.get('p')?.get('a')?.joinedAt).toBe(Number.NEGATIVE_INFINITY);
    clock.advance(500);
    const second = reg.sync(config('      - { id: a, address: "http://10.0.0.1:80" }\n      - { id: b, address: "http://10.0.0.2:80" }\n'));
    expect(second.get('p')?.get('a')?.joinedAt).toBe(Number.NEGATIVE_INFINITY);
    expect(second.get('p')?.get('b')?.joinedAt).toBe(1500);
    reg.close();
  });

  test('a gate only with max_concurrent_requests; kept (with its slots) when the limit changes; dropped when removed', () => {
    const clock = new ManualClock(0);
    const { reg } = registry(clock);
    const one = reg.sync(config('      - { id: a, address: "http://10.0.0.1:80", limits: { max_connections: 3 } }\n'));
    expect(one.get('p')?.get('a')?.gate).toBeNull();
    const two = reg.sync(config('      - { id: a, address: "http://10.0.0.1:80" }\n', 'backend_limits: { max_concurrent_requests: 1 }'));
    const gate = two.get('p')?.get('a')?.gate;
    expect(gate?.limiter.limits.maxActive).toBe(1);
    expect(gate?.admit(new AbortController().signal)).toBeUndefined(); // takes the one slot
    const three = reg.sync(config('      - { id: a, address: "http://10.0.0.1:80" }\n', 'backend_limits: { max_concurrent_requests: 4 }'));
    expect(three.get('p')?.get('a')?.gate).toBe(gate as NonNullable<typeof gate>);
    expect([gate?.limiter.active, gate?.limiter.limits.maxActive]).toEqual([1, 4]);
    const four = reg.sync(config('      - { id: a, address: "http://10.0.0.1:80" }\n'));
    expect(four.get('p')?.get('a')?.gate).toBeNull();
    reg.close();
  });

  test('a new max_connections gives a connection pool of that size and keeps the endpoint (health, counters)', () => {
    const clock = new ManualClock(0);
    const { reg, made } = registry(clock);
    const before = reg.sync(config('      - { id: a, address: "http://10.0.0.1:80" }\n')).get('p')?.get('a');
    const oldTransport = before?.transport;
    const after = reg.sync(config('      - { id: a, address: "http://10.0.0.1:80", limits: { max_connections: 2 } }\n')).get('p')?.get('a');
    expect(made).toEqual(['a:0', 'a:2']);
    expect(after).toBe(before as NonNullable<typeof before>);
    expect(after?.transport).not.toBe(oldTransport as Transport);
    reg.close();
  });
});
