/**
 * The Linux FUSE kernel protocol as far as this engine speaks it: opcodes, flags and the byte
 * layouts of the structs it reads and writes, from /usr/include/linux/fuse.h (protocol 7.38;
 * all little-endian, as the kernel and we run on the same machine). Encoders write into one
 * buffer per reply so a reply is one write(2).
 */
import type { FuseAttr, FuseStatfs } from '../binding.js';

export const FUSE_KERNEL_VERSION = 7;
/** The minor version we implement; the kernel speaks min(its, ours). */
export const FUSE_KERNEL_MINOR_VERSION = 38;
/** Oldest minor whose struct sizes we assume (create_in/mknod_in with umask, 64-byte init_out). */
export const FUSE_MIN_MINOR_VERSION = 23;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  READDIRPLUS: 44,
  RENAME2: 45,
} as const;

/** INIT flags (fuse_init_in/out.flags). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  INIT_EXT: 1 << 30,
} as const;

/** fuse_setattr_in.valid bits. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
} as const;

export const FOPEN_KEEP_CACHE = 1 << 1;
export const FUSE_GETATTR_FH = 1 << 0;
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
/** renameat2 flags. */
export const RENAME_NOREPLACE = 1 << 0;
/** d_ino when the listing does not carry inode numbers (libfuse's FUSE_UNKNOWN_INO). */
export const FUSE_UNKNOWN_INO = 0xffff_ffff;
export const FUSE_ROOT_ID = 1;
/** The kernel's page size: request buffers hold max_write plus one page of headers. */
export const PAGE_SIZE_BYTES = 4096;

export const IN_HEADER_BYTES = 40;
export const OUT_HEADER_BYTES = 16;
export const ATTR_BYTES = 88;
export const ENTRY_OUT_BYTES = 40 + ATTR_BYTES;
export const ATTR_OUT_BYTES = 16 + ATTR_BYTES;
export const OPEN_OUT_BYTES = 16;
export const INIT_OUT_BYTES = 64;
export const KSTATFS_BYTES = 80;
export const DIRENT_HEADER_BYTES = 24;
/** Offsets of the payload after fuse_in_header, per request struct. */
export const WRITE_IN_BYTES = 40;

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
}

export function decodeInHeader(b: Buffer): InHeader {
  return {
    len: b.readUInt32LE(0),
    opcode: b.readUInt32LE(4),
    unique: b.readBigUInt64LE(8),
    nodeid: b.readBigUInt64LE(16),
    uid: b.readUInt32LE(24),
    gid: b.readUInt32LE(28),
    pid: b.readUInt32LE(32),
  };
}

/** A reply buffer of header + `payloadBytes`, header filled (error 0). */
export function replyBuffer(unique: bigint, payloadBytes: number): Buffer {
  const b = Buffer.allocUnsafe(OUT_HEADER_BYTES + payloadBytes);
  writeOutHeader(b, unique, 0);
  return b;
}

export function writeOutHeader(b: Buffer, unique: bigint, negErrno: number): void {
  b.writeUInt32LE(b.length, 0);
  b.writeInt32LE(negErrno, 4);
  b.writeBigUInt64LE(unique, 8);
}

export function errorReply(unique: bigint, errno: number): Buffer {
  const b = Buffer.allocUnsafe(OUT_HEADER_BYTES);
  writeOutHeader(b, unique, -errno);
  return b;
}

/** Splits a timeout in ms into fuse's (seconds u64, nanoseconds u32). */
function secNsec(ms: number): [bigint, number] {
  const whole = Math.floor(ms / 1000);
  return [BigInt(Math.max(0, whole)), Math.max(0, Math.round((ms - whole * 1000) * 1e6))];
}

function writeTime(b: Buffer, secOff: number, nsecOff: number, ms: number): void {
  const [s, ns] = secNsec(ms);
  b.writeBigUInt64LE(s, secOff);
  b.writeUInt32LE(Math.min(ns, 999_999_999), nsecOff);
}

