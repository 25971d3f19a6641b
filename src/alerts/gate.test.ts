import { describe, expect, test } from 'bun:test';
import type { AlertKind } from '../config/types.ts';
import type { AlertSignal, AlertStatus } from './alert.ts';
import { AlertGate, type GateDecision } from './gate.ts';

function sig(kind: AlertKind, status: AlertStatus, backend = 'a'): AlertSignal {
  return { kind, status, subject: { pool: 'p', backend }, message: '', values: {} };
}

type Step = [at: number, kind: AlertKind, status: AlertStatus, expected: GateDecision['action'] | 'duplicate' | 'min_interval'];

function outcome(d: GateDecision): string {
  return d.action === 'suppress' ? d.reason : d.action;
}

describe('AlertGate (minimum interval 1000 ms)', () => {
  test.each<[string, Step[]]>([
    ['first firing is sent', [[0, 'backend_unhealthy', 'firing', 'send']]],
    ['a resolved without a firing is a duplicate', [[0, 'backend_unhealthy', 'resolved', 'duplicate']]],
    [
      'the same state again is a duplicate, at any time',
      [
        [0, 'backend_unhealthy', 'firing', 'send'],
        [10, 'backend_unhealthy', 'firing', 'duplicate'],
        [5000, 'backend_unhealthy', 'firing', 'duplicate'],
      ],
    ],
    [
      'a change after the interval is sent',
      [
        [0, 'backend_unhealthy', 'firing', 'send'],
        [1000, 'backend_unhealthy', 'resolved', 'send'],
        [2500, 'backend_unhealthy', 'firing', 'send'],
      ],
    ],
    [
      'a change inside the interval is held; flapping back cancels it',
      [
        [0, 'backend_unhealthy', 'firing', 'send'],
        [100, 'backend_unhealthy', 'resolved', 'hold'],
        [200, 'backend_unhealthy', 'resolved', 'duplicate'],
        [300, 'backend_unhealthy', 'firing', 'min_interval'],
        [400, 'backend_unhealthy', 'firing', 'duplicate'],
      ],
    ],
    [
      'events only know the interval',
      [
        [0, 'reload_failed', 'firing', 'send'],
        [999, 'reload_failed', 'firing', 'min_interval'],
        [1000, 'reload_failed', 'firing', 'send'],
      ],
    ],
    [
      'keys are independent',
      [
        [0, 'backend_unhealthy', 'firing', 'send'],
        [1, 'pool_unavailable', 'firing', 'send'],
      ],
    ],
  ])('%s', (_name, steps) => {
    const gate = new AlertGate(1000);
    expect(steps.map(([at, kind, status]) => outcome(gate.offer(sig(kind, status), at)))).toEqual(steps.map((s) => s[3]));
  });

  test('a held change is released once the interval is over, with its latest values', () => {
    const gate = new AlertGate(1000);
    gate.offer(sig('backend_unhealthy', 'firing'), 0);
    expect(gate.offer(sig('backend_unhealthy', 'resolved'), 300)).toEqual({ action: 'hold', until: 1000 });
    const later = { ...sig('backend_unhealthy', 'resolved'), message: 'latest' };
    gate.offer(later, 400);
    expect(gate.heldCount()).toBe(1);
    expect(gate.due(999)).toEqual([]);
    expect(gate.due(1000)).toEqual([later]);
    expect(gate.heldCount()).toBe(0);
    // the release counts as a notification: the next change waits again
    expect(outcome(gate.offer(sig('backend_unhealthy', 'firing'), 1500))).toBe('hold');
  });

  test('interval 0: every change is sent at once', () => {
    const gate = new AlertGate(0);
    const out = ['firing', 'resolved', 'firing'].map((s) => outcome(gate.offer(sig('backend_unhealthy', s as AlertStatus), 5)));
    expect(out).toEqual(['send', 'send', 'send']);
  });
});
