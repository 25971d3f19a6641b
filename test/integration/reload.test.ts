/**
 * Hot reload under continuous HTTP/3 load: a real Spooky process, real backends, and three load-client
 * processes (each with separate QUIC connections through `node:quic`, plus Bun's fetch over HTTP/3) that count
 * every failed request and every dropped connection while the config is rewritten and reloaded 20 times
 * (SIGHUP, `spooky reload --pid-file`, and `POST /reload`). Then: a broken config is refused with line:col
 * errors while traffic goes on; health state and counters survive a reload; listeners are added and removed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reservePort } from '../../src/listener/listener.ts';
import { makeTempCertificate, testCertificate } from '../support/certs.ts';
import {
  admin,
  type Backend,
  eventually,
  type LoadClient,
  type LogRecord,
  request,
  type SpookyProcess,
  startBackend,
  startLoadClient,
  startSpooky,
} from '../support/process.ts';

interface StatusDoc {
  generation: number;
  reloads: { ok: number; error: number };
  listeners: { id: string; port: number }[];
  pools: { name: string; strategy: string; backends: { id: string; weight: number; healthy: boolean; requests: number }[] }[];
  audit: { action: string; trigger: string; result: string; generation: number; errors?: string[]; changes?: Record<string, unknown> }[];
}

async function status(spooky: SpookyProcess): Promise<StatusDoc> {
  return (await admin(spooky, '/status')).body as StatusDoc;
}

/**
 * Which backends answer `path` over HTTP/3 (non-200 answers are recorded as `status-N`): at least `n` sequential
 * requests, more (up to 40) until every backend of `expect` was seen, as the balancer's turn is shared with
 * the load clients.
 */
async function backendsFor(spooky: SpookyProcess, path: string, n = 6, expect: string[] = []): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < 40 && (i < n || expect.some((e) => !seen.has(e))); i++) {
    const res = await request(`${spooky.url}${path}`);
    await res.arrayBuffer();
    seen.add(res.status === 200 ? (res.headers.get('x-backend') ?? '?') : `status-${res.status}`);
  }
  return seen;
}

