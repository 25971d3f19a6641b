/**
 * The request path: target and host checks -> limits -> route -> header hygiene -> pick a backend and
 * forward (trying another backend when nothing was sent) -> stream the response back. Every request ends in
 * exactly one access-log record, written when the response body has been delivered, cancelled or failed.
 */

import type { Server } from 'bun';
import type { HeaderRules, PoolConfig } from '../config/types.ts';
import { asSpookyError, PUBLIC_MESSAGE, SpookyError } from '../errors.ts';
import { clientKey } from '../lib/cidr.ts';
import { type Clock, MAX_TIMER_MS } from '../lib/clock.ts';
import { parseContentLength } from '../lib/http-syntax.ts';
import { systemRandom } from '../lib/random.ts';
import { type FieldRecord, type HeaderLookup, RequestFields } from '../lib/request-fields.ts';
import type { AccessLog, ClientProtocol, RequestRecord } from '../observability/access-log.ts';
import { NO_OBSERVER, type ProxyObserver } from '../observability/events.ts';
import { addResponseLabels, requestLabels } from '../observability/labels.ts';
import type { Logger } from '../observability/logger.ts';
import { PASS_THROUGH_TRACING, type Tracing } from '../observability/trace-context.ts';
import { backoffDelay } from '../resilience/backoff.ts';
import { InMemoryRateLimiter, type RateLimiter } from '../resilience/rate-limiter.ts';
import { RetryBudget } from '../resilience/retry-budget.ts';
import { routeInput } from '../router/router.ts';
import type { Generation, PoolRuntime, RouteTarget } from '../runtime/generation.ts';
import type { BackendGate } from '../upstream/backend-gate.ts';
import type { PoolMember } from '../upstream/endpoint.ts';
import { SMALL_BODY_BYTES } from '../upstream/transport.ts';
import { admitToBackend, preferFreeBackend } from './backend-limits.ts';
import { bodyOrNone } from './body-peek.ts';
import type { BodySample, BodySampler } from './body-sampling.ts';
import { compressBytes, compressStream, planCompression } from './compression.ts';
import { h3MethodProblem } from './h3-method.ts';
import { applyToHeaders, applyToList } from './header-rules.ts';
import { buildUpstreamHeaders, clientAddressFrom, hostForAttempt, requestIdOf, sanitizeResponseHeaders } from './headers.ts';
import { DEFAULT_ALLOW, decrementMaxForwards, maxForwardsOf } from './max-forwards.ts';
import { nextBatch } from './next-batch.ts';
import { applyRateLimits } from './rate-limit.ts';
import { type ChunkReader, DeclaredLengthReader } from './request-body.ts';
import { parseRequestTarget } from './request-target.ts';
import { mayRetry } from './retry.ts';
import { forwardWebSocket, isWebSocketUpgrade } from './websocket.ts';

/** What the handler needs from the process. */
export interface ProxyDeps {
  /** The current generation (read once per request). */
  generation(): Generation;
  /** Time source. */
  clock: Clock;
  /** Error log. */
  log: Logger;
  /** The access log, or null when it is off (read per request, so a reload can switch it and its sampling). */
  accessLog(): Pick<AccessLog, 'write'> | null;
  /** Body sampling of routes with `body_sampling`. Default: none. */
  bodySampler?: BodySampler;
  /** Request-path events for metrics and tracing. Default: none. */
  observer?: ProxyObserver;
  /** Store of the rate-limit buckets. Default: in-process ({@link InMemoryRateLimiter}). */
  rateLimiter?: RateLimiter;
  /** Spans and trace context. Default: trace ids only ({@link PASS_THROUGH_TRACING}). */
  tracing?: Tracing;
  /**
   * True once a drain ran out of time and Spooky cuts what is still in flight: a request that ends as aborted
   * then says so in its log line (status 499 either way). Default: never.
   */
  cutting?(): boolean;
}

const H1_ONLY_HEADERS = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'];
/** Names an object lists first, in numeric order: canonical array indices. */
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * HTTP/1.1 or HTTP/2 for a TCP request. Bun does not say; two signals do: headers that only exist in HTTP/1.1
 * (certain), and the position of `host` (Bun appends `host`, made from `:authority`, after the other well-known
 * headers of an HTTP/2 request, while HTTP/1.1 clients send Host first).
 */
export function tcpProtocol(headers: Pick<HeaderLookup, 'has'> & { toJSON(): FieldRecord }): 'h2' | 'h1.1' {
  for (const name of H1_ONLY_HEADERS) if (headers.has(name)) return 'h1.1';
  const names = Object.keys(headers.toJSON());
  let first = names[0];
  // JavaScript lists integer-like keys (a field named `7`) before all others, whatever their order was.
  if (first !== undefined && ARRAY_INDEX.test(first)) first = names.find((n) => !ARRAY_INDEX.test(n));
  return first === 'host' ? 'h1.1' : 'h2';
}

const VIA: Record<ClientProtocol, string> = { h3: '3 spooky', h2: '2 spooky', 'h1.1': '1.1 spooky' };
const processTag = Math.floor(Math.random() * 0x100000000)
  .toString(36)
  .padStart(7, '0');
let requestCounter = 0;

