import { expect, test } from 'bun:test';
import { formatAccessJson, formatAccessText, type RequestRecord } from './access-log.ts';

const TIME = '2026-11-25T21:37:45.349Z';
const REC: RequestRecord = {
  request_id: 'abc-1',
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  client: '127.0.0.1',
  protocol: 'h3',
  method: 'GET',
  host: 'example.test',
  path: '/x',
  status: 200,
  bytes_in: 0,
  bytes_out: 5,
  duration_ms: 1.5,
  attempts: 1,
  pool: 'p',
  backend: 'a',
};

test('JSON lines carry trace_id right after request_id', () => {
  const line = formatAccessJson(REC, TIME);
  expect(JSON.parse(line)).toMatchObject({ request_id: 'abc-1', trace_id: REC.trace_id });
  expect(line).toContain('"request_id":"abc-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",');
});

test('text lines carry the trace id after the request id (`-` when a record has none)', () => {
  expect(formatAccessText(REC, TIME)).toBe(`${TIME} 127.0.0.1 h3 "GET example.test/x" 200 0 5 1.5ms p/a 1 abc-1 4bf92f3577b34da6a3ce929d0e0e4736\n`);
  const { trace_id: _t, ...noTrace } = REC;
  expect(formatAccessText({ ...noTrace, error: 'no_route' }, TIME)).toEndWith(' abc-1 - no_route\n');
});

test('text lines escape DEL and C1 controls in the request target (a terminal would act on a raw CSI)', () => {
  const line = formatAccessText({ ...REC, host: 'a\u007fb\u009bc', path: '/x\u0085' }, TIME);
  expect(line).toContain('"GET a\\u007fb\\u009bc/x\\u0085"');
  expect(/[\u007f-\u009f]/.test(line)).toBe(false);
});
