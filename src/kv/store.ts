/**
 * One node's local store: a hash map plus an intrusive doubly linked list in recency order, so
 * get, write, delete and eviction are all O(1). It is bounded twice, by entry count
 * (`cache_size`) and by bytes (`max_memory`, key + value + a fixed per-entry overhead); the least
 * recently used entries go first when either bound is passed.
 *
 * Every write is versioned (last writer wins, see entry.ts `compareWrites`), so replicas converge
 * whatever order copies arrive in. Deletes leave a tombstone for `tombstoneTtlMs` so a late copy
 * of an older write cannot resurrect the key; a flush raises a floor below which every write is
 * refused for the same reason. Expiry is lazy (a read of an expired key misses and removes it)
 * and periodic (`sweep`, driven by a timer, bounded per call so it never stalls the event loop).
 */
import { ENTRY_OVERHEAD_BYTES, Entry, KIND_TOMBSTONE, compareWrites, entrySizeBytes } from './entry.js';
import type { WriteRecord } from './entry.js';
import { ExpiryHeap } from './expiry-heap.js';

export interface StoreLimits {
  /** Most entries held (`cache_size`). */
  maxEntries: number;
  /** Most bytes held (`max_memory`), counting key, value and ENTRY_OVERHEAD_BYTES per entry. */
  maxBytes: number;
  /** How long a delete is remembered. */
  tombstoneTtlMs: number;
  /** Most tombstones remembered; the oldest are forgotten first. */
  maxTombstones: number;
}

export type EvictionReason = 'entries' | 'memory' | 'expired';

export interface Tombstone {
  version: number;
  /** When the tombstone may be forgotten (wall-clock ms). */
  forgetAtMs: number;
}

const EMPTY = Buffer.alloc(0);
/** Stale heap items tolerated before the expiry heap is rebuilt. */
const HEAP_SLACK_ITEMS = 1024;

export class LruStore {
  readonly #limits: StoreLimits;
  readonly #now: () => number;
  readonly #map = new Map<string, Entry>();
  /** Most recently used. */
  #head: Entry | null = null;
  /** Least recently used: evicted first. */
  #tail: Entry | null = null;
  #bytes = 0;
  readonly #tombstones = new Map<string, Tombstone>();
  readonly #heap = new ExpiryHeap();
  #ttlCount = 0;
  #floorVersion = 0;
  readonly #onEvict: (reason: EvictionReason, entry: Entry) => void;

  constructor(
    limits: StoreLimits,
    opts: { now?: () => number; onEvict?: (reason: EvictionReason, entry: Entry) => void } = {},
  ) {
    if (limits.maxEntries < 1 || limits.maxBytes < ENTRY_OVERHEAD_BYTES) {
      throw new RangeError('store limits must allow at least one entry');
    }
    this.#limits = limits;
    this.#now = opts.now ?? Date.now;
    this.#onEvict = opts.onEvict ?? (() => undefined);
  }

  get count(): number {
    return this.#map.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Entries that have a TTL. */
  get expiringCount(): number {
    return this.#ttlCount;
  }

  get tombstoneCount(): number {
    return this.#tombstones.size;
  }

  get floorVersion(): number {
    return this.#floorVersion;
  }

  get limits(): Readonly<StoreLimits> {
    return this.#limits;
  }

  /** The live entry for `key`, marked most recently used; undefined when absent or expired. */
  get(key: string, nowMs = this.#now()): Entry | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAtMs !== 0 && e.expiresAtMs <= nowMs) {
      this.#expire(e, nowMs);
      return undefined;
    }
    if (e !== this.#head) {
      this.#unlink(e);
      this.#linkHead(e);
    }
    return e;
  }

  /** Like get, without changing recency (for replication, export, inspection). */
  peek(key: string, nowMs = this.#now()): Entry | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAtMs !== 0 && e.expiresAtMs <= nowMs) return undefined;
    return e;
  }

  /** The entry even if expired (its version still orders later writes). */
  raw(key: string): Entry | undefined {
    return this.#map.get(key);
  }

  tombstone(key: string): Tombstone | undefined {
    return this.#tombstones.get(key);
  }

