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
