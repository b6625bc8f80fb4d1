/**
 * Mounting and unmounting, and the master's own handle on each mounted UFS (for metadata). A
 * mount is checked before it is stored: the URI and options must be valid, the UFS reachable
 * and the credentials accepted (unless the caller skips the check), the mount point new or an
 * empty directory, and no other mount may nest in it or hold it.
 */
import type { StorageType } from '../../common/config/data-dir.js';
import type { TtlAction, WriteType } from '../../common/config/schema.js';
import { FsError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { Registry } from '../../common/metrics.js';
import type { MetaStore } from '../../meta/index.js';
import { defaultMountPath, openUfs, validateUfs } from '../../ufs/index.js';
import type { RawUfsOptions, UnderFileSystem } from '../../ufs/index.js';
import type { Namespace } from '../namespace/index.js';
import { MountTable, trimPath } from './mount-table.js';
import type { MountRecord } from './mount-table.js';

export interface MountRequest {
  uri: string;
  path?: string;
  options: RawUfsOptions;
  writeType?: WriteType;
  readVerifyUfs?: boolean;
  autoCache?: boolean;
  ttlMs?: number;
  ttlAction?: TtlAction;
  replicas?: number;
  blockSize?: number;
  storageType?: StorageType;
  mountReadOnly?: boolean;
  check?: boolean;
  dryRun?: boolean;
}

export interface MountManagerOptions {
  store: MetaStore;
  namespace: Namespace;
  log: Logger;
  /** Where the master's UFS metrics go. */
  registry?: Registry;
  /** Deadline of the reachability and credentials check of a new mount. */
  checkTimeoutMs: number;
  clock?: () => number;
}

/** Writes of these mounts reach the UFS (they need it writable). */
export function writesReachUfs(m: MountRecord): boolean {
  return !m.readOnly && (m.writeType === 'through' || m.writeType === 'async');
}

export class MountManager {
  readonly table: MountTable;
  readonly #o: MountManagerOptions;
  readonly #ufs = new Map<number, UnderFileSystem>();
  /** Called when a mount goes (caches keyed by its paths are dropped). */
  onUnmount: ((m: MountRecord) => void) | undefined;

  private constructor(opts: MountManagerOptions, table: MountTable) {
    this.#o = opts;
    this.table = table;
  }

  static async open(opts: MountManagerOptions): Promise<MountManager> {
    return new MountManager(opts, await MountTable.load(opts.store));
  }

  /** The master's handle on a mount's UFS (opened on first use). */
  ufs(m: MountRecord): UnderFileSystem {
    let u = this.#ufs.get(m.mountId);
    if (u === undefined) {
      u = openUfs(m.uri, m.options, {
        log: this.#o.log,
        ...(this.#o.registry === undefined ? {} : { registry: this.#o.registry }),
      });
      this.#ufs.set(m.mountId, u);
    }
    return u;
  }

  async mount(req: MountRequest): Promise<MountRecord> {
    const uri = validateUfs(req.uri, req.options);
    const path = trimPath(req.path ?? defaultMountPath(uri));
    const readOnly = uri.scheme === 'http' || uri.scheme === 'https';
    const writeType = req.writeType ?? 'cache';
    if (readOnly && writeType !== 'cache') {
      throw new FsError(
        'EINVAL',
        `${uri.uri}: ${uri.scheme}:// storage is read-only: write type ${writeType} needs a writable UFS (use cache)`,
      );
    }
    const ttlMs = req.ttlMs ?? 0;
    const rec: Omit<MountRecord, 'mountId'> = {
      path,
      uri: uri.uri,
      options: { ...req.options },
      writeType,
      readVerifyUfs: req.readVerifyUfs ?? false,
      autoCache: req.autoCache ?? true,
      ttlMs,
      ttlAction: ttlMs > 0 ? (req.ttlAction ?? 'free') : 'none',
      replicas: req.replicas ?? 0,
      blockSize: req.blockSize ?? 0,
      storageType: req.storageType,
      readOnly,
      mountReadOnly: req.mountReadOnly === true,
      createdAtMs: (this.#o.clock ?? Date.now)(),
    };
    this.table.checkNew(path, uri.uri);
    await this.#checkMountPoint(path);
    if (req.check !== false) await this.#checkUfs(rec);
    if (req.dryRun === true) return { ...rec, mountId: 0 };
    const st = await this.#o.namespace.getStatus(path).catch((err: unknown) => {
      if (err instanceof FsError && err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (st === undefined) await this.#o.namespace.mkdir(path, { parents: true });
    const saved = await this.table.add(rec);
    this.#o.log.info({ mountId: saved.mountId, path, uri: saved.uri, writeType }, 'mounted');
    return saved;
  }

  /** The mount point must be new or an empty directory. */
  async #checkMountPoint(path: string): Promise<void> {
    const st = await this.#o.namespace.getStatus(path).catch((err: unknown) => {
      if (err instanceof FsError && err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (st === undefined) return;
    if (st.type !== 'dir') {
      throw new FsError('ENOTDIR', `${path}: a ${st.type} exists there; mount on a new or empty directory`, {
        details: { path },
      });
    }
    if ((st.children ?? 0) > 0) {
      throw new FsError(
        'ENOTEMPTY',
        `${path}: the directory holds ${st.children} entries; mount on a new or empty directory`,
        { details: { path } },
      );
    }
  }

  async #checkUfs(rec: Omit<MountRecord, 'mountId'>): Promise<void> {
    const ufs = openUfs(rec.uri, rec.options);
    const ms = this.#o.checkTimeoutMs;
    try {
      await ufs.check({ signal: AbortSignal.timeout(ms) });
    } catch (err) {
      if (err instanceof FsError) throw err;
      if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
        throw new FsError(
          'ETIMEDOUT',
          `${rec.uri}: the storage did not answer within ${ms} ms; nothing mounted`,
        );
      }
      throw err;
    } finally {
      await ufs.close().catch(() => undefined);
    }
  }

  /**
   * Removes a mount. Its entries leave the namespace (cached copies are dropped; the UFS is not
   * touched). `pendingPersists` counts files under it still waiting to be written to the UFS.
   */
  async unmount(path: string, pendingPersists: (m: MountRecord) => Promise<number>): Promise<MountRecord> {
    const p = trimPath(path);
    const m = this.table.byPath(p);
    if (m === undefined) {
      const at = this.table.resolve(p);
      const hint = at === undefined ? '' : ` (it is inside the mount at ${at.mount.path})`;
      throw new FsError('EINVAL', `${p}: not a mount point${hint}`, { details: { path: p } });
    }
    const pending = await pendingPersists(m);
    if (pending > 0) {
      throw new FsError(
        'EBUSY',
        `${p}: ${pending} file(s) written here still wait to be persisted to ${m.uri}; unmount when they are`,
        { details: { path: p } },
      );
    }
    await this.#o.namespace.delete(p, { recursive: true }).catch((err: unknown) => {
      if (!(err instanceof FsError && err.code === 'ENOENT')) throw err;
    });
    await this.table.remove(m.mountId);
    const u = this.#ufs.get(m.mountId);
    this.#ufs.delete(m.mountId);
    await u?.close().catch(() => undefined);
    this.onUnmount?.(m);
    this.#o.log.info({ mountId: m.mountId, path: p, uri: m.uri }, 'unmounted');
    return m;
  }

  async close(): Promise<void> {
    const all = [...this.#ufs.values()];
    this.#ufs.clear();
    await Promise.allSettled(all.map((u) => u.close()));
  }
}