describe('20 reloads under HTTP/3 load from five client processes', () => {
  let a: Backend;
  let b: Backend;
  let c: Backend;
  let spooky: SpookyProcess;
  let listen: string;
  let clients: LoadClient[] = [];

  /** Four configs the reloads cycle through; each changes routes, weights, strategy or backends. */
  const variants = () => [
    {
      name: 'a+b round-robin, /extra -> c',
      yaml: `upstream:
  lb:
    route: { path_prefix: /lb }
    backends: [{ id: a, address: "${a.address}" }, { id: b, address: "${b.address}" }]
  extra:
    route: { path_prefix: /extra }
    backends: [{ id: c, address: "${c.address}" }]
`,
      check: async () => {
        expect(await backendsFor(spooky, '/lb/x', 6, ['a', 'b'])).toEqual(new Set(['a', 'b']));
        expect(await backendsFor(spooky, '/extra/x', 2)).toEqual(new Set(['c']));
      },
    },
    {
      name: 'a:300 b:100 weighted, /extra removed',
      yaml: `upstream:
  lb:
    route: { path_prefix: /lb }
    load_balancing: { type: weighted-round-robin }
    backends: [{ id: a, address: "${a.address}", weight: 300 }, { id: b, address: "${b.address}", weight: 100 }]
`,
      check: async () => {
        expect(await backendsFor(spooky, '/extra/x', 2)).toEqual(new Set(['status-404']));
        const lb = (await status(spooky)).pools.find((p) => p.name === 'lb');
        expect(lb?.strategy).toBe('weighted-round-robin');
        expect(lb?.backends.map((x) => [x.id, x.weight])).toEqual([
          ['a', 300],
          ['b', 100],
        ]);
        const seen = await backendsFor(spooky, '/lb/x', 8);
        for (const s of seen) expect(['a', 'b']).toContain(s);
      },
    },
    {
      name: 'b+c, new route /x2 -> a',
      yaml: `upstream:
  lb:
    route: { path_prefix: /lb }
    backends: [{ id: b, address: "${b.address}" }, { id: c, address: "${c.address}" }]
  x2:
    route: { path_prefix: /x2 }
    backends: [{ id: a, address: "${a.address}" }]
`,
      check: async () => {
        expect(await backendsFor(spooky, '/lb/x', 6, ['b', 'c'])).toEqual(new Set(['b', 'c']));
        expect(await backendsFor(spooky, '/x2/y', 2)).toEqual(new Set(['a']));
        expect(await backendsFor(spooky, '/extra/x', 2)).toEqual(new Set(['status-404']));
      },
    },
    {
      name: 'c only, least-connections, /extra -> b',
      yaml: `upstream:
  lb:
    route: { path_prefix: /lb }
    load_balancing: { type: least-connections }
    backends: [{ id: c, address: "${c.address}" }]
  extra:
    route: [{ path_prefix: /extra }, { host: extra.test }]
    backends: [{ id: b, address: "${b.address}" }]
`,
      check: async () => {
        expect(await backendsFor(spooky, '/lb/x', 4)).toEqual(new Set(['c']));
        expect(await backendsFor(spooky, '/extra/x', 2)).toEqual(new Set(['b']));
        expect(await backendsFor(spooky, '/x2/y', 2)).toEqual(new Set(['status-404']));
      },
    },
  ];

  beforeAll(async () => {
    [a, b, c] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('c')]);
    const { cert, key } = await testCertificate();
    listen = `listen:\n  address: 127.0.0.1\n  port: 0\n  tls:\n    cert: "${cert}"\n    key: "${key}"\n`;
    const first = variants()[0]?.yaml ?? '';
    spooky = await startSpooky(`${listen}${first}`, { args: ['--pid-file', join(process.env.TMPDIR ?? '/tmp', `spooky-reload-${process.pid}.pid`)] });
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((x) => x.stop()));
    await spooky?.stop();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  });

  test('zero failed requests, zero dropped connections, and each new config visibly takes effect', async () => {
    // Three processes with two QUIC connections each (node:quic: a dropped connection is seen), and two
    // processes looping Bun's fetch over HTTP/3 (one connection each; both kinds cannot share a process).
    clients = await Promise.all([
      ...[0, 1, 2].map(() => startLoadClient(spooky.port, ['--sessions', '2', '--path', '/lb/load'])),
      ...[0, 1].map(() => startLoadClient(spooky.port, ['--fetch-loops', '2', '--path', '/lb/load'])),
    ]);
    const pid = join(process.env.TMPDIR ?? '/tmp', `spooky-reload-${process.pid}.pid`);
    expect(existsSync(pid)).toBe(true);
    const vs = variants();
    const triggers: string[] = [];
    const started = Date.now();
    for (let i = 1; i <= 20; i++) {
      const v = vs[i % vs.length] as (typeof vs)[number];
      writeFileSync(spooky.configPath, `${listen}${v.yaml}`);
      const before = (await status(spooky)).generation;
      const how = ['signal', 'cli', 'admin'][i % 3] as string;
      triggers.push(how);
      if (how === 'admin') {
        const r = await admin(spooky, '/reload', { method: 'POST' });
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ ok: true, generation: before + 1 });
      } else if (how === 'cli') {
        const cli = Bun.spawnSync([process.execPath, 'src/main.ts', 'reload', '--pid-file', pid], { cwd: join(import.meta.dir, '../..') });
        expect(cli.exitCode).toBe(0);
      } else {
        spooky.child.signal('SIGHUP');
      }
      await spooky.child.waitFor((r) => r.event === 'audit' && r.action === 'reload' && r.generation === before + 1, 5000, `reload ${i} (${v.name})`);
      await v.check();
    }
    const reloadMs = Date.now() - started;
    const summaries = await Promise.all(clients.map((x) => x.stop()));
    clients = [];
    const total = summaries.reduce((n, s) => n + s.requests, 0);
    const failures = summaries.reduce((n, s) => n + s.failures, 0);
    const dropped = summaries.reduce((n, s) => n + s.dropped_sessions, 0);
    const seen = new Set(summaries.flatMap((s) => Object.keys(s.backends)));
    const took = spooky.child.lines
      .filter((r) => r.event === 'audit' && r.result === 'ok')
      .map((r) => Number(r.duration_ms))
      .sort((x, y) => x - y);
    console.log(
      `[reload] 20 reloads in ${reloadMs} ms under load: ${total} HTTP/3 requests from 5 processes (6 node:quic connections + 2 fetch connections), ${failures} failed, ${dropped} connections dropped; ` +
        `reload duration (read, check, bind, swap) median ${took[10]} ms, max ${took.at(-1)} ms`,
    );
    expect(summaries.flatMap((s) => s.failure_samples)).toEqual([]);
    expect(failures).toBe(0);
    expect(dropped).toBe(0);
    expect(total).toBeGreaterThan(500);
    expect(seen).toEqual(new Set(['a', 'b', 'c']));
    const st = await status(spooky);
    expect(st.reloads).toEqual({ ok: 20, error: 0 });
    expect(st.generation).toBe(21);
    expect(st.audit.filter((r) => r.action === 'reload')).toHaveLength(20);
    expect(new Set(st.audit.map((r) => r.trigger))).toEqual(new Set(['signal', 'admin']));
  }, 60_000);

  test('the audit record says what changed', async () => {
    const recs = spooky.child.lines.filter((r) => r.event === 'audit' && r.result === 'ok');
    // reload 1 went from variant 0 to variant 1: /extra (and its pool and backend c) removed, weights changed
    const first = recs[0] as LogRecord & { changes: { routes: unknown; pools: unknown; backends: unknown } };
    expect(first.changes.routes).toEqual({ added: [], removed: ['path_prefix=/extra'], modified: [] });
    expect(first.changes.pools).toEqual({ added: [], removed: ['extra'], modified: [{ id: 'lb', fields: ['load_balancing', 'backends'] }] });
    expect(first.changes.backends).toEqual({ added: [], removed: ['extra/c'], modified: [{ id: 'lb/a', fields: ['weight'] }] });
  });

  test('a broken config is refused with file:line:col errors; the running config and traffic are unaffected', async () => {
    const client = await startLoadClient(spooky.port, ['--sessions', '2', '--path', '/lb/load']);
    clients = [client];
    const before = await status(spooky);
    writeFileSync(
      spooky.configPath,
      `${listen}upstream:\n  lb:\n    route: { path_prefix: /lb }\n    backends:\n      - { id: a, address: "${a.address}", weight: 5000 }\n      - { id: b, adress: "${b.address}" }\n`,
    );
    spooky.child.signal('SIGHUP');
    const audit = await spooky.child.waitFor((r) => r.event === 'audit' && r.result === 'error', 5000, 'refused reload');
    const errors = audit.errors as string[];
    expect(errors).toHaveLength(3);
    expect(errors.join('\n')).toContain(`${spooky.configPath}:11:`);
    expect(errors.some((e) => /:11:\d+: error: must be at most 1000, got 5000/.test(e))).toBe(true);
    expect(errors.some((e) => /:12:\d+: error: unknown key `adress`; did you mean `address`\?/.test(e))).toBe(true);
    const logged = spooky.child.lines.filter((r) => r.event === 'config_error').map((r) => String(r.msg));
    for (const e of errors) expect(logged).toContain(e);

    const viaAdmin = await admin(spooky, '/reload', { method: 'POST' });
    expect(viaAdmin.status).toBe(422);
    expect((viaAdmin.body as { errors: string[] }).errors).toEqual(errors);

    const after = await status(spooky);
    expect(after.generation).toBe(before.generation);
    expect(after.reloads).toEqual({ ok: before.reloads.ok, error: before.reloads.error + 2 });
    // The 20th reload went back to the first variant (a and b); that config still runs.
    expect(await backendsFor(spooky, '/lb/x', 4, ['a', 'b'])).toEqual(new Set(['a', 'b']));
    const summary = await client.stop();
    clients = [];
    expect(summary.failure_samples).toEqual([]);
    expect(summary.dropped_sessions).toBe(0);
  });

  test('the admin reload endpoint wants POST from no foreign origin', async () => {
    expect((await admin(spooky, '/reload')).status).toBe(405);
    expect((await admin(spooky, '/reload', { method: 'POST', headers: { origin: 'https://evil.example' } })).status).toBe(403);
  });

  test('a DNS-rebinding page (its own name as Host, same-origin with itself) gets 403 from the loopback admin listener', async () => {
    const before = (await status(spooky)).reloads.ok;
    const rebound = { host: `attacker.example:${spooky.adminPort}`, origin: `http://attacker.example:${spooky.adminPort}` };
    expect((await admin(spooky, '/reload', { method: 'POST', headers: rebound })).status).toBe(403);
    for (const path of ['/config', '/status', '/metrics', '/dashboard']) expect((await admin(spooky, path, { headers: rebound })).status).toBe(403);
    expect((await status(spooky)).reloads.ok).toBe(before); // nothing reloaded
    // the names a local operator or scraper uses still work
    for (const host of [`localhost:${spooky.adminPort}`, `127.0.0.1:${spooky.adminPort}`, '127.0.0.1', `[::1]:${spooky.adminPort}`])
      expect((await admin(spooky, '/healthz', { headers: { host } })).status).toBe(200);
    // methods other than GET and HEAD are refused on the read-only endpoints
    expect((await admin(spooky, '/metrics', { method: 'PUT' })).status).toBe(405);
  });

  test('the pid file goes away when Spooky exits', async () => {
    const pid = join(process.env.TMPDIR ?? '/tmp', `spooky-reload-${process.pid}.pid`);
    expect(await Bun.file(pid).text()).toBe(`${spooky.child.proc.pid}\n`);
    expect(await spooky.stop()).toBe(0);
    expect(existsSync(pid)).toBe(false);
  });
});

