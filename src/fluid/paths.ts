/**
 * Where Fluid puts things in a pod, and where Strata writes the configuration it derives. Lookups
 * take an `exists` function so the choice is tested without touching /etc.
 */
import { existsSync } from 'node:fs';

/** ThinRuntime: current Fluid, then Fluid before the config moved into a directory. */
export const THIN_CONFIG_PATHS: readonly string[] = [
  '/etc/fluid/config/config.json',
  '/etc/fluid/config.json',
];

/** CacheRuntime, when FLUID_RUNTIME_CONFIG_PATH is not set: current shape, then the legacy one. */
export const CACHE_CONFIG_PATHS: readonly string[] = [
  '/etc/fluid/config/runtime.json',
  '/etc/fluid/config/config.json',
];

/** Where the derived cluster configuration goes unless STRATA_CONF_FILE or --conf-out says. */
export const DEFAULT_STRATA_CONF_OUT = '/opt/strata/conf/strata-cluster.toml';

export type Exists = (path: string) => boolean;

export function firstExisting(paths: readonly string[], exists: Exists = existsSync): string | undefined {
  return paths.find((p) => exists(p));
}

export function thinConfigPath(
  explicit: string | undefined,
  exists: Exists = existsSync,
): string | undefined {
  if (explicit !== undefined && explicit !== '') return explicit;
  return firstExisting(THIN_CONFIG_PATHS, exists);
}

export function cacheConfigPath(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  exists: Exists = existsSync,
): string | undefined {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromEnv = env.FLUID_RUNTIME_CONFIG_PATH;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return firstExisting(CACHE_CONFIG_PATHS, exists);
}

export function confOutPath(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromEnv = env.STRATA_CONF_FILE;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_STRATA_CONF_OUT;
}
