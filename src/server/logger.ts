import { redact } from '../util/redact.js';

/**
 * The stage server's logs: one JSON object per line ({time, level, msg, ...fields}), secrets redacted,
 * handed to a sink (serve writes them to stderr). `debug` lines are polls and other routine requests.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(sink: (line: string) => void): Logger {
  const log = (level: LogLevel, msg: string, fields: Record<string, unknown> = {}) => {
    // Redacted value by value: masking the serialized line could cut an escape and break the JSON.
    const safe = Object.fromEntries(
      Object.entries(fields).map(([k, v]) => [k, typeof v === 'string' ? redact(v) : v]),
    );
    sink(JSON.stringify({ time: new Date().toISOString(), level, msg: redact(msg), ...safe }));
  };
  return { log, info: (m, f) => log('info', m, f), warn: (m, f) => log('warn', m, f) };
}

/** The level of a line written by `jsonLogger` (for filtering by verbosity). */
export function levelOf(line: string): LogLevel | undefined {
  return /^\{"time":"[^"]*","level":"(debug|info|warn|error)"/.exec(line)?.[1] as LogLevel | undefined;
}
