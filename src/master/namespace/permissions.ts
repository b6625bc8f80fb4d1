/**
 * POSIX permission checks with the caller's uid, gid and supplementary groups. uid 0 bypasses
 * read and write checks, and execute/search checks on directories (like Linux root).
 * A call without a caller acts as root (trusted in-cluster callers).
 */
import { fsError } from '../../common/errors.js';
import type { Caller } from '../../protocol/types.js';
import type { Inode } from './inode.js';

export const R = 4;
export const W = 2;
export const X = 1;

export const ROOT_CALLER: Caller = { uid: 0, gid: 0 };

export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;

export function isRoot(c: Caller): boolean {
  return c.uid === 0;
}

export function inGroup(c: Caller, gid: number): boolean {
  return c.gid === gid || (c.groups !== undefined && c.groups.includes(gid));
}

/** Whether `c` has every bit of `want` (R|W|X) on `ino`. */
export function allowed(ino: Inode, c: Caller, want: number): boolean {
  if (isRoot(c)) {
    // Root may execute a regular file only if someone may; search and read/write always.
    if ((want & X) !== 0 && ino.type === 'file' && (ino.mode & 0o111) === 0) return false;
    return true;
  }
  let bits: number;
  if (c.uid === ino.uid) bits = (ino.mode >> 6) & 7;
  else if (inGroup(c, ino.gid)) bits = (ino.mode >> 3) & 7;
  else bits = ino.mode & 7;
  return (bits & want) === want;
}

export function requireAccess(ino: Inode, c: Caller, want: number, path: string): void {
  if (!allowed(ino, c, want)) throw fsError('EACCES', path, `needs ${describe(want)} permission`);
}

/** Owner (or root) only: chmod, explicit times, TTL. */
export function requireOwner(ino: Inode, c: Caller, path: string, what: string): void {
  if (!isRoot(c) && c.uid !== ino.uid) throw fsError('EPERM', path, `only the owner or root may ${what}`);
}

/**
 * Sticky directories (like /tmp): an entry may be removed or renamed only by its owner, the
 * directory's owner, or root.
 */
export function requireStickyAllows(dir: Inode, victim: Inode, c: Caller, path: string): void {
  if ((dir.mode & S_ISVTX) === 0 || isRoot(c)) return;
  if (c.uid === victim.uid || c.uid === dir.uid) return;
  throw fsError('EPERM', path, 'sticky directory: only the owner may remove or rename this entry');
}

function describe(want: number): string {
  return `${want & R ? 'r' : ''}${want & W ? 'w' : ''}${want & X ? 'x' : ''}`;
}