describe('state carried over a reload', () => {
  let a: Backend;
  let b: Backend;
  let spooky: SpookyProcess;
  let listen: string;

  const config = (weightA: number, extra = '') => `${listen}upstream:
  lb:
    route: { path_prefix: /lb }
    health_check: { path: /health, interval: 100, timeout_ms: 500, failure_threshold: 1, success_threshold: 1, cooldown_ms: 100 }
    backends:
      - { id: a, address: "${a.address}", weight: ${weightA} }
      - { id: b, address: "${b.address}" }
${extra}`;

  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    const { cert, key } = await testCertificate();
    listen = `listen:\n  address: 127.0.0.1\n  port: 0\n  tls:\n    cert: "${cert}"\n    key: "${key}"\n`;
    spooky = await startSpooky(config(100));
  });
  afterAll(async () => {
    await spooky?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('health state and counters survive a reload', async () => {
    await fetch(`http://127.0.0.1:${b.port}/admin/unhealthy`, { method: 'POST' });
    const backendsOf = async () => (await status(spooky)).pools.find((p) => p.name === 'lb')?.backends ?? [];
    await eventually(async () => (await backendsOf()).find((x) => x.id === 'b')?.healthy === false, 3000, 'b marked unhealthy');
    expect(await backendsFor(spooky, '/lb/x', 6)).toEqual(new Set(['a']));
    const requestsBefore = (await backendsOf()).find((x) => x.id === 'a')?.requests ?? 0;
    expect(requestsBefore).toBeGreaterThanOrEqual(6);

    writeFileSync(
      spooky.configPath,
      config(200, `  other:\n    route: { path_prefix: /other }\n    backends: [{ id: a2, address: "${a.address}" }]\n`),
    );
    const r = await admin(spooky, '/reload', { method: 'POST' });
    expect(r.body).toMatchObject({ ok: true });
    // Right after the swap: b is still unhealthy (not reset to `initial: healthy`), a keeps its counters.
    const after = await backendsOf();
    expect(after.find((x) => x.id === 'b')?.healthy).toBe(false);
    expect(after.find((x) => x.id === 'a')?.weight).toBe(200);
    expect(after.find((x) => x.id === 'a')?.requests).toBeGreaterThanOrEqual(requestsBefore);
    expect(await backendsFor(spooky, '/lb/x', 6)).toEqual(new Set(['a']));

    await fetch(`http://127.0.0.1:${b.port}/admin/healthy`, { method: 'POST' });
    await eventually(async () => (await backendsOf()).find((x) => x.id === 'b')?.healthy === true, 3000, 'b healthy again');
    expect(await backendsFor(spooky, '/lb/x', 6, ['a', 'b'])).toEqual(new Set(['a', 'b']));

    writeFileSync(spooky.configPath, config(200));
    expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true, changes: { pools: { removed: ['other'] } } });
  });

  test('listeners: a new listener is bound and a removed one released, without touching the first', async () => {
    const { cert, key } = await testCertificate();
    const two = `listeners:\n  - { address: 127.0.0.1, port: 0, tls: { cert: "${cert}", key: "${key}" } }\n  - { address: 127.0.0.2, port: 0, tls: { cert: "${cert}", key: "${key}" } }\n`;
    const body = config(200).slice(listen.length);
    writeFileSync(spooky.configPath, `${two}${body}`);
    const r = (await admin(spooky, '/reload', { method: 'POST' })).body as { ok: boolean; listeners: { id: string; action: string; port: number }[] };
    expect(r.ok).toBe(true);
    expect(r.listeners).toHaveLength(1);
    expect(r.listeners[0]).toMatchObject({ id: '127.0.0.2:0', action: 'added' });
    const port2 = r.listeners[0]?.port as number;
    const res = await request(`https://127.0.0.2:${port2}/lb/x`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect((await status(spooky)).listeners.map((l) => l.port)).toEqual([spooky.port, port2]);

    writeFileSync(spooky.configPath, config(200));
    const back = (await admin(spooky, '/reload', { method: 'POST' })).body as { listeners: { id: string; action: string }[] };
    expect(back.listeners).toEqual([{ id: '127.0.0.2:0', action: 'removed', port: port2 }] as never);
    await spooky.child.waitFor((x) => x.event === 'listener_retired' && x.port === port2, 3000, 'second listener released');
    const still = await request(`${spooky.url}/lb/x`);
    expect(still.status).toBe(200);
    await still.arrayBuffer();
  });

  test('listeners: changing only the address of a fixed port rebinds it beside the old one, no "port in use"', async () => {
    const { cert, key } = await testCertificate();
    const free = await reservePort('127.0.0.1', 0);
    const fixed = free.port;
    free.release();
    const second = (address: string) =>
      `listeners:\n  - { address: 127.0.0.1, port: 0, tls: { cert: "${cert}", key: "${key}" } }\n  - { address: ${address}, port: ${fixed}, tls: { cert: "${cert}", key: "${key}" } }\n`;
    const body = config(200).slice(listen.length);
    writeFileSync(spooky.configPath, `${second('127.0.0.1')}${body}`);
    expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true, listeners: [{ action: 'added', port: fixed }] });
    // `localhost` binds 127.0.0.1 here: the same port on an overlapping address, held by Spooky itself
    writeFileSync(spooky.configPath, `${second('localhost')}${body}`);
    const r = (await admin(spooky, '/reload', { method: 'POST' })).body as { ok: boolean; errors?: string[]; listeners: unknown[] };
    expect(r.errors).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.listeners).toEqual([
      { id: `localhost:${fixed}`, action: 'added', port: fixed },
      { id: `127.0.0.1:${fixed}`, action: 'removed', port: fixed },
    ]);
    const retired = await spooky.child.waitFor(
      (x) => x.event === 'listener_retired' && x.listener === `127.0.0.1:${fixed}`,
      3000,
      'old listener released',
    );
    expect(retired.reason).toBe('replaced');
    for (const protocol of ['http3', 'http1.1'] as const) {
      const res = await request(`https://127.0.0.1:${fixed}/lb/x`, { protocol });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    writeFileSync(spooky.configPath, config(200));
    expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true });
  });

  test('a reload that changes `workers` applies the rest and warns that the count waits for a restart', async () => {
    writeFileSync(spooky.configPath, `workers: 2\n${config(200)}`);
    expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true });
    const warned = await spooky.child.waitFor((x) => x.event === 'config_warning' && String(x.msg).startsWith('workers: 2'), 3000, 'workers warning');
    expect(warned.msg).toBe('workers: 2 takes effect at the next restart (running 1)');
    expect(spooky.child.lines.some((x) => x.event === 'worker_started')).toBe(false);
    writeFileSync(spooky.configPath, config(200));
    expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true });
  });

  test('a reload that moves the admin listener to another address on the same port hands the port over', async () => {
    const free = await reservePort('127.0.0.1', 0);
    const port = free.port;
    free.release();
    const sp = await startSpooky(`${listen}admin: { address: 127.0.0.1 }\n${config(100).slice(listen.length)}`, {
      args: ['--admin-port', String(port)],
    });
    try {
      expect(sp.adminPort).toBe(port);
      writeFileSync(sp.configPath, `${listen}admin: { address: localhost }\n${config(100).slice(listen.length)}`);
      const r = await admin(sp, '/reload', { method: 'POST' });
      expect(r.body).toMatchObject({ ok: true, changes: { settings: ['admin'] } });
      // the new admin listener answers on the same port
      expect((await fetch(`http://localhost:${port}/healthz`)).status).toBe(200);
    } finally {
      await sp.stop();
    }
  });

  test('an admin token set by a reload applies at once, on the same admin port', async () => {
    writeFileSync(spooky.configPath, `${config(200)}admin: { token: s3cret }\n`);
    expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true, changes: { settings: ['admin'] } });
    expect((await admin(spooky, '/status')).status).toBe(401);
    const auth = { authorization: 'Bearer s3cret' };
    expect((await admin(spooky, '/status', { headers: { authorization: 'bearer s3cret' } })).status).toBe(200); // the scheme is case-insensitive
    expect((await admin(spooky, '/status', { headers: { authorization: 'Basic s3cret' } })).status).toBe(401);
    expect((await admin(spooky, '/status', { headers: auth })).status).toBe(200);
    writeFileSync(spooky.configPath, config(200));
    expect((await admin(spooky, '/reload', { method: 'POST', headers: auth })).body).toMatchObject({ ok: true });
    expect((await admin(spooky, '/status')).status).toBe(200);
  });

  test('with reload.watch, saving the config file reloads it (debounced: several writes, one reload)', async () => {
    // 1 s of quiet: the two writes below must fall in one window even when a loaded machine pauses this process.
    const watched = `${config(200)}reload: { watch: true, debounce_ms: 1000 }\n`;
    writeFileSync(spooky.configPath, watched);
    expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true, changes: { settings: ['reload'] } });
    expect(((await admin(spooky, '/status')).body as { watching: string[] }).watching).toContain(spooky.configPath);
    // Only reloads by the file watch count: the audit line of the admin reload above may reach this process
    // after its HTTP answer did (they travel on different pipes).
    const fileReloads = () => spooky.child.lines.filter((r) => r.event === 'audit' && r.trigger === 'file');
    const before = fileReloads().length;
    writeFileSync(spooky.configPath, watched.replace('weight: 200', 'weight: 250'));
    writeFileSync(spooky.configPath, watched.replace('weight: 200', 'weight: 300'));
    const rec = await spooky.child.waitFor((r) => r.event === 'audit' && r.trigger === 'file', 6000, 'reload by file watch');
    expect(rec).toMatchObject({
      result: 'ok',
      files: [spooky.configPath],
      changes: { backends: { modified: [{ id: 'lb/a', fields: ['weight'] }] } },
    });
    expect((await status(spooky)).pools[0]?.backends.find((x) => x.id === 'a')?.weight).toBe(300);
    const audits = () => fileReloads().slice(before);
    await eventually(() => audits().length === 1, 1000, 'exactly one reload').catch((e: Error) => {
      throw new Error(`${e.message}; audit records: ${JSON.stringify(audits())}`);
    });
  });
});

