/**
 * nghttpd (nghttp2's reference server, Debian's `nghttp2-server`, installed by `.ci/run`) as an HTTP/2 peer for
 * integration tests: spawned on port 0, its port read back from /proc once it listens.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Subprocess } from 'bun';
import { eventually } from './process.ts';

const NGHTTPD = '/usr/sbin/nghttpd';

/** The TCP port process `pid` listens on, from its socket inodes and /proc/net/tcp; undefined while none. */
function listeningPort(pid: number): number | undefined {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // the fd closed meanwhile
    }
  }
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '0A' && inodes.has(f[9] ?? '')) return Number.parseInt((f[1] ?? '').split(':')[1] ?? '', 16);
  }
  return undefined;
}

/** Spawns `nghttpd ...args` (which should listen on port 0) and waits until it listens; `what` names it in the timeout. */
export async function startNghttpd(args: string[], what = 'nghttpd listening'): Promise<{ proc: Subprocess; port: number }> {
  const proc = Bun.spawn([NGHTTPD, ...args], { stdout: 'ignore', stderr: 'pipe' });
  let port: number | undefined;
  try {
    await eventually(() => (port = listeningPort(proc.pid)) !== undefined, 10_000, what);
  } catch (err) {
    proc.kill();
    throw err;
  }
  return { proc, port: port as number };
}
