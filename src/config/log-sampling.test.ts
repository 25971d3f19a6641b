import { describe, expect, test } from 'bun:test';
import { formatIssue, loadConfigText } from './load.ts';

const L = 'listen:\n  tls: { cert: c.pem, key: k.pem }\n';

function load(text: string) {
  return loadConfigText(`${L}${text}`, 'spooky.yaml', '/srv');
}

function ok(text: string) {
  const r = load(text);
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}

function errors(text: string): string[] {
  const r = load(text);
  if (r.ok) throw new Error('expected errors');
  return r.errors.map(formatIssue);
}

const POOL = 'upstream:\n  api:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n';

describe('log sampling config', () => {
  test('defaults: no separate access file, no sampling', () => {
    const c = ok(POOL);
    expect(c.log.access_file).toBeUndefined();
    expect(c.log.access_sampling).toBeUndefined();
    expect(c.pools[0]?.routes[0]?.body_sampling).toBeUndefined();
  });

  test('access_file is resolved against the config folder; access_sampling gets its defaults', () => {
    const c = ok(`log:\n  access_file: logs/access.log\n  access_sampling: { ratio: 0.25 }\n${POOL}`);
    expect(c.log.access_file).toBe('/srv/logs/access.log');
    expect(c.log.access_sampling).toEqual({ ratio: 0.25, always_log_errors: true });
    const d = ok(`log:\n  access_sampling: { always_log_errors: false }\n${POOL}`);
    expect(d.log.access_sampling).toEqual({ ratio: 1, always_log_errors: false });
  });

  test('body_sampling on a route: defaults, directions, redaction names lower-cased', () => {
    const c = ok(`upstream:
  api:
    route:
      - { path_prefix: /a, body_sampling: { ratio: 0.5 } }
      - { path_prefix: /b, body_sampling: { ratio: 1, directions: [response], max_bytes: 16, redact_headers: [X-Api-Key, x-api-key] } }
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`);
    const [a, b] = c.pools[0]?.routes ?? [];
    expect(a?.body_sampling).toEqual({
      ratio: 0.5,
      request: true,
      response: true,
      max_bytes: 4096,
      redact_headers: ['authorization', 'cookie', 'set-cookie', 'proxy-authorization'],
    });
    expect(b?.body_sampling).toEqual({ ratio: 1, request: false, response: true, max_bytes: 16, redact_headers: ['x-api-key'] });
  });

  test.each([
    ['log:\n  access_sampling: { ratio: 1.5 }\n', 'log.access_sampling.ratio'],
    ['log:\n  access_sampling: { ratio: -0.1 }\n', 'log.access_sampling.ratio'],
    ['log:\n  access_sampling: { rate: 0.1 }\n', 'log.access_sampling.rate'],
    ['log:\n  access_file: ""\n', 'log.access_file'],
  ])('bad log value %p is an error at %s', (text, path) => {
    const errs = errors(`${text}${POOL}`);
    expect(errs.some((e) => e.includes(`(at ${path})`))).toBe(true);
  });

  test.each([
    ['{ ratio: 2 }', 'ratio'],
    ['{ max_bytes: 10 }', ')'],
    ['{ ratio: 1, max_bytes: -1 }', 'max_bytes'],
    ['{ ratio: 1, directions: [] }', 'directions'],
    ['{ ratio: 1, directions: [sideways] }', 'directions[0]'],
    ['{ ratio: 1, redact_headers: ["bad header"] }', 'redact_headers[0]'],
  ])('bad body_sampling %s is an error at %s', (value, field) => {
    const errs = errors(
      `upstream:\n  api:\n    route: { path_prefix: /, body_sampling: ${value} }\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`,
    );
    // A missing key is reported at the map itself (`field` is then just the closing parenthesis).
    expect(errs.some((e) => e.includes(`(at upstream.api.route.body_sampling${field === ')' ? '' : '.'}${field}`))).toBe(true);
  });
});
