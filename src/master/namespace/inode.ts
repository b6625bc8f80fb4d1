/**
 * Inodes as the namespace holds them, and their stored form.
 *
 * Stored value = a msgpack array in a fixed field order (positional: several times faster to
 * encode and decode than a map, and half the size), the type code first so startup can count
 * files and directories without decoding. INODE_FORMAT_VERSION (second) guards the layout.
 *
 * Inode objects are immutable once built: an update makes a copy. The cache hands the same
 * object to many readers, so nobody may mutate one in place.
 */
import { Packr } from 'msgpackr';
import { STORAGE_TYPES } from '../../common/config/data-dir.js';
import type { StorageType } from '../../common/config/data-dir.js';
import { TTL_ACTIONS } from '../../common/config/schema.js';
import type { TtlAction } from '../../common/config/schema.js';
import { metaCorruptInode } from './errors.js';

export const INODE_FORMAT_VERSION = 1;
export const ROOT_ID = 1;

export type InodeType = 'file' | 'dir' | 'symlink';
export type FileState = 'writing' | 'complete';

/** One name of an inode: the directory holding it and the name there. */
export type Link = readonly [parentId: number, name: string];

export interface InodeCommon {
  readonly id: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Files and symlinks: number of names. Directories: 2 + subdirectories, as POSIX tools expect. */
  readonly nlink: number;
  readonly atimeMs: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  /** Every name of this inode (directories and symlinks have one; root has none). */
  readonly links: readonly Link[];
  /** 0 = no TTL; expiry = mtimeMs + ttlMs. */
  readonly ttlMs: number;
  readonly ttlAction: TtlAction;
  readonly xattrCount: number;
  readonly xattrBytes: number;
}

export interface DirInode extends InodeCommon {
  readonly type: 'dir';
  /** Entries directly inside. */
  readonly children: number;
}

export interface Lease {
  readonly id: string;
  /** The writer's host name (diagnostics, local-first placement). */
  readonly host: string;
}

/**
 * A file whose data has (or will have) a copy in a mounted UFS. Absent for files only Strata
 * holds. Stored as an optional trailing element, so inodes written before mounts existed decode
 * unchanged.
 */
export interface UfsFileState {
  readonly mountId: number;
  /** The version of the UFS object the file's blocks hold (a read of another version is refused). */
  readonly size: number;
  readonly mtimeMs: number;
  /** "" when the UFS gives no ETag. */
  readonly etag: string;
  /** The UFS holds the data, so cached copies may be dropped; false while an async write waits to be persisted. */
  readonly persisted: boolean;
  /** When the file entered the cache (loaded from the UFS or written): the base of a mount's TTL. */
  readonly sinceMs: number;
}

export interface FileInode extends InodeCommon {
  readonly type: 'file';
  readonly length: number;
  readonly blockSize: number;
  readonly replicas: number;
  readonly storageType: StorageType;
  readonly state: FileState;
  /** Committed blocks, flattened: [blockId0, length0, blockId1, length1, …]; blockId 0 = hole. */
  readonly blocks: readonly number[];
  readonly lease: Lease | null;
  /** Blocks allocated under the current lease and not committed yet. */
  readonly pending: readonly number[];
  readonly ufs?: UfsFileState;
}

export interface SymlinkInode extends InodeCommon {
  readonly type: 'symlink';
  readonly target: string;
}

export type Inode = DirInode | FileInode | SymlinkInode;

const TYPE_BYTE: Readonly<Record<InodeType, number>> = { dir: 1, file: 2, symlink: 3 };
const BYTE_TYPE: readonly (InodeType | undefined)[] = [undefined, 'dir', 'file', 'symlink'];
const STATE_CODES: readonly FileState[] = ['writing', 'complete'];

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * Stored form: a msgpack array whose first element is the type code. The array header is one
 * byte (up to 15 elements) or three (array16), so the type byte sits at a fixed offset and
 * startup can count inodes by type without decoding them.
 */
export function storedInodeType(value: Uint8Array): InodeType | undefined {
  const h = value[0];
  const at = h === undefined ? -1 : h >= 0x90 && h <= 0x9f ? 1 : h === 0xdc ? 3 : -1;
  return at < 0 ? undefined : BYTE_TYPE[value[at] ?? 0];
}

