/**
 * Path resolution: walks components from the root, needing search (x) permission on every
 * directory crossed, following symlinks met in the middle of a path (relative targets from the
 * directory holding the link, ".." and "." in targets honoured, at most MAX_SYMLINK_HOPS) and
 * never the last component (every call acts on the entry itself, like lstat; FUSE resolves
 * final symlinks in the kernel).
 */
import { fsError } from '../../common/errors.js';
import type { Caller } from '../../protocol/types.js';
import { metaCorruptInode } from './errors.js';
import { ROOT_ID } from './inode.js';
import type { DirInode, Inode } from './inode.js';
import type { Dentry } from './keys.js';
import { MAX_SYMLINK_HOPS } from './paths.js';
import { X, requireAccess } from './permissions.js';
import type { NsReader } from './readers.js';

/** Deepest directory chain walked upwards before the tree is declared damaged. */
const MAX_TREE_DEPTH = 1_000_000;

export function rootInode(r: NsReader): DirInode {
  const root = r.inode(ROOT_ID);
  if (root === undefined || root.type !== 'dir') throw metaCorruptInode('the root directory is missing');
  return root;
}

/** Reads the inode a directory entry names; a missing one means damage, never "not found". */
export function entryInode(r: NsReader, d: Dentry, where: string): Inode {
  const ino = r.inode(d.id);
  if (ino === undefined) throw metaCorruptInode(`${where}: entry points to missing inode ${d.id}`);
  return ino;
}

/**
 * Resolves the directory that holds the last component of `comps` (all components but the last
 * are walked). `comps` must not be empty.
 */
export function resolveParent(r: NsReader, comps: readonly string[], caller: Caller, path: string): DirInode {
  return walk(r, comps.slice(0, -1), caller, path, false) as DirInode;
}

/** Resolves a whole path to a directory (following a final symlink too): opendir semantics. */
export function resolveDir(r: NsReader, comps: readonly string[], caller: Caller, path: string): DirInode {
  return walk(r, comps, caller, path, false) as DirInode;
}

/** Resolves a whole path following every symlink, the last one too: open() semantics. */
export function resolveFollow(r: NsReader, comps: readonly string[], caller: Caller, path: string): Inode {
  return walk(r, comps, caller, path, true);
}

export interface Lookup {
  /** Directory holding the entry (undefined for the root). */
  parent: DirInode | undefined;
  name: string;
  inode: Inode | undefined;
  dentry: Dentry | undefined;
}

/** Resolves a path to its entry without following a final symlink; the entry may be absent. */
export function lookup(r: NsReader, comps: readonly string[], caller: Caller, path: string): Lookup {
  if (comps.length === 0) return { parent: undefined, name: '', inode: rootInode(r), dentry: undefined };
  const parent = resolveParent(r, comps, caller, path);
  const name = comps[comps.length - 1] as string;
  requireAccess(parent, caller, X, path);
  const d = r.dentry(parent.id, name);
  if (d === undefined) return { parent, name, inode: undefined, dentry: undefined };
  return { parent, name, inode: entryInode(r, d, path), dentry: d };
}

/** Like lookup, but a missing entry is ENOENT. */
export function lookupExisting(
  r: NsReader,
  comps: readonly string[],
  caller: Caller,
  path: string,
): Lookup & { inode: Inode } {
  const l = lookup(r, comps, caller, path);
  if (l.inode === undefined) throw fsError('ENOENT', path);
  return l as Lookup & { inode: Inode };
}

/**
 * Walks `comps` from the root. With `finalAnyType` the last entry may be a file (it is
 * returned); otherwise every entry must be a directory (or a symlink leading to one).
 */
function walk(
  r: NsReader,
  comps: readonly string[],
  caller: Caller,
  path: string,
  finalAnyType: boolean,
): Inode {
  const root = rootInode(r);
  const stack: DirInode[] = [root];
  // Components still to walk, last first (so a symlink's target is pushed on top).
  const todo = [...comps].reverse();
  let hops = 0;
  while (todo.length > 0) {
    const name = todo.pop() as string;
    if (name === '' || name === '.') continue;
    if (name === '..') {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const cur = stack[stack.length - 1] as DirInode;
    requireAccess(cur, caller, X, path);
    const d = r.dentry(cur.id, name);
    if (d === undefined) throw fsError('ENOENT', path);
    const ino = entryInode(r, d, path);
    if (ino.type === 'dir') {
      stack.push(ino);
    } else if (ino.type === 'symlink') {
      if (++hops > MAX_SYMLINK_HOPS) throw fsError('ELOOP', path);
      if (ino.target.startsWith('/')) stack.length = 1;
      const parts = ino.target.split('/');
      for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i] as string);
    } else if (finalAnyType && isLast(todo)) {
      return ino;
    } else {
      throw fsError('ENOTDIR', path);
    }
  }
  return stack[stack.length - 1] as DirInode;
}

/** Whether nothing but "." and "" remain to walk (".." may still lead elsewhere). */
function isLast(todo: readonly string[]): boolean {
  for (const n of todo) if (n !== '' && n !== '.') return false;
  return true;
}

/** Whether directory `ancestorId` is `dir` or one of its ancestors (walking parent links up). */
export function isAncestorOrSelf(r: NsReader, ancestorId: number, dir: DirInode): boolean {
  let cur: Inode | undefined = dir;
  for (let depth = 0; depth < MAX_TREE_DEPTH && cur !== undefined; depth++) {
    if (cur.id === ancestorId) return true;
    if (cur.id === ROOT_ID) return false;
    const up = cur.links[0];
    if (up === undefined) return false;
    cur = r.inode(up[0]);
  }
  if (cur === undefined) return false;
  throw metaCorruptInode(`directory ${dir.id}: parent chain deeper than ${MAX_TREE_DEPTH}`);
}
