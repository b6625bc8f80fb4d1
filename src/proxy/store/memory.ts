/**
 * L1: entries in memory, bounded by `l1_cache_size_bytes` with S3-FIFO eviction. Objects larger
 * than `l1_max_object_size_bytes` are declined (a writer that grows past it aborts itself), so a
 * large object streams through without ever being held whole in memory.
 */
import { StoreFullError } from '../errors.js';
import { S3FifoPolicy } from './s3fifo.js';
import type { EntryMeta, ProxyStore, PutOptions, StoreHit, StoreStats, StoreWriter } from './types.js';
import { familyOf } from '../cache-key.js';

/** Rough per-entry overhead (metadata, headers, maps), so many tiny entries still count. */
export const MEMORY_ENTRY_OVERHEAD_BYTES = 512;
/**
 * Bodies are joined into one buffer on commit (one copy, once): a hit is then a single write of
 * one buffer instead of a walk over the fill's chunks. Entries are at most the L1 object cap.
 */
const JOIN_BELOW_BYTES = 64 * 1024 * 1024;

export interface MemoryEntry {
  readonly meta: EntryMeta;
  readonly chunks: readonly Buffer[];
  readonly bodyBytes: number;
}

export class MemoryStore implements ProxyStore {
  readonly kind = 'memory';
  readonly #entries = new Map<string, MemoryEntry>();
  readonly #families = new Map<string, Set<string>>();
  readonly #policy: S3FifoPolicy<string>;
  #maxObjectBytes: number;

  constructor(capacityBytes: number, maxObjectBytes: number) {
    this.#policy = new S3FifoPolicy<string>(capacityBytes);
    this.#maxObjectBytes = maxObjectBytes;
  }

  async ready(): Promise<void> {}

  get maxObjectBytes(): number {
    return this.#maxObjectBytes;
  }

