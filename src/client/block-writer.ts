/**
 * Writing one block to its replicas in parallel. Each replica is a target: a short-circuit file
 * (the worker hands out a staging path, we fill it and ask the worker to commit it) when the
 * worker is on this machine and its files can be opened here, else a WriteBlock stream.
 *
 * A session fails as a whole when any replica fails (`BlockWriteError` names the workers): the
 * caller abandons the block and places it again elsewhere, replaying the bytes (see file-writer.ts
 * and placement.ts). A short-circuit target keeps its file open until the session is closed, so
 * the bytes already written can be read back from it for that replay, even if the worker died and
 * removed the file.
 */
import type { FileHandle } from 'node:fs/promises';
import type { StorageType } from '../common/config/index.js';
import { StrataError, toStrataError } from '../common/errors.js';
import type { WriteCall } from '../rpc/api.js';
import type { WorkerAddress } from '../protocol/types.js';
import { AbortLocalWrite, CommitLocalWrite, OpenLocalWrite, WriteBlock } from '../protocol/worker-calls.js';
import { ChunkChecksummer } from '../protocol/chunk-checksums.js';
import { AlignedSlotPool, DIRECT_SLOT_BYTES, DirectAppender } from '../protocol/direct-io.js';
import type { IoContext } from './io-context.js';
import { LOCAL_WRITE_CHUNK_BYTES } from './settings.js';
import { workerKey } from './worker-pool.js';

/** One or more replicas failed; the block must be placed again without them. */
export class BlockWriteError extends StrataError {
  readonly failedWorkers: readonly WorkerAddress[];
  constructor(blockId: number, failed: readonly { worker: WorkerAddress; err: StrataError }[]) {
    const what = failed.map((f) => `${workerKey(f.worker)}: ${f.err.message}`).join('; ');
    super('STRATA_BLOCK_WRITE_FAILED', `writing block ${blockId} failed on ${what}`, {
      cause: failed[0]?.err,
      details: { blockId, workers: failed.map((f) => f.worker.workerId) },
    });
    this.name = 'BlockWriteError';
    this.failedWorkers = failed.map((f) => f.worker);
  }

  /** The most telling error: ENOSPC from a worker says more than "write failed". */
  get firstCause(): StrataError {
    return this.cause instanceof StrataError ? this.cause : this;
  }
}

interface ReplicaTarget {
  readonly worker: WorkerAddress;
  readonly local: boolean;
  write(chunk: Buffer): Promise<void>;
  finish(length: number): Promise<void>;
  /** Best effort; never throws. */
  abort(): Promise<void>;
  /** Releases local resources after finish or abort. */
  close(): Promise<void>;
  /** Short-circuit targets: bytes already written, for replaying the block elsewhere. */
  readBack?(offset: number, length: number): Promise<Buffer>;
}

class RemoteTarget implements ReplicaTarget {
  readonly worker: WorkerAddress;
  readonly local = false;
  readonly #ctx: IoContext;
  readonly #call: WriteCall<{ length: number; storageType: StorageType }>;
  readonly #chunkBytes: number;

  constructor(
    ctx: IoContext,
    worker: WorkerAddress,
    blockId: number,
    storageType: StorageType,
    hint?: number,
  ) {
    this.#ctx = ctx;
    this.worker = worker;
    this.#chunkBytes = ctx.settings.writeChunkBytes;
    this.#call = ctx.workers
      .channel(worker)
      .write(
        WriteBlock,
        hint === undefined ? { blockId, storageType } : { blockId, storageType, lengthHint: hint },
      );
  }

  async write(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; at += this.#chunkBytes) {
      const piece = chunk.subarray(at, Math.min(chunk.length, at + this.#chunkBytes));
      await this.#call.write(piece);
    }
    this.#ctx.metrics?.write('remote', chunk.length);
  }

  async finish(length: number): Promise<void> {
    const r = await this.#call.end();
    if (r.length !== length) {
      throw new StrataError(
        'STRATA_BLOCK_LENGTH_MISMATCH',
        `worker ${workerKey(this.worker)} stored ${r.length} bytes, ${length} were sent`,
      );
    }
  }

  async abort(): Promise<void> {
    try {
      this.#call.cancel('block write abandoned');
    } catch {
      // already ended or broken
    }
  }

  async close(): Promise<void> {}
}

/**
 * Aligned buffers for short-circuit writes with O_DIRECT (protocol/direct-io.ts), one pool for the
 * process: a writer beyond its cap writes through the page cache.
 */
const localWriteSlots = new AlignedSlotPool();
/** With `directWrites` off: no slots, so every staging file is written through the page cache. */
const noDirectSlots = new AlignedSlotPool(0);

class LocalTarget implements ReplicaTarget {
  readonly worker: WorkerAddress;
  readonly local = true;
  readonly #ctx: IoContext;
  readonly #blockId: number;
  readonly #fh: FileHandle;
  /** Set when the file is written with O_DIRECT (`#fh` is then its ordinary descriptor). */
  readonly #direct: DirectAppender | undefined;
  /** The checksum table handed to the worker at commit, so it does not read the file back. */
  readonly #sums: ChunkChecksummer;
  #written = 0;
  #closed = false;