/** A short id unique within this process run. */
export function nextRequestId(): string {
  requestCounter++;
  return `${processTag}-${requestCounter.toString(36)}`;
}

function errorResponse(err: SpookyError, requestId: string, altSvc: string | undefined, extra?: Record<string, string>): Response {
  const status = err.status === 499 ? 400 : err.status;
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'x-request-id': requestId };
  if (altSvc) headers['alt-svc'] = altSvc;
  if (
    err.code === 'no_healthy_backend' ||
    err.code === 'overloaded' ||
    err.code === 'too_many_concurrent' ||
    err.code === 'queue_full' ||
    err.code === 'queue_timeout'
  )
    headers['retry-after'] = '1';
  if (extra) Object.assign(headers, extra);
  if (status === 413 || status === 431 || status === 400 || status === 408) headers.connection = 'close';
  return new Response(`${status} ${PUBLIC_MESSAGE[err.code]}\n`, { status, headers });
}

/** Wraps a request body to enforce the size limit and count bytes; `touched` tells whether reading started. */
class BodyMeter {
  bytes = 0;
  touched = false;
  tooLarge = false;
  /** A read from the client is pending: the client, not the backend, is what the upload waits for. */
  waitingForClient = false;
  readonly stream: ReadableStream<Uint8Array>;
  private readonly reader: ChunkReader;
  private cut: SpookyError | undefined;

  constructor(source: ReadableStream<Uint8Array>, limit: number, declared?: number) {
    const reader: ChunkReader = declared === undefined ? source.getReader() : new DeclaredLengthReader(source.getReader(), declared);
    this.reader = reader;
    this.stream = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          this.touched = true;
          this.waitingForClient = true;
          let chunk: Awaited<ReturnType<ChunkReader['read']>>;
          try {
            chunk = await reader.read();
          } catch (e) {
            if (!this.cut) throw e;
            chunk = { done: true };
          } finally {
            this.waitingForClient = false;
          }
          if (this.cut) {
            controller.error(this.cut);
            return;
          }
          const { done, value } = chunk;
          if (done) {
            controller.close();
            return;
          }
          this.bytes += value.byteLength;
          if (this.bytes > limit) {
            this.tooLarge = true;
            const err = new SpookyError('body_too_large', `request body over ${limit} bytes`);
            void reader.cancel(err).catch(() => {});
            controller.error(err);
            return;
          }
          controller.enqueue(value);
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    );
  }

  /** Stops reading the client's body: the stream fails with `err` (a pending read ends at once). */
  cutOff(err: SpookyError): void {
    if (this.cut) return;
    this.cut = err;
    void this.reader.cancel(err).catch(() => {});
  }
}

/** One stream over bytes already in memory (a buffered request body, sent again on each attempt). */
function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

/**
 * Relays a response body: counts the bytes handed on with `onChunk`, and cuts it when it stalls: no chunk for
 * `idleMs` (0: no idle limit), or past the monotonic `deadline` (infinite: none). `onTimeout` gets the reason
 * and returns the error the stream fails with; the upstream reader is cancelled so the transport ends the
 * exchange. `onDone` is called once, when the last byte was handed on (`end`), the relay failed (`error`) or
 * its reader went away (`cancel`: the client left). One wrapper for all, so a body is never wrapped twice.
 */
function relayBody(
  source: ReadableStream<Uint8Array>,
  onChunk: ((bytes: number) => void) | undefined,
  idleMs: number,
  deadline: number,
  clock: Clock,
  onTimeout: (reason: string, byClient: boolean) => SpookyError,
  onDone?: (outcome: 'end' | 'error' | 'cancel') => void,
  /** Milliseconds the request already waited for the backend before its response head (counted as the backend's). */
  waitedForHead = 0,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  const timed = idleMs > 0 || deadline !== Number.POSITIVE_INFINITY;
  let done = false;
  // The deadline holds whatever the client does: a client that reads slowly (each read finds data waiting, so
  // the race in relayOne never loses) or not at all is cut at the deadline too.
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  const finish = (outcome: 'end' | 'error' | 'cancel') => {
    if (done) return;
    done = true;
    clearTimeout(deadlineTimer);
    onDone?.(outcome);
  };
  // Who the relay waited for, in total: the backend (a read pending) or the client (to ask for more). At the
  // deadline, the one that took more of the time is the one it is charged to (a slow reader is not the backend's
  // fault); which one it waits for at that very moment says little, as buffers on both sides fill and drain.
  let readingSince = -1;
  let backendWaitMs = waitedForHead;
  let clientWaitMs = 0;
  let handedAt = clock.now();
  const clientsFault = (): boolean => {
    const now = clock.now();
    const backend = backendWaitMs + (readingSince >= 0 ? now - readingSince : 0);
    const client = clientWaitMs + (readingSince < 0 ? now - handedAt : 0);
    return client > backend;
  };
  const cut = (controller: ReadableStreamDefaultController<Uint8Array>, reason: string, byClient = false) => {
    if (done) return;
    const err = onTimeout(reason, byClient);
    void reader.cancel(err).catch(() => {});
    finish('error');
    controller.error(err);
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (deadline === Number.POSITIVE_INFINITY) return;
        deadlineTimer = setTimeout(
          () => cut(controller, 'response over timeouts.request_ms', clientsFault()),
          Math.min(MAX_TIMER_MS, Math.max(0, deadline - clock.now())),
        );
      },
      async pull(controller) {
        try {
          await relayOne(controller);
        } catch (e) {
          finish('error');
          throw e;
        }
      },
      cancel: (reason) => {
        finish('cancel');
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );

  async function relayOne(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    let result: Awaited<ReturnType<typeof reader.read>> | 'timeout';
    if (!timed) result = await reader.read();
    else {
      const untilDeadline = deadline - clock.now();
      const wait = idleMs > 0 ? Math.min(idleMs, untilDeadline) : untilDeadline;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const expired = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, wait));
      });
      const asked = clock.now();
      clientWaitMs += asked - handedAt;
      readingSince = asked;
      try {
        result = await Promise.race([reader.read(), expired]);
      } finally {
        handedAt = clock.now();
        backendWaitMs += handedAt - asked;
        readingSince = -1;
      }
      clearTimeout(timer);
      if (done) return; // cut at the deadline meanwhile
      if (result === 'timeout') {
        const idle = idleMs > 0 && idleMs <= untilDeadline;
        // idle_ms: the backend sent nothing; the deadline: charged as the deadline timer would (see clientsFault).
        cut(controller, idle ? `no response data for ${idleMs} ms (timeouts.idle_ms)` : 'response over timeouts.request_ms', !idle && clientsFault());
        return;
      }
    }
    if (result.done) {
      finish('end');
      controller.close();
    } else {
      onChunk?.(result.value.byteLength);
      controller.enqueue(result.value);
    }
  }
}

