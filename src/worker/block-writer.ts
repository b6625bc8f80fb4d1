/**
 * Writes one block into a staging file: bytes are appended and checksummed as they arrive, the
 * reservation grows ahead of them, and `commit` appends the trailer, syncs and hands the file to
 * the store to publish (an atomic rename into `active/`). Until then nothing is visible: an
 * aborted, broken or crashed write leaves only a staging file, removed on abort or at restart.
 *
 * A writer made with `durable: false` (a read-through fill: the UFS holds the bytes) skips the
 * syncs; the store publishes its file unsynced and syncs it later (see unsynced-fills.ts).
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import {
  ChunkChecksummer,
  MAX_BLOCK_LENGTH_BYTES,
  encodeTrailer,
  fileSizeFor,
} from '../protocol/block-format.js';
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

/** Chunks are handed to the file in batches of at least this many bytes (one writev each). */
export const WRITE_BATCH_BYTES = 1024 * 1024;
/** Most chunks in one writev (IOV_MAX is 1024 on Linux). */
const MAX_BATCH_CHUNKS = 512;

/** What the writer needs from the store: growing its reservation (may wait for eviction). */
export interface WriterHost {
  grow(dir: TierDir, bytes: number, signal?: AbortSignal): Promise<void>;
}

export interface StagedBlock {
  blockId: number;
  lengthBytes: number;
  fileBytes: number;
  stagingPath: string;
  dir: TierDir;
  tier: Tier;
  reservedBytes: number;
  /** Whether the data was synced before publishing (false: a fill the UFS can give again). */
  synced: boolean;
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
  /** Chunks not yet handed to the file, written together by one writev. */
  #batch: Buffer[] = [];
  #batchBytes = 0;
  /** The one file write in flight: the next chunk is accepted while it runs. */
  #inflight: Promise<void> = Promise.resolve();
  /** Bytes whose write into the file completed. */
  #inFileBytes = 0;
  /** Woken when bytes are accepted or written (see whenWritten). */
  #progress: (() => void)[] = [];
  /** A background sync started at `#syncedUpTo` bytes (see EARLY_SYNC_BYTES). */
  #earlySync: Promise<void> | undefined;
  #syncedUpTo = 0;
  #state: 'open' | 'staged' | 'closed' = 'open';
  #cancelReason: string | undefined;
  readonly #durable: boolean;

  private constructor(
    blockId: number,
    tier: Tier,
    dir: TierDir,
    stagingPath: string,
    reservedBytes: number,
    fh: FileHandle,
    host: WriterHost,
    lengthHint: number,
    durable: boolean,
  ) {
    this.blockId = blockId;
    this.#durable = durable;
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
    durable = true,
  ): Promise<BlockWriter> {
    const fh = await open(stagingPath, 'wx', 0o644);
    return new BlockWriter(blockId, tier, dir, stagingPath, reservedBytes, fh, host, lengthHint, durable);
  }

