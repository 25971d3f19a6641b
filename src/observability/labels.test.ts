import { describe, expect, test } from 'bun:test';
import type { PoolConfig } from '../config/types.ts';
import { addResponseLabels, MAX_LABEL_VALUE_LENGTH, requestLabels } from './labels.ts';

/** A pool whose custom metrics take `tenant` from the request header `x-tenant` and `cache` from the response's `x-cache`. */
const pool = {
  routes: [],
  metrics: {
    labels: [
      { name: 'tenant', from: { kind: 'request_header', name: 'x-tenant' } },
      { name: 'cache', from: { kind: 'response_header', name: 'x-cache' } },
    ],
  },
} as unknown as PoolConfig;

/** A string of `text`'s UTF-8 bytes, one character per byte: how Bun hands over a header value. */
const onTheWire = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

describe('custom label values', () => {
  test('header values sent in UTF-8 are shown as text, from requests and responses', () => {
    const labels = requestLabels(pool, 'p#0', new Headers({ 'x-tenant': onTheWire('Zürich') }));
    if (!labels) throw new Error('no labels');
    addResponseLabels(pool, [['x-cache', onTheWire('трафик')]], labels);
    expect(labels).toEqual({ tenant: 'Zürich', cache: 'трафик' });
  });

  test('a value cut to the length limit never keeps half of a character outside the BMP', () => {
    const long = `${'a'.repeat(MAX_LABEL_VALUE_LENGTH - 1)}😀tail`;
    const labels = requestLabels(pool, 'p#0', new Headers({ 'x-tenant': onTheWire(long) }));
    expect(labels?.tenant).toBe('a'.repeat(MAX_LABEL_VALUE_LENGTH - 1));
    const ascii = requestLabels(pool, 'p#0', new Headers({ 'x-tenant': 'b'.repeat(100) }));
    expect(ascii?.tenant).toBe('b'.repeat(MAX_LABEL_VALUE_LENGTH));
  });
});
