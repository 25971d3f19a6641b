/**
 * Structured logging with pino: JSON lines (default) or a plain text line per record. Lifecycle and error
 * records carry an `event` field; access-log records have `event: "access"`.
 */
import pino, { type Logger } from 'pino';
import type { LogConfig } from '../config/types.ts';
import { AccessLog } from './access-log.ts';
import { BodySampleLog } from './body-sample.ts';
import { LogFiles } from './log-files.ts';

/** pino's logger, the type every module logs through. */
export type { Logger } from 'pino';

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
  if (event !== undefined) parts.push(String(event));
  if (msg !== undefined) parts.push(String(msg));
  for (const [k, v] of Object.entries(rest)) parts.push(`${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
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
