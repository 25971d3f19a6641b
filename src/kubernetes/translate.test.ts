/**
 * Ingress translation, judged by where Spooky's own router sends requests: the Ingresses are translated and
 * composed with a config file (`composeConfig`, the loader and its checks included), the pools' routes are
 * compiled with `compileRouter`, and each request's pool is compared with what the Ingress API says.
 */
import { describe, expect, test } from 'bun:test';
import type { Config } from '../config/types.ts';
import { compileRouter, normaliseConfigPath, routeInput } from '../router/router.ts';
import { composeConfig } from './compose.ts';
import type { ClusterState, EndpointSlice, Ingress, IngressPath, Service } from './objects.ts';
import { pathConditions, translate } from './translate.ts';

const BASE = 'listen: { address: 127.0.0.1, port: 0, tls: { cert: /nonexistent/c.pem, key: /nonexistent/k.pem } }\nkubernetes: {}\n';

/** A Service `web-N` style object with one port `http` (80 → 8080), or as given. */
function service(ns: string, name: string, ports: Service['spec'] = { ports: [{ name: 'http', port: 80, targetPort: 8080 }] }): Service {
  return { metadata: { namespace: ns, name }, spec: ports };
}

/** An EndpointSlice of `svc` with ready pods at `ips` on port `http` 8080. */
function slice(ns: string, svc: string, ips: string[], extra: Partial<EndpointSlice> = {}): EndpointSlice {
  return {
    metadata: { namespace: ns, name: `${svc}-${ips.join('-')}`, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: ips.map((ip, i) => ({ addresses: [ip], conditions: { ready: true }, targetRef: { kind: 'Pod', name: `${svc}-pod-${i}-${ip}` } })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ...extra,
  };
}

/** A path of `svc` port 80. */
const to = (svc: string, path: string, pathType = 'Prefix'): IngressPath => ({
  path,
  pathType,
  backend: { service: { name: svc, port: { number: 80 } } },
});

/** An Ingress of class spooky created at minute `minute`. */
function ingress(
  name: string,
  rules: { host?: string; paths: IngressPath[] }[],
  extra: Partial<NonNullable<Ingress['spec']>> = {},
  minute = 0,
): Ingress {
  return {
    metadata: { namespace: 'default', name, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString() },
    spec: { ingressClassName: 'spooky', rules: rules.map((r) => ({ ...(r.host ? { host: r.host } : {}), http: { paths: r.paths } })), ...extra },
  };
}

/** A cluster with Services a, b, c, d (each with one ready pod) and `ingresses`. */
function cluster(ingresses: Ingress[], more: Partial<ClusterState> = {}): ClusterState {
  const names = ['a', 'b', 'c', 'd'];
  return {
    ingresses,
    ingressClasses: [],
    services: names.map((n) => service('default', n)),
    endpointSlices: names.map((n, i) => slice('default', n, [`10.0.0.${i + 1}`])),
    secrets: [],
    ...more,
  };
}

/** The composed config of `state` (fails the test when the loader refuses it). */
function configOf(state: ClusterState): Config {
  const composed = composeConfig(BASE, '/etc/spooky/spooky.yaml', translate(state, { ingressClass: 'spooky' }), new Map());
  if (!composed.result.ok) throw new Error(composed.result.errors.map((e) => e.message).join('\n'));
  return composed.result.config;
}

/** Where Spooky's router sends `host` + `path`: the Service name of the pool (`default/a:80` → `a`), or null. */
function routeOf(config: Config, host: string, path: string): string | null {
  let order = 0;
  const router = compileRouter(config.pools.flatMap((p) => p.routes.map((route) => ({ route, target: p.name, order: order++ }))));
  const pool = router.match(routeInput(host, normaliseConfigPath(path), 'GET', { get: () => null }, ''));
  return pool === undefined ? null : (/^default\/(\w+):/.exec(pool)?.[1] ?? pool);
}

describe('paths', () => {
  test.each([
    ['Prefix', '/', [{ kind: 'prefix', path: '/' }]],
    [
      'Prefix',
      '/foo',
      [
        { kind: 'exact', path: '/foo', ofPrefix: true },
        { kind: 'prefix', path: '/foo/' },
      ],
    ],
    [
      'Prefix',
      '/foo/',
      [
        { kind: 'exact', path: '/foo', ofPrefix: true },
        { kind: 'prefix', path: '/foo/' },
      ],
    ],
    [
      'ImplementationSpecific',
      '/foo',
      [
        { kind: 'exact', path: '/foo', ofPrefix: true },
        { kind: 'prefix', path: '/foo/' },
      ],
    ],
    ['Exact', '/foo/', [{ kind: 'exact', path: '/foo/' }]],
    [undefined, undefined, [{ kind: 'prefix', path: '/' }]],
  ])('%s %s', (type, path, want) => {
    expect(pathConditions(type, path)).toEqual(want as never);
  });

  test('a path not starting with / and an unknown pathType are refused with a reason', () => {
    expect(pathConditions('Prefix', 'foo')).toBeString();
    expect(pathConditions('Regex', '/foo')).toContain('pathType "Regex"');
  });

  test('Prefix matches whole segments, Exact only itself, and the longest path wins (exact over prefix on a tie)', () => {
    const config = configOf(
      cluster([
        ingress('one', [{ host: 'shop.example', paths: [to('a', '/'), to('b', '/foo'), to('c', '/foo/bar', 'Exact'), to('d', '/foo/bar/baz')] }]),
      ]),
    );
    const cases: [string, string | null][] = [
      ['/', 'a'],
      ['/foo', 'b'],
      ['/foo/', 'b'],
      ['/foobar', 'a'], // not the segment foo
      ['/foo/x', 'b'],
      ['/foo/bar', 'c'],
      ['/foo/bar/', 'b'], // Exact /foo/bar does not match /foo/bar/
      ['/foo/bar/baz', 'd'],
      ['/foo/bar/bazz', 'b'],
    ];
    for (const [path, want] of cases) expect([path, routeOf(config, 'shop.example', path)]).toEqual([path, want]);
    expect(routeOf(config, 'other.example', '/foo')).toBeNull(); // no rule for that host, no default backend
  });
});

describe('hosts', () => {
  test('the host is chosen first: a longer path without host does not take requests for a host that has rules', () => {
    const config = configOf(
      cluster([
        ingress('hosted', [{ host: 'a.example', paths: [to('a', '/'), to('c', '/api/v2')] }]),
        ingress('anyhost', [{ paths: [to('b', '/api'), to('d', '/api/v2/x', 'Exact')] }], {}, 1),
      ]),
    );
    expect(routeOf(config, 'a.example', '/api')).toBe('a');
    expect(routeOf(config, 'a.example', '/api/users')).toBe('a');
    expect(routeOf(config, 'a.example', '/api/v2/x')).toBe('c'); // a.example's own longest match, not the hostless Exact
    expect(routeOf(config, 'a.example', '/api/v2/y')).toBe('c');
    expect(routeOf(config, 'b.example', '/api/users')).toBe('b');
    expect(routeOf(config, 'b.example', '/api/v2/x')).toBe('d');
    expect(routeOf(config, 'b.example', '/')).toBeNull();
  });

  test('an exact host wins over a wildcard, a wildcard over no host; the default backend takes what no rule does', () => {
    const config = configOf(
      cluster([
        ingress('wild', [{ host: '*.example.com', paths: [to('b', '/')] }], { defaultBackend: { service: { name: 'd', port: { number: 80 } } } }),
        ingress('exact', [{ host: 'www.example.com', paths: [to('a', '/app')] }], {}, 1),
      ]),
    );
    expect(routeOf(config, 'www.example.com', '/app/x')).toBe('a');
    expect(routeOf(config, 'www.example.com', '/other')).toBe('d'); // its own rules have no answer: the default backend, not the wildcard's /
    expect(routeOf(config, 'api.example.com', '/app/x')).toBe('b');
    expect(routeOf(config, 'example.org', '/x')).toBe('d');
  });
});

describe('which Ingresses', () => {
  const classed = (name: string, cls: { spec?: string; annotation?: string }): Ingress => {
    const i = ingress(name, [{ host: `${name}.example`, paths: [to('a', '/')] }]);
    if (i.spec) {
      if (cls.spec === undefined) delete i.spec.ingressClassName;
      else i.spec.ingressClassName = cls.spec;
    }
    if (cls.annotation !== undefined && i.metadata) i.metadata.annotations = { 'kubernetes.io/ingress.class': cls.annotation };
    return i;
  };
  const all = [
    classed('mine', { spec: 'spooky' }),
    classed('theirs', { spec: 'nginx' }),
    classed('legacy', { annotation: 'spooky' }),
    classed('legacytheirs', { annotation: 'nginx' }),
    classed('classless', {}),
  ];

  test('its class by spec or by the old annotation; no class only when its IngressClass is the default', () => {
    expect(translate(cluster(all), { ingressClass: 'spooky' }).served).toEqual(['default/legacy', 'default/mine']);
    const withDefault = cluster(all, {
      ingressClasses: [
        {
          metadata: { name: 'spooky', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
          spec: { controller: 'spooky.dev/ingress-controller' },
        },
      ],
    });
    expect(translate(withDefault, { ingressClass: 'spooky' }).served.sort()).toEqual(['default/classless', 'default/legacy', 'default/mine']);
  });

  test("an IngressClass of Spooky's class name that another controller implements: none of its Ingresses is served", () => {
    const foreign = cluster(all, { ingressClasses: [{ metadata: { name: 'spooky' }, spec: { controller: 'example.com/other-controller' } }] });
    expect(translate(foreign, { ingressClass: 'spooky' }).served).toEqual([]);
    const ours = cluster(all, { ingressClasses: [{ metadata: { name: 'spooky' }, spec: { controller: 'spooky.dev/ingress-controller' } }] });
    expect(translate(ours, { ingressClass: 'spooky' }).served).toEqual(['default/legacy', 'default/mine']);
  });

  test('the older Ingress keeps a host and path both claim; the newer is named in a warning', () => {
    const t = translate(
      cluster([
        ingress('newer', [{ host: 'x.example', paths: [to('b', '/')] }], {}, 5),
        ingress('older', [{ host: 'x.example', paths: [to('a', '/')] }], {}, 1),
      ]),
      { ingressClass: 'spooky' },
    );
    expect(Object.keys(t.pools)).toEqual(['default/a:80']);
    expect(t.warnings.join('\n')).toContain('Ingress default/newer: x.example / is already served by Ingress default/older');
  });
});

describe('backends', () => {
  test('ready endpoints of every slice, by the Service port name; not-ready ones left out; IPv6 in brackets; sorted', () => {
    const svc = service('default', 'web', {
      ports: [
        { name: 'main', port: 80, targetPort: 'http' },
        { name: 'other', port: 81 },
      ],
    });
    const s1 = slice('default', 'web', ['10.1.0.2', '10.1.0.1'], {
      ports: [
        { name: 'main', port: 8080 },
        { name: 'other', port: 9090 },
      ],
    });
    const s2: EndpointSlice = {
      metadata: { namespace: 'default', name: 'web-v6', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv6',
      endpoints: [
        { addresses: ['fd00::1'], targetRef: { name: 'web-v6-pod' } }, // ready absent: ready
        { addresses: ['fd00::2'], conditions: { ready: false, terminating: true }, targetRef: { name: 'leaving' } },
      ],
      ports: [{ name: 'main', port: 8080 }],
    };
    const other = slice('default', 'api', ['10.9.9.9']); // another Service's slice
    const t = translate(
      {
        ...cluster([ingress('w', [{ paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'main' } } } }] }])]),
        services: [svc],
        endpointSlices: [s1, s2, other],
      },
      { ingressClass: 'spooky' },
    );
    expect(t.pools['default/web:80']?.backends).toEqual([
      { id: 'web-pod-0-10.1.0.2', address: 'http://10.1.0.2:8080' },
      { id: 'web-pod-1-10.1.0.1', address: 'http://10.1.0.1:8080' },
      { id: 'web-v6-pod', address: 'http://[fd00::1]:8080' },
    ]);
  });

  test('appProtocol picks the scheme; an ExternalName Service is its DNS name', () => {
    const h2c = service('default', 'grpc', { ports: [{ name: 'g', port: 50051, appProtocol: 'kubernetes.io/h2c' }] });
    const ext = service('default', 'ext', {
      type: 'ExternalName',
      externalName: 'api.partner.example',
      ports: [{ name: 'https', port: 443, appProtocol: 'https' }],
    });
    const state: ClusterState = {
      ...cluster([
        ingress('p', [
          { host: 'g.example', paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'grpc', port: { number: 50051 } } } }] },
          { host: 'e.example', paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'ext', port: { number: 443 } } } }] },
        ]),
      ]),
      services: [h2c, ext],
      endpointSlices: [slice('default', 'grpc', ['10.2.0.1'], { ports: [{ name: 'g', port: 50051 }] })],
    };
    const t = translate(state, { ingressClass: 'spooky' });
    expect(t.pools['default/grpc:50051']?.backends.map((b) => b.address)).toEqual(['h2c://10.2.0.1:50051']);
    expect(t.pools['default/ext:443']?.backends).toEqual([{ id: 'api.partner.example:443', address: 'https://api.partner.example:443' }]);
  });

  test('a missing Service or port: a pool without backends (503), named in a warning, and the config still loads', () => {
    const state = cluster([
      ingress('m', [
        {
          host: 'm.example',
          paths: [to('nosuch', '/'), { path: '/p', pathType: 'Prefix', backend: { service: { name: 'a', port: { number: 9999 } } } }],
        },
      ]),
    ]);
    const t = translate(state, { ingressClass: 'spooky' });
    expect(t.warnings.join('\n')).toContain('Service default/nosuch does not exist');
    expect(t.warnings.join('\n')).toContain('Service default/a has no port 9999');
    const config = configOf(state);
    expect(config.pools.map((p) => [p.name, p.backends.length])).toEqual([
      ['default/a:9999', 0],
      ['default/nosuch:80', 0],
    ]);
  });
});

