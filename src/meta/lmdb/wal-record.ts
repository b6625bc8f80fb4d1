/**
 * One write-ahead-log record: the writes of one transaction, framed so that a torn or damaged
 * record is recognised on replay.
 *
 *   u32 payload length | u32 CRC-32 of the payload | payload   (a zero header: end of the log)
 *   payload = f64 revision | u32 write count | per write: u8 kind (1 put, 0 delete),
 *             u16 key length, key, and for a put u32 value length, value
 *
 * Little-endian throughout. The revision is the transaction's store revision: revisions of
 * consecutive records are consecutive, which replay checks (a gap means lost records).
 */
import { crc32 } from 'node:zlib';

export const WAL_HEADER_BYTES = 8;
const PUT = 1;
const DELETE = 0;

export interface WalWrite {
  key: Buffer;
  /** undefined = delete. */
  value: Buffer | undefined;
}

export interface WalRecord {
  revision: number;
  writes: WalWrite[];
}

/**
 * Encodes one record, header included. `views` gets, per write, its key and value as views into
 * the record (which the caller may keep instead of the caller's buffers).
 */
export function encodeWalRecord(revision: number, writes: Iterable<WalWrite>, views?: WalWrite[]): Buffer {
  let size = 12;
  let count = 0;
  for (const w of writes) {
    size += 3 + w.key.byteLength + (w.value === undefined ? 0 : 4 + w.value.byteLength);
    count++;
  }
  const buf = Buffer.allocUnsafe(WAL_HEADER_BYTES + size);
  let o = WAL_HEADER_BYTES;
  buf.writeDoubleLE(revision, o);
  buf.writeUInt32LE(count, o + 8);
  o += 12;
  for (const w of writes) {
    buf[o] = w.value === undefined ? DELETE : PUT;
    buf.writeUInt16LE(w.key.byteLength, o + 1);
    o += 3;
    const keyAt = o;
    o += w.key.copy(buf, o);
    const key = buf.subarray(keyAt, o);
    if (w.value === undefined) {
      views?.push({ key, value: undefined });
      continue;
    }
    buf.writeUInt32LE(w.value.byteLength, o);
    o += 4;
    const valueAt = o;
    o += w.value.copy(buf, o);
    views?.push({ key, value: buf.subarray(valueAt, o) });
  }
  const payload = buf.subarray(WAL_HEADER_BYTES);
  buf.writeUInt32LE(size, 0);
  buf.writeUInt32LE(crc32(payload), 4);
  return buf;
}

/**
 * The unit a disk writes whole: after a crash, each sector of a batch that was being written
 * holds either the new bytes or what was there before — zeros, since segments are preallocated
 * with zeros (and a growing file's unwritten tail reads as zeros).
 */
export const WAL_SECTOR_BYTES = 512;

/** What one pass over a segment's bytes found. */
export interface WalScan {
  records: WalRecord[];
  /** Bytes of whole, valid records from the start. */
  validBytes: number;
  /** Why parsing stopped before the end, if it did (torn or damaged record). */
  damage?: string;
  /**
   * With `damage`: 'torn' when the record was never written whole (it runs past the end of the
   * file, or one of its sectors is still zeros) — the batch a crash interrupted, which nobody
   * was told had committed; 'corrupt' when every byte of it was written and it is still wrong
   * (bits changed on disk after the write was acknowledged).
   */
  damageKind?: 'torn' | 'corrupt';
}

/** Whether an aligned sector overlapping [from, to) of `buf` is all zeros (never written). */
function hasZeroSector(buf: Buffer, from: number, to: number): boolean {
  for (let s = from - (from % WAL_SECTOR_BYTES); s < to; s += WAL_SECTOR_BYTES) {
    const end = Math.min(s + WAL_SECTOR_BYTES, buf.byteLength);
    let zero = true;
    for (let i = s; i < end && zero; i++) zero = buf[i] === 0;
    if (zero) return true;
  }
  return false;
}

/**
 * Parses records from the start of a segment; stops at the first incomplete or damaged one and
 * says whether it was torn by a crash or corrupted after it was written (`damageKind`).
 */
export function scanWalSegment(buf: Buffer): WalScan {
  const records: WalRecord[] = [];
  let o = 0;
  const damaged = (what: string, end: number): WalScan => ({
    records,
    validBytes: o,
    damage: `${what} at offset ${o}`,
    damageKind: end > buf.byteLength || hasZeroSector(buf, o, end) ? 'torn' : 'corrupt',
  });
  while (o < buf.byteLength) {
    if (buf.byteLength - o < WAL_HEADER_BYTES) return damaged('incomplete record header', Infinity);
    const size = buf.readUInt32LE(o);
    const sum = buf.readUInt32LE(o + 4);
    // The zeros of a preallocated segment: nothing was written from here on.
    if (size === 0 && sum === 0) return { records, validBytes: o };
    const start = o + WAL_HEADER_BYTES;
    // A length past the end: the record never reached the file whole (or its length field is
    // damaged, which cannot be told apart from that).
    if (size > buf.byteLength - start) return damaged(`record claiming ${size} bytes`, Infinity);
    if (size < 12) return damaged(`record claiming ${size} bytes`, start);
    const payload = buf.subarray(start, start + size);
    if (crc32(payload) !== sum) return damaged('bad checksum', start + size);
    const rec = decodePayload(payload);
    if (rec === undefined) return damaged('malformed record', start + size);
    records.push(rec);
    o = start + size;
  }
  return { records, validBytes: o };
}

function decodePayload(p: Buffer): WalRecord | undefined {
  const revision = p.readDoubleLE(0);
  const count = p.readUInt32LE(8);
  if (!Number.isSafeInteger(revision) || revision <= 0) return undefined;
  const writes: WalWrite[] = [];
  let o = 12;
  for (let i = 0; i < count; i++) {
    if (o + 3 > p.byteLength) return undefined;
    const kind = p[o];
    const keyLen = p.readUInt16LE(o + 1);
    o += 3;
    if (o + keyLen > p.byteLength) return undefined;
    const key = Buffer.from(p.subarray(o, o + keyLen));
    o += keyLen;
    if (kind === DELETE) {
      writes.push({ key, value: undefined });
      continue;
    }
    if (kind !== PUT || o + 4 > p.byteLength) return undefined;
    const len = p.readUInt32LE(o);
    o += 4;
    if (o + len > p.byteLength) return undefined;
    writes.push({ key, value: Buffer.from(p.subarray(o, o + len)) });
    o += len;
  }
  return o === p.byteLength ? { revision, writes } : undefined;
}
