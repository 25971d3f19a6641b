import { describe, expect, test } from 'bun:test';
import { formatIssue, loadConfigText } from './load.ts';
import { parseLabelName, parseLabelSource } from './parse.ts';

const L = 'listen:\n  tls: { cert: c.pem, key: k.pem }\n';

function load(text: string) {
  return loadConfigText(`${L}${text}`, 'spooky.yaml', '/srv');
}

describe('custom metrics config', () => {
  test('route tags and pool metrics resolve', () => {
    const r = load(`upstream:
  api:
    route:
      - { path_prefix: /v1/, tags: { api_version: v1, n: 2 } }
      - { path_prefix: /v2/ }
    metrics:
      labels:
        - { name: tenant, from: "request_header:X-Tenant" }
        - { name: api_version, from: "route_tag:api_version" }
        - { name: cache, from: "response_header:x-cache" }
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`);
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    const pool = r.config.pools[0];
    expect(pool?.routes[0]?.tags).toEqual({ api_version: 'v1', n: '2' });
    expect(pool?.routes[1]?.tags).toBeUndefined();
    expect(pool?.metrics).toEqual({
      labels: [
        { name: 'tenant', from: { kind: 'request_header', name: 'x-tenant' } },
        { name: 'api_version', from: { kind: 'route_tag', name: 'api_version' } },
        { name: 'cache', from: { kind: 'response_header', name: 'x-cache' } },
      ],
      max_values: 100,
    });
    expect(r.warnings).toEqual([]);
  });

  test('a pool without metrics has none', () => {
    const r = load('upstream:\n  api:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n');
    expect(r.ok && r.config.pools[0]?.metrics).toBeUndefined();
  });

  test.each([
    ['bad label name', '{ name: "1x", from: "request_header:x" }', 'not a valid metric label name'],
    ['reserved label name', '{ name: pool, from: "request_header:x" }', 'already a label'],
    ['double underscore', '{ name: __x, from: "request_header:x" }', 'reserved by Prometheus'],
    ['unknown source', '{ name: t, from: "cookie:x" }', 'unknown label source'],
    ['bad header name', '{ name: t, from: "request_header:a b" }', 'needs a header name'],
  ])('%s is an error', (_name, label, message) => {
    const r = load(`upstream:\n  api:\n    metrics: { labels: [${label}] }\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.message).join('\n')).toContain(message);
  });

  test('duplicate label names, too many labels and max_values out of range are errors', () => {
    const dup = load(
      'upstream:\n  api:\n    metrics: { labels: [{ name: t, from: "request_header:a" }, { name: t, from: "request_header:b" }] }\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n',
    );
    expect(!dup.ok && dup.errors.some((e) => e.message.includes('duplicate label name "t"') && e.path.endsWith('labels[1].name'))).toBe(true);
    const six = Array.from({ length: 6 }, (_, i) => `{ name: l${i}, from: "request_header:h${i}" }`).join(', ');
    expect(load(`upstream:\n  api:\n    metrics: { labels: [${six}] }\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`).ok).toBe(false);
    expect(
      load(
        'upstream:\n  api:\n    metrics: { labels: [{ name: t, from: "request_header:a" }], max_values: 0 }\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n',
      ).ok,
    ).toBe(false);
  });

  test('a route tag no route sets is a warning', () => {
    const r = load(
      'upstream:\n  api:\n    route: { path_prefix: /a }\n    metrics: { labels: [{ name: v, from: "route_tag:version" }] }\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n',
    );
    expect(r.ok).toBe(true);
    expect(r.warnings.map((w) => `${w.line}:${w.column} ${w.message}`)).toEqual([
      expect.stringMatching(/^6:\d+ no route of pool `api` has the tag `version`/),
    ]);
  });

  test('parsers', () => {
    expect(parseLabelName('tenant_id').ok).toBe(true);
    expect(parseLabelName('le').ok).toBe(false);
    expect(parseLabelSource('response_header:X-Cache')).toEqual({ ok: true, value: { kind: 'response_header', name: 'x-cache' } });
    expect(parseLabelSource('route_tag:').ok).toBe(false);
  });
});
