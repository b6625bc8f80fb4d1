/**
 * The one interface every proxy cache tier implements (memory L1; file, raw-disk and, later,
 * cluster L2). The HTTP layer never knows which engine holds an entry: it asks for a key, gets
 * the stored metadata and a ranged body reader, and writes new entries through a streaming
 * writer that followers of an in-progress fill can read back before it is committed.
 */
import type CachePolicy from 'http-cache-semantics';

export type HeaderPairs = [string, string][];

export interface SliceInfo {
  /** First byte of the slice within the whole object. */
  start: number;
  /** Last byte (inclusive), as in Content-Range. */
  end: number;
  /** Length of the whole object, from Content-Range. */
  totalBytes: number;
}

/** What is stored beside a body: enough to rebuild the response and decide on its reuse. */
export interface EntryMeta {
  /** Storage key: the primary key, plus a variant or slice suffix (see cache-key.ts). */
  key: string;
  status: number;
  /** Response headers as received from the origin, lower-case names, hop-by-hop removed. */
  headers: HeaderPairs;
  /** http-cache-semantics policy (freshness, validators, Vary request headers). */
  policy: CachePolicy.CachePolicyObject;
  /** Set on a Vary marker: the request header names the variants differ by. No body. */
  vary?: string[];
  /** Set on one slice of a sliced object. */
  slice?: SliceInfo;
  storedAtMs: number;
}

/** A stored entry found by `get`: its metadata and a reader of any byte range of its body. */
export interface StoreHit {
  readonly meta: EntryMeta;
  readonly bodyBytes: number;
  /**
   * Yields body bytes [start, endExclusive). Integrity is checked as bytes are read: a damaged
   * entry throws `CorruptEntryError` (and the store drops it) rather than yielding wrong bytes.
   */
  read(start: number, endExclusive: number): AsyncIterable<Buffer>;
  /** Releases what the hit holds (a file descriptor, a pin on raw-disk blocks). Idempotent. */
  release(): void;
}

/** A body being written. Nothing is visible to `get` until `commit` resolves. */
export interface StoreWriter {
  /** Appends bytes; rejects on I/O failure (the caller aborts and carries on without this tier). */
  write(chunk: Buffer): Promise<void>;
  /** Bytes accepted by `write` so far, all of which `readAt` can return. */
  readonly bytesWritten: number;
  /** Reads back already-written bytes, for readers that fell behind an in-progress fill. */
  readAt(offset: number, length: number): Promise<Buffer>;
  /** Publishes the entry atomically (a crash before this leaves no trace of it). */
  commit(): Promise<void>;
  abort(): Promise<void>;
  /** After commit: `readAt` is no longer needed (closes what it kept open). */
  dispose?(): void;
}

export interface StoreStats {
  entries: number;
  bytes: number;
  capacityBytes: number;
}

export interface PutOptions {
  /** Body length when the origin announced it (Content-Length); lets a store reserve space up front. */
  expectedBytes?: number;
  /** Body is compressible text (a store with compression enabled may compress it). */
  compressible?: boolean;
}

export interface ProxyStore {
  /** "memory", "file", "raw_disk", "cluster": for logs and metrics. */
  readonly kind: string;
  /** Resolves once the store can serve (index rebuilt). */
  ready(): Promise<void>;
  get(key: string): Promise<StoreHit | undefined>;
  /**
   * True only when the store knows without any I/O that `get(key)` would find nothing (an index
   * in memory); false means "look it up". Lets a plain miss go to the origin in the same turn of
   * the event loop that parsed the request. Stores without an in-memory index leave it out.
   */
  knownAbsent?(key: string): boolean;
  /** Starts writing an entry; undefined when this store declines it (too large, no space). */
  put(meta: EntryMeta, opts?: PutOptions): Promise<StoreWriter | undefined>;
  /** Replaces the metadata of a stored entry (a 304 refreshed its headers); false if absent. */
  updateMeta(meta: EntryMeta): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  /** Deletes an entry with all its variants and slices; returns how many entries went. */
  deleteFamily(primaryKey: string): Promise<number>;
  stats(): StoreStats;
  close(): Promise<void>;
}

/** Extra figures a raw-disk store reports (seed 004 metric names). */
export interface RawDiskStats {
  totalBlocks: number;
  usedBlocks: number;
  freeBlocks: number;
  fragmentationRate: number;
  entries: number;
}
