/**
 * The FsErrors every UFS engine raises, built in one place so the same failure reads the same
 * whatever the engine: `s3://bucket/a.bin: no such file or directory`, `s3://bucket: access
 * denied by the storage (InvalidAccessKeyId): check s3.credentials.access and
 * s3.credentials.secret`, `s3://bucket: cannot reach http://10.0.0.9:9000 (ECONNREFUSED)`.
 * `where` is always a secret-free description (a UFS URI plus path); messages never quote options.
 */
import { FsError, POSIX_WORDS } from '../common/errors.js';

/** Node system error codes that mean "the endpoint could not be reached or dropped us". */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'UND_ERR_CONNECT',
]);
const RESET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'TimeoutError',
  'RequestTimeout',
]);

export function ufsNotFound(where: string): FsError {
  return new FsError('ENOENT', `${where}: ${POSIX_WORDS.ENOENT}`, { details: { path: where } });
}

export function ufsAccessDenied(where: string, reason: string, hint: string): FsError {
  return new FsError(
    'EACCES',
    `${where}: access denied by the storage (${reason})${hint === '' ? '' : `: ${hint}`}`,
    {
      details: { path: where, reason },
    },
  );
}

export function ufsUnreachable(where: string, endpoint: string, code: string): FsError {
  return new FsError('ECONNREFUSED', `${where}: cannot reach ${endpoint} (${code})`, {
    details: { path: where, endpoint, reason: code },
  });
}

export function ufsTimedOut(where: string, endpoint: string, code: string): FsError {
  return new FsError('ETIMEDOUT', `${where}: ${endpoint} did not answer in time (${code})`, {
    details: { path: where, endpoint, reason: code },
  });
}

export function ufsConnectionLost(where: string, endpoint: string, code: string): FsError {
  return new FsError('EIO', `${where}: connection to ${endpoint} lost (${code})`, {
    details: { path: where, endpoint, reason: code },
  });
}

/** The object is not the version the reader expected (size, mtime or ETag changed). */
export function ufsStale(where: string, what: string): FsError {
  return new FsError('ESTALE', `${where}: the object changed in the UFS (${what})`, {
    details: { path: where },
  });
}

export function ufsReadOnly(where: string, scheme: string): FsError {
  return new FsError('EROFS', `${where}: ${scheme}:// storage is read-only`, { details: { path: where } });
}

export function ufsNotSupported(where: string, what: string): FsError {
  return new FsError('ENOTSUP', `${where}: ${what}`, { details: { path: where } });
}

export function ufsTruncated(where: string, got: number, expected: number): FsError {
  return new FsError('EIO', `${where}: the read ended after ${got} of ${expected} bytes`, {
    details: { path: where, got, expected },
  });
}

export function ufsIo(where: string, what: string): FsError {
  return new FsError('EIO', `${where}: ${what}`, { details: { path: where } });
}

/** The `code` of a Node/undici system error, walking `cause` chains (fetch and the SDK wrap them). */
export function systemCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    // AggregateError from happy-eyeballs connects: use the first inner error.
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length > 0) {
      e = inner[0];
      continue;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when the error is an abort requested by the caller (not a failure of the UFS). */
export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted === true) return true;
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'AbortError';
}

/** Maps a network-level failure (refused, reset, timeout) to an FsError; undefined when it is not one. */
export function mapNetworkError(err: unknown, where: string, endpoint: string): FsError | undefined {
  const code = systemCode(err) ?? (err as { name?: string } | null)?.name;
  if (code === undefined) return undefined;
  if (CONNECT_CODES.has(code)) return ufsUnreachable(where, endpoint, code);
  if (TIMEOUT_CODES.has(code)) return ufsTimedOut(where, endpoint, code);
  if (RESET_CODES.has(code)) return ufsConnectionLost(where, endpoint, code);
  return undefined;
}

/** What to throw when the caller's signal aborted a call: its reason, or a plain AbortError. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error('the UFS call was aborted');
  e.name = 'AbortError';
  return e;
}

/** Whether the caller's signal fired (a function, so checks after an await are not narrowed away). */
export function wasAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** Throws the abort reason when the caller's signal fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortReason(signal);
}
