/**
 * How a failed request answers the kernel: the namespace's POSIX codes pass straight through
 * (decided once, in the master); cluster trouble becomes EIO or ETIMEDOUT, which applications
 * know how to report.
 */
import { constants } from 'node:os';
import { FsError, StrataError, isPosixCode, ERRNO } from '../common/errors.js';

const EIO = constants.errno.EIO;

/** The positive errno for anything an operation threw. */
export function errnoOf(err: unknown): number {
  if (err instanceof FsError) return err.errno;
  if (err instanceof StrataError) {
    if (isPosixCode(err.code)) return ERRNO[err.code];
    if (err.code === 'STRATA_DEADLINE_EXCEEDED') return constants.errno.ETIMEDOUT;
    return EIO;
  }
  const sys = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof sys === 'string') {
    const n = (constants.errno as Record<string, number | undefined>)[sys];
    if (n !== undefined) return n;
  }
  return EIO;
}

/** Whether an errno is an expected answer (ENOENT on lookup) rather than a failure worth a log line. */
export function isRoutineErrno(errno: number): boolean {
  const e = constants.errno;
  return (
    errno === e.ENOENT ||
    errno === e.EEXIST ||
    errno === e.ENOTEMPTY ||
    errno === e.ENOTDIR ||
    errno === e.EISDIR ||
    errno === e.EACCES ||
    errno === e.EPERM ||
    errno === e.ENODATA ||
    errno === e.ERANGE ||
    errno === e.EINVAL ||
    errno === e.EINTR
  );
}

/** What an operation abandoned after a FUSE_INTERRUPT throws (its answer, EINTR, was already sent). */
export function interruptedError(what: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${what}: interrupted`), { code: 'EINTR' });
}
