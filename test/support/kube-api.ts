/**
 * A stand-in Kubernetes API server for the ingress-controller tests: a Bun.serve on 127.0.0.1 (port 0) in the
 * test process that keeps objects in memory and speaks the API server's list/watch protocol closely enough for
 * `@kubernetes/client-node` (its typed API clients and its `makeInformer` list-then-watch loop).
 *
 * Kinds served: Ingress, IngressClass (cluster-scoped), Service, EndpointSlice and Secret, each at its real
 * path, both across all namespaces (`/…/ingresses`) and per namespace (`/…/namespaces/{ns}/ingresses`).
 *
 * Behaviour, modelled on kube-apiserver backed by etcd:
 * - Resource versions come from one global counter (strings of increasing integers), bumped by every create,
 *   replace, status write and delete; a DELETED event carries the deletion's resource version.
 * - GET on a collection lists (`<Kind>List` with `metadata.resourceVersion` = the current revision); the
 *   `resourceVersion`, `limit` and `continue` list parameters are ignored (always the whole, newest list).
 *   `labelSelector` supports `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`; `fieldSelector`
 *   supports `path=v`, `path==v` and `path!=v` on any dotted path of the object (`metadata.name`,
 *   `metadata.namespace`, `type` for secrets, …), which is more lenient than the real server.
 * - GET with `watch=true|1` streams newline-delimited watch events (chunked, application/json). With a
 *   `resourceVersion` N the events after N are replayed from the history log, then live ones follow; without
 *   one (or with "0") every current object is sent as ADDED first. If N is older than the history kept
 *   (see `compact()`), the stream carries one `ERROR` event with a 410 Expired Status and ends, as the real
 *   server does. Selector-filtered watches turn "stopped matching" into DELETED and "started matching" into
 *   ADDED. `timeoutSeconds` ends the stream cleanly; `allowWatchBookmarks=true` adds a BOOKMARK after the replay.
 *   A newline is written as soon as the watch opens, because Bun.serve sends no headers before the first chunk
 *   and the client waits for the headers (clients skip blank lines).
 * - GET / PUT / PATCH on `/namespaces/{ns}/ingresses/{name}/status` (and services) read or write `status` only.
 *   PATCH takes `application/json-patch+json` (client-node's default for patch calls), `application/merge-patch+json`
 *   and `application/strategic-merge-patch+json` (treated as a merge patch). PUT honours `metadata.resourceVersion`
 *   (409 Conflict when stale). Every status write is recorded in `statusWrites`.
 * - With a `token`, any request lacking `Authorization: Bearer <token>` gets 401 and a Status object.
 * - `refuseAll(status)` answers every request with that status (an API server starting or overloaded) until
 *   `refuseAll(undefined)`.
 * - Other methods answer 405; unknown paths 404; errors are `Status` objects like the real server's.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'bun';

/** Object metadata as the stand-in stores it (the fields it manages, plus anything the test set). */
export interface KubeObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  generation: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** A stored object: always with apiVersion, kind and managed metadata. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: KubeObjectMeta;
  [key: string]: unknown;
}

/** What `apply` accepts: a plain object or a client-node model (e.g. `V1Ingress`); `kind` and `metadata.name` are required. */
export interface KubeObjectInput {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

/** One request the stand-in received. */
export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. `/apis/networking.k8s.io/v1/ingresses?watch=true&resourceVersion=7`. */
  path: string;
  /** HTTP status answered (a watch that ends with a 410 ERROR event still answered 200). */
  status: number;
  /** For watches: whether it was answered with the 410 Expired ERROR event. */
  expired?: boolean;
}

/** One write to a status subresource. */
export interface StatusWrite {
  method: 'PUT' | 'PATCH';
  kind: string;
  namespace: string;
  name: string;
  /** The request's Content-Type. */
  contentType: string;
  /** The parsed request body (the object for PUT, the patch for PATCH). */
  body: unknown;
  /** `status` after the write. */
  status: unknown;
  /** The object's resource version after the write. */
  resourceVersion: string;
}

