import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configJsonSchema, formatIssue, type LoadResult, loadConfigFile, loadConfigText, STRATEGY_ALIASES } from './load.ts';
import { editDistance, parseBackendAddress, parseHostPattern, parseStatusRange, suggest } from './parse.ts';
import { canonicalStrategy } from './schema.ts';
import type { Config, ConfigIssue } from './types.ts';

const BASE = '/srv/spooky';

function load(text: string): LoadResult {
  return loadConfigText(text, 'spooky.yaml', BASE);
}

function ok(text: string): { config: Config; warnings: ConfigIssue[] } {
  const r = load(text);
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.errors.map(formatIssue).join('\n')}`);
  return r;
}

function errorsOf(text: string): ConfigIssue[] {
  const r = load(text);
  if (r.ok) throw new Error('expected errors, the config loaded');
  return r.errors;
}

/** The head every broken config below shares (2 lines): a valid listener. */
const L = 'listen:\n  tls: { cert: c.pem, key: k.pem }\n';

/** [line, column, path, message substring] */
type Want = [number, number, string, string];

const BAD: Array<{ name: string; yaml: string; want: Want[] }> = [
  {
    name: 'unknown top-level key with suggestion (and the missing key it replaced)',
    yaml: `${L}upstreams:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [1, 1, '', 'missing required key `upstream`'],
      [3, 1, 'upstreams', 'unknown key `upstreams`; did you mean `upstream`?'],
    ],
  },
  {
    name: 'unknown backend key with suggestion',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - id: a\n        address: "http://x"\n        wieght: 5\n`,
    want: [[8, 9, 'upstream.api.backends[0].wieght', 'unknown key `wieght`; did you mean `weight`?']],
  },
  {
    name: 'unknown key far from every allowed key lists the allowed keys',
    yaml: `${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x", zzzzzz: 1 }]\n`,
    want: [[5, 46, 'upstream.api.backends[0].zzzzzz', 'allowed here: id, address, weight, health_check']],
  },
  {
    name: 'unsupported address scheme',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - id: a\n        address: ftp://files\n`,
    want: [[7, 18, 'upstream.api.backends[0].address', 'unsupported scheme "ftp://"']],
  },
  {
    name: 'address port out of range',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - id: a\n        address: "10.0.0.1:70000"\n`,
    want: [[7, 18, 'upstream.api.backends[0].address', 'port 70000 is out of range 1..65535']],
  },
  {
    name: 'address with a path',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - id: a\n        address: "http://x:80/api"\n`,
    want: [[7, 18, 'upstream.api.backends[0].address', 'cannot carry a path']],
  },
  {
    name: 'bare IPv6 address without brackets',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - id: a\n        address: "::1:8080"\n`,
    want: [[7, 18, 'upstream.api.backends[0].address', 'IPv6 addresses need brackets']],
  },
  {
    name: 'weight out of range',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - { id: a, address: "http://x", weight: 1001 }\n`,
    want: [[6, 47, 'upstream.api.backends[0].weight', 'must be at most 1000, got 1001']],
  },
  {
    name: 'weight not a whole number',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - { id: a, address: "http://x", weight: 2.5 }\n`,
    want: [[6, 47, 'upstream.api.backends[0].weight', 'expected a whole number, got 2.5']],
  },
  {
    name: 'duplicate backend ids',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - { id: a, address: "http://x" }\n      - { id: a, address: "http://y" }\n`,
    want: [[7, 15, 'upstream.api.backends[1].id', 'duplicate backend id "a" in pool `api` (first at line 6)']],
  },
  {
    name: 'duplicate backend addresses in one pool',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - { id: a, address: "http://x" }\n      - { id: b, address: "http://x" }\n`,
    want: [
      [
        7,
        27,
        'upstream.api.backends[1].address',
        'duplicate backend address "http://x" in pool `api` (first at line 6): both would share one connection pool, health state and limits; use `weight` instead',
      ],
    ],
  },
  {
    name: 'missing backend id points at the backend map',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - address: "http://x"\n`,
    want: [[6, 9, 'upstream.api.backends[0]', 'missing required key `id`']],
  },
  {
    name: 'empty backends list',
    yaml: `${L}upstream:\n  api:\n    backends: []\n`,
    want: [[5, 15, 'upstream.api.backends', 'must not be empty']],
  },
  {
    name: 'two pools with identical routes',
    yaml: `${L}upstream:\n  a:\n    route: { host: x.com, path_prefix: /p }\n    backends: [{ id: a, address: "http://x" }]\n  b:\n    route: { path_prefix: /p, host: X.com }\n    backends: [{ id: b, address: "http://y" }]\n`,
    want: [[8, 12, 'upstream.b.route', 'pool `b` has the same route as pool `a` (line 5)']],
  },
  {
    name: 'two catch-all pools',
    yaml: `${L}upstream:\n  a:\n    backends: [{ id: a, address: "http://x" }]\n  b:\n    backends: [{ id: b, address: "http://y" }]\n`,
    want: [[6, 3, 'upstream.b', 'pool `b` has no route (catch-all), like pool `a` (line 4)']],
  },
  {
    name: 'host pattern with a wildcard in the middle',
    yaml: `${L}upstream:\n  api:\n    route:\n      host: a.*.com\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[6, 13, 'upstream.api.route.host', 'a wildcard must be the whole first label']],
  },
  {
    name: 'host pattern in a list, with a port',
    yaml: `${L}upstream:\n  api:\n    route:\n      host: [a.com, "b.com:8443"]\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[6, 21, 'upstream.api.route.host[1]', 'without a port']],
  },
  {
    name: 'path prefix without leading slash',
    yaml: `${L}upstream:\n  api:\n    route:\n      path_prefix: api\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[6, 20, 'upstream.api.route.path_prefix', 'must start with "/"']],
  },
  {
    name: 'exact path together with path_prefix',
    yaml: `${L}upstream:\n  api:\n    route:\n      path: /a\n      path_prefix: /b\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[7, 7, 'upstream.api.route.path_prefix', 'cannot be combined with an exact `path`']],
  },
  {
    name: 'rewrite without host',
    yaml: `${L}upstream:\n  api:\n    host_policy:\n      mode: rewrite\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[6, 7, 'upstream.api.host_policy', '`mode: rewrite` needs `host`']],
  },
  {
    name: 'host without rewrite',
    yaml: `${L}upstream:\n  api:\n    host_policy: { mode: upstream, host: a.com }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 36, 'upstream.api.host_policy.host', '`host` is only used with `mode: rewrite`']],
  },
  {
    name: 'invalid regex',
    yaml: `${L}upstream:\n  api:\n    route:\n      headers:\n        x-user: { regex: "^u[0-9+$" }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[7, 26, 'upstream.api.route.headers.x-user.regex', 'invalid regular expression']],
  },
  {
    name: 'condition with two kinds',
    yaml: `${L}upstream:\n  api:\n    route:\n      query:\n        v: { present: true, equals: "2" }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[7, 12, 'upstream.api.route.query.v', 'use only one of `present`, `regex`, `equals`']],
  },
  {
    name: 'invalid header name',
    yaml: `${L}upstream:\n  api:\n    route:\n      headers:\n        "x user": "1"\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[7, 9, 'upstream.api.route.headers["x user"]', '"x user" is not a valid header name']],
  },
  {
    name: 'invalid method',
    yaml: `${L}upstream:\n  api:\n    route: { method: [GET, "PO ST"] }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 28, 'upstream.api.route.method[1]', '"PO ST" is not a valid HTTP method']],
  },
  {
    name: 'threshold below 1',
    yaml: `${L}upstream:\n  api:\n    health_check: { failure_threshold: 0 }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 40, 'upstream.api.health_check.failure_threshold', 'must be at least 1, got 0']],
  },
  {
    name: 'interval zero and negative cooldown',
    yaml: `${L}upstream:\n  api:\n    backends:\n      - id: a\n        address: "http://x"\n        health_check:\n          interval: 0\n          cooldown_ms: -1\n`,
    want: [
      [9, 21, 'upstream.api.backends[0].health_check.interval', 'must be at least 1, got 0'],
      [10, 24, 'upstream.api.backends[0].health_check.cooldown_ms', 'must be at least 0, got -1'],
    ],
  },
  {
    name: 'expected_status out of range and reversed',
    yaml: `${L}upstream:\n  api:\n    health_check:\n      probes:\n        - { path: /a, expected_status: 600 }\n        - { path: /b, expected_status: "399-200" }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [7, 40, 'upstream.api.health_check.probes[0].expected_status', 'outside 100..599'],
      [8, 40, 'upstream.api.health_check.probes[1].expected_status', 'reversed'],
    ],
  },
  {
    name: 'invalid CIDR',
    yaml: `${L}trusted_proxies: [10.0.0.0/8, 10.0.0.0/33, nope]\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [3, 31, 'trusted_proxies[1]', 'invalid prefix length "/33"'],
      [3, 44, 'trusted_proxies[2]', '"nope" is not an IP address or CIDR'],
    ],
  },
  {
    name: 'version not 1',
    yaml: `version: 2\n${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[1, 10, 'version', 'must be 1, got 2']],
  },
  {
    name: 'missing listen',
    yaml: 'upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[1, 1, '', 'missing required key `listen`']],
  },
  {
    name: 'listener without certificate',
    yaml: 'listen:\n  port: 443\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[2, 3, 'listen', 'the listener has no certificate']],
  },
  {
    name: 'certificate without key',
    yaml: 'listen:\n  tls:\n    cert: c.pem\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[3, 5, 'listen.tls', '`tls.cert` is set but `tls.key` is missing']],
  },
  {
    name: 'port is not a number',
    yaml: 'listen:\n  port: http\n  tls: { cert: c.pem, key: k.pem }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[2, 9, 'listen.port', 'expected a number, got "http"']],
  },
  {
    name: 'two listeners on the same port',
    yaml: 'listeners:\n  - { port: 443, tls: { cert: c, key: k } }\n  - { port: 443, tls: { cert: c, key: k } }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[3, 5, 'listeners[1]', 'another listener already uses 0.0.0.0 port 443 (line 2)']],
  },
  {
    name: 'two listeners on overlapping addresses of one port (a wildcard covers 127.0.0.1)',
    yaml: 'listeners:\n  - { address: 127.0.0.1, port: 443, tls: { cert: c, key: k } }\n  - { address: 0.0.0.0, port: 443, tls: { cert: c, key: k } }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[3, 5, 'listeners[1]', 'another listener already uses 127.0.0.1 port 443 (line 2)']],
  },
  {
    name: 'unknown strategy with suggestion',
    yaml: `${L}load_balancing:\n  type: least-conections\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[4, 9, 'load_balancing.type', 'unknown load-balancing strategy "least-conections"; did you mean `least-connections`?']],
  },
  {
    name: 'bad hash key',
    yaml: `${L}upstream:\n  api:\n    load_balancing: { type: consistent-hash, key: "body:x" }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 51, 'upstream.api.load_balancing.key', 'unknown hash key "body:x"']],
  },
  {
    name: 'invalid log level',
    yaml: `${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\nlog:\n  level: verbose\n`,
    want: [[7, 10, 'log.level', 'unknown log level "verbose"']],
  },
  {
    name: 'Rust per-pool auth is refused, not ignored',
    yaml: `${L}upstream:\n  api:\n    auth:\n      api_key: { keys: [k] }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 5, 'upstream.api.auth', 'per-pool `auth`']],
  },
  {
    name: 'Rust client_auth enabled is refused',
    yaml: 'listen:\n  tls:\n    cert: c\n    key: k\n    client_auth: { enabled: true, require_client_cert: true }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[5, 5, 'listen.tls.client_auth', 'not implemented; ignoring it would accept any client']],
  },
  {
    name: 'rewrite.prefix on a route without path_prefix',
    yaml: `${L}upstream:\n  api:\n    route: { path: /x, rewrite: { prefix: / } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 35, 'upstream.api.route.rewrite.prefix', 'this route has no `path_prefix`; use `rewrite.path`']],
  },
  {
    name: 'rewrite with both prefix and path, and one with neither',
    yaml: `${L}upstream:\n  api:\n    route:\n      - { path_prefix: /a/, rewrite: { prefix: /, path: /b } }\n      - { path_prefix: /c/, rewrite: {} }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [6, 51, 'upstream.api.route[0].rewrite.path', 'use only one of `prefix` and `path`'],
      [7, 38, 'upstream.api.route[1].rewrite', 'a rewrite needs `prefix` or `path`'],
    ],
  },
  {
    name: 'rewrite paths that cannot go on a request line as they are',
    yaml: `${L}upstream:\n  api:\n    route:\n      - { path_prefix: /a/, rewrite: { prefix: "/ü/" } }\n      - { path_prefix: /b/, rewrite: { path: /x/../y } }\n      - { path_prefix: /c/, rewrite: { path: x } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [6, 48, 'upstream.api.route[0].rewrite.prefix', 'is not in normalised form; write "/%C3%BC/"'],
      [7, 46, 'upstream.api.route[1].rewrite.path', 'is not in normalised form; write "/y"'],
      [8, 46, 'upstream.api.route[2].rewrite.path', 'must start with "/"'],
    ],
  },
  {
    name: 'rewrite paths with encoded dots, a backslash or a doubled slash',
    yaml: `${L}upstream:\n  api:\n    route:\n      - { path_prefix: /a/, rewrite: { prefix: "/a/%2e%2e/b/" } }\n      - { path_prefix: /b/, rewrite: { path: "/a\\\\b" } }\n      - { path_prefix: /c/, rewrite: { path: "/x//y" } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [6, 48, 'upstream.api.route[0].rewrite.prefix', 'write "/b/"'],
      [7, 46, 'upstream.api.route[1].rewrite.path', 'write "/a%5Cb"'],
      [8, 46, 'upstream.api.route[2].rewrite.path', 'write "/x/y"'],
    ],
  },
  {
    name: 'header rule values that are not strings, and trace context in request rules',
    yaml: `${L}upstream:\n  api:\n    route:\n      request_headers: { set: { x-version: 1.10, traceparent: "00-x" } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [6, 44, 'upstream.api.route.request_headers.set.x-version', 'write header values as quoted strings (YAML reads this one as number 1.1)'],
      [6, 50, 'upstream.api.route.request_headers.set.traceparent', '`traceparent` is the trace context Spooky passes on'],
    ],
  },
  {
    name: 'header rules that would change framing, connection handling or Host',
    yaml: `${L}upstream:\n  api:\n    route:\n      request_headers: { set: { Host: x }, remove: [connection] }\n      response_headers: { add: { content-length: "1" } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [6, 33, 'upstream.api.route.request_headers.set.Host', '`host` is set by the pool'],
      [6, 53, 'upstream.api.route.request_headers.remove[0]', '`connection` is a hop-by-hop field'],
      [7, 34, 'upstream.api.route.response_headers.add.content-length', '`content-length` is set by Spooky'],
    ],
  },
  {
    name: 'header rule values with a line break or outer whitespace',
    yaml: `${L}upstream:\n  api:\n    route:\n      request_headers: { set: { x-a: "a\\r\\nb: c" } }\n      response_headers: { add: { x-b: " padded" } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [6, 38, 'upstream.api.route.request_headers.set.x-a', 'no CR, LF or other control characters'],
      [7, 39, 'upstream.api.route.response_headers.add.x-b', 'must not start or end with whitespace'],
    ],
  },
  {
    name: 'http_redirect on the traffic port',
    yaml: 'listen: { port: 8443, tls: { cert: c, key: k } }\nadmin: { port: 9000 }\nhttp_redirect: { port: 8443 }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[3, 24, 'http_redirect.port', "port 8443 is the traffic listener's at line 1"]],
  },
  {
    name: 'http_redirect on the admin port',
    yaml: 'listen: { port: 8443, tls: { cert: c, key: k } }\nadmin: { port: 9000 }\nhttp_redirect: { port: 9000, address: 127.0.0.1 }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[3, 24, 'http_redirect.port', "port 9000 is the admin listener's"]],
  },
  {
    name: 'http_redirect https_port 0',
    yaml: `${L}http_redirect: { port: 80, https_port: 0 }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[3, 40, 'http_redirect.https_port', 'must be at least 1, got 0']],
  },
  {
    name: 'compression mistakes: an unknown coding, a coding twice, a media type with parameters',
    yaml: `${L}upstream:\n  api:\n    route:\n      compression: { encodings: [gzip, deflate], types: ["text/html; charset=utf-8"] }\n    backends: [{ id: a, address: "http://x" }]\n  b:\n    route: { path_prefix: /b, compression: { encodings: [br, br] } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [6, 40, 'upstream.api.route.compression.encodings[1]', 'zstd'],
      [6, 58, 'upstream.api.route.compression.types[0]', 'a lower-case media type'],
      [9, 57, 'upstream.b.route.compression.encodings', 'each coding once'],
    ],
  },
  {
    name: 'client_ips: an entry that is not an address, and neither list',
    yaml: `${L}upstream:\n  api:\n    route: { path_prefix: /a, client_ips: { allow: [10.0.0.0/33] } }\n    backends: [{ id: a, address: "http://x" }]\n  b:\n    route: { path_prefix: /b, client_ips: {} }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [5, 53, 'upstream.api.route.client_ips.allow[0]', 'invalid prefix length "/33" in "10.0.0.0/33"; expected /0../32'],
      [8, 43, 'upstream.b.route.client_ips', 'give `allow`, `deny` or both'],
    ],
  },
  {
    name: 'basic_auth: a plain password where a hash belongs, a user twice, a colon in a name',
    yaml: `${L}upstream:\n  api:\n    route:\n      basic_auth:\n        users:\n          - { username: alice, password_hash: hunter2 }\n          - { username: "a:b", password_hash: "$argon2id$v=19$m=65536,t=2,p=1$x$y" }\n    backends: [{ id: a, address: "http://x" }]\n  b:\n    route:\n      path_prefix: /b\n      basic_auth: { users: [{ username: x, password_hash: "$argon2id$a" }, { username: x, password_hash: "$argon2id$b" }] }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [8, 47, 'upstream.api.route.basic_auth.users[0].password_hash', 'make one with `spooky hash-password`'],
      [9, 25, 'upstream.api.route.basic_auth.users[1].username', 'without `:`'],
      [14, 28, 'upstream.b.route.basic_auth.users', 'each user name once'],
    ],
  },
  {
    name: 'a rate limit in Redis without a redis section',
    yaml: `${L}upstream:\n  api:\n    route:\n      rate_limits:\n        - { key: client_ip, rate: 5 }\n        - { key: route, rate: 50, store: redis }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[8, 42, 'upstream.api.route.rate_limits[1].store', '`store: redis` needs the top-level `redis` section']],
  },
  {
    name: 'redis mistakes: scheme, credentials in the URL, a path that is not a database, an unknown failure mode',
    yaml: `${L}redis: { url: "http://cache:6379", failure_mode: open }\nupstream:\n  api:\n    route:\n      rate_limits: [{ key: route, rate: 1, store: redis }]\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [3, 15, 'redis.url', 'must be a redis:// or rediss:// (TLS) URL'],
      [3, 50, 'redis.failure_mode', 'local'],
    ],
  },
  {
    name: 'kubernetes: a class name Kubernetes refuses, a namespace list entry, a debounce too long, and workers',
    yaml: `${L}workers: 2\nkubernetes:\n  ingress_class: Public_Edge\n  namespaces: [shop, "Team A"]\n  debounce_ms: 600000\n`,
    want: [
      [3, 10, 'workers', '`kubernetes` runs in one process: `workers` must be 1'],
      [5, 18, 'kubernetes.ingress_class', 'must be a Kubernetes object name'],
      [6, 22, 'kubernetes.namespaces[1]', 'must be a namespace name'],
      [7, 16, 'kubernetes.debounce_ms', '60000'],
    ],
  },
  {
    name: 'without kubernetes, upstream is still required',
    yaml: `${L}log: { level: info }\n`,
    want: [[1, 1, '', 'missing required key `upstream`']],
  },
  {
    name: 'redis URL with a password',
    yaml: `${L}redis: { url: "redis://:hunter2@cache:6379/x?password=y" }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [
      [3, 15, 'redis.url', 'credentials in the URL are not allowed; use `username` and `password_file`'],
      [3, 15, 'redis.url', 'the path may only be a database number'],
      [3, 15, 'redis.url', 'no query or fragment'],
    ],
  },
  {
    name: 'http_redirect port 0 with workers',
    yaml: `${L}workers: 2\nhttp_redirect: { port: 0, https_port: 443 }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[4, 24, 'http_redirect.port', 'cannot be shared by several workers']],
  },
  {
    name: 'route given as a string',
    yaml: `${L}upstream:\n  api:\n    route: /api\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 12, 'upstream.api.route', 'expected a map or a list, got "/api"']],
  },
  {
    name: 'empty value where a map is expected points at the key',
    yaml: `${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\nadmin:\n`,
    want: [[6, 1, 'admin', 'expected a map, got an empty value']],
  },
  {
    name: 'YAML duplicate key',
    yaml: `${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n  api:\n    backends: [{ id: b, address: "http://y" }]\n`,
    want: [[6, 3, 'upstream.api', 'duplicate key `api`']],
  },
  {
    name: 'YAML tab indentation',
    yaml: `${L}upstream:\n\tapi: {}\n`,
    want: [[4, 1, '', 'tabs are not allowed']],
  },
  {
    name: 'YAML unknown alias',
    yaml: `${L}upstream:\n  api: *pool\n`,
    want: [[4, 8, 'upstream.api', 'unknown alias *pool']],
  },
  {
    name: 'empty file',
    yaml: '# nothing here\n',
    want: [[1, 1, '', 'the config file is empty']],
  },
  {
    name: 'top level is a list',
    yaml: '- listen\n- upstream\n',
    want: [[1, 1, '', 'expected a map, got a list']],
  },
  {
    name: "a weight beyond 2^53 gets the field's own limit once",
    yaml: `${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x", weight: 99999999999999999999 }]\n`,
    want: [[5, 54, 'upstream.api.backends[0].weight', 'must be at most 1000']],
  },
  {
    name: "a tab before a list item: one error, not the parser's follow-on ones",
    yaml: `${L}upstream:\n  api:\n    backends:\n\t  - { id: a, address: "http://x:1" }\n`,
    want: [[6, 1, '', 'tabs are not allowed for indentation; use spaces']],
  },
  {
    name: 'a route path with a malformed percent-escape (no request could ever match it)',
    yaml: `${L}upstream:\n  api:\n    route: { path_prefix: "/a%zz/" }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 27, 'upstream.api.route.path_prefix', 'has a malformed percent-escape']],
  },
  {
    name: 'a merge key with a scalar source',
    yaml: `${L}upstream:\n  a:\n    <<: 5\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 9, 'upstream.a["<<"]', 'a merge key (`<<`) takes a map, an alias of a map, or a list of those']],
  },
  ...(
    [
      ['http://10.0.0.1', 'http://10.0.0.1:80'],
      ['10.0.0.1:443', 'https://10.0.0.1'],
      ['http://10.0.0.1:8080', 'HTTP://10.0.0.1:8080/'],
    ] as const
  ).map(([a, b]) => ({
    name: `two spellings of one backend origin: ${a} and ${b}`,
    yaml: `${L}upstream:\n  api:\n    backends:\n      - { id: a, address: "${a}" }\n      - { id: b, address: "${b}" }\n`,
    want: [[7, 27, 'upstream.api.backends[1].address', `duplicate backend address "${b}" in pool \`api\` (first at line 6)`] as Want],
  })),
  {
    name: 'an SNI server_name that is an IP address (clients never send one; the certificate could never be chosen)',
    yaml: 'listen:\n  tls:\n    cert: c.pem\n    key: k.pem\n    certificates: [{ server_name: "127.0.0.1", cert: a.pem, key: a.key }, { server_name: "[::1]", cert: b.pem, key: b.key }]\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [
      [5, 35, 'listen.tls.certificates[0].server_name', '"127.0.0.1" is an IP address, which clients never send as SNI'],
      [5, 90, 'listen.tls.certificates[1].server_name', '"[::1]" is an IP address'],
    ],
  },
  {
    name: 'two listeners on port 0 at one address (a reload could not tell them apart)',
    yaml: 'listeners:\n  - { address: 127.0.0.1, port: 0, tls: { cert: c.pem, key: k.pem } }\n  - { address: 127.0.0.1, port: 0, tls: { cert: c.pem, key: k.pem } }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[3, 5, 'listeners[1]', 'another listener (line 2) is also 127.0.0.1 port 0']],
  },
  {
    name: 'a fractional idle timeout (Bun takes whole seconds; validate must not pass what run refuses)',
    yaml: 'listen:\n  idle_timeout_s: 1.5\n  tls: { cert: c.pem, key: k.pem }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n',
    want: [[2, 19, 'listen.idle_timeout_s', 'expected a whole number, got 1.5']],
  },
  {
    name: 'pool keys `1` and `"1"`: two YAML keys that read as one, so one pool would vanish',
    yaml: `${L}upstream:\n  1:\n    backends: [{ id: a, address: "http://x" }]\n  "1":\n    backends: [{ id: b, address: "http://y" }]\n`,
    want: [[6, 3, 'upstream["1"]', 'duplicate key `1`']],
  },
  {
    name: 'keys `true` and `"true"` in a user map read as one',
    yaml: `${L}upstream:\n  api:\n    route: { path_prefix: /a, tags: { true: x, "true": y } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    want: [[5, 48, 'upstream.api.route.tags.true', 'duplicate key `true`']],
  },
  {
    name: 'an alias bomb, at its first alias',
    yaml: `${L}x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nz: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nw: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`,
    want: [[4, 8, 'y[0]', 'cannot read the YAML document: Excessive alias count']],
  },
];

describe('broken configs report the exact position, path and message', () => {
  test.each(BAD.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const errors = errorsOf(c.yaml);
    const got = errors.map((e) => [e.line, e.column, e.path, e.message] as const);
    expect(got.length).toBe(c.want.length);
    c.want.forEach(([line, column, path, msg], i) => {
      const e = errors[i];
      expect(e?.severity).toBe('error');
      expect(e?.file).toBe('spooky.yaml');
      expect([e?.line, e?.column, e?.path]).toEqual([line, column, path]);
      expect(e?.message).toContain(msg);
    });
  });

  test('a !!set or !!omap where a map belongs is named as such, with no follow-on error', () => {
    const head = 'listen: { port: 9889, tls: { cert: c.pem, key: k.pem } }\n';
    expect(errorsOf(`${head}upstream: !!set\n  ? a\n`).map((e) => [e.line, e.message])).toEqual([[3, 'expected a map, got a set (`!!set`)']]);
    expect(errorsOf(`${head}upstream: !!omap\n  - a: 1\n`).map((e) => [e.line, e.message])).toEqual([
      [3, 'expected a map, got an ordered map (`!!omap`); write a plain map'],
    ]);
  });

  test('a deeply nested document is refused at the first node past the depth limit, without walking it', () => {
    // 12 KB of nested flow maps took 14 s and gigabytes to walk (validate, start and every reload).
    const n = 2500;
    const errors = errorsOf(`upstream: ${'{a: '.repeat(n)}1${'}'.repeat(n)}\n`);
    expect(errors.map((e) => [e.line, e.column, e.message])).toEqual([[1, 11 + 4 * 63, 'the document is nested more than 64 levels deep']]);
  });

  test('the corpus has at least 20 cases', () => {
    expect(BAD.length).toBeGreaterThanOrEqual(20);
  });
});

describe('every error is reported at once', () => {
  test('schema, value and cross-field errors together, in file order', () => {
    const yaml = [
      'version: 3', // 1
      'listen:', // 2
      '  port: 99999', // 3
      '  tls: { cert: c.pem, key: k.pem }', // 4
      'upstream:', // 5
      '  api:', // 6
      '    route: { path_prefix: api }', // 7
      '    load_balancing: { type: round-robbin }', // 8
      '    backends:', // 9
      '      - { id: a, address: "gopher://x" }', // 10
      '      - { id: a, address: "http://y", weight: 0 }', // 11
      '      - { id: c, adress: "http://z" }', // 12
      'log: { level: loud }', // 13
    ].join('\n');
    const got = errorsOf(yaml).map((e) => `${e.line}:${e.column} ${e.path}`);
    expect(got).toEqual([
      '1:10 version',
      '3:9 listen.port',
      '7:27 upstream.api.route.path_prefix',
      '8:29 upstream.api.load_balancing.type',
      '10:27 upstream.api.backends[0].address',
      '11:15 upstream.api.backends[1].id',
      '11:47 upstream.api.backends[1].weight',
      '12:9 upstream.api.backends[2]',
      '12:18 upstream.api.backends[2].adress',
      '13:15 log.level',
    ]);
  });

  test('a YAML syntax error is reported with the schema errors that precede it', () => {
    const yaml = ['listen:', '  port: -1', '  tls: { cert: c, key: k }', 'upstream:', '  api:', '    backends: [ { id: a', ''].join('\n');
    const errors = errorsOf(yaml);
    expect(errors[0]).toMatchObject({ line: 2, column: 9, path: 'listen.port' });
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors.slice(1).every((e) => e.message.startsWith('invalid YAML'))).toBe(true);
  });
});

describe('formatIssue', () => {
  test('compiler style', () => {
    const issue: ConfigIssue = { severity: 'error', file: 'a.yaml', line: 3, column: 7, path: 'upstream.api', message: 'bad' };
    expect(formatIssue(issue)).toBe('a.yaml:3:7: error: bad (at upstream.api)');
    expect(formatIssue({ ...issue, severity: 'warning', path: '' })).toBe('a.yaml:3:7: warning: bad');
  });
});

const MINIMAL_RUST = `version: 1
listen:
  protocol: http3
  port: 9889
  address: "0.0.0.0"
  tls:
    cert: "certs/cert.pem"
    key: "certs/key.pem"
upstream:
  api_pool:
    load_balancing:
      type: "round-robin"
    route:
      path_prefix: "/api"
    backends:
      - id: "backend1"
        address: "127.0.0.1:7001"
        weight: 100
        health_check:
          path: "/health"
          interval: 5000
log:
  level: info
`;

describe('good configs', () => {
  test('pools keep their written order, numeric names and merged pools included (route ties go to the first written)', () => {
    // A JavaScript object lists integer-like keys first; the order written in the file decides route ties.
    const { config } = ok(`
listen: { port: 9889, tls: { cert: c.pem, key: k.pem } }
upstream:
  web:
    route: { path_prefix: /, headers: { x-a: { present: true } } }
    backends: [{ id: w, address: "http://127.0.0.1:8081" }]
  "2024":
    route: { path_prefix: /, headers: { x-b: { present: true } } }
    backends: [{ id: n, address: "http://127.0.0.1:8082" }]
  <<: { "7": { route: { path_prefix: /seven }, backends: [{ id: s, address: "http://127.0.0.1:8083" }] } }
  10: { route: { path_prefix: /ten }, backends: [{ id: t, address: "http://127.0.0.1:8084" }] }
`);
    expect(config.pools.map((p) => p.name)).toEqual(['web', '2024', '7', '10']);
  });

  test('the minimal Rust Spooky config loads unchanged, with defaults applied', () => {
    const { config, warnings } = ok(MINIMAL_RUST);
    expect(warnings).toEqual([]);
    expect(config.version).toBe(1);
    expect(config.listeners).toEqual([
      {
        protocol: 'http3',
        address: '0.0.0.0',
        port: 9889,
        idle_timeout_s: 30,
        certificates: [{ cert: resolve(BASE, 'certs/cert.pem'), key: resolve(BASE, 'certs/key.pem') }],
      },
    ]);
    expect(config.admin).toEqual({ enabled: true, address: '127.0.0.1', port: 9901 });
    expect(config.trusted_proxies).toEqual([]);
    expect(config.limits).toEqual({
      max_request_body_bytes: 104857600,
      max_header_bytes: 16384,
      max_uri_bytes: 8192,
      max_in_flight: 0,
      max_in_flight_per_client: 0,
    });
    expect(config.timeouts).toEqual({ connect_ms: 5000, response_header_ms: 60000, idle_ms: 0, request_ms: 0 });
    expect(config.log).toEqual({ level: 'info', format: 'json', access_log: true });
    expect(config.pools).toHaveLength(1);
    const pool = config.pools[0];
    expect(pool?.name).toBe('api_pool');
    expect(pool?.routes).toEqual([{ hosts: [], path_prefix: '/api', methods: [], headers: [], query: [] }]);
    expect(pool?.load_balancing).toEqual({ type: 'round-robin', key: { kind: 'client_ip' }, virtual_nodes: 2000 });
    expect(pool?.host_policy).toEqual({ mode: 'pass-through' });
    expect(pool?.tls).toEqual({ verify_certificates: true, strict_sni: true });
    const b = pool?.backends[0];
    expect(b?.id).toBe('backend1');
    expect(b?.address).toBe('127.0.0.1:7001');
    expect(b?.url.href).toBe('https://127.0.0.1:7001/');
    expect(b?.protocol).toBe('h2');
    expect(b?.weight).toBe(100);
    expect(b?.health_check).toEqual({
      probes: [{ path: '/health', method: 'GET', interval: 5000, timeout_ms: 1000, expected_status: [200, 399], headers: {} }],
      failure_threshold: 3,
      success_threshold: 2,
      cooldown_ms: 5000,
      initial: 'healthy',
      passive_failure_threshold: 5,
    });
  });

  const examplesDir = resolve(import.meta.dir, '../../examples');
  const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml'));

  test('the examples folder holds the documented examples', () => {
    for (const name of ['single-pool', 'api-and-web', 'virtual-hosts', 'http2-backends', 'sticky-sessions', 'canary-by-header']) {
      expect(examples).toContain(`${name}.yaml`);
    }
  });

  test.each(examples)('examples/%s loads without errors or warnings', async (name) => {
    const r = await loadConfigFile(join(examplesDir, name));
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    expect(r.warnings.map(formatIssue)).toEqual([]);
    expect(r.config.pools.length).toBeGreaterThan(0);
  });

  test('a backend without health_check gets no probes but keeps passive checks', () => {
    const { config } = ok(`${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`);
    expect(config.pools[0]?.backends[0]?.health_check).toEqual({
      probes: [],
      failure_threshold: 3,
      success_threshold: 2,
      cooldown_ms: 5000,
      initial: 'healthy',
      passive_failure_threshold: 5,
    });
    // No route: one catch-all route.
    expect(config.pools[0]?.routes).toEqual([{ hosts: [], methods: [], headers: [], query: [] }]);
  });

  test('a full route is normalised', () => {
    const { config } = ok(`${L}upstream:
  api:
    route:
      - host: [API.example.com, "*.Example.com"]
        path: /exact
        method: [get, Post]
        headers:
          X-Canary: "1"
          x-debug: { present: true }
          x-off: { present: false }
          x-user: { regex: "^u[0-9]+$" }
          x-eq: { equals: "yes" }
        query:
          v: 2
      - path_exact: /other
    backends: [{ id: a, address: "http://x" }]
`);
    const [r1, r2] = config.pools[0]?.routes ?? [];
    expect(r1?.hosts).toEqual(['api.example.com', '*.example.com']);
    expect(r1?.path_exact).toBe('/exact');
    expect(r1?.path_prefix).toBeUndefined();
    expect(r1?.methods).toEqual(['GET', 'POST']);
    expect(r1?.headers.map((h) => [h.name, h.kind])).toEqual([
      ['x-canary', 'equals'],
      ['x-debug', 'present'],
      ['x-off', 'absent'],
      ['x-user', 'regex'],
      ['x-eq', 'equals'],
    ]);
    const re = r1?.headers[3];
    expect(re?.kind === 'regex' && re.regex.test('u42')).toBe(true);
    expect(r1?.query).toEqual([{ name: 'v', kind: 'equals', value: '2' }]);
    expect(r2?.path_exact).toBe('/other');
  });

  test('backend address schemes', () => {
    const { config } = ok(`${L}upstream:
  api:
    backends:
      - { id: h1, address: "http://a.internal" }
      - { id: h2, address: "https://b.internal:8443" }
      - { id: h2c, address: "h2c://c.internal" }
      - { id: bare, address: "d.internal:9000" }
      - { id: barehost, address: "e.internal" }
      - { id: v6, address: "http://[::1]:8080" }
`);
    const got = config.pools[0]?.backends.map((b) => [b.id, b.protocol, b.url.protocol, b.url.hostname, b.url.port]);
    expect(got).toEqual([
      ['h1', 'http1', 'http:', 'a.internal', ''],
      ['h2', 'h2', 'https:', 'b.internal', '8443'],
      ['h2c', 'h2c', 'http:', 'c.internal', ''],
      ['bare', 'h2', 'https:', 'd.internal', '9000'],
      ['barehost', 'h2', 'https:', 'e.internal', ''],
      ['v6', 'http1', 'http:', '[::1]', '8080'],
    ]);
  });

  test('pool load_balancing falls back to the top-level one, then round-robin', () => {
    const { config } = ok(`${L}load_balancing: { type: hash, key: "header:X-User" }
upstream:
  a:
    route: { path_prefix: /a }
    backends: [{ id: a, address: "http://x" }]
  b:
    route: { path_prefix: /b }
    load_balancing: { type: p2c }
    backends: [{ id: b, address: "http://y" }]
`);
    expect(config.pools[0]?.load_balancing).toEqual({ type: 'consistent-hash', key: { kind: 'header', name: 'x-user' }, virtual_nodes: 2000 });
    expect(config.pools[1]?.load_balancing).toEqual({ type: 'latency-aware', key: { kind: 'client_ip' }, virtual_nodes: 2000 });
  });

  test('pool tls falls back to upstream_tls field by field; paths resolve against the config folder', () => {
    const { config } = ok(`${L}upstream_tls: { verify_certificates: false, ca_file: ca/global.pem }
upstream:
  a:
    route: { path_prefix: /a }
    tls: { strict_sni: false }
    backends: [{ id: a, address: "https://x" }]
  b:
    route: { path_prefix: /b }
    tls: { verify_certificates: true, ca_file: /etc/ssl/b.pem }
    backends: [{ id: b, address: "https://y" }]
`);
    expect(config.pools[0]?.tls).toEqual({ verify_certificates: false, strict_sni: false, ca_file: resolve(BASE, 'ca/global.pem') });
    expect(config.pools[1]?.tls).toEqual({ verify_certificates: true, strict_sni: true, ca_file: '/etc/ssl/b.pem' });
  });

  test('a client certificate and its key come as a pair: from the pool when it names one, else from upstream_tls', () => {
    const { config } = ok(`${L}upstream_tls: { client_certificate: tls/spooky.pem, client_key: tls/spooky-key.pem }
upstream:
  a:
    route: { path_prefix: /a }
    backends: [{ id: a, address: "https://x" }]
  b:
    route: { path_prefix: /b }
    tls: { client_certificate: /etc/b/client.pem, client_key: /etc/b/client-key.pem }
    backends: [{ id: b, address: "https://y" }]
  c:
    route: { path_prefix: /c }
    tls: { client_certificate: null, client_key: ~ }
    backends: [{ id: c, address: "https://z" }]
`);
    const global = { client_certificate: resolve(BASE, 'tls/spooky.pem'), client_key: resolve(BASE, 'tls/spooky-key.pem') };
    expect(config.pools.map((p) => p.tls)).toEqual([
      { verify_certificates: true, strict_sni: true, ...global },
      { verify_certificates: true, strict_sni: true, client_certificate: '/etc/b/client.pem', client_key: '/etc/b/client-key.pem' },
      { verify_certificates: true, strict_sni: true, ...global },
    ]);
  });

  test('a rewrite of a path_prefix that ends inside a segment warns about the string-prefix match', () => {
    const { warnings } = ok(`${L}upstream:
  api:
    route: { path_prefix: /api, rewrite: { prefix: /v1/ } }
    backends: [{ id: a, address: "http://x" }]
  fine:
    route: { path_prefix: /b/, rewrite: { prefix: / } }
    backends: [{ id: a, address: "http://x" }]
`);
    expect(warnings.map((w) => [w.line, w.column, w.path, w.message])).toEqual([
      [
        5,
        27,
        'upstream.api.route.path_prefix',
        '`path_prefix: /api` is a string prefix, so `/apix` is rewritten to `/v1/x` as well; write `/api/` to rewrite below `/api/` only',
      ],
    ]);
  });

  test('a pool client certificate that no TLS connection would present is a warning at the key', () => {
    const { warnings } = ok(`${L}upstream:
  plain:
    route: { path_prefix: /p }
    tls: { client_certificate: c.pem, client_key: k.pem }
    backends: [{ id: a, address: "http://x" }, { id: b, address: "h2c://y" }]
  probed:
    route: { path_prefix: /q }
    tls: { client_certificate: c.pem, client_key: k.pem }
    health_check: { path: /h, probes: [{ address: "https://x:8443" }] }
    backends: [{ id: a, address: "http://x" }]
  bare:
    route: { path_prefix: /r }
    tls: { client_certificate: c.pem, client_key: k.pem }
    backends: [{ id: a, address: "x:8443" }]
`);
    expect(warnings.map((w) => [w.line, w.column, w.path, w.message])).toEqual([
      [
        6,
        12,
        'upstream.plain.tls.client_certificate',
        '`client_certificate` is not used: no backend or health probe of this pool is https:// (a client certificate is presented on TLS connections only)',
      ],
    ]);
  });

  test('a client certificate without its key (or a key alone) is an error at the key; the `_ref` forms warn', () => {
    const r = load(`${L}upstream_tls: { client_certificate: c.pem }
upstream:
  a:
    tls:
      client_key: k.pem
      client_key_ref: { name: spooky-client }
    backends: [{ id: a, address: "https://x" }]
`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => [e.line, e.column, e.path, e.message])).toEqual([
      [3, 17, 'upstream_tls.client_certificate', '`client_certificate` needs `client_key` (its private key) in the same section'],
      [7, 7, 'upstream.a.tls.client_key', '`client_key` needs `client_certificate` in the same section'],
    ]);
    expect(r.warnings.map((w) => [w.line, w.path])).toEqual([[8, 'upstream.a.tls.client_key_ref']]);
  });

  test('health checks merge pool and backend fields; probes inherit unset fields', () => {
    const { config } = ok(`${L}upstream:
  api:
    health_check: { path: /ready, interval: 2000, expected_status: "2xx", failure_threshold: 5 }
    backends:
      - id: a
        address: "http://x"
        health_check: { timeout_ms: 300, success_threshold: 1, initial: unhealthy }
      - id: b
        address: "http://y"
        health_check:
          headers: { X-Probe: 1 }
          probes:
            - { path: /live }
            - { path: /db, address: "h2c://y:9000", expected_status: 204 }
      - id: c
        address: "http://z"
        health_check: { probes: [], passive_failure_threshold: 0 }
`);
    const [a, b, c] = config.pools[0]?.backends ?? [];
    expect(a?.health_check).toEqual({
      probes: [{ path: '/ready', method: 'GET', interval: 2000, timeout_ms: 300, expected_status: [200, 299], headers: {} }],
      failure_threshold: 5,
      success_threshold: 1,
      cooldown_ms: 5000,
      initial: 'unhealthy',
      passive_failure_threshold: 5,
    });
    expect(b?.health_check.probes).toEqual([
      { path: '/live', method: 'GET', interval: 2000, timeout_ms: 1000, expected_status: [200, 299], headers: { 'x-probe': '1' } },
      {
        path: '/db',
        method: 'GET',
        interval: 2000,
        timeout_ms: 1000,
        expected_status: [204, 204],
        headers: { 'x-probe': '1' },
        address: 'h2c://y:9000',
      },
    ]);
    expect(c?.health_check.probes).toEqual([]);
    expect(c?.health_check.passive_failure_threshold).toBe(0);
    expect(c?.health_check.failure_threshold).toBe(5);
  });

  test('listeners replace listen (with a warning); SNI certificates follow the default one', () => {
    const { config, warnings } = ok(`listen:
  tls: { cert: ignored.pem, key: ignored.key }
listeners:
  - address: "::"
    port: 0
    idle_timeout_s: 10
    tls:
      cert: a.pem
      key: a.key
      certificates:
        - { server_name: API.example.com, cert: /abs/api.pem, key: /abs/api.key }
  - port: 8443
    tls:
      certificates: [{ server_name: "*.example.com", cert: w.pem, key: w.key }]
upstream:
  api:
    backends: [{ id: a, address: "http://x" }]
`);
    expect(warnings.map((w) => [w.line, w.path, w.message])).toEqual([[1, 'listen', '`listen` is ignored because `listeners` is given']]);
    expect(config.listeners).toEqual([
      {
        protocol: 'http3',
        address: '::',
        port: 0,
        idle_timeout_s: 10,
        certificates: [
          { cert: resolve(BASE, 'a.pem'), key: resolve(BASE, 'a.key') },
          { server_name: 'api.example.com', cert: '/abs/api.pem', key: '/abs/api.key' },
        ],
      },
      {
        protocol: 'http3',
        address: '0.0.0.0',
        port: 8443,
        idle_timeout_s: 30,
        certificates: [{ server_name: '*.example.com', cert: resolve(BASE, 'w.pem'), key: resolve(BASE, 'w.key') }],
      },
    ]);
  });

  test('global settings', () => {
    const { config } = ok(`${L}admin: { enabled: false, port: 0, token: s3cret }
trusted_proxies: [10.0.0.0/8, 192.168.1.7, "fd00::/8"]
limits: { max_request_body_bytes: 1024, max_header_bytes: 2048 }
timeouts: { connect_ms: 100, response_header_ms: 200 }
upstream:
  api:
    host_policy: { mode: rewrite, host: "internal:8080" }
    backends: [{ id: a, address: "http://x" }]
log:
  level: haunt
  format: plain
  file: logs/spooky.log
  access_log: false
`);
    expect(config.admin).toEqual({ enabled: false, address: '127.0.0.1', port: 0, token: 's3cret' });
    expect(config.trusted_proxies).toEqual(['10.0.0.0/8', '192.168.1.7', 'fd00::/8']);
    expect(config.limits).toEqual({
      max_request_body_bytes: 1024,
      max_header_bytes: 2048,
      max_uri_bytes: 8192,
      max_in_flight: 0,
      max_in_flight_per_client: 0,
    });
    expect(config.timeouts).toEqual({ connect_ms: 100, response_header_ms: 200, idle_ms: 0, request_ms: 0 });
    expect(config.pools[0]?.host_policy).toEqual({ mode: 'rewrite', host: 'internal:8080' });
    expect(config.log).toEqual({ level: 'debug', format: 'text', file: resolve(BASE, 'logs/spooky.log'), access_log: false });
  });

  test('Rust log shapes and level names', () => {
    const names: Array<[string, string]> = [
      ['silence', 'silent'],
      ['poltergeist', 'error'],
      ['scream', 'warn'],
      ['spooky', 'info'],
      ['haunt', 'debug'],
      ['whisper', 'trace'],
      ['fatal', 'fatal'],
    ];
    for (const [written, level] of names) {
      const { config } = ok(
        `${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\nlog: { level: ${written}, file: { enabled: false, path: /x.log } }\n`,
      );
      expect(config.log.level).toBe(level as Config['log']['level']);
      expect(config.log.file).toBeUndefined();
    }
    const { config } = ok(`${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\nlog: { file: { enabled: true } }\n`);
    expect(config.log.file).toBe('/var/log/spooky/spooky.log');
  });

  test('YAML anchors and merge keys work, and positions follow them', () => {
    const yaml = `${L}x-backend: &be { id: a, address: "http://x" }
upstream:
  api:
    backends:
      - <<: *be
        weight: 7
`;
    const r = load(yaml);
    // `x-backend` is not a known key: reported at its key, the rest still resolves.
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => [e.line, e.column, e.path])).toEqual([[3, 1, 'x-backend']]);
    const { config } = ok(
      `${L}upstream:\n  api:\n    health_check: &hc { path: /h }\n    backends:\n      - { id: a, address: "http://x", health_check: *hc }\n`,
    );
    expect(config.pools[0]?.backends[0]?.health_check.probes[0]?.path).toBe('/h');
    const bad = errorsOf(`${L}defaults: &d { weight: 0 }\n`);
    expect(bad.some((e) => e.path === 'defaults')).toBe(true);
  });
});

describe('strategy aliases', () => {
  test.each(Object.entries(STRATEGY_ALIASES))('%s -> %s', (alias, canonical) => {
    const { config } = ok(`${L}upstream:\n  api:\n    load_balancing: { type: ${alias} }\n    backends: [{ id: a, address: "http://x" }]\n`);
    expect(config.pools[0]?.load_balancing.type).toBe(canonical);
  });

  test('the alias table matches the documented names', () => {
    expect(canonicalStrategy('maglev')).toBeUndefined();
    expect(canonicalStrategy('rr')).toBe('round-robin');
    expect(canonicalStrategy('least-request')).toBe('least-connections');
    expect(canonicalStrategy('source-ip')).toBe('ip-hash');
    expect(canonicalStrategy('ring_hash')).toBe('consistent-hash');
    expect(canonicalStrategy('peak-ewma')).toBe('latency-aware');
    expect(canonicalStrategy('toString')).toBeUndefined();
  });

  test('sticky-cid maps to consistent-hash by client_ip, with a warning', () => {
    const { config, warnings } = ok(
      `${L}upstream:\n  api:\n    load_balancing: { type: sticky-cid, key: "cookie:s" }\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    expect(config.pools[0]?.load_balancing).toEqual({ type: 'consistent-hash', key: { kind: 'client_ip' }, virtual_nodes: 2000 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ severity: 'warning', line: 5, column: 29, path: 'upstream.api.load_balancing.type' });
    expect(warnings[0]?.message).toContain('QUIC connection id');
    expect(warnings[0]?.message).toContain('client_ip');
  });

  test('sticky-cid with slow_start warns that slow start is ignored, as consistent-hash does', () => {
    const { warnings } = ok(
      `${L}upstream:\n  api:\n    load_balancing: { type: sticky-cid, slow_start: { window_ms: 1000 } }\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    expect(warnings.map((w) => w.path)).toEqual(['upstream.api.load_balancing.type', 'upstream.api.load_balancing.slow_start']);
    expect(warnings[1]?.message).toContain('`slow_start` is not applied by `consistent-hash`');
  });

  test('a hash key on a strategy that does not hash is a warning', () => {
    const { warnings } = ok(
      `${L}upstream:\n  api:\n    load_balancing: { type: rr, key: "cookie:s" }\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    expect(warnings.map((w) => [w.path, w.message])).toEqual([
      ['upstream.api.load_balancing.key', '`key` is only used by consistent-hash; it is ignored for `round-robin`'],
    ]);
  });
});

describe('Rust-compat warnings', () => {
  test('Rust-only keys are ignored with a warning at their position', () => {
    const yaml = `listen:
  tls:
    cert: c
    key: k
    client_auth: { enabled: false }
upstream_tls:
  ca_dir: /etc/ssl/certs
upstream:
  api:
    forwarded_headers: { mode: append }
    tls: { ca_dir: /x }
    backends: [{ id: a, address: "http://x" }]
performance: { worker_threads: 4 }
resilience: {}
observability: { metrics: { enabled: true } }
security: { privileges: { enabled: true } }
secrets: {}
`;
    const { warnings } = ok(yaml);
    expect(warnings.map((w) => [w.line, w.column, w.path])).toEqual([
      [5, 5, 'listen.tls.client_auth'],
      [7, 3, 'upstream_tls.ca_dir'],
      [10, 5, 'upstream.api.forwarded_headers'],
      [11, 12, 'upstream.api.tls.ca_dir'],
      [13, 1, 'performance'],
      [14, 1, 'resilience'],
      [15, 1, 'observability'],
      [16, 1, 'security'],
      [17, 1, 'secrets'],
    ]);
    expect(warnings.every((w) => w.severity === 'warning')).toBe(true);
    expect(warnings[2]?.message).toBe('`forwarded_headers` is ignored: Spooky trusts forwarding headers only from trusted_proxies');
    expect(warnings[4]?.message).toContain('`performance`');
  });

  test('Rust host policy spellings are accepted', () => {
    for (const [written, mode] of [
      ['pass_through', 'pass-through'],
      ['static_upstream', 'upstream'],
      ['upstream-host', 'upstream'],
    ]) {
      const { config } = ok(`${L}upstream:\n  api:\n    host_policy: { mode: ${written} }\n    backends: [{ id: a, address: "http://x" }]\n`);
      expect(config.pools[0]?.host_policy.mode).toBe(mode as 'upstream');
    }
  });

  test('an explicit null means "not set" (the Rust Spooky writes `ca_file: null`); an empty value is still an error', () => {
    const body = (extra: { tls: string; lb: string; route: string; backend: string }) =>
      `${L}upstream_tls: { verify_certificates: true${extra.tls} }\nupstream:\n  api:\n    load_balancing: { type: round-robin${extra.lb} }\n    route: { path_prefix: /api${extra.route} }\n    backends: [{ id: a, address: "127.0.0.1:7001"${extra.backend} }]\n`;
    const withNulls = ok(body({ tls: ', ca_file: null', lb: ', key: ~', route: ', host: NULL, method: null', backend: ', health_check: null' }));
    const without = ok(body({ tls: '', lb: '', route: '', backend: '' }));
    expect(withNulls.warnings).toEqual([]);
    expect(withNulls.config.pools).toEqual(without.config.pools);
    expect(
      errorsOf(`listen:\n  tls: { cert: c.pem, key: }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`).map((e) => [
        e.line,
        e.column,
        e.message,
      ]),
    ).toEqual([[2, 23, 'expected a string, got an empty value']]);
    expect(errorsOf(`${L}upstream:\n  web: null\n  api:\n    backends: [{ id: a, address: null }]\n`).map((e) => [e.line, e.path])).toEqual([
      [4, 'upstream.web'],
      [6, 'upstream.api.backends[0].address'],
    ]);
    // a null never widens a config: a catch-all route, a header condition that matches all, defaults for "off"
    expect(errorsOf(`${L}admin: ~\nupstream:\n  api:\n    route: ~\n    backends: [{ id: a, address: "http://x" }]\n`).map((e) => e.path)).toEqual([
      'admin',
      'upstream.api.route',
    ]);
    expect(
      errorsOf(
        `${L}upstream:\n  api:\n    route: { path_prefix: /admin/, headers: { x-internal-token: ~ } }\n    backends: [{ id: a, address: "http://x" }]\n`,
      ).length,
    ).toBeGreaterThan(0);
  });

  test('a null is "not set" only where the Rust Spooky has that field: a user-named entry is never dropped for its name', () => {
    // In route lists, at pool level, and in a pool's tls, the Rust fields may be null.
    const { config } = ok(
      `${L}upstream:\n  api:\n    route: [{ path_prefix: /a, host: ~ }, { path_prefix: /b, method: null }]\n    health_check: null\n    tls: { ca_file: null }\n    backends: [{ id: a, address: "http://x", health_check: ~ }]\n`,
    );
    expect(config.pools[0]?.routes.map((r) => r.path_prefix)).toEqual(['/a', '/b']);
    // The top-level fallback policy and a host policy's host are optional in the Rust Spooky too.
    ok(
      `${L}load_balancing: null\nupstream:\n  api:\n    host_policy: { mode: pass-through, host: null }\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    // A tag named `host`, a pool named `tls`: user-chosen names, so the null is an error as anywhere else.
    expect(
      errorsOf(`${L}upstream:\n  api:\n    route: { path_prefix: /a, tags: { host: ~ } }\n    backends: [{ id: a, address: "http://x" }]\n`).map(
        (e) => e.path,
      ),
    ).toEqual(['upstream.api.route.tags.host']);
    expect(errorsOf(`${L}upstream:\n  tls: ~\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`).map((e) => e.path)).toEqual([
      'upstream.tls',
    ]);
    // A Rust field name at a place where the Rust Spooky does not have it (the probe's Host header).
    expect(
      errorsOf(`${L}upstream:\n  api:\n    health_check: { path: /h, host: ~ }\n    backends: [{ id: a, address: "http://x" }]\n`).map((e) => e.path),
    ).toEqual(['upstream.api.health_check.host']);
  });

  test("`hash_on` (a Rust sample's spelling) is read as `key` with a warning; both together are an error", () => {
    const { config, warnings } = ok(
      `${L}upstream:\n  api:\n    load_balancing: { type: ch, hash_on: "header:x-user-id" }\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    expect(config.pools[0]?.load_balancing).toEqual({ type: 'consistent-hash', key: { kind: 'header', name: 'x-user-id' }, virtual_nodes: 2000 });
    expect(warnings.map((w) => [w.line, w.column, w.path])).toEqual([[5, 33, 'upstream.api.load_balancing.hash_on']]);
    const both = errorsOf(
      `${L}upstream:\n  api:\n    load_balancing: { type: ch, key: path, hash_on: path }\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    expect(both.map((e) => [e.path, e.message])).toEqual([
      ['upstream.api.load_balancing.hash_on', '`hash_on` and `key` are both set; keep `key` only'],
    ]);
  });

  test('an error about a secret describes its kind, never its value (errors reach logs, /status and webhooks)', () => {
    const errors = errorsOf(
      `${L}admin: { token: 987654321999 }\ntracing: { headers: { x-api-key: 55555555 } }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    expect(errors.map((e) => [e.path, e.message])).toEqual([
      ['admin.token', 'expected a string, got a number (not shown: it may be a secret)'],
      ['tracing.headers.x-api-key', 'expected a string, got a number (not shown: it may be a secret)'],
    ]);
    expect(JSON.stringify(errors)).not.toContain('987654321999');
    expect(JSON.stringify(errors)).not.toContain('55555555');
  });

  test('localhost (bound to 127.0.0.1 by Bun) overlaps 127.0.0.1 only, so localhost and ::1 may share a port', () => {
    const two = (a: string, b: string) =>
      `listeners:\n  - { address: ${a}, port: 8443, tls: { cert: c, key: k } }\n  - { address: "${b}", port: 8443, tls: { cert: c, key: k } }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`;
    expect(load(two('localhost', '::1')).ok).toBe(true);
    expect(load(two('localhost', '127.0.0.2')).ok).toBe(true);
    expect(load(two('localhost', '127.0.0.1')).ok).toBe(false);
  });

  test('an admin port a traffic listener uses is a warning (a command-line port may move one; binding refuses it otherwise)', () => {
    const { warnings } = ok(
      `listen: { address: 127.0.0.1, port: 8443, tls: { cert: c, key: k } }\nadmin: { address: 127.0.0.1, port: 8443 }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    expect(warnings.map((w) => [w.line, w.column, w.path])).toEqual([[2, 36, 'admin.port']]);
    expect(warnings[0]?.message).toContain('the admin listener cannot use port 8443: the traffic listener at line 1 uses it');
  });

  test('an admin listener beyond loopback without a token is a warning', () => {
    const { warnings } = ok(`${L}admin: { address: 0.0.0.0 }\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`);
    expect(warnings.map((w) => [w.line, w.column, w.path])).toEqual([[3, 19, 'admin.address']]);
  });
});

describe('loadConfigFile', () => {
  test('resolves paths against the file folder and names the file in issues', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-config-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, MINIMAL_RUST);
    const r = await loadConfigFile(good);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.config.listeners[0]?.certificates[0]?.cert).toBe(join(dir, 'certs/cert.pem'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, MINIMAL_RUST.replace('weight: 100', 'weight: -1'));
    const b = await loadConfigFile(bad);
    expect(b.ok).toBe(false);
    if (!b.ok)
      expect(b.errors.map(formatIssue)).toEqual([`${bad}:18:17: error: must be at least 1, got -1 (at upstream.api_pool.backends[0].weight)`]);
  });

  test('bytes that are not UTF-8 are an error at their line and column, never silently replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-config-'));
    const write = (name: string, bytes: number[] | string) => {
      const p = join(dir, name);
      writeFileSync(p, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes));
      return p;
    };
    const cases: [string, number[] | string, string | undefined][] = [
      [
        'latin1.yaml',
        'listen:\n  tls: { cert: c.pem, key: k.pem }\nupstream:\n  caf\xe9:\n    backends: []\n',
        '4:6: error: the file is not valid UTF-8 (byte 0xe9); save it as UTF-8',
      ],
      ['bad-lead.yaml', 'upstream:\n  \xc3\x28pi: {}\n', '2:3: error: the file is not valid UTF-8 (byte 0xc3); save it as UTF-8'],
      ['overlong.yaml', 'a: \xc0\xaf\n', '1:4: error: the file is not valid UTF-8 (byte 0xc0); save it as UTF-8'],
      ['surrogate.yaml', 'a: \xed\xa0\x80\n', '1:4: error: the file is not valid UTF-8 (byte 0xed); save it as UTF-8'],
      ['cut.yaml', 'a: \xe2\x82', '1:4: error: the file is not valid UTF-8 (byte 0xe2); save it as UTF-8'],
      ['utf16.yaml', [0xff, 0xfe, 0x6c, 0x00], '1:1: error: the file is UTF-16; save it as UTF-8'],
      ['bom-and-euro.yaml', `\xef\xbb\xbf${MINIMAL_RUST.replace('id: "backend1"', 'id: "\xe2\x82\xac1"')}`, undefined],
    ];
    for (const [name, bytes, want] of cases) {
      const path = write(name, bytes);
      const r = await loadConfigFile(path);
      if (want === undefined) {
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.config.pools[0]?.backends[0]?.id).toBe('\u20ac1');
      } else {
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.errors.map(formatIssue)).toEqual([`${path}:${want}`]);
      }
    }
  });

  test('a missing file is one error', async () => {
    const r = await loadConfigFile('/nonexistent/spooky.yaml');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]?.message).toContain('cannot read the config file');
    }
  });
});

describe('JSON Schema', () => {
  type JsonObj = Record<string, unknown>;
  const isObj = (v: unknown): v is JsonObj => v !== null && typeof v === 'object' && !Array.isArray(v);

  /** Every `properties` entry in the schema, with its path. */
  function properties(node: unknown, path: string, out: Array<[string, JsonObj]>): Array<[string, JsonObj]> {
    if (Array.isArray(node)) {
      for (const n of node) properties(n, path, out);
    } else if (isObj(node)) {
      if (isObj(node.properties)) {
        for (const [k, v] of Object.entries(node.properties)) {
          if (isObj(v)) out.push([`${path}.${k}`, v]);
          properties(v, `${path}.${k}`, out);
        }
      }
      for (const [k, v] of Object.entries(node)) if (k !== 'properties') properties(v, path, out);
    }
    return out;
  }

  const schema = configJsonSchema();
  const props = properties(schema, '', []);

  test('is draft-07, strict, and describes every field', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toBeUndefined();
    expect(schema.anyOf).toEqual([{ required: ['upstream'] }, { required: ['kubernetes'] }]);
    expect(props.length).toBeGreaterThan(60);
    const undocumented = props.filter(([, p]) => typeof p.description !== 'string' || p.description.length < 10).map(([k]) => k);
    expect(undocumented).toEqual([]);
  });

  test('defaults are annotated', () => {
    const port = props.find(([k]) => k === '.listen.port')?.[1];
    expect(port?.default).toBe(9889);
    const rust = props.find(([k]) => k === '.performance')?.[1];
    expect(rust?.deprecated).toBe(true);
  });

  test('accepts null where the loader does (the Rust samples write `ca_file: null`), and nowhere else', () => {
    /** Whether a schema node accepts JSON null (enough of draft-07 for these nodes). */
    const acceptsNull = (n: unknown): boolean =>
      isObj(n) && ((Array.isArray(n.anyOf) && n.anyOf.some(acceptsNull)) || n.type === 'null' || (Array.isArray(n.type) && n.type.includes('null')));
    const nullable = props.filter(([, p]) => acceptsNull(p)).map(([k]) => k);
    expect([...new Set(nullable)].sort()).toEqual(
      [
        '.load_balancing',
        '.load_balancing.key',
        '.upstream_tls.ca_file',
        '.upstream_tls.ca_dir',
        '.upstream_tls.client_certificate',
        '.upstream_tls.client_key',
        '.upstream.tls',
        '.upstream.load_balancing',
        '.upstream.health_check',
        '.upstream.tls.ca_file',
        '.upstream.tls.ca_dir',
        '.upstream.tls.client_certificate',
        '.upstream.tls.client_key',
        '.upstream.load_balancing.key',
        '.upstream.route.host',
        '.upstream.route.path_prefix',
        '.upstream.route.method',
        '.upstream.backends.health_check',
        '.upstream.host_policy.host',
      ].sort(),
    );
    const yaml = `listen: { port: 9889, tls: { cert: c.pem, key: k.pem } }\nupstream_tls: { ca_file: null }\nupstream:\n  app:\n    backends: [{ id: a, address: "http://127.0.0.1:8081" }]\n`;
    expect(loadConfigText(yaml, 'x.yaml', '/tmp').ok).toBe(true);
  });

  test('the README documents every config key', () => {
    const reference = readFileSync(resolve(import.meta.dir, '../../README.md'), 'utf8');
    const keys = new Set(props.map(([k]) => k.split('.').at(-1) ?? ''));
    const missing = [...keys].filter((k) => !reference.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});

describe('value parsers', () => {
  test('edit distance and suggestions', () => {
    expect(editDistance('adress', 'address')).toBe(1);
    expect(editDistance('wieght', 'weight')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(suggest('pathPrefix', ['path_prefix', 'path', 'host'])).toBe('path_prefix');
    expect(suggest('zzz', ['path_prefix', 'path', 'host'])).toBeUndefined();
  });

  test.each([
    ['http://a', true],
    ['https://a:1', true],
    ['h2c://a:65535', true],
    ['a:0', false],
    ['http://', false],
    ['http://a b', false],
    ['http://user@a', false],
    ['http://a?x=1', false],
    ['[::1]:80', true],
    ['1.2.3.4', true],
  ])('address %s valid=%p', (addr, valid) => {
    expect(parseBackendAddress(addr).ok).toBe(valid);
  });

  test.each([
    ['example.com', true],
    ['*.example.com', true],
    ['*', false],
    ['*example.com', false],
    ['a.*.com', false],
    ['*.*.com', false],
    ['[::1]', true],
    ['10.0.0.1', true],
    ['exa mple.com', false],
  ])('host pattern %s valid=%p', (h, valid) => {
    expect(parseHostPattern(h).ok).toBe(valid);
  });

  test.each([
    [200, [200, 200]],
    ['200', [200, 200]],
    ['200-299', [200, 299]],
    ['200 - 399', [200, 399]],
    ['3xx', [300, 399]],
    ['99', null],
    ['600', null],
    ['300-200', null],
    ['abc', null],
  ] as const)('status %p -> %p', (input, want) => {
    const r = parseStatusRange(input);
    expect(r.ok ? r.value : null).toEqual(want === null ? null : [...want]);
  });
});

describe('timeouts and retries', () => {
  test('without a retries section only connect failures are retried, as before', () => {
    const { config } = ok(`${L}upstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`);
    const pool = config.pools[0];
    expect(pool?.retries).toEqual({
      configured: false,
      attempts: 3,
      per_try_timeout_ms: 0,
      on: ['connect_failure'],
      statuses: [],
      backoff: { base_ms: 0, cap_ms: 0, jitter: true },
      budget: null,
      buffer_body_bytes: 0,
    });
    expect(pool?.timeouts).toEqual({ connect_ms: 5000, response_header_ms: 60000, idle_ms: 0, request_ms: 0 });
  });

  test('an empty retries section gives the documented defaults', () => {
    const { config } = ok(`${L}retries: {}\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`);
    expect(config.pools[0]?.retries).toEqual({
      configured: true,
      attempts: 3,
      per_try_timeout_ms: 0,
      on: ['connect_failure', 'reset', 'timeout'],
      statuses: [502, 503, 504],
      backoff: { base_ms: 25, cap_ms: 250, jitter: true },
      budget: { ratio: 0.2, min_per_second: 10 },
      buffer_body_bytes: 65536,
    });
  });

  test('pool fields override top-level fields one by one', () => {
    const { config } = ok(
      `${L}timeouts: { connect_ms: 100, idle_ms: 2000 }\nretries: { attempts: 2, statuses: [503], backoff: { base_ms: 5 } }\nupstream:\n  api:\n    timeouts: { request_ms: 9000, idle_ms: 50 }\n    retries: { attempts: 4, backoff: { cap_ms: 40 }, budget: { ratio: 0.5 } }\n    backends: [{ id: a, address: "http://x" }]\n  other:\n    route: { path_prefix: /o }\n    backends: [{ id: b, address: "http://y" }]\n`,
    );
    const [api, other] = config.pools;
    expect(api?.timeouts).toEqual({ connect_ms: 100, response_header_ms: 60000, idle_ms: 50, request_ms: 9000 });
    expect(api?.retries.attempts).toBe(4);
    expect(api?.retries.statuses).toEqual([503]);
    expect(api?.retries.backoff).toEqual({ base_ms: 5, cap_ms: 40, jitter: true });
    expect(api?.retries.budget).toEqual({ ratio: 0.5, min_per_second: 10 });
    expect(other?.timeouts).toEqual({ connect_ms: 100, response_header_ms: 60000, idle_ms: 2000, request_ms: 0 });
    expect(other?.retries.attempts).toBe(2);
  });

  test.each([
    ['retries: { attempts: 0 }', 'attempts'],
    ['retries: { statuses: [404] }', 'statuses'],
    ['retries: { on: [sometimes] }', 'on'],
    ['timeouts: { idle_ms: -1 }', 'idle_ms'],
  ])('%s is refused', (line, key) => {
    const errors = errorsOf(`${L}${line}\nupstream:\n  api:\n    backends: [{ id: a, address: "http://x" }]\n`);
    expect(errors.some((i) => i.path.includes(key))).toBe(true);
  });
});

describe('route limits', () => {
  test('allowed_methods adds HEAD to GET; max_request_body_bytes is kept per route', () => {
    const { config } = ok(
      `${L}upstream:\n  api:\n    route: { path_prefix: /api, allowed_methods: [get, POST], max_request_body_bytes: 10 }\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    const route = config.pools[0]?.routes[0];
    expect(route?.allowed_methods?.sort()).toEqual(['GET', 'HEAD', 'POST']);
    expect(route?.max_request_body_bytes).toBe(10);
  });
});

describe('rate limits', () => {
  test('rules resolve with defaults and a unique id', () => {
    const { config } = ok(
      `${L}upstream:\n  api:\n    route:\n      path_prefix: /api\n      rate_limits:\n        - { key: client_ip, rate: 2.5 }\n        - { name: keys, key: "header:X-Api-Key", rate: 100, burst: 200, max_keys: 5000 }\n    backends: [{ id: a, address: "http://x" }]\n`,
    );
    expect(config.pools[0]?.routes[0]?.rate_limits).toEqual([
      { id: 'api#0:0:client_ip:2.5/3', name: 'client_ip', key: { kind: 'client_ip' }, rate: 2.5, burst: 3, max_keys: 100000, store: 'local' },
      { id: 'api#0:1:keys:100/200', name: 'keys', key: { kind: 'header', name: 'x-api-key' }, rate: 100, burst: 200, max_keys: 5000, store: 'local' },
    ]);
  });

  test.each([['{ key: ip, rate: 1 }'], ['{ key: client_ip, rate: 0 }'], ['{ key: client_ip }'], ['{ key: "header:bad name", rate: 1 }']])(
    '%s is refused',
    (rule) => {
      const errors = errorsOf(`${L}upstream:\n  api:\n    route: { rate_limits: [${rule}] }\n    backends: [{ id: a, address: "http://x" }]\n`);
      expect(errors.some((e) => e.path.includes('rate_limits'))).toBe(true);
    },
  );
});
