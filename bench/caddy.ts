/**
 * Caddy as a reference HTTP/3 reverse proxy for `bench/proxy.ts --caddy`: the same load, backends and machine,
 * a proxy operators already run. Uses the `caddy` on PATH (Debian: `apt-get install caddy`); nothing here
 * installs it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reservePort } from '../src/listener/listener.ts';
import { pinnedTo, readyRecord } from './support.ts';

/** A running Caddy: its process, the port it serves HTTP/3 (and HTTP/1.1, HTTP/2) on, and its version. */
export interface RunningCaddy {
  proc: ReturnType<typeof Bun.spawn>;
  port: number;
  version: string;
}

/** The version `caddy version` prints (first word), or undefined when there is no usable `caddy` on PATH. */
export function caddyVersion(): string | undefined {
  if (Bun.which('caddy') === null) return undefined;
  const r = Bun.spawnSync(['caddy', 'version']);
  return r.exitCode === 0 ? r.stdout.toString().trim().split(/\s+/)[0] : undefined;
}

/**
 * Starts Caddy with `cert`/`key` on a free port of 127.0.0.1, speaking HTTP/1.1, HTTP/2 and HTTP/3, reverse
 * proxying every request to `upstream` (`127.0.0.1:PORT` for HTTP/1.1, `h2c://127.0.0.1:PORT` for h2c). No admin
 * endpoint, no access log (as Spooky in the benchmark). Its state folders go under `dir`. Waits until Caddy logs
 * that it serves the config (at most `timeoutMs`); kills it and throws when it exits or stays silent.
 */
export async function startCaddy(dir: string, cert: string, key: string, upstream: string, cpu?: number, timeoutMs = 15_000): Promise<RunningCaddy> {
  const version = caddyVersion();
  if (version === undefined) throw new Error('caddy is not on PATH (apt-get install caddy)');
  // Caddy cannot take port 0: a port free on both TCP and UDP now, released for it.
  const reservation = await reservePort('127.0.0.1', 0);
  reservation.release();
  const port = reservation.port;
  const home = join(dir, `caddy-${port}`);
  mkdirSync(home, { recursive: true });
  const caddyfile = join(home, 'Caddyfile');
  writeFileSync(
    caddyfile,
    `{
  admin off
  auto_https off
  servers {
    protocols h1 h2 h3
  }
}
https://127.0.0.1:${port} {
  tls ${cert} ${key}
  reverse_proxy ${upstream}
}
`,
  );
  const proc = Bun.spawn([...pinnedTo(cpu), 'caddy', 'run', '--config', caddyfile, '--adapter', 'caddyfile'], {
    cwd: home,
    stdout: 'ignore',
    stderr: 'pipe',
    env: { ...process.env, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home, HOME: home },
  });
  // Caddy logs JSON lines to stderr.
  await readyRecord(proc, proc.stderr as ReadableStream<Uint8Array>, (r) => r.msg === 'serving initial configuration', timeoutMs, 'caddy');
  return { proc, port, version };
}
