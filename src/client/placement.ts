/**
 * Getting a new block placed and its write session opened, for one file under a lease: AddBlock
 * (the master picks the workers, local first when it can), open a target on each; a worker that
 * fails is excluded from the next AddBlock of this writer and remembered client-wide. Also writes
 * a whole block whose bytes can be produced again (the random-write handle's dirty blocks),
 * re-placing it on failure.
 */
import type { StorageType } from '../common/config/index.js';
import { FsError, StrataError } from '../common/errors.js';
import { AbandonBlock, AddBlock } from '../protocol/master-calls.js';
import type { WorkerAddress } from '../protocol/types.js';
import { BlockWriteError, BlockWriteSession } from './block-writer.js';
import { backoffMs, sleep } from './io-context.js';
import type { IoContext } from './io-context.js';
import { MAX_BLOCK_PLACEMENTS, RETRY_BACKOFF_FIRST_MS, RETRY_BACKOFF_MAX_MS } from './settings.js';

export interface PlacedBlock {
  blockId: number;
  length: number;
  /** Worker ids that acknowledged the block. */
  workers: string[];
  /** Where they are (to read the block back before the master knows it). */
  addresses: WorkerAddress[];
}

export class BlockPlacer {
  readonly #ctx: IoContext;
  readonly #path: string;
  readonly #fileId: number;
  readonly #leaseId: string;
  readonly #storageType: StorageType;
  /** Workers that failed this writer; never asked for again by it. */
  readonly #excluded = new Set<string>();

  constructor(ctx: IoContext, path: string, fileId: number, leaseId: string, storageType: StorageType) {
    this.#ctx = ctx;
    this.#path = path;
    this.#fileId = fileId;
    this.#leaseId = leaseId;
    this.#storageType = storageType;
  }

  /** Records the workers of a failed session so later placements avoid them. */
  exclude(err: BlockWriteError): void {
    for (const w of err.failedWorkers) {
      this.#excluded.add(w.workerId);
      this.#ctx.workers.failed.add(w.workerId);
    }
  }

  /**
   * AddBlock + open a session on its workers, retrying (excluding failed workers) a bounded number
   * of times. `preplaced`: a block the master placed already (with the create), tried first.
   */
  async open(
    lengthHint?: number,
    preplaced?: { blockId: number; workers: WorkerAddress[] },
  ): Promise<BlockWriteSession> {
    let last: BlockWriteError | undefined;
    for (let attempt = 0; attempt < MAX_BLOCK_PLACEMENTS; attempt++) {
      const excluded = new Set([...this.#excluded, ...this.#ctx.workers.failed.list()]);
      const placed =
        attempt === 0 && preplaced !== undefined
          ? preplaced
          : await this.#ctx.master.call(AddBlock, {
              fileId: this.#fileId,
              leaseId: this.#leaseId,
              clientHost: this.#ctx.settings.clientHost,
              clientHostId: this.#ctx.settings.hostId,
              ...(excluded.size > 0 ? { excludeWorkers: [...excluded] } : {}),
              ...(lengthHint === undefined ? {} : { lengthHint }),
            });
      try {
        return await BlockWriteSession.open(
          this.#ctx,
          placed.blockId,
          placed.workers,
          this.#storageType,
          lengthHint,
        );
      } catch (err) {
        await this.abandon(placed.blockId);
        if (!(err instanceof BlockWriteError)) throw err;
        last = err;
        this.exclude(err);
        this.#ctx.metrics?.replacement();
        await sleep(backoffMs(attempt, RETRY_BACKOFF_FIRST_MS, RETRY_BACKOFF_MAX_MS));
      }
    }
    throw this.gaveUp(last);
  }

  /** Gives a block back to the master (best effort: a lost abandon only leaves an orphan the master reclaims). */
  async abandon(blockId: number): Promise<void> {
    await this.#ctx.master
      .call(AbandonBlock, { fileId: this.#fileId, leaseId: this.#leaseId, blockId })
      .catch((err: unknown) => this.#ctx.log.debug({ err, blockId }, 'abandonBlock failed'));
  }

  /** The error a writer reports after running out of placements. */
  gaveUp(last: BlockWriteError | undefined): StrataError {
    const cause = last?.firstCause;
    if (cause instanceof FsError && cause.code === 'ENOSPC') return cause;
    return new FsError(
      'EIO',
      `${this.#path}: input/output error (no worker could store a block after ${MAX_BLOCK_PLACEMENTS} placements${last === undefined ? '' : `: ${last.message}`})`,
      { cause: last, details: { path: this.#path } },
    );
  }

  /**
   * Writes one whole block whose content `produce` yields (and can yield again): places it, and
   * on a replica failure abandons it and places it again elsewhere.
   */
  async writeWhole(length: number, produce: () => AsyncIterable<Buffer>): Promise<PlacedBlock> {
    let last: BlockWriteError | undefined;
    for (let attempt = 0; attempt < MAX_BLOCK_PLACEMENTS; attempt++) {
      const session = await this.open(length);
      try {
        for await (const chunk of produce()) await session.write(chunk);
        if (session.length !== length) {
          throw new StrataError(
            'STRATA_INTERNAL',
            `block produced ${session.length} bytes, expected ${length}`,
          );
        }
        const workers = await session.finish();
        await session.close();
        return { blockId: session.blockId, length, workers, addresses: [...session.workers] };
      } catch (err) {
        await session.abort();
        await this.abandon(session.blockId);
        if (!(err instanceof BlockWriteError)) throw err;
        last = err;
        this.exclude(err);
        this.#ctx.metrics?.replacement();
        await sleep(backoffMs(attempt, RETRY_BACKOFF_FIRST_MS, RETRY_BACKOFF_MAX_MS));
      }
    }
    throw this.gaveUp(last);
  }
}
