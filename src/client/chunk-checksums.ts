/**
 * The checksum table a short-circuit writer hands to the worker at commit (CommitLocalWrite with
 * `checksummed`): zlib's CRC32 of every 64 KiB chunk, little-endian u32 each. Computing it while
 * the bytes go to the file spares the worker reading the whole block back to checksum it.
 */
import { crc32 } from 'node:zlib';
import { LOCAL_WRITE_CHECKSUM_CHUNK_BYTES } from '../protocol/worker-calls.js';

const CRC_BYTES = 4;

export class ChunkChecksums {
  #table: Buffer;
  #chunks = 0;
  #partialCrc = 0;
  #partialBytes = 0;

  constructor(expectedBytes = 0) {
    const chunks = Math.ceil(expectedBytes / LOCAL_WRITE_CHECKSUM_CHUNK_BYTES) + 1;
    this.#table = Buffer.allocUnsafe(Math.max(64, CRC_BYTES * chunks));
  }

  /** Adds the next bytes of the block (pieces of any size, in order). */
  update(data: Uint8Array): void {
    let pos = 0;
    while (pos < data.length) {
      const take = Math.min(LOCAL_WRITE_CHECKSUM_CHUNK_BYTES - this.#partialBytes, data.length - pos);
      this.#partialCrc = crc32(data.subarray(pos, pos + take), this.#partialCrc);
      this.#partialBytes += take;
      pos += take;
      if (this.#partialBytes === LOCAL_WRITE_CHECKSUM_CHUNK_BYTES) this.#closeChunk();
    }
  }

  /** The table of every byte added (the last chunk may be short). */
  table(): Buffer {
    const chunks = this.#chunks + (this.#partialBytes > 0 ? 1 : 0);
    const out = Buffer.allocUnsafe(chunks * CRC_BYTES);
    this.#table.copy(out, 0, 0, this.#chunks * CRC_BYTES);
    if (this.#partialBytes > 0) out.writeUInt32LE(this.#partialCrc >>> 0, this.#chunks * CRC_BYTES);
    return out;
  }

  #closeChunk(): void {
    if ((this.#chunks + 1) * CRC_BYTES > this.#table.length) {
      const bigger = Buffer.allocUnsafe(this.#table.length * 2);
      this.#table.copy(bigger, 0, 0, this.#chunks * CRC_BYTES);
      this.#table = bigger;
    }
    this.#table.writeUInt32LE(this.#partialCrc >>> 0, this.#chunks * CRC_BYTES);
    this.#chunks++;
    this.#partialCrc = 0;
    this.#partialBytes = 0;
  }
}
