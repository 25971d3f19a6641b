/**
 * The log files and their reopening for log rotation (logrotate's rename-then-signal pattern): on SIGUSR1
 * every file destination is reopened at its configured path, so after a rename the next lines go to a new
 * file there. SonicBoom (pino's destination) finishes the write in progress into the old file first and
 * sends everything buffered after it to the new one, so no line is lost or written twice. A destination on
 * stdout is left alone. Open and write errors of a destination are logged instead of crashing the process.
 */
import type { Logger } from 'pino';

/** What reopening needs from a log destination (pino's SonicBoom). */
export interface ReopenableDestination {
  /** Reopens the file at its path. */
  reopen(): void;
  /** Error and readiness events of the file. */
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** Called once the (re)opened file is ready. */
  on(event: 'ready', listener: () => void): unknown;
  /** Called once the destination is closed after {@link end}. */
  on(event: 'close', listener: () => void): unknown;
  /** The listeners of an event (to find the one a reopen added). */
  listeners(event: 'ready'): ((...args: unknown[]) => void)[];
  /** Removes a listener. */
  removeListener(event: 'ready', listener: (...args: unknown[]) => void): unknown;
  /** Writes out what is buffered, then closes (the close event follows). */
  end(): void;
}

/** One log destination and the file it writes (undefined for stdout). */
export interface LogDestination {
  /** File path, or undefined for stdout. */
  path: string | undefined;
  /** The destination. */
  dest: ReopenableDestination;
}

/** Reopen attempts by result. */
export interface ReopenCounts {
  /** Files reopened. */
  success: number;
  /** Files that could not be reopened (their lines keep going to the old file). */
  failure: number;
}

/** A log file: its path, destination, and the state of a reopen in progress. */
interface FileEntry {
  path: string;
  dest: ReopenableDestination;
  reopening: boolean;
  /**
   * The `ready` listeners there were when the reopen in progress began. SonicBoom adds one for the reopen (at
   * once, or when the write in progress ends) that closes the file open before once the new one is ready. After a
   * failed reopen that file is still the current one, and the listener, left behind, would close it when the
   * next reopen succeeds, after that reopen's own listener did: a second close (EBADF, or whichever file got the
   * number meanwhile). So a failed reopen removes every listener added since it began.
   */
  readyBefore: Set<(...args: unknown[]) => void> | null;
}

/** The process's log files, reopened together. */
export class LogFiles {
  /** Reopen results since start. */
  readonly reopens: ReopenCounts = { success: 0, failure: 0 };
  private readonly files: FileEntry[] = [];
  /** Every distinct destination, stdout included. */
  private readonly all: ReopenableDestination[] = [];
  private log: Logger | undefined;

  /** Reopens `destinations` on request (each destination once, however many paths share it). */
  constructor(
    destinations: readonly LogDestination[],
    /** Where problems go when the log itself cannot take them. */
    private readonly stderr: (line: string) => void = (line) => process.stderr.write(line),
  ) {
    const seen = new Set<ReopenableDestination>();
    for (const { path, dest } of destinations) {
      if (seen.has(dest)) continue;
      seen.add(dest);
      this.all.push(dest);
      const entry: FileEntry | undefined = path === undefined ? undefined : { path, dest, reopening: false, readyBefore: null };
      // Without a listener an error event would be thrown. pino re-emits each error of its destination on that
      // destination (anything but EPIPE), so the same error object comes twice: it is reported once.
      const reported = new WeakSet<Error>();
      dest.on('error', (err) => {
        if (reported.has(err)) return;
        reported.add(err);
        this.failed(entry, err);
      });
      if (!entry) continue;
      dest.on('ready', () => this.opened(entry));
      this.files.push(entry);
    }
  }

  /** The logger that reports reopen results (set once it exists). */
  attach(log: Logger): void {
    this.log = log;
  }

  /**
   * Ends every destination and resolves once each has written out what it had and closed. Only for the way
   * out of the process: nothing can be logged after it. `flush()` is not enough there: with Bun, the last
   * asynchronous writes of a SonicBoom were lost at `process.exit` after its flush had called back (the final
   * lines missing in 9 of 150 runs of a small script; none with end-and-close).
   */
  close(): Promise<void> {
    const closing = this.all.map(
      (d) =>
        new Promise<void>((resolve) => {
          d.on('close', () => resolve());
          try {
            d.end();
          } catch {
            resolve();
          }
        }),
    );
    return Promise.all(closing).then(() => undefined);
  }

  /** The file paths that a reopen covers. */
  paths(): string[] {
    return this.files.map((f) => f.path);
  }

  /** Reopens every file (asynchronous; the result is logged). Returns the paths being reopened; none for stdout. */
  reopen(): string[] {
    const started: string[] = [];
    for (const f of this.files) {
      try {
        f.reopening = true;
        f.readyBefore = new Set(f.dest.listeners('ready'));
        f.dest.reopen();
        started.push(f.path);
      } catch (e) {
        this.failed(f, e as Error);
      }
    }
    if (started.length === 0) this.log?.info({ event: 'log_reopen', files: [] }, 'SIGUSR1: no log file to reopen (logging to stdout)');
    return started;
  }

  private opened(f: FileEntry): void {
    if (!f.reopening) return;
    f.reopening = false;
    f.readyBefore = null;
    this.reopens.success++;
    this.log?.info({ event: 'log_reopen', file: f.path }, `log file reopened: ${f.path}`);
  }

  private failed(f: FileEntry | undefined, err: Error): void {
    const reopening = f?.reopening === true;
    if (f && reopening && f.readyBefore !== null) {
      const before = f.readyBefore;
      for (const l of f.dest.listeners('ready')) if (!before.has(l)) f.dest.removeListener('ready', l);
      f.readyBefore = null;
    }
    if (f) f.reopening = false;
    if (reopening) this.reopens.failure++;
    const what = reopening
      ? `cannot reopen log file ${f?.path}; lines keep going to the file open before`
      : `log output error${f ? ` (${f.path})` : ''}`;
    this.stderr(`spooky: ${what}: ${err.message}\n`);
    try {
      this.log?.error({ event: reopening ? 'log_reopen_failed' : 'log_error', file: f?.path, err: err.message }, what);
    } catch {}
  }
}
