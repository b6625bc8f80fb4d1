/**
 * The Strata file system client: the one way programs and front ends (CLI, FUSE, S3 gateway,
 * the proxy's cluster tier) reach a cluster. Metadata goes to the master set (with failover),
 * block data to and from workers (short-circuit when a worker is on this machine).
 *
 * ```ts
 * const fs = await FileSystem.connect({ config: loadConfig().config });
 * await fs.writeFile('/data/hello.txt', 'hello');
 * const text = (await fs.readFile('/data/hello.txt')).toString();
 * await fs.close();
 * ```
 *
 * Paths are absolute ("/a/b"). Namespace errors are `FsError`s with POSIX codes (ENOENT, EEXIST,
 * ENOTDIR, ENOTEMPTY, EACCES…); an unreachable cluster is a `StrataError` STRATA_UNAVAILABLE.
 */
import { Readable } from 'node:stream';
import type { Registry } from 'prom-client';
import type { ClusterConfig, TtlAction } from '../common/config/index.js';
import type { UnaryCall } from '../rpc/api.js';
import { defaultConfig } from '../common/config/index.js';
import { FsError, UsageError, fsError } from '../common/errors.js';
import { silentLogger } from '../common/logging.js';
import type { Logger } from '../common/logging.js';
import {
  DecommissionWorker,
  Delete,
  GetBlockLocations,
  GetClusterInfo,
  GetContentSummary,
  GetStatus,
  GetXattr,
  Link,
  List,
  ListWorkers,
  ListXattr,
  Mkdir,
  Readlink,
  RemoveXattr,
  Rename,
  SetAttr,
  SetXattr,
  Symlink,
} from '../protocol/master-calls.js';
import {
  CancelLoad,
  Free,
  GetCacheReport,
  GetLoad,
  ListLoads,
  ListMounts,
  Mount,
  SubmitLoad,
  Unmount,
} from '../protocol/mount-calls.js';
import { MAX_PATH_BYTES, MAX_XATTR_VALUE_BYTES } from '../protocol/types.js';
import type { LoadJobStatus, MountInfo } from '../protocol/ufs-types.js';
import type { Caller, FileStatus, LocatedBlock, WorkerInfo } from '../protocol/types.js';
import { closedError } from './errors.js';
import type { IoContext } from './io-context.js';
import { FileReader } from './file-reader.js';
import type { ReadStreamOptions } from './file-reader.js';
import { FileWriteStream, FileWriter } from './file-writer.js';
import type { CreateOptions } from './file-writer.js';
import { MasterClient } from './master-client.js';
import { ClientMetrics } from './metrics.js';
import { RandomWriteHandle } from './random-writer.js';
import type { OpenForWriteOptions } from './random-writer.js';
import { defaultConnector } from './rpc-connector.js';
import {
  LIST_PAGE_SIZE,
  MASTER_KEEPALIVE_INTERVAL_MS,
  MASTER_KEEPALIVE_TIMEOUT_MS,
  settingsFromConfig,
} from './settings.js';
import type { ClientSettings } from './settings.js';
import { LocalReadPolicy } from './local-read-policy.js';
import { MemoryBudget } from './spill-buffer.js';
import type { RpcConnector } from './transport.js';
import { WorkerPool } from './worker-pool.js';

export interface FileSystemOptions {
  /** The cluster configuration (its `[client]` section and master addresses); default: built-in defaults. */
  config?: ClusterConfig;
  /** Overrides of single settings (e.g. `{ shortCircuit: false }`). */
  settings?: Partial<ClientSettings>;
  /** Who the calls act as (permission checks); default: this process's uid and gids. */
  caller?: Caller | null;
  /** Registry for client metrics (read/write bytes, local vs remote). */
  registry?: Registry;
  log?: Logger;
  /** How channels are made (default: the cluster RPC client). Tests pass fakes here. */
  connector?: RpcConnector;
}

export interface MkdirOptions {
  /** Create missing parents and succeed when the directory exists (`mkdir -p`). */
  parents?: boolean;
  mode?: number;
}

export interface ListOptions {
  /** Entries per page (at most 10,000). */
  pageSize?: number;
  /** Start after this name (resume a listing). */
  startAfter?: string;
}

