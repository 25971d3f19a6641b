import { expect, test } from 'bun:test';
import { type AuditRecord, AuditTrail } from './audit.ts';

test('the audit trail keeps the last records, oldest first', () => {
  const trail = new AuditTrail(3);
  const rec = (generation: number): AuditRecord => ({ time: '', action: 'reload', trigger: 'signal', result: 'ok', generation });
  for (let g = 1; g <= 5; g++) trail.add(rec(g));
  expect(trail.list().map((r) => r.generation)).toEqual([3, 4, 5]);
});
