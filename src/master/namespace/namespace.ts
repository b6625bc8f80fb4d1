/**
 * The namespace: directories, files, symlinks and hard links, their attributes and block lists,
 * on a MetaStore. Every mutation is one store transaction (a crash at any instant leaves either
 * all of it or none of it), acknowledged only once durable. Reads are served from the in-memory
 * cache when it holds what they need and from a store snapshot otherwise.
 *
 * Transaction functions here are pure functions of what they read (ids, lease ids and the clock
 * are taken before the transaction starts), so an engine may run them more than once.
 *
 * Semantics (POSIX unless said): see docs/master.md for the table of which calls follow a final
 * symlink, the error of every refusal, and the block-list rules (holes, truncate).
 */
import { randomUUID } from 'node:crypto';
import type { StorageType } from '../../common/config/data-dir.js';
import type { TtlAction } from '../../common/config/schema.js';
import { FsError, fsError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { MetaStore } from '../../meta/index.js';
import { MAX_LIST_PAGE, MAX_XATTR_VALUE_BYTES, DEFAULT_LIST_PAGE } from '../../protocol/types.js';
import type { Caller, FileBlock, FileStatus } from '../../protocol/types.js';
import { NamespaceCache, dentryId } from './cache.js';
import { metaMismatch } from './errors.js';
import { IdAllocator } from './ids.js';
import { INODE_FORMAT_VERSION, ROOT_ID, blockCount, realBlockIds } from './inode.js';
import type { DirInode, FileInode, Inode, SymlinkInode, UfsFileState } from './inode.js';
import {
  blockKey,
  blockPrefix,
  decodeU64,
  decodeDentry,
  dentryPrefix,
  inodeKey,
  inodePrefix,
  keyId,
  keyName,
  leasePrefix,
  metaKey,
  parseTtlKey,
  trashPrefix,
  ttlKey,
  ttlPrefix,
  xattrKey,
  xattrPrefix,
  dentryKey,
} from './keys.js';
import { NsTx, ttlBaseMs } from './ns-txn.js';
import type { CommittedView } from './ns-txn.js';
import type { MutationRecorder, RequestScope } from './recorder.js';
import { checkSymlinkTarget, childPath, parsePath } from './paths.js';
import {
  R,
  ROOT_CALLER,
  S_ISGID,
  W,
  X,
  allowed,
  inGroup,
  isRoot,
  requireAccess,
  requireOwner,
  requireStickyAllows,
} from './permissions.js';
import { CacheMiss, CacheOnlyReader, SnapshotReader } from './readers.js';
import type { NsReader } from './readers.js';
import {
  entryInode,
  isAncestorOrSelf,
  lookupExisting,
  resolveDir,
  resolveFollow,
  resolveParent,
  rootInode,
} from './resolve.js';
import { toFileBlocks, toStatus } from './status.js';
import type { StatusContext } from './status.js';
import {
  addEntry,
  collectSubtree,
  deleteItems,
  destroyInode,
  removeEntry,
  unlinkInode,
  withoutLink,
} from './tree-ops.js';
import { encodeInode, storedInodeType } from './inode.js';

export const MIN_BLOCK_SIZE_BYTES = 4096;
export const MAX_BLOCK_SIZE_BYTES = 2 * 1024 * 1024 * 1024;
/** Blocks one file may have (bounds the inode record: about 10 bytes per block). */
export const MAX_BLOCKS_PER_FILE = 100_000;
export const MAX_HARD_LINKS = 1000;
export const MAX_XATTRS_PER_INODE = 256;
export const MAX_XATTR_BYTES_PER_INODE = 1024 * 1024;
/** Entries a recursive delete removes in its own transaction; bigger trees go to the trash. */
export const DEFAULT_INLINE_DELETE_ENTRIES = 10_000;
/** Entries one trash-purge transaction removes. */
export const TRASH_PURGE_BATCH = 2000;
/** Expired TTL entries handled per checker pass. */
export const TTL_BATCH = 1000;
export const DEFAULT_FILE_MODE = 0o644;
export const DEFAULT_DIR_MODE = 0o755;
const FORMAT_KEY = metaKey('format');
const XATTR_NAMESPACES = ['user.', 'trusted.', 'security.', 'system.'];

export interface NamespaceDefaults {
  blockSizeBytes: number;
  replicas: number;
  storageType: StorageType;
  ttlMs: number;
  ttlAction: TtlAction;
}

/** What the rest of the master hears from the namespace after a commit. */
export interface NamespaceEvents {
  /** These blocks belong to no file any more: delete their replicas. */
  blocksRemoved?(blockIds: readonly number[]): void;
  /** A file committed blocks (with the workers that acknowledged them) or changed its replication. */
  blocksCommitted?(file: FileInode, blocks: readonly CommittedBlock[]): void;
  /** TTL "free": drop the file's replicas but keep it; return false to leave it alone. */
  canFree?(file: FileInode): boolean;
  /**
   * TTL "free" done: these blocks' cached copies go, the blocks still belong to their file (a UFS
   * holds the data). Without this handler, `blocksRemoved` hears about them.
   */
  blocksFreed?(blockIds: readonly number[]): void;
}

export interface CommittedBlock {
  blockId: number;
  length: number;
  workers?: readonly string[];
}

export interface NamespaceOptions {
  store: MetaStore;
  clusterId: string;
  defaults: NamespaceDefaults;
  leaseTimeoutMs: number;
  log: Logger;
  clock?: () => number;
  events?: NamespaceEvents;
  cacheInodes?: number;
  cacheDentries?: number;
  inlineDeleteEntries?: number;
  cachedBytes?: StatusContext['cachedBytes'];
  /** Records each request's outcome in its transaction (exactly-once retries across restarts and failovers). */
  recorder?: MutationRecorder;
}

/** How one mutation runs: recorded for its request (RPC calls) or not (the master's own work). */
interface MutateOptions {
  /**
   * The client request this mutation serves: its outcome is recorded with it, so a retry of
   * the request gets that outcome (exactly-once across failover). Absent for the master's own
   * work (lease recovery, TTL, trash, UFS imports), which belongs to no request.
   */
  scope?: RequestScope | undefined;
  /**
   * Checks run before the transaction that may refuse a retry whose first attempt already
   * committed (a lease it ended): inside, so the recorded outcome is looked up on refusal too.
   */
  precheck?: () => void;
}

export interface CreateOptions {
  overwrite?: boolean;
  parents?: boolean;
  mode?: number;
  blockSize?: number;
  replicas?: number;
  storageType?: StorageType;
  ttlMs?: number;
  ttlAction?: TtlAction;
  clientHost?: string;
  /**
   * Create the file complete and empty (length 0, no lease): an empty file in one transaction
   * instead of create + complete.
   */
  complete?: boolean;
  /**
   * Allocate the file's first block in the same transaction (as `addBlock` would right after):
   * one commit instead of two for a writer that knows it will write.
   */
  firstBlock?: boolean;
}

/** What `completeAs` commits besides the block list. */
export interface CompleteAsOptions {
  blocks: readonly CommittedBlock[];
  length: number;
  mtimeMs?: number;
  /** Attributes set on the file in the same transaction. */
  xattrs?: readonly { name: string; value: Uint8Array }[];
  /** Where the completed file is renamed (an existing file there is replaced). */
  renameTo?: string;
  /**
   * Complete files appended after the writer's blocks, in order: their blocks become this file's
   * (no data moves) and their names are removed, in the same transaction (see `concatIn`).
   */
  concat?: readonly ConcatSource[];
}

/** A file to append by `completeAs`: the caller names the file it expects at `path`. */
export interface ConcatSource {
  path: string;
  fileId: number;
}

export interface ImportUfsFile {
  ufs: UfsFileState;
  blockSize: number;
  replicas: number;
  storageType: StorageType;
  ttlMs: number;
  ttlAction: TtlAction;
  mode?: number;
}

/** The same version of a UFS object: size and mtime, and the ETag when both sides have one. */
export function sameUfsVersion(
  a: Pick<UfsFileState, 'size' | 'mtimeMs' | 'etag'>,
  b: Pick<UfsFileState, 'size' | 'mtimeMs' | 'etag'>,
): boolean {
  if (a.size !== b.size) return false;
  if (a.etag !== '' && b.etag !== '') return a.etag === b.etag;
  return a.mtimeMs === b.mtimeMs;
}

export interface SetAttrOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  atimeMs?: number;
  mtimeMs?: number;
  length?: number;
  ttlMs?: number;
  ttlAction?: TtlAction;
  replicas?: number;
}

export interface NamespaceCounts {
  files: number;
  dirs: number;
  symlinks: number;
  /** Blocks that belong to files (committed or being written). */
  blocks: number;
}

interface LeaseState {
  id: string;
  host: string;
  expiresAtMs: number;
}

export interface LocatedFileBlock {
  blockId: number;
  offset: number;
  length: number;
}

export class Namespace {
  readonly #store: MetaStore;
  readonly #opts: NamespaceOptions;
  readonly #clock: () => number;
  readonly #cache: NamespaceCache;
  readonly #cacheOnly: CacheOnlyReader;
  readonly #inodeIds: IdAllocator;
  readonly #blockIds: IdAllocator;
  readonly #leases = new Map<number, LeaseState>();
  readonly #counts: NamespaceCounts = { files: 0, dirs: 0, symlinks: 0, blocks: 0 };
  readonly #statusCtx: StatusContext;
  readonly #log: Logger;
  #trashPurging: Promise<void> | undefined;

