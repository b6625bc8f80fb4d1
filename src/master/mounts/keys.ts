/**
 * Where mounts and the persist queue live in the MetaStore (tags above the namespace's, see
 * namespace/keys.ts):
 *
 *   0x20 mountId         mount record (msgpack)
 *   0x21                 next mount id (u64)
 *   0x22 fileId          persist queue entry (msgpack): an async-written file to copy to its UFS
 */
import { readU64, writeU64 } from '../../meta/index.js';

export const TAG_MOUNT = 0x20;
export const TAG_MOUNT_SEQ = 0x21;
export const TAG_PERSIST = 0x22;

function tagId(tag: number, id: number): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = tag;
  writeU64(k, 1, id);
  return k;
}

export const mountKey = (id: number): Buffer => tagId(TAG_MOUNT, id);
export const mountPrefix = (): Buffer => Buffer.of(TAG_MOUNT);
export const mountSeqKey = (): Buffer => Buffer.of(TAG_MOUNT_SEQ);
export const persistKey = (fileId: number): Buffer => tagId(TAG_PERSIST, fileId);
export const persistPrefix = (): Buffer => Buffer.of(TAG_PERSIST);

export function keyId(k: Uint8Array): number {
  return readU64(k, 1);
}

export function encodeU64(n: number): Buffer {
  const v = Buffer.allocUnsafe(8);
  writeU64(v, 0, n);
  return v;
}

export function decodeU64(v: Uint8Array): number {
  return readU64(v, 0);
}