export interface SetAttrOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  atimeMs?: number;
  mtimeMs?: number;
  /** Truncate (or extend with a hole) a file not being written. */
  length?: number;
  ttlMs?: number;
  ttlAction?: TtlAction;
  replicas?: number;
}

export interface ContentSummary {
  length: number;
  files: number;
  dirs: number;
  cachedBytes: number;
}

export type ClusterInfo = Awaited<ReturnType<FileSystem['clusterInfo']>>;

/** `strata mount` options; absent = the master's defaults (see docs/ufs.md). */
export type MountRequest = Omit<RequestOf<typeof Mount>, 'uri' | 'path'>;
type RequestOf<D> = D extends UnaryCall<infer R, unknown> ? R : never;
export type CacheReport = Awaited<ReturnType<FileSystem['cacheReport']>>;
export type FreeResult = Awaited<ReturnType<FileSystem['free']>>;

export class FileSystem {
  readonly settings: ClientSettings;
  readonly #ctx: IoContext;
  readonly #caller: Caller | undefined;
  #closed = false;

  private constructor(ctx: IoContext, caller: Caller | undefined) {
    this.#ctx = ctx;
    this.settings = ctx.settings;
    this.#caller = caller;
  }

  /**
   * Makes a client. Connections open lazily on the first call, so this does not fail when the
   * cluster is down; the first call does (STRATA_UNAVAILABLE).
   */
  static async connect(opts: FileSystemOptions = {}): Promise<FileSystem> {
    return FileSystem.create(opts);
  }

  /** Like `connect`, synchronously. */
  static create(opts: FileSystemOptions = {}): FileSystem {
    const settings = settingsFromConfig(opts.config ?? defaultConfig(), opts.settings);
    if (settings.masterAddrs.length === 0)
      throw new UsageError('no master address configured (client.master_addrs)');
    const connector = opts.connector ?? defaultConnector();
    const log = opts.log ?? silentLogger();
    const metrics = opts.registry === undefined ? undefined : new ClientMetrics(opts.registry);
    const channel = connector.connect({
      addresses: settings.masterAddrs,
      callTimeoutMs: settings.rpcTimeoutMs,
      connectTimeoutMs: settings.connTimeoutMs,
      retryMax: settings.rpcRetryMax,
      label: 'master',
      keepaliveIntervalMs: MASTER_KEEPALIVE_INTERVAL_MS,
      keepaliveTimeoutMs: MASTER_KEEPALIVE_TIMEOUT_MS,
    });
    const ctx: IoContext = {
      settings,
      master: new MasterClient(channel, settings.masterAddrs, metrics, settings.rpcTimeoutMs),
      workers: new WorkerPool(connector, settings),
      metrics,
      budget: new MemoryBudget(settings.memoryBudgetBytes),
      localReads: new LocalReadPolicy(settings.localReadInlineMaxBytes, settings.syncLocalReadMaxBytes),
      log,
    };
    const caller = opts.caller === null ? undefined : (opts.caller ?? processCaller());
    return new FileSystem(ctx, caller);
  }

  // ---- namespace -------------------------------------------------------------------------------

  async stat(path: string): Promise<FileStatus> {
    return this.#master(GetStatus, { path: this.#path(path) });
  }

  /** stat, or undefined when the path does not exist. */
  async exists(path: string): Promise<FileStatus | undefined> {
    try {
      return await this.stat(path);
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async mkdir(path: string, opts: MkdirOptions = {}): Promise<FileStatus> {
    const p = this.#path(path);
    try {
      return await this.#master(Mkdir, {
        path: p,
        ...(opts.parents === undefined ? {} : { parents: opts.parents }),
        ...(opts.mode === undefined ? {} : { mode: opts.mode }),
      });
    } catch (err) {
      // mkdir -p of an existing directory succeeds.
      if (opts.parents === true && err instanceof FsError && err.code === 'EEXIST') {
        const st = await this.stat(p);
        if (st.type === 'dir') return st;
      }
      throw err;
    }
  }

