/**
 * The worker's block store: which blocks live in which tier directory, their recency, pins and
 * space reservations, and the only code that publishes, moves and removes block files.
 *
 * Invariants:
 * - A block is visible (in the map, on disk under `active/`) only after its file was fully
 *   written, checksummed, synced and renamed into place.
 * - Publishing, moving and removing one block are serialised by a per-block lock, so a move can
 *   never resurrect a deleted block or overwrite a newer copy.
 * - Tier usage is exact: reservations before bytes are written, `used` moves with every file.
 * - The map's insertion order is the recency order (oldest first): a touch re-inserts.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { StorageType } from '../common/config/index.js';
import type { Logger } from '../common/logging.js';
import type { StrataError } from '../common/errors.js';
import { fileSizeFor } from '../protocol/block-format.js';
import { BlockReader } from './block-reader.js';
import { BlockWriter } from './block-writer.js';
import type { StagedBlock } from './block-writer.js';
import { BufferPool, POOLED_READ_BUFFERS, READ_WINDOW_BYTES } from './buffer-pool.js';
import {
  BlockBusyError,
  BlockCorruptError,
  BlockNotFoundError,
  NoSpaceError,
  StoppingError,
} from './errors.js';
import { DirSyncer, fsyncDir, unlinkIfExists, writeFileAtomic } from './fs-util.js';
import { blockFileName, recoverDirs } from './recovery.js';
import type { FoundBlock, RecoveryReport } from './recovery.js';
import { FLAG_MTIME_SLACK_MS, UnsyncedFills } from './unsynced-fills.js';
import type { Tier, TierSet } from './tiers.js';
import type { TierDir } from './tier-dir.js';

/** How often a write waiting for space re-checks (space-freed events also wake it). */
const SPACE_POLL_MS = 50;
/** Attempts to open a block whose file is being moved between tiers at that instant. */
const OPEN_RETRIES = 3;
/** Blocks dropped as corrupt that a read still names are answered as corrupt, not missing. */
const REMEMBERED_CORRUPT_BLOCKS = 1024;
const PINS_FILE = 'pinned-blocks.json';

interface BlockMeta {
  readonly blockId: number;
  readonly lengthBytes: number;
  readonly fileBytes: number;
  dir: TierDir;
  tier: Tier;
  path: string;
  lastAccessMs: number;
  /** Reads since the block last changed tier (drives promotion). */
  readsInTier: number;
  totalReads: number;
  moving: boolean;
  removed: boolean;
}

/** A write in progress on a block: deleting the block or stopping the worker cancels it. */
export interface WriteClaim {
  cancel(reason: string): void;
}

/** Holds a block id while a writer waits for space; remembers a cancel that came meanwhile. */
class PendingClaim implements WriteClaim {
  reason: string | undefined;
  cancel(reason: string): void {
    this.reason ??= reason;
  }
}

/** A read-only view of a stored block. */
export interface BlockInfo {
  blockId: number;
  lengthBytes: number;
  fileBytes: number;
  storageType: StorageType;
  tierLevel: number;
  path: string;
  reads: number;
  readsInTier: number;
  lastAccessMs: number;
  pinned: boolean;
}

export type RemoveReason = 'deleted' | 'evicted' | 'replaced';

export type BlockEvent =
  | { kind: 'added'; blockId: number; lengthBytes: number; storageType: StorageType }
  | { kind: 'removed'; blockId: number; reason: RemoveReason; fileBytes: number; storageType: StorageType }
  | { kind: 'corrupt'; blockId: number; reason: string }
  | { kind: 'moved'; blockId: number; from: StorageType; to: StorageType; promotion: boolean; bytes: number };

export interface BlockStoreOptions {
  tiers: TierSet;
  log: Logger;
  /** How long a write waits for eviction to make room before failing with ENOSPC. */
  spaceWaitMs: number;
  /** Called when a write is waiting for `bytes` on `tier` (or slower): eviction should run now. */
  onSpaceNeeded?: (tier: Tier, bytes: number) => void;
}