describe('composition with the config file', () => {
  test("the file's pools and routes win; a clashing generated route is left out with a warning", () => {
    const base = `${BASE}upstream:\n  static:\n    route: { host: a.example, path_prefix: /api/ }\n    backends: [{ id: s, address: "http://127.0.0.1:7000" }]\n`;
    const t = translate(cluster([ingress('c', [{ host: 'a.example', paths: [to('a', '/api'), to('b', '/web')] }])]), { ingressClass: 'spooky' });
    const composed = composeConfig(base, '/etc/spooky/spooky.yaml', t, new Map());
    expect(composed.result.ok).toBe(true);
    if (!composed.result.ok) return;
    expect(composed.result.config.pools.map((p) => p.name)).toEqual(['static', 'default/a:80', 'default/b:80']);
    expect(routeOf(composed.result.config, 'a.example', '/api/x')).toBe('static');
    expect(routeOf(composed.result.config, 'a.example', '/api')).toBe('a');
    expect(composed.warnings.join('\n')).toContain("is the config file's already");
  });

  test("TLS hosts get their Secret's files as SNI certificates; the file keeps names it has", () => {
    const t = translate(
      cluster([ingress('t', [{ host: 'a.example', paths: [to('a', '/')] }], { tls: [{ hosts: ['a.example', 'b.example'], secretName: 'ab-tls' }] })]),
      { ingressClass: 'spooky' },
    );
    expect(t.certificates).toEqual([
      { host: 'a.example', secret: 'default/ab-tls' },
      { host: 'b.example', secret: 'default/ab-tls' },
    ]);
    const base = BASE.replace(
      'key: /nonexistent/k.pem',
      'key: /nonexistent/k.pem, certificates: [{ server_name: b.example, cert: /f/b.crt, key: /f/b.key }]',
    );
    const composed = composeConfig(base, '/etc/spooky/spooky.yaml', t, new Map([['default/ab-tls', { cert: '/run/ab.crt', key: '/run/ab.key' }]]));
    if (!composed.result.ok) throw new Error(JSON.stringify(composed.result.errors));
    expect(composed.result.config.listeners[0]?.certificates.filter((c) => c.server_name).map((c) => [c.server_name, c.cert])).toEqual([
      ['b.example', '/f/b.crt'],
      ['a.example', '/run/ab.crt'],
    ]);
    expect(composed.warnings.join('\n')).toContain('certificate for b.example');
  });
});

