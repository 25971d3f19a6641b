/**
 * What a listener swap costs new TCP connections (`bun bench/listener-swap.ts [--swaps N] [--loops N]`): a
 * bare Bun TLS server on 127.0.0.1 is replaced N times (a new server bound on the same port with
 * `SO_REUSEPORT`, then the old one stopped, as Spooky does when a reload changes a listener's certificates)
 * while N loops open TLS connections back to back. Prints the connections completed and the ones reset, with
 * the kernel's `net.ipv4.tcp_migrate_req` (0: the connections queued on the closed socket are reset; 1: they
 * move to the new socket). Run it once with each setting (`sysctl -w net.ipv4.tcp_migrate_req=1`, as root).
 */
import { cpus } from 'node:os';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { tcpMigrateReq } from '../src/runtime/listeners.ts';
import { testCertificate } from '../test/support/certs.ts';

const { values } = parseArgs({ options: { swaps: { type: 'string', default: '20' }, loops: { type: 'string', default: '8' } } });
const swaps = Number(values.swaps);
const cert = await testCertificate();
const serve = (port: number) =>
  Bun.serve({ hostname: '127.0.0.1', port, reusePort: true, tls: { cert: cert.certPem, key: cert.keyPem }, fetch: () => new Response('ok') });

let server = serve(0);
const port = server.port as number;
let completed = 0;
let reset = 0;
let running = true;
const connectOnce = () =>
  new Promise<void>((done) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'swap.example' }, () => {
      completed++;
      s.destroy();
      done();
    });
    s.on('error', () => {
      reset++;
      done();
    });
  });
const loops = Array.from({ length: Number(values.loops) }, async () => {
  while (running) await connectOnce();
});
for (let i = 0; i < swaps; i++) {
  await Bun.sleep(30);
  const next = serve(port);
  void server.stop(false);
  server = next;
}
await Bun.sleep(200);
running = false;
await Promise.all(loops);
server.stop(true);
console.log(
  JSON.stringify({
    machine: `${cpus()[0]?.model ?? 'unknown'} x${cpus().length}`,
    bun: Bun.version,
    tcp_migrate_req: tcpMigrateReq(),
    swaps,
    completed,
    reset,
  }),
);