export class BlockStore {
  readonly tiers: TierSet;
  readonly pool: BufferPool;
  readonly recovery: RecoveryReport;
  readonly #log: Logger;
  readonly #opts: BlockStoreOptions;
  readonly #blocks = new Map<number, BlockMeta>();
  /**
   * Blocks this worker dropped as corrupt (oldest first) and why: until the master's locations
   * catch up, a reader asking for one learns that it was damaged instead of "not stored here".
   */
  readonly #droppedCorrupt = new Map<number, string>();
  /** Writes in progress (stream writers and short-circuit sessions), one per block. */
  readonly #writers = new Map<number, WriteClaim>();
  readonly #locks = new Map<number, Promise<void>>();
  readonly #pins: Set<number>;
  readonly #listeners: ((e: BlockEvent) => void)[] = [];
  readonly #spaceWaiters = new Set<() => void>();
  /** Publishes happening together share their directory syncs. */
  readonly #dirSync = new DirSyncer();
  /** Read-through fills published without a sync (see unsynced-fills.ts). */
  readonly #unsynced: UnsyncedFills;
  /** Non-durable writers → their UnsyncedFills token. */
  readonly #nonDurable = new Map<BlockWriter, number>();
  #pinsWrite: Promise<void> = Promise.resolve();
  #stopping = false;

  private constructor(
    opts: BlockStoreOptions,
    recovery: RecoveryReport,
    pins: Set<number>,
    unsynced: UnsyncedFills,
  ) {
    this.#unsynced = unsynced;
    this.tiers = opts.tiers;
    this.#opts = opts;
    this.#log = opts.log;
    this.recovery = recovery;
    this.#pins = pins;
    this.pool = new BufferPool(READ_WINDOW_BYTES, POOLED_READ_BUFFERS);
  }

