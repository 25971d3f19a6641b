/**
 * Baselines for the proxy benchmark: a Bun HTTP/3 server that answers by itself.
 * `bun bench/direct-h3.ts CERT KEY [sync|async|timer|roundtrip ECHO_PORT]`:
 *   `sync` answers from the handler at once;
 *   `async` answers one event-loop turn later, the answers of a turn handed to Bun together (`nextBatch`), as
 *   Spooky answers once its backend has: what answering later costs at the least;
 *   `timer` answers from a `setTimeout(0)` each (one timer per request, answers spread over turns: about twice
 *   the CPU of `async` and five times the QUIC packets);
 *   `roundtrip` answers once one byte has gone to a TCP echo server (`bun bench/direct-h3.ts --echo`) and come
 *   back over a pool of keep-alive connections, with the answers of one event-loop turn handed to Bun together
 *   (as Spooky does). That is the least any Bun proxy with one TCP round trip per request can cost: no HTTP
 *   parsing, routing or header work at all.
 * Prints `{"port":N}` when ready.
 */
import { nextBatch } from '../src/proxy/next-batch.ts';
import { serveH3Only } from './support.ts';

if (process.argv[2] === '--echo') {
  const echo = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data: (s, d) => void s.write(d) } });
  console.log(JSON.stringify({ port: echo.port }));
} else {
  const [cert = '', key = '', mode = 'sync', echoPort = '0'] = process.argv.slice(2);
  const body = new TextEncoder().encode('hello from the backend\n');
  let fetch: () => Response | Promise<Response> = () => new Response(body);
  if (mode === 'async')
    fetch = async () => {
      await nextBatch();
      return new Response(body);
    };
  if (mode === 'timer') fetch = () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response(body)), 0));
  if (mode === 'roundtrip') {
    const idle: Bun.Socket<{ done: (() => void) | null }>[] = [];
    const waiting: (() => void)[] = [];
    for (let i = 0; i < 128; i++) {
      idle.push(
        await Bun.connect<{ done: (() => void) | null }>({
          hostname: '127.0.0.1',
          port: Number(echoPort),
          data: { done: null },
          socket: {
            data(s) {
              const done = s.data.done as () => void;
              s.data.done = waiting.shift() ?? null;
              if (s.data.done) s.write('x');
              else idle.push(s);
              done();
            },
          },
        }),
      );
    }
    const roundTrip = () =>
      new Promise<void>((done) => {
        const s = idle.pop();
        if (!s) return void waiting.push(done);
        s.data.done = done;
        s.write('x');
      });
    fetch = async () => {
      await roundTrip();
      await nextBatch(); // the answers of one turn go to Bun together, as Spooky does
      return new Response(body);
    };
  }
  serveH3Only(cert, key, fetch);
}
