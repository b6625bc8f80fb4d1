/**
 * On-disk layout of the raw-disk cache (one preallocated file or block device):
 *
 *   [superblock A | superblock B]  two 4 KiB slots; the valid one with the higher sequence wins
 *   [journal]                      records of the current epoch, appended; replayed on start
 *   [data blocks]                  entries (metadata area + body frames) and index checkpoints
 *
 * A superblock names the geometry, the journal epoch and where the last index checkpoint lies.
 * Writing a checkpoint, then the other superblock slot, then starting a new journal epoch makes
 * the switch atomic: a torn superblock write leaves the previous slot in charge.
 */
import { pack, unpack } from 'msgpackr';
import { crcOf } from '../frames.js';
import type { Extent } from './allocator.js';

export const SUPERBLOCK_SLOT_BYTES = 4096;
const SUPERBLOCK_MAGIC = 0x53505852; // "SPXR"
export const LAYOUT_VERSION = 1;
/** Journal size: a fraction of the device, within bounds (records are small; checkpoints reset it). */
export const JOURNAL_FRACTION = 1 / 64;
export const JOURNAL_MIN_BYTES = 1024 * 1024;
export const JOURNAL_MAX_BYTES = 64 * 1024 * 1024;

export interface Geometry {
  blockSizeBytes: number;
  totalBytes: number;
  journalOffset: number;
  journalBytes: number;
  dataOffset: number;
  dataBlocks: number;
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function computeGeometry(totalBytes: number, blockSizeBytes: number): Geometry {
  const journalOffset = alignUp(2 * SUPERBLOCK_SLOT_BYTES, blockSizeBytes);
  const wanted = Math.min(
    JOURNAL_MAX_BYTES,
    Math.max(JOURNAL_MIN_BYTES, Math.floor(totalBytes * JOURNAL_FRACTION)),
  );
  const journalBytes = alignUp(wanted, blockSizeBytes);
  const dataOffset = alignUp(journalOffset + journalBytes, blockSizeBytes);
  const dataBlocks = Math.floor((totalBytes - dataOffset) / blockSizeBytes);
  if (dataBlocks < 16) {
    throw new RangeError(
      `raw disk of ${totalBytes} bytes leaves only ${Math.max(0, dataBlocks)} data blocks of ${blockSizeBytes} bytes after its superblocks and journal`,
    );
  }
  return { blockSizeBytes, totalBytes, journalOffset, journalBytes, dataOffset, dataBlocks };
}

export interface Superblock extends Geometry {
  version: number;
  /** Increases with every superblock write; picks the newer slot. */
  seq: number;
  /** Journal records of this epoch apply on top of the checkpoint. */
  epoch: number;
  checkpoint: { extents: Extent[]; bytes: number; crc: number } | null;
}

export function encodeSuperblock(sb: Superblock): Buffer {
  const payload = pack(sb);
  if (payload.length + 12 > SUPERBLOCK_SLOT_BYTES)
    throw new RangeError(`superblock of ${payload.length} bytes does not fit its slot`);
  const out = Buffer.alloc(SUPERBLOCK_SLOT_BYTES);
  out.writeUInt32BE(SUPERBLOCK_MAGIC, 0);
  out.writeUInt32BE(payload.length, 4);
  out.writeUInt32BE(crcOf(payload), 8);
  payload.copy(out, 12);
  return out;
}

export function decodeSuperblock(buf: Buffer): Superblock | undefined {
  if (buf.length < 12 || buf.readUInt32BE(0) !== SUPERBLOCK_MAGIC) return undefined;
  const len = buf.readUInt32BE(4);
  if (len + 12 > buf.length) return undefined;
  const payload = buf.subarray(12, 12 + len);
  if (crcOf(payload) !== buf.readUInt32BE(8)) return undefined;
  try {
    const sb = unpack(payload) as Superblock;
    return sb.version === LAYOUT_VERSION ? sb : undefined;
  } catch {
    return undefined;
  }
}

export function sameGeometry(a: Geometry, b: Geometry): boolean {
  return (
    a.blockSizeBytes === b.blockSizeBytes &&
    a.totalBytes === b.totalBytes &&
    a.journalOffset === b.journalOffset &&
    a.journalBytes === b.journalBytes &&
    a.dataOffset === b.dataOffset &&
    a.dataBlocks === b.dataBlocks
  );
}

/** Maximum extents an entry's blocks may be split into (keeps records and reads bounded). */
export const MAX_EXTENTS_PER_ENTRY = 64;
/** Maximum extents of a checkpoint (they are listed in the superblock slot). */
export const MAX_CHECKPOINT_EXTENTS = 32;
