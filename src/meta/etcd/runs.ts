/**
 * What one run of a transaction (or snapshot) function may read, and what it did read.
 *
 * - OptimisticRun: reads come from what this run fetched, then from the engine's entry cache;
 *   anything else is a ReadMiss (fetched at the latest revision, then the function runs again).
 *   Nothing is assumed consistent while the function runs: at commit every key read is compared
 *   on its modRevision and every scanned range is checked for changes since it was fetched, in
 *   the same etcd transaction as the writes. Most transactions cost one round trip: the commit.
 * - SnapshotRun: every read at one etcd revision R (the first fetch fixes it, and checks that no
 *   big transaction was half-applied at R). Used for `read()`, and for transactions whose reads
 *   are too many to compare one by one: those commit only if nothing at all committed since R.
 */
import { bytesId, compareBytes, idBytes, inInterval } from '../bytes.js';
import type { Interval } from '../bytes.js';
import type { MetaEntry, MetaKey } from '../store.js';
import type { EngineReader } from '../txn-buffer.js';
import type { EntryCache, KnownEntry } from './entry-cache.js';

/** Thrown inside a run that needs data not fetched yet; never escapes the engine. */
export class ReadMiss extends Error {
  constructor(
    readonly key: Buffer | undefined,
    readonly iv: Interval | undefined,
  ) {
    super('metadata read miss (internal: the transaction function runs again)');
  }
}

/** A scan as fetched: the revision it was read at and what it returned. */
export interface FetchedRange {
  readonly iv: Interval;
  readonly entries: readonly MetaEntry[];
  readonly revision: number;
}

export function intervalId(iv: Interval): string {
  return `${bytesId(iv.lo)}\u0000${iv.hi === undefined ? '\u0001' : `\u0002${bytesId(iv.hi)}`}\u0000${iv.limit}\u0000${iv.reverse ? 1 : 0}`;
}

function copyEntry(e: MetaEntry): MetaEntry {
  return { key: Buffer.from(e.key), value: Buffer.from(e.value), modRevision: e.modRevision };
}

/** A get of `key` answered by a fetched range, when the range holds everything in its interval. */
function fromRanges(
  ranges: Iterable<[string, FetchedRange]>,
  key: MetaKey,
): [string, MetaEntry | null] | undefined {
  for (const [id, r] of ranges) {
    if (r.entries.length < r.iv.limit && inInterval(key, r.iv)) {
      const e = r.entries.find((x) => compareBytes(x.key, key) === 0);
      return [id, e ?? null];
    }
  }
  return undefined;
}

export class OptimisticRun {
  readonly #cache: EntryCache;
  /** What this transaction fetched or took from the cache, kept across its re-runs. */
  readonly #known = new Map<string, KnownEntry>();
  readonly #ranges = new Map<string, FetchedRange>();
  /** What the current run of the function read: key id → modRevision seen (0 = absent). */
  readonly gets = new Map<string, number>();
  readonly rangesRead = new Set<string>();

  constructor(cache: EntryCache) {
    this.#cache = cache;
  }

  /** Starts a run of the function: forgets what the previous run read (not what it fetched). */
  begin(): void {
    this.gets.clear();
    this.rangesRead.clear();
  }

  addKnown(id: string, e: KnownEntry): void {
    this.#known.set(id, e);
  }

  addRange(r: FetchedRange): void {
    this.#ranges.set(intervalId(r.iv), r);
  }

  range(id: string): FetchedRange | undefined {
    return this.#ranges.get(id);
  }

  readonly reader: EngineReader = {
    get: (key) => this.#lookup(key)?.value,
    getEntry: (key) => this.#lookup(key),
    scanInterval: (iv) => {
      const id = intervalId(iv);
      const r = this.#ranges.get(id);
      if (r === undefined) throw new ReadMiss(undefined, iv);
      this.rangesRead.add(id);
      return r.entries.map(copyEntry);
    },
  };

  #lookup(key: MetaKey): MetaEntry | undefined {
    const id = bytesId(key);
    let k = this.#known.get(id);
    if (k === undefined) {
      const covered = fromRanges(this.#ranges, key);
      if (covered !== undefined) {
        this.rangesRead.add(covered[0]);
        return covered[1] === null ? undefined : copyEntry(covered[1]);
      }
      k = this.#cache.get(id);
      if (k === undefined) throw new ReadMiss(Buffer.from(key), undefined);
      // Keep what this transaction saw, so its re-runs agree even if the cache moves on.
      this.#known.set(id, k);
    }
    this.gets.set(id, k.modRevision);
    return k.value === undefined
      ? undefined
      : { key: Buffer.from(key), value: Buffer.from(k.value), modRevision: k.modRevision };
  }

  /** Keys this run read one by one, as bytes. */
  *getKeys(): Iterable<[Buffer, number]> {
    for (const [id, rev] of this.gets) yield [idBytes(id), rev];
  }
}

export class SnapshotRun {
  /** The revision every read is at; undefined until the first fetch. */
  revision: number | undefined;
  readonly keys = new Map<string, MetaEntry | null>();
  readonly ranges = new Map<string, FetchedRange>();

  readonly reader: EngineReader = {
    get: (key) => this.#lookup(key)?.value,
    getEntry: (key) => this.#lookup(key),
    scanInterval: (iv) => {
      const r = this.ranges.get(intervalId(iv));
      if (r === undefined) throw new ReadMiss(undefined, iv);
      return r.entries.map(copyEntry);
    },
  };

  #lookup(key: MetaKey): MetaEntry | undefined {
    const id = bytesId(key);
    const hit = this.keys.get(id);
    if (hit === undefined) {
      const covered = fromRanges(this.ranges, key);
      if (covered !== undefined) return covered[1] === null ? undefined : copyEntry(covered[1]);
      throw new ReadMiss(Buffer.from(key), undefined);
    }
    return hit === null ? undefined : copyEntry(hit);
  }
}