  /** Directory entries, one page per iteration (names in order). */
  async *list(path: string, opts: ListOptions = {}): AsyncGenerator<FileStatus[]> {
    const p = this.#path(path);
    let startAfter = opts.startAfter;
    const limit = opts.pageSize ?? LIST_PAGE_SIZE;
    for (;;) {
      const page = await this.#master(List, {
        path: p,
        limit,
        ...(startAfter === undefined ? {} : { startAfter }),
      });
      if (page.entries.length > 0) yield page.entries;
      if (page.nextStartAfter === undefined) return;
      startAfter = page.nextStartAfter;
    }
  }

  /** Directory entries one by one (all pages). */
  async *entries(path: string, opts: ListOptions = {}): AsyncGenerator<FileStatus> {
    for await (const page of this.list(path, opts)) yield* page;
  }

  async delete(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.#master(Delete, {
      path: this.#path(path),
      ...(opts.recursive === true ? { recursive: true } : {}),
    });
  }

  async rename(src: string, dst: string, opts: { noReplace?: boolean } = {}): Promise<void> {
    await this.#master(Rename, {
      src: this.#path(src),
      dst: this.#path(dst),
      ...(opts.noReplace === true ? { noReplace: true } : {}),
    });
  }

  async symlink(target: string, path: string): Promise<FileStatus> {
    return this.#master(Symlink, { target, path: this.#path(path) });
  }

  async readlink(path: string): Promise<string> {
    return (await this.#master(Readlink, { path: this.#path(path) })).target;
  }

  /** Hard link: `path` becomes another name of the file `existing`. */
  async link(existing: string, path: string): Promise<FileStatus> {
    return this.#master(Link, { existing: this.#path(existing), path: this.#path(path) });
  }

  async setattr(path: string, attrs: SetAttrOptions): Promise<FileStatus> {
    return this.#master(SetAttr, { path: this.#path(path), ...attrs });
  }

  chmod(path: string, mode: number): Promise<FileStatus> {
    return this.setattr(path, { mode });
  }

  chown(path: string, uid?: number, gid?: number): Promise<FileStatus> {
    return this.setattr(path, {
      ...(uid === undefined ? {} : { uid }),
      ...(gid === undefined ? {} : { gid }),
    });
  }

  utimes(path: string, atimeMs: number, mtimeMs: number): Promise<FileStatus> {
    return this.setattr(path, { atimeMs, mtimeMs });
  }

  truncate(path: string, length: number): Promise<FileStatus> {
    return this.setattr(path, { length });
  }

  async setXattr(
    path: string,
    name: string,
    value: Uint8Array | string,
    flag: 'any' | 'create' | 'replace' = 'any',
  ): Promise<void> {
    const payload = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value);
    if (payload.length > MAX_XATTR_VALUE_BYTES) {
      throw new FsError(
        'E2BIG',
        `${path}: xattr value of ${payload.length} bytes exceeds ${MAX_XATTR_VALUE_BYTES}`,
        {
          details: { path },
        },
      );
    }
    await this.#ctx.master.call(
      SetXattr,
      { path: this.#path(path), name, flag, ...this.#who() },
      { payload },
    );
  }

  async getXattr(path: string, name: string): Promise<Buffer> {
    const r = await this.#ctx.master.callWithPayload(GetXattr, {
      path: this.#path(path),
      name,
      ...this.#who(),
    });
    return r.payload;
  }

  async listXattr(path: string): Promise<string[]> {
    return (await this.#master(ListXattr, { path: this.#path(path) })).names;
  }

  async removeXattr(path: string, name: string): Promise<void> {
    await this.#master(RemoveXattr, { path: this.#path(path), name });
  }

  /** Totals under a path: bytes, files, directories, bytes held by workers. */
  async contentSummary(path: string): Promise<ContentSummary> {
    return this.#master(GetContentSummary, { path: this.#path(path) });
  }

  /** Where each block of a file is. */
  async blockLocations(
    path: string,
    offset?: number,
    length?: number,
  ): Promise<{ status: FileStatus; blocks: LocatedBlock[] }> {
    return this.#master(GetBlockLocations, {
      path: this.#path(path),
      ...(offset === undefined ? {} : { offset }),
      ...(length === undefined ? {} : { length }),
    });
  }

  // ---- data ----------------------------------------------------------------------------------

  /** Creates a file and returns its writer (write / close / abort). */
  async create(path: string, opts: CreateOptions = {}): Promise<FileWriter> {
    this.#checkOpen();
    return FileWriter.create(this.#ctx, this.#path(path), opts, this.#caller);
  }

  /** Creates a file as a Node Writable; 'finish' means the file is committed (`stream.status`). */
  createWriteStream(path: string, opts: CreateOptions = {}): FileWriteStream {
    this.#checkOpen();
    const p = this.#path(path);
    return new FileWriteStream(p, () => FileWriter.create(this.#ctx, p, opts, this.#caller));
  }

  /** Opens a file for reading: positional `read`, `createReadStream`. */
  async open(path: string): Promise<FileReader> {
    this.#checkOpen();
    return FileReader.open(this.#ctx, this.#path(path), this.#caller);
  }

  /**
   * Opens a file for reading and reads one extended attribute with it, in one master round trip
   * (undefined when the file has no such attribute).
   */
  async openWithXattr(
    path: string,
    name: string,
  ): Promise<{ reader: FileReader; xattr: Buffer | undefined }> {
    this.#checkOpen();
    const p = this.#path(path);
    const r = await this.#ctx.master.callWithPayload(GetBlockLocations, {
      path: p,
      xattr: name,
      ...this.#who(),
    });
    const reader = await FileReader.open(this.#ctx, p, this.#caller, r.body);
    if (r.body.xattrFound !== undefined) return { reader, xattr: r.body.xattrFound ? r.payload : undefined };
    // A master that did not look it up (a path under a mount): ask separately.
    try {
      return { reader, xattr: await this.getXattr(p, name) };
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENODATA') return { reader, xattr: undefined };
      await reader.close().catch(() => undefined);
      throw err;
    }
  }

  /** A Readable of a file's bytes [start, end] (opened lazily: a missing file is an 'error' event). */
  createReadStream(path: string, opts: ReadStreamOptions = {}): Readable {
    this.#checkOpen();
    let reader: FileReader | undefined;
    let chunks: AsyncGenerator<Buffer> | undefined;
    const readAhead = Math.max(
      opts.readAheadBytes ?? this.settings.readAheadBytes,
      this.settings.readChunkBytes,
    );
    return new Readable({
      highWaterMark: readAhead,
      construct: (cb) => {
        this.open(path).then(
          (r) => {
            reader = r;
            chunks = r.chunks(opts);
            cb();
          },
          (err: unknown) => cb(err as Error),
        );
      },
      read(): void {
        chunks?.next().then(
          (r) => this.push(r.done === true ? null : r.value),
          (err: unknown) => this.destroy(err as Error),
        );
      },
      destroy: (err, cb) => {
        const done = (): void => cb(err);
        void (async () => {
          await chunks?.return(undefined).catch(() => undefined);
          await reader?.close().catch(() => undefined);
        })().then(done, done);
      },
    });
  }

  /** Opens an existing file for random writes (pwrite / truncate / flush / close). */
  async openForWrite(path: string, opts: OpenForWriteOptions = {}): Promise<RandomWriteHandle> {
    this.#checkOpen();
    return RandomWriteHandle.open(this.#ctx, this.#path(path), opts, this.#caller);
  }

  /** Writes a whole file (replacing it unless `overwrite: false`). */
  async writeFile(path: string, data: Uint8Array | string, opts: CreateOptions = {}): Promise<FileStatus> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    // The length is known: the first block is placed with the create (one master call less).
    const w = await this.create(path, {
      overwrite: true,
      placeFirstBlock: bytes.length > 0,
      ...opts,
      sizeHintBytes: bytes.length,
    });
    try {
      await w.write(bytes);
      return await w.close();
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  /** Reads a whole file into memory (for small files; stream large ones). */
  async readFile(path: string): Promise<Buffer> {
    const r = await this.open(path);
    try {
      const buf = Buffer.allocUnsafe(r.size);
      let got = 0;
      while (got < buf.length) {
        const n = await r.read(buf, got, got);
        if (n === 0) break;
        got += n;
      }
      return got === buf.length ? buf : buf.subarray(0, got);
    } finally {
      await r.close();
    }
  }

  // ---- mounts and jobs -----------------------------------------------------------------------

  /**
   * Mounts a UFS (`s3://bucket/prefix`, `file:///dir`, `http(s)://host/prefix`) at `path`
   * (default: the 1:1 path, e.g. /bucket/prefix). The master checks the UFS first; a dry run
   * checks and mounts nothing. Secret options come back masked.
   */
  async mount(uri: string, path: string | undefined, opts: MountRequest): Promise<MountInfo> {
    return this.#master(Mount, { uri, ...(path === undefined ? {} : { path: this.#path(path) }), ...opts });
  }

  async unmount(path: string): Promise<void> {
    await this.#master(Unmount, { path: this.#path(path) });
  }

  async listMounts(): Promise<MountInfo[]> {
    return (await this.#master(ListMounts, {})).mounts;
  }

  /**
   * Starts a master job that caches every block of the files under `path`: one copy, or
   * `replicas` copies on distinct workers (the files' replication is raised to it).
   */
  async load(path: string, opts: { replicas?: number } = {}): Promise<LoadJobStatus> {
    return this.#master(SubmitLoad, {
      path: this.#path(path),
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
    });
  }

  async loadStatus(jobId: string): Promise<LoadJobStatus> {
    return this.#master(GetLoad, { jobId });
  }

  async cancelLoad(jobId: string): Promise<LoadJobStatus> {
    return this.#master(CancelLoad, { jobId });
  }

  async listLoads(): Promise<LoadJobStatus[]> {
    return (await this.#master(ListLoads, {})).jobs;
  }

  /** Drops the cached copies of files under `path` that their UFS holds. */
  async free(path: string) {
    return this.#master(Free, { path: this.#path(path) });
  }

  /** Cached bytes against the mounts' data, and the master's block hit counts. */
  async cacheReport() {
    return this.#master(GetCacheReport, {});
  }

  // ---- cluster -------------------------------------------------------------------------------

  async clusterInfo() {
    return this.#ctx.master.call(GetClusterInfo, {});
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return (await this.#ctx.master.call(ListWorkers, {})).workers;
  }

  /** Stops new blocks going to a worker ("host:port" or worker id) and drains it. */
  async decommissionWorker(worker: string): Promise<string> {
    return (await this.#ctx.master.call(DecommissionWorker, { worker })).workerId;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#ctx.workers.close();
    await this.#ctx.master.close();
  }

  // ---- internals -----------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw closedError('file system client');
  }

  #who(): { caller?: Caller } {
    return this.#caller === undefined ? {} : { caller: this.#caller };
  }

  /** A namespace call with the caller filled in. */
  async #master<Req, Res>(def: UnaryCall<Req, Res>, req: Omit<Req, 'caller'>): Promise<Res> {
    this.#checkOpen();
    return this.#ctx.master.call(def, { ...req, ...this.#who() } as Req);
  }

  #path(path: string): string {
    return normalisePath(path);
  }
}

/**
 * Checks and normalises an absolute path: collapses repeated and trailing slashes, refuses "."
 * and ".." components (the namespace has no notion of a working directory).
 */
export function normalisePath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new FsError('EINVAL', `${String(path)}: path must be absolute (start with "/")`, {
      details: { path },
    });
  }
  if (path.includes('\0'))
    throw new FsError('EINVAL', `${path}: path must not contain NUL`, { details: { path } });
  const parts = path.split('/').filter((s) => s !== '');
  for (const part of parts) {
    if (part === '.' || part === '..') {
      throw new FsError('EINVAL', `${path}: "." and ".." are not allowed in paths`, { details: { path } });
    }
    if (Buffer.byteLength(part) > 255) throw fsError('ENAMETOOLONG', path);
  }
  const out = `/${parts.join('/')}`;
  if (Buffer.byteLength(out) > MAX_PATH_BYTES) throw fsError('ENAMETOOLONG', path);
  return out;
}

function processCaller(): Caller | undefined {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  if (uid === undefined || gid === undefined) return undefined;
  const groups = (process.getgroups?.() ?? []).filter((g) => g !== gid).slice(0, 64);
  return groups.length > 0 ? { uid, gid, groups } : { uid, gid };
}
