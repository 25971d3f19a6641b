/**
 * Requests to the Kubernetes API server with Bun's `fetch`. `@kubernetes/client-node` reads the kubeconfig
 * (or the pod's service account) and supplies the credentials, but its own HTTP layer hands the cluster's CA
 * and client certificate to an undici dispatcher, which Bun's `fetch` ignores: against a cluster with its own
 * CA (every real one) its requests fail verification. Here the same settings go into Bun's `tls` option.
 *
 * `KubeApi.watcher()` is a drop-in for the library's `Watch`, so its `ListWatch` cache (list, watch from the
 * list's resource version, relist after `410 Gone`) runs on these requests.
 */
import type { RequestOptions } from 'node:https';
import type { KubeConfig, KubernetesListObject, KubernetesObject, Watch } from '@kubernetes/client-node';

/** Bun's `fetch` TLS options. */
interface BunTls {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  serverName?: string;
}

/** An error answer of the API server, with its status code (the `ListWatch` relists on 410). */
export class KubeApiError extends Error {
  /** The HTTP status. */
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

/** The error for an answer that is not a success: its status and the start of its body (a Status object). */
async function failure(res: Response, what: string): Promise<KubeApiError> {
  const detail = await res.text().catch(() => '');
  return new KubeApiError(res.status, `${what}: ${res.status} ${detail.slice(0, 300)}`);
}

/** Longest quiet time of a watch before it is ended and started again (the server ends it after `timeoutSeconds`). */
const WATCH_SECONDS = 300;

const text = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

/** Requests to the API server of a {@link KubeConfig}'s current context (see the module comment). */
export class KubeApi {
  constructor(private readonly kc: KubeConfig) {}

  /** The server URL, without a trailing slash. */
  server(): string {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig has no current cluster with a server');
    return server.replace(/\/+$/, '');
  }

  /** Headers (credentials; read per request, so a rotated service-account token is used) and TLS options. */
  private async options(): Promise<{ headers: Record<string, string>; tls: BunTls }> {
    const o: RequestOptions = {};
    await this.kc.applyToHTTPSOptions(o);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(o.headers ?? {})) if (value !== undefined) headers[name] = String(value);
    if (typeof o.auth === 'string' && headers.Authorization === undefined) headers.Authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
    const tls: BunTls = { rejectUnauthorized: o.rejectUnauthorized !== false };
    const ca = text(o.ca);
    const cert = text(o.cert);
    const key = text(o.key);
    if (ca !== undefined) tls.ca = ca;
    if (cert !== undefined && key !== undefined) {
      tls.cert = cert;
      tls.key = key;
    }
    if (o.servername) tls.serverName = o.servername;
    return { headers, tls };
  }

  /** One request; the parsed JSON answer, or a {@link KubeApiError} for a status other than 2xx. */
  async request<T>(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<T> {
    const { headers, tls } = await this.options();
    const init: RequestInit & { tls: BunTls } = { method, headers: { ...headers, accept: 'application/json' }, tls };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    const res = await fetch(`${this.server()}${path}`, init);
    if (!res.ok) {
      throw await failure(res, `${method} ${path}`);
    }
    return (await res.json()) as T;
  }

  /** Lists `path` (with an optional field selector); the answer's items and resource version. */
  list<T extends KubernetesObject>(path: string, fieldSelector?: string): Promise<KubernetesListObject<T>> {
    const query = fieldSelector ? `?fieldSelector=${encodeURIComponent(fieldSelector)}` : '';
    return this.request<KubernetesListObject<T>>('GET', `${path}${query}`);
  }

  /** A `Watch` for the library's `ListWatch`, making its requests through this API. */
  watcher(): Watch {
    const watch: Watch['watch'] = (path, query, callback, done) => this.watch(path, query, callback, done);
    return { watch } as unknown as Watch;
  }

  /**
   * Watches `path` from `query.resourceVersion`: `callback(type, object)` per event, `done(err)` once when the
   * stream ends (null: ended by the server or after {@link WATCH_SECONDS} of quiet) or fails. Resolves with the
   * controller that stops it once the answer's head arrived (or the request failed: `done` was called then).
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: (type: string, object: unknown, event: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    let finished = false;
    const finish = (err: unknown): void => {
      if (finished) return;
      finished = true;
      clearTimeout(quiet);
      controller.abort();
      done(err);
    };
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const awake = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish(null), (WATCH_SECONDS + 30) * 1000);
    };
    const params = new URLSearchParams({ watch: 'true', allowWatchBookmarks: 'true', timeoutSeconds: String(WATCH_SECONDS) });
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    try {
      const { headers, tls } = await this.options();
      awake();
      const res = await fetch(`${this.server()}${path}?${params}`, { headers, tls, signal: controller.signal } as RequestInit);
      if (res.status !== 200 || !res.body) {
        finish(await failure(res, `watch ${path}`));
        return controller;
      }
      void this.readEvents(res.body, callback, awake).then(
        () => finish(null),
        (err: unknown) => finish(controller.signal.aborted ? null : err),
      );
    } catch (err) {
      finish(err);
    }
    return controller;
  }

  /** Reads newline-delimited watch events until the stream ends. */
  private async readEvents(
    body: ReadableStream<Uint8Array>,
    callback: (type: string, object: unknown, event: unknown) => void,
    awake: () => void,
  ): Promise<void> {
    /** One line: an event, or something else (blank, cut off) that is skipped. */
    const emit = (line: string): void => {
      if (line.trim() === '') return;
      let event: { type?: string; object?: unknown };
      try {
        event = JSON.parse(line) as { type?: string; object?: unknown };
      } catch {
        return; // not an event (the server writes one JSON object per line), or the stream broke off in it
      }
      if (typeof event.type === 'string') callback(event.type, event.object, event);
    };
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of body) {
      awake();
      pending += decoder.decode(chunk, { stream: true });
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        emit(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
    }
    emit(pending); // a last event without its newline
  }
}
