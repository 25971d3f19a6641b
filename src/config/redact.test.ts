import { expect, test } from 'bun:test';
import { formatIssue, loadConfigText } from './load.ts';
import { isSecretName, REDACTED, redactConfig } from './redact.ts';

test('the effective config is plain JSON with the admin token and credential-like header values redacted', () => {
  const r = loadConfigText(
    `listen: { tls: { cert: c.pem, key: k.pem } }
admin: { token: very-secret }
upstream:
  api:
    route:
      path_prefix: /api
      headers: { x-api-key: { equals: key-123 }, x-canary: "1", authorization: { regex: "^Bearer abc" } }
      query: { access_token: { equals: tok-1 }, debug: "1" }
    health_check: { path: /hc, headers: { Authorization: "Bearer probe-secret", Cookie: "s=1", x-trace: yes } }
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`,
    'spooky.yaml',
    '/srv',
  );
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  const out = redactConfig(r.config);
  const text = JSON.stringify(out);
  for (const secret of ['very-secret', 'key-123', 'probe-secret', 's=1', 'tok-1', 'Bearer abc']) expect(text).not.toContain(secret);
  expect(JSON.parse(text)).toEqual(out); // plain data
  const pool = (
    out.pools as {
      routes: { headers: unknown[]; query: unknown[] }[];
      backends: { url: string; health_check: { probes: { headers: Record<string, string> }[] } }[];
    }[]
  )[0];
  expect(pool?.routes[0]?.headers).toEqual([
    { name: 'x-api-key', kind: 'equals', value: REDACTED },
    { name: 'x-canary', kind: 'equals', value: '1' },
    { name: 'authorization', kind: 'regex', regex: REDACTED },
  ]);
  expect(pool?.routes[0]?.query).toContainEqual({ name: 'debug', kind: 'equals', value: '1' });
  expect(pool?.backends[0]?.url).toBe('http://127.0.0.1:1/');
  expect(pool?.backends[0]?.health_check.probes[0]?.headers).toEqual({ authorization: REDACTED, cookie: REDACTED, 'x-trace': 'yes' });
  expect((out.admin as { token: string }).token).toBe(REDACTED);
  // the running config is untouched
  expect(r.config.admin.token).toBe('very-secret');
});

test.each([
  ['authorization', true],
  ['Proxy-Authorization', true],
  ['x-api-key', true],
  ['X-Auth-Token', true],
  ['session_id', true],
  ['x-canary', false],
  ['accept', false],
])('%s secret=%p', (name, secret) => {
  expect(isSecretName(name)).toBe(secret);
});

test('tracing.endpoint: credentials are refused; a query is shown as [redacted] in /config', () => {
  const base = `listen: { tls: { cert: c.pem, key: k.pem } }
upstream:
  api:
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`;
  const withCreds = loadConfigText(`${base}tracing: { endpoint: "https://user:pw@otel.example/v1/traces" }\n`, 'spooky.yaml', '/srv');
  expect(withCreds.ok).toBe(false);
  if (!withCreds.ok) expect(withCreds.errors.map(formatIssue).join('\n')).toContain('credentials in the URL are not allowed');
  const withKey = loadConfigText(`${base}tracing: { endpoint: "https://otel.example/v1/traces?api_key=k-999" }\n`, 'spooky.yaml', '/srv');
  if (!withKey.ok) throw new Error(withKey.errors.map(formatIssue).join('\n'));
  const out = redactConfig(withKey.config) as { tracing: { endpoint: string } };
  expect(out.tracing.endpoint).toBe(`https://otel.example/v1/traces?${REDACTED}`);
  expect(JSON.stringify(out)).not.toContain('k-999');
});
