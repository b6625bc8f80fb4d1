/**
 * Exit codes of every `strata` command (documented in docs/cli.md):
 *   0  success
 *   1  the operation failed (e.g. no such file, permission denied, exists)
 *   2  bad usage or bad configuration
 *   3  the cluster could not be reached (no master answered, deadline exceeded)
 *   4  partial failure (some of several items failed; each is printed)
 *   130 interrupted (Ctrl-C)
 */
import { StrataError } from '../common/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;
export const EXIT_PARTIAL = 4;
export const EXIT_INTERRUPTED = 130;

const UNREACHABLE = new Set([
  'STRATA_CONNECTION',
  'STRATA_UNAVAILABLE',
  'STRATA_NOT_LEADER',
  'STRATA_DEADLINE_EXCEEDED',
  'ECONNREFUSED',
  'ETIMEDOUT',
]);

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof StrataError)) return EXIT_FAILED;
  if (err.code === 'STRATA_USAGE' || err.code === 'STRATA_BAD_CONFIG') return EXIT_USAGE;
  if (UNREACHABLE.has(err.code)) return EXIT_UNREACHABLE;
  return EXIT_FAILED;
}