  private constructor(opts: NamespaceOptions) {
    this.#store = opts.store;
    this.#opts = opts;
    this.#log = opts.log;
    this.#clock = opts.clock ?? Date.now;
    this.#cache = new NamespaceCache(opts.cacheInodes, opts.cacheDentries);
    this.#cacheOnly = new CacheOnlyReader(this.#cache);
    this.#inodeIds = new IdAllocator(opts.store, 'next-inode', () => ROOT_ID + 1);
    // A fresh (or re-formatted) namespace starts block ids from the clock, so blocks left on
    // workers by an earlier format can never be mistaken for new ones.
    this.#blockIds = new IdAllocator(opts.store, 'next-block', () => this.#clock() * 1024);
    this.#statusCtx = {
      defaultStorageType: opts.defaults.storageType,
      ...(opts.cachedBytes === undefined ? {} : { cachedBytes: opts.cachedBytes }),
    };
  }

  /** Opens the namespace: creates the root on a fresh store, checks the cluster id, loads leases and counts. */
  static async open(opts: NamespaceOptions): Promise<Namespace> {
    const ns = new Namespace(opts);
    await ns.#init();
    return ns;
  }

  async #init(): Promise<void> {
    const now = this.#clock();
    const { clusterId } = this.#opts;
    const format = await this.#store.transaction((tx) => {
      const cur = tx.get(FORMAT_KEY);
      if (cur !== undefined) return JSON.parse(Buffer.from(cur).toString('utf8')) as StoredFormat;
      const f: StoredFormat = { version: INODE_FORMAT_VERSION, clusterId, createdAtMs: now };
      tx.put(FORMAT_KEY, Buffer.from(JSON.stringify(f), 'utf8'));
      const root: DirInode = {
        type: 'dir',
        id: ROOT_ID,
        mode: DEFAULT_DIR_MODE,
        uid: 0,
        gid: 0,
        nlink: 2,
        atimeMs: now,
        mtimeMs: now,
        ctimeMs: now,
        links: [],
        ttlMs: 0,
        ttlAction: 'none',
        xattrCount: 0,
        xattrBytes: 0,
        children: 0,
      };
      tx.put(inodeKey(ROOT_ID), encodeInode(root));
      return f;
    });
    if (format.clusterId !== clusterId) {
      throw metaMismatch(
        `the metadata store belongs to cluster "${format.clusterId}", but cluster_id is "${clusterId}" ` +
          `(use that cluster_id, or set format_master = true to wipe it)`,
      );
    }
    if (format.version !== INODE_FORMAT_VERSION) {
      throw metaMismatch(
        `the metadata store has format ${format.version}; this strata reads format ${INODE_FORMAT_VERSION}`,
      );
    }
    await this.#loadCounts();
    await this.#loadLeases(now);
  }

  /** Counts inodes by type and live blocks: one pass over keys at startup (no decoding). */
  async #loadCounts(): Promise<void> {
    const c = this.#counts;
    await this.#scanAll(inodePrefix(), (_k, v) => {
      const t = storedInodeType(v);
      if (t === 'file') c.files++;
      else if (t === 'dir') c.dirs++;
      else if (t === 'symlink') c.symlinks++;
    });
    await this.#scanAll(blockPrefix(), () => {
      c.blocks++;
    });
  }

  async #loadLeases(now: number): Promise<void> {
    const ids: number[] = [];
    await this.#scanAll(leasePrefix(), (k) => ids.push(keyId(k)));
    for (const id of ids) {
      const ino = await this.#read((r) => r.inode(id));
      if (ino?.type === 'file' && ino.lease !== null) {
        // Writers get a full timeout after a restart to renew or complete.
        this.#leases.set(id, {
          id: ino.lease.id,
          host: ino.lease.host,
          expiresAtMs: now + this.#opts.leaseTimeoutMs,
        });
      }
    }
    if (ids.length > 0) this.#log.info({ leases: this.#leases.size }, 'open write leases restored');
  }

  async #scanAll(prefix: Uint8Array, fn: (k: Uint8Array, v: Uint8Array) => void): Promise<void> {
    let start: Uint8Array | undefined;
    const page = 10_000;
    for (;;) {
      const rows = await this.#store.scan({ prefix, ...(start === undefined ? {} : { start }), limit: page });
      for (const r of rows) if (start === undefined || Buffer.compare(r.key, start) !== 0) fn(r.key, r.value);
      if (rows.length < page) return;
      start = rows[rows.length - 1]?.key;
    }
  }

  // ---- plumbing ---------------------------------------------------------------------------

  /** Runs a read against the cache, falling back to a store snapshot on a miss. */
  async #read<T>(fn: (r: NsReader) => T): Promise<T> {
    try {
      return fn(this.#cacheOnly);
    } catch (err) {
      if (!(err instanceof CacheMiss)) throw err;
    }
    const gen = this.#cache.generation;
    return this.#store.read((mr) => fn(new SnapshotReader(mr, this.#cache, gen)));
  }

  /**
   * Runs a mutation as one transaction; after the commit, the cache, counters and events follow.
   * On a serial engine the transaction reads committed state from the cache for keys no pending
   * transaction wrote (tracked in #dirty*), which spares decoding hot directories every time.
   */
  async #mutate<T>(opts: MutateOptions, fn: (tx: NsTx) => T): Promise<T> {
    const serial = this.#store.serialTransactions;
    const recorder = this.#opts.recorder;
    const slot = opts.scope === undefined ? undefined : recorder?.begin(opts.scope);
    let last: NsTx | undefined;
    let marked: NsTx | undefined;
    try {
      opts.precheck?.();
      const value = await this.#store.transaction((mtx) => {
        last = new NsTx(mtx, serial ? this.#committedView : undefined);
        const v = fn(last);
        if (slot !== undefined) recorder?.record(mtx, slot, v);
        if (serial) {
          marked = last;
          this.#markDirty(last, 1);
        }
        return v;
      });
      if (last !== undefined) this.#afterCommit(last);
      return value;
    } catch (err) {
      if (slot === undefined || recorder === undefined) throw err;
      // A retry of a request whose first attempt committed: that attempt's outcome, not this
      // one's. When the record cannot be read (the store failing, as during an etcd member's
      // loss), this attempt's error may be its view of that very first attempt (EEXIST for its
      // own mkdir): the store's failure is the answer then, and the client asks again with the
      // same request id.
      const earlier = await recorder.replay(slot);
      if (earlier !== undefined) return earlier.value as T;
      throw err;
    } finally {
      if (marked !== undefined) this.#markDirty(marked, -1);
    }
  }

  readonly #dirtyInodes = new Map<number, number>();
  readonly #dirtyDentries = new Map<string, number>();

  readonly #committedView: CommittedView = {
    inode: (id) => (this.#dirtyInodes.has(id) ? undefined : this.#cache.inode(id)),
    dentry: (parent, name) => {
      const k = dentryId(parent, name);
      return this.#dirtyDentries.has(k) ? undefined : this.#cache.dentry(parent, name);
    },
  };

  #markDirty(tx: NsTx, delta: number): void {
    for (const c of tx.changes) {
      const [map, key] =
        c.kind === 'inode'
          ? ([this.#dirtyInodes, c.id] as [Map<number | string, number>, number])
          : ([this.#dirtyDentries, dentryId(c.parent, c.name)] as [Map<number | string, number>, string]);
      const n = (map.get(key) ?? 0) + delta;
      if (n <= 0) map.delete(key);
      else map.set(key, n);
    }
  }

  #afterCommit(tx: NsTx): void {
    this.#cache.applyCommitted(tx.changes);
    const c = this.#counts;
    c.files += tx.counts.files;
    c.dirs += tx.counts.dirs;
    c.symlinks += tx.counts.symlinks;
    c.blocks += tx.counts.blocks;
    const now = this.#clock();
    for (const id of tx.leasesEnded) this.#leases.delete(id);
    for (const [id, l] of tx.leasesGranted)
      this.#leases.set(id, { id: l.id, host: l.host, expiresAtMs: now + this.#opts.leaseTimeoutMs });
    if (tx.removedBlocks.length > 0) this.#opts.events?.blocksRemoved?.(tx.removedBlocks);
  }

  #status(ino: Inode, path: string): FileStatus {
    return toStatus(ino, path, this.#statusCtx);
  }

  get cache(): NamespaceCache {
    return this.#cache;
  }

  counts(): NamespaceCounts {
    return { ...this.#counts };
  }

  // ---- reads ------------------------------------------------------------------------------

  async getStatus(path: string, caller: Caller = ROOT_CALLER): Promise<FileStatus> {
    const comps = parsePath(path);
    const ino = await this.#read((r) => lookupExisting(r, comps, caller, path).inode);
    return this.#status(ino, path);
  }

  /** For each block id, the file it belongs to (committed or being written), or undefined. */
  async blockOwners(blockIds: readonly number[]): Promise<Map<number, FileInode | undefined>> {
    const gen = this.#cache.generation;
    return this.#store.read((mr) => {
      const sr = new SnapshotReader(mr, this.#cache, gen);
      const out = new Map<number, FileInode | undefined>();
      for (const id of blockIds) {
        const v = mr.get(blockKey(id));
        const f = v === undefined ? undefined : sr.inode(decodeU64(v));
        out.set(id, f?.type === 'file' ? f : undefined);
      }
      return out;
    });
  }

  /** A file by id (for calls that carry a file id), or undefined. */
  async inodeById(id: number): Promise<Inode | undefined> {
    return this.#read((r) => r.inode(id));
  }

  /** An inode with the path of its first name (undefined when it is gone; detached: "/.detached/<id>"). */
  async inodeWithPath(id: number): Promise<{ inode: Inode; path: string } | undefined> {
    return this.#read((r) => {
      const inode = r.inode(id);
      return inode === undefined ? undefined : { inode, path: pathOf(r, inode) };
    });
  }

  async list(
    path: string,
    opts: { startAfter?: string; limit?: number } = {},
    caller: Caller = ROOT_CALLER,
  ): Promise<{ entries: FileStatus[]; nextStartAfter?: string }> {
    const comps = parsePath(path);
    const limit = Math.min(opts.limit ?? DEFAULT_LIST_PAGE, MAX_LIST_PAGE);
    if (!Number.isInteger(limit) || limit < 1)
      throw fsError('EINVAL', path, `list limit must be 1..${MAX_LIST_PAGE}`);
    const dir = await this.#read((r) => {
      const d = resolveDir(r, comps, caller, path);
      requireAccess(d, caller, R | X, path);
      return d;
    });
    const gen = this.#cache.generation;
    const { startAfter } = opts;
    return this.#store.read((mr) => {
      const sr = new SnapshotReader(mr, this.#cache, gen);
      const start = startAfter === undefined ? undefined : dentryKey(dir.id, startAfter);
      const rows = mr.scan({
        prefix: dentryPrefix(dir.id),
        ...(start === undefined ? {} : { start }),
        limit: limit + 2,
      });
      const entries: FileStatus[] = [];
      let more = false;
      for (const row of rows) {
        const name = keyName(row.key);
        if (name === startAfter) continue;
        if (entries.length === limit) {
          more = true;
          break;
        }
        const ino = entryInode(sr, decodeDentry(row.value), path);
        entries.push(this.#status(ino, childPath(path, name)));
      }
      const last = entries[entries.length - 1];
      return more && last !== undefined ? { entries, nextStartAfter: last.name } : { entries };
    });
  }

  async readlink(path: string, caller: Caller = ROOT_CALLER): Promise<string> {
    const comps = parsePath(path);
    const ino = await this.#read((r) => lookupExisting(r, comps, caller, path).inode);
    if (ino.type !== 'symlink') throw fsError('EINVAL', path, 'not a symbolic link');
    return ino.target;
  }

  /** A file's status and the blocks overlapping [offset, offset+length), holes left out. */
  async getBlocks(
    path: string,
    offset = 0,
    length: number | undefined = undefined,
    caller: Caller = ROOT_CALLER,
  ): Promise<{ status: FileStatus; file: FileInode; blocks: LocatedFileBlock[] }> {
    const comps = parsePath(path);
    const ino = await this.#read((r) => resolveFollow(r, comps, caller, path));
    if (ino.type === 'dir') throw fsError('EISDIR', path);
    if (ino.type !== 'file') throw fsError('EINVAL', path, 'not a regular file');
    requireAccess(ino, caller, R, path);
    const end = length === undefined ? Number.MAX_SAFE_INTEGER : offset + length;
    const blocks: LocatedFileBlock[] = [];
    let pos = 0;
    for (let i = 0; i < ino.blocks.length && pos < end; i += 2) {
      const id = ino.blocks[i] as number;
      const len = ino.blocks[i + 1] as number;
      if (id !== 0 && pos + len > offset && len > 0) blocks.push({ blockId: id, offset: pos, length: len });
      pos += len;
    }
    return { status: this.#status(ino, path), file: ino, blocks };
  }

  async getXattr(path: string, name: string, caller: Caller = ROOT_CALLER): Promise<Buffer> {
    const comps = parsePath(path);
    checkXattrName(name, path);
    const ino = await this.#read((r) => lookupExisting(r, comps, caller, path).inode);
    requireAccess(ino, caller, R, path);
    const v = await this.#store.get(xattrKey(ino.id, name));
    if (v === undefined) throw fsError('ENODATA', path, `no attribute "${name}"`);
    return Buffer.from(v);
  }

  async listXattr(path: string, caller: Caller = ROOT_CALLER): Promise<string[]> {
    const comps = parsePath(path);
    const ino = await this.#read((r) => lookupExisting(r, comps, caller, path).inode);
    requireAccess(ino, caller, R, path);
    const rows = await this.#store.scan({ prefix: xattrPrefix(ino.id), limit: MAX_XATTRS_PER_INODE + 1 });
    return rows.map((r) => keyName(r.key));
  }

  /** Totals below a path: bytes, files, directories and cached bytes (a walk of the subtree). */
  async contentSummary(
    path: string,
    caller: Caller = ROOT_CALLER,
  ): Promise<{ length: number; files: number; dirs: number; cachedBytes: number }> {
    const comps = parsePath(path);
    const top = await this.#read((r) => lookupExisting(r, comps, caller, path).inode);
    const sum = { length: 0, files: 0, dirs: 0, cachedBytes: 0 };
    const visit = (ino: Inode): void => {
      if (ino.type === 'file') {
        sum.files++;
        sum.length += ino.length;
        sum.cachedBytes += this.#statusCtx.cachedBytes?.(ino) ?? 0;
      } else if (ino.type === 'symlink') sum.files++;
      else sum.dirs++;
    };
    visit(top);
    if (top.type !== 'dir') return sum;
    const stack: number[] = [top.id];
    const page = 1000;
    while (stack.length > 0) {
      const dirId = stack.pop() as number;
      let start: Uint8Array | undefined;
      for (;;) {
        const gen = this.#cache.generation;
        const rows = await this.#store.read((mr) => {
          const sr = new SnapshotReader(mr, this.#cache, gen);
          const got = mr.scan({
            prefix: dentryPrefix(dirId),
            ...(start === undefined ? {} : { start }),
            limit: page,
          });
          return got.map((row) => ({ key: row.key, ino: sr.inode(decodeDentry(row.value).id) }));
        });
        for (const { key, ino } of rows) {
          if (start !== undefined && Buffer.compare(key, start) === 0) continue;
          if (ino === undefined) continue;
          visit(ino);
          if (ino.type === 'dir') stack.push(ino.id);
        }
        if (rows.length < page) break;
        start = rows[rows.length - 1]?.key;
      }
    }
    return sum;
  }

  // ---- directory and entry mutations ------------------------------------------------------

  async mkdir(
    path: string,
    opts: { parents?: boolean; mode?: number } = {},
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<FileStatus> {
    const comps = parsePath(path);
    const mode = checkMode(opts.mode ?? DEFAULT_DIR_MODE, path);
    const ids = await this.#inodeIds.take(Math.max(1, comps.length));
    const now = this.#clock();
    const ino = await this.#mutate({ scope }, (tx) => {
      // A copy per run: the function may run again and must not see ids taken by an earlier run.
      const idq = [...ids];
      if (comps.length === 0) {
        if (opts.parents === true) return rootInode(tx);
        throw fsError('EEXIST', path);
      }
      const parent =
        opts.parents === true
          ? ensureParents(tx, comps, caller, path, mode, idq, now)
          : resolveParent(tx, comps, caller, path);
      const name = comps[comps.length - 1] as string;
      requireAccess(parent, caller, X, path);
      const existing = tx.dentry(parent.id, name);
      if (existing !== undefined) {
        if (opts.parents === true) {
          const ex = entryInode(tx, existing, path);
          if (ex.type === 'dir') return ex;
          if (ex.type === 'symlink') {
            const target = resolveDir(tx, comps, caller, path);
            return target;
          }
        }
        throw fsError('EEXIST', path);
      }
      requireAccess(parent, caller, W | X, path);
      return makeDir(tx, parent, name, mode, caller, idq.pop() as number, now);
    });
    return this.#status(ino, path);
  }

  async create(
    path: string,
    opts: CreateOptions = {},
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<{ status: FileStatus; leaseId: string; firstBlockId?: number }> {
    const comps = parsePath(path);
    const d = this.#opts.defaults;
    const mode = checkMode(opts.mode ?? DEFAULT_FILE_MODE, path);
    const blockSize =
      opts.blockSize === undefined || opts.blockSize === 0 ? d.blockSizeBytes : opts.blockSize;
    if (!Number.isInteger(blockSize) || blockSize < MIN_BLOCK_SIZE_BYTES || blockSize > MAX_BLOCK_SIZE_BYTES)
      throw fsError(
        'EINVAL',
        path,
        `block size ${blockSize} outside ${MIN_BLOCK_SIZE_BYTES}..${MAX_BLOCK_SIZE_BYTES} bytes`,
      );
    const replicas = opts.replicas ?? d.replicas;
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 16)
      throw fsError('EINVAL', path, `replicas ${replicas} outside 1..16`);
    const ttlMs = opts.ttlMs ?? d.ttlMs;
    if (!Number.isInteger(ttlMs) || ttlMs < 0)
      throw fsError('EINVAL', path, 'ttlMs must be a non-negative integer');
    const ttlAction =
      opts.ttlAction ??
      (opts.ttlMs !== undefined && opts.ttlMs > 0 && d.ttlAction === 'none' ? 'delete' : d.ttlAction);
    // Only `parents` can create directories on the way: otherwise the file's id is the only one.
    const ids = await this.#inodeIds.take(opts.parents === true ? Math.max(1, comps.length) : 1);
    const complete = opts.complete === true;
    // A file created complete is empty: it has no first block to allocate.
    const firstBlockId = opts.firstBlock === true && !complete ? await this.#blockIds.takeOne() : undefined;
    const leaseId = complete ? '' : randomUUID();
    const host = opts.clientHost ?? '';
    const now = this.#clock();
    const ino = await this.#mutate({ scope }, (tx) => {
      const idq = [...ids];
      if (comps.length === 0) throw fsError('EISDIR', path);
      const parent =
        opts.parents === true
          ? ensureParents(tx, comps, caller, path, DEFAULT_DIR_MODE, idq, now)
          : resolveParent(tx, comps, caller, path);
      const name = comps[comps.length - 1] as string;
      requireAccess(parent, caller, X, path);
      const existing = tx.dentry(parent.id, name);
      if (existing !== undefined) {
        const ex = entryInode(tx, existing, path);
        if (ex.type === 'dir') throw fsError('EISDIR', path);
        if (opts.overwrite !== true) throw fsError('EEXIST', path);
        requireAccess(parent, caller, W | X, path);
        requireStickyAllows(parent, ex, caller, path);
        removeEntry(tx, parent.id, name, ex, now);
        unlinkInode(tx, ex, parent.id, name, now);
      } else {
        requireAccess(parent, caller, W | X, path);
      }
      const p = tx.inode(parent.id) as DirInode;
      const file: FileInode = {
        type: 'file',
        id: idq.pop() as number,
        mode,
        uid: caller.uid,
        gid: (p.mode & S_ISGID) !== 0 ? p.gid : caller.gid,
        nlink: 1,
        atimeMs: now,
        mtimeMs: now,
        ctimeMs: now,
        links: [[p.id, name]],
        ttlMs,
        ttlAction,
        xattrCount: 0,
        xattrBytes: 0,
        length: 0,
        blockSize,
        replicas,
        storageType: opts.storageType ?? d.storageType,
        state: complete ? 'complete' : 'writing',
        blocks: [],
        lease: complete ? null : { id: leaseId, host },
        pending: firstBlockId === undefined ? [] : [firstBlockId],
      };
      tx.putInode(file, true);
      if (firstBlockId !== undefined) tx.indexBlock(firstBlockId, file.id);
      addEntry(tx, p.id, name, file, now);
      if (!complete) tx.grantLease(file.id, leaseId, host);
      return file;
    });
    // From the inode: a replayed retry returns the lease (and block) its first attempt granted.
    const status = this.#status(ino, path);
    const leased = ino.lease?.id ?? leaseId;
    const first = ino.type === 'file' ? ino.pending[0] : undefined;
    return first === undefined
      ? { status, leaseId: leased }
      : { status, leaseId: leased, firstBlockId: first };
  }

  /**
   * Enters a file that exists in a mounted UFS: complete, `size` bytes in blocks of `blockSize`
   * (allocated, cached nowhere yet), the object's mtime, and its UFS state. Missing parent
   * directories are created. An existing entry is left alone and returned when it is a file with
   * the same UFS version (two lookups raced); anything else there is EEXIST.
   */
  async importUfsFile(path: string, f: ImportUfsFile): Promise<{ status: FileStatus; file: FileInode }> {
    const comps = parsePath(path);
    if (comps.length === 0) throw fsError('EISDIR', path);
    const count = Math.ceil(f.ufs.size / f.blockSize);
    if (count > MAX_BLOCKS_PER_FILE)
      throw fsError(
        'EFBIG',
        path,
        `${count} blocks of ${f.blockSize} bytes: more than ${MAX_BLOCKS_PER_FILE}`,
      );
    if (
      !Number.isInteger(f.blockSize) ||
      f.blockSize < MIN_BLOCK_SIZE_BYTES ||
      f.blockSize > MAX_BLOCK_SIZE_BYTES
    )
      throw fsError(
        'EINVAL',
        path,
        `block size ${f.blockSize} outside ${MIN_BLOCK_SIZE_BYTES}..${MAX_BLOCK_SIZE_BYTES} bytes`,
      );
    const ids = await this.#inodeIds.take(Math.max(1, comps.length));
    const blockIds = count === 0 ? [] : await this.#blockIds.take(count);
    const now = this.#clock();
    const caller = ROOT_CALLER;
    const file = await this.#mutate({}, (tx): FileInode => {
      const idq = [...ids];
      const parent = ensureParents(tx, comps, caller, path, DEFAULT_DIR_MODE, idq, now);
      const name = comps[comps.length - 1] as string;
      const existing = tx.dentry(parent.id, name);
      if (existing !== undefined) {
        const ex = entryInode(tx, existing, path);
        if (ex.type === 'file' && ex.ufs !== undefined && sameUfsVersion(ex.ufs, f.ufs)) return ex;
        throw fsError('EEXIST', path);
      }
      const fileId = idq.pop() as number;
      const flat: number[] = [];
      for (let i = 0; i < count; i++) {
        const id = blockIds[i] as number;
        flat.push(id, Math.min(f.blockSize, f.ufs.size - i * f.blockSize));
        tx.indexBlock(id, fileId);
      }
      const p = tx.inode(parent.id) as DirInode;
      const ino: FileInode = {
        type: 'file',
        id: fileId,
        mode: f.mode ?? DEFAULT_FILE_MODE,
        uid: 0,
        gid: 0,
        nlink: 1,
        atimeMs: now,
        mtimeMs: f.ufs.mtimeMs > 0 ? f.ufs.mtimeMs : now,
        ctimeMs: now,
        links: [[p.id, name]],
        ttlMs: f.ttlMs,
        ttlAction: f.ttlAction,
        xattrCount: 0,
        xattrBytes: 0,
        length: f.ufs.size,
        blockSize: f.blockSize,
        replicas: f.replicas,
        storageType: f.storageType,
        state: 'complete',
        blocks: flat,
        lease: null,
        pending: [],
        ufs: f.ufs,
      };
      tx.putInode(ino, true);
      addEntry(tx, p.id, name, ino, now);
      return ino;
    });
    return { status: this.#status(file, path), file };
  }

  /** Sets (or clears) a file's UFS state; ENOENT when the file is gone, EISDIR for others. */
  async setUfsState(fileId: number, ufs: UfsFileState | undefined): Promise<FileInode> {
    return this.#mutate({}, (tx) => {
      const cur = tx.inode(fileId);
      if (cur === undefined)
        throw new FsError('ENOENT', `file ${fileId}: no such file`, { details: { fileId } });
      if (cur.type !== 'file')
        throw new FsError('EISDIR', `inode ${fileId} is not a file`, { details: { fileId } });
      const { ufs: _old, ...rest } = cur;
      const next: FileInode = ufs === undefined ? rest : { ...rest, ufs };
      tx.putInode(next);
      return next;
    });
  }

  async symlink(
    target: string,
    path: string,
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<FileStatus> {
    const comps = parsePath(path);
    checkSymlinkTarget(target, path);
    const id = await this.#inodeIds.takeOne();
    const now = this.#clock();
    const ino = await this.#mutate({ scope }, (tx) => {
      if (comps.length === 0) throw fsError('EEXIST', path);
      const parent = resolveParent(tx, comps, caller, path);
      const name = comps[comps.length - 1] as string;
      requireAccess(parent, caller, X, path);
      if (tx.dentry(parent.id, name) !== undefined) throw fsError('EEXIST', path);
      requireAccess(parent, caller, W | X, path);
      const link: SymlinkInode = {
        type: 'symlink',
        id,
        mode: 0o777,
        uid: caller.uid,
        gid: (parent.mode & S_ISGID) !== 0 ? parent.gid : caller.gid,
        nlink: 1,
        atimeMs: now,
        mtimeMs: now,
        ctimeMs: now,
        links: [[parent.id, name]],
        ttlMs: 0,
        ttlAction: 'none',
        xattrCount: 0,
        xattrBytes: 0,
        target,
      };
      tx.putInode(link, true);
      addEntry(tx, parent.id, name, link, now);
      return link;
    });
    return this.#status(ino, path);
  }

  async link(
    existing: string,
    path: string,
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<FileStatus> {
    const srcComps = parsePath(existing);
    const comps = parsePath(path);
    const now = this.#clock();
    const ino = await this.#mutate({ scope }, (tx) => {
      const src = lookupExisting(tx, srcComps, caller, existing).inode;
      if (src.type === 'dir') throw fsError('EPERM', existing, 'hard links to directories are not allowed');
      if (comps.length === 0) throw fsError('EEXIST', path);
      const parent = resolveParent(tx, comps, caller, path);
      const name = comps[comps.length - 1] as string;
      requireAccess(parent, caller, X, path);
      if (tx.dentry(parent.id, name) !== undefined) throw fsError('EEXIST', path);
      requireAccess(parent, caller, W | X, path);
      if (src.nlink >= MAX_HARD_LINKS) throw fsError('EMLINK', existing, `at most ${MAX_HARD_LINKS} links`);
      const updated: Inode = {
        ...src,
        nlink: src.nlink + 1,
        links: [...src.links, [parent.id, name]],
        ctimeMs: now,
      };
      tx.putInode(updated);
      addEntry(tx, parent.id, name, updated, now);
      return updated;
    });
    return this.#status(ino, path);
  }

  async delete(
    path: string,
    opts: { recursive?: boolean } = {},
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<void> {
    const comps = parsePath(path);
    if (comps.length === 0) throw fsError('EBUSY', path, 'the root directory cannot be deleted');
    const now = this.#clock();
    const limit = this.#opts.inlineDeleteEntries ?? DEFAULT_INLINE_DELETE_ENTRIES;
    const trashed = await this.#mutate({ scope }, (tx) => {
      const l = lookupExisting(tx, comps, caller, path);
      const parent = l.parent as DirInode;
      const ino = l.inode;
      requireAccess(parent, caller, W | X, path);
      requireStickyAllows(parent, ino, caller, path);
      if (ino.type !== 'dir') {
        removeEntry(tx, parent.id, l.name, ino, now);
        unlinkInode(tx, ino, parent.id, l.name, now);
        return false;
      }
      if (ino.children > 0) {
        if (opts.recursive !== true) throw fsError('ENOTEMPTY', path);
        requireAccess(ino, caller, W | X, path);
        const sub = collectSubtree(tx, ino, limit);
        if (!sub.complete) {
          // Too big for one transaction: detach it now (atomically invisible), purge it later.
          removeEntry(tx, parent.id, l.name, ino, now);
          tx.putInode({ ...ino, links: [], ttlMs: 0, ctimeMs: now });
          tx.putTrash(ino.id);
          return true;
        }
        if (!isRoot(caller)) checkSubtreeWritable(sub.items, caller, path);
        deleteItems(tx, sub.items, now);
      }
      removeEntry(tx, parent.id, l.name, ino, now);
      destroyInode(tx, tx.inode(ino.id) ?? ino);
      return false;
    });
    if (trashed) void this.purgeTrash();
  }

  async rename(
    src: string,
    dst: string,
    opts: { noReplace?: boolean } = {},
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<void> {
    const sc = parsePath(src);
    const dc = parsePath(dst);
    if (sc.length === 0) throw fsError('EBUSY', src, 'the root directory cannot be renamed');
    if (dc.length === 0) throw fsError('EBUSY', dst, 'cannot rename onto the root directory');
    const now = this.#clock();
    await this.#mutate({ scope }, (tx) =>
      renameIn(tx, sc, dc, src, dst, opts.noReplace === true, caller, now),
    );
  }

  async setAttr(
    path: string,
    a: SetAttrOptions,
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<FileStatus> {
    const comps = parsePath(path);
    if (a.mode !== undefined) checkMode(a.mode, path);
    if (a.ttlMs !== undefined && (!Number.isInteger(a.ttlMs) || a.ttlMs < 0))
      throw fsError('EINVAL', path, 'ttlMs must be a non-negative integer');
    if (a.replicas !== undefined && (!Number.isInteger(a.replicas) || a.replicas < 1 || a.replicas > 16))
      throw fsError('EINVAL', path, `replicas ${a.replicas} outside 1..16`);
    if (a.length !== undefined && (!Number.isSafeInteger(a.length) || a.length < 0))
      throw fsError('EINVAL', path, 'length must be a non-negative integer');
    const now = this.#clock();
    let committed: FileInode | undefined;
    const ino = await this.#mutate({ scope }, (tx) => {
      committed = undefined;
      const cur = lookupExisting(tx, comps, caller, path).inode;
      let next: Inode = cur;
      if (a.mode !== undefined) {
        requireOwner(cur, caller, path, 'change the mode');
        next = { ...next, mode: a.mode };
      }
      if (a.uid !== undefined && a.uid !== cur.uid) {
        if (!isRoot(caller)) throw fsError('EPERM', path, 'only root may change the owner');
        next = { ...next, uid: a.uid };
      }
      if (a.gid !== undefined && a.gid !== cur.gid) {
        if (!isRoot(caller) && !(caller.uid === cur.uid && inGroup(caller, a.gid)))
          throw fsError(
            'EPERM',
            path,
            'only root, or the owner for a group it belongs to, may change the group',
          );
        next = { ...next, gid: a.gid };
      }
      if (a.atimeMs !== undefined || a.mtimeMs !== undefined) {
        if (!isRoot(caller) && caller.uid !== cur.uid && !allowed(cur, caller, W))
          throw fsError('EPERM', path, 'only the owner or a writer may set times');
        next = {
          ...next,
          ...(a.atimeMs === undefined ? {} : { atimeMs: a.atimeMs }),
          ...(a.mtimeMs === undefined ? {} : { mtimeMs: a.mtimeMs }),
        };
      }
      if (a.ttlMs !== undefined || a.ttlAction !== undefined) {
        requireOwner(cur, caller, path, 'change the TTL');
        next = {
          ...next,
          ...(a.ttlMs === undefined ? {} : { ttlMs: a.ttlMs }),
          ...(a.ttlAction === undefined ? {} : { ttlAction: a.ttlAction }),
        };
      }
      if (a.replicas !== undefined) {
        if (next.type !== 'file')
          throw fsError(next.type === 'dir' ? 'EISDIR' : 'EINVAL', path, 'replication applies to files');
        if (!isRoot(caller) && caller.uid !== cur.uid && !allowed(cur, caller, W))
          throw fsError('EACCES', path, 'needs w permission');
        if (a.replicas !== next.replicas) {
          next = { ...next, replicas: a.replicas };
          committed = next;
        }
      }
      if (a.length !== undefined) {
        if (next.type === 'dir') throw fsError('EISDIR', path);
        if (next.type !== 'file') throw fsError('EINVAL', path, 'not a regular file');
        requireAccess(cur, caller, W, path);
        if (next.state === 'writing')
          throw fsError(
            'EBUSY',
            path,
            `being written${next.lease === null ? '' : ` by ${next.lease.host || 'a client'}`}`,
          );
        if (a.length !== next.length) {
          const t = truncateBlocks(next.blocks, next.length, a.length);
          if (blockCount(t.blocks) > MAX_BLOCKS_PER_FILE)
            throw fsError('EFBIG', path, `more than ${MAX_BLOCKS_PER_FILE} blocks`);
          tx.dropBlocks(t.dropped);
          next = {
            ...next,
            blocks: t.blocks,
            length: a.length,
            ...(a.mtimeMs === undefined ? { mtimeMs: now } : {}),
          };
        }
      }
      if (next === cur) return cur;
      next = { ...next, ctimeMs: now };
      tx.putInode(next);
      return next;
    });
    if (committed !== undefined && ino.type === 'file') this.#opts.events?.blocksCommitted?.(ino, []);
    return this.#status(ino, path);
  }

  async setXattr(
    path: string,
    name: string,
    value: Uint8Array,
    flag: 'any' | 'create' | 'replace' = 'any',
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<void> {
    const comps = parsePath(path);
    checkXattrName(name, path);
    if (value.length > MAX_XATTR_VALUE_BYTES)
      throw fsError('E2BIG', path, `attribute value above ${MAX_XATTR_VALUE_BYTES} bytes`);
    const bytes = Buffer.from(value);
    const now = this.#clock();
    await this.#mutate({ scope }, (tx) => {
      setXattrIn(tx, lookupExisting(tx, comps, caller, path).inode, name, bytes, flag, caller, path, now);
    });
  }

  async removeXattr(
    path: string,
    name: string,
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<void> {
    const comps = parsePath(path);
    checkXattrName(name, path);
    const now = this.#clock();
    await this.#mutate({ scope }, (tx) => {
      const ino = lookupExisting(tx, comps, caller, path).inode;
      requireXattrWrite(ino, name, caller, path);
      const old = tx.getXattr(ino.id, name);
      if (old === undefined) throw fsError('ENODATA', path, `no attribute "${name}"`);
      tx.tx.delete(xattrKey(ino.id, name));
      tx.putInode({
        ...ino,
        xattrCount: ino.xattrCount - 1,
        xattrBytes: Math.max(0, ino.xattrBytes - old.length - name.length),
        ctimeMs: now,
      });
    });
  }

  // ---- writing files under a lease ----------------------------------------------------------

  async openForWrite(
    path: string,
    clientHost = '',
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<{ status: FileStatus; leaseId: string; blocks: FileBlock[] }> {
    const comps = parsePath(path);
    const leaseId = randomUUID();
    const now = this.#clock();
    const target = await this.#read((r) => resolveFollow(r, comps, caller, path));
    const held = this.#leases.get(target.id);
    if (held !== undefined && held.expiresAtMs < now) await this.recoverLease(target.id, held.id);
    const ino = await this.#mutate({ scope }, (tx) => {
      const cur = resolveFollow(tx, comps, caller, path);
      if (cur.type === 'dir') throw fsError('EISDIR', path);
      if (cur.type !== 'file') throw fsError('EINVAL', path, 'not a regular file');
      requireAccess(cur, caller, W, path);
      if (cur.lease !== null)
        throw fsError('EBUSY', path, `being written${cur.lease.host === '' ? '' : ` by ${cur.lease.host}`}`);
      const next: FileInode = {
        ...cur,
        state: 'writing',
        lease: { id: leaseId, host: clientHost },
        pending: [],
        ctimeMs: now,
      };
      tx.putInode(next);
      tx.grantLease(cur.id, leaseId, clientHost);
      return next;
    });
    return {
      status: this.#status(ino, path),
      leaseId: ino.lease?.id ?? leaseId,
      blocks: toFileBlocks(ino.blocks),
    };
  }

  /** Checks a writer's lease before a file-id call: a missing file is ENOENT, a lost lease EBADF. */
  #checkLease(fileId: number, leaseId: string): LeaseState {
    const l = this.#leases.get(fileId);
    if (l === undefined || l.id !== leaseId)
      throw new FsError(
        'EBADF',
        `file ${fileId}: lease ${leaseId} is not held (expired, completed or replaced)`,
        {
          details: { fileId, leaseId },
        },
      );
    if (l.expiresAtMs < this.#clock())
      throw new FsError('EBADF', `file ${fileId}: lease ${leaseId} expired`, {
        details: { fileId, leaseId },
      });
    return l;
  }

  /** The file a writer holds, checked against its lease (cheap: memory and cache). */
  async leasedFile(fileId: number, leaseId: string): Promise<FileInode> {
    this.#checkLease(fileId, leaseId);
    const ino = await this.#read((r) => r.inode(fileId));
    if (ino === undefined)
      throw new FsError('ENOENT', `file ${fileId} no longer exists`, { details: { fileId } });
    if (ino.type !== 'file' || ino.lease?.id !== leaseId)
      throw new FsError('EBADF', `file ${fileId}: lease ${leaseId} is not held`, {
        details: { fileId, leaseId },
      });
    return ino;
  }

  #touchLease(fileId: number, leaseId: string): void {
    const l = this.#leases.get(fileId);
    if (l?.id === leaseId) l.expiresAtMs = Math.max(l.expiresAtMs, this.#clock() + this.#opts.leaseTimeoutMs);
  }

  renewLease(fileId: number, leaseId: string): number {
    const l = this.#checkLease(fileId, leaseId);
    l.expiresAtMs = this.#clock() + this.#opts.leaseTimeoutMs;
    return l.expiresAtMs;
  }

  /** Allocates a new block of a file being written. */
  async addBlock(
    fileId: number,
    leaseId: string,
    scope?: RequestScope,
  ): Promise<{ blockId: number; file: FileInode }> {
    this.#checkLease(fileId, leaseId);
    const newId = await this.#blockIds.takeOne();
    // The block id comes back from the transaction: a replayed retry returns the first attempt's.
    const { blockId, file } = await this.#mutate(
      { scope, precheck: () => this.#checkLease(fileId, leaseId) },
      (tx) => {
        const f = leasedIn(tx, fileId, leaseId);
        if (blockCount(f.blocks) + f.pending.length >= MAX_BLOCKS_PER_FILE)
          throw new FsError('EFBIG', `file ${fileId}: more than ${MAX_BLOCKS_PER_FILE} blocks`, {
            details: { fileId },
          });
        const next: FileInode = { ...f, pending: [...f.pending, newId] };
        tx.putInode(next);
        tx.indexBlock(newId, fileId);
        return { blockId: newId, file: next };
      },
    );
    this.#touchLease(fileId, leaseId);
    return { blockId, file };
  }

  async abandonBlock(fileId: number, leaseId: string, blockId: number, scope?: RequestScope): Promise<void> {
    await this.#mutate({ scope, precheck: () => this.#checkLease(fileId, leaseId) }, (tx) => {
      const f = leasedIn(tx, fileId, leaseId);
      if (!f.pending.includes(blockId))
        throw new FsError('EINVAL', `file ${fileId}: block ${blockId} was not allocated under this lease`, {
          details: { fileId, blockId },
        });
      tx.putInode({ ...f, pending: f.pending.filter((b) => b !== blockId) });
      tx.dropBlocks([blockId]);
    });
  }

  /**
   * Commits a writer's block list: blocks must come from the file (committed or allocated under
   * this lease) or be holes; lengths must add up to `length`. Blocks left out are deleted.
   */
  async complete(
    fileId: number,
    leaseId: string,
    blocks: readonly CommittedBlock[],
    length: number,
    mtimeMs?: number,
    scope?: RequestScope,
  ): Promise<FileStatus> {
    const now = this.#clock();
    const { file, path } = await this.#mutate(
      { scope, precheck: () => this.#checkLease(fileId, leaseId) },
      (tx) => {
        const next = completeIn(tx, fileId, leaseId, blocks, length, now, mtimeMs);
        return { file: next, path: pathOf(tx, next) };
      },
    );
    this.#opts.events?.blocksCommitted?.(
      file,
      blocks.filter((b) => b.blockId !== 0),
    );
    return this.#status(file, path);
  }

  /**
   * Complete, attributes and rename in one transaction (what an object store's PUT needs to make
   * an object appear whole and atomically, in one durable commit instead of three): commits the
   * writer's block list as `complete` does, sets `xattrs` on the file, and with `renameTo` renames
   * it there (replacing a file, as `rename` does). Any refusal (a missing parent, a directory at
   * `renameTo`, a lost lease) changes nothing: the file stays open under its lease.
   */
  async completeAs(
    fileId: number,
    leaseId: string,
    c: CompleteAsOptions,
    caller: Caller = ROOT_CALLER,
    scope?: RequestScope,
  ): Promise<FileStatus> {
    const now = this.#clock();
    const dc = c.renameTo === undefined ? undefined : parsePath(c.renameTo);
    if (dc?.length === 0) throw fsError('EBUSY', c.renameTo ?? '/', 'cannot rename onto the root directory');
    for (const x of c.xattrs ?? []) {
      checkXattrName(x.name, `file ${fileId}`);
      if (x.value.length > MAX_XATTR_VALUE_BYTES)
        throw fsError('E2BIG', `file ${fileId}`, `attribute value above ${MAX_XATTR_VALUE_BYTES} bytes`);
    }
    const { file, path } = await this.#mutate(
      { scope, precheck: () => this.#checkLease(fileId, leaseId) },
      (tx) => {
        let done = completeIn(tx, fileId, leaseId, c.blocks, c.length, now, c.mtimeMs);
        if (c.concat !== undefined && c.concat.length > 0) done = concatIn(tx, done, c.concat, caller, now);
        const from = pathOf(tx, done);
        for (const x of c.xattrs ?? []) {
          const cur = tx.inode(fileId) ?? done;
          setXattrIn(tx, cur, x.name, Buffer.from(x.value), 'any', caller, from, now);
        }
        if (dc === undefined || c.renameTo === undefined) {
          return { file: tx.inode(fileId) ?? done, path: from };
        }
        renameIn(tx, parsePath(from), dc, from, c.renameTo, false, caller, now);
        const moved = tx.inode(fileId) ?? done;
        return { file: moved, path: pathOf(tx, moved) };
      },
    );
    if (file.type === 'file') {
      // After a concat every block of the file is checked (an empty list): its replication is
      // now this file's.
      this.#opts.events?.blocksCommitted?.(
        file,
        c.concat !== undefined && c.concat.length > 0 ? [] : c.blocks.filter((b) => b.blockId !== 0),
      );
    }
    return this.#status(file, path);
  }

  /** Ends expired leases: the file keeps its last committed blocks and becomes complete. */
  async recoverExpiredLeases(): Promise<number> {
    const now = this.#clock();
    let n = 0;
    for (const [fileId, l] of [...this.#leases]) {
      if (l.expiresAtMs >= now) continue;
      await this.recoverLease(fileId, l.id);
      n++;
    }
    return n;
  }

  async recoverLease(fileId: number, leaseId: string): Promise<void> {
    const now = this.#clock();
    await this.#mutate({}, (tx) => {
      const f = tx.inode(fileId);
      if (f === undefined || f.type !== 'file' || f.lease?.id !== leaseId) {
        tx.endLease(fileId);
        return;
      }
      tx.dropBlocks(f.pending);
      tx.putInode({ ...f, pending: [], lease: null, state: 'complete', ctimeMs: now });
      tx.endLease(fileId);
    });
    this.#log.info({ fileId, leaseId }, 'write lease expired: file closed with its last committed blocks');
  }

  openLeases(): { fileId: number; leaseId: string; host: string; expiresAtMs: number }[] {
    return [...this.#leases].map(([fileId, l]) => ({
      fileId,
      leaseId: l.id,
      host: l.host,
      expiresAtMs: l.expiresAtMs,
    }));
  }

  // ---- TTL and trash ------------------------------------------------------------------------

  /** Applies TTL actions to entries whose expiry passed; returns how many were handled. */
  async runTtl(): Promise<{ deleted: number; freed: number; skipped: number }> {
    const res = { deleted: 0, freed: 0, skipped: 0 };
    const now = this.#clock();
    const rows = await this.#store.scan({ prefix: ttlPrefix(), end: ttlEnd(now), limit: TTL_BATCH });
    for (const row of rows) {
      const { expiryMs, id } = parseTtlKey(row.key);
      const outcome = await this.#applyTtl(id, expiryMs, now).catch((err: unknown) => {
        this.#log.warn({ err, id }, 'TTL action failed; will retry on the next pass');
        return 'skipped' as const;
      });
      res[outcome]++;
    }
    if (rows.length > 0) this.#log.info(res, 'TTL pass');
    return res;
  }

  async #applyTtl(id: number, expiryMs: number, now: number): Promise<'deleted' | 'freed' | 'skipped'> {
    const limit = this.#opts.inlineDeleteEntries ?? DEFAULT_INLINE_DELETE_ENTRIES;
    let freeFile: FileInode | undefined;
    const ino = await this.#read((r) => r.inode(id));
    if (ino?.type === 'file' && ino.ttlAction === 'free') {
      freeFile = this.#opts.events?.canFree?.(ino) === true ? ino : undefined;
    }
    const outcome = await this.#mutate({}, (tx): 'deleted' | 'freed' | 'skipped' | 'trashed' => {
      const cur = tx.inode(id);
      const key = cur === undefined ? undefined : ttlBaseMs(cur) + cur.ttlMs;
      if (cur === undefined || cur.ttlMs <= 0 || cur.ttlAction === 'none' || key !== expiryMs || key > now) {
        // Stale index entry (the inode changed since): drop it; a current one exists if due.
        tx.tx.delete(ttlKey(expiryMs, id));
        return 'skipped';
      }
      if (cur.type === 'file' && cur.state === 'writing') return 'skipped';
      if (cur.ttlAction === 'free') {
        // Done once: a freed file keeps no TTL. A file whose only copy is in Strata (no UFS
        // behind it) is never freed; its TTL is dropped too, so it does not block the index.
        tx.putInode({ ...cur, ttlMs: 0, ctimeMs: now });
        return cur.type === 'file' && freeFile !== undefined ? 'freed' : 'skipped';
      }
      // delete: every name of the inode goes.
      if (cur.type === 'dir') {
        const sub = collectSubtree(tx, cur, limit);
        const [pid, name] = cur.links[0] ?? [0, ''];
        if (!sub.complete) {
          if (pid !== 0) removeEntry(tx, pid, name, cur, now);
          tx.putInode({ ...cur, links: [], ttlMs: 0, ctimeMs: now });
          tx.putTrash(cur.id);
          return 'trashed';
        }
        deleteItems(tx, sub.items, now);
        if (pid !== 0) removeEntry(tx, pid, name, cur, now);
        destroyInode(tx, tx.inode(cur.id) ?? cur);
        return 'deleted';
      }
      for (const [pid, name] of cur.links) removeEntry(tx, pid, name, cur, now);
      destroyInode(tx, cur);
      return 'deleted';
    });
    if (outcome === 'freed' && freeFile !== undefined) {
      const ids = realBlockIds(freeFile.blocks);
      const ev = this.#opts.events;
      if (ev?.blocksFreed !== undefined) ev.blocksFreed(ids);
      else ev?.blocksRemoved?.(ids);
    }
    if (outcome === 'skipped' && ino?.ttlAction === 'free')
      this.#log.warn({ id }, 'TTL free skipped: the file has no copy outside Strata; its TTL is cleared');
    if (outcome === 'trashed') {
      void this.purgeTrash();
      return 'deleted';
    }
    return outcome;
  }

  /**
   * Purges detached subtrees in the background (also resumes purges after a restart). Never
   * rejects: a failure is logged and the next call (or restart) resumes where it stopped.
   */
  purgeTrash(): Promise<void> {
    this.#trashPurging ??= this.#purgeLoop()
      .catch((err: unknown) => {
        if (this.#store.isOpen) this.#log.error({ err }, 'trash purge failed; will resume later');
      })
      .finally(() => {
        this.#trashPurging = undefined;
      });
    return this.#trashPurging;
  }

  async #purgeLoop(): Promise<void> {
    for (;;) {
      if (!this.#store.isOpen) return;
      const rows = await this.#store.scan({ prefix: trashPrefix(), limit: 1 });
      const row = rows[0];
      if (row === undefined) return;
      const id = keyId(row.key);
      const now = this.#clock();
      await this.#mutate({}, (tx) => {
        const dir = tx.inode(id);
        if (dir === undefined || dir.type !== 'dir') {
          tx.deleteTrash(id);
          return;
        }
        const sub = collectSubtree(tx, dir, TRASH_PURGE_BATCH);
        deleteItems(tx, sub.items, now);
        if (sub.complete) {
          destroyInode(tx, tx.inode(id) ?? dir);
          tx.deleteTrash(id);
        }
      });
    }
  }

  /** Waits for background purging to finish (shutdown, tests). */
  async idle(): Promise<void> {
    await this.#trashPurging;
  }
}

