/**
 * The FUSE front end: Strata's namespace as a POSIX mount, built on the client library only.
 */
export { FuseService, DEFAULT_MOUNT_OPTIONS, FUSE_FS_NAME, splitOptions } from './service.js';
export type { FuseServiceOptions } from './service.js';
export type {
  FuseBinding,
  FuseContext,
  FuseOperations,
  FuseAttr,
  FuseStatfs,
  MountOptions,
  MountedFs,
} from './binding.js';
export { NativeFuseBinding } from './native-engine.js';
export { KernelFuseBinding } from './kernel/engine.js';
export { StrataFs } from './strata-fs.js';
export { listMounts, mountAt, prepareMountPoint } from './mount-point.js';