describe('inputs the config loader would refuse are skipped, not a refused reload', () => {
  /** The composed config of `state` with a written file for every Secret named (fails the test when refused). */
  const load = (state: ClusterState) => {
    const t = translate(state, { ingressClass: 'spooky' });
    const files = new Map(t.certificates.map((c) => [c.secret, { cert: '/run/x.crt', key: '/run/x.key' }]));
    const composed = composeConfig(BASE, '/etc/spooky/spooky.yaml', t, files);
    if (!composed.result.ok) throw new Error(composed.result.errors.map((e) => e.message).join('\n'));
    return { t, config: composed.result.config };
  };

  test('an ExternalName with a trailing dot (a valid absolute DNS name) or an IPv6 address is a backend', () => {
    const dotted = service('default', 'ext', { type: 'ExternalName', externalName: 'db.partner.example.', ports: [{ port: 80 }] });
    const v6 = service('default', 'ext6', { type: 'ExternalName', externalName: 'fd00::7', ports: [{ port: 80 }] });
    const { config } = load({
      ...cluster([
        ingress('x', [
          { host: 'a.example', paths: [to('ext', '/'), to('a', '/a')] },
          { host: 'b.example', paths: [to('ext6', '/')] },
        ]),
      ]),
      services: [dotted, v6, service('default', 'a')],
    });
    expect(config.pools.map((p) => [p.name, p.backends.map((b) => b.address)])).toEqual([
      ['default/a:80', ['http://10.0.0.1:8080']],
      ['default/ext6:80', ['http://[fd00::7]:80']],
      ['default/ext:80', ['http://db.partner.example:80']],
    ]);
  });

  test('an FQDN EndpointSlice address with a trailing dot is a backend; one that is no host name is skipped with a warning', () => {
    const fqdn: EndpointSlice = {
      metadata: { namespace: 'default', name: 'a-fqdn', labels: { 'kubernetes.io/service-name': 'a' } },
      addressType: 'FQDN',
      endpoints: [{ addresses: ['pod-1.example.'] }, { addresses: ['not a host'] }],
      ports: [{ name: 'http', port: 8080 }],
    };
    const { t, config } = load({
      ...cluster([ingress('x', [{ paths: [to('a', '/'), to('b', '/b')] }])]),
      endpointSlices: [fqdn, slice('default', 'b', ['10.0.0.2'])],
    });
    expect(config.pools.map((p) => [p.name, p.backends.map((b) => b.address)])).toEqual([
      ['default/a:80', ['http://pod-1.example:8080']],
      ['default/b:80', ['http://10.0.0.2:8080']],
    ]);
    expect(t.warnings.join('\n')).toContain('not a host');
  });

  test('a spec.tls host that is an IP address gets no SNI certificate (a warning), and the other Ingresses still load', () => {
    const { t, config } = load(
      cluster([
        ingress('ip', [{ paths: [to('a', '/')] }], { tls: [{ hosts: ['10.1.2.3', 'a.example'], secretName: 'ip-tls' }] }),
        ingress('other', [{ host: 'b.example', paths: [to('b', '/')] }], {}, 1),
      ]),
    );
    expect(config.listeners[0]?.certificates.filter((c) => c.server_name).map((c) => c.server_name)).toEqual(['a.example']);
    expect(t.warnings.join('\n')).toContain('10.1.2.3');
    expect(routeOf(config, 'b.example', '/')).toBe('b');
  });
});

