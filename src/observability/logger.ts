/**
 * Structured logging with pino: JSON lines (default) or a plain text line per record. Lifecycle and error
 * records carry an `event` field; access-log records have `event: "access"`.
 */
import pino, { type Logger } from 'pino';
import type { LogConfig } from '../config/types.ts';

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

/** Creates the process logger from the `log` config. */
export function createLogger(cfg: Pick<LogConfig, 'level' | 'format' | 'file'>): Logger {
  const options: pino.LoggerOptions = {
    level: cfg.level,
    base: undefined,
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const sink = pino.destination({ dest: cfg.file ?? 1, sync: false, mkdir: true });
  if (cfg.format === 'text') {
    const textStream = {
      write(chunk: string) {
        let out = '';
        for (const line of chunk.split('\n')) if (line) out += jsonLineToText(line);
        sink.write(out);
      },
    };
    return pino({ ...options, timestamp: pino.stdTimeFunctions.epochTime }, textStream);
  }
  return pino(options, sink);
}
