import { expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from '../../test/support/wait.ts';
import { formatIssue, loadConfigText } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { ManualClock } from '../lib/clock.ts';
import { EndpointRegistry } from './registry.ts';
import type { Transport } from './transport.ts';

function config(pools: string): Config {
  const r = loadConfigText(`listen: { tls: { cert: c.pem, key: k.pem } }\nupstream:\n${pools}`, 'spooky.yaml', '/srv');
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}

/** A transport that only records whether it was closed. */
function fakeTransport(): Transport & { closed: boolean } {
  return {
    closed: false,
    request: () => Promise.reject(new Error('not used')),
    openWebSocket: () => Promise.reject(new Error('not used')),
    stats: () => ({ connectionsOpened: 0, connectionsOpen: 0, connectionsIdle: 0 }),
    close() {
      this.closed = true;
    },
  };
}

test('a sync that fails to make a transport changes nothing: removed backends keep running', () => {
  const made = new Map<string, Transport & { closed: boolean }>();
  const registry = new EndpointRegistry(
    new ManualClock(0),
    (backend) => {
      if (backend.address.includes('bad')) throw new Error('cannot read upstream_tls.ca_file');
      const t = fakeTransport();
      made.set(backend.address, t);
      return t;
    },
    () => {},
  );
  const first = registry.sync(config('  app:\n    backends: [{ id: a, address: "http://a:80" }, { id: b, address: "http://b:80" }]\n'));
  const b = first.get('app')?.get('b');
  expect(b).toBeDefined();
  // The new config drops b and adds a pool whose transport cannot be made: the sync throws before touching b.
  const next = config(
    '  app:\n    backends: [{ id: a, address: "http://a:80" }]\n  other:\n    route: { path_prefix: /other }\n    backends: [{ id: c, address: "http://bad:80" }]\n',
  );
  expect(() => registry.sync(next)).toThrow('ca_file');
  expect(made.get('http://b:80')?.closed).toBe(false);
  // b is still the same endpoint with the same transport when the old config is synced again.
  const again = registry.sync(config('  app:\n    backends: [{ id: a, address: "http://a:80" }, { id: b, address: "http://b:80" }]\n'));
  expect(again.get('app')?.get('b')).toBe(b);
  expect(made.size).toBe(2);
});

const OUTLIER_POOL = (a: string, b: string) =>
  `  app:\n    outlier_detection: { consecutive_failures: 1, base_ejection_ms: 60000, max_ejected_percent: 100 }\n    health_check: { passive_failure_threshold: 0, probes: [] }\n    backends: [{ id: ${a}, address: "http://10.0.0.1:80" }, { id: ${b}, address: "http://10.0.0.2:80" }]\n`;

test('an ejected backend stays ejected when a reload only renames it, and swapped ids do not swap ejections', () => {
  const clock = new ManualClock(1000);
  const reg = new EndpointRegistry(clock, fakeTransport, () => {});
  const first = reg.sync(config(OUTLIER_POOL('a', 'b'))).get('app');
  const sick = first?.get('a'); // 10.0.0.1
  const healthy = first?.get('b'); // 10.0.0.2
  if (!sick || !healthy) throw new Error('endpoints missing');
  sick.end(sick.begin(), clock.now(), undefined, 503); // one 5xx: ejected for 60 s
  expect(sick.ejected(clock.now())).toBe(true);
  reg.sync(config(OUTLIER_POOL('a2', 'b'))); // same address, new id
  clock.advance(1);
  expect(sick.ejected(clock.now())).toBe(true);
  reg.sync(config(OUTLIER_POOL('b', 'a'))); // 10.0.0.1 is now "b", 10.0.0.2 is now "a"
  clock.advance(1);
  expect(sick.available()).toBe(false);
  expect(healthy.available()).toBe(true);
});

test('an https probe of a plain-http backend gets a new probe transport when the pool TLS policy or CA bundle changes', async () => {
  const made: { address: string; verify: boolean; t: Transport & { closed: boolean } }[] = [];
  const registry = new EndpointRegistry(
    new ManualClock(0),
    (backend, tls) => {
      const t = fakeTransport();
      made.push({ address: backend.address, verify: tls.verify_certificates, t });
      return t;
    },
    () => {},
  );
  const ca = join(mkdtempSync(join(tmpdir(), 'spooky-ca-')), 'ca.pem');
  writeFileSync(ca, 'first bundle');
  const pool = (verify: boolean) =>
    `  app:\n    tls: { verify_certificates: ${verify}, ca_file: "${ca}" }\n    health_check: { address: "https://10.0.0.1:8443", path: /health, interval: 20, timeout_ms: 20 }\n    backends: [{ id: a, address: "http://10.0.0.1:80" }]\n`;
  const probes = () => made.filter((m) => m.address === 'https://10.0.0.1:8443');
  try {
    registry.sync(config(pool(true)));
    await waitUntil(() => probes().length === 1, 2000, 'the first probe transport');
    registry.sync(config(pool(false))); // a new TLS policy
    await waitUntil(() => probes().length === 2, 2000, 'a probe transport under the new policy');
    expect(probes()[1]?.verify).toBe(false);
    expect(probes()[0]?.t.closed).toBe(true);
    writeFileSync(ca, 'rotated bundle'); // same path, new contents
    registry.sync(config(pool(false)));
    await waitUntil(() => probes().length === 3, 2000, 'a probe transport for the rotated bundle');
    registry.sync(config(pool(false))); // nothing changed: the probe transport is kept
    await Bun.sleep(100);
    expect(probes()).toHaveLength(3);
  } finally {
    registry.close();
  }
});
