import { describe, expect, test } from 'bun:test';
import { jsonLineToText } from './logger.ts';
import { BodySampleLog, type BodySampleRecord, encodeBody, REDACTED, redactHeaders } from './body-sample.ts';

const enc = new TextEncoder();

describe('body sample records', () => {
  test('redaction is case-insensitive; repeated fields are joined; other values kept', () => {
    const h = new Headers([
      ['Authorization', 'Bearer secret'],
      ['Cookie', 'a=1'],
      ['X-Trace', 'abc'],
      ['Accept', 'text/html'],
      ['Accept', 'application/json'],
    ]);
    const out = redactHeaders(h, ['authorization', 'cookie', 'set-cookie', 'proxy-authorization']);
    expect(out).toEqual({ authorization: REDACTED, cookie: REDACTED, 'x-trace': 'abc', accept: 'text/html, application/json' });
    const pairs = redactHeaders(
      [
        ['Set-Cookie', 'a=1'],
        ['set-cookie', 'b=2'],
      ],
      ['set-cookie'],
    );
    expect(pairs).toEqual({ 'set-cookie': REDACTED });
    expect(JSON.stringify(out)).not.toContain('secret');
  });

  test.each([
    ['plain text', enc.encode('hello'), false, 'hello', 'utf8'],
    ['empty', new Uint8Array(0), false, '', 'utf8'],
    ['multi-byte text', enc.encode('grüße 👻'), false, 'grüße 👻', 'utf8'],
    // "é" is 2 bytes: the cap cut it in half; the half character is dropped, the text stays text
    ['text cut inside a character', enc.encode('aé').subarray(0, 2), true, 'a', 'utf8'],
    // the same bytes in a body that really ended there are invalid UTF-8
    ['invalid UTF-8 at the real end', enc.encode('aé').subarray(0, 2), false, 'YcM=', 'base64'],
    ['binary', new Uint8Array([0xff, 0x00, 0xfe, 0x80]), false, '/wD+gA==', 'base64'],
    ['binary even when cut', new Uint8Array([0xff, 0x00, 0xfe, 0x80]), true, '/wD+gA==', 'base64'],
  ] as const)('%s', (_name, bytes, truncated, body, encoding) => {
    expect(encodeBody(bytes, truncated)).toEqual({ body, body_encoding: encoding });
  });

  const rec: BodySampleRecord = {
    request_id: 'abc-1',
    route: 'api#0',
    direction: 'response',
    status: 200,
    headers: { 'content-type': 'text/plain', 'set-cookie': REDACTED },
    body: 'he said "hi"\n',
    body_encoding: 'utf8',
    bytes_seen: 20,
    truncated: true,
    complete: true,
  };

  test('JSON lines in the shape of the other records; counted by direction', () => {
    const lines: string[] = [];
    const log = new BodySampleLog({ write: (l: string) => lines.push(l) }, undefined, () => 1_700_000_000_000);
    log.write(rec);
    log.write({ ...rec, direction: 'request', status: undefined });
    expect(lines[0]?.endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0] ?? '')).toEqual({ level: 'info', time: '2023-11-14T22:13:20.000Z', event: 'body_sample', ...rec });
    expect(Object.keys(JSON.parse(lines[0] ?? '')).slice(0, 3)).toEqual(['level', 'time', 'event']);
    expect(log.written).toEqual({ request: 1, response: 1 });
  });

  test('text format: one line with key=value fields', () => {
    const lines: string[] = [];
    const log = new BodySampleLog({ write: (l: string) => lines.push(l) }, jsonLineToText, () => 1_700_000_000_000);
    log.write(rec);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toStartWith('2023-11-14T22:13:20.000Z INFO body_sample request_id=abc-1 route=api#0 direction=response status=200');
    expect(lines[0]).toContain('truncated=true');
    expect(lines[0]?.split('\n')).toHaveLength(2);
  });
});
