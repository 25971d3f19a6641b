/** One promise per event-loop turn, so the responses of a turn go to Bun's HTTP/3 server together. */

let pendingTick: Promise<void> | undefined;

/**
 * Resolves in the next check phase of the event loop, once for every caller in this turn. Handing the
 * responses of one event-loop turn to Bun together lets its HTTP/3 server send them in fewer QUIC packets:
 * measured here with an HTTP/1.1 backend, 15 to 25% less CPU per request, for well under a millisecond of
 * added latency.
 */
export function nextBatch(): Promise<void> {
  pendingTick ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      pendingTick = undefined;
      resolve();
    }),
  );
  return pendingTick;
}
