/**
 * On-disk format of one block file: the block's bytes, then a table of CRC32s (one per 64 KiB
 * chunk, little endian), then a fixed 32-byte footer. Keeping data and checksums in one file
 * makes publishing atomic with a single rename, and moves between tiers copy one file.
 *
 *   [data: length bytes][crc[0..n): 4n bytes][footer: 32 bytes]
 *   footer = magic "STBK" | version u16 | flags u16 | chunkSize u32 | reserved u32
 *          | length u64 | crc32(table) u32 | crc32(footer[0..28)) u32
 *
 * The data comes first so a short-circuit reader uses the file as is, reading `length` bytes.
 * The length is also a pure function of the file size, so recovery needs only a stat per block.
 */
import { crc32 } from 'node:zlib';
import { crc32 as chunkCrc32 } from './crc32.js';

export const CHUNK_SIZE_BYTES = 64 * 1024;
export const FOOTER_SIZE_BYTES = 32;
export const CRC_SIZE_BYTES = 4;
const MAGIC = 0x4b425453; // "STBK" read as a little-endian u32
const FORMAT_VERSION = 1;
/** Largest block the format describes (2^53 − 1 bytes: the protocol's integer limit). */
export const MAX_BLOCK_LENGTH_BYTES = Number.MAX_SAFE_INTEGER - 1024 * 1024;

export function chunkCount(lengthBytes: number): number {
  return Math.ceil(lengthBytes / CHUNK_SIZE_BYTES);
}

/** Size of the whole file holding a block of `lengthBytes`. */
export function fileSizeFor(lengthBytes: number): number {
  return lengthBytes + CRC_SIZE_BYTES * chunkCount(lengthBytes) + FOOTER_SIZE_BYTES;
}

/** The checksum overhead of a block: table plus footer. */
export function overheadFor(lengthBytes: number): number {
  return fileSizeFor(lengthBytes) - lengthBytes;
}

/**
 * Inverse of fileSizeFor, or undefined when no length gives this size (a damaged file).
 * For x = size − footer, n = ceil(x / (chunk + 4)) is the chunk count and length = x − 4n.
 */
export function lengthFromFileSize(fileSizeBytes: number): number | undefined {
  const x = fileSizeBytes - FOOTER_SIZE_BYTES;
  if (x < 0) return undefined;
  const n = Math.ceil(x / (CHUNK_SIZE_BYTES + CRC_SIZE_BYTES));
  const length = x - CRC_SIZE_BYTES * n;
  if (length < 0 || chunkCount(length) !== n) return undefined;
  return length;
}

export interface Footer {
  lengthBytes: number;
  chunkSizeBytes: number;
  tableCrc: number;
}

export function encodeFooter(lengthBytes: number, table: Buffer): Buffer {
  const f = Buffer.alloc(FOOTER_SIZE_BYTES);
  f.writeUInt32LE(MAGIC, 0);
  f.writeUInt16LE(FORMAT_VERSION, 4);
  f.writeUInt16LE(0, 6);
  f.writeUInt32LE(CHUNK_SIZE_BYTES, 8);
  f.writeUInt32LE(0, 12);
  f.writeBigUInt64LE(BigInt(lengthBytes), 16);
  f.writeUInt32LE(crc32(table), 24);
  f.writeUInt32LE(crc32(f.subarray(0, 28)), 28);
  return f;
}

/** Decodes and checks a footer; a string names what is wrong. */
export function decodeFooter(f: Buffer): Footer | string {
  if (f.length !== FOOTER_SIZE_BYTES) return `footer is ${f.length} bytes, expected ${FOOTER_SIZE_BYTES}`;
  if (f.readUInt32LE(0) !== MAGIC) return 'bad footer magic';
  if (crc32(f.subarray(0, 28)) !== f.readUInt32LE(28)) return 'footer checksum mismatch';
  const version = f.readUInt16LE(4);
  if (version !== FORMAT_VERSION) return `unknown block format version ${version}`;
  const chunkSizeBytes = f.readUInt32LE(8);
  if (chunkSizeBytes !== CHUNK_SIZE_BYTES) return `unsupported chunk size ${chunkSizeBytes}`;
  const length = f.readBigUInt64LE(16);
  if (length > BigInt(MAX_BLOCK_LENGTH_BYTES)) return `length ${length} out of range`;
  return { lengthBytes: Number(length), chunkSizeBytes, tableCrc: f.readUInt32LE(24) };
}

/** Bytes of the trailer (checksum table and footer) after `lengthBytes` data bytes. */
export function trailerSizeFor(lengthBytes: number): number {
  return CRC_SIZE_BYTES * chunkCount(lengthBytes) + FOOTER_SIZE_BYTES;
}

/**
 * Checks a trailer read from after `lengthBytes` data bytes (`trailerSizeFor(lengthBytes)` of
 * them): footer, length and the table's own checksum. Returns the checksum table, or a string
 * naming what is wrong.
 */
export function checkTrailer(trailer: Buffer, lengthBytes: number): Buffer | string {
  const tableBytes = CRC_SIZE_BYTES * chunkCount(lengthBytes);
  if (trailer.length !== tableBytes + FOOTER_SIZE_BYTES) return 'trailer is short';
  const footer = decodeFooter(trailer.subarray(tableBytes));
  if (typeof footer === 'string') return footer;
  if (footer.lengthBytes !== lengthBytes)
    return `footer says ${footer.lengthBytes} bytes, expected ${lengthBytes}`;
  const table = trailer.subarray(0, tableBytes);
  if (crc32(table) !== footer.tableCrc) return 'checksum table is damaged';
  return table;
}

/** The per-chunk checksums are computed the same way by a short-circuit client writer. */
export { ChunkChecksummer } from './chunk-checksums.js';

/** The trailer (table + footer) to append after `length` data bytes. */
export function encodeTrailer(lengthBytes: number, table: Buffer): Buffer {
  if (table.length !== CRC_SIZE_BYTES * chunkCount(lengthBytes)) {
    throw new Error(`checksum table has ${table.length / 4} entries for ${chunkCount(lengthBytes)} chunks`);
  }
  return Buffer.concat([table, encodeFooter(lengthBytes, table)]);
}

/**
 * Checks chunk `index` of a block held in `data` (a full chunk, or the short last one) against
 * the table; returns true when it matches.
 */
export function chunkMatches(table: Buffer, index: number, data: Uint8Array): boolean {
  // The fastest CRC32 routine available (crc32.ts): reads verify every byte they serve with it.
  return chunkCrc32(data) === table.readUInt32LE(index * CRC_SIZE_BYTES);
}
