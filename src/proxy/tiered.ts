/**
 * L1 (memory) in front of an optional L2 (file, raw disk; cluster later), behind the one
 * ProxyStore vocabulary. Every L2 failure is contained here: it is logged, counted, and turns
 * into a miss or a skipped write, never into an error for the client. After repeated failures
 * the L2 is bypassed for a cool-down, then tried again, so a broken disk costs one error per
 * cool-down instead of one per request.
 */
import type { Logger } from '../common/logging.js';
import { familyOf } from './cache-key.js';
import { CorruptEntryError, StoreFullError } from './errors.js';
import type { MemoryStore } from './store/memory.js';
import { readBuffers } from './store/buffer-pool.js';
import { memoryHit } from './store/memory.js';
import type { EntryMeta, ProxyStore, PutOptions, StoreHit, StoreWriter } from './store/types.js';

/** Consecutive L2 failures that open the circuit. */
export const L2_FAILURE_THRESHOLD = 3;
/** How long the L2 is bypassed once the circuit is open. */
export const L2_COOLDOWN_MS = 10_000;

export type Tier = 'l1' | 'l2';

export interface TieredHit {
  hit: StoreHit;
  tier: Tier;
}

export interface TieredEvents {
  onError(store: string, op: string, err: unknown): void;
}

export class TieredCache {
  readonly l1: MemoryStore;
  readonly l2: ProxyStore | undefined;
  readonly #log: Logger;
  readonly #events: TieredEvents;
  #l2Failures = 0;
  #l2OpenUntil = 0;
  #l2Ready = false;
  #l2Broken: string | undefined;
  /** Writers in progress by primary key, so an invalidation also reaches bodies not yet committed. */
  readonly #writing = new Map<string, Set<TeeWriter>>();

