/** Errors of the metadata store. Codes are stable: the master maps them to RPC statuses. */
import { StrataError } from '../common/errors.js';
import type { StrataErrorOptions } from '../common/errors.js';

export class MetaError extends StrataError {
  constructor(code: string, message: string, options: StrataErrorOptions = {}) {
    super(code, message, options);
    this.name = 'MetaError';
  }
}

/** The store is closed (or was never opened). */
export function metaClosed(engine: string): MetaError {
  return new MetaError('STRATA_META_CLOSED', `metadata store (${engine}) is closed`);
}

/** A key, value, scan or transaction exceeded a documented limit. */
export function metaLimit(what: string, got: number, limit: number): MetaError {
  return new MetaError('STRATA_META_LIMIT', `${what} is ${got}, above the limit of ${limit}`, {
    details: { got, limit },
  });
}

/** A transaction's commit-time condition did not hold. */
export class MetaCompareError extends MetaError {
  constructor(message: string) {
    super('STRATA_META_COMPARE_FAILED', message);
    this.name = 'MetaCompareError';
  }
}

/** A transaction kept conflicting with concurrent ones and gave up (remote engines only). */
export function metaConflict(attempts: number): MetaError {
  return new MetaError(
    'STRATA_META_CONFLICT',
    `metadata transaction conflicted ${attempts} times with concurrent ones; giving up`,
    { details: { attempts } },
  );
}

/** The engine failed to read or commit (disk full, I/O error): nothing of the transaction applied. */
export function metaIo(engine: string, cause: unknown): MetaError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new MetaError('STRATA_META_IO', `metadata store (${engine}) failed: ${why}`, { cause });
}

/** Stored data is not what this version of Strata wrote (wrong cluster, newer format, damage). */
export function metaCorrupt(message: string): MetaError {
  return new MetaError('STRATA_META_CORRUPT', message);
}
