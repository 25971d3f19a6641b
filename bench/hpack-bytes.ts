/**
 * Request header block sizes of the HTTP/2 client for the header set the proxy typically forwards: the first
 * request on a connection and the repeated ones, with the connection's HPACK encoder (dynamic table) and with
 * static-table-only encoding (literals without indexing, what the client sent before the dynamic table).
 *
 * Run: `bun bench/hpack-bytes.ts`
 */
import { ByteWriter } from '../src/upstream/h2/bytes.ts';
import { encodeField, HpackDecoder, HpackEncoder } from '../src/upstream/h2/hpack.ts';
import { requestFields } from '../src/upstream/h2/request-head.ts';
import type { UpstreamRequest } from '../src/upstream/transport.ts';
import { typicalProxyHeaders } from '../test/support/typical-headers.ts';

/** Request `i` with the typical proxy header set and fresh per-request ids. */
function request(i: number): UpstreamRequest {
  return {
    method: 'GET',
    target: `/api/v1/items/${i % 10}`,
    headers: [['host', 'api.example.com'], ...typicalProxyHeaders(i, 'api.example.com')],
    body: null,
    signal: new AbortController().signal,
  };
}

const fields: string[] = [];
const enc = new HpackEncoder();
const dec = new HpackDecoder();
const w = new ByteWriter();
const rows: [number, number, number][] = [];
for (let i = 0; i < 1000; i++) {
  const bad = requestFields(request(i), 'http', 'api.example.com:80', fields);
  if (bad) throw new Error(bad);
  w.reset();
  for (let f = 0; f < fields.length; f += 2) encodeField(w, fields[f] as string, fields[f + 1] as string);
  const staticOnly = w.length;
  w.reset();
  enc.beginBlock(w);
  for (let f = 0; f < fields.length; f += 2) enc.field(w, fields[f] as string, fields[f + 1] as string);
  enc.endBlock(w);
  dec.decode(w.buf, 0, w.length); // the peer's view stays valid
  rows.push([i, staticOnly, w.length]);
}
const avg = (k: 1 | 2, from: number) => rows.slice(from).reduce((a, r) => a + r[k], 0) / (rows.length - from);
console.log(`${fields.length / 2} fields (4 pseudo-headers + ${fields.length / 2 - 4} headers)`);
console.log('| request | static table only | with the dynamic table |');
console.log('| --- | --- | --- |');
for (const i of [0, 1, 2, 10, 999]) console.log(`| #${i + 1} | ${rows[i]?.[1]} B | ${rows[i]?.[2]} B |`);
console.log(`| average of #2..#1000 | ${avg(1, 1).toFixed(1)} B | ${avg(2, 1).toFixed(1)} B |`);
console.log(`dynamic table: ${enc.tableSize} bytes in ${enc.entries().length} entries`);
