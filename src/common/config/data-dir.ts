/**
 * The `worker.data_dir` grammar of the seeds: `[TYPE:CAP]path`, `[TYPE]path`, `[CAP]path`
 * (DISK), or a bare `path` (DISK, whole filesystem). Written as an array or one comma-joined
 * string. Unknown types are an error, never a silent fallback to DISK.
 */
import { SIZE_HELP, parseSize } from '../units.js';

/** Tier types from fastest to slowest; eviction demotes down this order. */
export const STORAGE_TYPES = ['MEM', 'NVME', 'SSD', 'DISK', 'HDD'] as const;
export type StorageType = (typeof STORAGE_TYPES)[number];

export function storageRank(t: StorageType): number {
  return STORAGE_TYPES.indexOf(t);
}

export function parseStorageType(text: string): StorageType | undefined {
  const up = text.trim().toUpperCase();
  return (STORAGE_TYPES as readonly string[]).includes(up) ? (up as StorageType) : undefined;
}

export interface DataDir {
  storage_type: StorageType;
  /** Declared capacity in bytes; null means "the whole filesystem". */
  capacity: number | null;
  path: string;
}

export type DataDirResult = { ok: true; value: DataDir } | { ok: false; message: string };

export function parseDataDirEntry(entry: string): DataDirResult {
  const text = entry.trim();
  if (text === '')
    return { ok: false, message: 'empty entry (expected "[TYPE:CAP]path", "[TYPE]path" or "path")' };
  const m = /^\[([^\]]*)\](.*)$/.exec(text);
  if (m === null) {
    if (text.includes('[') || text.includes(']')) {
      return {
        ok: false,
        message: `malformed entry "${text}" (expected "[TYPE:CAP]path", "[TYPE]path" or "path")`,
      };
    }
    return checkPath({ storage_type: 'DISK', capacity: null, path: text });
  }
  const inside = (m[1] ?? '').trim();
  const path = (m[2] ?? '').trim();
  const parts = inside.split(':');
  if (parts.length > 2 || inside === '') {
    return { ok: false, message: `malformed tag "[${inside}]" (expected [TYPE], [TYPE:CAP] or [CAP])` };
  }
  let type: StorageType = 'DISK';
  let capacity: number | null = null;
  const first = (parts[0] ?? '').trim();
  if (parts.length === 2) {
    const t = parseStorageType(first);
    if (t === undefined) return { ok: false, message: unknownType(first) };
    type = t;
    const cap = parseSize((parts[1] ?? '').trim());
    if (cap === undefined || cap === 0) {
      return { ok: false, message: `bad capacity "${parts[1]}" (expected ${SIZE_HELP}, above zero)` };
    }
    capacity = cap;
  } else {
    const t = parseStorageType(first);
    if (t !== undefined) type = t;
    else {
      const cap = parseSize(first);
      if (cap === undefined || !/\d/.test(first)) return { ok: false, message: unknownType(first) };
      if (cap === 0) return { ok: false, message: `bad capacity "${first}" (expected a size above zero)` };
      capacity = cap;
    }
  }
  return checkPath({ storage_type: type, capacity, path });
}

function checkPath(d: DataDir): DataDirResult {
  if (d.path === '') return { ok: false, message: 'missing directory path after the tag' };
  if (!d.path.startsWith('/')) return { ok: false, message: `path "${d.path}" must be absolute` };
  return { ok: true, value: d };
}

function unknownType(t: string): string {
  return `unknown storage type "${t}" (expected ${STORAGE_TYPES.join(', ')})`;
}

/** Splits the comma-joined form; an array may itself hold comma-joined strings. */
export function splitDataDirs(raw: string | readonly string[]): string[] {
  const list = typeof raw === 'string' ? [raw] : raw;
  return list
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
