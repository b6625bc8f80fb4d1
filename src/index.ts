/**
 * The `strata` package's public API: the file system client (SDK), the configuration loader it
 * takes its settings from, the errors it throws and the protocol's data types.
 *
 * ```ts
 * import { FileSystem, loadConfig } from 'strata';
 * const fs = await FileSystem.connect({ config: loadConfig().config });
 * ```
 */
export * from './client/index.js';
export { loadConfig, parseConfigText, defaultConfig } from './common/config/index.js';
export type { ClusterConfig, LoadedConfig, StorageType, TtlAction } from './common/config/index.js';
export {
  StrataError,
  FsError,
  UsageError,
  TimeoutError,
  ConfigError,
  POSIX_CODES,
  POSIX_WORDS,
  ERRNO,
} from './common/errors.js';
export type { PosixCode } from './common/errors.js';
export { HOLE_BLOCK_ID } from './protocol/types.js';
export type {
  FileStatus,
  FileType,
  FileBlock,
  LocatedBlock,
  WorkerAddress,
  WorkerInfo,
  WorkerState,
  TierUsage,
  Caller,
  MasterInfo,
} from './protocol/types.js';
export { STRATA_VERSION } from './common/version.js';