describe('Exact over Prefix', () => {
  test('an Exact path wins over a Prefix of the same path, in the same or an older Ingress', () => {
    for (const [older, newer] of [
      [[to('a', '/foo')], [to('b', '/foo', 'Exact')]],
      [[to('a', '/foo'), to('b', '/foo', 'Exact')], []],
    ] as [IngressPath[], IngressPath[]][]) {
      const ings = [ingress('older', [{ host: 'x.example', paths: older }], {}, 0)];
      if (newer.length > 0) ings.push(ingress('newer', [{ host: 'x.example', paths: newer }], {}, 1));
      const t = translate(cluster(ings), { ingressClass: 'spooky' });
      const config = configOf(cluster(ings));
      expect(routeOf(config, 'x.example', '/foo')).toBe('b');
      expect(routeOf(config, 'x.example', '/foo/x')).toBe('a');
      expect(t.warnings).toEqual([]);
    }
  });
});

describe('one pool per Service port', () => {
  test('a Service port named in one Ingress and numbered in another is one pool (one health state, one connection pool)', () => {
    const config = configOf(
      cluster([
        ingress('by-number', [{ host: 'x.example', paths: [to('a', '/')] }]),
        ingress(
          'by-name',
          [{ host: 'y.example', paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'a', port: { name: 'http' } } } }] }],
          {},
          1,
        ),
      ]),
    );
    expect(config.pools.map((p) => p.name)).toEqual(['default/a:80']);
    expect(routeOf(config, 'x.example', '/')).toBe('a');
    expect(routeOf(config, 'y.example', '/')).toBe('a');
  });
});
