/**
 * The raw-disk index journal: a region of the device where index changes are appended as
 * checksummed records tagged with the current epoch. Replay reads records in order and stops at
 * the first that is torn, damaged or of another epoch: everything before it happened, nothing
 * after it did. A checkpoint starts a new epoch, so records of old epochs left behind in the
 * region are never mistaken for new ones.
 */
import type { FileHandle } from 'node:fs/promises';
import { pack, unpack } from 'msgpackr';
import { crc32 } from 'node:zlib';

const RECORD_MAGIC = 0x4a52; // "JR"
export const RECORD_HEADER_BYTES = 16;

/** An entry as the index knows it; journaled on put and in checkpoints. */
export interface PutRecord {
  t: 'put';
  key: string;
  /** Extents as flat [start, count, start, count, ...] block numbers. */
  ext: number[];
  /** Metadata bytes and the room reserved for it at the start of the entry's stream. */
  mb: number;
  mr: number;
  mc: number;
  /** Raw (uncompressed) body bytes and bytes as stored. */
  raw: number;
  st: number;
  /** Frame table: per frame, u32 stored length and u32 CRC of the stored bytes. */
  fr: Uint8Array;
  at: number;
}

export interface DelRecord {
  t: 'del';
  key: string;
}

/** The metadata area of an entry was rewritten in place (a 304 refreshed its headers). */
export interface MetaRecord {
  t: 'meta';
  key: string;
  mb: number;
  mc: number;
}

export type JournalRecord = PutRecord | DelRecord | MetaRecord;

function recordCrc(epoch: number, payload: Buffer): number {
  const e = Buffer.alloc(4);
  e.writeUInt32BE(epoch >>> 0, 0);
  return crc32(payload, crc32(e)) >>> 0;
}

export function encodeRecord(epoch: number, rec: JournalRecord): Buffer {
  const payload = pack(rec);
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt16BE(RECORD_MAGIC, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt32BE(epoch >>> 0, 4);
  out.writeUInt32BE(payload.length, 8);
  out.writeUInt32BE(recordCrc(epoch, payload), 12);
  payload.copy(out, RECORD_HEADER_BYTES);
  return out;
}

/** Parses the records of `epoch` from the start of a journal region image. */
export function scanRecords(region: Buffer, epoch: number): { records: JournalRecord[]; endOffset: number } {
  const records: JournalRecord[] = [];
  let off = 0;
  while (off + RECORD_HEADER_BYTES <= region.length) {
    if (region.readUInt16BE(off) !== RECORD_MAGIC) break;
    if (region.readUInt32BE(off + 4) !== epoch >>> 0) break;
    const len = region.readUInt32BE(off + 8);
    const end = off + RECORD_HEADER_BYTES + len;
    if (end > region.length) break;
    const payload = region.subarray(off + RECORD_HEADER_BYTES, end);
    if (recordCrc(epoch, payload) !== region.readUInt32BE(off + 12)) break;
    try {
      records.push(unpack(payload) as JournalRecord);
    } catch {
      break;
    }
    off = end;
  }
  return { records, endOffset: off };
}

export class JournalRegion {
  readonly #fh: FileHandle;
  readonly offset: number;
  readonly bytes: number;
  #epoch: number;
  #head: number;

  constructor(fh: FileHandle, offset: number, bytes: number, epoch: number, head: number) {
    this.#fh = fh;
    this.offset = offset;
    this.bytes = bytes;
    this.#epoch = epoch;
    this.#head = head;
  }

  get epoch(): number {
    return this.#epoch;
  }

  get head(): number {
    return this.#head;
  }

  /** Whether `n` more bytes fit before the region is full. */
  fits(n: number): boolean {
    return this.#head + n <= this.bytes;
  }

  /** Writes encoded records at the head (the caller syncs). */
  async append(encoded: Buffer): Promise<void> {
    if (!this.fits(encoded.length)) throw new RangeError('journal region full');
    let off = 0;
    while (off < encoded.length) {
      const { bytesWritten } = await this.#fh.write(
        encoded,
        off,
        encoded.length - off,
        this.offset + this.#head + off,
      );
      off += bytesWritten;
    }
    this.#head += encoded.length;
  }

  /** Starts a new epoch at the beginning of the region (after a checkpoint made the old one moot). */
  async reset(epoch: number): Promise<void> {
    this.#epoch = epoch;
    this.#head = 0;
    // Not needed for correctness (the epoch check rejects old records) but keeps replay short.
    await this.#fh.write(Buffer.alloc(RECORD_HEADER_BYTES), 0, RECORD_HEADER_BYTES, this.offset);
  }

  static async read(fh: FileHandle, offset: number, bytes: number): Promise<Buffer> {
    const buf = Buffer.alloc(bytes);
    let got = 0;
    while (got < bytes) {
      const { bytesRead } = await fh.read(buf, got, bytes - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf;
  }
}
