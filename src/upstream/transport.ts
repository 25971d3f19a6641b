/**
 * The upstream side behind one interface: the proxy hands a sanitised request to a Transport bound to one
 * backend and gets the response head plus a streaming body. Implementations: HTTP/1.1 (own keep-alive pool
 * over Bun sockets) and HTTP/2 (own client in `./h2/`, TLS or cleartext).
 */

/** A request ready to go to a backend. Headers are already sanitised (no hop-by-hop, no CR/LF, lower-case names). */
export interface UpstreamRequest {
  /** Method, upper case. */
  method: string;
  /** Origin-form target: path plus optional `?query`. Starts with `/` (or is `*` for OPTIONS). */
  target: string;
  /** Header list in order, names lower case. Includes `host`. Never `content-length`/`transfer-encoding` (the transport decides framing). */
  headers: [string, string][];
  /** Request body, or null for none. */
  body: ReadableStream<Uint8Array> | null;
  /** Body length when the client declared it; undefined when unknown (then HTTP/1.1 uses chunked). */
  contentLength?: number;
  /** Aborts the exchange (client went away, timeout). */
  signal: AbortSignal;
}

/** Largest declared response body a transport may read completely before handing the response over. */
export const SMALL_BODY_BYTES = 64 * 1024;

/** The response head and streaming body from a backend. */
export interface UpstreamResponse {
  /** Final status (1xx informational responses are consumed by the transport). */
  status: number;
  /** Response headers as received, names lower case (hop-by-hop removal is the proxy's job). */
  headers: [string, string][];
  /**
   * The body: a stream; or the whole body as bytes when it is small (a declared length up to
   * {@link SMALL_BODY_BYTES}) and was read completely before the head was handed over (then the exchange is
   * already over and `onEnd` has been called); or null when the response has no body (HEAD, 204, 304).
   * Handing small bodies over as bytes saves a JavaScript stream per request on the hot path.
   */
  body: ReadableStream<Uint8Array> | Uint8Array | null;
  /** HTTP version the response came with (`1.1` or `2`), for the `Via` Spooky adds towards the client. */
  version?: '1.1' | '2';
}

/** Called exactly once when the exchange is over: the body ended, was cancelled, or failed. */
export type ExchangeEnd = (error?: import('../errors.ts').SpookyError) => void;

/** Per-exchange options. */
export interface ExchangeOptions {
  /** Connect timeout in milliseconds. */
  connectTimeoutMs: number;
  /** Milliseconds from the request being sent until response headers arrive. */
  responseHeaderTimeoutMs: number;
  /** Called once when the whole exchange is over (see {@link ExchangeEnd}). */
  onEnd?: ExchangeEnd;
}

/** Live counters of a transport, for tests and /status. */
export interface TransportStats {
  /** Connections opened since start. */
  connectionsOpened: number;
  /** Connections open now. */
  connectionsOpen: number;
  /** Connections idle in the pool now. */
  connectionsIdle: number;
  /** HTTP/2 only: request header blocks sent (HEADERS), since start. */
  requestHeaderBlocks?: number;
  /** HTTP/2 only: HPACK-encoded bytes of those header blocks (without frame headers). */
  requestHeaderBytes?: number;
}

/** A WebSocket handshake to send to a backend (see {@link Transport.openWebSocket}). */
export interface WebSocketRequest {
  /** Origin-form target: path plus optional `?query`. */
  target: string;
  /**
   * End-to-end request headers in order, names lower case, including `host`; without the handshake's own fields
   * (`sec-websocket-key`, `-version`, `-extensions`, `-protocol`, `upgrade`, `connection`), which the client makes.
   */
  headers: [string, string][];
  /** Subprotocols the client offered (`sec-websocket-protocol`), in its order; empty for none. */
  protocols: string[];
  /** Milliseconds the connect plus the handshake may take. */
  timeoutMs: number;
  /** Abandons the handshake (the client went away): the socket is closed. */
  signal: AbortSignal;
}

/** The outcome of a WebSocket handshake: the open socket, or the status the backend answered instead of 101. */
export type WebSocketDial = { ok: true; socket: WebSocket } | { ok: false; status: number };

/** One backend's connection pool and protocol client. */
export interface Transport {
  /**
   * Sends one request. Resolves with the response head once headers arrive; rejects only with a SpookyError:
   * `upstream_connect_failed` (retryable: nothing was sent), `upstream_reset`, `upstream_protocol_error`,
   * `upstream_timeout`, or `client_aborted` when `signal` fired.
   */
  request(req: UpstreamRequest, opts: ExchangeOptions): Promise<UpstreamResponse>;
  /**
   * Opens a WebSocket to the backend on a connection of its own (HTTP/1.1 handshake, `wss://` with the
   * backend's TLS policy), which counts against the backend's `max_connections` while it is open. Rejects only
   * with a SpookyError: `upstream_connect_failed` (retryable), `queue_full` (every connection the backend may
   * have is in use), `upstream_timeout`, `upstream_protocol_error`, `client_aborted` (the signal fired) or
   * `bad_request`.
   */
  openWebSocket(req: WebSocketRequest): Promise<WebSocketDial>;
  /** Counters. */
  stats(): TransportStats;
  /** Closes idle connections now and every connection once its exchange ends; later requests fail. */
  close(): void;
}
