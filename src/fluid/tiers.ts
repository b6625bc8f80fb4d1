/**
 * Fluid tiered-store levels → `worker.data_dir` entries and per-tier watermarks. A level is
 * mounted by Fluid at `/etc/fluid/mount/tiered-store/level-<L>-index-<P>-emptydir|hostpath`, with
 * one quota per path (Kubernetes quantities) and `high`/`low` fractions for the whole level.
 */
import { parseStorageType, STORAGE_TYPES } from '../common/config/index.js';
import type { StorageType } from '../common/config/index.js';
import type { ConfigProblem } from '../common/errors.js';
import { parseQuantityBytes, QUANTITY_HELP, renderBytes } from './quantity.js';
import type { TierLevelSpec } from './runtime-config.js';

export interface DerivedTiers {
  /** `[TYPE:CAP]path` entries, fastest level first, as Fluid orders them. */
  dataDirs: string[];
  watermarks: Partial<Record<StorageType, { high?: number; low?: number }>>;
  /** The directories themselves, to create before the worker starts. */
  paths: string[];
}

/** Medium types a level may name; Fluid writes MEM, SSD or HDD. */
export const FLUID_MEDIUM_HELP = `expected ${STORAGE_TYPES.join(', ')}`;

function parseFraction(
  text: string | undefined,
  where: string,
  problems: ConfigProblem[],
): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0 || v > 1) {
    problems.push({ key: where, message: 'expected a fraction greater than 0 and at most 1', value: text });
    return undefined;
  }
  return v;
}

export function deriveTiers(
  levels: readonly TierLevelSpec[],
  problems: ConfigProblem[],
  warnings: string[],
): DerivedTiers {
  const out: DerivedTiers = { dataDirs: [], watermarks: {}, paths: [] };
  for (const level of levels) {
    const w = level.where;
    let type: StorageType = 'DISK';
    if (level.mediumType !== undefined) {
      const t = parseStorageType(level.mediumType);
      if (t === undefined) {
        problems.push({
          key: `${w}.mediumType`,
          message: `unknown medium (${FLUID_MEDIUM_HELP})`,
          value: level.mediumType,
        });
        continue;
      }
      type = t;
    }
    if (level.mountPaths.length === 0) {
      problems.push({ key: `${w}.mountPaths`, message: 'at least one path is required' });
      continue;
    }
    // One quota per path; a single quota for several paths is shared equally (as Fluid does);
    // no quota means the whole filesystem of each path.
    const q = level.quotas;
    if (q.length !== 0 && q.length !== 1 && q.length !== level.mountPaths.length) {
      problems.push({
        key: `${w}.quotas`,
        message: `expected one quota per path (${level.mountPaths.length}), or one for all (got ${q.length})`,
        value: q,
      });
      continue;
    }
    level.mountPaths.forEach((path, i) => {
      if (!path.startsWith('/')) {
        problems.push({ key: `${w}.mountPaths[${i}]`, message: 'must be an absolute path', value: path });
        return;
      }
      let capBytes: number | undefined;
      if (q.length > 0) {
        const qi = q.length === 1 ? 0 : i;
        const text = q[qi] ?? '';
        const bytes = parseQuantityBytes(text);
        if (bytes === undefined || bytes === 0) {
          problems.push({
            key: `${w}.quotas[${qi}]`,
            message: `expected ${QUANTITY_HELP}, above zero`,
            value: text,
          });
          return;
        }
        capBytes = q.length === 1 ? Math.floor(bytes / level.mountPaths.length) : bytes;
      }
      out.dataDirs.push(
        capBytes === undefined ? `[${type}]${path}` : `[${type}:${renderBytes(capBytes)}]${path}`,
      );
      out.paths.push(path);
    });
    const high = parseFraction(level.high, `${w}.high`, problems);
    const low = parseFraction(level.low, `${w}.low`, problems);
    if (high !== undefined && low !== undefined && low >= high) {
      problems.push({ key: `${w}.low`, message: `must be below high (${high})`, value: level.low });
      continue;
    }
    if (high === undefined && low === undefined) continue;
    const prev = out.watermarks[type];
    if (prev !== undefined) {
      if (prev.high !== high || prev.low !== low) {
        warnings.push(
          `${w}: a second ${type} level with other watermarks; Strata keeps one pair per tier type and uses the first`,
        );
      }
      continue;
    }
    out.watermarks[type] = {
      ...(high === undefined ? {} : { high }),
      ...(low === undefined ? {} : { low }),
    };
  }
  return out;
}
