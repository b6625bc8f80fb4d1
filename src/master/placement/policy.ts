/**
 * Worker placement for new blocks and for re-replication. A PlacementPolicy only orders the
 * candidates of one storage tier; `placeReplicas` does the rest the same way for every policy:
 * eligibility (live, not excluded, room for a block), the tier preference (the requested type
 * first, then slower tiers, then faster ones), distinct workers, and a clear ENOSPC when the
 * cluster cannot hold the copies asked for.
 */
import { STORAGE_TYPES, storageRank } from '../../common/config/data-dir.js';
import type { StorageType } from '../../common/config/data-dir.js';
import type { WorkerPolicy } from '../../common/config/schema.js';
import { FsError } from '../../common/errors.js';
import type { TierUsage, WorkerAddress, WorkerState } from '../../protocol/types.js';

/** A worker as placement sees it. */
export interface PlacementCandidate {
  readonly id: string;
  readonly address: WorkerAddress;
  readonly state: WorkerState;
  readonly tiers: readonly TierUsage[];
  /** Bytes promised to blocks placed since the worker's last heartbeat, per storage type. */
  readonly reservedBytes: ReadonlyMap<StorageType, number>;
}

export interface PlacementRequest {
  replicas: number;
  storageType: StorageType;
  blockSizeBytes: number;
  clientHost?: string;
  clientHostId?: string;
  /** Workers that must not be chosen (failed this writer, already hold the block…). */
  exclude?: ReadonlySet<string>;
}

export interface Placement {
  worker: PlacementCandidate;
  /** The tier the copy is expected to land in. */
  storageType: StorageType;
}

/** Orders candidates of one tier; the first `n` are taken. Policies may keep state (a cursor). */
export interface PlacementPolicy {
  readonly name: WorkerPolicy;
  choose(candidates: readonly TierCandidate[], n: number, req: PlacementRequest): TierCandidate[];
}

/** A candidate with the room it has in the tier being filled. */
export interface TierCandidate {
  readonly worker: PlacementCandidate;
  readonly availableBytes: number;
}

/** Tiers tried for a requested type: itself, then slower ones in order, then faster ones nearest first. */
export function tierPreference(requested: StorageType): StorageType[] {
  const r = storageRank(requested);
  const slower = STORAGE_TYPES.filter((t) => storageRank(t) > r);
  const faster = STORAGE_TYPES.filter((t) => storageRank(t) < r).reverse();
  return [requested, ...slower, ...faster];
}

/** Room of a worker in one tier: the best directory of that type, less what is reserved. */
export function tierRoom(w: PlacementCandidate, type: StorageType): number {
  let best = -1;
  for (const t of w.tiers) if (t.storageType === type) best = Math.max(best, t.availableBytes);
  if (best < 0) return -1;
  return best - (w.reservedBytes.get(type) ?? 0);
}

export function placeReplicas(
  policy: PlacementPolicy,
  workers: readonly PlacementCandidate[],
  req: PlacementRequest,
): Placement[] {
  const exclude = req.exclude ?? new Set<string>();
  const eligible = workers.filter((w) => w.state === 'live' && !exclude.has(w.id));
  const chosen: Placement[] = [];
  const taken = new Set<string>();
  for (const type of tierPreference(req.storageType)) {
    const need = req.replicas - chosen.length;
    if (need <= 0) break;
    const cands: TierCandidate[] = [];
    for (const w of eligible) {
      if (taken.has(w.id)) continue;
      const room = tierRoom(w, type);
      if (room >= req.blockSizeBytes) cands.push({ worker: w, availableBytes: room });
    }
    if (cands.length === 0) continue;
    for (const c of policy.choose(cands, need, req).slice(0, need)) {
      if (taken.has(c.worker.id)) continue;
      taken.add(c.worker.id);
      chosen.push({ worker: c.worker, storageType: type });
    }
  }
  if (chosen.length < req.replicas) throw placementError(workers, req, eligible.length, chosen.length);
  return chosen;
}

function placementError(
  workers: readonly PlacementCandidate[],
  req: PlacementRequest,
  eligible: number,
  withRoom: number,
): FsError {
  const byState = new Map<WorkerState, number>();
  for (const w of workers) byState.set(w.state, (byState.get(w.state) ?? 0) + 1);
  const states = [...byState].map(([s, n]) => `${n} ${s}`).join(', ');
  const excluded = workers.filter((w) => req.exclude?.has(w.id) === true).length;
  const mib = (req.blockSizeBytes / (1024 * 1024)).toFixed(req.blockSizeBytes % (1024 * 1024) === 0 ? 0 : 2);
  const message =
    `cannot place ${req.replicas} ${req.replicas === 1 ? 'copy' : 'copies'} of a ${mib} MiB block ` +
    `(storage ${req.storageType}): ${withRoom} of ${eligible} eligible worker(s) have room ` +
    `(registered: ${workers.length === 0 ? 'none' : states}; excluded by the writer: ${excluded})`;
  return new FsError('ENOSPC', message, {
    details: {
      replicas: req.replicas,
      storageType: req.storageType,
      blockSizeBytes: req.blockSizeBytes,
      eligible,
      withRoom,
      registered: workers.length,
      excluded,
    },
  });
}
