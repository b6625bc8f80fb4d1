/**
 * What the engine knows about single keys: value (or absence) and modRevision, and the etcd
 * revision at which that was true. Transactions read from here instead of fetching, and every
 * such read is still validated at commit (a compare on the key's modRevision), so a stale entry
 * costs a re-run, never a wrong result. While this process is the only writer (the leader, fenced)
 * entries are almost always current and a transaction costs one round trip: its commit.
 *
 * Knowledge only moves forward: an entry is replaced only by knowledge from a later revision, so
 * a slow fetch can never put back a value a commit has already replaced. Bounded: entries not
 * used for a while are dropped (two generations of maps, like the namespace cache).
 */
export interface KnownEntry {
  /** undefined: the key does not exist. */
  readonly value: Buffer | undefined;
  /** 0 when absent. */
  readonly modRevision: number;
  /** The etcd revision at which this was observed. */
  readonly knownAt: number;
}

export class EntryCache {
  #young = new Map<string, KnownEntry>();
  #old = new Map<string, KnownEntry>();
  readonly #half: number;
  hits = 0;
  misses = 0;

  constructor(maxEntries: number) {
    this.#half = Math.max(1, Math.floor(maxEntries / 2));
  }

  get(id: string): KnownEntry | undefined {
    let e = this.#young.get(id);
    if (e === undefined) {
      e = this.#old.get(id);
      if (e !== undefined) this.#set(id, e);
    }
    if (e === undefined) this.misses++;
    else this.hits++;
    return e;
  }

  /** Records what was true at `knownAt`, unless something newer is known already. */
  learn(id: string, value: Buffer | undefined, modRevision: number, knownAt: number): void {
    const cur = this.#young.get(id) ?? this.#old.get(id);
    if (cur !== undefined && cur.knownAt > knownAt) return;
    this.#set(id, { value, modRevision, knownAt });
  }

  forget(id: string): void {
    this.#young.delete(id);
    this.#old.delete(id);
  }

  clear(): void {
    this.#young.clear();
    this.#old.clear();
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  #set(id: string, e: KnownEntry): void {
    this.#young.set(id, e);
    if (this.#young.size >= this.#half) {
      this.#old = this.#young;
      this.#young = new Map();
    }
  }
}
