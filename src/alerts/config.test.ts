import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { formatIssue, loadConfigText } from '../config/load.ts';
import { redactConfig } from '../config/redact.ts';
import { AlertMetrics, ALERT_METRIC_NAMES } from './metrics.ts';

const BASE = `listen: { tls: { cert: c.pem, key: k.pem } }
upstream:
  api:
    backends: [{ id: a, address: "http://127.0.0.1:1" }]
`;

function load(alerts: string) {
  return loadConfigText(`${BASE}alerts:\n${alerts}`, 'spooky.yaml', '/srv');
}

describe('alerts config', () => {
  test('no section: no alerts', () => {
    const r = loadConfigText(BASE, 'spooky.yaml', '/srv');
    expect(r.ok && r.config.alerts).toBe(undefined);
  });

  test('defaults', () => {
    const r = load('  webhooks: [{ url: "https://hooks.example/x" }]\n');
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    expect(r.config.alerts).toEqual({
      webhooks: [
        {
          name: 'webhook0',
          url: 'https://hooks.example/x',
          kinds: ['backend_unhealthy', 'pool_unavailable', 'route_error_rate', 'route_latency_p99', 'certificate_expiring', 'reload_failed'],
          send_resolved: true,
          headers: {},
          timeout_ms: 5000,
        },
      ],
      retries: { attempts: 5, base_ms: 500, cap_ms: 30000 },
      min_interval_ms: 60000,
      queue_size: 1000,
      rules: {
        backend_unhealthy: true,
        pool_unavailable: true,
        reload_failed: true,
        certificate_expiring: { days: 14, check_interval_ms: 21600000 },
      },
    });
  });

  test('every field set', () => {
    const r = load(`  instance: edge-1
  min_interval_ms: 0
  queue_size: 5
  retries: { attempts: 2, base_ms: 10, cap_ms: 20 }
  webhooks:
    - { name: ops, url: "http://127.0.0.1:9/h", kinds: [reload_failed], send_resolved: false, headers: { Authorization: "Bearer x" }, timeout_ms: 100 }
  rules:
    backend_unhealthy: false
    certificate_expiring: { enabled: false }
    route_error_rate: { threshold: 0.2, window_ms: 1000, min_requests: 3 }
    route_latency_p99: { threshold_ms: 250 }
`);
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    const a = r.config.alerts;
    expect(a?.instance).toBe('edge-1');
    expect(a?.webhooks[0]).toEqual({
      name: 'ops',
      url: 'http://127.0.0.1:9/h',
      kinds: ['reload_failed'],
      send_resolved: false,
      headers: { authorization: 'Bearer x' },
      timeout_ms: 100,
    });
    expect(a?.rules).toEqual({
      backend_unhealthy: false,
      pool_unavailable: true,
      reload_failed: true,
      route_error_rate: { threshold: 0.2, window_ms: 1000, min_requests: 3 },
      route_latency_p99: { threshold_ms: 250, window_ms: 60000, min_requests: 20 },
    });
  });

  test.each([
    ['webhooks: [{ url: "ftp://x/y" }]', 'unsupported scheme "ftp://"'],
    ['webhooks: [{ url: "not a url" }]', 'not a URL'],
    ['webhooks: [{ url: "https://u:p@x/y" }]', 'credentials in the URL'],
    ['webhooks: [{ url: "https://x/", kinds: [backend_down] }]', 'backend_down'],
    ['webhooks: [{ url: "https://x/", headers: { "bad name": "v" } }]', 'bad name'],
    ['retries: { base_ms: 100, cap_ms: 50 }', '`cap_ms` must be at least `base_ms`'],
    ['rules: { route_error_rate: { threshold: 1.5 } }', 'threshold'],
    ['rules: { route_latncy_p99: {} }', 'did you mean `route_latency_p99`'],
  ])('refused: %s', (yamlLine, message) => {
    const yaml = `  ${yamlLine}\n`;
    const r = load(yaml);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.errors.map(formatIssue).join('\n');
    expect(text).toContain(message);
    expect(text).toMatch(/spooky\.yaml:\d+:\d+: error:/);
  });

  test('/config redacts webhook headers and the secret part of webhook URLs', () => {
    const r = load(`  webhooks:
    - { url: "https://hooks.slack.example/services/T0/B0/s3cret-path", headers: { x-team: team-secret } }
    - { url: "http://127.0.0.1:9000/" }
`);
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    const out = redactConfig(r.config) as { alerts: { webhooks: { url: string; headers: Record<string, string> }[] } };
    expect(JSON.stringify(out)).not.toContain('secret');
    expect(out.alerts.webhooks[0]).toMatchObject({ url: 'https://hooks.slack.example/[redacted]', headers: { 'x-team': '[redacted]' } });
    expect(out.alerts.webhooks[1]?.url).toBe('http://127.0.0.1:9000/');
    expect(r.config.alerts?.webhooks[0]?.headers['x-team']).toBe('team-secret'); // the config itself is untouched
  });
});

test('the README documents every alert metric', async () => {
  const registry = new Registry();
  new AlertMetrics(registry, () => []);
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
  expect(names.sort()).toEqual([...ALERT_METRIC_NAMES].sort());
  const readme = readFileSync(resolve(import.meta.dir, '../../README.md'), 'utf8');
  expect(names.filter((n) => !readme.includes(`\`${n}\``))).toEqual([]);
});
