import { describe, expect, test } from 'bun:test';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { formatTraceparent, IdSource, PassThroughTracing, parseTraceparent, withTraceHeaders } from './trace-context.ts';

const TID = '0af7651916cd43dd8448eb211c80319c';
const SID = 'b7ad6b7169203331';

describe('parseTraceparent', () => {
  test.each([
    ['sampled', `00-${TID}-${SID}-01`, { traceId: TID, spanId: SID, flags: 1 }],
    ['not sampled', `00-${TID}-${SID}-00`, { traceId: TID, spanId: SID, flags: 0 }],
    ['unknown flag bits kept', `00-${TID}-${SID}-09`, { traceId: TID, spanId: SID, flags: 9 }],
    ['future version with more fields', `01-${TID}-${SID}-01-what-ever`, { traceId: TID, spanId: SID, flags: 1 }],
    ['future version, exactly 55 chars', `cc-${TID}-${SID}-01`, { traceId: TID, spanId: SID, flags: 1 }],
    ['missing', null, undefined],
    ['empty', '', undefined],
    ['version ff', `ff-${TID}-${SID}-01`, undefined],
    ['version 00 with extra fields', `00-${TID}-${SID}-01-x`, undefined],
    ['future version with junk right after flags', `01-${TID}-${SID}-01x`, undefined],
    ['upper-case hex', `00-${TID.toUpperCase()}-${SID}-01`, undefined],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SID}-01`, undefined],
    ['all-zero span id', `00-${TID}-${'0'.repeat(16)}-01`, undefined],
    ['short trace id', `00-${TID.slice(1)}-${SID}-01`, undefined],
    ['wrong separators', `00_${TID}_${SID}_01`, undefined],
    ['non-hex flags', `00-${TID}-${SID}-0g`, undefined],
    ['non-hex version', `0x-${TID}-${SID}-01`, undefined],
  ])('%s', (_name, value, expected) => {
    expect(parseTraceparent(value)).toEqual(expected);
  });

  test('agrees with the OpenTelemetry W3C propagator on which values are valid', () => {
    const propagator = new W3CTraceContextPropagator();
    const values = [
      `00-${TID}-${SID}-01`,
      `00-${TID}-${SID}-00`,
      `ff-${TID}-${SID}-01`,
      `00-${'0'.repeat(32)}-${SID}-01`,
      `00-${TID}-${'0'.repeat(16)}-01`,
      `00-${TID}-${SID}-01-x`,
      `01-${TID}-${SID}-01-x`,
      `00-${TID.toUpperCase()}-${SID}-01`,
      'garbage',
    ];
    for (const v of values) {
      const ctx = propagator.extract(ROOT_CONTEXT, { traceparent: v }, { get: (c, k) => c[k as 'traceparent'], keys: (c) => Object.keys(c) });
      const theirs = trace.getSpanContext(ctx);
      const ours = parseTraceparent(v);
      expect({ v, valid: ours !== undefined }).toEqual({ v, valid: theirs !== undefined });
      if (ours && theirs) expect([ours.traceId, ours.spanId]).toEqual([theirs.traceId, theirs.spanId]);
    }
  });
});

test('formatTraceparent writes version 00 and round-trips', () => {
  expect(formatTraceparent(TID, SID, true)).toBe(`00-${TID}-${SID}-01`);
  expect(formatTraceparent(TID, SID, false)).toBe(`00-${TID}-${SID}-00`);
  expect(parseTraceparent(formatTraceparent(TID, SID, false))).toEqual({ traceId: TID, spanId: SID, flags: 0 });
});

describe('IdSource', () => {
  test('hex ids from the injected bytes, refilled when the pool runs out', () => {
    let fills = 0;
    const ids = new IdSource((buf) => {
      fills++;
      for (let i = 0; i < buf.length; i++) buf[i] = (i + fills) & 0xff;
    });
    expect(ids.traceId()).toBe('0102030405060708090a0b0c0d0e0f10');
    expect(ids.spanId()).toBe('1112131415161718');
    for (let i = 0; i < 300; i++) expect(ids.traceId()).toMatch(/^[0-9a-f]{32}$/);
    expect(fills).toBe(2);
  });

  test('an all-zero draw still gives a valid id', () => {
    const ids = new IdSource((buf) => buf.fill(0));
    expect(ids.traceId()).toBe(`${'0'.repeat(31)}1`);
    expect(ids.spanId()).toBe(`${'0'.repeat(15)}1`);
    expect(ids.traceAndSpanIds()).toEqual([`${'0'.repeat(31)}1`, `${'0'.repeat(15)}1`]);
  });

  test('trace and span id from one draw: the next 24 bytes of the pool', () => {
    const ids = new IdSource((buf) => {
      for (let i = 0; i < buf.length; i++) buf[i] = i & 0xff;
    });
    expect(ids.traceAndSpanIds()).toEqual(['000102030405060708090a0b0c0d0e0f', '1011121314151617']);
    expect(ids.traceId()).toBe('18191a1b1c1d1e1f2021222324252627');
  });

  test('the default source gives distinct ids', () => {
    const ids = new IdSource();
    const seen = new Set(Array.from({ length: 1000 }, () => ids.traceId()));
    expect(seen.size).toBe(1000);
  });
});

describe('PassThroughTracing (tracing off)', () => {
  const attempt = { pool: 'p', backend: 'b', route: 'p#0', attempt: 1, url: new URL('http://127.0.0.1:1'), method: 'GET' };
  const base: [string, string][] = [
    ['host', 'example.test'],
    ['accept', '*/*'],
  ];
  const counting = () => new IdSource((buf) => buf.fill(0xab));

  test('a valid traceparent goes to the backend unchanged and its trace id is logged', () => {
    const tp = `00-${TID}-${SID}-01`;
    const t = new PassThroughTracing(counting()).start(new Headers({ traceparent: tp, tracestate: 'k=v' }));
    expect(t.traceId).toBe(TID);
    const headers: [string, string][] = [...base, ['traceparent', tp], ['tracestate', 'k=v']];
    expect(t.attemptStart(headers, attempt)).toBe(headers);
  });

  test.each([
    ['no traceparent', {}],
    ['an invalid traceparent', { traceparent: `00-${TID}-${SID}-1` }],
    ['a tracestate without traceparent', { tracestate: 'k=v' }],
  ])('%s: a fresh unsampled traceparent replaces whatever came', (_name, incoming: Record<string, string>) => {
    const t = new PassThroughTracing(counting()).start(new Headers(incoming));
    expect(t.traceId).toBe('ab'.repeat(16));
    const sent = t.attemptStart([...base, ...Object.entries(incoming)], attempt);
    expect(sent).toEqual([...base, ['traceparent', `00-${'ab'.repeat(16)}-${'ab'.repeat(8)}-00`]]);
  });

  test('every attempt of a request carries the same traceparent', () => {
    const t = new PassThroughTracing().start(new Headers());
    const mine: [string, string][] = [...base];
    const first = [...t.attemptStart(mine, attempt)];
    const second = t.attemptStart(mine, { ...attempt, attempt: 2 });
    const third = t.attemptStart([...base], { ...attempt, attempt: 3 });
    expect(second).toEqual(first);
    expect(third).toEqual(first);
    expect(parseTraceparent(first.at(-1)?.[1])?.traceId).toBe(t.traceId);
  });
});

test('withTraceHeaders drops traceparent and tracestate and appends the new ones', () => {
  expect(
    withTraceHeaders(
      [
        ['traceparent', 'x'],
        ['a', '1'],
        ['tracestate', 'y'],
      ],
      [['traceparent', 'z']],
    ),
  ).toEqual([
    ['a', '1'],
    ['traceparent', 'z'],
  ]);
});
