export {
  planThin,
  parseStrataUri,
  parseOptionList,
  DEFAULT_FUSE_SUBTYPE,
  THIN_ENV_KEYS,
} from './thin-plan.js';
export type { ThinInputs, ThinPlan } from './thin-plan.js';
export { parseRuntimeSpec, isLegacyShape } from './runtime-config.js';
export type { RuntimeSpec, ComponentSpec, TierLevelSpec } from './runtime-config.js';
export {
  planCacheRole,
  masterAddresses,
  podDnsName,
  clusterIdFor,
  FLUID_COMPONENTS,
  COMPONENT_COMMAND,
} from './cache-plan.js';
export type { RolePlan, FluidComponent, CacheInputs } from './cache-plan.js';
export { deriveTiers } from './tiers.js';
export { parseQuantityBytes, renderBytes } from './quantity.js';
export { resolveOptionKey, coerceOption, configKeyKind } from './config-keys.js';
export { readJsonFile, parseJsonText, fileSecretReader, FLUID_SECRETS_DIR } from './inputs.js';
export type { SecretReader } from './inputs.js';
export {
  thinConfigPath,
  cacheConfigPath,
  confOutPath,
  THIN_CONFIG_PATHS,
  CACHE_CONFIG_PATHS,
  DEFAULT_STRATA_CONF_OUT,
} from './paths.js';
export { isReadOnly, unifiedPath, isFluidNativeScheme } from './fluid-json.js';
export type { FluidMount } from './fluid-json.js';
export { writeFileAtomic } from './write-file.js';
export {
  wantedMounts,
  planMountSync,
  ufsOptionKey,
  dataloadTarget,
  datasetMasterEndpoints,
  MAX_DATALOAD_REPLICAS,
} from './hooks.js';
export type { WantedMount, MountSync, DataloadTarget, DataloadPath } from './hooks.js';
export { watchFluidConfig, CONFIG_SETTLE_MS } from './config-watch.js';
export type { ConfigWatchOptions } from './config-watch.js';
