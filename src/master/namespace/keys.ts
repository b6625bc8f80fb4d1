/**
 * The namespace's key layout in the MetaStore. One leading tag byte per kind of record keeps
 * each kind contiguous and scannable; ids are big-endian u64 so byte order is numeric order.
 *
 *   0x01 name            meta records (format marker, id counters)
 *   0x02 id              inode
 *   0x03 parent name     directory entry → child id (u64) + type byte
 *   0x04 id name         extended attribute → raw value
 *   0x05 blockId         block index → owning file id (u64): "this block is live"
 *   0x06 expiry id       TTL index (empty value)
 *   0x07 fileId          open lease (value: lease id)
 *   0x08 id              detached subtree waiting to be purged (recursive delete of a big tree)
 *   0x09 request         outcome of a mutating request (retried requests replay it; ha/retry-records.ts)
 *   0x0a expiry request  expiry index of those outcomes (empty value)
 *   0x20 and up          records of other parts of the master (UFS mounts, the persist queue)
 */
import { readU64, writeU64 } from '../../meta/index.js';
import type { InodeType } from './inode.js';

export const TAG_META = 0x01;
export const TAG_INODE = 0x02;
export const TAG_DENTRY = 0x03;
export const TAG_XATTR = 0x04;
export const TAG_BLOCK = 0x05;
export const TAG_TTL = 0x06;
export const TAG_LEASE = 0x07;
export const TAG_TRASH = 0x08;
export const TAG_RETRY = 0x09;
export const TAG_RETRY_EXPIRY = 0x0a;
/** Tags from here up belong to other parts of the master (mounts, jobs); the namespace leaves them alone. */
export const TAG_FOREIGN_MIN = 0x20;

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(TAG_META), Buffer.from(name, 'utf8')]);
}

function tagId(tag: number, id: number): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = tag;
  writeU64(k, 1, id);
  return k;
}

function tagIdName(tag: number, id: number, name: string): Buffer {
  const nameLen = Buffer.byteLength(name, 'utf8');
  const k = Buffer.allocUnsafe(9 + nameLen);
  k[0] = tag;
  writeU64(k, 1, id);
  k.write(name, 9, 'utf8');
  return k;
}

export const inodeKey = (id: number): Buffer => tagId(TAG_INODE, id);
export const inodePrefix = (): Buffer => Buffer.of(TAG_INODE);
export const dentryKey = (parent: number, name: string): Buffer => tagIdName(TAG_DENTRY, parent, name);
export const dentryPrefix = (parent: number): Buffer => tagId(TAG_DENTRY, parent);
export const xattrKey = (id: number, name: string): Buffer => tagIdName(TAG_XATTR, id, name);
export const xattrPrefix = (id: number): Buffer => tagId(TAG_XATTR, id);
export const blockKey = (blockId: number): Buffer => tagId(TAG_BLOCK, blockId);
export const blockPrefix = (): Buffer => Buffer.of(TAG_BLOCK);
export const leaseKey = (fileId: number): Buffer => tagId(TAG_LEASE, fileId);
export const leasePrefix = (): Buffer => Buffer.of(TAG_LEASE);
export const trashKey = (id: number): Buffer => tagId(TAG_TRASH, id);
export const trashPrefix = (): Buffer => Buffer.of(TAG_TRASH);

export function ttlKey(expiryMs: number, id: number): Buffer {
  const k = Buffer.allocUnsafe(17);
  k[0] = TAG_TTL;
  writeU64(k, 1, Math.max(0, Math.floor(expiryMs)));
  writeU64(k, 9, id);
  return k;
}
export const ttlPrefix = (): Buffer => Buffer.of(TAG_TTL);

export function parseTtlKey(k: Uint8Array): { expiryMs: number; id: number } {
  return { expiryMs: readU64(k, 1), id: readU64(k, 9) };
}

/** The id part of a 0xTT + u64 key. */
export function keyId(k: Uint8Array): number {
  return readU64(k, 1);
}

/** The name part of a dentry or xattr key. */
export function keyName(k: Uint8Array): string {
  return Buffer.from(k.buffer, k.byteOffset + 9, k.byteLength - 9).toString('utf8');
}

const DENTRY_TYPE_BYTE: Readonly<Record<InodeType, number>> = { dir: 1, file: 2, symlink: 3 };
const DENTRY_BYTE_TYPE: readonly (InodeType | undefined)[] = [undefined, 'dir', 'file', 'symlink'];

export interface Dentry {
  readonly id: number;
  readonly type: InodeType;
}

export function encodeDentry(d: Dentry): Buffer {
  const v = Buffer.allocUnsafe(9);
  writeU64(v, 0, d.id);
  v[8] = DENTRY_TYPE_BYTE[d.type];
  return v;
}

export function decodeDentry(v: Uint8Array): Dentry {
  return { id: readU64(v, 0), type: DENTRY_BYTE_TYPE[v[8] ?? 0] ?? 'file' };
}

export function encodeU64(n: number): Buffer {
  const v = Buffer.allocUnsafe(8);
  writeU64(v, 0, n);
  return v;
}

export function decodeU64(v: Uint8Array): number {
  return readU64(v, 0);
}
