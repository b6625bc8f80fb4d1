/**
 * Errors of the edge proxy. Cache-side errors never reach a client: the HTTP layer catches them,
 * counts them and falls back to the origin. Upstream errors become 502/504 responses.
 */
import { StrataError } from '../common/errors.js';
import type { StrataErrorOptions } from '../common/errors.js';

/** A stored entry failed its integrity check (checksum, length, key); the store drops it. */
export class CorruptEntryError extends StrataError {
  constructor(key: string, why: string, options: StrataErrorOptions = {}) {
    super('STRATA_PROXY_CORRUPT_ENTRY', `cache entry ${JSON.stringify(key)} is corrupt: ${why}`, {
      ...options,
      details: { ...options.details, key },
    });
    this.name = 'CorruptEntryError';
  }
}

/** The store cannot take the entry right now (no space even after eviction, too many extents). */
export class StoreFullError extends StrataError {
  constructor(what: string, options: StrataErrorOptions = {}) {
    super('STRATA_PROXY_STORE_FULL', what, options);
    this.name = 'StoreFullError';
  }
}

/** A feature this build does not have (the cluster backend). */
export class NotAvailableError extends StrataError {
  constructor(what: string, options: StrataErrorOptions = {}) {
    super('STRATA_NOT_AVAILABLE', what, options);
    this.name = 'NotAvailableError';
  }
}

/** The origin could not be reached or did not answer in time. */
export class UpstreamError extends StrataError {
  readonly timedOut: boolean;
  constructor(what: string, timedOut: boolean, options: StrataErrorOptions = {}) {
    super(timedOut ? 'STRATA_DEADLINE_EXCEEDED' : 'STRATA_CONNECTION', what, options);
    this.name = 'UpstreamError';
    this.timedOut = timedOut;
  }
}

/** Slices of one object disagree (ETag or total length differ): the object changed mid-read. */
export class SliceMismatchError extends StrataError {
  constructor(what: string, options: StrataErrorOptions = {}) {
    super('STRATA_PROXY_SLICE_MISMATCH', what, options);
    this.name = 'SliceMismatchError';
  }
}
