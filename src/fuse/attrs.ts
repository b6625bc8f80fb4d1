/**
 * Namespace entries as the kernel sees them: stat fields from a `FileStatus`, and statfs from
 * the cluster's capacity (so `df` on the mount shows what the workers hold, as Fluid expects).
 */
import { constants } from 'node:fs';
import type { FileStatus } from '../protocol/types.js';
import type { FuseAttr, FuseStatfs } from './binding.js';

/** Size reported for directories (the namespace keeps none; tools expect a block's worth). */
export const DIR_SIZE_BYTES = 4096;
/** Largest name the namespace accepts (MAX_NAME_BYTES in the protocol). */
export const NAME_MAX_BYTES = 255;
/** statfs fragment size; grown by powers of two when the block count would not fit 32 bits. */
const STATFS_MIN_FRSIZE_BYTES = 4096;
/** The binding carries statfs counts as unsigned 32-bit numbers. */
const STATFS_MAX_COUNT = 0xffff_ffff;
/** Inodes reported free: the namespace has no fixed inode table, so `df -i` shows a large pool. */
const STATFS_FREE_INODES = 1_000_000_000;

export function typeBits(type: FileStatus['type']): number {
  switch (type) {
    case 'dir':
      return constants.S_IFDIR;
    case 'symlink':
      return constants.S_IFLNK;
    default:
      return constants.S_IFREG;
  }
}

/** stat fields of an entry; `blksize` is the I/O size tools like cp use per call. */
export function toAttr(st: FileStatus, blksize: number): FuseAttr {
  const size = st.type === 'dir' ? DIR_SIZE_BYTES : st.size;
  return {
    ino: st.id,
    mode: typeBits(st.type) | (st.mode & 0o7777),
    nlink: Math.max(1, st.nlink),
    uid: st.uid,
    gid: st.gid,
    size,
    blocks: Math.ceil(size / 512),
    blksize,
    atimeMs: st.atimeMs,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
  };
}

export interface CapacityFigures {
  capacityBytes: number;
  usedBytes: number;
  availableBytes: number;
  files: number;
  dirs: number;
}

/** statfs of the cluster: total = workers' capacity, free = their available bytes. */
export function toStatfs(c: CapacityFigures): FuseStatfs {
  let frsize = STATFS_MIN_FRSIZE_BYTES;
  while (Math.floor(c.capacityBytes / frsize) > STATFS_MAX_COUNT) frsize *= 2;
  const blocks = Math.floor(c.capacityBytes / frsize);
  const bavail = Math.min(blocks, Math.floor(c.availableBytes / frsize));
  // Free counts what nobody uses (available may be lower: reserved space, watermarks).
  const bfree = Math.max(bavail, Math.min(blocks, Math.floor((c.capacityBytes - c.usedBytes) / frsize)));
  const used = Math.min(c.files + c.dirs, STATFS_MAX_COUNT - STATFS_FREE_INODES);
  return {
    bsize: frsize,
    frsize,
    blocks,
    bfree,
    bavail,
    files: used + STATFS_FREE_INODES,
    ffree: STATFS_FREE_INODES,
    favail: STATFS_FREE_INODES,
    namemax: NAME_MAX_BYTES,
  };
}
