/**
 * The in-memory inode and directory-entry cache in front of the MetaStore.
 *
 * Always consistent with the store: it changes only (a) when a transaction's commit resolves,
 * with exactly what the transaction wrote, applied in commit order, and (b) when a read fills a
 * miss from a store snapshot, and then only if no commit was applied since that read began
 * (`generation` check), so a fill can never put back a value a newer commit replaced. Entries
 * are committed states of their keys, so a reader sees committed data only.
 *
 * Bounded: entries not used for a while are dropped beyond the configured sizes. Negative entries
 * ("this name does not exist") are cached too, so stat of a missing path costs no store read.
 */
import type { Dentry } from './keys.js';
import type { Inode } from './inode.js';

export const DEFAULT_INODE_CACHE_ENTRIES = 500_000;
export const DEFAULT_DENTRY_CACHE_ENTRIES = 1_000_000;

/** A cached lookup: a dentry, or null for "absent". */
export type CachedDentry = Dentry | null;

/**
 * A bounded map that evicts by age in generations: lookups and writes touch only hash maps, never
 * reorder (a Map delete-and-reinsert on every hit fragments V8's hash tables). Entries live in
 * `young`; when it holds half the budget it becomes `old` and the previous `old` is dropped. A hit
 * in `old` is copied back to `young`, so recently used entries survive the rotation.
 */
class GenMap<K, V> {
  #young = new Map<K, V>();
  #old = new Map<K, V>();
  readonly #half: number;
  hits = 0;
  misses = 0;

  constructor(max: number) {
    this.#half = Math.max(1, Math.floor(max / 2));
  }

  get(k: K): V | undefined {
    let v = this.#young.get(k);
    if (v !== undefined) {
      this.hits++;
      return v;
    }
    v = this.#old.get(k);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.#set(k, v);
    return v;
  }

  set(k: K, v: V): void {
    this.#set(k, v);
  }

  #set(k: K, v: V): void {
    // A stale copy left in `old` is shadowed by `young` and dropped at the next rotation.
    this.#young.set(k, v);
    if (this.#young.size >= this.#half) {
      this.#old = this.#young;
      this.#young = new Map();
    }
  }

  delete(k: K): void {
    this.#young.delete(k);
    this.#old.delete(k);
  }

  clear(): void {
    this.#young.clear();
    this.#old.clear();
  }

  get size(): number {
    return this.#young.size + this.#old.size;
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
  readonly #inodes: GenMap<number, Inode>;
  readonly #dentries: GenMap<string, CachedDentry>;
  #generation = 0;

  constructor(inodeEntries = DEFAULT_INODE_CACHE_ENTRIES, dentryEntries = DEFAULT_DENTRY_CACHE_ENTRIES) {
    this.#inodes = new GenMap(inodeEntries);
    this.#dentries = new GenMap(dentryEntries);
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

export function dentryId(parent: number, name: string): string {
  return `${parent}/${name}`;
}
