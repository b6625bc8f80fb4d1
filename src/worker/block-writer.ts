/**
 * Writes one block into a staging file: bytes are appended and checksummed as they arrive, the
 * reservation grows ahead of them, and `commit` appends the trailer, syncs and hands the file to
 * the store to publish (an atomic rename into `active/`). Until then nothing is visible: an
 * aborted, broken or crashed write leaves only a staging file, removed on abort or at restart.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { ChunkChecksummer, MAX_BLOCK_LENGTH_BYTES, encodeTrailer, fileSizeFor } from './block-format.js';
import type { BufferSource } from './buffer-pool.js';
import { WriteCancelledError, badRequest } from './errors.js';
import { unlinkIfExists } from './fs-util.js';
import type { Tier } from './tiers.js';
import type { TierDir } from './tier-dir.js';

/** How much the reservation grows at a time when the writer outruns it. */
export const RESERVE_STEP_BYTES = 4 * 1024 * 1024;

/**
 * While a block is being written, its data is synced in the background every this many bytes, so
 * the disk writes as the data arrives and the sync at commit has little left to do.
 */
export const EARLY_SYNC_BYTES = 16 * 1024 * 1024;

/** Chunks at least this large are written as they are; smaller ones are gathered into a buffer. */
export const COALESCE_BELOW_BYTES = 256 * 1024;

/** What the writer needs from the store: growing its reservation (may wait for eviction), buffers. */
export interface WriterHost {
  grow(dir: TierDir, bytes: number, signal?: AbortSignal): Promise<void>;
  readonly pool: BufferSource;
}

export interface StagedBlock {
  blockId: number;
  lengthBytes: number;
  fileBytes: number;
  stagingPath: string;
  dir: TierDir;
  tier: Tier;
  reservedBytes: number;
}

export class BlockWriter {
  readonly blockId: number;
  readonly dir: TierDir;
  readonly tier: Tier;
  readonly stagingPath: string;
  readonly #host: WriterHost;
  readonly #fh: FileHandle;
  readonly #sum: ChunkChecksummer;
  #reservedBytes: number;
  #written = 0;
  /** Bytes handed to the file so far (written or in flight). */
  #filePos = 0;
  /** Small chunks gathered before one large write. */
  #gather: Buffer | undefined;
  #gathered = 0;
  /** The one file write in flight: the next chunk is accepted while it runs. */
  #inflight: Promise<void> = Promise.resolve();
  /** A background sync started at `#syncedUpTo` bytes (see EARLY_SYNC_BYTES). */
  #earlySync: Promise<void> | undefined;
  #syncedUpTo = 0;
  #state: 'open' | 'staged' | 'closed' = 'open';
  #cancelReason: string | undefined;

  private constructor(
    blockId: number,
    tier: Tier,
    dir: TierDir,
    stagingPath: string,
    reservedBytes: number,
    fh: FileHandle,
    host: WriterHost,
    lengthHint: number,
  ) {
    this.blockId = blockId;
    this.tier = tier;
    this.dir = dir;
    this.stagingPath = stagingPath;
    this.#reservedBytes = reservedBytes;
    this.#fh = fh;
    this.#host = host;
    this.#sum = new ChunkChecksummer(lengthHint);
  }

  static async create(
    blockId: number,
    tier: Tier,
    dir: TierDir,
    stagingPath: string,
    reservedBytes: number,
    host: WriterHost,
    lengthHint: number,
  ): Promise<BlockWriter> {
    const fh = await open(stagingPath, 'wx', 0o644);
    return new BlockWriter(blockId, tier, dir, stagingPath, reservedBytes, fh, host, lengthHint);
  }

  get writtenBytes(): number {
    return this.#written;
  }

  get reservedBytes(): number {
    return this.#reservedBytes;
  }

  /** Makes the next write or commit fail (the block was deleted, or the worker is stopping). */
  cancel(reason: string): void {
    this.#cancelReason ??= reason;
  }

