/**
 * A namespace transaction: typed reads and writes over one MetaStore transaction, recording what
 * it changed so that, once the commit resolves, the cache, counters and block events follow.
 * One NsTx per run of the transaction function (a run may be discarded and repeated).
 */
import type { MetaTxn } from '../../meta/index.js';
import { dentryId } from './cache.js';
import type { CacheChange, CachedDentry } from './cache.js';
import { decodeInode, encodeInode } from './inode.js';
import type { Inode, InodeType } from './inode.js';
import {
  blockKey,
  decodeDentry,
  dentryKey,
  dentryPrefix,
  encodeDentry,
  encodeU64,
  inodeKey,
  keyName,
  leaseKey,
  trashKey,
  ttlKey,
  xattrKey,
  xattrPrefix,
} from './keys.js';
import type { Dentry } from './keys.js';
import type { NsReader } from './readers.js';

export interface CountDelta {
  files: number;
  dirs: number;
  symlinks: number;
  blocks: number;
}

/**
 * Committed state a transaction may read instead of the store: only offered by engines that run
 * transactions serially, and only for keys no pending (run but not yet resolved) transaction wrote.
 */
export interface CommittedView {
  inode(id: number): Inode | undefined;
  dentry(parent: number, name: string): CachedDentry | undefined;
}

export class NsTx implements NsReader {
  readonly tx: MetaTxn;
  readonly changes: CacheChange[] = [];
  /** Blocks that stopped being part of any file in this transaction. */
  readonly removedBlocks: number[] = [];
  readonly counts: CountDelta = { files: 0, dirs: 0, symlinks: 0, blocks: 0 };
  /** Leases granted (fileId → lease id) and ended (fileId) by this transaction. */
  readonly leasesGranted = new Map<number, { id: string; host: string }>();
  readonly leasesEnded = new Set<number>();
  readonly #inodes = new Map<number, Inode | null>();
  readonly #committed: CommittedView | undefined;
  /** Entries this run wrote: read back through the transaction, never from committed state. */
  readonly #wroteDentries = new Set<string>();

  constructor(tx: MetaTxn, committed?: CommittedView) {
    this.tx = tx;
    this.#committed = committed;
  }

  inode(id: number): Inode | undefined {
    const memo = this.#inodes.get(id);
    if (memo !== undefined) return memo ?? undefined;
    const c = this.#committed?.inode(id);
    if (c !== undefined) {
      this.#inodes.set(id, c);
      return c;
    }
    const v = this.tx.get(inodeKey(id));
    const ino = v === undefined ? null : decodeInode(v);
    this.#inodes.set(id, ino);
    return ino ?? undefined;
  }

  dentry(parent: number, name: string): Dentry | undefined {
    if (this.#committed !== undefined && !this.#wroteDentries.has(dentryId(parent, name))) {
      const c = this.#committed.dentry(parent, name);
      if (c !== undefined) return c ?? undefined;
    }
    const v = this.tx.get(dentryKey(parent, name));
    return v === undefined ? undefined : decodeDentry(v);
  }

  /** Entries of a directory in name order, after `startAfter` (exclusive), at most `limit`. */
  dentries(parent: number, limit: number, startAfter?: string): { name: string; dentry: Dentry }[] {
    const prefix = dentryPrefix(parent);
    const start = startAfter === undefined ? undefined : dentryKey(parent, startAfter);
    const rows = this.tx.scan({ prefix, ...(start === undefined ? {} : { start }), limit: limit + 1 });
    const out: { name: string; dentry: Dentry }[] = [];
    for (const r of rows) {
      const name = keyName(r.key);
      if (name === startAfter) continue;
      out.push({ name, dentry: decodeDentry(r.value) });
      if (out.length === limit) break;
    }
    return out;
  }

  /**
   * Writes an inode. The TTL index follows automatically: the entry for the version this
   * transaction last saw is replaced by one for the new version (mtime or TTL may have changed).
   */
  putInode(ino: Inode, created = false): void {
    const before = created ? undefined : this.inode(ino.id);
    this.tx.put(inodeKey(ino.id), encodeInode(ino));
    this.#inodes.set(ino.id, ino);
    this.changes.push({ kind: 'inode', id: ino.id, inode: ino });
    this.#setTtlIndex(before, ino);
    if (created) this.#count(ino.type, 1);
  }

