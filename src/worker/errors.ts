/**
 * Errors of the worker role. Codes are stable: the client fails over on STRATA_BLOCK_NOT_FOUND
 * and STRATA_BLOCK_CORRUPT, surfaces ENOSPC to the writer, and retries STRATA_UNAVAILABLE.
 */
import { FsError, StrataError } from '../common/errors.js';
import type { StrataErrorOptions } from '../common/errors.js';
import { formatBytes } from '../common/units.js';

export class BlockNotFoundError extends StrataError {
  constructor(blockId: number, options: StrataErrorOptions = {}) {
    super('STRATA_BLOCK_NOT_FOUND', `block ${blockId} is not stored on this worker`, {
      ...options,
      details: { ...options.details, blockId },
    });
    this.name = 'BlockNotFoundError';
  }
}

/** A stored block whose bytes no longer match their checksums: the read is aborted, the copy dropped. */
export class BlockCorruptError extends StrataError {
  constructor(blockId: number, what: string, options: StrataErrorOptions = {}) {
    super('STRATA_BLOCK_CORRUPT', `block ${blockId} is corrupt on this worker: ${what}`, {
      ...options,
      details: { ...options.details, blockId },
    });
    this.name = 'BlockCorruptError';
  }
}

/** The block is being written (or moved by a local writer) and cannot be written again now. */
export class BlockBusyError extends FsError {
  constructor(blockId: number, what: string) {
    super('EBUSY', `block ${blockId}: ${what}`, { details: { blockId } });
    this.name = 'BlockBusyError';
  }
}

/** Every tier that could hold the data is full and nothing can be freed. */
export class NoSpaceError extends FsError {
  constructor(wantedBytes: number, where: string, options: StrataErrorOptions = {}) {
    super(
      'ENOSPC',
      `no space left on this worker for ${formatBytes(wantedBytes)} (${where}); ` +
        'blocks whose only copy is here are never dropped: free files or add capacity',
      { ...options, details: { ...options.details, wantedBytes } },
    );
    this.name = 'NoSpaceError';
  }
}

/** A data directory that cannot be used as configured (another cluster's, unreadable, a file). */
export class DataDirError extends StrataError {
  constructor(path: string, message: string, options: StrataErrorOptions = {}) {
    super('STRATA_BAD_DATA_DIR', `worker.data_dir ${path}: ${message}`, {
      ...options,
      details: { ...options.details, path },
    });
    this.name = 'DataDirError';
  }
}

/** A bad request argument (offset past the end, wrong committed length). */
export function badRequest(message: string, details?: Record<string, unknown>): FsError {
  return new FsError('EINVAL', message, details === undefined ? {} : { details });
}

/** A write that was cancelled before it could be published (block deleted, worker stopping). */
export class WriteCancelledError extends StrataError {
  constructor(blockId: number, reason: string) {
    super('STRATA_CANCELLED', `write of block ${blockId} cancelled: ${reason}`, { details: { blockId } });
    this.name = 'WriteCancelledError';
  }
}

/** The worker is shutting down and takes no new work. */
export class StoppingError extends StrataError {
  constructor() {
    super('STRATA_UNAVAILABLE', 'the worker is shutting down');
    this.name = 'StoppingError';
  }
}