/** The 408 of a client that did not send its request body within `timeouts.request_ms`. */
function clientTimeout(requestMs: number): SpookyError {
  return new SpookyError('client_timeout', `the client did not send its request body within timeouts.request_ms (${requestMs} ms)`);
}

/** Waits `ms`, or less when `signal` fires first. */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * The backend for the next attempt after `tried` (now excluded), when the pool has another one and the budget
 * (unless `free`) allows a retry; else undefined. Called only once a retry was found allowed by the policy.
 */
function otherBackend(
  pool: PoolRuntime,
  hashKey: string | undefined,
  exclude: Set<string>,
  tried: PoolMember,
  now: number,
  budget: RetryBudget | undefined,
  free: boolean,
): PoolMember | undefined {
  exclude.add(tried.id);
  const candidate = pool.picker.pick({ hashKey, exclude, now });
  if (!candidate) return undefined;
  if (budget && !free && !budget.tryRetry(now)) return undefined;
  return candidate;
}

const budgets = new WeakMap<PoolConfig, RetryBudget>();

/** The retry budget of a pool (one per pool per config generation). */
function budgetOf(pool: PoolConfig, policy: { ratio: number; min_per_second: number }): RetryBudget {
  let b = budgets.get(pool);
  if (!b) {
    b = new RetryBudget({ ratio: policy.ratio, minPerSecond: policy.min_per_second });
    budgets.set(pool, b);
  }
  return b;
}

/** The `Alt-Svc` value every answer over TCP carries: HTTP/3 on the same port, remembered for a day. */
export function altSvcFor(port: number | undefined): string {
  return `h3=":${port}"; ma=86400`;
}

