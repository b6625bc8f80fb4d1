/**
 * L2 `cluster`: entries stored as files in a Strata cluster through the client library, so every
 * proxy pointed at the same cluster shares one cache (a slice fetched by one edge is a hit on all).
 *
 *   <root>/<f[0:2]>/<f>/<h>     one entry: the body as the file's bytes, the metadata in the
 *                               xattr `user.strata.proxy.meta` (msgpack, with its key)
 *   <root>/.tmp/<random>        bodies being written (renamed into place on commit)
 *
 * f = sha256(primary key), h = sha256(entry key): one directory per URL holds all its variants and
 * slices, so a PURGE is one recursive delete. Publishing is atomic: the body is written and closed
 * under .tmp/, its metadata attached, and the file renamed over the entry's name in one master
 * transaction; readers see the old entry or the new one. Integrity comes from the workers'
 * per-chunk checksums (a damaged replica fails over to another, or the read fails and the hit is
 * a miss).
 *
 * Why a local spool: a reader that falls behind an in-progress fill reads back bytes already
 * written (`readAt`), and the client library does not expose the bytes of a file still being
 * written. The writer keeps them in an unlinked file in `spool_dir` until commit.
 *
 * Space: the cluster keeps sole copies (nothing else holds proxy entries), so this store bounds
 * itself: a sweep every SWEEP_INTERVAL_MS sums the root and, above `l2_cache_max_size_bytes`,
 * deletes the least recently written entries down to SWEEP_LOW_FRACTION of it. Several proxies
 * sweeping at once only delete more eagerly; a delete of a missing entry is not an error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { FsError, StrataError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { FileSystem } from '../../client/index.js';
import type { FileReader, FileWriter } from '../../client/index.js';
import { familyOf } from '../cache-key.js';
import { CorruptEntryError } from '../errors.js';
import type { EntryMeta, ProxyStore, PutOptions, StoreHit, StoreStats, StoreWriter } from './types.js';

export const CLUSTER_META_XATTR = 'user.strata.proxy.meta';
/** Unfinished bodies older than this are a dead writer's (a live one renames within its fill timeout). */
export const STALE_TMP_MS = 60 * 60 * 1000;
export const SWEEP_INTERVAL_MS = 30_000;
/** A sweep above capacity deletes down to this fraction of it, so it does not run on every put. */
export const SWEEP_LOW_FRACTION = 0.9;
/** Entries listed per page while sweeping. */
const LIST_PAGE = 1000;

export interface ClusterStoreOptions {
  /** Namespace directory the proxy keeps its entries under. */
  root: string;
  /** Masters to reach ("host:port"). */
  masterAddrs: { host: string; port: number }[];
  /** Copies of each entry's blocks (1: a worker loss drops the entries it held, which are refetched). */
  replicas: number;
  /** Bytes of bodies this store keeps in the cluster (shared by every proxy using `root`). */
  capacityBytes: number;
  /** Local directory for the read-back spool of fills in progress. */
  spoolDir: string;
  log: Logger;
  /** Tests: a client made elsewhere (default: one from `masterAddrs`). */
  fs?: FileSystem;
}

interface MetaRecord {
  v: 1;
  meta: EntryMeta;
}

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function isNotFound(err: unknown): boolean {
  return err instanceof FsError && err.code === 'ENOENT';
}

export function defaultSpoolDir(): string {
  return tmpdir();
}

export class ClusterStore implements ProxyStore {
  readonly kind = 'cluster';
  readonly #fs: FileSystem;
  readonly #root: string;
  readonly #tmp: string;
  readonly #replicas: number;
  #capacityBytes: number;
  readonly #spoolDir: string;
  readonly #log: Logger;
  readonly #ownsFs: boolean;
  #stats: StoreStats;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #closed = false;

  constructor(opts: ClusterStoreOptions) {
    this.#ownsFs = opts.fs === undefined;
    this.#fs =
      opts.fs ??
      FileSystem.create({ settings: { masterAddrs: opts.masterAddrs }, caller: null, log: opts.log });
    this.#root = opts.root.replace(/\/+$/, '') || '/';
    this.#tmp = `${this.#root}/.tmp`;
    this.#replicas = opts.replicas;
    this.#capacityBytes = opts.capacityBytes;
    this.#spoolDir = opts.spoolDir;
    this.#log = opts.log;
    this.#stats = { entries: 0, bytes: 0, capacityBytes: opts.capacityBytes };
  }