interface StoredFormat {
  version: number;
  clusterId: string;
  createdAtMs: number;
}

/** The TTL index key bound just after every entry expiring at or before `ms`. */
function ttlEnd(ms: number): Buffer {
  return ttlKey(Math.max(0, Math.floor(ms)) + 1, 0);
}

function checkMode(mode: number, path: string): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)
    throw fsError('EINVAL', path, 'mode must be 0..0o7777');
  return mode;
}

function checkXattrName(name: string, path: string): void {
  if (typeof name !== 'string' || name === '') throw fsError('EINVAL', path, 'attribute name is empty');
  if (Buffer.byteLength(name, 'utf8') > 255)
    throw fsError('ERANGE', path, 'attribute name longer than 255 bytes');
  if (!XATTR_NAMESPACES.some((ns) => name.startsWith(ns) && name.length > ns.length))
    throw fsError('ENOTSUP', path, `attribute "${name}" must start with ${XATTR_NAMESPACES.join(', ')}`);
}

function requireXattrWrite(ino: Inode, name: string, caller: Caller, path: string): void {
  if (name.startsWith('user.')) {
    if (!isRoot(caller) && caller.uid !== ino.uid && !allowed(ino, caller, W))
      throw fsError('EACCES', path, 'needs w permission to change user attributes');
    return;
  }
  if (!isRoot(caller))
    throw fsError('EPERM', path, `only root may change "${name.split('.')[0] ?? ''}." attributes`);
}

