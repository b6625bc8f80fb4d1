/**
 * UFS paths: "/"-rooted, relative to the UFS root. Checked once here so no engine ever sees "..",
 * "." or empty components (which would escape a local root or alias S3 keys).
 */
import { FsError } from '../common/errors.js';

/** Longest UFS path accepted (S3 keys are at most 1024 bytes; local paths at most 4096). */
export const MAX_UFS_PATH_BYTES = 4096;

/** Returns the canonical form ("/" or "/a/b", no trailing slash) or throws EINVAL. */
export function normaliseUfsPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new FsError('EINVAL', `UFS path ${JSON.stringify(path)}: must start with "/"`, {
      details: { path },
    });
  }
  if (path.includes('\0')) {
    throw new FsError('EINVAL', `UFS path ${JSON.stringify(path)}: must not contain NUL`, {
      details: { path },
    });
  }
  if (Buffer.byteLength(path) > MAX_UFS_PATH_BYTES) {
    throw new FsError('ENAMETOOLONG', `UFS path longer than ${MAX_UFS_PATH_BYTES} bytes`, {
      details: { path: path.slice(0, 256) },
    });
  }
  const parts = path.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..') {
      throw new FsError('EINVAL', `UFS path ${JSON.stringify(path)}: "." and ".." are not allowed`, {
        details: { path },
      });
    }
  }
  return parts.length === 0 ? '/' : `/${parts.join('/')}`;
}

/** The components of a normalised path ([] for "/"). */
export function ufsPathParts(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

export function ufsBaseName(path: string): string {
  const i = path.lastIndexOf('/');
  return path.slice(i + 1);
}

export function ufsParent(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function ufsJoin(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** True when `path` is `dir` itself or inside it. */
export function ufsIsWithin(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}
