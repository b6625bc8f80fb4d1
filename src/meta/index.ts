/** The metadata store: interface, engines, and opening the one a configuration names. */
export * from './store.js';
export { MetaError, MetaCompareError } from './errors.js';
export { compareBytes, bytesEqual, prefixEnd, readU64, writeU64 } from './bytes.js';
export { isLmdbCommitFailure, LmdbStore, LMDB_FILE_NAME } from './lmdb/lmdb-store.js';
export type { LmdbStoreOptions, LmdbDurability } from './lmdb/lmdb-store.js';
export { MemoryStore } from './memory/memory-store.js';
export type { MemoryStoreOptions } from './memory/memory-store.js';
