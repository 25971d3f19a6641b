/**
 * Optional watching of the config file and the certificate files (`reload.watch: true`). Each file's folder
 * is watched (editors and certificate tools often replace a file by renaming a new one over it, and
 * Kubernetes swaps a symlinked folder, which a watch on the file itself would miss); after any event in a
 * watched folder and `debounce_ms` of quiet, the files' signatures (inode, size, modification time, following
 * symlinks) are compared with the last ones seen and `onChange` runs with the files that changed.
 */
import { type FSWatcher, statSync, watch } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/types.ts';
import type { Logger } from '../observability/logger.ts';

/**
 * The files `reload.watch` watches: the config file, every listener certificate and key, every upstream `ca_file`,
 * client certificate and client key.
 */
export function filesToWatch(config: Config, configPath: string): string[] {
  const certificates = config.listeners.flatMap((l) => l.certificates.flatMap((c) => [c.cert, c.key]));
  const upstreamFiles = config.pools.flatMap((p) =>
    [p.tls.ca_file, p.tls.client_certificate, p.tls.client_key].filter((f): f is string => f !== undefined),
  );
  return [...new Set([configPath, ...certificates, ...upstreamFiles])];
}

function signature(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** Watches a set of files and reports changes, debounced. */
export class FileWatcher {
  private readonly dirs = new Map<string, FSWatcher>();
  private signatures = new Map<string, string>();
  private debounceMs = 500;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly onChange: (files: string[]) => void,
    private readonly log: Logger,
  ) {}

  /** The files watched now. */
  files(): string[] {
    return [...this.signatures.keys()];
  }

  /**
   * Watches exactly `files` (an empty list stops watching) with the given debounce in milliseconds. Files
   * watched before keep their last seen signature, so a change that happened meanwhile is still reported.
   */
  update(files: readonly string[], debounceMs: number): void {
    this.debounceMs = debounceMs;
    const wanted = [...new Set(files.map((f) => resolve(f)))];
    const next = new Map<string, string>();
    for (const f of wanted) next.set(f, this.signatures.get(f) ?? signature(f));
    this.signatures = next;
    const dirs = new Set(wanted.map((f) => dirname(f)));
    for (const [dir, w] of this.dirs) {
      if (dirs.has(dir)) continue;
      w.close();
      this.dirs.delete(dir);
    }
    for (const dir of dirs) {
      if (this.dirs.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.kick());
        w.on('error', (err) => this.log.warn({ event: 'watch_error', dir, err: err.message }, `cannot watch ${dir}: ${err.message}`));
        this.dirs.set(dir, w);
      } catch (e) {
        this.log.warn({ event: 'watch_error', dir, err: (e as Error).message }, `cannot watch ${dir}: ${(e as Error).message}`);
      }
    }
    if (wanted.length === 0) this.cancel();
  }

  private kick(): void {
    this.cancel();
    this.timer = setTimeout(() => this.check(), this.debounceMs);
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    this.timer = undefined;
    const changed: string[] = [];
    for (const [file, old] of this.signatures) {
      const now = signature(file);
      if (now === old) continue;
      this.signatures.set(file, now);
      changed.push(file);
    }
    if (changed.length) this.onChange(changed);
  }

  /** Stops watching. */
  close(): void {
    this.cancel();
    for (const w of this.dirs.values()) w.close();
    this.dirs.clear();
    this.signatures.clear();
  }
}