  /**
   * Appends a chunk. Large chunks go to the file as they are (the caller must not modify them
   * afterwards); small ones are gathered into 1 MiB writes. One write runs while the next chunk
   * is accepted; its failure surfaces on a later call.
   */
  async write(chunk: Buffer, signal?: AbortSignal): Promise<void> {
    this.#checkOpen();
    const after = this.#written + chunk.length;
    if (after > MAX_BLOCK_LENGTH_BYTES) throw badRequest(`block ${this.blockId} is too large`);
    const need = fileSizeFor(after);
    if (need > this.#reservedBytes) {
      const more = Math.max(need - this.#reservedBytes, RESERVE_STEP_BYTES);
      await this.#host.grow(this.dir, more, signal);
      this.#reservedBytes += more;
      this.#checkOpen();
    }
    this.#sum.update(chunk);
    this.#written = after;
    if (this.#gathered === 0 && chunk.length >= COALESCE_BELOW_BYTES) {
      await this.#submit(chunk, undefined);
      return;
    }
    let off = 0;
    while (off < chunk.length) {
      this.#gather ??= this.#host.pool.acquire();
      const n = chunk.copy(this.#gather, this.#gathered, off);
      this.#gathered += n;
      off += n;
      if (this.#gathered === this.#gather.length) await this.#flushGathered();
    }
  }

  async #flushGathered(): Promise<void> {
    const buf = this.#gather;
    if (buf === undefined || this.#gathered === 0) return;
    const n = this.#gathered;
    this.#gather = undefined;
    this.#gathered = 0;
    await this.#submit(buf.subarray(0, n), buf);
  }

  /** Waits for the write in flight, then starts this one; `pooled` goes back when it is done. */
  async #submit(data: Buffer, pooled: Buffer | undefined): Promise<void> {
    try {
      await this.#inflight;
    } catch (err) {
      if (pooled !== undefined) this.#host.pool.release(pooled);
      throw err;
    }
    const position = this.#filePos;
    this.#filePos += data.length;
    const fh = this.#fh;
    const pool = this.#host.pool;
    this.#inflight = (async () => {
      try {
        let off = 0;
        while (off < data.length) {
          const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
          off += bytesWritten;
        }
      } finally {
        if (pooled !== undefined) pool.release(pooled);
      }
    })();
    // Observed on the next call; never an unhandled rejection meanwhile.
    this.#inflight.catch(() => undefined);
    if (this.#earlySync === undefined && this.#filePos - this.#syncedUpTo >= EARLY_SYNC_BYTES) {
      const upTo = this.#filePos;
      this.#earlySync = this.#inflight
        .then(() => fh.datasync())
        .then(() => {
          this.#syncedUpTo = upTo;
        })
        .finally(() => {
          this.#earlySync = undefined;
        });
      this.#earlySync.catch(() => undefined);
    }
  }

  /**
   * Appends the trailer and syncs the file; the store then publishes it. `expectedLength`
   * (when the client announced one) must match what arrived.
   */
  async stage(expectedLength?: number): Promise<StagedBlock> {
    this.#checkOpen();
    if (expectedLength !== undefined && expectedLength !== this.#written) {
      throw badRequest(
        `block ${this.blockId}: received ${this.#written} bytes but the writer declared ${expectedLength}`,
      );
    }
    await this.#flushGathered();
    await this.#inflight;
    await this.#earlySync;
    if (this.#filePos !== this.#written) throw new Error(`block ${this.blockId}: file position out of step`);
    const trailer = encodeTrailer(this.#written, this.#sum.finish());
    const fileBytes = this.#written + trailer.length;
    if (fileBytes > this.#reservedBytes) {
      throw new Error(
        `block ${this.blockId}: ${fileBytes} bytes staged beyond ${this.#reservedBytes} reserved`,
      );
    }
    await this.#fh.write(trailer, 0, trailer.length, this.#written);
    await this.#fh.datasync();
    await this.#fh.close();
    this.#state = 'staged';
    return {
      blockId: this.blockId,
      lengthBytes: this.#written,
      fileBytes,
      stagingPath: this.stagingPath,
      dir: this.dir,
      tier: this.tier,
      reservedBytes: this.#reservedBytes,
    };
  }

  /** Removes the staging file and gives back the reservation (idempotent). */
  async abort(): Promise<void> {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    await this.#inflight.catch(() => undefined);
    await this.#earlySync?.catch(() => undefined);
    if (this.#gather !== undefined) this.#host.pool.release(this.#gather);
    this.#gather = undefined;
    if (wasOpen) await this.#fh.close().catch(() => undefined);
    await unlinkIfExists(this.stagingPath).catch(() => undefined);
    this.dir.release(this.#reservedBytes);
  }

  /** After the store published the staged file: the reservation now belongs to the block. */
  markPublished(): void {
    this.#state = 'closed';
  }

  #checkOpen(): void {
    if (this.#cancelReason !== undefined) {
      throw new WriteCancelledError(this.blockId, this.#cancelReason);
    }
    if (this.#state !== 'open') throw new Error(`write of block ${this.blockId} is already finished`);
  }
}
