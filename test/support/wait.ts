/** Polling with a deadline: the one way tests wait for something to become true (never a bare sleep). */

/** Polls `fn` every `everyMs` until it returns a truthy value (returned) or `timeoutMs` passes (then throws with `what`). */
export async function waitUntil<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = 'condition', everyMs = 10): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}
