/**
 * Checking an object against what a reader expects (size, mtime, ETag). Engines call this with
 * what the storage reported alongside the bytes, so a read of a changed object fails with ESTALE
 * instead of mixing versions in one cached file.
 */
import { ufsStale } from './errors.js';
import type { UfsValidator } from './ufs.js';

/** Storage clocks with one-second resolution (HTTP dates, some S3 stores) compare at this precision. */
const COARSE_MTIME_MS = 1000;

export interface ObservedVersion {
  size: number;
  mtimeMs?: number;
  etag?: string;
}

/** Strips the weak prefix and quotes: `W/"abc"` and `"abc"` name the same version for our purpose. */
export function normaliseEtag(etag: string | undefined): string | undefined {
  if (etag === undefined || etag === '') return undefined;
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** Throws ESTALE when the observed version differs from the expected one in anything both know. */
export function checkValidator(
  where: string,
  seen: ObservedVersion,
  expected: UfsValidator | undefined,
): void {
  if (expected === undefined) return;
  if (expected.size !== undefined && expected.size !== seen.size) {
    throw ufsStale(where, `size ${expected.size} → ${seen.size}`);
  }
  const a = normaliseEtag(expected.etag);
  const b = normaliseEtag(seen.etag);
  if (a !== undefined && b !== undefined) {
    if (a !== b) throw ufsStale(where, `ETag ${a} → ${b}`);
    return;
  }
  if (
    expected.mtimeMs !== undefined &&
    expected.mtimeMs > 0 &&
    seen.mtimeMs !== undefined &&
    seen.mtimeMs > 0
  ) {
    const coarse = expected.mtimeMs % COARSE_MTIME_MS === 0 || seen.mtimeMs % COARSE_MTIME_MS === 0;
    const same = coarse
      ? Math.floor(expected.mtimeMs / COARSE_MTIME_MS) === Math.floor(seen.mtimeMs / COARSE_MTIME_MS)
      : expected.mtimeMs === seen.mtimeMs;
    if (!same)
      throw ufsStale(
        where,
        `mtime ${new Date(expected.mtimeMs).toISOString()} → ${new Date(seen.mtimeMs).toISOString()}`,
      );
  }
}
