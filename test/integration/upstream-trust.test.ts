/**
 * Which CAs verify an `https://` backend: the system roots by default; with `ca_file`, that bundle instead of
 * them (as nginx's `proxy_ssl_trusted_certificate` and Envoy's `trusted_ca`). The backend's self-signed
 * certificate is made a system root for Spooky through NODE_EXTRA_CA_CERTS.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { makeTempCertificate, testCertificate } from '../support/certs.ts';
import { type Backend, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

let backend: Backend;
const started: SpookyProcess[] = [];
beforeAll(async () => {
  backend = await startBackend('b', { protocol: 'h2' });
});
afterAll(async () => {
  for (const s of started) await s.stop();
  await backend?.stop();
});

/** The status a request through a Spooky with the pool TLS settings `tls` gets. */
async function statusWith(tls: string): Promise<number> {
  const { cert } = await testCertificate();
  const spooky = await startSpooky(`upstream:\n  app:\n${tls}    backends: [{ id: b, address: "${backend.address}" }]\n`, {
    env: { NODE_EXTRA_CA_CERTS: cert },
  });
  started.push(spooky);
  const res = await request(`${spooky.url}/`, { protocol: 'http1.1' });
  await res.arrayBuffer();
  return res.status;
}

test('without ca_file the system roots verify the backend', async () => {
  expect(await statusWith('')).toBe(200);
}, 30_000);

test('ca_file replaces the system roots: a bundle of another CA refuses the backend (502)', async () => {
  const other = await makeTempCertificate({ name: 'other-ca' });
  expect(await statusWith(`    tls: { ca_file: "${other.cert}" }\n`)).toBe(502);
}, 30_000);

test("ca_file naming the backend's CA verifies it", async () => {
  const { cert } = await testCertificate();
  expect(await statusWith(`    tls: { ca_file: "${cert}" }\n`)).toBe(200);
}, 30_000);
