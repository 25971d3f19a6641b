import { describe, expect, test } from 'bun:test';
import type { BodySamplingConfig } from '../config/types.ts';
import { scriptedRandom } from '../lib/random.ts';
import type { BodySampleRecord } from '../observability/body-sample.ts';
import { BodySampler } from './body-sampling.ts';

const enc = new TextEncoder();
const CFG: BodySamplingConfig = { ratio: 1, request: true, response: true, max_bytes: 4, redact_headers: ['authorization', 'set-cookie'] };

function stream(text: string): ReadableStream<Uint8Array> {
  return new Response(text).body as ReadableStream<Uint8Array>;
}

function setup(random = scriptedRandom([0]), enabled = () => true) {
  const records: BodySampleRecord[] = [];
  const sampler = new BodySampler({ write: (r) => records.push(r) }, random, enabled);
  return { records, sampler };
}

const req = (body: ReadableStream<Uint8Array> | null) => ({
  requestId: 'r-1',
  route: 'api#0',
  headers: new Headers({ authorization: 'Bearer t', 'content-type': 'text/plain' }),
  body,
});

describe('body sampling', () => {
  test.each([
    [1, 0.999, true],
    [0.25, 0.24, true],
    [0.25, 0.25, false],
    [0, 0, false],
  ])('ratio %p with draw %p -> sampled %p', (ratio, draw, sampled) => {
    const { sampler } = setup(scriptedRandom([draw]));
    expect(sampler.begin({ ...CFG, ratio }, req(null)) !== undefined).toBe(sampled);
  });

  test('not sampled while logging is silent', () => {
    const { sampler } = setup(scriptedRandom([0]), () => false);
    expect(sampler.begin(CFG, req(null))).toBeUndefined();
  });

  test('request and response samples: capped, redacted, written when each body is over', async () => {
    const { records, sampler } = setup();
    const sample = sampler.begin(CFG, req(stream('hello world')));
    if (!sample?.requestBody) throw new Error('expected a sampled request body');
    expect(records).toHaveLength(0);
    expect(await new Response(sample.requestBody).text()).toBe('hello world');
    expect(records).toEqual([
      {
        request_id: 'r-1',
        route: 'api#0',
        direction: 'request',
        headers: { authorization: '[redacted]', 'content-type': 'text/plain' },
        body: 'hell',
        body_encoding: 'utf8',
        bytes_seen: 11,
        truncated: true,
        complete: true,
      },
    ]);
    const body = sample.response(201, new Headers({ 'set-cookie': 's=1', 'x-a': 'b' }), stream('ok'));
    expect(records).toHaveLength(1);
    expect(await new Response(body).text()).toBe('ok');
    expect(records[1]).toMatchObject({
      direction: 'response',
      status: 201,
      headers: { 'set-cookie': '[redacted]', 'x-a': 'b' },
      body: 'ok',
      bytes_seen: 2,
      truncated: false,
    });
  });

  test('no request body: the request record is written at once; a small response held in memory too', () => {
    const { records, sampler } = setup();
    const sample = sampler.begin(CFG, req(null));
    expect(sample?.requestBody).toBeNull();
    expect(records[0]).toMatchObject({ direction: 'request', body: '', bytes_seen: 0, complete: true });
    const bytes = enc.encode('{"a":1}');
    expect(sample?.response(200, new Headers(), bytes)).toBe(bytes);
    expect(sample?.response(204, new Headers(), null)).toBeNull();
    expect(records.slice(1).map((r) => [r.status, r.body, r.truncated])).toEqual([
      [200, '{"a"', true],
      [204, '', false],
    ]);
  });

  test('directions: only the configured bodies are watched', () => {
    const { records, sampler } = setup();
    const original = stream('abc');
    const sample = sampler.begin({ ...CFG, request: false }, req(original));
    expect(sample?.requestBody).toBe(original);
    const resBody = stream('x');
    expect(sample?.response(200, new Headers(), resBody)).not.toBe(resBody);
    const other = sampler.begin({ ...CFG, response: false }, req(null));
    const resBody2 = stream('y');
    expect(other?.response(200, new Headers(), resBody2)).toBe(resBody2);
    expect(records.map((r) => r.direction)).toEqual(['request']);
  });

  test('a cancelled response is logged as incomplete with the bytes seen', async () => {
    const { records, sampler } = setup();
    const sample = sampler.begin(CFG, req(null));
    const body = sample?.response(200, new Headers(), stream('abcdef')) as ReadableStream<Uint8Array>;
    const reader = body.getReader();
    await reader.read();
    await reader.cancel();
    expect(records[1]).toMatchObject({ direction: 'response', complete: false, bytes_seen: 6, body: 'abcd', truncated: true });
  });

  test('close() writes the request record of a body never read to its end, once', async () => {
    const { records, sampler } = setup();
    const sample = sampler.begin(CFG, req(stream('never read')));
    sample?.close();
    expect(records).toEqual([expect.objectContaining({ direction: 'request', bytes_seen: 0, body: '', complete: false })]);
    // Read anyway afterwards: the body still flows, no second record.
    expect(await new Response(sample?.requestBody).text()).toBe('never read');
    sample?.close();
    expect(records).toHaveLength(1);
  });

  test('close() after the request body ended adds nothing', async () => {
    const { records, sampler } = setup();
    const sample = sampler.begin(CFG, req(stream('abc')));
    await new Response(sample?.requestBody).text();
    sample?.close();
    expect(records.map((r) => [r.direction, r.complete])).toEqual([['request', true]]);
  });

  test('a log output that throws loses the sample, not the body', async () => {
    const sampler = new BodySampler(
      {
        write() {
          throw new Error('disk gone');
        },
      },
      scriptedRandom([0]),
    );
    const sample = sampler.begin(CFG, req(stream('data')));
    expect(await new Response(sample?.requestBody).text()).toBe('data');
  });
});
