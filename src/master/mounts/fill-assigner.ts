/**
 * Which worker fills an uncached block of a UFS-backed file. The placement policy chooses; the
 * choice is remembered so every reader (and a load job) of the block goes to the same worker
 * while its fill runs, and they share one UFS fetch. An assignment is dropped once the block has
 * a cached copy, when its worker stops being live, or after FILL_ASSIGNMENT_TTL_MS.
 */
import type { StorageType } from '../../common/config/data-dir.js';
import { StrataError } from '../../common/errors.js';
import type { WorkerAddress } from '../../protocol/types.js';
import { placeReplicas } from '../placement/index.js';
import type { PlacementPolicy } from '../placement/index.js';
import type { WorkerRegistry } from '../workers/registry.js';

/** Longest a fill assignment is kept: longer than any sane fill of one block. */
export const FILL_ASSIGNMENT_TTL_MS = 10 * 60 * 1000;
/** Assignments remembered at most; the oldest go first. */
export const MAX_FILL_ASSIGNMENTS = 200_000;

export interface FillRequest {
  storageType: StorageType;
  blockSizeBytes: number;
  /** Workers not to choose (they just failed this block). */
  exclude?: ReadonlySet<string>;
}

export class FillAssigner {
  readonly #registry: WorkerRegistry;
  readonly #policy: PlacementPolicy;
  readonly #clock: () => number;
  /** blockId → worker and when assigned; insertion order is age order. */
  readonly #assigned = new Map<number, { workerId: string; atMs: number }>();

  constructor(registry: WorkerRegistry, policy: PlacementPolicy, clock: () => number = Date.now) {
    this.#registry = registry;
    this.#policy = policy;
    this.#clock = clock;
  }

  get size(): number {
    return this.#assigned.size;
  }

  /**
   * The worker filling `blockId`: the one already assigned, or a new choice (ENOSPC when none
   * fits). A worker that was told to delete its copy of the block (freed, evicted) is passed over
   * while that command is on its way; one whose delete was not sent yet keeps its copy instead.
   */
  assign(blockId: number, req: FillRequest): WorkerAddress {
    const now = this.#clock();
    const reg = this.#registry;
    const cur = this.#assigned.get(blockId);
    if (
      cur !== undefined &&
      now - cur.atMs < FILL_ASSIGNMENT_TTL_MS &&
      req.exclude?.has(cur.workerId) !== true
    ) {
      const w = reg.get(cur.workerId);
      if (w !== undefined && w.state === 'live' && reg.pendingDelete(w.id, blockId) !== 'sent') {
        reg.cancelDelete(w.id, blockId);
        return w.address;
      }
    }
    const candidates = reg.candidates();
    const exclude = new Set(req.exclude ?? []);
    let deleting = false;
    for (const c of candidates) {
      if (reg.pendingDelete(c.id, blockId) === 'sent') {
        exclude.add(c.id);
        deleting = true;
      }
    }
    if (deleting && !candidates.some((c) => c.state === 'live' && !exclude.has(c.id))) {
      // Every worker able to take it is deleting its copy right now: wait for that, do not race it.
      throw new StrataError(
        'STRATA_UNAVAILABLE',
        `block ${blockId} is being dropped from its workers; try again in a moment`,
      );
    }
    const [placed] = placeReplicas(this.#policy, candidates, {
      replicas: 1,
      storageType: req.storageType,
      blockSizeBytes: Math.max(1, req.blockSizeBytes),
      exclude,
    });
    if (placed === undefined) throw new Error('placement returned no worker');
    reg.cancelDelete(placed.worker.id, blockId);
    this.#registry.reserve(placed.worker.id, placed.storageType, req.blockSizeBytes);
    this.#assigned.delete(blockId);
    this.#assigned.set(blockId, { workerId: placed.worker.id, atMs: now });
    this.#prune(now);
    return placed.worker.address;
  }

  /** The block is cached now (or gone): its assignment is no longer needed. */
  forget(blockId: number): void {
    this.#assigned.delete(blockId);
  }

  #prune(now: number): void {
    for (const [id, a] of this.#assigned) {
      if (this.#assigned.size <= MAX_FILL_ASSIGNMENTS && now - a.atMs < FILL_ASSIGNMENT_TTL_MS) break;
      this.#assigned.delete(id);
    }
  }
}
