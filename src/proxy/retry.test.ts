import { describe, expect, test } from 'bun:test';
import type { RetryConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { type BodyState, mayRetry } from './retry.ts';

const configured: RetryConfig = {
  configured: true,
  attempts: 3,
  per_try_timeout_ms: 0,
  on: ['connect_failure', 'reset', 'timeout'],
  statuses: [502, 503, 504],
  backoff: { base_ms: 0, cap_ms: 0, jitter: true },
  budget: null,
  buffer_body_bytes: 1024,
};
const unconfigured: RetryConfig = { ...configured, configured: false, on: ['connect_failure'], statuses: [], buffer_body_bytes: 0 };

const none: BodyState = { hasBody: false, buffered: false, touched: false };
const buffered: BodyState = { hasBody: true, buffered: true, touched: true };
const streamedUntouched: BodyState = { hasBody: true, buffered: false, touched: false };
const streamedTouched: BodyState = { hasBody: true, buffered: false, touched: true };

const connect = new SpookyError('upstream_connect_failed', 'refused');
const reset = new SpookyError('upstream_reset', 'reset');
const timeout = new SpookyError('upstream_timeout', 'slow');
const protocol = new SpookyError('upstream_protocol_error', 'bad');

describe('mayRetry', () => {
  test.each<[string, RetryConfig, string, BodyState, SpookyError | undefined, boolean]>([
    ['connect failure, any method, unconfigured', unconfigured, 'POST', none, connect, true],
    ['connect failure with an untouched streamed body', unconfigured, 'POST', streamedUntouched, connect, true],
    ['connect failure after the body was consumed', unconfigured, 'POST', streamedTouched, connect, false],
    ['reset is not retried when not configured', unconfigured, 'GET', none, reset, false],
    ['reset of a GET', configured, 'GET', none, reset, true],
    ['timeout of a GET', configured, 'GET', none, timeout, true],
    ['timeout not in on', { ...configured, on: ['connect_failure'] }, 'GET', none, timeout, false],
    ['protocol errors are never retried', configured, 'GET', none, protocol, false],
    ['status of a GET', configured, 'GET', none, undefined, true],
    ['status of a POST with a buffered body', configured, 'POST', buffered, undefined, true],
    ['status of a POST with a streamed body', configured, 'POST', streamedUntouched, undefined, false],
    ['reset of a POST with a consumed streamed body', configured, 'POST', streamedTouched, reset, false],
    ['a bodyless POST is retried when buffering is on', configured, 'POST', none, reset, true],
    ['a bodyless POST is not retried when buffering is off', { ...configured, buffer_body_bytes: 0 }, 'POST', none, reset, false],
    ['a PUT with a buffered body', configured, 'PUT', buffered, reset, true],
    ['a PUT with a streamed body', configured, 'PUT', streamedTouched, reset, false],
  ])('%s', (_name, policy, method, body, err, want) => {
    expect(mayRetry(policy, method, body, err)).toBe(want);
  });
});
