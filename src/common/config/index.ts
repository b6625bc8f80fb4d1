export {
  loadConfig,
  parseConfigText,
  defaultConfig,
  resolveConfigPath,
  maskSecrets,
  parseEndpoints,
  DEFAULT_CONF_PATH,
} from './load.js';
export type { LoadOptions, LoadedConfig, RawOverride } from './load.js';
export {
  clusterConfigSchema,
  DEFAULT_WATERMARKS,
  WORKER_POLICIES,
  TTL_ACTIONS,
  LOCAL_READ_VERIFY_MODES,
  WRITE_TYPES,
  META_STORES,
  SECRET_KEYS,
} from './schema.js';
export type {
  ClusterConfig,
  MasterAddr,
  WorkerPolicy,
  TtlAction,
  WriteType,
  LocalReadVerify,
} from './schema.js';
export {
  STORAGE_TYPES,
  storageRank,
  parseStorageType,
  parseDataDirEntry,
  splitDataDirs,
} from './data-dir.js';
export type { StorageType, DataDir } from './data-dir.js';
