/** Namespace errors beyond the POSIX ones (those are FsErrors built with `fsError`). */
import { StrataError } from '../../common/errors.js';

/** The stored namespace is damaged or of an unknown format. */
export function metaCorruptInode(message: string): StrataError {
  return new StrataError('STRATA_META_CORRUPT', message);
}

/** The store holds another cluster's metadata, or a newer format. */
export function metaMismatch(message: string): StrataError {
  return new StrataError('STRATA_META_MISMATCH', message);
}