/** struct fuse_attr at `off`. */
export function writeAttr(b: Buffer, off: number, a: FuseAttr): void {
  b.writeBigUInt64LE(BigInt(a.ino), off);
  b.writeBigUInt64LE(BigInt(a.size), off + 8);
  b.writeBigUInt64LE(BigInt(a.blocks), off + 16);
  writeTime(b, off + 24, off + 48, a.atimeMs);
  writeTime(b, off + 32, off + 52, a.mtimeMs);
  writeTime(b, off + 40, off + 56, a.ctimeMs);
  b.writeUInt32LE(a.mode >>> 0, off + 60);
  b.writeUInt32LE(a.nlink >>> 0, off + 64);
  b.writeUInt32LE(a.uid >>> 0, off + 68);
  b.writeUInt32LE(a.gid >>> 0, off + 72);
  b.writeUInt32LE(0, off + 76); // rdev
  b.writeUInt32LE(a.blksize >>> 0, off + 80);
  b.writeUInt32LE(0, off + 84); // flags
}

/** struct fuse_entry_out at `off`. */
export function writeEntryOut(
  b: Buffer,
  off: number,
  nodeid: bigint,
  a: FuseAttr,
  entryMs: number,
  attrMs: number,
): void {
  b.writeBigUInt64LE(nodeid, off);
  b.writeBigUInt64LE(0n, off + 8); // generation: node ids are never reused within a session
  const [es, ens] = secNsec(entryMs);
  const [as, ans] = secNsec(attrMs);
  b.writeBigUInt64LE(es, off + 16);
  b.writeBigUInt64LE(as, off + 24);
  b.writeUInt32LE(ens, off + 32);
  b.writeUInt32LE(ans, off + 36);
  writeAttr(b, off + 40, a);
}

export function writeAttrOut(b: Buffer, off: number, a: FuseAttr, attrMs: number): void {
  const [s, ns] = secNsec(attrMs);
  b.writeBigUInt64LE(s, off);
  b.writeUInt32LE(ns, off + 8);
  b.writeUInt32LE(0, off + 12);
  writeAttr(b, off + 16, a);
}

export function writeOpenOut(b: Buffer, off: number, fh: number, openFlags: number): void {
  b.writeBigUInt64LE(BigInt(fh), off);
  b.writeUInt32LE(openFlags, off + 8);
  b.writeUInt32LE(0, off + 12);
}

/** struct fuse_kstatfs (fuse_statfs_out). */
export function writeKstatfs(b: Buffer, off: number, s: FuseStatfs): void {
  b.fill(0, off, off + KSTATFS_BYTES);
  b.writeBigUInt64LE(BigInt(s.blocks), off);
  b.writeBigUInt64LE(BigInt(s.bfree), off + 8);
  b.writeBigUInt64LE(BigInt(s.bavail), off + 16);
  b.writeBigUInt64LE(BigInt(s.files), off + 24);
  b.writeBigUInt64LE(BigInt(s.ffree), off + 32);
  b.writeUInt32LE(s.bsize, off + 40);
  b.writeUInt32LE(s.namemax, off + 44);
  b.writeUInt32LE(s.frsize, off + 48);
}

/** Bytes a fuse_dirent of `nameBytes` takes, padded to 8. */
export function direntBytes(nameBytes: number): number {
  return (DIRENT_HEADER_BYTES + nameBytes + 7) & ~7;
}

/**
 * Writes one fuse_dirent; `nextOffset` is what readdir is called with to continue after it,
 * `ino` the entry's inode number (FUSE_UNKNOWN_INO when unknown).
 */
export function writeDirent(
  b: Buffer,
  off: number,
  name: Buffer,
  nextOffset: number,
  type: number,
  ino: number = FUSE_UNKNOWN_INO,
): number {
  const size = direntBytes(name.length);
  b.writeBigUInt64LE(BigInt(ino), off);
  b.writeBigUInt64LE(BigInt(nextOffset), off + 8);
  b.writeUInt32LE(name.length, off + 16);
  b.writeUInt32LE(type, off + 20);
  name.copy(b, off + DIRENT_HEADER_BYTES);
  b.fill(0, off + DIRENT_HEADER_BYTES + name.length, off + size);
  return size;
}

/** A NUL-terminated string at `off`; returns it and the offset after the NUL. */
export function readCString(b: Buffer, off: number): [string, number] {
  const end = b.indexOf(0, off);
  if (end < 0) throw new RangeError('unterminated string in a FUSE request');
  return [b.toString('utf8', off, end), end + 1];
}
