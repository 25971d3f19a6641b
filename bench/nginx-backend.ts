/**
 * nginx as the small-response backend of `bench/proxy.ts --backend nginx`: one worker process that answers every
 * request with the same short body, over HTTP/1.1 on one port and h2c (HTTP/2 with prior knowledge) on another.
 * It costs a fraction of the CPU of a Bun backend per request, so on a machine whose cores the backend shares
 * with the proxy, it disturbs the proxy's measurement less. Uses the `nginx` on PATH (or /usr/sbin/nginx;
 * Debian: `apt-get install nginx`); nothing here installs it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reservePort } from '../src/listener/listener.ts';
import { pinnedTo } from './support.ts';

/** A running nginx backend: its master process and its HTTP/1.1 and h2c ports. */
export interface NginxBackend {
  proc: ReturnType<typeof Bun.spawn>;
  http1Port: number;
  h2cPort: number;
}

/** The nginx executable, or undefined when there is none. */
export function nginxPath(): string | undefined {
  return Bun.which('nginx') ?? Bun.which('nginx', { PATH: '/usr/sbin:/usr/local/sbin' }) ?? undefined;
}

/** Polls until `port` accepts a TCP connection; throws after `timeoutMs`. */
async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } });
      s.end();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await Bun.sleep(20);
    }
  }
}

/**
 * Starts nginx in the foreground with its files under `dir`: one worker, no access log, keep-alive connections
 * kept for (practically) any number of requests, every request answered `200 hello from the backend` (the Bun
 * backend's body). Waits until both ports accept connections (at most `timeoutMs`).
 */
export async function startNginxBackend(dir: string, cpu?: number, timeoutMs = 10_000): Promise<NginxBackend> {
  const nginx = nginxPath();
  if (nginx === undefined) throw new Error('nginx is not on PATH (apt-get install nginx)');
  // Both held at once so they differ, then released for nginx.
  const ports = [await reservePort('127.0.0.1', 0), await reservePort('127.0.0.1', 0)];
  for (const r of ports) r.release();
  const [http1Port, h2cPort] = ports.map((r) => r.port) as [number, number];
  const prefix = join(dir, `nginx-${http1Port}`);
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  default_type text/plain;
  server {
    listen 127.0.0.1:${http1Port};
    listen 127.0.0.1:${h2cPort} http2;
    location / { return 200 "hello from the backend\\n"; }
  }
}
`,
  );
  const proc = Bun.spawn([...pinnedTo(cpu), nginx, '-p', prefix, '-c', conf, '-g', 'daemon off;'], { stdout: 'ignore', stderr: 'inherit' });
  try {
    await waitForPort(http1Port, timeoutMs);
    await waitForPort(h2cPort, timeoutMs);
  } catch (e) {
    proc.kill();
    throw e;
  }
  return { proc, http1Port, h2cPort };
}