/** A watch event as sent on the wire. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Record<string, unknown>;
}

/** The running stand-in. */
export interface KubeApi {
  /** `http://127.0.0.1:port`. */
  readonly url: string;
  /** The listening port. */
  readonly port: number;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Every successful status write, in order. */
  readonly statusWrites: StatusWrite[];
  /** The current (newest) resource version. */
  readonly resourceVersion: string;
  /** Number of watch streams open now. */
  readonly openWatches: number;
  /** Creates or replaces an object (by kind, namespace, name); emits ADDED or MODIFIED. Returns the stored copy. */
  apply<T extends KubeObjectInput>(obj: T): KubeObject;
  /** Deletes an object; emits DELETED. Returns whether it existed. For cluster-scoped kinds namespace is ignored. */
  remove(kind: string, namespace: string | undefined, name: string): boolean;
  /** A copy of a stored object, or undefined. */
  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Every stored object of a kind (copies), optionally in one namespace. */
  list(kind: string, namespace?: string): KubeObject[];
  /** Drops the event history: a watch from any resource version older than the current one now gets 410 Expired. */
  compact(): void;
  /**
   * Ends every open watch stream. Default: abruptly (the connection is cut mid-stream, like an API server
   * crash or a network failure); with `{ graceful: true }` the chunked stream is finished cleanly (like the
   * server's own watch timeout).
   */
  dropWatches(opts?: { graceful?: boolean }): void;
  /** From now on answers every request with `status` and a Status object (503: an API server not up yet); `undefined` ends it. */
  refuseAll(status: number | undefined): void;
  /** Writes a kubeconfig file (cluster at `url`, the token as user credential, current context set) into `dir`; returns its path. */
  kubeconfig(dir: string, opts?: { token?: string; fileName?: string }): string;
  /** Closes every watch and stops the server. */
  stop(): void;
}

interface ResourceType {
  kind: string;
  plural: string;
  group: string;
  version: string;
  namespaced: boolean;
  hasStatus: boolean;
}

const RESOURCES: ResourceType[] = [
  { kind: 'Ingress', plural: 'ingresses', group: 'networking.k8s.io', version: 'v1', namespaced: true, hasStatus: true },
  { kind: 'IngressClass', plural: 'ingressclasses', group: 'networking.k8s.io', version: 'v1', namespaced: false, hasStatus: false },
  { kind: 'Service', plural: 'services', group: '', version: 'v1', namespaced: true, hasStatus: true },
  { kind: 'EndpointSlice', plural: 'endpointslices', group: 'discovery.k8s.io', version: 'v1', namespaced: true, hasStatus: false },
  { kind: 'Secret', plural: 'secrets', group: '', version: 'v1', namespaced: true, hasStatus: false },
];

function apiVersionOf(r: ResourceType): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

function prefixOf(r: ResourceType): string {
  return r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
}

function resourceByKind(kind: string): ResourceType {
  const r = RESOURCES.find((x) => x.kind === kind);
  if (!r) throw new Error(`kube-api stand-in: unsupported kind ${JSON.stringify(kind)} (supported: ${RESOURCES.map((x) => x.kind).join(', ')})`);
  return r;
}

/** One entry of the history log: the event and, for MODIFIED, the object before it (for selector transitions). */
interface HistoryEntry {
  rv: number;
  kind: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  previous?: KubeObject;
}

type Matcher = (obj: KubeObject) => boolean;

