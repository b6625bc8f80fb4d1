/**
 * Verified reads of one block file. Opening checks the trailer (footer and checksum table); each
 * read touches whole 64 KiB chunks, verifies their CRC32s, and hands out only verified bytes, so a
 * flipped bit aborts the read instead of reaching a client. Reads go through large pooled windows
 * (1 MiB) with one window read ahead while the previous one is being consumed.
 *
 * The handle keeps its file descriptor: a block moved to another tier or deleted while a reader
 * holds it stays readable to that reader (the old inode lives until closed).
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { StorageType } from '../common/config/index.js';
import {
  CHUNK_SIZE_BYTES,
  checkTrailer,
  chunkMatches,
  fileSizeFor,
  trailerSizeFor,
} from '../protocol/block-format.js';
import type { BufferSource } from './buffer-pool.js';
import { BlockCorruptError, badRequest } from './errors.js';

/** Receives verified bytes; the slice is only valid until the returned promise resolves. */
export type VerifiedSink = (slice: Buffer) => Promise<void> | void;

/** Told when a read finds the file damaged (the store drops the block and reports it). */
export type CorruptionHandler = (reader: BlockReader, err: BlockCorruptError) => Promise<void>;

export class BlockReader {
  readonly blockId: number;
  readonly lengthBytes: number;
  readonly path: string;
  readonly storageType: StorageType;
  readonly #fh: FileHandle;
  readonly #table: Buffer;
  readonly #pool: BufferSource;
  readonly #onCorrupt: CorruptionHandler | undefined;
  #closed = false;

  private constructor(
    blockId: number,
    lengthBytes: number,
    path: string,
    storageType: StorageType,
    fh: FileHandle,
    table: Buffer,
    pool: BufferSource,
    onCorrupt: CorruptionHandler | undefined,
  ) {
    this.#onCorrupt = onCorrupt;
    this.blockId = blockId;
    this.lengthBytes = lengthBytes;
    this.path = path;
    this.storageType = storageType;
    this.#fh = fh;
    this.#table = table;
    this.#pool = pool;
  }

