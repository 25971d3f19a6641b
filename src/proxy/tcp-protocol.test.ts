import { describe, expect, test } from 'bun:test';
import { RequestFields } from '../lib/request-fields.ts';
import { tcpProtocol } from './handler.ts';

describe('tcpProtocol: HTTP/1.1 or HTTP/2 for a request that came over TCP', () => {
  const cases: [string, [string, string][], 'h1.1' | 'h2'][] = [
    ['host first: HTTP/1.1', [['host', 'a.test'], ['accept', '*/*']], 'h1.1'],
    ['host after the others (Bun places :authority so): HTTP/2', [['accept', '*/*'], ['host', 'a.test']], 'h2'],
    ['a header only HTTP/1.1 has', [['accept', '*/*'], ['connection', 'keep-alive'], ['host', 'a.test']], 'h1.1'],
    ['a field named like a number does not hide host being first', [['host', 'a.test'], ['7', 'x'], ['accept', '*/*']], 'h1.1'],
    ['only number-named fields before host, HTTP/2 order', [['7', 'x'], ['accept', '*/*'], ['host', 'a.test']], 'h2'],
    ['a leading zero is not an index: order kept', [['host', 'a.test'], ['07', 'x']], 'h1.1'],
  ];
  for (const [name, fields, want] of cases) {
    test(name, () => {
      const headers = new Headers(fields);
      expect(tcpProtocol(headers)).toBe(want);
      expect(tcpProtocol(RequestFields.of(headers))).toBe(want);
    });
  }
});
