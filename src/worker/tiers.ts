/**
 * The worker's tiers, fastest first, built from `worker.data_dir`, `dir_reserved` and the
 * per-type watermarks. Several directories of one type form one tier; new data is spread over
 * them by smooth weighted round-robin, the weight being each directory's available space.
 */
import type { ClusterConfig, StorageType } from '../common/config/index.js';
import { storageRank } from '../common/config/index.js';
import type { TierUsage } from '../protocol/index.js';
import type { Logger } from '../common/logging.js';
import { TierDir, TMPFS_MAGIC, realStatFs } from './tier-dir.js';
import type { StatFs } from './tier-dir.js';

export class Tier {
  readonly storageType: StorageType;
  /** 0 = top (fastest). */
  readonly level: number;
  readonly dirs: readonly TierDir[];
  readonly highWatermark: number;
  readonly lowWatermark: number;

  constructor(storageType: StorageType, level: number, dirs: TierDir[], high: number, low: number) {
    this.storageType = storageType;
    this.level = level;
    this.dirs = dirs;
    this.highWatermark = high;
    this.lowWatermark = low;
  }

  get capacityBytes(): number {
    return this.dirs.reduce((s, d) => s + d.capacityBytes, 0);
  }

  get usedBytes(): number {
    return this.dirs.reduce((s, d) => s + d.usedBytes, 0);
  }

  get pendingBytes(): number {
    return this.dirs.reduce((s, d) => s + d.pendingBytes, 0);
  }

  get availableBytes(): number {
    return this.dirs.reduce((s, d) => s + d.availableBytes, 0);
  }

  get blocks(): number {
    return this.dirs.reduce((s, d) => s + d.blocks, 0);
  }

  /** (used + pending) / capacity of the whole tier. */
  get usageRatio(): number {
    const cap = this.capacityBytes;
    const u = this.usedBytes + this.pendingBytes;
    if (cap === 0) return u > 0 ? Infinity : 0;
    return u / cap;
  }

  /** Bytes to free to come down to the low watermark (0 when at or below high). */
  bytesOverHigh(): number {
    const cap = this.capacityBytes;
    const u = this.usedBytes + this.pendingBytes;
    if (u <= cap * this.highWatermark) return 0;
    return Math.ceil(u - cap * this.lowWatermark);
  }

  /**
   * Picks the directory for `bytes` and reserves them there, or returns undefined when no
   * directory has room. Smooth weighted round-robin (as nginx balances upstreams): each
   * candidate's counter grows by its weight, the largest wins and pays back the total.
   */
  reserve(bytes: number): TierDir | undefined {
    for (const d of this.dirs) d.refreshFs();
    const candidates = this.dirs.filter((d) => d.availableBytes >= bytes);
    if (candidates.length === 0) return undefined;
    if (candidates.length === 1) {
      const only = candidates[0] as TierDir;
      return only.tryReserve(bytes) ? only : undefined;
    }
    let total = 0;
    let best: TierDir | undefined;
    for (const d of candidates) {
      const w = d.availableBytes;
      d.wrrCurrent += w;
      total += w;
      if (best === undefined || d.wrrCurrent > best.wrrCurrent) best = d;
    }
    if (best === undefined) return undefined;
    best.wrrCurrent -= total;
    return best.tryReserve(bytes) ? best : undefined;
  }

  usage(): TierUsage[] {
    return this.dirs.map((d) => ({
      storageType: this.storageType,
      dir: d.path,
      capacityBytes: d.capacityBytes,
      usedBytes: d.usedBytes + d.pendingBytes,
      availableBytes: d.availableBytes,
      blocks: d.blocks,
      highWatermark: this.highWatermark,
      lowWatermark: this.lowWatermark,
    }));
  }
}

export class TierSet {
  /** Fastest first. */
  readonly tiers: readonly Tier[];
  readonly #byType: Map<StorageType, Tier>;

  constructor(tiers: Tier[]) {
    this.tiers = tiers;
    this.#byType = new Map(tiers.map((t) => [t.storageType, t]));
  }

  get(type: StorageType): Tier | undefined {
    return this.#byType.get(type);
  }

  get top(): Tier {
    return this.tiers[0] as Tier;
  }

  get bottom(): Tier {
    return this.tiers[this.tiers.length - 1] as Tier;
  }

  /** The tier a request for `type` lands on: that type, else the next slower one present, else the bottom. */
  entryFor(type: StorageType): Tier {
    const exact = this.#byType.get(type);
    if (exact !== undefined) return exact;
    const rank = storageRank(type);
    return this.tiers.find((t) => storageRank(t.storageType) > rank) ?? this.bottom;
  }

  below(tier: Tier): Tier | undefined {
    return this.tiers[tier.level + 1];
  }

  allDirs(): TierDir[] {
    return this.tiers.flatMap((t) => t.dirs);
  }

  usage(): TierUsage[] {
    return this.tiers.flatMap((t) => t.usage());
  }
}

export interface BuildTiersOptions {
  statFs?: StatFs;
  log: Logger;
}

/** Builds the tiers from the configuration; directories must exist (see prepareDataDirs). */
export function buildTiers(config: ClusterConfig, opts: BuildTiersOptions): TierSet {
  const statFs = opts.statFs ?? realStatFs;
  const byType = new Map<StorageType, TierDir[]>();
  for (const d of config.worker.data_dir) {
    const dir = new TierDir({
      path: d.path,
      clusterId: config.cluster_id,
      storageType: d.storage_type,
      declaredCapacityBytes: d.capacity,
      dirReservedBytes: config.worker.dir_reserved,
      statFs,
    });
    if (d.storage_type === 'MEM' && dir.fsType !== TMPFS_MAGIC) {
      opts.log.warn(
        { dir: d.path, fsType: `0x${dir.fsType.toString(16)}` },
        'MEM directory is not on a tmpfs: its blocks live on disk (mount a tmpfs there for memory speed)',
      );
    }
    if (d.capacity !== null && dir.capacityBytes < d.capacity) {
      opts.log.warn(
        { dir: d.path, declaredBytes: d.capacity, capacityBytes: dir.capacityBytes },
        'declared capacity exceeds the filesystem: capped to the filesystem size minus dir_reserved',
      );
    }
    const list = byType.get(d.storage_type) ?? [];
    list.push(dir);
    byType.set(d.storage_type, list);
  }
  const types = [...byType.keys()].sort((a, b) => storageRank(a) - storageRank(b));
  const tiers = types.map((t, level) => {
    const w = config.worker.watermarks[t];
    return new Tier(t, level, byType.get(t) ?? [], w.high, w.low);
  });
  return new TierSet(tiers);
}
