/**
 * Typed errors with stable codes. Every error that crosses a module boundary is a StrataError:
 * its `code` is part of the public contract (the CLI, the S3 gateway, FUSE and the RPC wire all
 * map on it), its message is written for a person and says what was wrong and what is allowed.
 */

/** POSIX-like result codes the namespace speaks; front ends translate them (errno, S3 codes, words). */
export const POSIX_CODES = [
  'ENOENT',
  'EEXIST',
  'ENOTDIR',
  'EISDIR',
  'ENOTEMPTY',
  'ENOSPC',
  'EACCES',
  'EPERM',
  'EINVAL',
  'ENAMETOOLONG',
  'EBUSY',
  'EIO',
  'EXDEV',
  'ELOOP',
  'EROFS',
  'ENODATA',
  'E2BIG',
  'ERANGE',
  'EAGAIN',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ENOTSUP',
  'EBADF',
  'EFBIG',
  'ESTALE',
  'EMLINK',
] as const;
export type PosixCode = (typeof POSIX_CODES)[number];

/** Linux errno numbers, for FUSE and for `process.exitCode` mapping. */
export const ERRNO: Readonly<Record<PosixCode, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  ENOTSUP: 95,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  ESTALE: 116,
  EMLINK: 31,
};

/** How each POSIX code reads in words, as `strerror` would say it. */
export const POSIX_WORDS: Readonly<Record<PosixCode, string>> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOTEMPTY: 'directory not empty',
  ENOSPC: 'no space left on device',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EINVAL: 'invalid argument',
  ENAMETOOLONG: 'file name too long',
  EBUSY: 'resource busy',
  EIO: 'input/output error',
  EXDEV: 'invalid cross-device link',
  ELOOP: 'too many levels of symbolic links',
  EROFS: 'read-only file system',
  ENODATA: 'no data available',
  E2BIG: 'argument list too long',
  ERANGE: 'result out of range',
  EAGAIN: 'resource temporarily unavailable',
  ETIMEDOUT: 'timed out',
  ECONNREFUSED: 'connection refused',
  ENOTSUP: 'operation not supported',
  EBADF: 'bad file descriptor',
  EFBIG: 'file too large',
  ESTALE: 'stale file handle',
  EMLINK: 'too many links',
};

export interface StrataErrorOptions {
  cause?: unknown;
  /** Structured, serialisable context (a path, a key, a limit); travels over RPC. */
  details?: Record<string, unknown>;
}

/** Base class. Subclasses fix `code`; `StrataError` itself carries any code (used when decoding from the wire). */
export class StrataError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: StrataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StrataError';
    this.code = code;
    this.details = options.details;
  }

  /** Whether retrying the same call may succeed (connection trouble, leader change, overload). */
  get retryable(): boolean {
    return RETRYABLE_CODES.has(this.code);
  }

  toJSON(): { code: string; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** A namespace or file-system error with a POSIX meaning. `code` is the POSIX name itself. */
export class FsError extends StrataError {
  declare readonly code: PosixCode;
  constructor(code: PosixCode, message: string, options: StrataErrorOptions = {}) {
    super(code, message, options);
    this.name = 'FsError';
  }
  get errno(): number {
    return ERRNO[this.code];
  }
}

export function isPosixCode(code: string): code is PosixCode {
  return (POSIX_CODES as readonly string[]).includes(code);
}

/** Builds `ENOENT: no such file or directory: /a/b` style errors with the path in details. */
export function fsError(code: PosixCode, path: string, extra?: string): FsError {
  const tail = extra === undefined ? '' : ` (${extra})`;
  return new FsError(code, `${path}: ${POSIX_WORDS[code]}${tail}`, { details: { path } });
}

export class ConfigError extends StrataError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[], source: string) {
    const lines = problems.map((p) => `  ${formatProblem(p)}`);
    super(
      'STRATA_BAD_CONFIG',
      `${source}: ${problems.length} problem(s) in the configuration:\n${lines.join('\n')}`,
      {
        details: { source },
      },
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface ConfigProblem {
  /** Dotted key path, e.g. `worker.data_dir[1]`. */
  key: string;
  /** What was wrong and what is allowed. */
  message: string;
  /** The offending value as written, if any. */
  value?: unknown;
}

export function formatProblem(p: ConfigProblem): string {
  const shown = p.value === undefined ? '' : ` (got ${JSON.stringify(p.value)})`;
  return `${p.key}: ${p.message}${shown}`;
}

/** Bad command-line usage: printed as one line, exit code 2. */
export class UsageError extends StrataError {
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_USAGE', message, options);
    this.name = 'UsageError';
  }
}

export class TimeoutError extends StrataError {
  constructor(what: string, ms: number, options: StrataErrorOptions = {}) {
    super('STRATA_DEADLINE_EXCEEDED', `${what}: deadline of ${ms} ms exceeded`, {
      ...options,
      details: { ...options.details, deadlineMs: ms },
    });
    this.name = 'TimeoutError';
  }
}

/** Codes whose calls may be retried (against the same or another address). */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'STRATA_CONNECTION',
  'STRATA_NOT_LEADER',
  'STRATA_UNAVAILABLE',
  'STRATA_OVERLOADED',
  'STRATA_DEADLINE_EXCEEDED',
]);

/** Normalises anything thrown into a StrataError, keeping the original as `cause`. */
export function toStrataError(err: unknown): StrataError {
  if (err instanceof StrataError) return err;
  if (err instanceof Error) {
    const sysCode = (err as NodeJS.ErrnoException).code;
    if (typeof sysCode === 'string' && isPosixCode(sysCode)) {
      return new FsError(sysCode, err.message, { cause: err });
    }
    return new StrataError('STRATA_INTERNAL', err.message, { cause: err });
  }
  return new StrataError('STRATA_INTERNAL', String(err));
}
