import { describe, expect, test } from 'bun:test';
import { type ChangeSet, type ConfigChanges, describeRoute, diffConfigs, isUnchanged } from './diff.ts';
import { formatIssue, loadConfigText } from './load.ts';
import type { Config } from './types.ts';

function config(yaml: string): Config {
  const r = loadConfigText(yaml, 'spooky.yaml', '/srv/spooky');
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}

const LISTEN = 'listen: { address: 127.0.0.1, port: 8443, tls: { cert: c.pem, key: k.pem } }\n';
const BASE = `${LISTEN}upstream:
  api:
    route: { path_prefix: /api }
    backends:
      - { id: a, address: "http://10.0.0.1:80" }
      - { id: b, address: "http://10.0.0.2:80" }
  web:
    backends: [{ id: w, address: "http://10.0.0.3:80" }]
`;

/** The expected changes; unset parts are empty. */
interface Want {
  routes?: Partial<ChangeSet>;
  pools?: Partial<ChangeSet>;
  backends?: Partial<ChangeSet>;
  listeners?: Partial<ChangeSet>;
  settings?: string[];
}

const CASES: Array<{ name: string; after: string; want: Want }> = [
  { name: 'identical files', after: BASE, want: {} },
  {
    name: 'a weight changed',
    after: BASE.replace('address: "http://10.0.0.2:80" }', 'address: "http://10.0.0.2:80", weight: 300 }'),
    want: { pools: { modified: [{ id: 'api', fields: ['backends'] }] }, backends: { modified: [{ id: 'api/b', fields: ['weight'] }] } },
  },
  {
    name: 'a backend added and one removed',
    after: BASE.replace('- { id: b, address: "http://10.0.0.2:80" }', '- { id: c, address: "http://10.0.0.9:80" }'),
    want: { pools: { modified: [{ id: 'api', fields: ['backends'] }] }, backends: { added: ['api/c'], removed: ['api/b'] } },
  },
  {
    name: 'a backend moved to another address',
    after: BASE.replace('http://10.0.0.1:80', 'h2c://10.0.0.1:81'),
    want: { pools: { modified: [{ id: 'api', fields: ['backends'] }] }, backends: { modified: [{ id: 'api/a', fields: ['address', 'protocol'] }] } },
  },
  {
    name: 'a health check added to a backend',
    after: BASE.replace('{ id: w, address: "http://10.0.0.3:80" }', '{ id: w, address: "http://10.0.0.3:80", health_check: { path: /hz } }'),
    want: { pools: { modified: [{ id: 'web', fields: ['backends'] }] }, backends: { modified: [{ id: 'web/w', fields: ['health_check'] }] } },
  },
  {
    name: 'a route condition changed: one route removed, one added',
    after: BASE.replace('path_prefix: /api', 'path_prefix: /v2'),
    want: { routes: { added: ['path_prefix=/v2'], removed: ['path_prefix=/api'] }, pools: { modified: [{ id: 'api', fields: ['routes'] }] } },
  },
  {
    name: 'the same route now leads to another pool',
    after: `${LISTEN}upstream:
  api:
    route: { path_prefix: /old-api }
    backends:
      - { id: a, address: "http://10.0.0.1:80" }
      - { id: b, address: "http://10.0.0.2:80" }
  web:
    route: [{ path_prefix: /api }, { path_prefix: / }]
    backends: [{ id: w, address: "http://10.0.0.3:80" }]
`,
    want: {
      routes: { added: ['path_prefix=/old-api'], modified: [{ id: 'path_prefix=/api', fields: ['pool: api -> web'] }] },
      pools: { modified: [{ id: 'api', fields: ['routes'] }, { id: 'web', fields: ['routes'] }] },
    },
  },
  {
    name: 'a pool added',
    after: `${BASE}  img:\n    route: { host: img.example.com }\n    backends: [{ id: i, address: "http://10.0.0.4:80" }]\n`,
    want: { routes: { added: ['host=img.example.com'] }, pools: { added: ['img'] }, backends: { added: ['img/i'] } },
  },
  {
    name: 'a pool removed',
    after: `${LISTEN}upstream:\n  web:\n    backends: [{ id: w, address: "http://10.0.0.3:80" }]\n`,
    want: { routes: { removed: ['path_prefix=/api'] }, pools: { removed: ['api'] }, backends: { removed: ['api/a', 'api/b'] } },
  },
  {
    name: 'the balancing policy changed',
    after: BASE.replace('route: { path_prefix: /api }', 'route: { path_prefix: /api }\n    load_balancing: { type: least-connections }'),
    want: { pools: { modified: [{ id: 'api', fields: ['load_balancing'] }] } },
  },
  {
    name: 'certificate paths and idle timeout of the listener changed',
    after: BASE.replace('tls: { cert: c.pem, key: k.pem }', 'idle_timeout_s: 10, tls: { cert: c2.pem, key: k2.pem }'),
    want: { listeners: { modified: [{ id: '127.0.0.1:8443', fields: ['certificates', 'idle_timeout_s'] }] } },
  },
  {
    name: 'the listener moved to another port',
    after: BASE.replace('port: 8443', 'port: 9443'),
    want: { listeners: { added: ['127.0.0.1:9443'], removed: ['127.0.0.1:8443'] } },
  },
  {
    name: 'settings sections',
    after: `${BASE}limits: { max_header_bytes: 8000 }\nlog: { level: debug }\nshutdown: { drain_timeout_ms: 5000 }\nreload: { watch: true }\n`,
    want: { settings: ['limits', 'log', 'reload', 'shutdown'] },
  },
  {
    name: 'the redirect listener added',
    after: `${BASE}http_redirect: { port: 80 }\n`,
    want: { settings: ['http_redirect'] },
  },
];

