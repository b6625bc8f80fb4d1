/**
 * `strata report fluid-summary`: what Fluid's runtime shows on a Dataset (cache states), as one
 * JSON object with the keys Fluid reads: cached, cachedPercentage, cacheCapacity, cacheHitRatio,
 * ufsTotal, fileNum. Values are strings the way Fluid displays them ("1.50GiB", "42.0%", "17").
 */
import type { CacheReport } from '../../client/filesystem.js';
import { formatBytes } from '../../common/units.js';

export interface FluidSummary {
  cached: string;
  cachedPercentage: string;
  cacheCapacity: string;
  cacheHitRatio: string;
  ufsTotal: string;
  fileNum: string;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : '0.0%';
}

/**
 * The hit ratio is over block reads the master located for files under mounts since it started:
 * a block with a cached copy is a hit, one read through from the UFS a miss.
 */
export function fluidSummary(r: CacheReport): FluidSummary {
  return {
    cached: formatBytes(r.cachedBytes),
    cachedPercentage: percent(r.cachedBytes, r.ufsTotalBytes),
    cacheCapacity: formatBytes(r.capacityBytes),
    cacheHitRatio: percent(r.cacheHitBlocks, r.cacheHitBlocks + r.cacheMissBlocks),
    ufsTotal: formatBytes(r.ufsTotalBytes),
    fileNum: String(r.fileNum),
  };
}
