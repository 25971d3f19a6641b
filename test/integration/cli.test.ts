/**
 * The command line as an operator uses it: validate (exit codes, every error with file:line:col), schema,
 * --version, --help, usage errors, start-up failures, SNI certificate choice, and the demo mode of `npm start`.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { reservePort } from '../../src/listener/listener.ts';
import { exampleWithFiles, makeTempCertificate, testCertificate } from '../support/certs.ts';
import { type Backend, Child, eventually, request, type SpookyProcess, startBackend, startSpooky } from '../support/process.ts';

const ROOT = resolve(import.meta.dir, '../..');
const dir = mkdtempSync(join(tmpdir(), 'spooky-cli-'));

function cli(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([process.execPath, 'src/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('spooky hash-password', () => {
  test('prints a hash of the password read on stdin (bcrypt, or argon2id) that checks; an empty one is a usage error', async () => {
    const run = (args: string[], input: string) => {
      const r = Bun.spawnSync([process.execPath, 'src/main.ts', 'hash-password', ...args], { cwd: ROOT, stdin: Buffer.from(input) });
      return { code: r.exitCode, out: r.stdout.toString().trim(), err: r.stderr.toString() };
    };
    const bcrypt = run([], 'correct horse\n');
    expect(bcrypt.code).toBe(0);
    expect(bcrypt.out).toMatch(/^\$2b\$10\$/);
    expect(await Bun.password.verify('correct horse', bcrypt.out)).toBe(true); // the line end is not part of it
    const argon = run(['--algorithm', 'argon2id'], 'x y');
    expect(argon.out).toMatch(/^\$argon2id\$/);
    expect(await Bun.password.verify('x y', argon.out)).toBe(true);
    expect(run([], '').code).toBe(2);
    expect(run(['--algorithm', 'md5'], 'x').code).toBe(2);
  });
});

describe('spooky validate', () => {
  test('every example exits 0 once the certificate files it names exist', async () => {
    for (const name of readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml'))) {
      const r = cli(['validate', '--config', await exampleWithFiles(name)]);
      expect([name, r.code, r.stdout.includes('configuration is valid')]).toEqual([name, 0, true]);
    }
  });

  test('like nginx -t, it reads the files the config names: every unusable one is an error (exit 1)', async () => {
    const { cert, key } = await testCertificate();
    const other = await makeTempCertificate({ name: 'other', client: true });
    const path = file(
      'files.yaml',
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: /nonexistent/cert.pem, key: "${key}" } }
upstream_tls: { ca_file: /nonexistent/ca.pem }
redis: { url: "redis://127.0.0.1:1", password_file: /nonexistent/redis-password }
upstream:
  a:
    route: { path_prefix: /a }
    tls: { client_certificate: "${cert}", client_key: "${other.key}" }
    backends: [{ id: a, address: "https://127.0.0.1:1" }]
  b:
    route: { path_prefix: /b }
    backends: [{ id: b, address: "https://127.0.0.1:2" }]
  plain:
    tls: { client_certificate: /nonexistent/unused.pem, client_key: /nonexistent/unused-key.pem }
    backends: [{ id: c, address: "http://127.0.0.1:3" }]
`,
    );
    const r = cli(['validate', '--config', path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines.some((l) => l.includes('/nonexistent/cert.pem'))).toBe(true);
    expect(lines).toContain(
      `spooky: ${path}: cannot read upstream_tls.ca_file /nonexistent/ca.pem: ENOENT: no such file or directory, open '/nonexistent/ca.pem' (pools a, b)`,
    );
    expect(lines).toContain(`spooky: ${path}: upstream_tls.client_key ${other.key} is not the key of client_certificate ${cert} (pool a)`);
    // A pool whose backends are all http:// uses no TLS, so its files are not read (as at start).
    expect(r.stderr).not.toContain('unused');
    expect(lines).toContain(`spooky: ${path}: cannot read redis.password_file /nonexistent/redis-password: ENOENT`);
    expect(lines.at(-1)).toBe(`spooky: ${path}: 4 error(s) in the files it names; not started`);
  });

  test('a broken config exits 1 and prints every error with file:line:col', () => {
    const path = file(
      'broken.yaml',
      `listen:
  port: 8443
  tls: { cert: c.pem, key: k.pem }
upstream:
  api:
    load_balancing: { type: round-robbin }
    backends:
      - id: a
        adress: http://127.0.0.1:1
        weight: 5000
`,
    );
    const r = cli(['validate', '--config', path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path}:6:29: error:`);
    expect(r.stderr).toContain(`${path}:9:9: error: unknown key \`adress\`; did you mean \`address\`?`);
    expect(r.stderr).toContain(`${path}:10:17: error: must be at most 1000, got 5000`);
    expect(r.stderr).toContain('error(s); not started');
  });

  test('warnings and errors are printed together in file order', () => {
    const path = file(
      'mixed.yaml',
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: c.pem, key: k.pem } }\nupstream:\n  a:\n    load_balancing: { type: rr, key: path }\n    backends: [{ id: a, address: "http://x", weight: 0 }]\nperformance: {}\n`,
    );
    const r = cli(['validate', '--config', path]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(
      lines.map((l) =>
        l
          .match(/:(\d+):\d+: (warning|error):/)
          ?.slice(1)
          .join(' '),
      ),
    ).toEqual(['4 warning', '5 error', '6 warning', undefined]);
  });

  test('Rust Spooky keys that are not implemented give warnings, not errors', async () => {
    const { cert, key } = await testCertificate();
    const path = file(
      'rust.yaml',
      `version: 1
listen: { protocol: http3, port: 9889, address: "0.0.0.0", tls: { cert: "${cert}", key: "${key}" } }
upstream:
  pool:
    route: { path_prefix: "/" }
    backends: [{ id: b, address: "127.0.0.1:7001" }]
performance: { worker_threads: 2 }
`,
    );
    const r = cli(['validate', '--config', path]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${path}:7:1: warning:`);
    expect(r.stderr).toContain('performance');
  });
});

describe('other commands', () => {
  test('schema prints a JSON Schema with documented fields', () => {
    const r = cli(['schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, { description?: string }> };
    expect(schema.properties.upstream?.description).toBeTruthy();
    expect(schema.properties.listen).toBeDefined();
  });

  test('--version and --help', () => {
    expect(cli(['--version']).stdout).toMatch(/^spooky \d+\.\d+\.\d+ \(bun 1\.4\.5\)/);
    const help = cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('spooky validate --config FILE');
  });

  test('usage errors exit 2', () => {
    expect(cli(['frobnicate']).code).toBe(2);
    expect(cli(['run']).code).toBe(2);
    expect(cli(['run', '--config', 'x.yaml', '--port', 'abc']).code).toBe(2);
    // an unset shell variable must not silently mean "any free port"
    for (const bad of ['', ' ', '1e3', '0x50', '+80', '80.0', '65536']) expect(cli(['run', '--config', 'x.yaml', '--port', bad]).code).toBe(2);
    expect(cli(['run', '--config', 'x.yaml', '--admin-port', '']).stderr).toContain('--admin-port must be a port number');
    // --address is checked like listen.address, before anything is bound
    const badAddress = cli(['run', '--config', 'examples/single-pool.yaml', '--address', 'not-an-ip']);
    expect(badAddress.code).toBe(2);
    expect(badAddress.stderr).toContain('--address: "not-an-ip" is not an IP address to bind to');
    // ...also before the config is read: a typo in the option is a usage error whatever the file holds
    const withBadConfig = cli(['run', '--config', 'x-missing.yaml', '--address', 'not-an-ip']);
    expect([withBadConfig.code, withBadConfig.stderr.includes('--address')]).toEqual([2, true]);
  });

  test('an unreadable certificate stops start-up with exit 3 and a clear message', () => {
    const path = file(
      'nocert.yaml',
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: /nonexistent/cert.pem, key: /nonexistent/key.pem } }\nupstream:\n  a:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`,
    );
    const r = cli(['run', '--config', path, '--admin-port', '0']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('cannot read certificate /nonexistent/cert.pem');
  });

  test('a log file that cannot be opened stops start-up with exit 3 (it ran with no logs at all)', () => {
    for (const [name, where] of [
      ['log-dir.yaml', `file: "${tmpdir()}"`],
      ['access-dir.yaml', `access_file: "${tmpdir()}"`],
    ] as const) {
      const path = file(
        name,
        `listen: { address: 127.0.0.1, port: 0, tls: { cert: c.pem, key: k.pem } }\nlog: { ${where} }\nupstream:\n  a:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`,
      );
      const r = cli(['run', '--config', path, '--admin-port', '0']);
      expect([r.code, r.stderr.includes(`spooky: cannot start: cannot open log file ${tmpdir()}`)]).toEqual([3, true]);
    }
  });

  test('an unreadable upstream ca_file stops start-up with exit 3 and a clear message, not a stack trace', async () => {
    const { cert, key } = await testCertificate();
    const path = file(
      'noca.yaml',
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${cert}", key: "${key}" } }\nupstream:\n  a:\n    tls: { ca_file: /nonexistent/ca.pem }\n    backends: [{ id: a, address: "https://127.0.0.1:1" }]\n`,
    );
    const r = cli(['run', '--config', path, '--admin-port', '0']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('cannot read upstream_tls.ca_file /nonexistent/ca.pem');
    expect(r.stderr).not.toContain('    at ');
  });
});

describe('ports already in use', () => {
  let backend: Backend;
  let running: SpookyProcess | undefined;
  afterAll(async () => {
    await running?.stop();
    await backend?.stop();
  });

  test('validate warns about an admin port that a traffic listener uses; run refuses it unless a flag moves one', async () => {
    const { cert, key } = await testCertificate();
    const path = file(
      'admin-clash.yaml',
      `listen: { address: 127.0.0.1, port: 8443, tls: { cert: "${cert}", key: "${key}" } }\nadmin: { port: 8443 }\nupstream:\n  a:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`,
    );
    const r = cli(['validate', '--config', path]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${path}:2:16: warning: the admin listener cannot use port 8443: the traffic listener at line 1 uses it`);
    // run: the clash is refused when binding (exit 3), never shared
    const free = await reservePort('127.0.0.1', 0);
    free.release();
    const real = file(
      'admin-clash-real.yaml',
      `listen: { address: 127.0.0.1, port: ${free.port}, tls: { cert: "${cert}", key: "${key}" } }\nadmin: { port: ${free.port} }\nupstream:\n  a:\n    backends: [{ id: a, address: "http://127.0.0.1:1" }]\n`,
    );
    const run = cli(['run', '--config', real]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`cannot listen on admin 127.0.0.1:${free.port}: the port is in use`);
  });

  test('a traffic or admin port held by another Spooky stops start-up with exit 3, never a shared port', async () => {
    backend = await startBackend('ports');
    running = await startSpooky(`upstream:\n  a:\n    backends: [{ id: a, address: "${backend.address}" }]\n`);
    const path = file(
      'second.yaml',
      `listen: { address: 127.0.0.1, port: 0, tls: { cert: "${(await testCertificate()).cert}", key: "${(await testCertificate()).key}" } }\nupstream:\n  a:\n    backends: [{ id: a, address: "${backend.address}" }]\n`,
    );
    const traffic = cli(['run', '--config', path, '--port', String(running.port), '--admin-port', '0']);
    expect(traffic.code).toBe(3);
    expect(traffic.stderr).toContain(`cannot listen on 127.0.0.1:${running.port}: the port is in use`);
    const adminClash = cli(['run', '--config', path, '--admin-port', String(running.adminPort)]);
    expect(adminClash.code).toBe(3);
    expect(adminClash.stderr).toContain(`cannot listen on admin 127.0.0.1:${running.adminPort}: the port is in use`);
    // --port 0 that makes the first listener a second 127.0.0.1 port-0 listener: refused (a reload could not
    // tell the two apart), not started with a leak on every reload
    const twoZero = file(
      'two-zero.yaml',
      `listeners:\n  - { address: 127.0.0.1, port: 8443, tls: { cert: "${(await testCertificate()).cert}", key: "${(await testCertificate()).key}" } }\n  - { address: 127.0.0.1, port: 0, tls: { cert: "${(await testCertificate()).cert}", key: "${(await testCertificate()).key}" } }\nupstream:\n  a:\n    backends: [{ id: a, address: "${backend.address}" }]\n`,
    );
    const clash = cli(['run', '--config', twoZero, '--port', '0', '--admin-port', '0']);
    expect(clash.code).toBe(3);
    expect(clash.stderr).toContain('two listeners are 127.0.0.1:0 (after command-line overrides)');
    // an address no interface of this machine has (TEST-NET-3) is named as such, not as a port in use
    const elsewhere = cli(['run', '--config', path, '--address', '203.0.113.9', '--admin-port', '0']);
    expect(elsewhere.code).toBe(3);
    expect(elsewhere.stderr).toContain('cannot listen on 203.0.113.9:0: no network interface of this machine has that address');
    // the first Spooky still answers on both
    expect((await request(`${running.url}/`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${running.adminPort}/healthz`)).status).toBe(200);
  });
});

describe('certificates chosen by SNI', () => {
  let backend: Backend;
  afterAll(async () => {
    await backend?.stop();
  });

  test('the TCP listener serves the certificate whose server_name matches, else the default', async () => {
    backend = await startBackend('sni');
    const other = await makeTempCertificate({ name: 'other.test' });
    const { cert, key } = await testCertificate();
    const spooky = await startSpooky(`
listen:
  address: 127.0.0.1
  port: 0
  tls:
    cert: "${cert}"
    key: "${key}"
    certificates:
      - { server_name: other.test, cert: "${other.cert}", key: "${other.key}" }
upstream:
  a:
    backends: [{ id: a, address: "${backend.address}" }]
`);
    try {
      const fingerprint = (servername: string) =>
        new Promise<string>((res, rej) => {
          const s = connect({ host: '127.0.0.1', port: spooky.port, servername, rejectUnauthorized: false }, () => {
            res(s.getPeerCertificate().fingerprint256);
            s.end();
          });
          s.on('error', rej);
        });
      const { X509Certificate } = await import('node:crypto');
      const { readFileSync } = await import('node:fs');
      const fp = (p: string) => new X509Certificate(readFileSync(p)).fingerprint256;
      expect(await fingerprint('other.test')).toBe(fp(other.cert));
      expect(await fingerprint('localhost')).toBe(fp(cert));
      const res = await request(`${spooky.url}/`);
      expect(res.status).toBe(200);
    } finally {
      await spooky.stop();
    }
  });
});

describe('npm start (demo mode)', () => {
  test('runs with no config: self-signed certificate, two demo backends, HTTP/3 works', async () => {
    const data = mkdtempSync(join(tmpdir(), 'spooky-demo-'));
    const proc = Bun.spawn([process.execPath, 'src/main.ts', '--port', '0', '--admin-port', '0'], {
      cwd: ROOT,
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      env: { ...process.env, SPOOKY_DATA_DIR: data },
    });
    const child = new Child(proc);
    try {
      const ready = await child.waitFor((r) => r.event === 'listening', 15_000, 'demo listening');
      const port = (ready.listeners as { port: number }[])[0]?.port;
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const res = await request(`https://127.0.0.1:${port}/`);
        expect(res.status).toBe(200);
        seen.add(res.headers.get('x-demo-backend') ?? '');
        await res.text();
      }
      expect(seen).toEqual(new Set(['A', 'B']));
      expect(Bun.file(join(data, 'self-signed-cert.pem')).size).toBeGreaterThan(0);
      // The banner names the ports actually bound (--port 0, --admin-port 0), so its commands work.
      const adminPort = (ready.admin as { port: number }).port;
      await eventually(() => child.stderr.join('\n').includes('npm run h3 --'), 5_000, 'banner');
      const banner = child.stderr.join('\n');
      expect(banner).toContain(`npm run h3 -- https://127.0.0.1:${port}/ -k`);
      expect(banner).toContain(`Admin: http://127.0.0.1:${adminPort}/status`);
    } finally {
      await child.kill();
    }
  }, 30_000);

  test('a certificate left half-written by an interrupted first start is made anew, not a start failure', async () => {
    const data = mkdtempSync(join(tmpdir(), 'spooky-demo-'));
    // What a first start killed between writing the key and the certificate used to leave behind.
    const other = await makeTempCertificate();
    writeFileSync(join(data, 'self-signed-key.pem'), other.keyPem, { mode: 0o600 });
    writeFileSync(join(data, 'self-signed-cert.pem'), '');
    const child = new Child(
      Bun.spawn([process.execPath, 'src/main.ts', '--port', '0', '--admin-port', '0'], {
        cwd: ROOT,
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
        env: { ...process.env, SPOOKY_DATA_DIR: data },
      }),
    );
    try {
      const ready = await child.waitFor((r) => r.event === 'listening', 15_000, 'demo listening');
      const port = (ready.listeners as { port: number }[])[0]?.port;
      const res = await request(`https://127.0.0.1:${port}/`);
      expect(res.status).toBe(200);
      await res.text();
      expect(new X509Certificate(readFileSync(join(data, 'self-signed-cert.pem'))).subject).toContain('CN=localhost');
    } finally {
      await child.kill();
    }
  }, 30_000);
});
