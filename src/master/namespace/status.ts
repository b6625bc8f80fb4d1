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

export function toStatus(ino: Inode, path: string, ctx: StatusContext): FileStatus {
  const name = path === '/' ? '' : path.slice(path.lastIndexOf('/') + 1);
  const base = {
    id: ino.id,
    path,
    name,
    type: ino.type,
    mode: ino.mode & 0o7777,
    uid: ino.uid,
    gid: ino.gid,
    nlink: ino.nlink,
    atimeMs: ino.atimeMs,
    mtimeMs: ino.mtimeMs,
    ctimeMs: ino.ctimeMs,
    ttlMs: ino.ttlMs,
    ttlAction: ino.ttlAction,
  };
  switch (ino.type) {
    case 'file': {
      const cached = ctx.cachedBytes?.(ino);
      return {
        ...base,
        size: ino.length,
        blockSize: ino.blockSize,
        replicas: ino.replicas,
        storageType: ino.storageType,
        state: ino.state,
        ...(cached === undefined ? {} : { cachedBytes: Math.min(cached, ino.length) }),
      };
    }
    case 'dir':
      return {
        ...base,
        size: 0,
        blockSize: 0,
        replicas: 0,
        storageType: ctx.defaultStorageType,
        state: 'complete',
        children: ino.children,
      };
    case 'symlink':
      return {
        ...base,
        size: Buffer.byteLength(ino.target, 'utf8'),
        blockSize: 0,
        replicas: 0,
        storageType: ctx.defaultStorageType,
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
