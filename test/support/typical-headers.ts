/** A typical proxied request's header set, shared by the HTTP/2 tests and the benchmarks. */

/**
 * The header set the proxy typically forwards to a backend (browser headers plus Spooky's forwarding headers),
 * without `host`, with per-request ids made from `i`; `host` is the authority named in the forwarding headers,
 * `client` the forwarded client address (default `203.0.113.7`).
 */
export function typicalProxyHeaders(i: number, host: string, client = '203.0.113.7'): [string, string][] {
  return [
    ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'],
    ['accept', 'application/json, text/plain, */*'],
    ['accept-encoding', 'gzip, deflate, br'],
    ['accept-language', 'en-US,en;q=0.5'],
    ['cookie', 'session=0123456789abcdef01234567'],
    ['x-forwarded-for', client],
    ['x-forwarded-proto', 'https'],
    ['x-forwarded-host', host],
    ['forwarded', `for=${client};proto=https;host=${host}`],
    ['via', '2 spooky'],
    ['x-request-id', `0190a1b2-c3d4-7e5f-8a9b-${String(i).padStart(12, '0')}`],
    ['traceparent', `00-${i.toString(16).padStart(32, '0')}-${(i + 1).toString(16).padStart(16, '0')}-01`],
  ];
}
