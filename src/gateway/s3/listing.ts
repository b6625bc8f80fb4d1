/**
 * S3 listings over a directory tree. S3 orders keys by their bytes, while a directory lists its
 * own names: a subdirectory `a` holds keys starting `a/`, which sort after a sibling file `a.txt`
 * ('.' < '/'). So each directory's entries are turned into keys (escaped names decoded, see
 * keys.ts: `.s3~l~` is `a/`'s empty segment, `.s3~o~a` the object `a` beside the folder `a`)
 * and sorted by key, with '/' after a folder's, and the walk descends only into subtrees that
 * can hold keys after the marker and under the prefix. No two entries' key ranges interleave
 * (a folder's keys all start with its key, which no sibling's key does), so the merge is a sort.
 * With the delimiter '/', a subdirectory below the prefix is one common prefix, not walked.
 */
import type { FileSystem } from '../../client/index.js';
import { FsError } from '../../common/errors.js';
import type { FileStatus } from '../../protocol/types.js';
import { toS3Error } from './errors.js';
import { NAME_XATTR, compareKeys, decodeName, prefixDirPath } from './keys.js';

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
  /** The file holding it. */
  path: string;
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
  /** A file beside a folder of its name (loses to a file at the natural path, as lookups do). */
  beside: boolean;
  path: string;
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
    const root = prefixDirPath(req.bucket, baseKey);
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
      else
        objects.push({
          key: e.key,
          path: e.path,
          size: e.status.size,
          mtimeMs: e.status.mtimeMs,
          status: e.status,
        });
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
        yield* this.#walk(e.path, sub, req);
      } else if (e.key.startsWith(req.prefix)) {
        yield e;
      }
    }
  }

  async #sortedEntries(dir: string, keyPrefix: string, bucket: string): Promise<WalkEntry[]> {
    const out: WalkEntry[] = [];
    try {
      for await (const st of this.#fs.entries(dir)) {
        const e = await this.#entry(dir, keyPrefix, st);
        if (e !== undefined) out.push(e);
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
    out.sort((a, b) => compareKeys(a.key, b.key) || Number(a.beside) - Number(b.beside));
    // A file at the natural path and a stale one beside the folder (a crash between the two
    // steps of making the folder): the natural one is the object, as for lookups.
    return out.filter((e, i) => i === 0 || e.dir || e.key !== out[i - 1]?.key);
  }

  /** The key of one directory entry; undefined for names that are no key (unknown reserved names). */
  async #entry(dir: string, keyPrefix: string, st: FileStatus): Promise<WalkEntry | undefined> {
    const decoded = decodeName(st.name);
    if (decoded === undefined || (st.type !== 'file' && st.type !== 'dir')) return undefined;
    const path = `${dir}/${st.name}`;
    let segment = decoded.segment;
    if (segment === undefined) {
      // A hashed name: the segment is in an attribute of the entry.
      const raw = await this.#fs.getXattr(path, NAME_XATTR).catch(() => undefined);
      if (raw === undefined) return undefined;
      segment = raw.toString();
    }
    if (st.type === 'dir') {
      if (decoded.beside) return undefined; // objects beside folders are files
      return { key: `${keyPrefix}${segment}/`, dir: true, beside: false, path, status: st };
    }
    return { key: `${keyPrefix}${segment}`, dir: false, beside: decoded.beside, path, status: st };
  }
}

/** The common prefix a key rolls up into: prefix + text up to and including the delimiter after it. */
export function commonPrefixOf(key: string, prefix: string, delimiter: string): string | undefined {
  if (delimiter === '') return undefined;
  const i = key.indexOf(delimiter, prefix.length);
  return i < 0 ? undefined : key.slice(0, i + delimiter.length);
}