  private constructor(
    ctx: IoContext,
    worker: WorkerAddress,
    blockId: number,
    fh: FileHandle,
    hint: number,
    direct: DirectAppender | undefined,
  ) {
    this.#ctx = ctx;
    this.#direct = direct;
    this.worker = worker;
    this.#blockId = blockId;
    this.#fh = fh;
    this.#sums = new ChunkChecksummer(hint);
  }

  /**
   * Asks the worker for a staging file and opens it. Returns undefined when the file cannot be
   * opened here (the caller writes over RPC instead); throws when the worker itself failed.
   */
  static async open(
    ctx: IoContext,
    worker: WorkerAddress,
    blockId: number,
    storageType: StorageType,
    hint?: number,
  ): Promise<LocalTarget | undefined> {
    const ch = ctx.workers.channel(worker);
    const body = await ch.call(
      OpenLocalWrite,
      hint === undefined ? { blockId, storageType } : { blockId, storageType, lengthHint: hint },
    );
    let fh: FileHandle;
    let direct: DirectAppender | undefined;
    try {
      const opened = await DirectAppender.open(
        body.path,
        'r+',
        ctx.settings.directWrites ? localWriteSlots : noDirectSlots,
      );
      if ('appender' in opened) {
        direct = opened.appender;
        fh = direct.plain;
      } else fh = opened.plain;
    } catch (err) {
      ctx.log.warn(
        { err, worker: workerKey(worker), path: body.path },
        'short-circuit write: cannot open the staging file; writing over RPC',
      );
      ctx.workers.markNotLocal(worker);
      await ch.call(AbortLocalWrite, { blockId }).catch(() => undefined);
      return undefined;
    }
    return new LocalTarget(ctx, worker, blockId, fh, hint ?? 0, direct);
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#direct !== undefined) {
      // Slot by slot: the piece is copied into a slot (a full one starts its write), then
      // checksummed while that write runs on libuv's pool.
      for (let done = 0; done < chunk.length; done += DIRECT_SLOT_BYTES) {
        const piece = chunk.subarray(done, Math.min(chunk.length, done + DIRECT_SLOT_BYTES));
        await this.#direct.append(piece);
        this.#sums.update(piece);
      }
      this.#written += chunk.length;
      this.#ctx.metrics?.write('local', chunk.length);
      return;
    }
    for (let done = 0; done < chunk.length;) {
      const piece = chunk.subarray(done, Math.min(chunk.length, done + LOCAL_WRITE_CHUNK_BYTES));
      // The file write runs on libuv's thread pool while this thread checksums the same bytes.
      const written = writeFully(this.#fh, piece, this.#written);
      this.#sums.update(piece);
      await written;
      done += piece.length;
      this.#written += piece.length;
    }
    this.#ctx.metrics?.write('local', chunk.length);
  }

  async finish(length: number): Promise<void> {
    if (this.#written !== length) {
      throw new StrataError(
        'STRATA_INTERNAL',
        `local block ${this.#blockId}: wrote ${this.#written}, expected ${length}`,
      );
    }
    await this.#direct?.flush();
    const body = await this.#ctx.workers
      .channel(this.worker)
      .call(
        CommitLocalWrite,
        { blockId: this.#blockId, length, checksummed: true },
        { payload: this.#sums.finish() },
      );
    if (body.length !== length) {
      throw new StrataError(
        'STRATA_BLOCK_LENGTH_MISMATCH',
        `worker ${workerKey(this.worker)} committed ${body.length} bytes, ${length} were written`,
      );
    }
  }

  async readBack(offset: number, length: number): Promise<Buffer> {
    await this.#direct?.flush();
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.#fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new StrataError(
          'STRATA_INTERNAL',
          `staging file of block ${this.#blockId} is shorter than written`,
        );
      }
      done += bytesRead;
    }
    return buf;
  }

