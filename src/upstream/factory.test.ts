import { afterAll, beforeAll, describe, expect, spyOn, test } from 'bun:test';
import { join } from 'node:path';
import { makeTempCertificate, type TestCertificate } from '../../test/support/certs.ts';
import { type H2Server, startH2Server } from '../../test/support/h2-server.ts';
import type { BackendConfig, BackendProtocol, UpstreamTlsConfig } from '../config/types.ts';
import { SpookyError } from '../errors.ts';
import { createTransport, originFor } from './factory.ts';
import { Http1Transport } from './http1.ts';
import { Http2Transport } from './http2.ts';
import type { Transport, UpstreamRequest } from './transport.ts';

function backend(protocol: BackendProtocol, url: string): BackendConfig {
  return {
    id: 'b1',
    address: url,
    url: new URL(url),
    protocol,
    weight: 100,
    health_check: {
      probes: [],
      failure_threshold: 3,
      success_threshold: 2,
      cooldown_ms: 5000,
      initial: 'healthy',
      passive_failure_threshold: 5,
    },
  };
}

const TLS: UpstreamTlsConfig = { verify_certificates: true, strict_sni: true };

function req(host = 'factory.test'): UpstreamRequest {
  return { method: 'GET', target: '/echo', headers: [['host', host]], body: null, signal: new AbortController().signal };
}

const OPTS = { connectTimeoutMs: 2000, responseHeaderTimeoutMs: 5000 };

/** Sends one GET and returns status and body text. */
async function roundtrip(t: Transport): Promise<{ status: number; body: string }> {
  const res = await t.request(req(), OPTS);
  return { status: res.status, body: res.body ? await new Response(res.body).text() : '' };
}

describe('originFor', () => {
  test.each([
    ['h2', 'https://backend.internal:8443', TLS, { host: 'backend.internal', port: 8443, serverName: 'backend.internal' }],
    ['h2', 'https://backend.internal', TLS, { host: 'backend.internal', port: 443, serverName: 'backend.internal' }],
    ['h2', 'https://10.0.0.5:8443', TLS, { host: '10.0.0.5', port: 8443, serverName: undefined }],
    ['h2', 'https://[::1]:8443', TLS, { host: '::1', port: 8443, serverName: undefined }],
    ['h2', 'https://backend.internal:8443', { ...TLS, strict_sni: false }, { host: 'backend.internal', port: 8443, serverName: undefined }],
    ['h2c', 'http://backend.internal', TLS, { host: 'backend.internal', port: 80, serverName: undefined }],
    ['http1', 'http://[::1]:8080', TLS, { host: '::1', port: 8080, serverName: undefined }],
  ] as const)('%s %s', (protocol, url, tls, want) => {
    const o = originFor(backend(protocol, url), tls);
    expect(o.host).toBe(want.host);
    expect(o.port).toBe(want.port);
    expect(o.tls?.serverName).toBe(want.serverName);
    expect(o.tls === undefined).toBe(protocol !== 'h2');
  });

  test('verify_certificates maps to rejectUnauthorized; ca_file is read; a missing one is config_invalid', async () => {
    const cert = await makeTempCertificate();
    const o = originFor(backend('h2', 'https://127.0.0.1:1'), { verify_certificates: false, strict_sni: true, ca_file: cert.cert });
    expect(o.tls?.rejectUnauthorized).toBe(false);
    expect(o.tls?.ca).toBe(cert.certPem);
    let err: unknown;
    try {
      originFor(backend('h2', 'https://127.0.0.1:1'), { ...TLS, ca_file: join(cert.dir, 'missing.pem') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpookyError);
    expect((err as SpookyError).code).toBe('config_invalid');
  });
});

describe('createTransport against real backends', () => {
  let cert: TestCertificate;
  let h2c: H2Server;
  let h2: H2Server;
  let h1tls: H2Server;
  let plain: ReturnType<typeof Bun.serve>;
  beforeAll(async () => {
    cert = await makeTempCertificate();
    [h2c, h2, h1tls] = await Promise.all([
      startH2Server({ mode: 'h2c' }),
      startH2Server({ mode: 'h2', certPath: cert.cert, keyPath: cert.key }),
      startH2Server({ mode: 'h1-tls', certPath: cert.cert, keyPath: cert.key }),
    ]);
    plain = Bun.serve({ hostname: '127.0.0.1', port: 0, development: false, fetch: (r) => new Response(`h1 ${r.headers.get('host')}`) });
  });
  afterAll(async () => {
    await Promise.all([h2c.stop(), h2.stop(), h1tls.stop(), plain.stop(true)]);
  });

  test('http1 -> Http1Transport over plain TCP', async () => {
    const t = createTransport(backend('http1', `http://127.0.0.1:${plain.port}`), TLS);
    expect(t).toBeInstanceOf(Http1Transport);
    expect(await roundtrip(t)).toEqual({ status: 200, body: 'h1 factory.test' });
    t.close();
  });

  test('h2c -> Http2Transport in cleartext', async () => {
    const t = createTransport(backend('h2c', `http://127.0.0.1:${h2c.port}`), TLS);
    expect(t).toBeInstanceOf(Http2Transport);
    const { status, body } = await roundtrip(t);
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ scheme: 'http', authority: 'factory.test' });
    t.close();
  });

  test('h2 with ca_file and verification -> h2 over TLS', async () => {
    const t = createTransport(backend('h2', `https://127.0.0.1:${h2.port}`), { ...TLS, ca_file: cert.cert });
    const { status, body } = await roundtrip(t);
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ scheme: 'https' });
    expect((t as Http2Transport).protocol).toBe('h2');
    t.close();
  });

  test('h2 with verification and no CA -> upstream_connect_failed', async () => {
    const t = createTransport(backend('h2', `https://127.0.0.1:${h2.port}`), TLS);
    let err: unknown;
    try {
      await t.request(req(), OPTS);
    } catch (e) {
      err = e;
    }
    expect((err as SpookyError).code).toBe('upstream_connect_failed');
    t.close();
  });

  test('h2 with verify_certificates: false works and logs nothing', async () => {
    const spies = [spyOn(console, 'warn'), spyOn(console, 'error'), spyOn(console, 'log'), spyOn(process, 'emitWarning')];
    try {
      const t = createTransport(backend('h2', `https://127.0.0.1:${h2.port}`), { ...TLS, verify_certificates: false });
      expect((await roundtrip(t)).status).toBe(200);
      t.close();
      for (const s of spies) expect(s).not.toHaveBeenCalled();
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });

  test('h2 to an HTTPS backend that only speaks HTTP/1.1 -> falls back', async () => {
    const t = createTransport(backend('h2', `https://127.0.0.1:${h1tls.port}`), { ...TLS, ca_file: cert.cert });
    for (let i = 0; i < 2; i++) {
      const { status, body } = await roundtrip(t);
      expect(status).toBe(200);
      expect(JSON.parse(body)).toMatchObject({ version: '1.1', authority: 'factory.test' });
    }
    expect((t as Http2Transport).protocol).toBe('http/1.1');
    t.close();
  });
});