  constructor(l1: MemoryStore, l2: ProxyStore | undefined, log: Logger, events: TieredEvents) {
    this.l1 = l1;
    this.l2 = l2;
    this.#log = log;
    this.#events = events;
    if (l2 !== undefined) {
      l2.ready().then(
        () => {
          this.#l2Ready = true;
        },
        (err: unknown) => {
          this.#l2Broken = (err as Error).message;
          this.#log.error(
            { err, store: l2.kind },
            'L2 cache unavailable: serving with L1 and the origin only',
          );
          this.#events.onError(l2.kind, 'open', err);
        },
      );
    }
  }

  /** Why the L2 is not in use, if it is not (for /ready and logs). */
  get l2State(): 'none' | 'starting' | 'ok' | 'bypassed' | 'failed' {
    if (this.l2 === undefined) return 'none';
    if (this.#l2Broken !== undefined) return 'failed';
    if (!this.#l2Ready) return 'starting';
    return Date.now() < this.#l2OpenUntil ? 'bypassed' : 'ok';
  }

  #l2Usable(): ProxyStore | undefined {
    if (this.l2 === undefined || this.#l2Broken !== undefined || !this.#l2Ready) return undefined;
    if (Date.now() < this.#l2OpenUntil) return undefined;
    return this.l2;
  }

  #l2Failed(op: string, err: unknown): void {
    const store = this.l2?.kind ?? 'l2';
    this.#events.onError(store, op, err);
    if (err instanceof CorruptEntryError) {
      this.#log.warn(
        { err: (err as Error).message, store },
        'corrupt cache entry dropped; fetching from the origin',
      );
      return;
    }
    if (err instanceof StoreFullError) return;
    this.#l2Failures++;
    this.#log.warn(
      { err, store, op, failures: this.#l2Failures },
      'L2 cache operation failed; continuing without it',
    );
    if (this.#l2Failures >= L2_FAILURE_THRESHOLD) {
      this.#l2OpenUntil = Date.now() + L2_COOLDOWN_MS;
      this.#l2Failures = 0;
      this.#log.error(
        { store, cooldownMs: L2_COOLDOWN_MS },
        'L2 cache failing repeatedly: bypassing it for a while',
      );
    }
  }

  #l2Ok(): void {
    this.#l2Failures = 0;
  }

  /**
   * True when `get(key)` is known to find nothing without waiting for any I/O: not in L1, and
   * the L2 is out of use (as `get` then skips it) or says so from its index. False: look it up.
   */
  knownAbsent(key: string): boolean {
    if (this.l1.peek(key) !== undefined) return false;
    const l2 = this.#l2Usable();
    if (l2 === undefined) return true;
    return l2.knownAbsent?.(key) ?? false;
  }

  /** Synchronous L1 lookup (the hot path). */
  peekL1(key: string): TieredHit | undefined {
    const e = this.l1.peek(key);
    return e === undefined ? undefined : { hit: memoryHit(e), tier: 'l1' };
  }

  async get(key: string): Promise<TieredHit | undefined> {
    const l1 = this.peekL1(key);
    if (l1 !== undefined) return l1;
    const l2 = this.#l2Usable();
    if (l2 === undefined) return undefined;
    try {
      const hit = await l2.get(key);
      this.#l2Ok();
      if (hit === undefined) return undefined;
      this.#promote(hit);
      return { hit, tier: 'l2' };
    } catch (err) {
      this.#l2Failed('get', err);
      return undefined;
    }
  }

  /** Copies a small L2 hit into L1 in the background (S3-FIFO decides whether it stays). */
  #promote(hit: StoreHit): void {
    if (hit.meta.vary !== undefined) {
      this.l1.insert(hit.meta, []);
      return;
    }
    if (!this.l1.accepts(hit.bodyBytes)) return;
    const l2 = this.l2;
    if (l2 === undefined) return;
    void (async () => {
      const again = await l2.get(hit.meta.key);
      if (again === undefined) return;
      try {
        const chunks: Buffer[] = [];
        for await (const c of again.read(0, again.bodyBytes)) {
          chunks.push(Buffer.from(c)); // a copy: the read buffer goes back to the pool
          readBuffers.recycle(c);
        }
        this.l1.insert(again.meta, chunks);
      } finally {
        again.release();
      }
    })().catch((err: unknown) => this.#l2Failed('promote', err));
  }

  async put(meta: EntryMeta, opts: PutOptions = {}): Promise<StoreWriter | undefined> {
    // Registered before the first await: an invalidation arriving while the tiers open their
    // writers must still reach this body.
    const family = familyOf(meta.key);
    let set = this.#writing.get(family);
    if (set === undefined) this.#writing.set(family, (set = new Set()));
    const tee: TeeWriter = new TeeWriter(
      meta.key,
      (name, op, err) => {
        if (name === 'memory') return;
        this.#l2Failed(op, err);
      },
      () => {
        const current = this.#writing.get(family);
        current?.delete(tee);
        if (current?.size === 0) this.#writing.delete(family);
      },
    );
    set.add(tee);
    const l1w = await this.l1.put(meta, opts);
    if (l1w !== undefined) tee.add({ name: 'memory', w: l1w, store: this.l1 });
    const l2 = this.#l2Usable();
    if (l2 !== undefined) {
      try {
        const w = await l2.put(meta, opts);
        if (w !== undefined) tee.add({ name: l2.kind, w, store: l2 });
      } catch (err) {
        this.#l2Failed('put', err);
      }
    }
    if (!tee.alive) {
      await tee.abort();
      return undefined;
    }
    return tee;
  }

  #invalidateWriters(family: string, key?: string): void {
    for (const tee of this.#writing.get(family) ?? [])
      if (key === undefined || tee.key === key) tee.invalidate();
  }

  /** Stores a body-less entry (a Vary marker) in every tier. */
  async putMarker(meta: EntryMeta): Promise<void> {
    const w = await this.put(meta, { expectedBytes: 0 });
    try {
      await w?.commit();
    } finally {
      w?.dispose?.();
    }
  }

  async updateMeta(meta: EntryMeta): Promise<void> {
    await this.l1.updateMeta(meta);
    const l2 = this.#l2Usable();
    if (l2 === undefined) return;
    try {
      await l2.updateMeta(meta);
    } catch (err) {
      this.#l2Failed('update', err);
    }
  }

  async delete(key: string): Promise<void> {
    this.#invalidateWriters(familyOf(key), key);
    await this.l1.delete(key);
    const l2 = this.#l2Usable();
    if (l2 === undefined) return;
    try {
      await l2.delete(key);
    } catch (err) {
      this.#l2Failed('delete', err);
    }
  }

  /** Drops an entry with all its variants and slices from every tier; returns the count. */
  async deleteFamily(primaryKey: string): Promise<number> {
    this.#invalidateWriters(primaryKey);
    let n = await this.l1.deleteFamily(primaryKey);
    const l2 = this.#l2Usable();
    if (l2 !== undefined) {
      try {
        n += await l2.deleteFamily(primaryKey);
      } catch (err) {
        this.#l2Failed('purge', err);
      }
    }
    return n;
  }

  async close(): Promise<void> {
    await this.l1.close();
    if (this.l2 !== undefined) {
      try {
        await this.l2.close();
      } catch (err) {
        this.#log.warn({ err }, 'closing the L2 cache failed');
      }
    }
  }
}

