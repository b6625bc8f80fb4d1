/**
 * Per-chunk CRC32s (zlib's function, computed by the fastest routine available: crc32.ts; one
 * little-endian u32 per 64 KiB chunk) over bytes arriving in pieces of any size: the table a worker's block file carries, and the one a short-circuit
 * writer hands to the worker at commit (CommitLocalWrite with `checksummed`) so the worker need
 * not read the block back. One implementation for both sides, here where the chunk size is
 * defined.
 */
import { crc32 } from './crc32.js';
import { LOCAL_WRITE_CHECKSUM_CHUNK_BYTES } from './worker-calls.js';

const CRC_BYTES = 4;

/**
 * Computes per-chunk CRC32s over bytes arriving in pieces of any size. The table grows in
 * place (doubling) so a long stream does not allocate per chunk.
 */
export class ChunkChecksummer {
  #table: Buffer;
  #chunks = 0;
  #partialCrc = 0;
  #partialBytes = 0;
  #totalBytes = 0;

  constructor(expectedBytes = 0) {
    this.#table = Buffer.allocUnsafe(
      Math.max(64, CRC_BYTES * (Math.ceil(expectedBytes / LOCAL_WRITE_CHECKSUM_CHUNK_BYTES) + 1)),
    );
  }

  get totalBytes(): number {
    return this.#totalBytes;
  }

  update(data: Uint8Array): void {
    let pos = 0;
    while (pos < data.length) {
      const take = Math.min(LOCAL_WRITE_CHECKSUM_CHUNK_BYTES - this.#partialBytes, data.length - pos);
      this.#partialCrc = crc32(data.subarray(pos, pos + take), this.#partialCrc);
      this.#partialBytes += take;
      pos += take;
      if (this.#partialBytes === LOCAL_WRITE_CHECKSUM_CHUNK_BYTES) this.#closeChunk();
    }
    this.#totalBytes += data.length;
  }

  /** The table of the bytes seen so far (the last chunk may be short). Call once, at the end. */
  finish(): Buffer {
    if (this.#partialBytes > 0) this.#closeChunk();
    return this.#table.subarray(0, this.#chunks * CRC_BYTES);
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