/** Non-root recursive delete: every directory below must be writable and searchable. */
function checkSubtreeWritable(
  items: readonly { inode: Inode; parentId: number }[],
  caller: Caller,
  path: string,
): void {
  for (const it of items) {
    if (it.inode.type === 'dir' && !allowed(it.inode, caller, W | X))
      throw fsError(
        'EACCES',
        path,
        `needs wx permission on every directory below (directory ${it.inode.id})`,
      );
  }
}

/** Creates missing directories of comps[0..-1] (mkdir -p); returns the last one. */
function ensureParents(
  tx: NsTx,
  comps: readonly string[],
  caller: Caller,
  path: string,
  mode: number,
  ids: number[],
  now: number,
): DirInode {
  let cur = rootInode(tx);
  for (let i = 0; i < comps.length - 1; i++) {
    const name = comps[i] as string;
    requireAccess(cur, caller, X, path);
    const d = tx.dentry(cur.id, name);
    if (d === undefined) {
      requireAccess(cur, caller, W | X, path);
      cur = makeDir(tx, cur, name, mode | 0o300, caller, ids.pop() as number, now);
      continue;
    }
    const ino = entryInode(tx, d, path);
    if (ino.type === 'dir') cur = ino;
    else if (ino.type === 'symlink') cur = resolveDir(tx, comps.slice(0, i + 1), caller, path);
    else throw fsError('ENOTDIR', path);
  }
  return cur;
}

