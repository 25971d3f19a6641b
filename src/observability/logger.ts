/**
 * Structured logging with pino: JSON lines (default) or a plain text line per record. Lifecycle and error
 * records carry an `event` field; access-log records have `event: "access"`.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import type { LogConfig } from '../config/types.ts';
import { AccessLog } from './access-log.ts';
import { BodySampleLog } from './body-sample.ts';
import { LogFiles } from './log-files.ts';

/** pino's logger, the type every module logs through. */
export type { Logger } from 'pino';

/** Control characters a terminal acts on: C0, DEL and C1 (ESC and CSI start escape sequences). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for
const NEEDS_QUOTES = /[\s"\u0000-\u001f\u007f-\u009f]/;

/**
 * A value for a text log line: as is when it is plain, else JSON-quoted with every control character escaped
 * (`JSON.stringify` leaves DEL and C1 alone), so client bytes (a path, a sampled body) cannot move the cursor,
 * clear the screen or fake a line in a terminal showing the log.
 */
function textValue(v: string): string {
  if (!NEEDS_QUOTES.test(v)) return v;
  return escapeControls(JSON.stringify(v));
}

/** JSON text with DEL and C1 escaped too (JSON escapes only C0). */
function escapeControls(json: string): string {
  return json.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Turns one pino JSON line into `time LEVEL event msg key=value ...`. */
export function jsonLineToText(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, event, ...rest } = rec;
  const parts = [typeof time === 'number' ? new Date(time).toISOString() : String(time ?? ''), String(level ?? '').toUpperCase()];
  if (event !== undefined) parts.push(textValue(String(event)));
  if (msg !== undefined) {
    const m = String(msg);
    parts.push(escapeControls(m) === m ? m : textValue(m)); // a sentence: quoted only when it has control characters
  }
  for (const [k, v] of Object.entries(rest))
    parts.push(`${k}=${typeof v === 'string' ? textValue(v) : escapeControls(JSON.stringify(v) ?? 'undefined')}`);
  return `${parts.join(' ')}\n`;
}

/** The process logger and the access log, sharing one output. */
export interface Logging {
  /** Lifecycle and error records. */
  log: Logger;
  /** Access records (whether to write them is decided per config generation: `log.access_log`). */
  access: AccessLog;
  /** Body sample records (same output as the access records). */
  samples: BodySampleLog;
  /** The log files, reopened on SIGUSR1. */
  files: LogFiles;
}

/**
 * Why the configured log files cannot be written (each opened for appending, its folder made as the logger
 * would), one message per file; empty when they can. Checked before start: a logger whose file does not open
 * logs nothing at all, and pino then throws at exit.
 */
export function logFileProblems(cfg: Pick<LogConfig, 'file' | 'access_file'>): string[] {
  const problems: string[] = [];
  for (const path of new Set([cfg.file, cfg.access_file])) {
    if (path === undefined) continue;
    try {
      mkdirSync(dirname(path), { recursive: true });
      closeSync(openSync(path, 'a'));
    } catch (e) {
      problems.push(`cannot open log file ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return problems;
}

/** Creates the process logger and access log from the `log` config. */
export function createLogging(cfg: Pick<LogConfig, 'level' | 'format' | 'file' | 'access_file'>): Logging {
  const options: pino.LoggerOptions = {
    level: cfg.level,
    base: undefined,
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const sink = pino.destination({ dest: cfg.file ?? 1, sync: false, mkdir: true });
  const accessSink =
    cfg.access_file !== undefined && cfg.access_file !== cfg.file ? pino.destination({ dest: cfg.access_file, sync: false, mkdir: true }) : sink;
  const access = new AccessLog(accessSink, cfg.format);
  const samples = new BodySampleLog(accessSink, cfg.format === 'text' ? jsonLineToText : undefined);
  const files = new LogFiles([
    { path: cfg.file, dest: sink },
    { path: cfg.access_file ?? cfg.file, dest: accessSink },
  ]);
  const logging = (log: Logger): Logging => {
    files.attach(log);
    return { log, access, samples, files };
  };
  if (cfg.format === 'text') {
    const textStream = {
      write(chunk: string) {
        let out = '';
        for (const line of chunk.split('\n')) if (line) out += jsonLineToText(line);
        sink.write(out);
      },
    };
    return logging(pino({ ...options, timestamp: pino.stdTimeFunctions.epochTime }, textStream));
  }
  return logging(pino(options, sink));
}