  /**
   * Opens the block file and checks its trailer against the length the store expects.
   * Throws BlockCorruptError when the trailer is damaged; ENOENT passes through (moved or gone).
   */
  static async open(
    blockId: number,
    path: string,
    expectedLengthBytes: number,
    storageType: StorageType,
    pool: BufferSource,
    onCorrupt?: CorruptionHandler,
  ): Promise<BlockReader> {
    const fh = await open(path, 'r');
    try {
      const table = await readTrailer(fh, blockId, expectedLengthBytes);
      return new BlockReader(blockId, expectedLengthBytes, path, storageType, fh, table, pool, onCorrupt);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }

  /**
   * Streams [offset, offset + length) to `sink`, verified. A checksum mismatch throws
   * BlockCorruptError before any byte of the bad chunk is handed out.
   */
  async read(
    offset: number,
    length: number,
    sink: VerifiedSink,
    signal?: AbortSignal,
    buffers: BufferSource = this.#pool,
  ): Promise<number> {
    try {
      return await this.#read(offset, length, sink, signal, buffers);
    } catch (err) {
      if (err instanceof BlockCorruptError && this.#onCorrupt !== undefined) await this.#onCorrupt(this, err);
      throw err;
    }
  }

  async #read(
    offset: number,
    length: number,
    sink: VerifiedSink,
    signal: AbortSignal | undefined,
    pool: BufferSource,
  ): Promise<number> {
    const end = offset + length;
    if (offset < 0 || length < 0 || end > this.lengthBytes) {
      throw badRequest(
        `read of block ${this.blockId} at ${offset}+${length} is outside its ${this.lengthBytes} bytes`,
        { blockId: this.blockId },
      );
    }
    if (length === 0) return 0;
    const window = pool.bufferSizeBytes;
    const alignedEnd = Math.min(Math.ceil(end / CHUNK_SIZE_BYTES) * CHUNK_SIZE_BYTES, this.lengthBytes);
    const pos = Math.floor(offset / CHUNK_SIZE_BYTES) * CHUNK_SIZE_BYTES;
    let next: Promise<Window> | undefined = this.#readWindow(pool, pos, Math.min(window, alignedEnd - pos));
    let sent = 0;
    try {
      while (next !== undefined) {
        const cur: Window = await next;
        next = undefined;
        try {
          if (cur.bytes < cur.wanted) {
            throw new BlockCorruptError(
              this.blockId,
              `file ends at ${cur.position + cur.bytes}, expected ${this.lengthBytes} data bytes`,
            );
          }
          const after = cur.position + cur.bytes;
          // Read ahead while this window is verified and consumed.
          if (after < alignedEnd) next = this.#readWindow(pool, after, Math.min(window, alignedEnd - after));
          this.#verify(cur);
          signal?.throwIfAborted();
          const from = Math.max(offset - cur.position, 0);
          const to = Math.min(end - cur.position, cur.bytes);
          await sink(cur.buf.subarray(from, to));
          sent += to - from;
        } finally {
          pool.release(cur.buf);
        }
      }
    } finally {
      // A failure with a window in flight: wait for it so its buffer returns to the pool.
      if (next !== undefined) {
        await next.then(
          (w) => pool.release(w.buf),
          () => undefined,
        );
      }
    }
    return sent;
  }

  /** Reads the whole trailer-less data range into `sink` verified (used to copy between tiers). */
  async readAll(sink: VerifiedSink, signal?: AbortSignal): Promise<number> {
    return this.read(0, this.lengthBytes, sink, signal);
  }

  /** The raw trailer (checksum table + footer) to copy beside the data. */
  async trailer(): Promise<Buffer> {
    const size = fileSizeFor(this.lengthBytes) - this.lengthBytes;
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await this.#fh.read(buf, 0, size, this.lengthBytes);
    if (bytesRead !== size) throw new BlockCorruptError(this.blockId, 'trailer is short');
    return buf;
  }

  async #readWindow(pool: BufferSource, position: number, wanted: number): Promise<Window> {
    const buf = pool.acquire();
    try {
      const { bytesRead } = await this.#fh.read(buf, 0, wanted, position);
      return { buf, position, wanted, bytes: bytesRead };
    } catch (err) {
      pool.release(buf);
      throw err;
    }
  }

  #verify(w: Window): void {
    for (let off = 0; off < w.bytes; off += CHUNK_SIZE_BYTES) {
      const index = (w.position + off) / CHUNK_SIZE_BYTES;
      const chunk = w.buf.subarray(off, Math.min(off + CHUNK_SIZE_BYTES, w.bytes));
      if (!chunkMatches(this.#table, index, chunk)) {
        throw new BlockCorruptError(
          this.blockId,
          `checksum mismatch in chunk ${index} (bytes ${w.position + off}..${w.position + off + chunk.length})`,
        );
      }
    }
  }
}

interface Window {
  buf: Buffer;
  position: number;
  wanted: number;
  bytes: number;
}

/** Reads and checks the trailer; returns the checksum table. */
async function readTrailer(fh: FileHandle, blockId: number, lengthBytes: number): Promise<Buffer> {
  const st = await fh.stat();
  const expectedSize = fileSizeFor(lengthBytes);
  if (st.size !== expectedSize) {
    throw new BlockCorruptError(blockId, `file is ${st.size} bytes, expected ${expectedSize}`);
  }
  const buf = Buffer.allocUnsafe(trailerSizeFor(lengthBytes));
  const { bytesRead } = await fh.read(buf, 0, buf.length, lengthBytes);
  const table = checkTrailer(buf.subarray(0, bytesRead), lengthBytes);
  if (typeof table === 'string') throw new BlockCorruptError(blockId, table);
  return table;
}
