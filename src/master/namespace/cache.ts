/**
 * The in-memory inode and directory-entry cache in front of the MetaStore.
 *
 * Always consistent with the store: it changes only (a) when a transaction's commit resolves,
 * with exactly what the transaction wrote, applied in commit order, and (b) when a read fills a
 * miss from a store snapshot, and then only if no commit was applied since that read began
 * (`generation` check), so a fill can never put back a value a newer commit replaced. Entries
 * are committed states of their keys, so a reader sees committed data only.
 *
 * Bounded: least-recently-used entries are dropped beyond the configured sizes. Negative entries
 * ("this name does not exist") are cached too, so stat of a missing path costs no store read.
 */
import type { Dentry } from './keys.js';
import type { Inode } from './inode.js';

export const DEFAULT_INODE_CACHE_ENTRIES = 500_000;
export const DEFAULT_DENTRY_CACHE_ENTRIES = 1_000_000;

/** A cached lookup: a dentry, or null for "absent". */
export type CachedDentry = Dentry | null;

class Lru<K, V> {
  readonly #map = new Map<K, V>();
  readonly #max: number;
  hits = 0;
  misses = 0;

  constructor(max: number) {
    this.#max = Math.max(1, max);
  }

  get(k: K): V | undefined {
    const v = this.#map.get(k);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Refresh recency only now and then: re-inserting on every hit costs more than it saves.
    if ((this.hits & 7) === 0) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }

  set(k: K, v: V): void {
    if (this.#map.has(k)) this.#map.delete(k);
    this.#map.set(k, v);
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
  }

  delete(k: K): void {
    this.#map.delete(k);
  }

  clear(): void {
    this.#map.clear();
  }

  get size(): number {
    return this.#map.size;
  }
}

export interface CacheStats {
  inodes: number;
  dentries: number;
  inodeHits: number;
  inodeMisses: number;
  dentryHits: number;
  dentryMisses: number;
}

export class NamespaceCache {
  readonly #inodes: Lru<number, Inode>;
  readonly #dentries: Lru<string, CachedDentry>;
  #generation = 0;

  constructor(inodeEntries = DEFAULT_INODE_CACHE_ENTRIES, dentryEntries = DEFAULT_DENTRY_CACHE_ENTRIES) {
    this.#inodes = new Lru(inodeEntries);
    this.#dentries = new Lru(dentryEntries);
  }

  /** Changes whenever a commit is applied; a fill carries the value seen when its read began. */
  get generation(): number {
    return this.#generation;
  }

  inode(id: number): Inode | undefined {
    return this.#inodes.get(id);
  }

  dentry(parent: number, name: string): CachedDentry | undefined {
    return this.#dentries.get(dentryId(parent, name));
  }

  fillInode(ino: Inode, generation: number): void {
    if (generation === this.#generation) this.#inodes.set(ino.id, ino);
  }

  fillDentry(parent: number, name: string, d: CachedDentry, generation: number): void {
    if (generation === this.#generation) this.#dentries.set(dentryId(parent, name), d);
  }

  /** Applies one committed transaction's writes, in commit order. */
  applyCommitted(changes: readonly CacheChange[]): void {
    if (changes.length === 0) return;
    this.#generation++;
    for (const c of changes) {
      if (c.kind === 'inode') {
        if (c.inode === null) this.#inodes.delete(c.id);
        else this.#inodes.set(c.id, c.inode);
      } else {
        this.#dentries.set(dentryId(c.parent, c.name), c.dentry);
      }
    }
  }

  clear(): void {
    this.#generation++;
    this.#inodes.clear();
    this.#dentries.clear();
  }

  stats(): CacheStats {
    return {
      inodes: this.#inodes.size,
      dentries: this.#dentries.size,
      inodeHits: this.#inodes.hits,
      inodeMisses: this.#inodes.misses,
      dentryHits: this.#dentries.hits,
      dentryMisses: this.#dentries.misses,
    };
  }
}

export type CacheChange =
  | { kind: 'inode'; id: number; inode: Inode | null }
  | { kind: 'dentry'; parent: number; name: string; dentry: CachedDentry };

function dentryId(parent: number, name: string): string {
  return `${parent}/${name}`;
}