interface TierWriter {
  name: string;
  w: StoreWriter;
  store: ProxyStore;
}

/**
 * Writes one body to several tiers. A tier that fails is dropped (and reported); the others go
 * on. Followers read back from the memory tier when it still has the bytes, else from disk. An
 * invalidation that arrives while the body is being written (or committed) removes the entry
 * again once its commit lands, so a PUT/DELETE/PURGE racing a fill never leaves it behind.
 */
export class TeeWriter implements StoreWriter {
  readonly key: string;
  #writers: TierWriter[];
  readonly #onError: (name: string, op: string, err: unknown) => void;
  readonly #onDone: () => void;
  #bytes = 0;
  #invalidated = false;

  constructor(key: string, onError: (name: string, op: string, err: unknown) => void, onDone: () => void) {
    this.key = key;
    this.#writers = [];
    this.#onError = onError;
    this.#onDone = onDone;
  }

  get alive(): boolean {
    return this.#writers.length > 0;
  }

  get bytesWritten(): number {
    return this.#bytes;
  }

  invalidate(): void {
    this.#invalidated = true;
  }

  add(w: TierWriter): void {
    this.#writers.push(w);
  }

  async write(chunk: Buffer): Promise<void> {
    const results = await Promise.allSettled(this.#writers.map(({ w }) => w.write(chunk)));
    const keep: TierWriter[] = [];
    results.forEach((r, i) => {
      const entry = this.#writers[i] as TierWriter;
      if (r.status === 'fulfilled') keep.push(entry);
      else {
        this.#onError(entry.name, 'write', r.reason);
        void entry.w.abort().catch(() => undefined);
      }
    });
    this.#writers = keep;
    if (keep.length === 0) throw new StoreFullError('no cache tier accepted the body');
    this.#bytes += chunk.length;
  }

  async readAt(offset: number, length: number): Promise<Buffer> {
    let lastErr: Error | undefined;
    for (const { w } of this.#writers) {
      try {
        return await w.readAt(offset, length);
      } catch (err) {
        lastErr = err instanceof Error ? err : new Error(String(err));
      }
    }
    throw lastErr ?? new StoreFullError('no cache tier holds the body');
  }

  async commit(): Promise<void> {
    try {
      if (this.#invalidated) {
        await this.abort();
        return;
      }
      await Promise.all(
        this.#writers.map(async ({ name, w, store }) => {
          try {
            await w.commit();
            if (this.#invalidated) await store.delete(this.key);
          } catch (err) {
            this.#onError(name, 'commit', err);
          }
        }),
      );
    } finally {
      this.#onDone();
    }
  }

  async abort(): Promise<void> {
    const writers = this.#writers;
    this.#writers = [];
    await Promise.all(writers.map(({ w }) => w.abort().catch(() => undefined)));
    this.#onDone();
  }

  dispose(): void {
    for (const { w } of this.#writers) w.dispose?.();
  }
}
