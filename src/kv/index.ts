/**
 * The KV cache node (`strata kv`, seed 002): a consistent-hash cluster of in-memory LRU caches
 * with an HTTP API and an optional Redis (RESP2) listener. See docs/kv.md.
 */
export { loadKvConfig, parseKvConfigText, describeKvConfig, DEFAULT_KV_CONFIG_PATH } from './config.js';
export type { KvConfig, KvLimits, LoadedKvConfig } from './config.js';
export { startKvNode } from './node.js';
export type { KvNode } from './node.js';
export { HashRing, relativeStdDev } from './ring.js';
export { murmur3Bytes, murmur3String } from './hash.js';
export { LruStore } from './store.js';
export type { StoreLimits, EvictionReason } from './store.js';
export { KvError } from './errors.js';
export type { KvErrorCode } from './errors.js';
