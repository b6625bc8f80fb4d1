/**
 * The unified namespace: entries under a mount come from its UFS lazily. A lookup of a path the
 * namespace does not hold asks the UFS (one stat) and enters what it finds: a directory, or a
 * complete file with its block list (cached nowhere yet) and the object's version. A listing
 * merges the UFS directory into the namespace first. What the UFS said is trusted for
 * `master.ufs_sync_interval`; after that a listing reads the UFS again and brings the namespace
 * up to date: new objects appear, changed ones are entered again (their cached copies dropped),
 * deleted ones leave. Files only Strata holds (written under a `cache` mount, or waiting to be
 * persisted) are never touched by a sync.
 */
import type { StorageType } from '../../common/config/data-dir.js';
import { FsError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { FileStatus } from '../../protocol/types.js';
import { ufsJoin } from '../../ufs/index.js';
import type { UfsStatus, UnderFileSystem } from '../../ufs/index.js';
import { sameUfsVersion } from '../namespace/index.js';
import type { FileInode, Namespace, UfsFileState } from '../namespace/index.js';
import type { MountManager } from './mount-manager.js';
import type { MountRecord, Resolved } from './mount-table.js';
import { isWithin } from './mount-table.js';

/** Entries one directory sync handles at most (a bigger UFS directory is an error naming the limit). */
export const MAX_SYNC_DIR_ENTRIES = 1_000_000;
/** Imports of one sync in flight at once (they commit together in the store's group commits). */
export const SYNC_IMPORT_CONCURRENCY = 32;
/** Freshness records kept (directories synced, paths known absent); the oldest go first. */
export const MAX_SYNC_RECORDS = 100_000;

export interface UfsSyncOptions {
  namespace: Namespace;
  mounts: MountManager;
  /** How long a UFS listing or a "not there" answer is trusted. */
  intervalMs: number;
  defaults: { blockSizeBytes: number; replicas: number; storageType: StorageType };
  log: Logger;
  clock?: () => number;
}

function isEnoent(err: unknown): boolean {
  return err instanceof FsError && err.code === 'ENOENT';
}

/** A bounded map whose insertion order is its age order. */
class Freshness {
  readonly #m = new Map<string, number>();
  get(k: string): number | undefined {
    return this.#m.get(k);
  }
  set(k: string, atMs: number): void {
    this.#m.delete(k);
    this.#m.set(k, atMs);
    if (this.#m.size > MAX_SYNC_RECORDS) {
      const oldest = this.#m.keys().next();
      if (oldest.done !== true) this.#m.delete(oldest.value);
    }
  }
  delete(k: string): void {
    this.#m.delete(k);
  }
  /** Drops `path` and everything under it. */
  dropUnder(path: string): void {
    for (const k of [...this.#m.keys()]) if (isWithin(k, path)) this.#m.delete(k);
  }
}

export class UfsSync {
  readonly #o: UfsSyncOptions;
  readonly #clock: () => number;
  readonly #dirs = new Freshness();
  readonly #absent = new Freshness();
  /** Directories whose UFS said it cannot list them (ENOTSUP), and when: asked again after the interval. */
  readonly #unlistable = new Freshness();
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(opts: UfsSyncOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? Date.now;
  }

  /** Forgets what is known about `path` and below (after a change made through Strata). */
  invalidate(path: string): void {
    this.#dirs.dropUnder(path);
    this.#absent.dropUnder(path);
    this.#unlistable.dropUnder(path);
  }

  /** The UFS state a file loaded from (or persisted to) a mount carries. */
  ufsState(mount: MountRecord, st: Pick<UfsStatus, 'size' | 'mtimeMs' | 'etag'>): UfsFileState {
    return {
      mountId: mount.mountId,
      size: st.size,
      mtimeMs: st.mtimeMs,
      etag: st.etag ?? '',
      persisted: true,
      sinceMs: this.#clock(),
    };
  }

  /**
   * The status of `path`, entering it from the UFS when the namespace does not hold it. ENOENT
   * when neither has it.
   */
  async status(path: string, r: Resolved, lookup: () => Promise<FileStatus>): Promise<FileStatus> {
    try {
      return await lookup();
    } catch (err) {
      if (!isEnoent(err)) throw err;
    }
    await this.ensure(path, r);
    return lookup();
  }

  /** Makes sure `path` is in the namespace if the UFS has it (one UFS stat, deduplicated). */
  async ensure(path: string, r: Resolved): Promise<void> {
    const now = this.#clock();
    const absentAt = this.#absent.get(path);
    if (absentAt !== undefined && now - absentAt < this.#o.intervalMs) return;
    let p = this.#inflight.get(path);
    if (p === undefined) {
      p = this.#load(path, r).finally(() => this.#inflight.delete(path));
      this.#inflight.set(path, p);
    }
    await p;
  }

  async #load(path: string, r: Resolved): Promise<void> {
    const ufs = this.#o.mounts.ufs(r.mount);
    let st: UfsStatus;
    try {
      st = await ufs.stat(r.ufsPath);
    } catch (err) {
      if (isEnoent(err)) {
        this.#absent.set(path, this.#clock());
        return;
      }
      throw err;
    }
    await this.#enter(path, r.mount, st);
  }

  /** Enters one UFS entry at `path` (a directory, or a file with its blocks). */
  async #enter(path: string, mount: MountRecord, st: UfsStatus): Promise<void> {
    const ns = this.#o.namespace;
    try {
      if (st.type === 'dir') {
        await ns.mkdir(path, { parents: true });
      } else {
        await ns.importUfsFile(path, this.#importAttrs(mount, st));
      }
    } catch (err) {
      // Someone entered it meanwhile (a racing lookup, a write through Strata): theirs stands.
      if (!(err instanceof FsError && err.code === 'EEXIST')) throw err;
    }
  }

  #importAttrs(mount: MountRecord, st: UfsStatus) {
    const d = this.#o.defaults;
    return {
      ufs: this.ufsState(mount, st),
      blockSize: mount.blockSize > 0 ? mount.blockSize : d.blockSizeBytes,
      replicas: mount.replicas > 0 ? mount.replicas : d.replicas,
      storageType: mount.storageType ?? d.storageType,
      ttlMs: mount.ttlMs,
      ttlAction: mount.ttlAction,
    };
  }

  /** Enters a file again after its UFS object changed: its cached copies go with the old entry. */
  async reload(path: string, r: Resolved): Promise<void> {
    await this.#o.namespace.delete(path).catch((err: unknown) => {
      if (!isEnoent(err)) throw err;
    });
    this.#absent.delete(path);
    await this.#load(path, r);
  }

  /** Brings the namespace directory at `path` up to date with the UFS when its listing is stale. */
  async syncDir(path: string, r: Resolved): Promise<void> {
    const ufs = this.#o.mounts.ufs(r.mount);
    const unlistableAt = this.#unlistable.get(path);
    if (
      !ufs.capabilities.canList ||
      (unlistableAt !== undefined && this.#clock() - unlistableAt < this.#o.intervalMs)
    ) {
      // A UFS that cannot list (an HTTP origin without index pages): the directory shows what
      // has been looked up by path.
      await this.ensure(path, r);
      return;
    }
    const now = this.#clock();
    const at = this.#dirs.get(path);
    if (at !== undefined && now - at < this.#o.intervalMs) return;
    const key = `dir:${path}`;
    let p = this.#inflight.get(key);
    if (p === undefined) {
      p = this.#syncDir(path, r, ufs).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    await p;
  }

  async #syncDir(path: string, r: Resolved, ufs: UnderFileSystem): Promise<void> {
    const started = this.#clock();
    const listed = new Map<string, UfsStatus>();
    let cursor: string | undefined;
    try {
      do {
        const page = await ufs.list(r.ufsPath, cursor === undefined ? {} : { cursor });
        for (const e of page.entries) if (!listed.has(e.name)) listed.set(e.name, e);
        if (listed.size > MAX_SYNC_DIR_ENTRIES) {
          throw new FsError(
            'E2BIG',
            `${path}: more than ${MAX_SYNC_DIR_ENTRIES} entries in ${ufs.describe()}${r.ufsPath === '/' ? '' : r.ufsPath}`,
          );
        }
        cursor = page.cursor;
      } while (cursor !== undefined);
    } catch (err) {
      if (isEnoent(err)) {
        // Gone from the UFS: what the namespace holds from it goes too (Strata-only files stay).
        await this.#dropVanished(path, r.mount, new Map());
        this.#dirs.set(path, started);
        return;
      }
      if (err instanceof FsError && err.code === 'ENOTSUP') {
        this.#o.log.info(
          { path, err: err.message },
          'UFS directory cannot be listed; its files are reached by path',
        );
        this.#unlistable.set(path, started);
        await this.ensure(path, r);
        return;
      }
      throw err;
    }
    const ns = this.#o.namespace;
    // Make sure the directory itself exists before entering children (a new UFS directory).
    await ns.mkdir(path, { parents: true }).catch((err: unknown) => {
      if (!(err instanceof FsError && err.code === 'EEXIST')) throw err;
    });
    const existing = await this.#namespaceEntries(path);
    const todo: (() => Promise<void>)[] = [];
    for (const [name, st] of listed) {
      const child = ufsJoin(path, name);
      const have = existing.get(name);
      if (have === undefined) {
        todo.push(() => this.#enter(child, r.mount, st));
        continue;
      }
      if (have.type === 'file' && st.type === 'file') {
        const ino = await ns.inodeById(have.id);
        const u = ino?.type === 'file' ? ino.ufs : undefined;
        if (
          u?.persisted === true &&
          !sameUfsVersion(u, { size: st.size, mtimeMs: st.mtimeMs, etag: st.etag ?? '' })
        ) {
          todo.push(async () => {
            await ns.delete(child).catch((err: unknown) => {
              if (!isEnoent(err)) throw err;
            });
            await this.#enter(child, r.mount, st);
          });
        }
      }
    }
    await runBounded(todo, SYNC_IMPORT_CONCURRENCY);
    await this.#dropVanished(path, r.mount, listed, existing);
    this.#dirs.set(path, started);
  }

  /** Namespace children of `path` (name → id and type). */
  async #namespaceEntries(path: string): Promise<Map<string, { id: number; type: string }>> {
    const out = new Map<string, { id: number; type: string }>();
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.#o.namespace.list(path, startAfter === undefined ? {} : { startAfter });
      for (const e of page.entries) out.set(e.name, { id: e.id, type: e.type });
      if (page.nextStartAfter === undefined) return out;
      startAfter = page.nextStartAfter;
    }
  }

  /** Files loaded from the UFS that the UFS no longer lists leave the namespace. */
  async #dropVanished(
    path: string,
    mount: MountRecord,
    listed: ReadonlyMap<string, UfsStatus>,
    known?: Map<string, { id: number; type: string }>,
  ): Promise<void> {
    const ns = this.#o.namespace;
    const existing =
      known ??
      (await this.#namespaceEntries(path).catch(() => new Map<string, { id: number; type: string }>()));
    for (const [name, e] of existing) {
      if (listed.has(name) || e.type !== 'file') continue;
      const ino = (await ns.inodeById(e.id)) as FileInode | undefined;
      if (ino?.ufs?.persisted !== true || ino.ufs.mountId !== mount.mountId) continue;
      await ns.delete(ufsJoin(path, name)).catch((err: unknown) => {
        if (!isEnoent(err)) throw err;
      });
    }
  }
}

async function runBounded(tasks: readonly (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined) {
      const t = tasks[next++];
      if (t === undefined) return;
      try {
        await t();
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure !== undefined) throw failure instanceof Error ? failure : new FsError('EIO', 'UFS sync failed');
}