function makeDir(
  tx: NsTx,
  parent: DirInode,
  name: string,
  mode: number,
  caller: Caller,
  id: number,
  now: number,
): DirInode {
  const p = tx.inode(parent.id) as DirInode;
  const setgid = (p.mode & S_ISGID) !== 0;
  const dir: DirInode = {
    type: 'dir',
    id,
    mode: setgid ? mode | S_ISGID : mode,
    uid: caller.uid,
    gid: setgid ? p.gid : caller.gid,
    nlink: 2,
    atimeMs: now,
    mtimeMs: now,
    ctimeMs: now,
    links: [[p.id, name]],
    ttlMs: 0,
    ttlAction: 'none',
    xattrCount: 0,
    xattrBytes: 0,
    children: 0,
  };
  tx.putInode(dir, true);
  addEntry(tx, p.id, name, dir, now);
  return dir;
}

/** The body of a rename inside a transaction (see Namespace.rename). */
function renameIn(
  tx: NsTx,
  sc: readonly string[],
  dc: readonly string[],
  src: string,
  dst: string,
  noReplace: boolean,
  caller: Caller,
  now: number,
): void {
  const s = lookupExisting(tx, sc, caller, src);
  const sParent = s.parent as DirInode;
  const ino = s.inode;
  const dParent = resolveParent(tx, dc, caller, dst);
  const dName = dc[dc.length - 1] as string;
  requireAccess(dParent, caller, X, dst);
  if (ino.type === 'dir' && isAncestorOrSelf(tx, ino.id, dParent))
    throw fsError('EINVAL', dst, `cannot move ${src} into its own subtree`);
  const dd = tx.dentry(dParent.id, dName);
  const target = dd === undefined ? undefined : entryInode(tx, dd, dst);
  if (target !== undefined) {
    if (target.id === ino.id) return;
    if (noReplace) throw fsError('EEXIST', dst);
    if (ino.type === 'dir' && target.type !== 'dir') throw fsError('ENOTDIR', dst);
    if (ino.type !== 'dir' && target.type === 'dir') throw fsError('EISDIR', dst);
    if (target.type === 'dir' && target.children > 0) throw fsError('ENOTEMPTY', dst);
  }
  requireAccess(sParent, caller, W | X, src);
  requireAccess(dParent, caller, W | X, dst);
  requireStickyAllows(sParent, ino, caller, src);
  if (target !== undefined) requireStickyAllows(dParent, target, caller, dst);
  if (ino.type === 'dir' && sParent.id !== dParent.id) requireAccess(ino, caller, W, src);
  if (target !== undefined) {
    removeEntry(tx, dParent.id, dName, target, now);
    if (target.type === 'dir') destroyInode(tx, target);
    else unlinkInode(tx, target, dParent.id, dName, now);
  }
  removeEntry(tx, sParent.id, s.name, ino, now);
  const cur = tx.inode(ino.id) ?? ino;
  const moved: Inode = {
    ...cur,
    links: [...withoutLink(cur.links, sParent.id, s.name), [dParent.id, dName]],
    ctimeMs: now,
  };
  tx.putInode(moved);
  addEntry(tx, dParent.id, dName, moved, now);
}

