/** FileStatus (the wire view of an inode) from an inode and the path it was reached by. */
import type { StorageType } from '../../common/config/data-dir.js';
import type { FileBlock, FileStatus } from '../../protocol/types.js';
import type { FileInode, Inode } from './inode.js';

export interface StatusContext {
  /** Storage type shown for directories and symlinks (they hold no blocks). */
  defaultStorageType: StorageType;
  /** Bytes of a file held by workers; undefined when unknown. */
  cachedBytes?: (file: FileInode) => number | undefined;
}

/** One literal per type (no spreads): this runs for every status a call returns. */
export function toStatus(ino: Inode, path: string, ctx: StatusContext): FileStatus {
  const name = path === '/' ? '' : path.slice(path.lastIndexOf('/') + 1);
  switch (ino.type) {
    case 'file': {
      const cached = ctx.cachedBytes?.(ino);
      const s: FileStatus = {
        id: ino.id,
        path,
        name,
        type: 'file',
        size: ino.length,
        mode: ino.mode & 0o7777,
        uid: ino.uid,
        gid: ino.gid,
        nlink: ino.nlink,
        atimeMs: ino.atimeMs,
        mtimeMs: ino.mtimeMs,
        ctimeMs: ino.ctimeMs,
        blockSize: ino.blockSize,
        replicas: ino.replicas,
        storageType: ino.storageType,
        ttlMs: ino.ttlMs,
        ttlAction: ino.ttlAction,
        state: ino.state,
      };
      if (cached !== undefined) s.cachedBytes = Math.min(cached, ino.length);
      return s;
    }
    case 'dir':
      return {
        id: ino.id,
        path,
        name,
        type: 'dir',
        size: 0,
        mode: ino.mode & 0o7777,
        uid: ino.uid,
        gid: ino.gid,
        nlink: ino.nlink,
        atimeMs: ino.atimeMs,
        mtimeMs: ino.mtimeMs,
        ctimeMs: ino.ctimeMs,
        blockSize: 0,
        replicas: 0,
        storageType: ctx.defaultStorageType,
        ttlMs: ino.ttlMs,
        ttlAction: ino.ttlAction,
        state: 'complete',
        children: ino.children,
      };
    case 'symlink':
      return {
        id: ino.id,
        path,
        name,
        type: 'symlink',
        size: Buffer.byteLength(ino.target, 'utf8'),
        mode: ino.mode & 0o7777,
        uid: ino.uid,
        gid: ino.gid,
        nlink: ino.nlink,
        atimeMs: ino.atimeMs,
        mtimeMs: ino.mtimeMs,
        ctimeMs: ino.ctimeMs,
        blockSize: 0,
        replicas: 0,
        storageType: ctx.defaultStorageType,
        ttlMs: ino.ttlMs,
        ttlAction: ino.ttlAction,
        state: 'complete',
        target: ino.target,
      };
  }
}

export function toFileBlocks(blocks: readonly number[]): FileBlock[] {
  const out: FileBlock[] = [];
  for (let i = 0; i < blocks.length; i += 2)
    out.push({ blockId: blocks[i] as number, length: blocks[i + 1] as number });
  return out;
}