export function encodeInode(ino: Inode): Buffer {
  const ttl = TTL_ACTIONS.indexOf(ino.ttlAction);
  switch (ino.type) {
    case 'dir':
      return packr.pack([
        TYPE_BYTE.dir,
        INODE_FORMAT_VERSION,
        ino.id,
        ino.mode,
        ino.uid,
        ino.gid,
        ino.nlink,
        ino.atimeMs,
        ino.mtimeMs,
        ino.ctimeMs,
        ino.links,
        ino.ttlMs,
        ttl,
        ino.xattrCount,
        ino.xattrBytes,
        ino.children,
      ]);
    case 'file':
      return packr.pack([
        TYPE_BYTE.file,
        INODE_FORMAT_VERSION,
        ino.id,
        ino.mode,
        ino.uid,
        ino.gid,
        ino.nlink,
        ino.atimeMs,
        ino.mtimeMs,
        ino.ctimeMs,
        ino.links,
        ino.ttlMs,
        ttl,
        ino.xattrCount,
        ino.xattrBytes,
        ino.length,
        ino.blockSize,
        ino.replicas,
        STORAGE_TYPES.indexOf(ino.storageType),
        STATE_CODES.indexOf(ino.state),
        ino.blocks,
        ino.lease === null ? null : [ino.lease.id, ino.lease.host],
        ino.pending,
        ...(ino.ufs === undefined ? [] : [encodeUfsState(ino.ufs)]),
      ]);
    case 'symlink':
      return packr.pack([
        TYPE_BYTE.symlink,
        INODE_FORMAT_VERSION,
        ino.id,
        ino.mode,
        ino.uid,
        ino.gid,
        ino.nlink,
        ino.atimeMs,
        ino.mtimeMs,
        ino.ctimeMs,
        ino.links,
        ino.ttlMs,
        ttl,
        ino.xattrCount,
        ino.xattrBytes,
        ino.target,
      ]);
  }
}

export function decodeInode(value: Uint8Array): Inode {
  let a: unknown[];
  try {
    a = packr.unpack(value) as unknown[];
  } catch (err) {
    throw metaCorruptInode(`undecodable inode value: ${(err as Error).message}`);
  }
  const type = Array.isArray(a) ? BYTE_TYPE[a[0] as number] : undefined;
  if (type === undefined || a[1] !== INODE_FORMAT_VERSION) {
    throw metaCorruptInode(`inode value of unknown type or format (${String(a[0])}, ${String(a[1])})`);
  }
  const ttlAction = TTL_ACTIONS[a[12] as number] ?? 'none';
  switch (type) {
    case 'dir':
      return {
        type,
        id: a[2] as number,
        mode: a[3] as number,
        uid: a[4] as number,
        gid: a[5] as number,
        nlink: a[6] as number,
        atimeMs: a[7] as number,
        mtimeMs: a[8] as number,
        ctimeMs: a[9] as number,
        links: a[10] as Link[],
        ttlMs: a[11] as number,
        ttlAction,
        xattrCount: a[13] as number,
        xattrBytes: a[14] as number,
        children: a[15] as number,
      };
    case 'file': {
      const lease = a[21] as [string, string] | null;
      const ufs = a[23] === undefined || a[23] === null ? undefined : decodeUfsState(a[23]);
      const file: FileInode = {
        type,
        id: a[2] as number,
        mode: a[3] as number,
        uid: a[4] as number,
        gid: a[5] as number,
        nlink: a[6] as number,
        atimeMs: a[7] as number,
        mtimeMs: a[8] as number,
        ctimeMs: a[9] as number,
        links: a[10] as Link[],
        ttlMs: a[11] as number,
        ttlAction,
        xattrCount: a[13] as number,
        xattrBytes: a[14] as number,
        length: a[15] as number,
        blockSize: a[16] as number,
        replicas: a[17] as number,
        storageType: STORAGE_TYPES[a[18] as number] ?? 'DISK',
        state: STATE_CODES[a[19] as number] ?? 'complete',
        blocks: a[20] as number[],
        lease: lease === null ? null : { id: lease[0], host: lease[1] },
        pending: a[22] as number[],
      };
      return ufs === undefined ? file : { ...file, ufs };
    }
    case 'symlink':
      return {
        type,
        id: a[2] as number,
        mode: a[3] as number,
        uid: a[4] as number,
        gid: a[5] as number,
        nlink: a[6] as number,
        atimeMs: a[7] as number,
        mtimeMs: a[8] as number,
        ctimeMs: a[9] as number,
        links: a[10] as Link[],
        ttlMs: a[11] as number,
        ttlAction,
        xattrCount: a[13] as number,
        xattrBytes: a[14] as number,
        target: a[15] as string,
      };
  }
}

function encodeUfsState(u: UfsFileState): unknown[] {
  return [u.mountId, u.size, u.mtimeMs, u.etag, u.persisted ? 1 : 0, u.sinceMs];
}

function decodeUfsState(v: unknown): UfsFileState {
  if (!Array.isArray(v) || v.length < 6) throw metaCorruptInode('undecodable UFS state of a file inode');
  return {
    mountId: v[0] as number,
    size: v[1] as number,
    mtimeMs: v[2] as number,
    etag: v[3] as string,
    persisted: v[4] === 1,
    sinceMs: v[5] as number,
  };
}

/** Number of blocks in a flattened list. */
export function blockCount(blocks: readonly number[]): number {
  return blocks.length >>> 1;
}

/** Real (non-hole) block ids of a flattened list. */
export function realBlockIds(blocks: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < blocks.length; i += 2) {
    const id = blocks[i] as number;
    if (id !== 0) out.push(id);
  }
  return out;
}
