/**
 * The mount table: which UFS is mounted where, persistent in the MetaStore and held in memory
 * for path resolution (longest mount path that is the path or an ancestor of it). Mounts never
 * nest or overlap: neither their paths nor their UFS roots may contain one another.
 */
import { Packr } from 'msgpackr';
import type { StorageType } from '../../common/config/data-dir.js';
import type { TtlAction, WriteType } from '../../common/config/schema.js';
import { FsError } from '../../common/errors.js';
import type { MetaStore } from '../../meta/index.js';
import type { MountInfo } from '../../protocol/ufs-types.js';
import { maskUfsOptions, parseUfsUri } from '../../ufs/index.js';
import { decodeU64, encodeU64, mountKey, mountPrefix, mountSeqKey } from './keys.js';

/** Most mounts a cluster holds (each costs an open UFS client on the master and its workers). */
export const MAX_MOUNTS = 1000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** A mount as stored: like MountInfo, with the options in clear (secrets included). */
export interface MountRecord {
  mountId: number;
  path: string;
  uri: string;
  options: Record<string, string>;
  writeType: WriteType;
  readVerifyUfs: boolean;
  autoCache: boolean;
  ttlMs: number;
  ttlAction: TtlAction;
  replicas: number;
  blockSize: number;
  storageType: StorageType | undefined;
  readOnly: boolean;
  /** Mounted read-only: every change under it fails with EROFS (absent in records stored before it). */
  mountReadOnly?: boolean;
  createdAtMs: number;
}

/** The wire view: secret option values masked. */
export function mountInfo(m: MountRecord): MountInfo {
  return {
    mountId: m.mountId,
    path: m.path,
    uri: m.uri,
    options: maskUfsOptions(m.options),
    writeType: m.writeType,
    readVerifyUfs: m.readVerifyUfs,
    autoCache: m.autoCache,
    ttlMs: m.ttlMs,
    ttlAction: m.ttlAction,
    replicas: m.replicas,
    blockSize: m.blockSize,
    ...(m.storageType === undefined ? {} : { storageType: m.storageType }),
    readOnly: m.readOnly,
    mountReadOnly: m.mountReadOnly === true,
    createdAtMs: m.createdAtMs,
  };
}

/** "/a/b/" → "/a/b"; the namespace checks everything else. */
export function trimPath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Whether `path` is `dir` or inside it. */
export function isWithin(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/** The UFS path of `path` inside a mount at `mountPath` ("/" for the mount point itself). */
export function ufsPathOf(path: string, mountPath: string): string {
  return path === mountPath ? '/' : path.slice(mountPath.length);
}

/** The URI with a trailing slash, so s3://b/a does not look like a parent of s3://b/ab. */
function uriDir(uri: string): string {
  return uri.endsWith('/') ? uri : `${uri}/`;
}

export interface Resolved {
  mount: MountRecord;
  /** Path inside the UFS ("/"-rooted). */
  ufsPath: string;
}

export class MountTable {
  readonly #store: MetaStore;
  readonly #byId = new Map<number, MountRecord>();
  /** Longest path first, so the first match is the deepest mount. */
  #sorted: MountRecord[] = [];

  private constructor(store: MetaStore) {
    this.#store = store;
  }

  static async load(store: MetaStore): Promise<MountTable> {
    const t = new MountTable(store);
    const rows = await store.scan({ prefix: mountPrefix(), limit: MAX_MOUNTS + 1 });
    for (const r of rows) {
      const m = packr.unpack(r.value) as MountRecord;
      t.#byId.set(m.mountId, m);
    }
    t.#resort();
    return t;
  }

  #resort(): void {
    this.#sorted = [...this.#byId.values()].sort((a, b) => b.path.length - a.path.length);
  }

  get size(): number {
    return this.#byId.size;
  }

  list(): MountRecord[] {
    return [...this.#byId.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  byId(mountId: number): MountRecord | undefined {
    return this.#byId.get(mountId);
  }

  byPath(path: string): MountRecord | undefined {
    const p = trimPath(path);
    return this.#sorted.find((m) => m.path === p);
  }

  /** The mount holding `path` (the mount point itself included), with the path inside its UFS. */
  resolve(path: string): Resolved | undefined {
    const p = trimPath(path);
    for (const m of this.#sorted) if (isWithin(p, m.path)) return { mount: m, ufsPath: ufsPathOf(p, m.path) };
    return undefined;
  }

  /** Mounts strictly below `path` (a delete or rename of `path` would take them along). */
  below(path: string): MountRecord[] {
    const p = trimPath(path);
    return this.#sorted.filter((m) => m.path !== p && isWithin(m.path, p));
  }

  /** Refuses a new mount that would nest in or hold another one, by path or by UFS root. */
  checkNew(path: string, uri: string): void {
    if (this.#byId.size >= MAX_MOUNTS) {
      throw new FsError('ENOSPC', `at most ${MAX_MOUNTS} mounts; unmount one first`);
    }
    const p = trimPath(path);
    if (p === '/') {
      throw new FsError('EINVAL', 'cannot mount at "/": mount under a directory such as /data', {
        details: { path: p },
      });
    }
    const u = parseUfsUri(uri).uri;
    for (const m of this.#byId.values()) {
      if (m.path === p) {
        throw new FsError('EEXIST', `${p}: ${m.uri} is already mounted here`, { details: { path: p } });
      }
      if (isWithin(p, m.path) || isWithin(m.path, p)) {
        throw new FsError('EINVAL', `${p}: mounts cannot nest: ${m.uri} is mounted at ${m.path}`, {
          details: { path: p },
        });
      }
      if (u === m.uri || uriDir(u).startsWith(uriDir(m.uri)) || uriDir(m.uri).startsWith(uriDir(u))) {
        throw new FsError('EINVAL', `${u} overlaps ${m.uri}, already mounted at ${m.path}`, {
          details: { path: p },
        });
      }
    }
  }

  /** Stores a new mount under a fresh id. */
  async add(m: Omit<MountRecord, 'mountId'>): Promise<MountRecord> {
    this.checkNew(m.path, m.uri);
    const rec = await this.#store.transaction((tx): MountRecord => {
      const cur = tx.get(mountSeqKey());
      const id = (cur === undefined ? 0 : decodeU64(cur)) + 1;
      const r: MountRecord = { ...m, mountId: id };
      tx.put(mountSeqKey(), encodeU64(id));
      tx.put(mountKey(id), packr.pack(r));
      return r;
    });
    this.#byId.set(rec.mountId, rec);
    this.#resort();
    return rec;
  }

  async remove(mountId: number): Promise<void> {
    await this.#store.delete(mountKey(mountId));
    this.#byId.delete(mountId);
    this.#resort();
  }
}