  /** Scans the directories (see recovery.ts) and returns the store with every block found. */
  static async open(opts: BlockStoreOptions): Promise<BlockStore> {
    const dirs = opts.tiers.allDirs();
    const report = await recoverDirs(dirs, opts.log);
    const root = dirs[0]?.root;
    const pins = await readPins(root);
    const flagMs = root === undefined ? undefined : await UnsyncedFills.leftFlagMs(root);
    const unsynced = new UnsyncedFills(root ?? '.', opts.log, flagMs !== undefined);
    const store = new BlockStore(opts, report, pins, unsynced);
    const tierOf = new Map<TierDir, Tier>();
    for (const t of opts.tiers.tiers) for (const d of t.dirs) tierOf.set(d, t);
    if (flagMs !== undefined) {
      // A previous run ended with read-through fills not yet synced: any file written since may
      // be torn. Verify those end to end before serving them; the good ones are synced now.
      await store.#verifySuspects(report, flagMs - FLAG_MTIME_SLACK_MS, tierOf);
      await unsynced.settle();
    }
    unsynced.start();
    for (const f of report.blocks) {
      f.dir.adopt(f.fileBytes);
      store.#blocks.set(f.blockId, {
        blockId: f.blockId,
        lengthBytes: f.lengthBytes,
        fileBytes: f.fileBytes,
        dir: f.dir,
        tier: tierOf.get(f.dir) as Tier,
        path: f.path,
        lastAccessMs: f.mtimeMs,
        readsInTier: 0,
        totalReads: 0,
        moving: false,
        removed: false,
      });
    }
    for (const d of dirs) {
      if (d.usedBytes > d.capacityBytes) {
        opts.log.warn(
          { dir: d.path, usedBytes: d.usedBytes, capacityBytes: d.capacityBytes },
          'blocks found exceed the configured capacity: eviction will move them out',
        );
      }
    }
    return store;
  }

  /**
   * Reads every block file written since `sinceMs` through the verified reader; a damaged one
   * (trailer, length or any chunk's checksum) is removed and listed as corrupt in the report.
   */
  async #verifySuspects(
    report: RecoveryReport,
    sinceMs: number,
    tierOf: ReadonlyMap<TierDir, Tier>,
  ): Promise<void> {
    const kept: FoundBlock[] = [];
    let checked = 0;
    let damaged = 0;
    for (const f of report.blocks) {
      if (f.mtimeMs < sinceMs) {
        kept.push(f);
        continue;
      }
      checked++;
      try {
        const type = (tierOf.get(f.dir) as Tier).storageType;
        const reader = await BlockReader.open(f.blockId, f.path, f.lengthBytes, type, this.pool);
        try {
          await reader.readAll(() => undefined);
        } finally {
          await reader.close();
        }
        this.#unsynced.adopt(f.path, f.dir.activeDir);
        kept.push(f);
      } catch (err) {
        this.#log.error(
          { blockId: f.blockId, path: f.path, err: err instanceof Error ? err.message : String(err) },
          'block written by an unsynced read-through fill is damaged after a crash: removed',
        );
        await unlinkIfExists(f.path);
        report.corrupt.push(f.blockId);
        damaged++;
      }
    }
    report.blocks = kept;
    this.#log.info({ checked, damaged }, 'verified blocks written since the last sync of read-through fills');
  }

  /** Subscribes to block changes (heartbeat deltas, metrics). */
  on(listener: (e: BlockEvent) => void): void {
    this.#listeners.push(listener);
  }

  get size(): number {
    return this.#blocks.size;
  }

  has(blockId: number): boolean {
    return this.#blocks.has(blockId);
  }

  info(blockId: number): BlockInfo | undefined {
    const m = this.#blocks.get(blockId);
    return m === undefined ? undefined : this.#view(m);
  }

  /** Every block, least recently used first. */
  *list(): Generator<BlockInfo> {
    for (const m of this.#blocks.values()) yield this.#view(m);
  }

  /**
   * Blocks of `tier` that eviction may move or drop, least recently used first: not pinned, not
   * being moved, not being rewritten.
   */
  *evictionCandidates(tier: Tier): Generator<BlockInfo> {
    for (const m of this.#blocks.values()) {
      if (m.tier !== tier || m.moving || m.removed) continue;
      if (this.#pins.has(m.blockId) || this.#writers.has(m.blockId)) continue;
      yield this.#view(m);
    }
  }

  isPinned(blockId: number): boolean {
    return this.#pins.has(blockId);
  }

  /** Pins or unpins blocks (persisted): pinned blocks are never demoted or dropped. */
  async setPinned(blockIds: readonly number[], pinned: boolean): Promise<void> {
    let changed = false;
    for (const id of blockIds) {
      if (pinned === this.#pins.has(id)) continue;
      if (pinned) this.#pins.add(id);
      else this.#pins.delete(id);
      changed = true;
    }
    if (changed) await this.#savePins();
  }

  // ---- space ---------------------------------------------------------------------------------

  /**
   * Reserves `bytes` on the tier for `type` or, when it is full, on a slower one. When every
   * candidate is full it asks eviction to run and waits up to `spaceWaitMs`; then ENOSPC.
   */
  async reserve(
    type: StorageType,
    bytes: number,
    signal?: AbortSignal,
  ): Promise<{ tier: Tier; dir: TierDir }> {
    const entry = this.tiers.entryFor(type);
    const candidates = this.tiers.tiers.slice(entry.level);
    const largest = Math.max(...candidates.flatMap((t) => t.dirs.map((d) => d.capacityBytes)));
    if (bytes > largest) {
      throw new NoSpaceError(bytes, `larger than any directory of tiers ${names(candidates)}`);
    }
    const deadline = Date.now() + this.#opts.spaceWaitMs;
    for (;;) {
      for (const tier of candidates) {
        const dir = tier.reserve(bytes);
        if (dir !== undefined) return { tier, dir };
      }
      await this.#waitForSpace(deadline, bytes, entry, `tiers ${names(candidates)} are full`, signal);
    }
  }

  /** Grows a reservation in one directory (a write that outran its length hint). */
  async grow(dir: TierDir, bytes: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.#opts.spaceWaitMs;
    const tier = this.tiers.tiers.find((t) => t.dirs.includes(dir)) ?? this.tiers.bottom;
    while (!dir.tryReserve(bytes)) {
      await this.#waitForSpace(deadline, bytes, tier, `directory ${dir.path} is full`, signal);
    }
  }

  /** Wakes writes waiting for space (called after anything is freed). */
  notifySpaceFreed(): void {
    for (const w of [...this.#spaceWaiters]) w();
  }

  async #waitForSpace(
    deadline: number,
    bytes: number,
    tier: Tier,
    why: string,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.#stopping) throw new StoppingError();
    signal?.throwIfAborted();
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new NoSpaceError(bytes, why);
    this.#opts.onSpaceNeeded?.(tier, bytes);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#spaceWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(remaining, SPACE_POLL_MS));
      this.#spaceWaiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  // ---- writes --------------------------------------------------------------------------------

  /** Starts writing a block; one writer per block at a time. */
  async createWriter(
    blockId: number,
    type: StorageType,
    lengthHint = 0,
    signal?: AbortSignal,
    durable = true,
  ): Promise<BlockWriter> {
    if (this.#stopping) throw new StoppingError();
    if (this.#writers.has(blockId)) throw new BlockBusyError(blockId, 'is already being written');
    const reserved = fileSizeFor(lengthHint);
    // Claim the block id before waiting for space so a second writer is refused at once.
    const placeholder = new PendingClaim();
    this.claimWriter(blockId, placeholder);
    try {
      const { tier, dir } = await this.reserve(type, reserved, signal);
      try {
        // The flag that makes a restart verify unsynced fills exists before the first byte.
        const token = durable ? undefined : await this.#unsynced.beginWriter();
        let writer: BlockWriter;
        try {
          writer = await BlockWriter.create(
            blockId,
            tier,
            dir,
            this.stagingPath(dir, blockId, 'w'),
            reserved,
            this,
            lengthHint,
            durable,
          );
        } catch (err) {
          if (token !== undefined) this.#unsynced.endWriter(token);
          throw err;
        }
        if (token !== undefined) this.#nonDurable.set(writer, token);
        if (placeholder.reason !== undefined) writer.cancel(placeholder.reason);
        this.#writers.set(blockId, writer);
        return writer;
      } catch (err) {
        dir.release(reserved);
        throw err;
      }
    } catch (err) {
      this.releaseWriter(blockId, placeholder);
      throw err;
    }
  }

  /** Stages and publishes a writer's block; on failure the staging file is removed. */
  async commitWriter(writer: BlockWriter, expectedLength?: number): Promise<BlockInfo> {
    try {
      const staged = await writer.stage(expectedLength);
      const info = await this.publishStaged(staged);
      writer.markPublished();
      this.#endNonDurable(writer, info.path, staged.dir.activeDir);
      return info;
    } catch (err) {
      await writer.abort();
      throw err;
    } finally {
      this.#endNonDurable(writer);
      if (this.#writers.get(writer.blockId) === writer) this.#writers.delete(writer.blockId);
    }
  }

  async abortWriter(writer: BlockWriter): Promise<void> {
    try {
      await writer.abort();
    } finally {
      this.#endNonDurable(writer);
      if (this.#writers.get(writer.blockId) === writer) this.#writers.delete(writer.blockId);
      this.notifySpaceFreed();
    }
  }

  /** A non-durable writer is done; `path` names its file when it was published unsynced. */
  #endNonDurable(writer: BlockWriter, path?: string, dir?: string): void {
    const token = this.#nonDurable.get(writer);
    if (token === undefined) return;
    this.#nonDurable.delete(writer);
    this.#unsynced.endWriter(token, path === undefined || dir === undefined ? undefined : { path, dir });
  }

  /** Syncs the read-through fills published unsynced so far (tests; also runs on a timer). */
  syncFills(): Promise<void> {
    return this.#unsynced.settle();
  }

  /** Unsynced fills published and not yet synced. */
  get unsyncedFills(): number {
    return this.#unsynced.pending;
  }

  /** Claims a block id for a write (also used by short-circuit write sessions). */
  claimWriter(blockId: number, claim: WriteClaim): void {
    if (this.#stopping) throw new StoppingError();
    if (this.#writers.has(blockId)) throw new BlockBusyError(blockId, 'is already being written');
    this.#writers.set(blockId, claim);
  }

  releaseWriter(blockId: number, claim: WriteClaim): void {
    if (this.#writers.get(blockId) === claim) this.#writers.delete(blockId);
  }

  stagingPath(dir: TierDir, blockId: number, tag: string): string {
    return join(dir.stagingDir, `${blockId}.${tag}.${randomBytes(4).toString('hex')}.tmp`);
  }

  /**
   * Publishes a synced staging file as the block (atomic rename into `active/`, then a sync of
   * the directory). A block already stored is replaced: a retried write carries the same bytes.
   */
  async publishStaged(staged: StagedBlock): Promise<BlockInfo> {
    return this.#withLock(staged.blockId, async () => {
      const finalPath = join(staged.dir.activeDir, blockFileName(staged.blockId));
      await rename(staged.stagingPath, finalPath);
      // An unsynced fill's rename is made durable with its data, later (unsynced-fills.ts).
      if (staged.synced) await this.#dirSync.sync(staged.dir.activeDir);
      const old = this.#blocks.get(staged.blockId);
      if (old !== undefined) {
        this.#forget(old);
        if (old.path !== finalPath) await unlinkIfExists(old.path);
        this.#emit({
          kind: 'removed',
          blockId: old.blockId,
          reason: 'replaced',
          fileBytes: old.fileBytes,
          storageType: old.tier.storageType,
        });
      }
      staged.dir.commit(staged.reservedBytes, staged.fileBytes);
      const meta: BlockMeta = {
        blockId: staged.blockId,
        lengthBytes: staged.lengthBytes,
        fileBytes: staged.fileBytes,
        dir: staged.dir,
        tier: staged.tier,
        path: finalPath,
        lastAccessMs: Date.now(),
        readsInTier: 0,
        totalReads: 0,
        moving: false,
        removed: false,
      };
      this.#blocks.set(staged.blockId, meta);
      this.#droppedCorrupt.delete(staged.blockId);
      this.#emit({
        kind: 'added',
        blockId: meta.blockId,
        lengthBytes: meta.lengthBytes,
        storageType: meta.tier.storageType,
      });
      if (staged.reservedBytes > staged.fileBytes) this.notifySpaceFreed();
      return this.#view(meta);
    });
  }

  // ---- reads ---------------------------------------------------------------------------------

  /**
   * Opens a verified reader. A damaged trailer drops the block (reported corrupt) and throws;
   * a block missing here throws BlockNotFoundError.
   */
  async openReader(blockId: number): Promise<BlockReader> {
    for (let attempt = 0; ; attempt++) {
      const m = this.#blocks.get(blockId);
      if (m === undefined) throw this.#missing(blockId);
      try {
        return await BlockReader.open(blockId, m.path, m.lengthBytes, m.tier.storageType, this.pool, (r, e) =>
          this.reportCorrupt(r.blockId, r.path, e.message),
        );
      } catch (err) {
        if (err instanceof BlockCorruptError) {
          await this.reportCorrupt(blockId, m.path, err.message);
          throw err;
        }
        // The file moved to another tier between the lookup and the open: look again.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < OPEN_RETRIES) continue;
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw this.#missing(blockId, err);
        throw err;
      }
    }
  }

  /** Counts a read (recency and promotion); returns true when the block qualifies for promotion. */
  recordRead(blockId: number, promoteAfterReads: number): boolean {
    const m = this.#blocks.get(blockId);
    if (m === undefined) return false;
    m.lastAccessMs = Date.now();
    m.readsInTier++;
    m.totalReads++;
    this.#touch(m);
    return promoteAfterReads > 0 && m.tier.level > 0 && m.readsInTier >= promoteAfterReads;
  }

  /** The path of a block file for a short-circuit reader, counted as a read. */
  localPath(blockId: number): BlockInfo {
    const m = this.#blocks.get(blockId);
    if (m === undefined) throw this.#missing(blockId);
    return this.#view(m);
  }

  /** The error for a block not stored here: corrupt when this worker dropped it as such. */
  #missing(blockId: number, cause?: unknown): StrataError {
    const reason = this.#droppedCorrupt.get(blockId);
    const options = cause === undefined ? {} : { cause };
    return reason === undefined
      ? new BlockNotFoundError(blockId, options)
      : new BlockCorruptError(blockId, `dropped after a read found it damaged: ${reason}`, options);
  }

  // ---- removal -------------------------------------------------------------------------------

  /** Removes a block (delete command, or an eviction drop the master allowed). */
  async delete(blockId: number, reason: RemoveReason = 'deleted'): Promise<boolean> {
    this.#writers.get(blockId)?.cancel('the block was deleted');
    return this.#withLock(blockId, async () => {
      const m = this.#blocks.get(blockId);
      if (m === undefined) return false;
      this.#forget(m);
      this.#pins.delete(blockId);
      await unlinkIfExists(m.path);
      this.#emit({
        kind: 'removed',
        blockId,
        reason,
        fileBytes: m.fileBytes,
        storageType: m.tier.storageType,
      });
      this.notifySpaceFreed();
      return true;
    });
  }

  /**
   * A reader found the file at `path` damaged: drop it and report it corrupt (the master
   * removes this location and re-replicates from a good copy). A stale path (the block moved
   * since) is ignored: the new copy was verified when it was written.
   */
  async reportCorrupt(blockId: number, path: string, reason: string): Promise<void> {
    await this.#withLock(blockId, async () => {
      const m = this.#blocks.get(blockId);
      if (m === undefined || m.path !== path) return;
      this.#forget(m);
      await unlinkIfExists(m.path);
      this.#log.error({ blockId, path, reason }, 'corrupt block dropped');
      // The reason without its "block N is corrupt on this worker: " (the answer says that).
      this.#droppedCorrupt.set(blockId, reason.replace(/^block \d+ is corrupt on this worker: /, ''));
      while (this.#droppedCorrupt.size > REMEMBERED_CORRUPT_BLOCKS) {
        this.#droppedCorrupt.delete(this.#droppedCorrupt.keys().next().value as number);
      }
      this.#emit({ kind: 'corrupt', blockId, reason });
      this.notifySpaceFreed();
    });
  }

  // ---- moves between tiers -------------------------------------------------------------------

  /**
   * Moves a block to `target` crash-safely: reserve there, copy with verification into staging,
   * sync, publish by rename, then remove the old file. Readers holding the old file keep it.
   * Returns false when the target has no room or the block changed meanwhile.
   */
  async move(blockId: number, target: Tier): Promise<boolean> {
    const m = this.#blocks.get(blockId);
    if (m === undefined || m.moving || m.removed || m.tier === target) return false;
    const dir = target.reserve(m.fileBytes);
    if (dir === undefined) return false;
    m.moving = true;
    const staging = this.stagingPath(dir, blockId, 'm');
    let published = false;
    try {
      let reader: BlockReader;
      try {
        reader = await BlockReader.open(blockId, m.path, m.lengthBytes, m.tier.storageType, this.pool);
      } catch (err) {
        if (err instanceof BlockCorruptError) await this.reportCorrupt(blockId, m.path, err.message);
        return false;
      }
      try {
        await copyVerified(reader, staging);
      } catch (err) {
        if (err instanceof BlockCorruptError) await this.reportCorrupt(blockId, m.path, err.message);
        else throw err;
        return false;
      } finally {
        await reader.close();
      }
      return await this.#withLock(blockId, async () => {
        // Deleted, replaced or dropped while copying: the copy is discarded.
        if (this.#blocks.get(blockId) !== m || m.removed) return false;
        const finalPath = join(dir.activeDir, blockFileName(blockId));
        await rename(staging, finalPath);
        const from = m.tier;
        const oldPath = m.path;
        m.dir.remove(m.fileBytes);
        dir.commit(m.fileBytes, m.fileBytes);
        m.dir = dir;
        m.tier = target;
        m.path = finalPath;
        m.readsInTier = 0;
        published = true;
        // A crash before the old file is gone leaves two copies: recovery keeps the newer.
        await fsyncDir(dir.activeDir);
        await unlinkIfExists(oldPath);
        this.#emit({
          kind: 'moved',
          blockId,
          from: from.storageType,
          to: target.storageType,
          promotion: target.level < from.level,
          bytes: m.lengthBytes,
        });
        this.#emit({ kind: 'added', blockId, lengthBytes: m.lengthBytes, storageType: target.storageType });
        this.notifySpaceFreed();
        return true;
      });
    } finally {
      m.moving = false;
      if (!published) {
        await unlinkIfExists(staging).catch(() => undefined);
        dir.release(m.fileBytes);
      }
    }
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** Refuses new work and cancels writes in progress (their staging files are removed). */
  async close(): Promise<void> {
    this.#stopping = true;
    this.notifySpaceFreed();
    for (const w of this.#writers.values()) w.cancel('the worker is stopping');
    await this.#pinsWrite;
    // A clean stop leaves every fill synced and no flag (a write still running keeps the flag).
    await this.#unsynced.close();
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  // ---- internals -----------------------------------------------------------------------------

  #forget(m: BlockMeta): void {
    m.removed = true;
    this.#blocks.delete(m.blockId);
    m.dir.remove(m.fileBytes);
  }

  #touch(m: BlockMeta): void {
    this.#blocks.delete(m.blockId);
    this.#blocks.set(m.blockId, m);
  }

  #emit(e: BlockEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.error({ err, event: e.kind }, 'block event listener failed');
      }
    }
  }

  #view(m: BlockMeta): BlockInfo {
    return {
      blockId: m.blockId,
      lengthBytes: m.lengthBytes,
      fileBytes: m.fileBytes,
      storageType: m.tier.storageType,
      tierLevel: m.tier.level,
      path: m.path,
      reads: m.totalReads,
      readsInTier: m.readsInTier,
      lastAccessMs: m.lastAccessMs,
      pinned: this.#pins.has(m.blockId),
    };
  }

  async #withLock<T>(blockId: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(blockId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.#locks.set(blockId, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(blockId) === chained) this.#locks.delete(blockId);
    }
  }

  async #savePins(): Promise<void> {
    const root = this.tiers.allDirs()[0]?.root;
    if (root === undefined) return;
    const ids = [...this.#pins].sort((a, b) => a - b);
    this.#pinsWrite = this.#pinsWrite
      .catch(() => undefined)
      .then(() => writeFileAtomic(join(root, PINS_FILE), `${JSON.stringify(ids)}\n`));
    await this.#pinsWrite;
  }
}

/** Copies a block file through verification: the data chunk by chunk, then the trailer as is. */
async function copyVerified(reader: BlockReader, dest: string): Promise<void> {
  const fh = await open(dest, 'wx', 0o644);
  try {
    let pos = 0;
    await reader.readAll(async (slice) => {
      let off = 0;
      while (off < slice.length) {
        const { bytesWritten } = await fh.write(slice, off, slice.length - off, pos + off);
        off += bytesWritten;
      }
      pos += slice.length;
    });
    const trailer = await reader.trailer();
    await fh.write(trailer, 0, trailer.length, pos);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

async function readPins(root: string | undefined): Promise<Set<number>> {
  if (root === undefined) return new Set();
  try {
    const parsed = JSON.parse(await readFile(join(root, PINS_FILE), 'utf8')) as unknown;
    if (Array.isArray(parsed)) return new Set(parsed.filter((x): x is number => Number.isSafeInteger(x)));
  } catch {
    // No pins yet (or an unreadable file: pins are re-sent by the master).
  }
  return new Set();
}

function names(tiers: readonly Tier[]): string {
  return tiers.map((t) => t.storageType).join(', ');
}
