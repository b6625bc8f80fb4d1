/** Public face of the edge proxy (seed 004). */
export { ProxyServer, liveSettings } from './server.js';
export type { BoundAddresses } from './server.js';
export {
  loadProxyConfig,
  parseProxyConfigText,
  formatProxyConfig,
  maskProxySecrets,
  changedKeys,
  proxyConfigSchema,
  LIVE_KEYS,
  L2_BACKENDS,
} from './config.js';
export type { ProxyConfig, LoadedProxyConfig, L2Backend } from './config.js';
export type {
  ProxyStore,
  StoreHit,
  StoreWriter,
  EntryMeta,
  StoreStats,
  RawDiskStats,
} from './store/types.js';
export { MemoryStore } from './store/memory.js';
export { FileStore } from './store/file.js';
export { RawDiskStore } from './store/raw-disk/store.js';
export { S3FifoPolicy } from './store/s3fifo.js';
