/**
 * Fixtures for unit tests of endpoints and the registry: a transport that is never asked for a request, and
 * an HTTP/1.1 backend config on 127.0.0.1:1 with a fixed health-check policy.
 */
import type { BackendConfig } from '../../src/config/types.ts';
import type { Transport } from '../../src/upstream/transport.ts';

/** A transport for tests that never send a request through it: `request` rejects, stats are all 0. */
export function unusedTransport(): Transport {
  return {
    request: () => Promise.reject(new Error('not used')),
    openWebSocket: () => Promise.reject(new Error('not used')),
    stats: () => ({ connectionsOpened: 0, connectionsOpen: 0, connectionsIdle: 0 }),
    close: () => {},
  };
}

/**
 * Backend `a` at http://127.0.0.1:1, weight 100, no probes, initially healthy; `passiveFailureThreshold` is its
 * health check's `passive_failure_threshold`.
 */
export function testBackend(passiveFailureThreshold: number): BackendConfig {
  const url = new URL('http://127.0.0.1:1');
  return {
    id: 'a',
    address: url.href,
    url,
    protocol: 'http1',
    weight: 100,
    health_check: { probes: [], failure_threshold: 3, success_threshold: 2, cooldown_ms: 5000, initial: 'healthy', passive_failure_threshold: passiveFailureThreshold },
  };
}
