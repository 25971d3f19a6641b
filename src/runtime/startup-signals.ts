/**
 * SIGHUP while Spooky starts. Loading Spooky's modules takes a few hundred milliseconds, during which SIGHUP's
 * default action would end the process (a deploy tool's reload racing a restart). The entry point (`main.ts`)
 * installs this guard before it loads anything else; start-up takes the signals it noted once it can log them
 * and installs a handler of its own. This module imports nothing, so it is loaded at once.
 */

let noted = 0;
const note = (): void => {
  noted++;
};

/** Starts noting SIGHUP instead of dying from it. */
export function guardStartupSignals(): void {
  process.on('SIGHUP', note);
}

/** Stops the guard and returns how many SIGHUPs it noted; call it right before installing a SIGHUP handler. */
export function takeStartupSignals(): number {
  process.off('SIGHUP', note);
  const n = noted;
  noted = 0;
  return n;
}
