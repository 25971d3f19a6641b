import { expect, test } from 'bun:test';
import type { Config } from '../config/types.ts';
import { formatIssue, loadConfigText } from '../config/load.ts';
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
