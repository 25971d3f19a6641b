/**
 * SIGHUP while Spooky starts. Loading Spooky's modules takes a few hundred milliseconds, during which SIGHUP's
 * default action would end the process (a deploy tool's reload racing a restart). The entry point (`main.ts`)
 * installs this guard before it loads anything else; start-up hands the guard's place to a handler of its own
 * once it can log, and that handler also gets the signals noted meanwhile. This module imports nothing, so it is
 * loaded at once.
 */

let noted = 0;
const note = (): void => {
  noted++;
};

/** Starts noting SIGHUP instead of dying from it. */
export function guardStartupSignals(): void {
  process.on('SIGHUP', note);
}

/**
 * Ends the guard: `handler` is called once for every SIGHUP the guard noted, then handles every later one.
 * Returns a function that removes `handler` again.
 */
export function handOverStartupSignals(handler: () => void): () => void {
  process.off('SIGHUP', note);
  for (; noted > 0; noted--) handler();
  process.on('SIGHUP', handler);
  return () => process.off('SIGHUP', handler);
}