interface Watcher {
  kind: string;
  namespace: string | undefined;
  matches: Matcher;
  controller: ReadableStreamDefaultController<Uint8Array>;
  timer: ReturnType<typeof setTimeout> | undefined;
  closed: boolean;
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const encoder = new TextEncoder();

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function statusObject(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

// ---- selectors ----

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function parseLabelSelector(sel: string | null): Matcher {
  if (!sel) return () => true;
  const tests: ((labels: Record<string, string>) => boolean)[] = [];
  for (const term of splitTopLevel(sel)) {
    let m: RegExpMatchArray | null;
    if ((m = term.match(/^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const key = m[1]!;
      const values = new Set(
        m[3]!
          .split(',')
          .map((v) => v.trim())
          .filter((v) => v !== ''),
      );
      const negate = m[2] === 'notin';
      tests.push((l) => (key in l && values.has(l[key]!)) !== negate);
    } else if ((m = term.match(/^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/))) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      tests.push(op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value);
    } else if ((m = term.match(/^!\s*([^\s!=(),]+)$/))) {
      const key = m[1]!;
      tests.push((l) => !(key in l));
    } else if ((m = term.match(/^([^\s!=(),]+)$/))) {
      const key = m[1]!;
      tests.push((l) => key in l);
    } else {
      throw new HttpError(400, 'BadRequest', `unable to parse requirement: ${JSON.stringify(term)}`);
    }
  }
  return (obj) => {
    const labels = obj.metadata.labels ?? {};
    return tests.every((t) => t(labels));
  };
}

function fieldValue(obj: KubeObject, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) cur = isRecord(cur) ? cur[part] : undefined;
  return cur === undefined || cur === null ? '' : String(cur);
}

function parseFieldSelector(sel: string | null): Matcher {
  if (!sel) return () => true;
  const tests: Matcher[] = [];
  for (const term of splitTopLevel(sel)) {
    const m = term.match(/^([^\s!=]+)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw new HttpError(400, 'BadRequest', `invalid field selector: ${JSON.stringify(term)}`);
    const [, path, op, value] = m as unknown as [string, string, string, string];
    tests.push(op === '!=' ? (o) => fieldValue(o, path) !== value : (o) => fieldValue(o, path) === value);
  }
  return (obj) => tests.every((t) => t(obj));
}

// ---- patches ----

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return clone(patch);
  const result: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = mergePatch(result[k], v);
  }
  return result;
}

function pointerParts(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new HttpError(422, 'Invalid', `invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** Resolves all but the last step of a pointer; returns the container and the last key. */
function locate(doc: unknown, pointer: string): { parent: unknown; key: string } {
  const parts = pointerParts(pointer);
  if (parts.length === 0) throw new HttpError(422, 'Invalid', 'JSON patch on the document root is not supported');
  let cur = doc;
  for (const p of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isRecord(cur)) cur = cur[p];
    else cur = undefined;
    if (cur === undefined) throw new HttpError(422, 'Invalid', `JSON patch path ${pointer} does not exist`);
  }
  return { parent: cur, key: parts[parts.length - 1]! };
}

function pointerGet(doc: unknown, pointer: string): unknown {
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent)) return parent[Number(key)];
  return isRecord(parent) ? parent[key] : undefined;
}

function pointerAdd(doc: unknown, pointer: string, value: unknown, replace: boolean): void {
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new HttpError(422, 'Invalid', `bad array index in ${pointer}`);
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else if (isRecord(parent)) {
    if (replace && !(key in parent)) throw new HttpError(422, 'Invalid', `replace: ${pointer} does not exist`);
    parent[key] = value;
  } else throw new HttpError(422, 'Invalid', `JSON patch path ${pointer} has no container`);
}

function pointerRemove(doc: unknown, pointer: string): void {
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent) && Number(key) < parent.length) parent.splice(Number(key), 1);
  else if (isRecord(parent) && key in parent) delete parent[key];
  else throw new HttpError(422, 'Invalid', `remove: ${pointer} does not exist`);
}

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test), applied in place to `doc`. */
function jsonPatch(doc: unknown, ops: unknown): void {
  if (!Array.isArray(ops)) throw new HttpError(400, 'BadRequest', 'a JSON patch must be an array of operations');
  for (const op of ops) {
    if (!isRecord(op) || typeof op.op !== 'string' || typeof op.path !== 'string')
      throw new HttpError(400, 'BadRequest', 'malformed JSON patch operation');
    const path = op.path;
    switch (op.op) {
      case 'add':
        pointerAdd(doc, path, clone(op.value), false);
        break;
      case 'replace':
        pointerAdd(doc, path, clone(op.value), true);
        break;
      case 'remove':
        pointerRemove(doc, path);
        break;
      case 'move':
      case 'copy': {
        if (typeof op.from !== 'string') throw new HttpError(400, 'BadRequest', `${op.op} needs "from"`);
        const value = clone(pointerGet(doc, op.from));
        if (op.op === 'move') pointerRemove(doc, op.from);
        pointerAdd(doc, path, value, false);
        break;
      }
      case 'test':
        if (JSON.stringify(pointerGet(doc, path)) !== JSON.stringify(op.value)) throw new HttpError(422, 'Invalid', `test failed at ${path}`);
        break;
      default:
        throw new HttpError(400, 'BadRequest', `unknown JSON patch operation ${JSON.stringify(op.op)}`);
    }
  }
}

// ---- the server ----

/**
 * Starts the stand-in. With `token`, every request must carry `Authorization: Bearer <token>`. With `tls` it
 * serves HTTPS with that certificate, and `kubeconfig()` names it as the cluster's CA (as a real cluster's
 * kubeconfig and service account do), instead of plain HTTP with `insecure-skip-tls-verify`.
 */
export async function startKubeApi(opts: { token?: string; tls?: { cert: string; key: string } } = {}): Promise<KubeApi> {
  const token = opts.token;
  /** kind → "namespace/name" → object. */
  const stores = new Map<string, Map<string, KubeObject>>(RESOURCES.map((r) => [r.kind, new Map()]));
  let revision = 0;
  /** Events with rv > compactedAt are in `history`. */
  let compactedAt = 0;
  let history: HistoryEntry[] = [];
  let uidCounter = 0;
  const watchers = new Set<Watcher>();
  const requests: RecordedRequest[] = [];
  const statusWrites: StatusWrite[] = [];

  const keyOf = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;
  const storeOf = (kind: string) => stores.get(resourceByKind(kind).kind)!;

  function send(w: Watcher, event: WatchEvent): void {
    if (w.closed) return;
    try {
      w.controller.enqueue(encoder.encode(`${JSON.stringify(event)}\n`));
    } catch {
      closeWatcher(w, 'graceful');
    }
  }

  function closeWatcher(w: Watcher, how: 'graceful' | 'abrupt'): void {
    if (w.closed) return;
    w.closed = true;
    watchers.delete(w);
    if (w.timer) clearTimeout(w.timer);
    try {
      if (how === 'abrupt') w.controller.error(new Error('watch dropped by the test'));
      else w.controller.close();
    } catch {
      // already closed by the client
    }
  }

  /** The event a watcher should see for a history entry, if any (selector transitions become ADDED/DELETED). */
  function eventFor(w: Watcher, e: HistoryEntry): WatchEvent | undefined {
    if (e.kind !== w.kind) return undefined;
    if (w.namespace !== undefined && e.object.metadata.namespace !== w.namespace) return undefined;
    const now = w.matches(e.object);
    if (e.type === 'MODIFIED' && e.previous) {
      const before = w.matches(e.previous);
      if (before && now) return { type: 'MODIFIED', object: e.object };
      if (!before && now) return { type: 'ADDED', object: e.object };
      if (before && !now) return { type: 'DELETED', object: e.object };
      return undefined;
    }
    return now ? { type: e.type, object: e.object } : undefined;
  }

  function record(kind: string, type: HistoryEntry['type'], object: KubeObject, previous?: KubeObject): void {
    const entry: HistoryEntry = { rv: revision, kind, type, object: clone(object), previous: previous && clone(previous) };
    history.push(entry);
    for (const w of [...watchers]) {
      const ev = eventFor(w, entry);
      if (ev) send(w, ev);
    }
  }

  function put(r: ResourceType, obj: KubeObject, previous: KubeObject | undefined): KubeObject {
    revision++;
    obj.metadata.resourceVersion = String(revision);
    stores.get(r.kind)!.set(keyOf(obj.metadata.namespace, obj.metadata.name), obj);
    record(r.kind, previous ? 'MODIFIED' : 'ADDED', obj, previous);
    return clone(obj);
  }

  function apply<T extends KubeObjectInput>(input: T): KubeObject {
    const raw = clone(input) as unknown as Record<string, unknown>;
    const r = resourceByKind(String(raw.kind ?? ''));
    const meta = (isRecord(raw.metadata) ? raw.metadata : {}) as Partial<KubeObjectMeta>;
    if (!meta.name) throw new Error('kube-api stand-in: apply() needs metadata.name');
    if (r.namespaced) meta.namespace = meta.namespace || 'default';
    else delete meta.namespace;
    const previous = stores.get(r.kind)!.get(keyOf(meta.namespace, meta.name));
    const obj = { ...raw, apiVersion: apiVersionOf(r), kind: r.kind, metadata: meta } as KubeObject;
    if (previous) {
      meta.uid = previous.metadata.uid;
      meta.creationTimestamp = previous.metadata.creationTimestamp;
      const specChanged = JSON.stringify(obj.spec) !== JSON.stringify(previous.spec);
      meta.generation = previous.metadata.generation + (specChanged ? 1 : 0);
    } else {
      meta.uid = meta.uid || `00000000-0000-4000-8000-${(++uidCounter).toString(16).padStart(12, '0')}`;
      meta.creationTimestamp = meta.creationTimestamp || new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      meta.generation = 1;
    }
    return put(r, obj, previous);
  }

  function remove(kind: string, namespace: string | undefined, name: string): boolean {
    const r = resourceByKind(kind);
    const store = stores.get(r.kind)!;
    const key = keyOf(r.namespaced ? (namespace ?? 'default') : undefined, name);
    const obj = store.get(key);
    if (!obj) return false;
    store.delete(key);
    revision++;
    obj.metadata.resourceVersion = String(revision);
    record(r.kind, 'DELETED', obj);
    return true;
  }

  function get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const r = resourceByKind(kind);
    const obj = stores.get(r.kind)!.get(keyOf(r.namespaced ? (namespace ?? 'default') : undefined, name));
    return obj && clone(obj);
  }

  function listObjects(kind: string, namespace: string | undefined, matches: Matcher = () => true): KubeObject[] {
    return [...storeOf(kind).values()]
      .filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && matches(o))
      .sort((a, b) => keyOf(a.metadata.namespace, a.metadata.name).localeCompare(keyOf(b.metadata.namespace, b.metadata.name)))
      .map(clone);
  }

  function openWatch(r: ResourceType, namespace: string | undefined, q: URLSearchParams, matches: Matcher, rec: RecordedRequest): Response {
    const rvParam = q.get('resourceVersion') ?? '';
    const from = rvParam === '' ? 0 : Number(rvParam);
    if (!Number.isInteger(from) || from < 0) throw new HttpError(400, 'BadRequest', `invalid resourceVersion ${JSON.stringify(rvParam)}`);
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? 0);
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    let watcher: Watcher | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const w: Watcher = { kind: r.kind, namespace, matches, controller, timer: undefined, closed: false };
        watcher = w;
        // Headers go out with the first chunk only: write one right away (a blank line, which clients skip).
        controller.enqueue(encoder.encode('\n'));
        if (from !== 0 && from < compactedAt) {
          rec.expired = true;
          send(w, { type: 'ERROR', object: statusObject(410, 'Expired', `too old resource version: ${from} (${compactedAt})`) });
          w.closed = true;
          controller.close();
          return;
        }
        if (from === 0) {
          for (const obj of listObjects(r.kind, namespace, matches)) send(w, { type: 'ADDED', object: obj });
        } else {
          for (const e of history) {
            if (e.rv <= from) continue;
            const ev = eventFor(w, e);
            if (ev) send(w, ev);
          }
        }
        if (bookmarks)
          send(w, { type: 'BOOKMARK', object: { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(revision) } } });
        if (timeoutSeconds > 0) w.timer = setTimeout(() => closeWatcher(w, 'graceful'), timeoutSeconds * 1000);
        watchers.add(w);
      },
      cancel() {
        if (watcher) {
          watcher.closed = true;
          watchers.delete(watcher);
          if (watcher.timer) clearTimeout(watcher.timer);
        }
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-cache, private' } });
  }

  async function writeStatus(req: Request, r: ResourceType, namespace: string, name: string): Promise<Response> {
    const store = stores.get(r.kind)!;
    const current = store.get(keyOf(namespace, name));
    if (!current) throw new HttpError(404, 'NotFound', `${r.plural}.${r.group || 'core'} "${name}" not found`);
    const contentType = (req.headers.get('content-type') ?? '').split(';')[0]!.trim();
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      throw new HttpError(400, 'BadRequest', 'request body is not valid JSON');
    }
    let newStatus: unknown;
    if (req.method === 'PUT') {
      if (!isRecord(body)) throw new HttpError(400, 'BadRequest', 'PUT body must be an object');
      const sentRv = isRecord(body.metadata) ? body.metadata.resourceVersion : undefined;
      if (sentRv !== undefined && sentRv !== '' && sentRv !== current.metadata.resourceVersion) {
        throw new HttpError(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${r.plural}.${r.group} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        );
      }
      newStatus = clone(body.status);
    } else if (contentType === 'application/merge-patch+json' || contentType === 'application/strategic-merge-patch+json') {
      newStatus = (mergePatch(clone(current), body) as Record<string, unknown>).status;
    } else if (contentType === 'application/json-patch+json') {
      const doc = clone(current);
      jsonPatch(doc, body);
      newStatus = doc.status;
    } else {
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
      );
    }
    const updated = clone(current);
    if (newStatus === undefined) delete updated.status;
    else updated.status = newStatus;
    const stored = put(r, updated, current);
    statusWrites.push({
      method: req.method as 'PUT' | 'PATCH',
      kind: r.kind,
      namespace,
      name,
      contentType,
      body,
      status: clone(stored.status),
      resourceVersion: stored.metadata.resourceVersion,
    });
    return json(stored);
  }

  let refusing: number | undefined;

  async function handle(req: Request, rec: RecordedRequest): Promise<Response> {
    if (refusing !== undefined) return json(statusObject(refusing, 'ServiceUnavailable', 'refused by the test'), refusing);
    if (token !== undefined && req.headers.get('authorization') !== `Bearer ${token}`) {
      return json(statusObject(401, 'Unauthorized', 'Unauthorized'), 401);
    }
    const url = new URL(req.url);
    const r = RESOURCES.find((x) => url.pathname === prefixOf(x) || url.pathname.startsWith(`${prefixOf(x)}/`));
    const rest = r ? url.pathname.slice(prefixOf(r).length).split('/').filter(Boolean) : [];
    // Route: [plural] | [plural, name] (cluster-scoped) | [namespaces, ns, plural] | [namespaces, ns, plural, name(, status)]
    let res: ResourceType | undefined;
    let namespace: string | undefined;
    let name: string | undefined;
    let sub: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      res = RESOURCES.find((x) => x.namespaced && prefixOf(x) === prefixOf(r!) && x.plural === rest[2]);
      [namespace, name, sub] = [rest[1], rest[3], rest[4]];
      if (rest.length > 5) res = undefined;
    } else if (rest.length >= 1) {
      res = RESOURCES.find((x) => prefixOf(x) === prefixOf(r!) && x.plural === rest[0]);
      if (res?.namespaced && rest.length > 1) res = undefined;
      [name, sub] = [rest[1], rest[2]];
      if (rest.length > 3) res = undefined;
    }
    if (!res || (sub !== undefined && !(sub === 'status' && res.hasStatus))) {
      throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (name === undefined) {
      if (req.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `the stand-in does not support ${req.method} on a collection`);
      const matchLabels = parseLabelSelector(url.searchParams.get('labelSelector'));
      const matchFields = parseFieldSelector(url.searchParams.get('fieldSelector'));
      const matches: Matcher = (o) => matchLabels(o) && matchFields(o);
      const watch = url.searchParams.get('watch');
      if (watch === 'true' || watch === '1') return openWatch(res, namespace, url.searchParams, matches, rec);
      return json({
        apiVersion: apiVersionOf(res),
        kind: `${res.kind}List`,
        metadata: { resourceVersion: String(revision) },
        items: listObjects(res.kind, namespace, matches),
      });
    }
    if (sub === 'status' && (req.method === 'PUT' || req.method === 'PATCH')) return writeStatus(req, res, namespace!, name);
    if (req.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `the stand-in does not support ${req.method} here`);
    const obj = stores.get(res.kind)!.get(keyOf(namespace, name));
    if (!obj) throw new HttpError(404, 'NotFound', `${res.plural}${res.group ? `.${res.group}` : ''} "${name}" not found`);
    return json(obj);
  }

  const server: Server<unknown> = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    development: false,
    idleTimeout: 0, // watches stay open for as long as the client keeps them
    ...(opts.tls ? { tls: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    async fetch(req) {
      const url = new URL(req.url);
      const rec: RecordedRequest = { method: req.method, path: url.pathname + url.search, status: 0 };
      requests.push(rec);
      let res: Response;
      try {
        res = await handle(req, rec);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        res = json(statusObject(err.code, err.reason, err.message), err.code);
      }
      rec.status = res.status;
      return res;
    },
  });
  const port = server.port!;
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    url,
    port,
    requests,
    statusWrites,
    get resourceVersion() {
      return String(revision);
    },
    get openWatches() {
      return watchers.size;
    },
    apply,
    remove,
    get,
    list: (kind, namespace) => listObjects(kind, namespace),
    compact() {
      compactedAt = revision;
      history = [];
    },
    dropWatches(o = {}) {
      for (const w of [...watchers]) closeWatcher(w, o.graceful ? 'graceful' : 'abrupt');
    },
    kubeconfig(dir, o = {}) {
      const tok = o.token ?? token;
      mkdirSync(dir, { recursive: true });
      const path = join(dir, o.fileName ?? 'kubeconfig');
      const user = tok === undefined ? '{}' : `\n    token: ${JSON.stringify(tok)}`;
      writeFileSync(
        path,
        `apiVersion: v1
kind: Config
clusters:
- name: stand-in
  cluster:
    server: ${url}
    ${opts.tls ? `certificate-authority-data: ${Buffer.from(opts.tls.cert).toString('base64')}` : 'insecure-skip-tls-verify: true'}
users:
- name: stand-in
  user: ${user}
contexts:
- name: stand-in
  context:
    cluster: stand-in
    user: stand-in
    namespace: default
current-context: stand-in
preferences: {}
`,
      );
      return path;
    },
    refuseAll(status) {
      refusing = status;
    },
    stop() {
      for (const w of [...watchers]) closeWatcher(w, 'graceful');
      server.stop(true);
    },
  };
}