/** Sets one attribute of `ino` inside a transaction (see Namespace.setXattr). */
function setXattrIn(
  tx: NsTx,
  ino: Inode,
  name: string,
  bytes: Buffer,
  flag: 'any' | 'create' | 'replace',
  caller: Caller,
  path: string,
  now: number,
): void {
  requireXattrWrite(ino, name, caller, path);
  const old = tx.getXattr(ino.id, name);
  if (old !== undefined && flag === 'create') throw fsError('EEXIST', path, `attribute "${name}" exists`);
  if (old === undefined && flag === 'replace') throw fsError('ENODATA', path, `no attribute "${name}"`);
  const count = ino.xattrCount + (old === undefined ? 1 : 0);
  const total =
    ino.xattrBytes - (old === undefined ? 0 : old.length + name.length) + bytes.length + name.length;
  if (count > MAX_XATTRS_PER_INODE)
    throw fsError('ENOSPC', path, `at most ${MAX_XATTRS_PER_INODE} attributes`);
  if (total > MAX_XATTR_BYTES_PER_INODE)
    throw fsError('ENOSPC', path, `attributes above ${MAX_XATTR_BYTES_PER_INODE} bytes`);
  tx.tx.put(xattrKey(ino.id, name), bytes);
  tx.putInode({ ...ino, xattrCount: count, xattrBytes: total, ctimeMs: now });
}

