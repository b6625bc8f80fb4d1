/**
 * An in-memory MetaStore engine, for tests and tools. Nothing is persisted.
 *
 * With `remote: true` it behaves like a store across a network (the etcd engine's strategy, like
 * etcd's STM): a transaction function runs against a local cache of fetched keys; reading a key
 * or range not fetched yet aborts the run, the data is fetched asynchronously, and the function
 * runs again. At commit, everything it read is validated against the current revisions; if
 * anything changed meanwhile (another transaction committed), the run is discarded and repeated.
 * This proves that the layers above never depend on a function running once, or on LMDB.
 */
import { bytesEqual, bytesId, compareBytes, idBytes, inInterval, normaliseScan } from '../bytes.js';
import type { Interval } from '../bytes.js';
import { MetaCompareError, metaClosed, metaConflict } from '../errors.js';
import { CheckedReader, TxnBuffer } from '../txn-buffer.js';
import type { EngineReader } from '../txn-buffer.js';
import type {
  MetaEntry,
  MetaKey,
  MetaReader,
  MetaStore,
  MetaStoreStats,
  MetaTxn,
  MetaValue,
  ScanOptions,
} from '../store.js';

/** Runs of one transaction before a remote engine gives up with STRATA_META_CONFLICT. */
export const MEMORY_MAX_ATTEMPTS = 1000;

export interface MemoryStoreOptions {
  /** Simulate a remote engine: re-run on unfetched reads and on conflicts. */
  remote?: boolean;
  /** Simulated round trip of a remote fetch or commit, in ms (0 = next turn of the event loop). */
  latencyMs?: number;
}

interface Stored {
  value: Buffer;
  modRevision: number;
}

/** Thrown inside a run that needs data not fetched yet; never escapes the engine. */
class ReadMiss extends Error {
  constructor(
    readonly key: string | undefined,
    readonly iv: Interval | undefined,
  ) {
    super('metadata read miss (internal: the transaction function runs again)');
  }
}