  async abort(): Promise<void> {
    await this.#ctx.workers
      .channel(this.worker)
      .call(AbortLocalWrite, { blockId: this.#blockId })
      .catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#direct !== undefined) await this.#direct.close();
    else await this.#fh.close().catch(() => undefined);
  }
}

/** Writes all of `data` at `position` (a short write resumes where it stopped). */
async function writeFully(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0)
      throw new StrataError('STRATA_INTERNAL', `write at ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}

/** Writes one block to every placed worker at once. */
export class BlockWriteSession {
  readonly blockId: number;
  readonly #targets: ReplicaTarget[];
  #length = 0;
  #failed = false;

  private constructor(blockId: number, targets: ReplicaTarget[]) {
    this.blockId = blockId;
    this.#targets = targets;
  }

  /** Opens a target on each worker; a worker that fails to open fails the session. */
  static async open(
    ctx: IoContext,
    blockId: number,
    workers: readonly WorkerAddress[],
    storageType: StorageType,
    lengthHint?: number,
  ): Promise<BlockWriteSession> {
    if (workers.length === 0) {
      throw new StrataError('STRATA_NO_WORKERS', `the master placed block ${blockId} on no worker`);
    }
    const opened = await Promise.allSettled(
      workers.map(async (w): Promise<ReplicaTarget> => {
        if (ctx.workers.isLocal(w)) {
          const t = await LocalTarget.open(ctx, w, blockId, storageType, lengthHint);
          if (t !== undefined) return t;
        }
        return new RemoteTarget(ctx, w, blockId, storageType, lengthHint);
      }),
    );
    const targets: ReplicaTarget[] = [];
    const failed: { worker: WorkerAddress; err: StrataError }[] = [];
    opened.forEach((r, i) => {
      if (r.status === 'fulfilled') targets.push(r.value);
      else failed.push({ worker: workers[i] as WorkerAddress, err: toStrataError(r.reason) });
    });
    if (failed.length > 0) {
      await Promise.all(targets.map(async (t) => (await t.abort(), await t.close())));
      throw new BlockWriteError(blockId, failed);
    }
    return new BlockWriteSession(blockId, targets);
  }

  get length(): number {
    return this.#length;
  }

  /** The workers this block is being written to. */
  get workers(): readonly WorkerAddress[] {
    return this.#targets.map((t) => t.worker);
  }

  /** Whether some replica goes over RPC (which keeps a reference to each chunk until it is sent). */
  get hasRemoteTarget(): boolean {
    return this.#targets.some((t) => !t.local);
  }

  get hasLocalTarget(): boolean {
    return this.#targets.some((t) => t.local);
  }

  /** Bytes written so far, read back from a short-circuit replica (for replay elsewhere). */
  async readBack(offset: number, length: number): Promise<Buffer> {
    const t = this.#targets.find((x) => x.readBack !== undefined);
    if (t?.readBack === undefined)
      throw new StrataError('STRATA_INTERNAL', 'no local replica to read back from');
    return t.readBack(offset, length);
  }

  /**
   * Sends `chunk` to every replica; throws BlockWriteError naming the ones that failed. With a
   * remote replica the chunk must not change afterwards (the RPC sends it without copying).
   */
  async write(chunk: Buffer): Promise<void> {
    if (this.#failed)
      throw new StrataError('STRATA_INTERNAL', `block ${this.blockId} session already failed`);
    await this.#all((t) => t.write(chunk));
    this.#length += chunk.length;
  }

  /**
   * Sends `pieces` in order as one write: the session's length moves only when every piece went
   * to every replica (a failure leaves it where it was, as for a failed `write`).
   */
  async writeAll(pieces: readonly Buffer[]): Promise<void> {
    if (this.#failed)
      throw new StrataError('STRATA_INTERNAL', `block ${this.blockId} session already failed`);
    let bytes = 0;
    await this.#all(async (t) => {
      for (const p of pieces) await t.write(p);
    });
    for (const p of pieces) bytes += p.length;
    this.#length += bytes;
  }

  /** Ends every replica; the block is stored on all of them when this resolves. */
  async finish(): Promise<string[]> {
    await this.#all((t) => t.finish(this.#length));
    return this.#targets.map((t) => t.worker.workerId);
  }

  /** Cancels every replica (best effort) and releases files. */
  async abort(): Promise<void> {
    this.#failed = true;
    await Promise.all(this.#targets.map((t) => t.abort()));
    await this.close();
  }

  async close(): Promise<void> {
    await Promise.all(this.#targets.map((t) => t.close()));
  }

  async #all(op: (t: ReplicaTarget) => Promise<void>): Promise<void> {
    const results = await Promise.allSettled(this.#targets.map(op));
    const failed: { worker: WorkerAddress; err: StrataError }[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        failed.push({ worker: (this.#targets[i] as ReplicaTarget).worker, err: toStrataError(r.reason) });
      }
    });
    if (failed.length > 0) {
      this.#failed = true;
      throw new BlockWriteError(this.blockId, failed);
    }
  }
}