/** Commits a writer's block list inside a transaction (see Namespace.complete); returns the file. */
function completeIn(
  tx: NsTx,
  fileId: number,
  leaseId: string,
  blocks: readonly CommittedBlock[],
  length: number,
  now: number,
  mtimeMs: number | undefined,
): FileInode {
  const f = leasedIn(tx, fileId, leaseId);
  const where = `file ${fileId}`;
  const allowedIds = new Set<number>([...realBlockIds(f.blocks), ...f.pending]);
  if (blocks.length > MAX_BLOCKS_PER_FILE)
    throw new FsError('EFBIG', `${where}: more than ${MAX_BLOCKS_PER_FILE} blocks`);
  const flat: number[] = [];
  const seen = new Set<number>();
  let sum = 0;
  for (const b of blocks) {
    if (b.blockId !== 0) {
      if (!allowedIds.has(b.blockId))
        throw new FsError('EINVAL', `${where}: block ${b.blockId} does not belong to this file`, {
          details: { fileId, blockId: b.blockId },
        });
      if (seen.has(b.blockId)) throw new FsError('EINVAL', `${where}: block ${b.blockId} listed twice`);
      if (b.length > f.blockSize)
        throw new FsError(
          'EINVAL',
          `${where}: block ${b.blockId} length ${b.length} exceeds the block size ${f.blockSize}`,
        );
      seen.add(b.blockId);
    }
    flat.push(b.blockId, b.length);
    sum += b.length;
  }
  if (sum !== length)
    throw new FsError('EINVAL', `${where}: block lengths add up to ${sum}, not the file length ${length}`, {
      details: { fileId },
    });
  tx.dropBlocks([...allowedIds].filter((id) => !seen.has(id)));
  const next: FileInode = {
    ...f,
    blocks: flat,
    length,
    pending: [],
    lease: null,
    state: 'complete',
    mtimeMs: mtimeMs ?? now,
    ctimeMs: now,
  };
  tx.putInode(next);
  tx.endLease(fileId);
  return next;
}

