/**
 * Spawning real processes for integration tests: Spooky from its CLI and test backends. Each child prints
 * JSON lines; the harness waits for a readiness line with a deadline (never a bare sleep) and keeps every line
 * so tests can assert on logs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Subprocess } from 'bun';
import { testCertificate } from './certs.ts';
import { waitUntil } from './wait.ts';

const ROOT = resolve(import.meta.dir, '../..');
const BUN = process.execPath;

/** A JSON log record. */
export type LogRecord = Record<string, unknown>;

/** A child process whose stdout is parsed as JSON lines. */
export class Child {
  readonly lines: LogRecord[] = [];
  readonly stderr: string[] = [];
  private waiters: { pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = [];
  readonly exited: Promise<number>;

  constructor(readonly proc: Subprocess<'ignore', 'pipe', 'pipe'>) {
    this.exited = proc.exited;
    void this.pump(proc.stdout, (line) => {
      let rec: LogRecord;
      try {
        rec = JSON.parse(line) as LogRecord;
      } catch {
        rec = { raw: line };
      }
      this.lines.push(rec);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(rec)) return true;
        w.resolve(rec);
        return false;
      });
    });
    void this.pump(proc.stderr, (line) => this.stderr.push(line));
  }

  private async pump(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of stream) {
      buf += decoder.decode(chunk, { stream: true });
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) onLine(line);
        nl = buf.indexOf('\n');
      }
    }
  }

  /** Resolves with the first line (already seen or future) matching `pred`; rejects after `timeoutMs`. */
  waitFor(pred: (r: LogRecord) => boolean, timeoutMs = 10_000, what = 'log line'): Promise<LogRecord> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolveP, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${this.stderr.join('\n').slice(-2000)}; last lines: ${JSON.stringify(this.lines.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      const done = (r: LogRecord) => {
        clearTimeout(timer);
        resolveP(r);
      };
      this.waiters.push({ pred, resolve: done });
      void this.exited.then((code) => {
        if (this.waiters.some((w) => w.resolve === done)) {
          clearTimeout(timer);
          reject(new Error(`process exited with ${code} while waiting for ${what}; stderr: ${this.stderr.join('\n').slice(-2000)}`));
        }
      });
    });
  }

  /** Sends a signal. */
  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  /** Kills the process (SIGKILL) and waits for it. */
  async kill(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/** Runs `bun ARGS` from the checkout, or `command` (for example a compiled `spooky`) when given. */
function spawnChild(args: string[], env: Record<string, string> = {}, command: readonly string[] = [BUN]): Child {
  const proc = Bun.spawn([...command, ...args], {
    cwd: ROOT,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    env: { ...process.env, ...env },
  });
  return new Child(proc);
}

/** A running test backend. */
export interface Backend {
  readonly child: Child;
  readonly port: number;
  readonly name: string;
  /** `http://127.0.0.1:port`, `h2c://...` or `https://...` to put in a config. */
  readonly address: string;
  stop(): Promise<void>;
}

/** Starts a backend process (see backend-server.ts); `port` to restart one on a known port. */
export async function startBackend(name: string, opts: { protocol?: 'http1' | 'h2c' | 'h2'; port?: number } = {}): Promise<Backend> {
  const protocol = opts.protocol ?? 'http1';
  const args = ['test/support/backend-server.ts', '--name', name, '--protocol', protocol, '--port', String(opts.port ?? 0)];
  if (protocol === 'h2') {
    const { cert, key } = await testCertificate();
    args.push('--cert', cert, '--key', key);
  }
  const child = spawnChild(args);
  const ready = await child.waitFor((r) => r.event === 'ready', 10_000, `backend ${name} ready`);
  const port = Number(ready.port);
  const scheme = protocol === 'http1' ? 'http' : protocol === 'h2c' ? 'h2c' : 'https';
  return {
    child,
    port,
    name,
    address: `${scheme}://127.0.0.1:${port}`,
    async stop() {
      await child.kill();
    },
  };
}

/** A running Spooky. */
export interface SpookyProcess {
  readonly child: Child;
  /** Traffic port (TCP and UDP). */
  readonly port: number;
  /** Admin port. */
  readonly adminPort: number;
  /** `https://127.0.0.1:port`. */
  readonly url: string;
  /** The config file it runs with (rewrite it and send SIGHUP to reload). */
  readonly configPath: string;
  /** Folder of the config file and the test certificate. */
  readonly dir: string;
  /** SIGTERM, then SIGKILL if it has not exited after `killAfterMs` (default 5000); resolves with the exit code. */
  stop(killAfterMs?: number): Promise<number>;
}

/**
 * Writes `yaml` to a temp folder and starts `spooky run` on it with port 0. `@CERT@` and `@KEY@` in the
 * YAML are replaced by a test certificate's paths. If the YAML has no `listen:` block, one is added.
 * `executable` runs that file (a `bun build --compile` output) instead of `bun src/main.ts` from the checkout.
 */
export async function startSpooky(
  yaml: string,
  opts: { args?: string[]; env?: Record<string, string>; executable?: string } = {},
): Promise<SpookyProcess> {
  const { cert, key } = await testCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'spooky-it-'));
  let text = yaml.replaceAll('@CERT@', cert).replaceAll('@KEY@', key);
  if (!/^listen:/m.test(text)) {
    text = `listen:\n  address: 127.0.0.1\n  port: 0\n  tls:\n    cert: "${cert}"\n    key: "${key}"\n${text}`;
  }
  const configPath = join(dir, 'spooky.yaml');
  writeFileSync(configPath, text);
  const runArgs = ['run', '--config', configPath, '--port', '0', '--admin-port', '0', ...(opts.args ?? [])];
  const child = opts.executable === undefined ? spawnChild(['src/main.ts', ...runArgs], opts.env) : spawnChild(runArgs, opts.env, [opts.executable]);
  const ready = await child.waitFor((r) => r.event === 'listening', 15_000, 'spooky listening');
  const listeners = ready.listeners as { port: number }[];
  const port = Number(listeners[0]?.port);
  const admin = ready.admin as { port: number } | null;
  return {
    child,
    port,
    adminPort: admin ? Number(admin.port) : 0,
    url: `https://127.0.0.1:${port}`,
    configPath,
    dir,
    async stop(killAfterMs = 5000) {
      child.signal('SIGTERM');
      const timer = setTimeout(() => child.proc.kill('SIGKILL'), killAfterMs);
      const code = await child.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Resolves with Spooky's access-log line for `path` (already written or to come); rejects after `timeoutMs`. */
export function accessLine(spooky: SpookyProcess, path: string, timeoutMs = 8000): Promise<LogRecord> {
  return spooky.child.waitFor((r) => r.event === 'access' && r.path === path, timeoutMs, `access line for ${path}`);
}

/** Polls `check` until it returns true or the deadline passes (then throws with `what`). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  await waitUntil(check, timeoutMs, what, everyMs);
}

/** Fetch over a chosen protocol, accepting the self-signed test certificate. */
export function request(url: string, init: RequestInit & { protocol?: 'http3' | 'http2' | 'http1.1' } = {}): Promise<Response> {
  const { protocol = 'http3', ...rest } = init;
  return fetch(url, { ...rest, protocol, tls: { rejectUnauthorized: false }, decompress: false } as RequestInit);
}

/** A running HTTP/3 load client (see h3-load-client.ts). */
export interface LoadClient {
  /** The client process (its `progress` lines are in `child.lines`). */
  readonly child: Child;
  /** Stops it (SIGTERM) and returns its summary. */
  stop(): Promise<LoadSummary>;
}

/** What a load client reports when stopped. */
export interface LoadSummary {
  /** Requests finished (good or failed). */
  requests: number;
  /** Requests that errored, timed out or answered anything but 200. */
  failures: number;
  /** The first 10 failures, described. */
  failure_samples: string[];
  /** `node:quic` connections that closed while the client was running. */
  dropped_sessions: number;
  /** `node:quic` connections opened (including reconnects). */
  sessions_opened: number;
  /** Answers per `x-backend` header value. */
  backends: Record<string, number>;
  /** `node:quic` connections per server certificate fingerprint seen at the handshake. */
  fingerprints: Record<string, number>;
}

/**
 * Starts an HTTP/3 load client process against `port` and waits until each of its loops had a good answer.
 * `args` are passed on (`--sessions N`, `--fetch-loops N`, `--path P`, `--reconnect`, ...).
 */
export async function startLoadClient(port: number, args: string[] = []): Promise<LoadClient> {
  const child = spawnChild([
    '--experimental-http3-fetch',
    '--experimental-http2-fetch',
    'test/support/h3-load-client.ts',
    '--port',
    String(port),
    ...args,
  ]);
  try {
    await child.waitFor((r) => r.event === 'ready', 15_000, 'load client ready');
  } catch (e) {
    child.proc.kill('SIGKILL');
    throw e;
  }
  return {
    child,
    async stop() {
      child.signal('SIGTERM');
      try {
        const summary = await child.waitFor((r) => r.event === 'summary', 15_000, 'load client summary');
        await child.exited;
        return summary as unknown as LoadSummary;
      } finally {
        child.proc.kill('SIGKILL');
      }
    },
  };
}

/** A backend as `/status` shows it (the fields tests read). */
export interface BackendStatus {
  healthy: boolean;
  in_flight: number;
  requests: number;
  last_probe: string | null;
}

/** The first backend of the first pool as `/status` shows it now (the single backend most tests have). */
export async function firstBackendStatus(spooky: SpookyProcess): Promise<BackendStatus | undefined> {
  return ((await admin(spooky, '/status')).body as { pools: { backends: BackendStatus[] }[] }).pools[0]?.backends[0];
}

/** GET or POST on Spooky's admin listener; resolves the status and the parsed body (JSON or text). */
export async function admin(spooky: SpookyProcess, path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${spooky.adminPort}${path}`, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body };
}