describe('upstream CA bundles on reload', () => {
  test('a ca_file rotated in place (same path) is trusted after a reload, and reload.watch notices it', async () => {
    const backend = await startBackend('tls', { protocol: 'h2' });
    const trusted = await testCertificate(); // the backend's certificate
    const other = await makeTempCertificate();
    const ca = join(other.dir, 'ca.pem');
    writeFileSync(ca, other.certPem);
    const spooky = await startSpooky(`
reload: { watch: true, debounce_ms: 100 }
upstream:
  p:
    tls: { ca_file: "${ca}" }
    backends: [{ id: b, address: "${backend.address}" }]
`);
    try {
      const get = async () => {
        const res = await request(`${spooky.url}/x`);
        await res.arrayBuffer();
        return res.status;
      };
      expect(await get()).toBe(502); // the bundle does not trust the backend
      expect(((await admin(spooky, '/status')).body as { watching: string[] }).watching).toContain(ca);
      // New contents under the same path: the file watch reloads, and the new pool trusts the backend.
      writeFileSync(ca, readFileSync(trusted.cert, 'utf8'));
      await spooky.child.waitFor((r) => r.event === 'audit' && r.trigger === 'file' && r.result === 'ok', 6000, 'reload by file watch');
      expect(await get()).toBe(200);
      // And back, by an explicit reload this time.
      writeFileSync(ca, other.certPem);
      expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true });
      expect(await get()).toBe(502);
    } finally {
      await spooky.stop();
      await backend.stop();
    }
  }, 20_000);

  test('a rotated ca_file also reaches a probe that has its own address', async () => {
    const backend = await startBackend('tls', { protocol: 'h2' });
    const trusted = await testCertificate();
    const other = await makeTempCertificate();
    const ca = join(other.dir, 'ca.pem');
    writeFileSync(ca, other.certPem);
    const spooky = await startSpooky(`
upstream:
  p:
    tls: { ca_file: "${ca}" }
    health_check: { address: "${backend.address}", path: /health, interval: 100, timeout_ms: 1000, failure_threshold: 1, success_threshold: 1, initial: unhealthy }
    backends: [{ id: b, address: "${backend.address}" }]
`);
    try {
      const probe = async () =>
        ((await admin(spooky, '/status')).body as { pools: { backends: { healthy: boolean; last_probe: string | null }[] }[] }).pools[0]?.backends[0];
      await eventually(async () => (await probe())?.last_probe === '/health: upstream_connect_failed', 5000, 'a probe refused by the old bundle');
      writeFileSync(ca, readFileSync(trusted.cert, 'utf8'));
      expect((await admin(spooky, '/reload', { method: 'POST' })).body).toMatchObject({ ok: true });
      await eventually(async () => (await probe())?.healthy === true, 5000, 'the probe trusts the rotated bundle');
    } finally {
      await spooky.stop();
      await backend.stop();
    }
  }, 20_000);
});