/** Creates the fetch handler for the traffic listeners. */
export function createProxyHandler(
  deps: ProxyDeps,
): (req: Request, server: Server<unknown>, transport: 'h3' | 'tcp') => Promise<Response | undefined> {
  const { clock, log } = deps;
  const observer = deps.observer ?? NO_OBSERVER;
  const tracing = deps.tracing ?? PASS_THROUGH_TRACING;
  // Admission: requests in flight now, in all and per client IP (entries are removed at 0, so the map holds
  // at most one entry per request in flight).
  let inFlight = 0;
  const perClient = new Map<string, number>();
  const rateLimiter: RateLimiter = deps.rateLimiter ?? new InMemoryRateLimiter(100_000);

  // Resolves with undefined once the request became a WebSocket session (Bun answers 101 itself).
  return async function handle(req: Request, server: Server<unknown>, transport: 'h3' | 'tcp'): Promise<Response | undefined> {
    const started = clock.now();
    observer.requestStart();
    const gen = deps.generation();
    const cfg = gen.config;
    const access = deps.accessLog();
    const peer = server.requestIP(req)?.address ?? '';
    // Every later header lookup reads this one copy (see RequestFields).
    const fields = RequestFields.of(req.headers);
    const requestId = requestIdOf(fields.get('x-request-id'), peer, gen.trusted, nextRequestId);
    const protocol: ClientProtocol = transport === 'h3' ? 'h3' : tcpProtocol(fields);
    const altSvc = transport === 'tcp' ? altSvcFor(server.port) : undefined;
    const via = VIA[protocol];
    const trace = tracing.start(fields, req.method, protocol);
    const rec: RequestRecord = {
      request_id: requestId,
      trace_id: trace.traceId,
      client: peer,
      protocol,
      method: req.method,
      host: '',
      path: '',
      status: 0,
      bytes_in: 0,
      bytes_out: 0,
      duration_ms: 0,
      attempts: 0,
    };
    let logged = false;
    // The request body's meter, once there is one: every log line counts what was received, failures included.
    let bodyMeter: BodyMeter | undefined;
    let admitted: string | undefined;
    let sample: BodySample | undefined;
    const finish = (status: number, error?: SpookyError): void => {
      if (logged) return;
      logged = true;
      if (admitted !== undefined) {
        inFlight--;
        const n = (perClient.get(admitted) ?? 1) - 1;
        if (n > 0) perClient.set(admitted, n);
        else perClient.delete(admitted);
      }
      rec.status = status;
      if (bodyMeter) rec.bytes_in = bodyMeter.bytes;
      if (error) {
        rec.error = error.code;
        rec.error_detail =
          error.code === 'client_aborted' && deps.cutting?.() === true
            ? 'cut by Spooky at the end of the drain (shutdown.drain_timeout_ms)'
            : error.message;
      }
      rec.duration_ms = Math.round((clock.now() - started) * 1000) / 1000;
      access?.write(rec);
      observer.requestEnd(rec);
      trace.end(rec);
      sample?.close();
    };
    /** The matched route's response rules when they apply to Spooky's own answers too (`always`). */
    let answerRules: HeaderRules | undefined;
    const fail = (err: SpookyError, extra?: Record<string, string>): Response => {
      finish(err.status, err);
      const res = errorResponse(err, requestId, altSvc, extra);
      if (answerRules !== undefined) applyToHeaders(res.headers, answerRules);
      return res;
    };

    const target = parseRequestTarget(req.url, fields.get('host'), req.method);
    if (!target.ok) return fail(new SpookyError(target.code, target.reason));
    rec.host = target.host;
    rec.path = target.path;
    if (transport === 'h3') {
      const bad = h3MethodProblem(req.method, req.body !== null);
      if (bad !== undefined) return fail(new SpookyError('bad_request', bad));
    }
    if (target.target.length > cfg.limits.max_uri_bytes)
      return fail(new SpookyError('uri_too_long', `request target of ${target.target.length} bytes`));

    const clientIp = clientAddressFrom(peer, fields, gen.trusted);
    rec.client = clientIp;
    const lim = cfg.limits;
    if (lim.max_in_flight > 0 && inFlight >= lim.max_in_flight) return fail(new SpookyError('overloaded', `${inFlight} requests in flight`));
    if (lim.max_in_flight_per_client > 0) {
      const key = clientKey(clientIp); // an IPv6 client counts by its /64
      const mine = perClient.get(key) ?? 0;
      if (mine >= lim.max_in_flight_per_client) return fail(new SpookyError('too_many_concurrent', `${mine} requests in flight from ${key}`));
      perClient.set(key, mine + 1);
      admitted = key;
      inFlight++;
    } else if (lim.max_in_flight > 0) {
      perClient.set('', (perClient.get('') ?? 0) + 1);
      admitted = '';
      inFlight++;
    }

    const matched: RouteTarget | undefined = gen.router.match(routeInput(target.host, target.path, req.method, fields, target.rawQuery));
    if (!matched) return fail(new SpookyError('no_route', `no route for ${target.host}${target.path}`));
    const pool = matched.pool;
    rec.route = matched.routeId;
    rec.pool = pool.name;
    if (matched.route.response_headers?.always === true) answerRules = matched.route.response_headers;
    // What the backend is asked for: the routed path, rewritten when the route says so, with the client's query.
    let upstreamTarget = target.target;
    if (matched.rewrite !== undefined) {
      const rewritten = matched.rewrite(target.path);
      if (rewritten === undefined) return fail(new SpookyError('bad_request', `the rewrite of ${target.path} would have a dot segment`));
      upstreamTarget = rewritten + target.rawQuery;
    }
    // Custom metric labels from the request, before any refusal of the route (405, 429) so those count too.
    const labels = requestLabels(pool.config, matched.routeId, fields);
    if (labels) rec.labels = labels;
    if (matched.clientAllowed !== undefined && !matched.clientAllowed(clientIp))
      return fail(new SpookyError('forbidden', `client ${clientIp} is not admitted by the client_ips of ${matched.routeId}`));
    const allowed = matched.route.allowed_methods;
    if (allowed !== undefined && !allowed.includes(req.method))
      return fail(new SpookyError('method_not_allowed', `${req.method} not allowed on ${matched.routeId}`), { allow: allowed.join(', ') });
    const method = req.method;
    const maxForwards = method === 'OPTIONS' || method === 'TRACE' ? maxForwardsOf(method, fields.get('max-forwards')) : undefined;
    if (maxForwards === 0) {
      // Max-Forwards: 0 on OPTIONS or TRACE: Spooky is the final recipient (RFC 9110 section 7.6.2). OPTIONS is
      // answered with what the route allows; TRACE is never reflected (it would echo credentials to a script).
      const allow = allowed?.join(', ') ?? DEFAULT_ALLOW;
      if (req.method === 'TRACE') return fail(new SpookyError('method_not_allowed', 'TRACE with Max-Forwards: 0 is not reflected'), { allow });
      finish(200);
      const headers: Record<string, string> = { allow, 'x-request-id': requestId };
      if (altSvc) headers['alt-svc'] = altSvc;
      return new Response(null, { status: 200, headers });
    }
    const rules = matched.route.rate_limits;
    if (rules !== undefined) {
      let refused: Record<string, string> | undefined;
      try {
        refused = await applyRateLimits(rateLimiter, rules, { clientIp, headers: fields }, clock.now());
      } catch (e) {
        // Only `redis.failure_mode: deny` throws here: the shared store could not answer.
        return fail(asSpookyError(e), { 'retry-after': '1' });
      }
      if (refused) return fail(new SpookyError('rate_limited', `over a rate limit of ${matched.routeId}`), refused);
    }
    const auth = matched.basicAuth;
    if (auth !== undefined) {
      // After the rate limits, so they also bound how many passwords a client can try.
      const checked = auth.check(fields.get('authorization'), clientKey(clientIp));
      const outcome = checked instanceof Promise ? await checked : checked;
      if ('error' in outcome)
        return fail(outcome.error, outcome.error.code === 'unauthorized' ? { 'www-authenticate': auth.challenge } : { 'retry-after': '1' });
      rec.user = outcome.user;
    }

    const built = buildUpstreamHeaders({
      headers: fields,
      clientIp: peer,
      listenerProto: 'https',
      authority: target.authority,
      host: target.host,
      hostPolicy: pool.config.host_policy,
      backendAuthority: pool.members[0]?.endpoint.authority ?? '',
      trusted: gen.trusted,
      via,
      requestId,
    });
    if (!built.ok) return fail(new SpookyError(built.code, built.reason));
    if (maxForwards !== undefined) decrementMaxForwards(built.headers, maxForwards);
    const requestRules = matched.route.request_headers;
    if (requestRules !== undefined) built.headers = applyToList(built.headers, requestRules);
    if (built.headerBytes > cfg.limits.max_header_bytes) return fail(new SpookyError('headers_too_large', `${built.headerBytes} header bytes`));
    const limit = matched.route.max_request_body_bytes ?? cfg.limits.max_request_body_bytes;
    if (built.contentLength !== undefined && built.contentLength > limit) {
      return fail(new SpookyError('body_too_large', `content-length ${built.contentLength} over ${limit}`));
    }

    let clientBody = built.contentLength === 0 ? null : req.body;
    // Of unknown length: over HTTP/3 possibly none at all (see body-peek.ts).
    if (clientBody !== null && built.contentLength === undefined) clientBody = await bodyOrNone(clientBody);
    sample = matched.route.body_sampling
      ? deps.bodySampler?.begin(matched.route.body_sampling, {
          requestId,
          traceId: rec.trace_id,
          route: matched.routeId,
          headers: req.headers,
          body: clientBody,
        })
      : undefined;
    const meter = clientBody ? new BodyMeter(sample?.requestBody ?? clientBody, limit, built.contentLength) : undefined;
    bodyMeter = meter;
    const timeouts = pool.config.timeouts;
    const retries = pool.config.retries;
    const deadline = timeouts.request_ms > 0 ? started + timeouts.request_ms : Number.POSITIVE_INFINITY;
    // A body with a declared length that fits the buffer is read first so it can be sent again.
    let buffered: Uint8Array | undefined;
    if (meter && built.contentLength !== undefined && built.contentLength <= retries.buffer_body_bytes) {
      // timeouts.request_ms covers reading the body too: a client that sends it too slowly gets 408.
      const cut =
        deadline === Number.POSITIVE_INFINITY
          ? undefined
          : setTimeout(() => meter.cutOff(clientTimeout(timeouts.request_ms)), Math.max(0, deadline - clock.now()));
      try {
        buffered = await new Response(meter.stream).bytes();
      } catch (e) {
        const err = asSpookyError(e);
        return fail(
          meter.tooLarge
            ? new SpookyError('body_too_large', 'request body over the limit')
            : req.signal.aborted
              ? new SpookyError('client_aborted', 'client went away while sending the body')
              : err,
        );
      } finally {
        clearTimeout(cut);
      }
    }
    const budget = retries.budget ? budgetOf(pool.config, retries.budget) : undefined;
    budget?.request(started);
    const hashKey = pool.hashKey({
      clientIp,
      headers: fields,
      path: target.path,
      rawQuery: target.rawQuery,
      authority: target.authority,
      method: req.method,
    });

    let exclude: Set<string> | undefined;
    /** The backend for another attempt after `tried` failed with `err` (or a retryable status), if policy, budget and pool allow one. */
    const retryTarget = (tried: PoolMember, err: SpookyError | undefined, free: boolean): PoolMember | undefined => {
      const bodyState = { hasBody: meter !== undefined, buffered: buffered !== undefined, touched: meter?.touched ?? false };
      if (rec.attempts >= retries.attempts || req.signal.aborted || clock.now() >= deadline || !mayRetry(retries, req.method, bodyState, err))
        return undefined;
      exclude ??= new Set();
      return otherBackend(pool, hashKey, exclude, tried, clock.now(), budget, free);
    };
    let lastError: SpookyError | undefined;
    let next: PoolMember | undefined;
    /** This pass re-balances an attempt whose backend went out while it waited in its queue (its backoff is done). */
    let rebalancing = false;
    if (transport === 'tcp' && protocol === 'h1.1' && isWebSocketUpgrade(method, fields)) {
      return forwardWebSocket({
        req,
        server,
        fields,
        headers: built.headers,
        target: upstreamTarget,
        pool,
        requestId,
        altSvc,
        rec,
        clock,
        timeoutMs: Math.min(timeouts.connect_ms + timeouts.response_header_ms, MAX_TIMER_MS),
        pick: () => pool.picker.pick({ hashKey, exclude, now: clock.now() }),
        retry: (tried, err) => retryTarget(tried, err, true),
        fail,
        finish,
      });
    }
    for (;;) {
      let member: PoolMember | undefined = next ?? pool.picker.pick({ hashKey, exclude, now: clock.now() });
      next = undefined;
      if (member && pool.limited === true && hashKey === undefined && !member.hasCapacity())
        member = preferFreeBackend(pool, member, exclude, clock.now());
      if (!member) return fail(lastError ?? new SpookyError('no_healthy_backend', `pool ${pool.name} has no available backend`));
      const backoffDone = rebalancing;
      rebalancing = false;
      if (rec.attempts > 0 && retries.backoff.base_ms > 0 && !backoffDone) {
        const delay = Math.min(
          backoffDelay(
            rec.attempts - 1,
            { baseMs: retries.backoff.base_ms, capMs: retries.backoff.cap_ms, jitter: retries.backoff.jitter },
            systemRandom,
          ),
          deadline - clock.now(),
        );
        if (delay > 0) {
          await sleepUnlessAborted(delay, req.signal);
          if (req.signal.aborted) return fail(new SpookyError('client_aborted', 'the client went away during the retry backoff'));
          // The backend picked before the wait may have gone out meanwhile (circuit opened, health, ejection).
          if (!member.available()) {
            member = pool.picker.pick({ hashKey, exclude, now: clock.now() });
            if (!member) return fail(lastError ?? new SpookyError('no_healthy_backend', `pool ${pool.name} has no available backend`));
          }
        }
      }
      let headerTimeout = timeouts.response_header_ms;
      if (retries.per_try_timeout_ms > 0 && retries.per_try_timeout_ms < headerTimeout) headerTimeout = retries.per_try_timeout_ms;
      if (deadline !== Number.POSITIVE_INFINITY) {
        const left = Math.floor(deadline - clock.now());
        if (left <= 0) return fail(lastError ?? new SpookyError('upstream_timeout', `request over timeouts.request_ms (${timeouts.request_ms} ms)`));
        if (left < headerTimeout) headerTimeout = left;
      }
      let gate: BackendGate | null = null;
      if (pool.limited === true && member.endpoint.gate !== null) {
        gate = member.endpoint.gate;
        const refused = await admitToBackend(gate, req.signal);
        if (refused) {
          rec.backend = member.id;
          return fail(refused);
        }
        // The backend may have gone out while this request waited in its queue (circuit opened, health, ejection):
        // the slot goes back and another backend is picked, as nginx re-selects a server for a queued request.
        if (!member.available()) {
          gate.release();
          rebalancing = true;
          continue;
        }
        // The wait in the queue counts against timeouts.request_ms.
        if (deadline !== Number.POSITIVE_INFINITY) headerTimeout = Math.max(1, Math.min(headerTimeout, Math.floor(deadline - clock.now())));
      }
      rec.attempts++;
      rec.backend = member.id;
      const endpoint = member.endpoint;
      const attempt = rec.attempts;
      const headers = trace.attemptStart(hostForAttempt(built.headers, pool.config.host_policy, endpoint.authority), {
        pool: pool.name,
        backend: member.id,
        route: matched.routeId,
        attempt,
        url: endpoint.url,
        method: req.method,
      });
      // With timeouts.request_ms, a timer ends the attempt at the deadline even while the request body is still
      // being sent (the transport's header timeout starts only after the body): 504, or 408 when the upload was
      // waiting for the client. Without it (the default) nothing is added to the request path.
      let attemptSignal = req.signal;
      let deadlineError: SpookyError | undefined;
      let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
      let unlinkAbort: (() => void) | undefined;
      if (deadline !== Number.POSITIVE_INFINITY) {
        const ac = new AbortController();
        const forward = () => ac.abort(req.signal.reason);
        if (req.signal.aborted) forward();
        else req.signal.addEventListener('abort', forward);
        unlinkAbort = () => req.signal.removeEventListener('abort', forward);
        deadlineTimer = setTimeout(
          () => {
            deadlineError = meter?.waitingForClient
              ? clientTimeout(timeouts.request_ms)
              : new SpookyError('upstream_timeout', `no response within timeouts.request_ms (${timeouts.request_ms} ms)`);
            if (deadlineError.code === 'client_timeout') meter?.cutOff(deadlineError);
            ac.abort(deadlineError);
          },
          Math.max(0, deadline - clock.now()),
        );
        attemptSignal = ac.signal;
      }
      const startedAt = endpoint.begin();
      let headersAt: number | undefined;
      let status = 0;
      let responded = false;
      let ended = false;
      let endError: SpookyError | undefined;
      let bodyTimeout: SpookyError | undefined;
      // The response body received so far (after any wrapping), cancelled if this attempt fails after the head.
      let received: ReadableStream<Uint8Array> | undefined;
      /** The attempt was reported to the observers at its response headers. */
      let headReported = false;
      /** The backend's part of this attempt is over: charge it and give back its concurrency slot. */
      const endAttempt = (at: number | undefined, error: SpookyError | undefined, st: number): void => {
        clearTimeout(deadlineTimer);
        unlinkAbort?.();
        endpoint.end(startedAt, at, error, st);
        gate?.release();
        // A failure after the head (the body broke off or timed out) still counts as the backend's error.
        if (headReported && error !== undefined && error.source === 'upstream')
          observer.attemptFailedAfterHead({ pool: pool.name, backend: member.id, error: error.code });
      };
      // The exchange is over: charge the backend and, once the response was handed on, log the request.
      // Until the head has been processed (`responded`), the code after `request()` settles instead, so a
      // transport that ends the exchange before resolving (small bodies) is still charged the real status.
      // A streamed body is logged once its relay is over too, not when the backend finished: up to about
      // 64 KiB can still be queued for the client then (bytes_out, duration_ms, and a client that leaves
      // meanwhile is a 499).
      let relaying = false;
      let relayOutcome: 'end' | 'error' | 'cancel' | undefined;
      let backendSettled = false;
      const logIfDone = (): void => {
        if (!backendSettled || (relaying && relayOutcome === undefined)) return;
        // A cut by the relay's deadline can come after the backend finished (the rest still queued for the client).
        const err =
          endError ??
          bodyTimeout ??
          (relayOutcome === 'cancel' ? new SpookyError('client_aborted', 'the client went away before the end of the response') : undefined);
        finish(err?.code === 'client_aborted' ? 499 : status, err);
      };
      const settle = (): void => {
        endAttempt(headersAt, endError, status);
        backendSettled = true;
        logIfDone();
      };
      const onRelayDone = (outcome: 'end' | 'error' | 'cancel'): void => {
        relayOutcome = outcome;
        if (responded) logIfDone();
      };
      const onEnd = (error?: SpookyError): void => {
        if (ended) return;
        ended = true;
        endError = bodyTimeout ?? error;
        if (responded) settle();
      };
      try {
        const up = await endpoint.transport.request(
          {
            method: req.method,
            target: upstreamTarget,
            headers,
            body: buffered ? bytesStream(buffered) : meter ? meter.stream : null,
            contentLength: built.contentLength,
            signal: attemptSignal,
          },
          { connectTimeoutMs: timeouts.connect_ms, responseHeaderTimeoutMs: headerTimeout, onEnd },
        );
        clearTimeout(deadlineTimer); // from here relayBody watches the deadline
        headersAt = clock.now();
        status = up.status;
        if (up.body instanceof ReadableStream) received = up.body;
        const done = { pool: pool.name, backend: member.id, attempt, status, upstream_ms: headersAt - startedAt };
        observer.attemptEnd(done);
        trace.attemptEnd(done);
        headReported = true;
        if (retries.statuses.length > 0 && retries.statuses.includes(status)) {
          next = retryTarget(member, undefined, false);
          if (next) {
            // Drop this answer and try another backend; the backend is charged its status.
            const wasEnded = ended;
            ended = true;
            if (up.body instanceof ReadableStream) void up.body.cancel().catch(() => {});
            endAttempt(headersAt, wasEnded ? endError : undefined, status);
            lastError = undefined;
            continue;
          }
        }
        if (rec.labels) addResponseLabels(pool.config, up.headers, rec.labels);
        // Via names the version the response was received with (RFC 9110 section 7.6.3): the backend's.
        const resVia = (up.version ?? (endpoint.protocol === 'http1' ? '1.1' : '2')) === '1.1' ? '1.1 spooky' : '2 spooky';
        const resHeaders = sanitizeResponseHeaders(up.headers, { via: resVia });
        if (altSvc) resHeaders.set('alt-svc', altSvc);
        const responseRules = matched.route.response_headers;
        if (responseRules !== undefined) applyToHeaders(resHeaders, responseRules);
        // Compression is decided on the backend's head; the body is compressed once Spooky holds it (or as it streams).
        const compression = matched.route.compression;
        // The backend's declared length, read before compression drops the field (for the small-body read below).
        const declared = up.body instanceof ReadableStream ? resHeaders.get('content-length') : null;
        const coding =
          compression === undefined ? undefined : planCompression(req.method, status, resHeaders, compression, fields.get('accept-encoding'));
        // A HEAD answer the backend sent without a length: Bun would add `content-length: 0`, claiming the GET's
        // body is empty (RFC 9110 section 8.6). With `transfer-encoding: chunked` Bun's HTTP/1.1 server sends the
        // head alone; its HTTP/2 and HTTP/3 servers drop the field and still add the 0 (no way around it there).
        if (req.method === 'HEAD' && status !== 204 && status !== 304 && !resHeaders.has('content-length'))
          resHeaders.set('transfer-encoding', 'chunked');
        let body = up.body;
        // A streamed body is compressed before the relay, so the relay's timers and byte count see what leaves.
        if (coding !== undefined && body instanceof ReadableStream) body = compressStream(body, coding);
        // Bytes actually relayed (not the declared length: a body can break off before it).
        const onChunk = (n: number): void => {
          rec.bytes_out += n;
        };
        if (body instanceof ReadableStream) {
          // A declared length up to SMALL_BODY_BYTES that did not come with the head is read completely before
          // answering: Bun drops `content-length` from a body streamed in several chunks, and over HTTP/3 it
          // ends a stream whose body fails with a clean FIN, so a client could not tell a cut-off body from a
          // whole one. Read first, a break-off becomes a 502 (or 504) instead. The client is still waiting for
          // the head meanwhile, so the read is bounded by response_header_ms as well.
          const length = declared === null ? -1 : parseContentLength(declared);
          const small = length >= 0 && length <= SMALL_BODY_BYTES;
          const headDeadline = headersAt + timeouts.response_header_ms;
          const bounded = small && headDeadline < deadline;
          body = relayBody(
            body,
            onChunk,
            timeouts.idle_ms,
            bounded ? headDeadline : deadline,
            clock,
            (reason, byClient) => {
              // A small body is read by Spooky itself, never paced by the client.
              bodyTimeout =
                byClient && !small
                  ? new SpookyError('client_timeout', `the client did not read the response within timeouts.request_ms (${timeouts.request_ms} ms)`)
                  : new SpookyError(
                      'upstream_timeout',
                      bounded && !reason.includes('idle_ms')
                        ? `response body not complete within timeouts.response_header_ms (${timeouts.response_header_ms} ms)`
                        : reason,
                    );
              log.warn(
                { event: 'response_timeout', request_id: requestId, pool: pool.name, backend: member.id, reason: bodyTimeout.message },
                'response stream cut',
              );
              return bodyTimeout;
            },
            onRelayDone,
            headersAt - startedAt,
          );
          if (small) {
            received = body;
            try {
              body = await new Response(body).bytes();
            } catch (e) {
              const err = bodyTimeout ?? asSpookyError(e);
              ended = true;
              endAttempt(headersAt, err, status);
              rec.bytes_out = 0; // what was read was never sent
              if (err.code !== 'client_aborted' && err.code !== 'upstream_timeout')
                log.warn(
                  { event: 'response_cut', request_id: requestId, pool: pool.name, backend: member.id, reason: err.message },
                  'response body broke off before its content-length',
                );
              return fail(
                err.code === 'client_aborted' || err.code === 'upstream_timeout'
                  ? err
                  : new SpookyError('upstream_reset', err.message, { cause: err }),
              );
            }
            received = undefined;
          }
        } else if (body instanceof Uint8Array) rec.bytes_out = body.byteLength;
        relaying = body instanceof ReadableStream;
        if (coding !== undefined && body !== null) {
          rec.encoding = coding;
          if (up.body instanceof Uint8Array) {
            // The whole body came with the head: compressed in one call.
            body = compressBytes(up.body, coding);
            rec.bytes_out = body.byteLength;
          }
        }
        // Sampled after compression: the sample shows the bytes and headers (content-encoding) the client gets.
        if (sample) body = sample.response(up.status, resHeaders, body);
        // Built before the exchange can be settled, so a Response that cannot be made fails this attempt once.
        if (body instanceof ReadableStream) received = body;
        // Bun gives a bytes body a default `content-type: application/octet-stream`; a body the backend sent
        // without a type must reach the client without one (RFC 9110 section 8.3: the client may sniff), so it
        // goes as a one-chunk stream, which Bun sends with no type (and, above a few hundred bytes, without its
        // length: chunked over HTTP/1.1, to the end of the stream over HTTP/2 and HTTP/3; see the README).
        if (body instanceof Uint8Array && !resHeaders.has('content-type')) body = bytesStream(body);
        const response = new Response(body, { status: up.status, headers: resHeaders });
        responded = true;
        if (ended) settle();
        if (transport === 'h3') await nextBatch();
        return response;
      } catch (e) {
        const err = deadlineError ?? asSpookyError(e);
        if (received !== undefined) void received.cancel(err).catch(() => {});
        ended = true;
        // A timeout counts as a latency sample, so latency-aware balancing moves away from a hanging backend.
        endAttempt(err.code === 'upstream_timeout' ? clock.now() : undefined, err, 0);
        if (!headReported) {
          const failed = { pool: pool.name, backend: member.id, attempt, status: 0, error: err.code, upstream_ms: clock.now() - startedAt };
          observer.attemptEnd(failed);
          trace.attemptEnd(failed);
        }
        if (meter?.tooLarge) return fail(new SpookyError('body_too_large', 'request body over the limit'));
        if (err.code === 'internal') log.error({ event: 'proxy_error', request_id: requestId, err }, 'unexpected error while forwarding');
        lastError = err;
        // A connect failure put no load on a backend: it does not spend the retry budget.
        next = retryTarget(member, err, err.code === 'upstream_connect_failed' && err.retryable);
        if (next) continue;
        return fail(err);
      }
    }
  };
}
