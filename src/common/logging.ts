/**
 * Structured logs through pino. One root logger per process, children per component
 * (`logger.child({ component: 'worker.tiers' })`). Level and target come from `[log]`.
 */
import { mkdirSync, writeSync } from 'node:fs';
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
  // stdout and stderr are written synchronously (pino's own default for stdout): nothing is left
  // buffered at exit, where sonic-boom's flushSync retries a failing write forever. A process
  // whose log pipe's reader died (an orphaned child) otherwise never finished exiting.
  if (opts.logDir === 'stdout' || opts.logDir === '')
    return pino(common, guarded(pino.destination({ fd: 1, sync: true }), 'stdout'));
  if (opts.logDir === 'stderr')
    return pino(common, guarded(pino.destination({ fd: 2, sync: true }), 'stderr'));
  mkdirSync(opts.logDir, { recursive: true });
  const file = join(opts.logDir, `${opts.role}.log`);
  return pino(common, guarded(pino.destination({ dest: file, mkdir: true, sync: false }), file));
}

type Destination = ReturnType<typeof pino.destination>;

/**
 * A log destination that stops, instead of crashing the process or hanging its exit, when a write
 * fails for good (EPIPE: nobody reads the pipe; ENOSPC or EIO: the log's disk). Pino turns writes
 * into no-ops on EPIPE only and re-emits every other error, which with no listener is an uncaught
 * exception; a failed write also stays buffered, and the flush at exit would retry it forever.
 * One line on stderr says why the log stopped (unless stderr is the broken one).
 */
function guarded(dest: Destination, name: string): Destination {
  let failed = false;
  dest.on('error', (err: NodeJS.ErrnoException) => {
    if (failed) return;
    failed = true;
    const noop = (): boolean => true;
    Object.assign(dest, { write: noop, flushSync: noop, end: noop, flush: (cb?: () => void) => cb?.() });
    if (name !== 'stderr') {
      try {
        writeSync(2, `strata: log ${name} failed (${err.code ?? err.message}); logging stopped\n`);
      } catch {
        // stderr is gone too: nothing left to tell.
      }
    }
  });
  return dest;
}

/** A logger that drops everything: for libraries used without a host process, and for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