  /** The newest version this store knows for `key` (entry or tombstone), 0 when none. */
  knownVersion(key: string): number {
    return Math.max(this.#map.get(key)?.version ?? 0, this.#tombstones.get(key)?.version ?? 0);
  }

  /**
   * Applies a versioned write if it wins against what is held (see compareWrites). Returns
   * whether it was applied; a losing write changes nothing.
   */
  apply(rec: WriteRecord, nowMs = this.#now()): boolean {
    if (rec.version < this.#floorVersion) return false;
    const existing = this.#map.get(rec.key);
    if (
      existing !== undefined &&
      compareWrites(rec.version, rec.kind, rec.value, existing.version, existing.kind, existing.value) <= 0
    ) {
      return false;
    }
    const tomb = this.#tombstones.size === 0 ? undefined : this.#tombstones.get(rec.key);
    if (
      tomb !== undefined &&
      compareWrites(rec.version, rec.kind, rec.value, tomb.version, KIND_TOMBSTONE, EMPTY) <= 0
    ) {
      return false;
    }
    // A write that has already expired deletes the key as of its version.
    if (rec.kind === KIND_TOMBSTONE || (rec.expiresAtMs !== 0 && rec.expiresAtMs <= nowMs)) {
      if (existing !== undefined) this.#remove(existing);
      this.#putTombstone(rec.key, rec.version, nowMs);
      return true;
    }
    if (tomb !== undefined) this.#tombstones.delete(rec.key);
    const size = entrySizeBytes(rec.key, rec.value.length);
    let e: Entry;
    if (existing !== undefined) {
      e = existing;
      this.#bytes += size - e.sizeBytes;
      if (e.expiresAtMs !== 0) this.#ttlCount--;
      e.kind = rec.kind;
      e.value = rec.value;
      e.version = rec.version;
      e.expiresAtMs = rec.expiresAtMs;
      e.sizeBytes = size;
      if (e !== this.#head) {
        this.#unlink(e);
        this.#linkHead(e);
      }
    } else {
      e = new Entry(rec.key, rec.kind, rec.value, rec.version, rec.expiresAtMs, size);
      this.#map.set(rec.key, e);
      this.#bytes += size;
      this.#linkHead(e);
    }
    if (e.expiresAtMs !== 0) {
      this.#ttlCount++;
      this.#heap.push(e);
      if (this.#heap.size > 2 * this.#ttlCount + HEAP_SLACK_ITEMS) this.#heap.rebuild(this.#map.values());
    }
    this.#evictOverLimits();
    return true;
  }

  /** Drops a key without a tombstone (after handing it to its owner); no-op when absent. */
  drop(key: string): void {
    const e = this.#map.get(key);
    if (e !== undefined) this.#remove(e);
  }

  /** Forgets a tombstone (after handing it to the key's owners). */
  dropTombstone(key: string): void {
    this.#tombstones.delete(key);
  }

  /**
   * Removes expired entries (at most `budget`) and forgets old tombstones; returns how many
   * entries expired. Called by a timer; lazy expiry covers reads between calls.
   */
  sweep(nowMs = this.#now(), budget = 10_000): number {
    const expired = this.#heap.popExpired(nowMs, budget);
    for (const e of expired) this.#expire(e, nowMs);
    for (const [key, t] of this.#tombstones) {
      if (t.forgetAtMs > nowMs) break;
      this.#tombstones.delete(key);
    }
    return expired.length;
  }

  /** Empties the store and refuses every write older than `floorVersion` from now on. */
  flush(floorVersion: number): void {
    for (let e = this.#head; e !== null; e = e.next) e.live = false;
    this.#map.clear();
    this.#tombstones.clear();
    this.#heap.clear();
    this.#head = null;
    this.#tail = null;
    this.#bytes = 0;
    this.#ttlCount = 0;
    if (floorVersion > this.#floorVersion) this.#floorVersion = floorVersion;
  }

  /** Live entries, most recently used first. Do not mutate the store while iterating. */
  *entries(nowMs = this.#now()): IterableIterator<Entry> {
    for (let e = this.#head; e !== null; e = e.next) {
      if (e.expiresAtMs === 0 || e.expiresAtMs > nowMs) yield e;
    }
  }

  /** A snapshot of the keys held (entries and tombstones), for scans that yield between chunks. */
  keySnapshot(): { keys: string[]; tombstoneKeys: string[] } {
    return { keys: [...this.#map.keys()], tombstoneKeys: [...this.#tombstones.keys()] };
  }

  /** The record to replicate for `key`: its entry, its tombstone, or undefined. */
  recordFor(key: string): WriteRecord | undefined {
    const e = this.#map.get(key);
    if (e !== undefined) return e.toRecord();
    const t = this.#tombstones.get(key);
    if (t !== undefined)
      return { key, kind: KIND_TOMBSTONE, value: EMPTY, version: t.version, expiresAtMs: 0 };
    return undefined;
  }

  #putTombstone(key: string, version: number, nowMs: number): void {
    // Re-inserting keeps the map in forget order (all tombstones live equally long).
    this.#tombstones.delete(key);
    this.#tombstones.set(key, { version, forgetAtMs: nowMs + this.#limits.tombstoneTtlMs });
    if (this.#tombstones.size > this.#limits.maxTombstones) {
      const oldest = this.#tombstones.keys().next();
      if (oldest.done !== true) this.#tombstones.delete(oldest.value);
    }
  }

  #evictOverLimits(): void {
    while (this.#map.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes) {
      const victim = this.#tail;
      if (victim === null) return;
      const reason: EvictionReason = this.#map.size > this.#limits.maxEntries ? 'entries' : 'memory';
      this.#remove(victim);
      this.#onEvict(reason, victim);
    }
  }

  /** An expired entry leaves a tombstone at its version: a late older copy must not revive it. */
  #expire(e: Entry, nowMs: number): void {
    this.#remove(e);
    this.#putTombstone(e.key, e.version, nowMs);
    this.#onEvict('expired', e);
  }

  #remove(e: Entry): void {
    this.#map.delete(e.key);
    this.#unlink(e);
    e.live = false;
    this.#bytes -= e.sizeBytes;
    if (e.expiresAtMs !== 0) this.#ttlCount--;
  }

  #linkHead(e: Entry): void {
    e.prev = null;
    e.next = this.#head;
    if (this.#head !== null) this.#head.prev = e;
    this.#head = e;
    if (this.#tail === null) this.#tail = e;
  }

  #unlink(e: Entry): void {
    if (e.prev !== null) e.prev.next = e.next;
    else if (this.#head === e) this.#head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else if (this.#tail === e) this.#tail = e.prev;
    e.prev = null;
    e.next = null;
  }
}
