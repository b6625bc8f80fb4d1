/**
 * Building blocks of namespace mutations, all inside one NsTx: adding and removing entries with
 * their parent's bookkeeping, unlinking and destroying inodes (with their blocks, lease, TTL
 * index entry and xattrs), and collecting subtrees for recursive delete and trash purging.
 */
import type { DirInode, FileInode, Inode, Link } from './inode.js';
import { realBlockIds } from './inode.js';
import type { NsTx } from './ns-txn.js';
import { entryInode } from './resolve.js';
import { metaCorruptInode } from './errors.js';

/** Directory entries read per scan while walking a subtree. */
const WALK_PAGE = 1000;

function requireDir(tx: NsTx, id: number): DirInode {
  const d = tx.inode(id);
  if (d === undefined || d.type !== 'dir') throw metaCorruptInode(`directory ${id} is missing`);
  return d;
}

/** Adds `name` → `child` in directory `parentId` (the child inode is written by the caller). */
export function addEntry(tx: NsTx, parentId: number, name: string, child: Inode, nowMs: number): void {
  const parent = requireDir(tx, parentId);
  tx.putDentry(parentId, name, { id: child.id, type: child.type });
  tx.putInode({
    ...parent,
    children: parent.children + 1,
    nlink: parent.nlink + (child.type === 'dir' ? 1 : 0),
    mtimeMs: nowMs,
    ctimeMs: nowMs,
  });
}

/** Removes the entry `name` (naming `child`) from directory `parentId`; the child is untouched. */
export function removeEntry(tx: NsTx, parentId: number, name: string, child: Inode, nowMs: number): void {
  const parent = requireDir(tx, parentId);
  tx.deleteDentry(parentId, name);
  tx.putInode({
    ...parent,
    children: Math.max(0, parent.children - 1),
    nlink: parent.nlink - (child.type === 'dir' ? 1 : 0),
    mtimeMs: nowMs,
    ctimeMs: nowMs,
  });
}

export function withoutLink(links: readonly Link[], parentId: number, name: string): Link[] {
  const i = links.findIndex((l) => l[0] === parentId && l[1] === name);
  if (i < 0) return [...links];
  return [...links.slice(0, i), ...links.slice(i + 1)];
}

/**
 * Drops one name of a non-directory inode (its dentry is removed by the caller); the inode goes
 * away with its last name.
 */
export function unlinkInode(tx: NsTx, ino: Inode, parentId: number, name: string, nowMs: number): void {
  const links = withoutLink(ino.links, parentId, name);
  if (ino.type === 'dir' || links.length === 0 || ino.nlink <= 1) {
    destroyInode(tx, ino);
    return;
  }
  tx.putInode({ ...ino, links, nlink: ino.nlink - 1, ctimeMs: nowMs });
}

/** Deletes an inode and everything hanging off it. Directories must be empty. */
export function destroyInode(tx: NsTx, ino: Inode): void {
  if (ino.type === 'file') dropFileData(tx, ino);
  tx.dropXattrs(ino);
  tx.deleteInode(ino);
}

function dropFileData(tx: NsTx, f: FileInode): void {
  tx.dropBlocks(realBlockIds(f.blocks));
  tx.dropBlocks(f.pending);
  if (f.lease !== null) tx.endLease(f.id);
}

export interface TreeItem {
  parentId: number;
  name: string;
  inode: Inode;
}

/**
 * Collects the entries below `dir` in post-order (children before their directory), at most
 * `budget` of them. `complete` is false when the budget ran out; then only directories whose
 * whole subtree was collected are listed, so deleting the items in order is always valid.
 */
export function collectSubtree(
  tx: NsTx,
  dir: DirInode,
  budget: number,
): { items: TreeItem[]; complete: boolean } {
  const items: TreeItem[] = [];
  const complete = collect(tx, dir, budget, items, `directory ${dir.id}`);
  return { items, complete };
}

function collect(tx: NsTx, dir: DirInode, budget: number, out: TreeItem[], where: string): boolean {
  let after: string | undefined;
  for (;;) {
    const page = tx.dentries(dir.id, WALK_PAGE, after);
    for (const { name, dentry } of page) {
      if (out.length >= budget) return false;
      const child = entryInode(tx, dentry, where);
      if (child.type === 'dir' && !collect(tx, child, budget, out, where)) return false;
      out.push({ parentId: dir.id, name, inode: child });
    }
    if (page.length < WALK_PAGE) return true;
    after = page[page.length - 1]?.name;
  }
}

/**
 * Deletes collected items in order. Parent bookkeeping is batched: each surviving parent is
 * rewritten once. Returns how many entries were removed.
 */
export function deleteItems(tx: NsTx, items: readonly TreeItem[], nowMs: number): void {
  const parentDelta = new Map<number, { children: number; subdirs: number }>();
  const destroyed = new Set<number>();
  for (const it of items) {
    tx.deleteDentry(it.parentId, it.name);
    const cur = tx.inode(it.inode.id) ?? it.inode;
    if (cur.type === 'dir') {
      destroyInode(tx, cur);
      destroyed.add(cur.id);
    } else {
      unlinkInode(tx, cur, it.parentId, it.name, nowMs);
    }
    const d = parentDelta.get(it.parentId) ?? { children: 0, subdirs: 0 };
    d.children++;
    if (cur.type === 'dir') d.subdirs++;
    parentDelta.set(it.parentId, d);
  }
  for (const [pid, d] of parentDelta) {
    if (destroyed.has(pid)) continue;
    const p = requireDir(tx, pid);
    tx.putInode({
      ...p,
      children: Math.max(0, p.children - d.children),
      nlink: p.nlink - d.subdirs,
      mtimeMs: nowMs,
      ctimeMs: nowMs,
    });
  }
}
