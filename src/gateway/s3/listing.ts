/**
 * S3 listings over a directory tree. S3 orders keys by their bytes, while a directory lists its
 * own names: a subdirectory `a` holds keys starting `a/`, which sort after a sibling file `a.txt`
 * ('.' < '/'). So each directory's entries are sorted by name + '/' for directories, and the
 * walk descends only into subtrees that can hold keys after the marker and under the prefix.
 * With the delimiter '/', a subdirectory below the prefix is one common prefix, not walked.
 */
import type { FileSystem } from '../../client/index.js';
import { FsError } from '../../common/errors.js';
import type { FileStatus } from '../../protocol/types.js';
import { toS3Error } from './errors.js';
import { compareKeys } from './keys.js';

/** Most entries of one directory a listing sorts in memory. */
export const MAX_DIR_ENTRIES_SORTED = 1_000_000;
/** Most keys (plus common prefixes) one listing page returns. */
export const MAX_LIST_KEYS = 1000;

export interface ListRequest {
  bucket: string;
  prefix: string;
  delimiter: string;
  /** Return only entries strictly after this key (marker, start-after, continuation). */
  after: string;
  maxKeys: number;
}

export interface ListedObject {
  key: string;
  size: number;
  mtimeMs: number;
  status: FileStatus;
}

export interface ListResult {
  objects: ListedObject[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix returned (the next marker when truncated). */
  last: string | undefined;
}

interface WalkEntry {
  key: string;
  dir: boolean;
  status: FileStatus;
}

export class Lister {
  readonly #fs: FileSystem;

  constructor(fs: FileSystem) {
    this.#fs = fs;
  }

  async list(req: ListRequest): Promise<ListResult> {
    const objects: ListedObject[] = [];
    const commonPrefixes: string[] = [];
    let last: string | undefined;
    let isTruncated = false;
    const count = (): number => objects.length + commonPrefixes.length;
    if (req.maxKeys === 0) return { objects, commonPrefixes, isTruncated: false, last };
    const slash = req.prefix.lastIndexOf('/');
    const baseKey = slash < 0 ? '' : req.prefix.slice(0, slash + 1);
    const root = `/${req.bucket}${baseKey === '' ? '' : `/${baseKey.slice(0, -1)}`}`;
    for await (const e of this.#walk(root, baseKey, req)) {
      let item: { key: string; prefix: boolean };
      if (e.dir) {
        item = { key: e.key, prefix: true };
      } else {
        const cp = commonPrefixOf(e.key, req.prefix, req.delimiter);
        item = cp === undefined ? { key: e.key, prefix: false } : { key: cp, prefix: true };
      }
      if (compareKeys(item.key, req.after) <= 0) continue;
      if (item.prefix && item.key === last) continue; // same common prefix as the previous key
      if (count() >= req.maxKeys) {
        isTruncated = true;
        break;
      }
      if (item.prefix) commonPrefixes.push(item.key);
      else objects.push({ key: e.key, size: e.status.size, mtimeMs: e.status.mtimeMs, status: e.status });
      last = item.key;
    }
    return { objects, commonPrefixes, isTruncated, last };
  }

  /**
   * Keys (and, for the '/' delimiter, whole subdirectories as common prefixes) under `dir`, whose
   * keys start with `keyPrefix`, in S3 order, skipping subtrees entirely at or before the marker.
   */
  async *#walk(dir: string, keyPrefix: string, req: ListRequest): AsyncGenerator<WalkEntry> {
    const entries = await this.#sortedEntries(dir, keyPrefix, req.bucket);
    for (const e of entries) {
      if (e.dir) {
        const sub = e.key; // ends with '/'
        if (!sub.startsWith(req.prefix) && !req.prefix.startsWith(sub)) continue;
        // Every key below `sub` starts with it: skip when they all sort at or before the marker.
        if (compareKeys(sub, req.after) <= 0 && !req.after.startsWith(sub)) continue;
        if (req.delimiter === '/' && sub.startsWith(req.prefix)) {
          // One common prefix stands for the whole subtree (empty directories hold no keys).
          if ((e.status.children ?? 1) > 0) yield e;
          continue;
        }
        yield* this.#walk(`${dir}/${e.status.name}`, sub, req);
      } else if (e.key.startsWith(req.prefix)) {
        yield e;
      }
    }
  }

  async #sortedEntries(dir: string, keyPrefix: string, bucket: string): Promise<WalkEntry[]> {
    const out: WalkEntry[] = [];
    try {
      for await (const st of this.#fs.entries(dir)) {
        if (st.type === 'dir') out.push({ key: `${keyPrefix}${st.name}/`, dir: true, status: st });
        else if (st.type === 'file') out.push({ key: `${keyPrefix}${st.name}`, dir: false, status: st });
        if (out.length > MAX_DIR_ENTRIES_SORTED) {
          throw new FsError(
            'E2BIG',
            `${dir}: more than ${MAX_DIR_ENTRIES_SORTED} entries to list in one folder`,
          );
        }
      }
    } catch (err) {
      // A prefix naming a folder that does not exist (or a file) simply matches nothing.
      if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) {
        if (keyPrefix === '') throw toS3Error(err, { bucket });
        return [];
      }
      throw toS3Error(err, { bucket });
    }
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }
}

/** The common prefix a key rolls up into: prefix + text up to and including the delimiter after it. */
export function commonPrefixOf(key: string, prefix: string, delimiter: string): string | undefined {
  if (delimiter === '') return undefined;
  const i = key.indexOf(delimiter, prefix.length);
  return i < 0 ? undefined : key.slice(0, i + delimiter.length);
}
