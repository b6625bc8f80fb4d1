/**
 * How namespace code reads inodes and entries: one small interface with three implementations.
 * - CacheOnlyReader: the cache alone; a miss throws CacheMiss so the caller retries on the store.
 * - SnapshotReader: a store snapshot, filling the cache (guarded by its generation).
 * - NsTx (ns-txn.ts): inside a write transaction, straight from the store, never the cache.
 */
import type { MetaReader } from '../../meta/index.js';
import type { NamespaceCache } from './cache.js';
import { decodeInode } from './inode.js';
import type { Inode } from './inode.js';
import { decodeDentry, dentryKey, inodeKey } from './keys.js';
import type { Dentry } from './keys.js';

export interface NsReader {
  inode(id: number): Inode | undefined;
  dentry(parent: number, name: string): Dentry | undefined;
}

/** Thrown by CacheOnlyReader on a miss. Internal: always caught by the namespace. */
export class CacheMiss extends Error {
  constructor() {
    super('namespace cache miss');
  }
}

const CACHE_MISS = new CacheMiss();

export class CacheOnlyReader implements NsReader {
  readonly #cache: NamespaceCache;
  constructor(cache: NamespaceCache) {
    this.#cache = cache;
  }
  inode(id: number): Inode | undefined {
    const ino = this.#cache.inode(id);
    if (ino === undefined) throw CACHE_MISS;
    return ino;
  }
  dentry(parent: number, name: string): Dentry | undefined {
    const d = this.#cache.dentry(parent, name);
    if (d === undefined) throw CACHE_MISS;
    return d ?? undefined;
  }
}

export class SnapshotReader implements NsReader {
  readonly #r: MetaReader;
  readonly #cache: NamespaceCache;
  readonly #generation: number;

  constructor(r: MetaReader, cache: NamespaceCache, generation: number) {
    this.#r = r;
    this.#cache = cache;
    this.#generation = generation;
  }

  get store(): MetaReader {
    return this.#r;
  }

  inode(id: number): Inode | undefined {
    const hit = this.#cache.inode(id);
    if (hit !== undefined) return hit;
    const v = this.#r.get(inodeKey(id));
    if (v === undefined) return undefined;
    const ino = decodeInode(v);
    this.#cache.fillInode(ino, this.#generation);
    return ino;
  }

  dentry(parent: number, name: string): Dentry | undefined {
    const hit = this.#cache.dentry(parent, name);
    if (hit !== undefined) return hit ?? undefined;
    const v = this.#r.get(dentryKey(parent, name));
    const d = v === undefined ? null : decodeDentry(v);
    this.#cache.fillDentry(parent, name, d, this.#generation);
    return d ?? undefined;
  }
}
