/**
 * The one check Spooky can make on an HTTP/3 request's `:method`, which Bun does not hand over as sent.
 *
 * Measured on Bun 1.4.5 (test/integration/h3-bad-input.test.ts): Bun's HTTP/3 server recognises the methods
 * it knows (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, TRACE, PURGE, PROPFIND, ...; case-insensitively)
 * and turns every other `:method` (missing, empty, `GE T`, an extension method such as `FOO`) into `GET`,
 * with a request body stream. A real GET over HTTP/3 never has a body stream in Bun (DATA on a GET is
 * dropped; a GET with `content-length` gets `req.body === null`). So a GET with a body stream is a request
 * whose method Spooky cannot know, and forwarding it as GET would change what it means: it is refused (400).
 */

/**
 * Why an HTTP/3 request must be refused because of its method, or undefined when it is fine.
 * @param method `req.method` as Bun gives it.
 * @param hasBody whether `req.body` is not null.
 */
export function h3MethodProblem(method: string, hasBody: boolean): string | undefined {
  if (hasBody && method === 'GET') return 'HTTP/3 :method missing, malformed or not known to Bun (it arrives as GET with a body)';
  return undefined;
}