describe('diffConfigs', () => {
  const before = config(BASE);
  test.each(CASES)('$name', ({ after, want }) => {
    const empty = { added: [], removed: [], modified: [] };
    const full: ConfigChanges = {
      routes: { ...empty, ...want.routes },
      pools: { ...empty, ...want.pools },
      backends: { ...empty, ...want.backends },
      listeners: { ...empty, ...want.listeners },
      settings: want.settings ?? [],
    };
    const got = diffConfigs(before, config(after));
    expect(got).toEqual(full);
    expect(isUnchanged(got)).toBe(Object.keys(want).length === 0);
  });

  test('written order of hosts, methods and conditions does not matter', () => {
    const a = config(`${LISTEN}upstream:\n  p:\n    route: { host: [b.com, a.com], method: [POST, GET], headers: { x-b: "1", x-a: { present: true } } }\n    backends: [{ id: a, address: "http://x" }]\n`);
    const b = config(`${LISTEN}upstream:\n  p:\n    route: { host: [a.com, b.com], method: [GET, POST], headers: { x-a: { present: true }, x-b: "1" } }\n    backends: [{ id: a, address: "http://x" }]\n`);
    expect(isUnchanged(diffConfigs(a, b))).toBe(false); // header order is kept in the pool's routes...
    expect(diffConfigs(a, b).routes).toEqual({ added: [], removed: [], modified: [] }); // ...but the route is the same
    expect(describeRoute(a.pools[0]?.routes[0] as never)).toBe('host=a.com,b.com method=GET,POST header:x-a header:x-b="1"');
  });

  test.each([
    ['{}', '*'],
    ['{ path_prefix: / }', '*'],
    ['{ path: /exact }', 'path=/exact'],
    ['{ query: { v: { regex: "^2" }, debug: { present: false } } }', 'query:!debug query:v~/^2/'],
    ['{ headers: { authorization: "Bearer s3cr3t" }, query: { token: { regex: "^abc" } } }', 'header:authorization=[redacted] query:token~[redacted]'],
  ])('describeRoute(%s) = %s', (route, want) => {
    const c = config(`${LISTEN}upstream:\n  p:\n    route: ${route}\n    backends: [{ id: a, address: "http://x" }]\n`);
    expect(describeRoute(c.pools[0]?.routes[0] as never)).toBe(want);
  });
});
