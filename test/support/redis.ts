/**
 * A real Redis server (Debian's `redis-server`, installed by `.ci/run`) for tests: no persistence, on a free
 * loopback port (Redis reads port 0 as "no TCP", so a free port is found first and the start is retried if
 * another process took it meanwhile), ready once it says so on stdout.
 */
import type { Subprocess } from 'bun';
import { closedPort } from './raw-http-server.ts';

const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/sbin/redis-server'].find((p) => Bun.file(p).size > 0);

/** A running Redis. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly proc: Subprocess;
  /** Stops it (SIGKILL) and waits for the exit. */
  stop(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
}

/** Starts `redis-server` with `extra` arguments (e.g. `['--requirepass', 'x']`); `port` reuses a known port. */
export async function startRedis(extra: string[] = [], port?: number): Promise<RedisServer> {
  if (!REDIS_SERVER) throw new Error('redis-server is not installed (apt-get install -y redis-server); .ci/run installs it');
  let lastOutput = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const p = port ?? closedPort();
    const proc = Bun.spawn([REDIS_SERVER, '--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], {
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const ready = await readyOrExit(proc, 10_000);
    lastOutput = ready.output;
    if (ready.ok) {
      return {
        port: p,
        url: `redis://127.0.0.1:${p}`,
        proc,
        async stop() {
          proc.kill('SIGKILL');
          await proc.exited;
        },
        pause: () => proc.kill('SIGSTOP'),
        resume: () => proc.kill('SIGCONT'),
      };
    }
    proc.kill('SIGKILL');
    await proc.exited;
    if (port !== undefined && !/in use/i.test(ready.output)) break;
  }
  throw new Error(`redis-server did not start:\n${lastOutput}`);
}

/** Reads stdout until Redis says it accepts connections (ok) or the process exits or `timeoutMs` passes. */
async function readyOrExit(proc: Subprocess<'ignore', 'pipe', 'pipe'>, timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let output = '';
  const deadline = setTimeout(() => reader.cancel().catch(() => {}), timeoutMs);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { ok: false, output };
      output += decoder.decode(value, { stream: true });
      if (output.includes('Ready to accept connections')) {
        // Keep draining so Redis never blocks on a full pipe.
        void (async () => {
          while (!(await reader.read().catch(() => ({ done: true }))).done) {}
        })();
        return { ok: true, output };
      }
    }
  } finally {
    clearTimeout(deadline);
  }
}
