/**
 * Structured logs through pino. One root logger per process, children per component
 * (`logger.child({ component: 'worker.tiers' })`). Level and target come from `[log]`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger, LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL', 'SILENT'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogOptions {
  level: LogLevel;
  /** "stdout", "stderr", or a directory where `<role>.log` is appended. */
  logDir: string;
  /** Process role, e.g. "master"; names the log file and is bound on every line. */
  role: string;
}

/** Keys whose values never reach a log line. */
const REDACT = [
  '*.secret',
  '*.secret_key',
  '*.secretKey',
  '*.password',
  '*.auth_token',
  '*.authToken',
  '*.token',
  '*["s3.credentials.secret"]',
  'headers.authorization',
];

export function createLogger(opts: LogOptions): Logger {
  const level = opts.level.toLowerCase() as LevelWithSilent;
  const base = { role: opts.role, pid: process.pid };
  const common = {
    level,
    base,
    redact: { paths: REDACT, censor: '***' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.logDir === 'stdout' || opts.logDir === '')
    return pino(common, pino.destination({ fd: 1, sync: false }));
  if (opts.logDir === 'stderr') return pino(common, pino.destination({ fd: 2, sync: false }));
  mkdirSync(opts.logDir, { recursive: true });
  return pino(
    common,
    pino.destination({ dest: join(opts.logDir, `${opts.role}.log`), mkdir: true, sync: false }),
  );
}

/** A logger that drops everything: for libraries used without a host process, and for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
