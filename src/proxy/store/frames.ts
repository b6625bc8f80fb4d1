/**
 * Bodies on disk are checked in frames: a CRC-32 per FRAME_BYTES of body, kept beside the entry's
 * metadata. A ranged read verifies only the frames it touches, so a hit on byte 900 MiB of a
 * 1 GiB object does not read the rest, and a damaged frame is caught before its bytes are sent.
 */
import { crc32 } from 'node:zlib';

/** Frame length: small enough that a ranged read wastes little, large enough that the table stays small. */
export const FRAME_BYTES = 64 * 1024;

/** Accumulates one CRC per frame over a stream of chunks of any size. */
export class FrameHasher {
  readonly #crcs: number[] = [];
  #current = 0;
  #inFrame = 0;

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(FRAME_BYTES - this.#inFrame, chunk.length - off);
      this.#current = crc32(chunk.subarray(off, off + take), this.#current);
      this.#inFrame += take;
      off += take;
      if (this.#inFrame === FRAME_BYTES) {
        this.#crcs.push(this.#current >>> 0);
        this.#current = 0;
        this.#inFrame = 0;
      }
    }
  }

  /** The table: one big-endian u32 per frame (the last one may be short). */
  finish(): Buffer {
    const n = this.#crcs.length + (this.#inFrame > 0 ? 1 : 0);
    const out = Buffer.alloc(n * 4);
    this.#crcs.forEach((c, i) => out.writeUInt32BE(c, i * 4));
    if (this.#inFrame > 0) out.writeUInt32BE(this.#current >>> 0, this.#crcs.length * 4);
    return out;
  }
}

export function frameCount(bodyBytes: number): number {
  return Math.ceil(bodyBytes / FRAME_BYTES);
}

export function frameCrc(table: Buffer, index: number): number {
  return table.readUInt32BE(index * 4);
}

export function crcOf(buf: Buffer): number {
  return crc32(buf) >>> 0;
}

/**
 * Frames already checked, so a hot entry is not checksummed on every hit (CRC-32 runs at about
 * 1.5 GB/s, slower than serving from the page cache). A record is keyed by the body's identity
 * (a file's inode, size and ctime; a raw-disk entry's location) and expires after
 * VERIFIED_TTL_MS, so data that rots on disk is caught again within that time.
 */
export const VERIFIED_TTL_MS = 10 * 60_000;
/** Bound of the verified-frames table (least recently added dropped first). */
export const VERIFIED_MAX_ENTRIES = 100_000;

export class VerifiedFrames {
  readonly #table = new Map<string, { frames: Uint8Array; atMs: number }>();

  /** The frame bitmap for a body identity (created on first use; reset when expired). */
  for(identity: string, frameCount: number): Uint8Array {
    const now = Date.now();
    const rec = this.#table.get(identity);
    if (rec !== undefined && now - rec.atMs < VERIFIED_TTL_MS && rec.frames.length === frameCount)
      return rec.frames;
    if (rec !== undefined) this.#table.delete(identity);
    const frames = new Uint8Array(frameCount);
    this.#table.set(identity, { frames, atMs: now });
    while (this.#table.size > VERIFIED_MAX_ENTRIES) {
      const oldest = this.#table.keys().next();
      if (oldest.done === true) break;
      this.#table.delete(oldest.value);
    }
    return frames;
  }

  forget(identity: string): void {
    this.#table.delete(identity);
  }
}