  /** Creates the root, removes dead writers' leftovers, starts the capacity sweep. */
  async ready(): Promise<void> {
    await this.#fs.mkdir(this.#tmp, { parents: true });
    await this.#cleanTmp();
    await this.sweep();
    this.#sweepTimer = setInterval(() => {
      void this.sweep().catch((err: unknown) => this.#log.warn({ err }, 'cluster cache sweep failed'));
    }, SWEEP_INTERVAL_MS);
    this.#sweepTimer.unref();
  }

  setCapacity(bytes: number): void {
    this.#capacityBytes = bytes;
    this.#stats = { ...this.#stats, capacityBytes: bytes };
  }

  #familyDir(primary: string): string {
    const f = sha(primary);
    return `${this.#root}/${f.slice(0, 2)}/${f}`;
  }

  #pathOf(key: string): string {
    return `${this.#familyDir(familyOf(key))}/${sha(key)}`;
  }

  async get(key: string): Promise<StoreHit | undefined> {
    const path = this.#pathOf(key);
    let reader: FileReader;
    try {
      reader = await this.#fs.open(path);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    let meta: EntryMeta;
    try {
      meta = decodeMeta(await this.#fs.getXattr(path, CLUSTER_META_XATTR), key, path);
    } catch (err) {
      await reader.close().catch(() => undefined);
      if (isNotFound(err) || (err instanceof FsError && err.code === 'ENODATA')) return undefined;
      if (err instanceof CorruptEntryError) await this.delete(key).catch(() => false);
      throw err;
    }
    let released = false;
    const size = reader.size;
    return {
      meta,
      bodyBytes: size,
      read(start: number, endExclusive: number): AsyncIterable<Buffer> {
        const end = Math.min(endExclusive, size);
        if (end <= start) return (async function* () {})();
        return reader.chunks({ start, end: end - 1 });
      },
      release(): void {
        if (released) return;
        released = true;
        void reader.close().catch(() => undefined);
      },
    };
  }

  async put(meta: EntryMeta, opts: PutOptions = {}): Promise<StoreWriter | undefined> {
    if (this.#closed) return undefined;
    if (opts.expectedBytes !== undefined && opts.expectedBytes > this.#capacityBytes) return undefined;
    const tmpPath = `${this.#tmp}/${randomBytes(12).toString('hex')}`;
    const writer = await this.#fs.create(tmpPath, {
      replicas: this.#replicas,
      ...(opts.expectedBytes !== undefined ? { sizeHintBytes: opts.expectedBytes } : {}),
    });
    const spoolPath = join(this.#spoolDir, `strata-proxy-spool-${randomBytes(8).toString('hex')}`);
    let spool: FileHandle;
    try {
      spool = await open(spoolPath, 'w+', 0o600);
      // Unlinked at once: the bytes live as long as the handle, and a crash leaves nothing behind.
      await unlink(spoolPath);
    } catch (err) {
      await writer.abort().catch(() => undefined);
      throw err;
    }
    return new ClusterWriter(this, meta, writer, tmpPath, spool);
  }

  /** Called by a writer's commit: attaches the metadata and renames the body into place. */
  async publish(meta: EntryMeta, tmpPath: string): Promise<void> {
    const finalPath = this.#pathOf(meta.key);
    await this.#fs.setXattr(tmpPath, CLUSTER_META_XATTR, encodeMeta(meta));
    await this.#fs.mkdir(this.#familyDir(familyOf(meta.key)), { parents: true });
    await this.#fs.rename(tmpPath, finalPath);
  }

  async discard(tmpPath: string): Promise<void> {
    await this.#fs.delete(tmpPath).catch(() => undefined);
  }

  async updateMeta(meta: EntryMeta): Promise<boolean> {
    try {
      await this.#fs.setXattr(this.#pathOf(meta.key), CLUSTER_META_XATTR, encodeMeta(meta), 'replace');
      return true;
    } catch (err) {
      if (isNotFound(err) || (err instanceof FsError && err.code === 'ENODATA')) return false;
      throw err;
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      await this.#fs.delete(this.#pathOf(key));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async deleteFamily(primaryKey: string): Promise<number> {
    const dir = this.#familyDir(primaryKey);
    let n = 0;
    try {
      for await (const page of this.#fs.list(dir, { pageSize: LIST_PAGE })) n += page.length;
      await this.#fs.delete(dir, { recursive: true });
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
    return n;
  }

  stats(): StoreStats {
    return this.#stats;
  }

  /**
   * Sums the root; above capacity, deletes the oldest entries (by modification time) down to
   * SWEEP_LOW_FRACTION of it. One sweep at a time.
   */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    const entries: { path: string; bytes: number; mtimeMs: number }[] = [];
    for await (const shard of this.#fs.entries(this.#root, { pageSize: LIST_PAGE })) {
      if (shard.type !== 'dir' || shard.name === '.tmp') continue;
      for await (const fam of this.#fs.entries(`${this.#root}/${shard.name}`, { pageSize: LIST_PAGE })) {
        if (fam.type !== 'dir') continue;
        const famDir = `${this.#root}/${shard.name}/${fam.name}`;
        for await (const e of this.#fs.entries(famDir, { pageSize: LIST_PAGE })) {
          if (e.type === 'file')
            entries.push({ path: `${famDir}/${e.name}`, bytes: e.size, mtimeMs: e.mtimeMs });
        }
      }
    }
    let bytes = entries.reduce((s, e) => s + e.bytes, 0);
    let count = entries.length;
    if (bytes > this.#capacityBytes) {
      const target = this.#capacityBytes * SWEEP_LOW_FRACTION;
      entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
      for (const e of entries) {
        if (bytes <= target || this.#closed) break;
        try {
          await this.#fs.delete(e.path);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        bytes -= e.bytes;
        count -= 1;
      }
      this.#log.info({ entries: count, bytes, capacityBytes: this.#capacityBytes }, 'cluster cache swept');
    }
    this.#stats = { entries: count, bytes, capacityBytes: this.#capacityBytes };
  }

  async #cleanTmp(): Promise<void> {
    const now = Date.now();
    for await (const e of this.#fs.entries(this.#tmp, { pageSize: LIST_PAGE })) {
      if (now - e.mtimeMs < STALE_TMP_MS) continue;
      await this.#fs.delete(`${this.#tmp}/${e.name}`, { recursive: true }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    await this.#sweeping?.catch(() => undefined);
    if (this.#ownsFs) await this.#fs.close();
  }
}

class ClusterWriter implements StoreWriter {
  readonly #store: ClusterStore;
  readonly #meta: EntryMeta;
  readonly #writer: FileWriter;
  readonly #tmpPath: string;
  readonly #spool: FileHandle;
  #bytes = 0;
  #spoolClosed = false;
  #settled = false;

  constructor(store: ClusterStore, meta: EntryMeta, writer: FileWriter, tmpPath: string, spool: FileHandle) {
    this.#store = store;
    this.#meta = meta;
    this.#writer = writer;
    this.#tmpPath = tmpPath;
    this.#spool = spool;
  }

  get bytesWritten(): number {
    return this.#bytes;
  }

  async write(chunk: Buffer): Promise<void> {
    const at = this.#bytes;
    await Promise.all([this.#writer.write(chunk), this.#spool.write(chunk, 0, chunk.length, at)]);
    this.#bytes += chunk.length;
  }

  async readAt(offset: number, length: number): Promise<Buffer> {
    if (this.#spoolClosed) throw new StrataError('STRATA_NOT_AVAILABLE', 'cluster entry writer is closed');
    const n = Math.max(0, Math.min(length, this.#bytes - offset));
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const r = await this.#spool.read(buf, got, n - got, offset + got);
      if (r.bytesRead === 0) break;
      got += r.bytesRead;
    }
    return got === n ? buf : buf.subarray(0, got);
  }

  async commit(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    try {
      await this.#writer.close();
      await this.#store.publish(this.#meta, this.#tmpPath);
    } catch (err) {
      await this.#store.discard(this.#tmpPath);
      throw err;
    } finally {
      this.dispose();
    }
  }

  async abort(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    this.dispose();
    await this.#writer.abort().catch(() => undefined);
    await this.#store.discard(this.#tmpPath);
  }

  dispose(): void {
    if (this.#spoolClosed) return;
    this.#spoolClosed = true;
    void this.#spool.close().catch(() => undefined);
  }
}

function encodeMeta(meta: EntryMeta): Buffer {
  const rec: MetaRecord = { v: 1, meta };
  return pack(rec);
}

function decodeMeta(buf: Buffer, key: string, path: string): EntryMeta {
  let rec: unknown;
  try {
    rec = unpack(buf);
  } catch {
    throw new CorruptEntryError(path, 'metadata is not msgpack');
  }
  const r = rec as Partial<MetaRecord> | null;
  if (r === null || typeof r !== 'object' || r.v !== 1 || r.meta === undefined || r.meta.key !== key) {
    throw new CorruptEntryError(path, 'metadata does not belong to this key');
  }
  return r.meta;
}
