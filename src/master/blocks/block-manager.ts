/**
 * The block manager: keeps the block map in step with workers' reports, and keeps every live
 * block at its file's replication.
 *
 * - A reported copy of a block that belongs to no file (deleted, truncated away, abandoned,
 *   allocated under a lease that expired, left over from an earlier format) is deleted. The
 *   block index in the store is the durable truth; a master restart loses nothing because every
 *   worker re-registers with a full report and orphans are found again.
 * - Blocks removed from files are deleted on every worker holding them (delete commands on
 *   heartbeat replies, sent again until the worker confirms).
 * - Under-replicated blocks (a worker lost, a copy corrupt, replication raised, a worker draining)
 *   get `replicate` commands: the chosen target copies from a live holder.
 * - Copies beyond the file's replication are deleted (the holder with the least room first).
 */
import type { StorageType } from '../../common/config/data-dir.js';
import { FsError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { WorkerAddress } from '../../protocol/types.js';
import { placeReplicas } from '../placement/index.js';
import type { PlacementPolicy } from '../placement/index.js';
import type { FileInode } from '../namespace/index.js';
import { realBlockIds } from '../namespace/index.js';
import type { WorkerRegistry } from '../workers/registry.js';
import { BlockMap } from './block-map.js';
import type { Replica } from './block-map.js';

/** Under-replicated blocks examined per tick. */
export const REPLICATION_BATCH = 1000;
/** How long a replication task may take before it is given up and planned again. */
export const DEFAULT_REPLICATION_TIMEOUT_MS = 5 * 60 * 1000;
/** How long a removed block id is remembered, so a report racing its removal cannot revive it. */
const REMOVED_MEMORY_MS = 10 * 60 * 1000;
const REMOVED_MEMORY_MAX = 1_000_000;

export interface ReportedBlock {
  blockId: number;
  length: number;
  storageType: StorageType;
}

/** Which file each block belongs to (undefined: none); implemented by the namespace. */
export interface BlockCatalog {
  blockOwners(blockIds: readonly number[]): Promise<Map<number, FileInode | undefined>>;
}

export interface BlockManagerOptions {
  registry: WorkerRegistry;
  catalog: BlockCatalog;
  policy: PlacementPolicy;
  log: Logger;
  clock?: () => number;
  replicationTimeoutMs?: number;
  /** Whether a file's data is also held by its UFS (cached copies of it may be dropped freely). */
  hasUfsCopy?: (file: FileInode) => boolean;
}

interface InFlight {
  targets: Map<string, number>;
}

export class BlockManager {
  readonly map = new BlockMap();
  readonly #registry: WorkerRegistry;
  readonly #catalog: BlockCatalog;
  readonly #policy: PlacementPolicy;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #timeoutMs: number;
  readonly #needed = new Set<number>();
  readonly #inflight = new Map<number, InFlight>();
  readonly #removed = new Map<number, number>();
  /** Draining workers → their blocks not yet known to have enough copies elsewhere. */
  readonly #draining = new Map<string, Set<number>>();
  #ticking: Promise<void> | undefined;
  #stats = { replicationsScheduled: 0, excessDeleted: 0, orphansDeleted: 0, missing: 0, evictionsGranted: 0 };
  readonly #hasUfsCopy: ((file: FileInode) => boolean) | undefined;

  constructor(opts: BlockManagerOptions) {
    this.#registry = opts.registry;
    this.#catalog = opts.catalog;
    this.#policy = opts.policy;
    this.#log = opts.log;
    this.#clock = opts.clock ?? Date.now;
    this.#timeoutMs = opts.replicationTimeoutMs ?? DEFAULT_REPLICATION_TIMEOUT_MS;
    this.#hasUfsCopy = opts.hasUfsCopy;
    opts.registry.events = {
      onWorkerReset: (id, why) => this.#workerReset(id, why),
      onDecommission: (id) => {
        const blocks = new Set(this.map.blocksOf(id));
        this.#draining.set(id, blocks);
        for (const b of blocks) this.#needed.add(b);
      },
    };
  }

  stats(): {
    replicationsScheduled: number;
    excessDeleted: number;
    orphansDeleted: number;
    missing: number;
    evictionsGranted: number;
    needed: number;
    inflight: number;
  } {
    return { ...this.#stats, needed: this.#needed.size, inflight: this.#inflight.size };
  }

  #workerReset(workerId: string, why: 'lost' | 'registered' | 'replaced'): void {
    const held = this.map.removeWorker(workerId);
    if (why === 'registered' && this.#draining.has(workerId)) this.#draining.set(workerId, new Set());
    else if (why !== 'registered') this.#draining.delete(workerId);
    for (const inf of this.#inflight.values()) inf.targets.delete(workerId);
    // A re-registering worker is about to report everything again; only a real loss needs copies.
    if (why !== 'registered') for (const b of held) this.#needed.add(b);
    if (held.length > 0) this.#log.info({ workerId, why, blocks: held.length }, 'worker locations dropped');
  }

  /** One page of a full block report, or the blocks a heartbeat says were added. */
  async addReported(workerId: string, blocks: readonly ReportedBlock[]): Promise<void> {
    if (blocks.length === 0) return;
    const owners = await this.#catalog.blockOwners(blocks.map((b) => b.blockId));
    const w = this.#registry.active(workerId);
    if (w === undefined) return;
    for (const b of blocks) {
      const file = owners.get(b.blockId);
      if (file === undefined || this.#removed.has(b.blockId)) {
        this.#registry.queueDelete(workerId, b.blockId);
        this.#stats.orphansDeleted++;
        continue;
      }
      this.map.add(b.blockId, { workerId, storageType: b.storageType, length: b.length });
      this.#draining.get(workerId)?.add(b.blockId);
      const inf = this.#inflight.get(b.blockId);
      if (inf !== undefined) {
        inf.targets.delete(workerId);
        if (inf.targets.size === 0) this.#inflight.delete(b.blockId);
      }
      if (this.#liveCopies(b.blockId).length !== file.replicas || w.state !== 'live')
        this.#needed.add(b.blockId);
    }
  }

  /** Blocks a worker says it no longer has (deleted on command, evicted, lost to a bad disk). */
  removeReported(workerId: string, blockIds: readonly number[]): void {
    for (const id of blockIds) {
      this.#registry.deleteConfirmed(workerId, id);
      if (this.map.remove(id, workerId) && !this.#removed.has(id)) this.#needed.add(id);
    }
  }

  /**
   * A worker whose tiers are full asks to drop blocks (least recently used first). A block may go
   * only when another copy exists: on another live worker, or in the UFS (`hasUfsCopy`). A grant
   * counts the copy as gone at once, so two workers asking about the last two copies of a block
   * cannot both drop theirs. Blocks of deleted files are simply deleted. Returns the granted ids.
   */
  async grantEvictions(workerId: string, candidates: readonly number[]): Promise<number[]> {
    if (candidates.length === 0) return [];
    const owners = await this.#catalog.blockOwners(candidates);
    const granted: number[] = [];
    for (const id of candidates) {
      if (!this.map.has(id, workerId)) continue;
      const file = owners.get(id);
      const orphan = file === undefined || this.#removed.has(id);
      const ufs = !orphan && (this.#hasUfsCopy?.(file) ?? false);
      const others = this.#liveCopies(id).filter((r) => r.workerId !== workerId).length;
      if (!orphan && !ufs && others === 0) continue;
      this.#registry.queueDelete(workerId, id);
      this.map.remove(id, workerId);
      this.#stats.evictionsGranted++;
      // A replica dropped for space is copied again where there is room (the full worker has none).
      if (!orphan && !ufs) this.#needed.add(id);
      granted.push(id);
    }
    return granted;
  }

  /** Pins or unpins blocks on every worker holding them (files waiting to reach their UFS). */
  setPinned(blockIds: readonly number[], pinned: boolean): void {
    for (const id of blockIds)
      for (const r of this.map.replicas(id)) this.#registry.queuePin(r.workerId, id, pinned);
  }

  /** Copies that failed their checksum: dropped, deleted on that worker, copied again. */
  corruptReported(workerId: string, blockIds: readonly number[]): void {
    for (const id of blockIds) {
      this.map.remove(id, workerId);
      this.#registry.queueDelete(workerId, id);
      this.#needed.add(id);
    }
  }

  /**
   * A worker could not make the copies it was told to (source gone or damaged, no room, stopped):
   * its tasks end now and the blocks are planned again at the next tick, not after the timeout.
   */
  replicationsFailed(workerId: string, blockIds: readonly number[]): void {
    for (const id of blockIds) {
      const inf = this.#inflight.get(id);
      if (inf === undefined || !inf.targets.delete(workerId)) continue;
      if (inf.targets.size === 0) this.#inflight.delete(id);
      this.#needed.add(id);
    }
  }

  /** The namespace dropped these blocks: every copy goes. */
  blocksRemoved(blockIds: readonly number[]): void {
    const now = this.#clock();
    for (const id of blockIds) {
      if (this.#removed.size < REMOVED_MEMORY_MAX) this.#removed.set(id, now);
      for (const r of [...this.map.replicas(id)]) {
        this.#registry.queueDelete(r.workerId, id);
        this.map.remove(id, r.workerId);
      }
      this.#needed.delete(id);
      this.#inflight.delete(id);
    }
  }

  /**
   * Drops every cached copy of these blocks, which still belong to their files (a UFS holds the
   * data: `free`, TTL free). Unlike `blocksRemoved`, a copy filled again later is welcome.
   */
  dropCopies(blockIds: readonly number[]): number {
    let dropped = 0;
    for (const id of blockIds) {
      for (const r of [...this.map.replicas(id)]) {
        this.#registry.queueDelete(r.workerId, id);
        this.map.remove(id, r.workerId);
        dropped++;
      }
      this.#needed.delete(id);
      this.#inflight.delete(id);
    }
    return dropped;
  }

  /**
   * A writer committed blocks: the workers that acknowledged each are recorded at once (their
   * reports confirm later), and replication is checked. An empty list means "check every block
   * of the file" (its replication changed).
   */
  blocksCommitted(
    file: FileInode,
    blocks: readonly { blockId: number; length: number; workers?: readonly string[] }[],
  ): void {
    if (blocks.length === 0) {
      for (const id of realBlockIds(file.blocks)) this.#needed.add(id);
      return;
    }
    for (const b of blocks) {
      for (const wid of b.workers ?? []) {
        if (this.#registry.active(wid) !== undefined && !this.map.has(b.blockId, wid))
          this.map.add(b.blockId, { workerId: wid, storageType: file.storageType, length: b.length });
      }
      if (this.#liveCopies(b.blockId).length !== file.replicas) this.#needed.add(b.blockId);
    }
  }

  /** Copies a reader may use, best first: live, then draining, then blacklisted. */
  readableReplicas(blockId: number): { replica: Replica; address: WorkerAddress }[] {
    const rank = { live: 0, decommissioning: 1, decommissioned: 1, blacklisted: 2, lost: 9 } as const;
    const out: { replica: Replica; address: WorkerAddress; rank: number }[] = [];
    for (const r of this.map.replicas(blockId)) {
      const w = this.#registry.get(r.workerId);
      if (w === undefined || w.state === 'lost') continue;
      out.push({ replica: r, address: w.address, rank: rank[w.state] });
    }
    return out.sort((a, b) => a.rank - b.rank).map(({ replica, address }) => ({ replica, address }));
  }

  /** Bytes of a file with at least one readable copy. */
  cachedBytes(file: FileInode): number {
    let sum = 0;
    for (let i = 0; i < file.blocks.length; i += 2) {
      const id = file.blocks[i] as number;
      if (id !== 0 && this.map.replicas(id).length > 0) sum += file.blocks[i + 1] as number;
    }
    return sum;
  }

  #liveCopies(blockId: number): Replica[] {
    return this.map.replicas(blockId).filter((r) => {
      const w = this.#registry.get(r.workerId);
      return w !== undefined && w.state === 'live' && !w.deletes.has(blockId);
    });
  }

  /** Liveness, replication, excess and draining: one pass (the master runs it on a timer). */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => {
      this.#ticking = undefined;
    });
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    this.#registry.checkLiveness();
    const now = this.#clock();
    for (const [id, at] of this.#removed) {
      if (now - at < REMOVED_MEMORY_MS) break;
      this.#removed.delete(id);
    }
    for (const [id, inf] of this.#inflight) {
      for (const [wid, deadline] of inf.targets) if (deadline < now) inf.targets.delete(wid);
      if (inf.targets.size === 0) {
        this.#inflight.delete(id);
        this.#needed.add(id);
      }
    }
    const batch: number[] = [];
    for (const id of this.#needed) {
      if (batch.length >= REPLICATION_BATCH) break;
      batch.push(id);
    }
    for (const id of batch) this.#needed.delete(id);
    if (batch.length > 0) {
      const owners = await this.#catalog.blockOwners(batch);
      for (const id of batch) this.#check(id, owners.get(id));
    }
    await this.#checkDraining();
  }

  #check(blockId: number, file: FileInode | undefined): void {
    const reps = this.map.replicas(blockId);
    if (file === undefined || this.#removed.has(blockId)) {
      for (const r of [...reps]) {
        this.#registry.queueDelete(r.workerId, blockId);
        this.map.remove(blockId, r.workerId);
      }
      return;
    }
    const live = this.#liveCopies(blockId);
    const pending = this.#inflight.get(blockId)?.targets.size ?? 0;
    const want = file.replicas;
    if (live.length + pending < want) {
      this.#replicate(blockId, file, want - live.length - pending, reps);
    } else if (live.length > want) {
      const victims = [...live]
        .sort((a, b) => this.#room(a.workerId) - this.#room(b.workerId))
        .slice(0, live.length - want);
      for (const v of victims) {
        this.#registry.queueDelete(v.workerId, blockId);
        this.map.remove(blockId, v.workerId);
        this.#stats.excessDeleted++;
      }
    }
  }

  #replicate(blockId: number, file: FileInode, n: number, reps: readonly Replica[]): void {
    const rank = (r: Replica): number => {
      const s = this.#registry.get(r.workerId)?.state;
      return s === 'live'
        ? 0
        : s === 'decommissioning' || s === 'decommissioned'
          ? 1
          : s === 'blacklisted'
            ? 2
            : 9;
    };
    const sources = reps.filter((r) => rank(r) < 9).sort((a, b) => rank(a) - rank(b));
    const source = sources[0];
    if (source === undefined) {
      // A file whose data the UFS holds is read through from there: nothing is missing.
      if (file.ufs?.persisted === true) return;
      this.#stats.missing++;
      this.#log.warn({ blockId, fileId: file.id }, 'block has no readable copy left: cannot re-replicate');
      return;
    }
    const srcWorker = this.#registry.get(source.workerId);
    if (srcWorker === undefined) return;
    const exclude = new Set<string>(reps.map((r) => r.workerId));
    for (const wid of this.#inflight.get(blockId)?.targets.keys() ?? []) exclude.add(wid);
    const placed = this.#placeUpTo(n, file.storageType, source.length, exclude);
    if (placed.length === 0) {
      this.#needed.add(blockId);
      return;
    }
    const inf = this.#inflight.get(blockId) ?? { targets: new Map<string, number>() };
    const deadline = this.#clock() + this.#timeoutMs;
    for (const p of placed) {
      this.#registry.queueReplication(p.worker.id, {
        blockId,
        length: source.length,
        source: srcWorker.address,
        storageType: file.storageType,
      });
      this.#registry.reserve(p.worker.id, p.storageType, source.length);
      inf.targets.set(p.worker.id, deadline);
      this.#stats.replicationsScheduled++;
    }
    this.#inflight.set(blockId, inf);
  }

  /** Places as many copies as the cluster allows, up to n. */
  #placeUpTo(n: number, storageType: StorageType, bytes: number, exclude: ReadonlySet<string>) {
    for (let k = n; k >= 1; k--) {
      try {
        return placeReplicas(this.#policy, this.#registry.candidates(), {
          replicas: k,
          storageType,
          blockSizeBytes: Math.max(1, bytes),
          exclude,
        });
      } catch (err) {
        if (!(err instanceof FsError) || err.code !== 'ENOSPC') throw err;
      }
    }
    return [];
  }

  #room(workerId: string): number {
    const w = this.#registry.get(workerId);
    return w === undefined ? 0 : w.tiers.reduce((s, t) => s + t.availableBytes, 0);
  }

  /**
   * A draining worker is done when each of its blocks has enough live copies elsewhere (as many
   * as the file wants, or as the live workers allow, and at least one). Checked a batch per tick.
   */
  async #checkDraining(): Promise<void> {
    const eligible = this.#registry.all().filter((w) => w.state === 'live').length;
    for (const [wid, pending] of this.#draining) {
      const w = this.#registry.get(wid);
      if (w === undefined || w.state !== 'decommissioning') {
        this.#draining.delete(wid);
        continue;
      }
      if (w.reporting) continue;
      const batch: number[] = [];
      for (const id of pending) {
        if (batch.length >= REPLICATION_BATCH) break;
        batch.push(id);
      }
      const owners = await this.#catalog.blockOwners(batch);
      for (const id of batch) {
        const file = owners.get(id);
        if (file === undefined || !this.map.has(id, wid)) {
          pending.delete(id);
          continue;
        }
        if (this.#liveCopies(id).length >= Math.max(1, Math.min(file.replicas, eligible))) pending.delete(id);
        else if (!this.#inflight.has(id)) this.#needed.add(id);
      }
      if (pending.size === 0) {
        this.#draining.delete(wid);
        this.#registry.markDecommissioned(wid);
      }
    }
  }
}
