/**
 * The UFS module's public face: the interface, the factory, URIs, options and paths. Engines are
 * reached only through `openUfs`.
 */
export type {
  UfsCallOptions,
  UfsCapabilities,
  UfsEntryType,
  UfsListOptions,
  UfsListPage,
  UfsRead,
  UfsReadOptions,
  UfsScheme,
  UfsStatus,
  UfsValidator,
  UfsWriteOptions,
  UnderFileSystem,
} from './ufs.js';
export { openUfs, validateUfs } from './factory.js';
export type { OpenUfsOptions } from './factory.js';
export { UFS_SCHEMES, defaultMountPath, parseUfsUri, redactUri } from './uri.js';
export type { UfsUri } from './uri.js';
export { UFS_OPTION_SPECS, checkUfsOptionKeys, isSecretUfsOption, maskUfsOptions } from './options.js';
export type { RawUfsOptions } from './options.js';
export { normaliseUfsPath, ufsBaseName, ufsIsWithin, ufsJoin, ufsParent, ufsPathParts } from './paths.js';
export { checkValidator, normaliseEtag } from './validator.js';
export { UFS_LIST_PAGE_MAX } from './limits.js';
export { UfsMetrics } from './metrics.js';
