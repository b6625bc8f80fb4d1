/**
 * Path rules of the namespace, checked before anything is read:
 * - absolute ("/…"), at most MAX_PATH_BYTES bytes of UTF-8, no NUL;
 * - components of 1..MAX_NAME_BYTES bytes, never "." or ".." and never empty ("a//b");
 * - one trailing "/" is accepted and ignored ("/a/b/" is "/a/b"), as shells produce it.
 * Violations are FsErrors: ENAMETOOLONG for lengths, EINVAL for the rest, naming the rule.
 */
import { fsError } from '../../common/errors.js';
import { MAX_NAME_BYTES, MAX_PATH_BYTES } from '../../protocol/types.js';

/** Symlinks followed while resolving one path before ELOOP. */
export const MAX_SYMLINK_HOPS = 40;
export const MAX_SYMLINK_TARGET_BYTES = 4096;

/** Splits a path into validated components ([] for "/"). */
export function parsePath(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/'))
    throw fsError('EINVAL', String(path), 'path must be absolute (start with "/")');
  if (path.includes('\0')) throw fsError('EINVAL', path.replaceAll('\0', '\\0'), 'path contains NUL');
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES)
    throw fsError('ENAMETOOLONG', shorten(path), `path longer than ${MAX_PATH_BYTES} bytes`);
  if (path === '/') return [];
  const body = path.endsWith('/') ? path.slice(1, -1) : path.slice(1);
  const comps = body.split('/');
  for (const c of comps) checkName(c, path);
  return comps;
}

/** Checks one component (a name inside a directory). */
export function checkName(name: string, path: string): void {
  if (name === '') throw fsError('EINVAL', path, 'empty path component ("//")');
  if (name === '.' || name === '..')
    throw fsError('EINVAL', path, `"${name}" is not allowed as a path component`);
  if (name.includes('/')) throw fsError('EINVAL', path, 'a name must not contain "/"');
  if (name.includes('\0')) throw fsError('EINVAL', path, 'a name must not contain NUL');
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES)
    throw fsError('ENAMETOOLONG', shorten(path), `component longer than ${MAX_NAME_BYTES} bytes`);
}

/** Checks a symlink target: 1..MAX_SYMLINK_TARGET_BYTES bytes, no NUL (relative or absolute). */
export function checkSymlinkTarget(target: string, path: string): void {
  if (typeof target !== 'string' || target === '') throw fsError('EINVAL', path, 'symlink target is empty');
  if (target.includes('\0')) throw fsError('EINVAL', path, 'symlink target contains NUL');
  if (Buffer.byteLength(target, 'utf8') > MAX_SYMLINK_TARGET_BYTES)
    throw fsError('ENAMETOOLONG', path, `symlink target longer than ${MAX_SYMLINK_TARGET_BYTES} bytes`);
}

export function joinPath(comps: readonly string[]): string {
  return comps.length === 0 ? '/' : `/${comps.join('/')}`;
}

export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Whether component list `a` equals `b` or is an ancestor of it. */
export function isPrefixOf(a: readonly string[], b: readonly string[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Keeps error messages readable for absurdly long paths. */
function shorten(path: string): string {
  return path.length > 200 ? `${path.slice(0, 100)}…${path.slice(-60)}` : path;
}