/**
 * Appends complete files to `f` (just completed by its writer) inside its transaction: each
 * source's blocks, holes included, follow `f`'s in order and are re-owned by `f` (the block
 * count does not change: no block is dropped, none is copied), and the source's name and inode
 * go. The source must be what the caller expects at its path (ESTALE otherwise: replaced or
 * removed since it looked), a closed regular file with no other name (EMLINK: a hard link would
 * lose its data) and no UFS copy (its blocks are a cache of that object), removable by the caller
 * as `delete` checks. `f`'s block size grows to its largest source's, so every block fits it.
 * Any refusal throws, and the transaction changes nothing.
 */
function concatIn(
  tx: NsTx,
  f: FileInode,
  sources: readonly ConcatSource[],
  caller: Caller,
  now: number,
): FileInode {
  const flat = [...f.blocks];
  let length = f.length;
  let blockSize = f.blockSize;
  const seen = new Set<number>([f.id]);
  for (const s of sources) {
    if (seen.has(s.fileId))
      throw fsError('EINVAL', s.path, s.fileId === f.id ? 'cannot append a file to itself' : 'listed twice');
    seen.add(s.fileId);
    const comps = parsePath(s.path);
    let l: ReturnType<typeof lookupExisting>;
    try {
      l = lookupExisting(tx, comps, caller, s.path);
    } catch (err) {
      if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR'))
        throw fsError('ESTALE', s.path, `file ${s.fileId} is no longer there`);
      throw err;
    }
    const ino = l.inode;
    if (ino.id !== s.fileId)
      throw fsError('ESTALE', s.path, `holds file ${ino.id} now, not file ${s.fileId}`);
    if (ino.type === 'dir') throw fsError('EISDIR', s.path);
    if (ino.type !== 'file') throw fsError('EINVAL', s.path, 'not a regular file');
    if (ino.state !== 'complete' || ino.lease !== null) throw fsError('EBUSY', s.path, 'open for writing');
    if (ino.nlink > 1 || ino.links.length > 1)
      throw fsError('EMLINK', s.path, 'has other names (hard links)');
    if (ino.ufs !== undefined) throw fsError('EINVAL', s.path, 'its data is held by a UFS');
    const parent = l.parent as DirInode;
    requireAccess(parent, caller, W | X, s.path);
    requireStickyAllows(parent, ino, caller, s.path);
    requireAccess(ino, caller, R, s.path);
    for (let i = 0; i < ino.blocks.length; i += 2) {
      const id = ino.blocks[i] as number;
      flat.push(id, ino.blocks[i + 1] as number);
      if (id !== 0) tx.moveBlock(id, f.id);
    }
    length += ino.length;
    blockSize = Math.max(blockSize, ino.blockSize);
    removeEntry(tx, parent.id, l.name, ino, now);
    tx.dropXattrs(ino);
    tx.deleteInode(ino);
  }
  if (flat.length / 2 > MAX_BLOCKS_PER_FILE)
    throw new FsError('EFBIG', `file ${f.id}: more than ${MAX_BLOCKS_PER_FILE} blocks`);
  const next: FileInode = { ...f, blocks: flat, length, blockSize };
  tx.putInode(next);
  return next;
}

/** The file, inside a transaction, if `leaseId` still holds it. */
function leasedIn(tx: NsTx, fileId: number, leaseId: string): FileInode {
  const f = tx.inode(fileId);
  if (f === undefined)
    throw new FsError('ENOENT', `file ${fileId} no longer exists`, { details: { fileId } });
  if (f.type !== 'file' || f.lease?.id !== leaseId)
    throw new FsError('EBADF', `file ${fileId}: lease ${leaseId} is not held`, {
      details: { fileId, leaseId },
    });
  return f;
}

/** One path of an inode (its first name), for statuses of calls that carry an id. */
function pathOf(r: NsReader, ino: Inode): string {
  const parts: string[] = [];
  let cur: Inode | undefined = ino;
  for (let depth = 0; cur !== undefined && cur.id !== ROOT_ID && depth < 100_000; depth++) {
    const l = cur.links[0];
    if (l === undefined) return `/.detached/${ino.id}`;
    parts.push(l[1]);
    cur = r.inode(l[0]);
  }
  return `/${parts.reverse().join('/')}`;
}

/**
 * Truncates (metadata only) a flattened block list from `oldLen` to `newLen` bytes. Shrinking
 * keeps whole blocks, shortens the one the new end falls in, and drops the rest; growing appends
 * (or extends) one hole.
 */
export function truncateBlocks(
  blocks: readonly number[],
  oldLen: number,
  newLen: number,
): { blocks: number[]; dropped: number[] } {
  if (newLen >= oldLen) {
    const out = [...blocks];
    const extra = newLen - oldLen;
    if (extra === 0) return { blocks: out, dropped: [] };
    const lastId = out[out.length - 2];
    if (out.length >= 2 && lastId === 0) out[out.length - 1] = (out[out.length - 1] as number) + extra;
    else out.push(0, extra);
    return { blocks: out, dropped: [] };
  }
  const out: number[] = [];
  const dropped: number[] = [];
  let pos = 0;
  for (let i = 0; i < blocks.length; i += 2) {
    const id = blocks[i] as number;
    const len = blocks[i + 1] as number;
    if (pos >= newLen) {
      if (id !== 0) dropped.push(id);
    } else if (pos + len > newLen) {
      out.push(id, newLen - pos);
    } else {
      out.push(id, len);
    }
    pos += len;
  }
  return { blocks: out, dropped };
}