  /** Applies new limits (SIGHUP): entries beyond the new capacity are evicted now. */
  resize(capacityBytes: number, maxObjectBytes: number): void {
    this.#maxObjectBytes = maxObjectBytes;
    for (const k of this.#policy.resize(capacityBytes)) this.#drop(k);
  }

  /** Synchronous lookup for the hot path; counts as an access. */
  peek(key: string): MemoryEntry | undefined {
    const e = this.#entries.get(key);
    if (e !== undefined) this.#policy.touch(key);
    return e;
  }

  async get(key: string): Promise<StoreHit | undefined> {
    const e = this.peek(key);
    return e === undefined ? undefined : memoryHit(e);
  }

  /** Stores a complete body at once (promotion of an L2 hit). */
  insert(meta: EntryMeta, chunks: Buffer[]): boolean {
    const bodyBytes = chunks.reduce((n, c) => n + c.length, 0);
    if (!this.accepts(bodyBytes)) return false;
    this.#commit(meta, chunks, bodyBytes);
    return true;
  }

  accepts(bodyBytes: number): boolean {
    return (
      this.#policy.capacityBytes > 0 &&
      bodyBytes <= this.#maxObjectBytes &&
      bodyBytes + MEMORY_ENTRY_OVERHEAD_BYTES <= this.#policy.capacityBytes
    );
  }

  async put(meta: EntryMeta, opts: PutOptions = {}): Promise<StoreWriter | undefined> {
    if (this.#policy.capacityBytes === 0) return undefined;
    if (opts.expectedBytes !== undefined && !this.accepts(opts.expectedBytes)) return undefined;
    return new MemoryWriter(this, meta, this.#maxObjectBytes);
  }

  /** Called by the writer. */
  commitFrom(meta: EntryMeta, chunks: Buffer[], bodyBytes: number): void {
    if (!this.accepts(bodyBytes)) return;
    this.#commit(meta, chunks, bodyBytes);
  }

  #commit(meta: EntryMeta, chunks: Buffer[], bodyBytes: number): void {
    const body =
      chunks.length > 1 && bodyBytes <= JOIN_BELOW_BYTES ? [Buffer.concat(chunks, bodyBytes)] : chunks;
    this.#entries.set(meta.key, { meta, chunks: body, bodyBytes });
    const fam = familyOf(meta.key);
    let set = this.#families.get(fam);
    if (set === undefined) this.#families.set(fam, (set = new Set()));
    set.add(meta.key);
    for (const victim of this.#policy.insert(meta.key, bodyBytes + MEMORY_ENTRY_OVERHEAD_BYTES)) {
      this.#drop(victim);
    }
  }

  async updateMeta(meta: EntryMeta): Promise<boolean> {
    const e = this.#entries.get(meta.key);
    if (e === undefined) return false;
    this.#entries.set(meta.key, { meta, chunks: e.chunks, bodyBytes: e.bodyBytes });
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const had = this.#entries.has(key);
    this.#drop(key);
    this.#policy.remove(key);
    return had;
  }

  async deleteFamily(primaryKey: string): Promise<number> {
    const set = this.#families.get(primaryKey);
    if (set === undefined) return 0;
    const keys = [...set];
    for (const k of keys) {
      this.#drop(k);
      this.#policy.remove(k);
    }
    return keys.length;
  }

  #drop(key: string): void {
    if (!this.#entries.delete(key)) return;
    const fam = familyOf(key);
    const set = this.#families.get(fam);
    if (set !== undefined) {
      set.delete(key);
      if (set.size === 0) this.#families.delete(fam);
    }
  }

  stats(): StoreStats {
    return {
      entries: this.#entries.size,
      bytes: this.#policy.bytes,
      capacityBytes: this.#policy.capacityBytes,
    };
  }

  async close(): Promise<void> {
    this.#entries.clear();
    this.#families.clear();
  }
}

/** Yields [start, end) of a chunk list without copying. */
export function* sliceChunks(chunks: readonly Buffer[], start: number, end: number): Generator<Buffer> {
  let pos = 0;
  for (const c of chunks) {
    const cEnd = pos + c.length;
    if (cEnd > start && pos < end) {
      const from = Math.max(start, pos) - pos;
      const to = Math.min(end, cEnd) - pos;
      yield from === 0 && to === c.length ? c : c.subarray(from, to);
    }
    pos = cEnd;
    if (pos >= end) return;
  }
}

export function memoryHit(e: MemoryEntry): StoreHit {
  return {
    meta: e.meta,
    bodyBytes: e.bodyBytes,
    read(start: number, end: number): AsyncIterable<Buffer> {
      const chunks = e.chunks;
      return (async function* () {
        yield* sliceChunks(chunks, start, end);
      })();
    },
    release() {},
  };
}

class MemoryWriter implements StoreWriter {
  readonly #store: MemoryStore;
  readonly #meta: EntryMeta;
  readonly #limitBytes: number;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #done = false;

  constructor(store: MemoryStore, meta: EntryMeta, limitBytes: number) {
    this.#store = store;
    this.#meta = meta;
    this.#limitBytes = limitBytes;
  }

  get bytesWritten(): number {
    return this.#bytes;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#done) throw new StoreFullError('memory writer already finished');
    if (this.#bytes + chunk.length > this.#limitBytes) {
      // Too big for L1: let go of what we hold at once, so memory stays flat in object size.
      this.#chunks = [];
      this.#done = true;
      throw new StoreFullError(`object exceeds l1_max_object_size_bytes (${this.#limitBytes})`);
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  async readAt(offset: number, length: number): Promise<Buffer> {
    const parts = [...sliceChunks(this.#chunks, offset, Math.min(offset + length, this.#bytes))];
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  async commit(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    // The chunks stay referenced (they are the committed entry's body too) so that readers of
    // the fill that are still behind can go on reading them.
    this.#store.commitFrom(this.#meta, this.#chunks, this.#bytes);
  }

  async abort(): Promise<void> {
    this.#done = true;
    this.#chunks = [];
  }
}
