/**
 * The client library's public face: the FileSystem SDK, its handles and options. Front ends
 * (CLI, FUSE, S3 gateway, proxy cluster tier, Fluid) import from here only.
 */
export { FileSystem, normalisePath } from './filesystem.js';
export type {
  FileSystemOptions,
  MkdirOptions,
  ListOptions,
  SetAttrOptions,
  ContentSummary,
  ClusterInfo,
  MountRequest,
  CacheReport,
  FreeResult,
} from './filesystem.js';
export type { MountInfo, LoadJobStatus } from '../protocol/ufs-types.js';
export { FileReader } from './file-reader.js';
export type { LocalBlockFile, ReadStreamOptions } from './file-reader.js';
export { FileWriter, FileWriteStream } from './file-writer.js';
export type { CloseOptions, CreateOptions } from './file-writer.js';
export { RandomWriteHandle, MAX_DIRTY_BYTES_PER_HANDLE } from './random-writer.js';
export type { OpenForWriteOptions } from './random-writer.js';
export { settingsFromConfig, DEFAULT_MEMORY_BUDGET_BYTES } from './settings.js';
export type { ClientSettings } from './settings.js';
export { localHostId } from './host-id.js';
export { isUnreachable } from './errors.js';
export type { RpcChannel, RpcConnector, ChannelOptions } from './transport.js';
