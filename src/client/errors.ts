/**
 * How the client library reports trouble. Namespace results stay POSIX (`FsError`, decoded from
 * the wire even when the transport hands back a plain `StrataError`); losing the cluster is a
 * `STRATA_UNAVAILABLE` naming the addresses tried; data that no replica could serve is `EIO`.
 */
import { FsError, StrataError, isPosixCode, toStrataError } from '../common/errors.js';

/** Codes that mean "the other side did not answer" rather than "it answered no". */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'STRATA_CONNECTION',
  'STRATA_UNAVAILABLE',
  'STRATA_NOT_LEADER',
  'STRATA_DEADLINE_EXCEEDED',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export function isUnreachable(err: unknown): boolean {
  if (err instanceof StrataError) return UNREACHABLE_CODES.has(err.code);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}

/** A StrataError whose code is POSIX becomes an FsError (so front ends map it by class). */
export function normaliseError(err: unknown): StrataError {
  const e = toStrataError(err);
  if (e instanceof FsError || !isPosixCode(e.code)) return e;
  return new FsError(e.code, e.message, {
    cause: e,
    ...(e.details === undefined ? {} : { details: e.details }),
  });
}

/** The master set could not be reached: says where we looked and what happened last. */
export function mastersUnavailable(
  addresses: readonly { host: string; port: number }[],
  err: unknown,
): StrataError {
  const where = addresses.map((a) => `${a.host}:${a.port}`).join(', ');
  const why = err instanceof Error ? err.message : String(err);
  return new StrataError('STRATA_UNAVAILABLE', `no master answered at ${where} (${why})`, {
    cause: err,
    details: { masters: where },
  });
}

/** Using a file handle or a client after close. */
export function closedError(what: string): FsError {
  return new FsError('EBADF', `${what} is closed`);
}

/** No replica of a block could be read. */
export function blockUnreadable(
  path: string,
  blockId: number,
  tried: readonly string[],
  last: unknown,
): FsError {
  const why = last instanceof Error ? `: ${last.message}` : '';
  const where = tried.length === 0 ? 'no copy is known to the master' : `tried ${tried.join(', ')}`;
  return new FsError('EIO', `${path}: input/output error (block ${blockId}: ${where}${why})`, {
    cause: last,
    details: { path, blockId },
  });
}

/**
 * Reading a block through from its UFS failed with the UFS's own error (unreachable, object
 * changed, access denied…): the code is kept, so a caller can tell ESTALE from ECONNREFUSED.
 */
export function ufsReadFailed(path: string, blockId: number, err: StrataError): FsError {
  const code = isPosixCode(err.code) ? err.code : 'EIO';
  return new FsError(code, `${path}: reading block ${blockId} from the UFS failed: ${err.message}`, {
    cause: err,
    details: { path, blockId },
  });
}
