/**
 * One data directory of a tier and its exact space accounting.
 *
 * capacity  = min(declared capacity, filesystem size − dir_reserved)   (whole filesystem if undeclared)
 * used      = bytes of the block files published here (data + checksums)
 * pending   = bytes reserved by writes and moves in progress
 * available = min(capacity − used − pending, filesystem free − dir_reserved − pending), never < 0
 *
 * Every reservation is checked against `available` at the moment it is made, so used + pending
 * never exceeds capacity by our own doing; the invariant is asserted after each change. (Blocks
 * found at start-up may exceed a capacity that was lowered in the config: eviction drains them.)
 */
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { StorageType } from '../common/config/index.js';

export const ACTIVE_DIR = 'active';
export const STAGING_DIR = 'staging';
/** How long a statfs result is trusted before a reservation reads it again. */
export const STATFS_REFRESH_MS = 500;
/** statfs f_type of tmpfs (linux/magic.h TMPFS_MAGIC). */
export const TMPFS_MAGIC = 0x01021994;

export interface FsStats {
  type: number;
  totalBytes: number;
  freeBytes: number;
}

/** Reads filesystem figures; tests substitute a fake filesystem size. */
export type StatFs = (path: string) => FsStats;

export const realStatFs: StatFs = (path) => {
  const s = statfsSync(path);
  return { type: s.type, totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
};

export interface TierDirOptions {
  path: string;
  clusterId: string;
  storageType: StorageType;
  declaredCapacityBytes: number | null;
  dirReservedBytes: number;
  statFs: StatFs;
}

export class TierDir {
  readonly path: string;
  readonly storageType: StorageType;
  /** `<path>/<cluster_id>`: everything this cluster stores here. */
  readonly root: string;
  readonly activeDir: string;
  readonly stagingDir: string;
  readonly capacityBytes: number;
  readonly dirReservedBytes: number;
  readonly fsType: number;
  readonly #statFs: StatFs;
  #fsFreeBytes: number;
  #fsStatAtMs: number;
  #usedBytes = 0;
  #pendingBytes = 0;
  #blocks = 0;
  /** Smooth weighted round-robin state (see Tier.chooseDir). */
  wrrCurrent = 0;

  constructor(opts: TierDirOptions) {
    this.path = opts.path;
    this.storageType = opts.storageType;
    this.root = join(opts.path, opts.clusterId);
    this.activeDir = join(this.root, ACTIVE_DIR);
    this.stagingDir = join(this.root, STAGING_DIR);
    this.dirReservedBytes = opts.dirReservedBytes;
    this.#statFs = opts.statFs;
    const fs = opts.statFs(opts.path);
    this.fsType = fs.type;
    const fsUsable = Math.max(0, fs.totalBytes - opts.dirReservedBytes);
    this.capacityBytes = Math.min(opts.declaredCapacityBytes ?? fsUsable, fsUsable);
    this.#fsFreeBytes = fs.freeBytes;
    this.#fsStatAtMs = Date.now();
  }

  get usedBytes(): number {
    return this.#usedBytes;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get blocks(): number {
    return this.#blocks;
  }

  get fsFreeBytes(): number {
    return this.#fsFreeBytes;
  }

  /** Re-reads the filesystem's free space (cheap; done on every eviction tick and when stale). */
  refreshFs(force = false): void {
    if (!force && Date.now() - this.#fsStatAtMs < STATFS_REFRESH_MS) return;
    try {
      this.#fsFreeBytes = this.#statFs(this.path).freeBytes;
      this.#fsStatAtMs = Date.now();
    } catch {
      // A vanished mount reads as full: nothing new is placed here until it comes back.
      this.#fsFreeBytes = 0;
    }
  }

  get availableBytes(): number {
    const byCapacity = this.capacityBytes - this.#usedBytes - this.#pendingBytes;
    const byFs = this.#fsFreeBytes - this.dirReservedBytes - this.#pendingBytes;
    return Math.max(0, Math.min(byCapacity, byFs));
  }

  /** used + pending over capacity: what the watermarks compare against. */
  get usageRatio(): number {
    if (this.capacityBytes === 0) return this.#usedBytes + this.#pendingBytes > 0 ? Infinity : 0;
    return (this.#usedBytes + this.#pendingBytes) / this.capacityBytes;
  }

  /** Reserves bytes for a write or a move when they fit; false when they do not. */
  tryReserve(bytes: number): boolean {
    if (bytes < 0 || !Number.isSafeInteger(bytes)) throw new Error(`bad reservation of ${bytes} bytes`);
    this.refreshFs();
    if (bytes > this.availableBytes) return false;
    this.#pendingBytes += bytes;
    this.#assert();
    return true;
  }

  /** Gives back reserved bytes that were not used. */
  release(bytes: number): void {
    this.#pendingBytes -= bytes;
    if (this.#pendingBytes < 0) throw new Error(`${this.path}: pending bytes went negative`);
  }

  /** A reserved write was published: `reservedBytes` leave pending, `fileBytes` join used. */
  commit(reservedBytes: number, fileBytes: number): void {
    if (fileBytes > reservedBytes) {
      throw new Error(`${this.path}: committing ${fileBytes} bytes with only ${reservedBytes} reserved`);
    }
    this.#pendingBytes -= reservedBytes;
    this.#usedBytes += fileBytes;
    this.#blocks++;
    this.#assert();
  }

  /** A block file found at start-up (not reserved: it is already on disk). */
  adopt(fileBytes: number): void {
    this.#usedBytes += fileBytes;
    this.#blocks++;
  }

  /** A block file left this directory (deleted, moved away, dropped). */
  remove(fileBytes: number): void {
    this.#usedBytes -= fileBytes;
    this.#blocks--;
    if (this.#usedBytes < 0 || this.#blocks < 0) {
      throw new Error(`${this.path}: usage went negative (${this.#usedBytes} bytes, ${this.#blocks} blocks)`);
    }
  }

  #assert(): void {
    if (this.#pendingBytes < 0) throw new Error(`${this.path}: pending bytes went negative`);
    // Reservations are only granted within `available`, which is bounded by capacity − used.
    if (this.#pendingBytes > 0 && this.#usedBytes + this.#pendingBytes > this.capacityBytes) {
      throw new Error(
        `${this.path}: usage ${this.#usedBytes} + ${this.#pendingBytes} pending exceeds capacity ${this.capacityBytes}`,
      );
    }
  }
}