  /** False for a writer whose block is published unsynced (a read-through fill). */
  get durable(): boolean {
    return this.#durable;
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
   * Appends a chunk (kept by reference: the caller must not modify it afterwards). Chunks are
   * handed to the file in batches of 1 MiB or more, one writev each, with no copy; one batch is
   * written while the next chunks arrive, and its failure surfaces on a later call.
   */
  async write(chunk: Buffer, signal?: AbortSignal): Promise<void> {
    await this.accept(chunk, signal);
  }

  /**
   * `write` without a promise when none is needed: returns undefined when the chunk was taken at
   * once (the common case: room is reserved and the batch is not full), else a promise to await
   * before the next chunk. A remote write drains the chunks queued on its stream this way.
   */
  accept(chunk: Buffer, signal?: AbortSignal): Promise<void> | undefined {
    this.#checkOpen();
    const after = this.#written + chunk.length;
    if (after > MAX_BLOCK_LENGTH_BYTES) throw badRequest(`block ${this.blockId} is too large`);
    const need = fileSizeFor(after);
    if (need > this.#reservedBytes) return this.#growThenAppend(chunk, need, signal);
    return this.#append(chunk);
  }

  async #growThenAppend(chunk: Buffer, need: number, signal: AbortSignal | undefined): Promise<void> {
    const more = Math.max(need - this.#reservedBytes, RESERVE_STEP_BYTES);
    await this.#host.grow(this.dir, more, signal);
    this.#reservedBytes += more;
    this.#checkOpen();
    await this.#append(chunk);
  }

  #append(chunk: Buffer): Promise<void> | undefined {
    this.#sum.update(chunk);
    this.#written += chunk.length;
    if (chunk.length === 0) return undefined;
    this.#batch.push(chunk);
    this.#batchBytes += chunk.length;
    this.#wake();
    if (this.#batchBytes >= WRITE_BATCH_BYTES || this.#batch.length >= MAX_BATCH_CHUNKS) {
      return this.#flushBatch();
    }
    return undefined;
  }

  /**
   * Queues the batch behind the write in flight and waits for that one (so at most one write
   * runs and one waits: the caller's next chunks arrive while they do).
   */
  async #flushBatch(): Promise<void> {
    if (this.#batchBytes === 0) return;
    const batch = this.#batch;
    const bytes = this.#batchBytes;
    this.#batch = [];
    this.#batchBytes = 0;
    // Positions are taken in call order, and each write starts when the previous one ended.
    const position = this.#filePos;
    this.#filePos += bytes;
    const fh = this.#fh;
    const previous = this.#inflight;
    this.#inflight = previous
      .then(() => writevFully(fh, batch, position))
      .then(() => {
        this.#inFileBytes = position + bytes;
        this.#wake();
      });
    // Observed on the next call; never an unhandled rejection meanwhile.
    this.#inflight.catch(() => undefined);
    await previous;
    if (
      this.#durable &&
      this.#earlySync === undefined &&
      this.#filePos - this.#syncedUpTo >= EARLY_SYNC_BYTES
    ) {
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

  /** Bytes in the staging file now (written by the kernel, readable from `stagingPath`). */
  get inFileBytes(): number {
    return this.#inFileBytes;
  }

  /**
   * Resolves once the first `bytes` bytes are in the staging file (readable from
   * `stagingPath`): a reader joining a fill late catches up from there. Throws when the write
   * fails or is aborted first.
   */
  async whenWritten(bytes: number): Promise<void> {
    for (;;) {
      if (this.#inFileBytes >= bytes) return;
      if (this.#state === 'closed') throw new Error(`write of block ${this.blockId} was aborted`);
      if (this.#filePos >= bytes) await this.#inflight;
      else if (this.#filePos + this.#batchBytes >= bytes) await this.#flushBatch();
      else await new Promise<void>((resolve) => this.#progress.push(resolve));
    }
  }

  #wake(): void {
    for (const w of this.#progress.splice(0)) w();
  }

  /**
   * Appends the trailer and syncs the file (unless the writer is not durable); the store then
   * publishes it. `expectedLength`
   * (when the client announced one) must match what arrived.
   */
  async stage(expectedLength?: number): Promise<StagedBlock> {
    this.#checkOpen();
    if (expectedLength !== undefined && expectedLength !== this.#written) {
      throw badRequest(
        `block ${this.blockId}: received ${this.#written} bytes but the writer declared ${expectedLength}`,
      );
    }
    await this.#flushBatch();
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
    if (this.#durable) await this.#fh.datasync();
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
      synced: this.#durable,
    };
  }

  /** Removes the staging file and gives back the reservation (idempotent). */
  async abort(): Promise<void> {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.#wake();
    await this.#inflight.catch(() => undefined);
    await this.#earlySync?.catch(() => undefined);
    this.#batch = [];
    this.#batchBytes = 0;
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

/** writev until every byte is written (a short write resumes where it stopped). */
async function writevFully(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  let pos = position;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, pos);
    if (bytesWritten === 0) throw new Error(`writev at ${pos} wrote nothing`);
    pos += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < rest.length && skip >= (rest[i] as Buffer).length) {
      skip -= (rest[i] as Buffer).length;
      i++;
    }
    rest = rest.slice(i);
    if (skip > 0 && rest.length > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
  }
}