  deleteInode(ino: Inode): void {
    const before = this.inode(ino.id);
    this.tx.delete(inodeKey(ino.id));
    this.#inodes.set(ino.id, null);
    this.changes.push({ kind: 'inode', id: ino.id, inode: null });
    this.#setTtlIndex(before, undefined);
    this.#count(ino.type, -1);
  }

  putDentry(parent: number, name: string, d: Dentry): void {
    this.tx.put(dentryKey(parent, name), encodeDentry(d));
    if (this.#committed !== undefined) this.#wroteDentries.add(dentryId(parent, name));
    this.changes.push({ kind: 'dentry', parent, name, dentry: d });
  }

  deleteDentry(parent: number, name: string): void {
    this.tx.delete(dentryKey(parent, name));
    if (this.#committed !== undefined) this.#wroteDentries.add(dentryId(parent, name));
    this.changes.push({ kind: 'dentry', parent, name, dentry: null });
  }

  /** Marks blocks as belonging to `fileId` (allocated or committed). */
  indexBlock(blockId: number, fileId: number): void {
    this.tx.put(blockKey(blockId), encodeU64(fileId));
    this.counts.blocks++;
  }

  /** Gives a committed block to another file (concat): same block, same count, new owner. */
  moveBlock(blockId: number, fileId: number): void {
    this.tx.put(blockKey(blockId), encodeU64(fileId));
  }

  /** Forgets blocks: they belong to no file any more and their replicas get deleted. */
  dropBlocks(blockIds: Iterable<number>): void {
    for (const id of blockIds) {
      if (id === 0) continue;
      this.tx.delete(blockKey(id));
      this.removedBlocks.push(id);
      this.counts.blocks--;
    }
  }

  #setTtlIndex(before: Inode | undefined, after: Inode | undefined): void {
    const kb = before === undefined ? undefined : ttlExpiry(before);
    const ka = after === undefined ? undefined : ttlExpiry(after);
    if (kb === ka && before?.id === after?.id) return;
    if (before !== undefined && kb !== undefined) this.tx.delete(ttlKey(kb, before.id));
    if (after !== undefined && ka !== undefined) this.tx.put(ttlKey(ka, after.id), EMPTY);
  }

  grantLease(fileId: number, leaseId: string, host: string): void {
    this.tx.put(leaseKey(fileId), Buffer.from(leaseId, 'utf8'));
    this.leasesEnded.delete(fileId);
    this.leasesGranted.set(fileId, { id: leaseId, host });
  }

  endLease(fileId: number): void {
    this.tx.delete(leaseKey(fileId));
    this.leasesGranted.delete(fileId);
    this.leasesEnded.add(fileId);
  }

  putTrash(id: number): void {
    this.tx.put(trashKey(id), EMPTY);
  }

  deleteTrash(id: number): void {
    this.tx.delete(trashKey(id));
  }

  /** Deletes every extended attribute of an inode (it is going away). */
  dropXattrs(ino: Inode): void {
    if (ino.xattrCount === 0) return;
    for (const r of this.tx.scan({ prefix: xattrPrefix(ino.id), limit: ino.xattrCount + 1 }))
      this.tx.delete(r.key);
  }

  getXattr(id: number, name: string): Uint8Array | undefined {
    return this.tx.get(xattrKey(id, name));
  }

  #count(type: InodeType, delta: number): void {
    if (type === 'file') this.counts.files += delta;
    else if (type === 'dir') this.counts.dirs += delta;
    else this.counts.symlinks += delta;
  }
}

const EMPTY = new Uint8Array(0);

/** When an inode's TTL fires, or undefined when it has none (no TTL or action "none"). */
export function ttlExpiry(ino: Inode): number | undefined {
  if (ino.ttlMs <= 0 || ino.ttlAction === 'none') return undefined;
  return ttlBaseMs(ino) + ino.ttlMs;
}

/**
 * Where a TTL counts from: the mtime, except for a file loaded from a UFS, whose mtime is the
 * object's (often old): its TTL counts from when it entered the cache.
 */
export function ttlBaseMs(ino: Inode): number {
  return ino.type === 'file' && ino.ufs !== undefined ? ino.ufs.sinceMs : ino.mtimeMs;
}
