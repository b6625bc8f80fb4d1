/**
 * The MetaStore: an ordered, transactional key-value store behind one interface, so the master's
 * namespace runs unchanged on the embedded LMDB engine and on etcd (HA).
 *
 * Keys and values are bytes; keys order byte-wise (memcmp, a shorter key before its extensions).
 * Every stored entry carries a `modRevision`: the store-wide revision of the transaction that last
 * wrote it. Revisions only grow, like etcd's, so a compare-on-revision fences stale writers.
 *
 * Transactions are interactive and serializable: `transaction(fn)` runs `fn` against a view that
 * sees every earlier committed transaction, and its writes commit atomically or not at all.
 * `fn` is synchronous and MAY RUN MORE THAN ONCE: an engine whose data is remote (etcd) runs it
 * against a local snapshot, and when `fn` reads a key the snapshot lacks, or when validation at
 * commit finds that something `fn` read has changed, it discards the run and runs `fn` again.
 * So `fn` must be a pure function of what it reads through the transaction (no side effects
 * outside the returned value), and must not catch exceptions it does not own (an engine's
 * internal signals travel as exceptions). A throw from `fn` aborts the transaction: nothing it
 * wrote is applied, and the promise rejects with what was thrown.
 *
 * The promise of `transaction` resolves only when the commit is durable (on disk for LMDB, on a
 * quorum for etcd). Engines batch concurrent transactions into one physical commit (group commit).
 */

/** Keys are raw bytes. */
export type MetaKey = Uint8Array;
export type MetaValue = Uint8Array;

/** Largest key every engine accepts (LMDB's limit is near 2 KB; keep well inside it). */
export const META_MAX_KEY_BYTES = 1024;
/** Largest value every engine accepts (etcd's default request limit is 1.5 MiB per transaction). */
export const META_MAX_VALUE_BYTES = 1024 * 1024;
/** Most entries one scan returns; callers page with `start` past the last key. */
export const META_MAX_SCAN_LIMIT = 100_000;
/** Most keys one transaction may write (bounds commit size and memory). */
export const META_MAX_TXN_WRITES = 200_000;

export interface MetaEntry {
  key: MetaKey;
  value: MetaValue;
  /** Revision of the transaction that last wrote this key. */
  modRevision: number;
}

/**
 * A key range. `prefix` selects keys starting with those bytes; `start` (inclusive) and `end`
 * (exclusive) narrow it further. `reverse` walks from the end. `limit` is required to be at most
 * META_MAX_SCAN_LIMIT (the default).
 */
export interface ScanOptions {
  prefix?: MetaKey;
  start?: MetaKey;
  end?: MetaKey;
  limit?: number;
  reverse?: boolean;
}

/** A condition a transaction checks at commit; unmet, the transaction fails with STRATA_META_COMPARE_FAILED. */
export type MetaCompare =
  /** The key's modRevision equals this (0 = the key does not exist). */
  | { key: MetaKey; modRevision: number }
  /** The key's value equals these bytes (undefined = the key does not exist). */
  | { key: MetaKey; value: MetaValue | undefined };

/** Reads inside a transaction or a snapshot: synchronous, consistent with each other. */
export interface MetaReader {
  get(key: MetaKey): MetaValue | undefined;
  getEntry(key: MetaKey): MetaEntry | undefined;
  /** Entries in key order (or reverse), at most `limit`. */
  scan(opts: ScanOptions): MetaEntry[];
}

export interface MetaTxn extends MetaReader {
  /**
   * Later reads in this transaction see the write. The store takes the bytes as they are (no
   * copy): the caller must not modify `key` or `value` until the transaction has settled.
   */
  put(key: MetaKey, value: MetaValue): void;
  /** Deleting an absent key is not an error. */
  delete(key: MetaKey): void;
  /** Adds a commit-time condition (checked atomically with the commit). */
  compare(cond: MetaCompare): void;
}

export interface MetaStoreStats {
  engine: string;
  /** The store's current revision. */
  revision: number;
  /** Physical commits (batches) and logical transactions so far in this process. */
  commits: number;
  transactions: number;
  /** Runs of transaction functions beyond the first (remote engines re-run on conflicts). */
  reruns: number;
  /** Bytes the engine uses on disk, when known. */
  sizeBytes?: number;
  /**
   * Seconds physical commits took so far, each from its first write to its durable end (time
   * waiting behind the commit before it included), when the engine measures it.
   */
  commitSeconds?: number;
}

export interface MetaStore {
  readonly engine: string;
  /**
   * True when the engine runs transaction functions one at a time, in commit order, each against
   * the latest state including every earlier function's writes, and never re-runs them (LMDB:
   * one writer). Layers above may then take reads of keys no pending transaction wrote from
   * their own cache of committed state. False for optimistic engines (etcd), where every read
   * must go through the transaction to be validated at commit.
   */
  readonly serialTransactions: boolean;
  /** True between open and close. */
  readonly isOpen: boolean;

  /** Runs a read-only function against one consistent snapshot at least as new as every resolved commit. */
  read<T>(fn: (r: MetaReader) => T): Promise<T>;
  /** Runs `fn` in a serializable transaction (see the module comment: `fn` may be re-run). */
  transaction<T>(fn: (tx: MetaTxn) => T): Promise<T>;

  get(key: MetaKey): Promise<MetaValue | undefined>;
  scan(opts: ScanOptions): Promise<MetaEntry[]>;
  put(key: MetaKey, value: MetaValue): Promise<void>;
  delete(key: MetaKey): Promise<void>;

  stats(): MetaStoreStats;
  /** Finishes pending commits and closes; later calls fail with STRATA_META_CLOSED. */
  close(): Promise<void>;
}

/** Opens a store of one engine at one location; the conformance suite takes one of these. */
export type MetaStoreFactory = () => Promise<MetaStore>;