export class MemoryStore implements MetaStore {
  readonly engine: string;
  readonly serialTransactions: boolean;
  readonly #remote: boolean;
  readonly #latencyMs: number;
  /** Sorted latin1 ids (latin1 string order equals byte order). */
  #keys: string[] = [];
  readonly #data = new Map<string, Stored>();
  #revision = 0;
  #open = true;
  #transactions = 0;
  #reruns = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.#remote = opts.remote === true;
    this.#latencyMs = opts.latencyMs ?? 0;
    this.engine = this.#remote ? 'memory-remote' : 'memory';
    this.serialTransactions = !this.#remote;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  async read<T>(fn: (r: MetaReader) => T): Promise<T> {
    this.#assertOpen();
    if (!this.#remote) return fn(new CheckedReader(this.#direct));
    for (let attempt = 1; ; attempt++) {
      const snap = new Snapshot();
      for (;;) {
        try {
          const value = fn(new CheckedReader(snap.reader));
          if (this.#valid(snap)) return value;
          break;
        } catch (err) {
          if (err instanceof ReadMiss) {
            await this.#fetch(snap, err);
            continue;
          }
          if (this.#valid(snap)) throw err;
          break;
        }
      }
      this.#reruns++;
      if (attempt >= MEMORY_MAX_ATTEMPTS) throw metaConflict(attempt);
    }
  }

  async transaction<T>(fn: (tx: MetaTxn) => T): Promise<T> {
    this.#assertOpen();
    if (!this.#remote) {
      const buf = new TxnBuffer(this.#direct, this.#revision + 1);
      const value = fn(buf);
      this.#commit(buf);
      await tick(0);
      return value;
    }
    for (let attempt = 1; ; attempt++) {
      const snap = new Snapshot();
      for (;;) {
        const buf = new TxnBuffer(snap.reader, this.#revision + 1);
        let value: T;
        try {
          value = fn(buf);
        } catch (err) {
          if (err instanceof ReadMiss) {
            await this.#fetch(snap, err);
            continue;
          }
          if (this.#valid(snap)) throw err;
          break;
        }
        // The commit round trip: others may commit before ours arrives.
        await tick(this.#latencyMs);
        this.#assertOpen();
        if (!this.#valid(snap)) break;
        this.#commit(buf);
        return value;
      }
      this.#reruns++;
      if (attempt >= MEMORY_MAX_ATTEMPTS) throw metaConflict(attempt);
    }
  }

  async get(key: MetaKey): Promise<MetaValue | undefined> {
    return this.read((r) => r.get(key));
  }

  async scan(opts: ScanOptions): Promise<MetaEntry[]> {
    normaliseScan(opts);
    return this.read((r) => r.scan(opts));
  }

  async put(key: MetaKey, value: MetaValue): Promise<void> {
    await this.transaction((tx) => tx.put(key, value));
  }

  async delete(key: MetaKey): Promise<void> {
    await this.transaction((tx) => tx.delete(key));
  }

  stats(): MetaStoreStats {
    return {
      engine: this.engine,
      revision: this.#revision,
      commits: this.#transactions,
      transactions: this.#transactions,
      reruns: this.#reruns,
    };
  }

  async close(): Promise<void> {
    this.#open = false;
  }

  /** Applies a finished run atomically (after checking its conditions). */
  #commit(buf: TxnBuffer): void {
    for (const c of buf.compares) {
      const cur = this.#data.get(bytesId(c.key));
      const holds =
        'modRevision' in c ? (cur?.modRevision ?? 0) === c.modRevision : bytesEqual(cur?.value, c.value);
      if (!holds)
        throw new MetaCompareError(
          `transaction condition failed on key ${Buffer.from(c.key).toString('hex')}`,
        );
    }
    this.#transactions++;
    if (buf.writes.size === 0) return;
    const rev = ++this.#revision;
    for (const [id, w] of buf.writes) {
      if (w.value === undefined) {
        if (this.#data.delete(id)) this.#keys.splice(lowerBound(this.#keys, id), 1);
      } else {
        if (!this.#data.has(id)) this.#keys.splice(lowerBound(this.#keys, id), 0, id);
        this.#data.set(id, { value: Buffer.from(w.value), modRevision: rev });
      }
    }
  }

  readonly #direct: EngineReader = {
    get: (key) => {
      const s = this.#data.get(bytesId(key));
      return s === undefined ? undefined : Buffer.from(s.value);
    },
    getEntry: (key) => this.#entry(bytesId(key)),
    scanInterval: (iv) => this.#scan(iv),
  };

  #entry(id: string): MetaEntry | undefined {
    const s = this.#data.get(id);
    return s === undefined
      ? undefined
      : { key: idBytes(id), value: Buffer.from(s.value), modRevision: s.modRevision };
  }

  #scan(iv: Interval): MetaEntry[] {
    const out: MetaEntry[] = [];
    if (iv.limit === 0) return out;
    const loId = bytesId(iv.lo);
    const hiId = iv.hi === undefined ? undefined : bytesId(iv.hi);
    if (!iv.reverse) {
      for (let i = lowerBound(this.#keys, loId); i < this.#keys.length && out.length < iv.limit; i++) {
        const id = this.#keys[i] as string;
        if (hiId !== undefined && id >= hiId) break;
        out.push(this.#entry(id) as MetaEntry);
      }
    } else {
      const start = hiId === undefined ? this.#keys.length : lowerBound(this.#keys, hiId);
      for (let i = start - 1; i >= 0 && out.length < iv.limit; i--) {
        const id = this.#keys[i] as string;
        if (id < loId) break;
        out.push(this.#entry(id) as MetaEntry);
      }
    }
    return out;
  }

  /** Fetches what a run missed, after a simulated round trip. */
  async #fetch(snap: Snapshot, miss: ReadMiss): Promise<void> {
    await tick(this.#latencyMs);
    this.#assertOpen();
    if (miss.key !== undefined) snap.keys.set(miss.key, this.#entry(miss.key) ?? null);
    if (miss.iv !== undefined) snap.ranges.set(intervalId(miss.iv), this.#scan(miss.iv));
  }

  /** Whether everything a run read is still current. */
  #valid(snap: Snapshot): boolean {
    for (const [id, e] of snap.keys) {
      const cur = this.#data.get(id);
      if ((cur?.modRevision ?? 0) !== (e?.modRevision ?? 0)) return false;
    }
    for (const [ivId, entries] of snap.ranges) {
      const now = this.#scan(parseIntervalId(ivId));
      if (now.length !== entries.length) return false;
      for (let i = 0; i < now.length; i++) {
        const a = now[i] as MetaEntry;
        const b = entries[i] as MetaEntry;
        if (a.modRevision !== b.modRevision || compareBytes(a.key, b.key) !== 0) return false;
      }
    }
    return true;
  }

  #assertOpen(): void {
    if (!this.#open) throw metaClosed(this.engine);
  }
}

/** What one remote run has fetched so far. */
class Snapshot {
  readonly keys = new Map<string, MetaEntry | null>();
  readonly ranges = new Map<string, MetaEntry[]>();
  readonly reader: EngineReader = {
    get: (key) => this.#lookup(key)?.value,
    getEntry: (key) => this.#lookup(key),
    scanInterval: (iv) => {
      const hit = this.ranges.get(intervalId(iv));
      if (hit === undefined) throw new ReadMiss(undefined, iv);
      return hit.map((e) => ({ ...e, value: Buffer.from(e.value) }));
    },
  };

  #lookup(key: MetaKey): MetaEntry | undefined {
    const id = bytesId(key);
    const hit = this.keys.get(id);
    if (hit === undefined) {
      // A key already covered by a fetched range needs no round trip.
      for (const [ivId, entries] of this.ranges) {
        const iv = parseIntervalId(ivId);
        if (entries.length < iv.limit && inInterval(key, iv)) {
          const e = entries.find((x) => compareBytes(x.key, key) === 0);
          return e === undefined ? undefined : { ...e, value: Buffer.from(e.value) };
        }
      }
      throw new ReadMiss(id, undefined);
    }
    return hit === null ? undefined : { ...hit, value: Buffer.from(hit.value) };
  }
}

function intervalId(iv: Interval): string {
  return JSON.stringify([bytesId(iv.lo), iv.hi === undefined ? null : bytesId(iv.hi), iv.limit, iv.reverse]);
}

function parseIntervalId(s: string): Interval {
  const [lo, hi, limit, reverse] = JSON.parse(s) as [string, string | null, number, boolean];
  return { lo: idBytes(lo), hi: hi === null ? undefined : idBytes(hi), limit, reverse };
}

function lowerBound(arr: readonly string[], id: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((arr[mid] as string) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function tick(ms: number): Promise<void> {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
}
