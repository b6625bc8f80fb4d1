/**
 * `file:///dir`: a local or network-mounted directory as a UFS. Writes go to a hidden temporary
 * file beside the target, are fsynced and renamed into place (readers never see half a file, a
 * crash leaves at most a hidden temporary that listings skip). The ETag is derived from the inode,
 * the nanosecond mtime and the size, so replacing a file is noticed even within one second.
 */
import { randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import type { BigIntStats, Stats } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { FsError, isPosixCode } from '../../common/errors.js';
import { throwIfAborted, ufsIo, ufsNotFound } from '../errors.js';
import { exactLength } from '../exact-stream.js';
import { UFS_LIST_PAGE_MAX } from '../limits.js';
import type { LocalUfsOptions } from '../options.js';
import { normaliseUfsPath, ufsBaseName, ufsJoin, ufsParent } from '../paths.js';
import type {
  UfsCallOptions,
  UfsCapabilities,
  UfsListOptions,
  UfsListPage,
  UfsRead,
  UfsReadOptions,
  UfsStatus,
  UfsWriteOptions,
  UnderFileSystem,
} from '../ufs.js';
import type { UfsUri } from '../uri.js';
import { checkValidator } from '../validator.js';

/** Prefix of in-progress writes; listings hide these names. */
export const LOCAL_TEMP_PREFIX = '.strata-upload-';
/** Stats of one list page run this many at a time (the libuv pool has few threads anyway). */
const LIST_STAT_CONCURRENCY = 32;

export class LocalUfs implements UnderFileSystem {
  readonly scheme = 'file' as const;
  readonly capabilities: UfsCapabilities = {
    readOnly: false,
    canList: true,
    atomicRename: true,
    realDirectories: true,
  };
  readonly #root: string;
  readonly #uri: string;

  constructor(uri: UfsUri, _opts: LocalUfsOptions) {
    this.#root = uri.rootPath;
    this.#uri = uri.uri;
  }

  describe(): string {
    return this.#uri;
  }

  #where(path: string): string {
    return path === '/' ? this.#uri : `${this.#uri}${path}`;
  }

  #abs(path: string): string {
    return path === '/' ? this.#root : join(this.#root, path);
  }

  #map(err: unknown, path: string): FsError {
    if (err instanceof FsError) return err;
    const code = (err as NodeJS.ErrnoException | null)?.code;
    const where = this.#where(path);
    if (code === 'ENOENT') return ufsNotFound(where);
    if (typeof code === 'string' && isPosixCode(code)) {
      return new FsError(code, `${where}: ${(err as Error).message.replace(/^[A-Z]+: /, '')}`, {
        details: { path: where },
        cause: err,
      });
    }
    return ufsIo(where, err instanceof Error ? err.message : String(err));
  }

  #status(path: string, st: BigIntStats): UfsStatus {
    const isDir = st.isDirectory();
    return {
      path,
      name: path === '/' ? '' : ufsBaseName(path),
      type: isDir ? 'dir' : 'file',
      size: isDir ? 0 : Number(st.size),
      mtimeMs: Number(st.mtimeNs / 1_000_000n),
      ...(isDir ? {} : { etag: `${st.ino.toString(16)}-${st.mtimeNs.toString(16)}-${st.size.toString(16)}` }),
    };
  }

  #checkKind(path: string, st: BigIntStats | Stats): void {
    if (!st.isFile() && !st.isDirectory()) {
      throw new FsError('EINVAL', `${this.#where(path)}: not a regular file or directory`, {
        details: { path: this.#where(path) },
      });
    }
  }

  async check(opts: UfsCallOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    let st: Stats;
    try {
      st = await stat(this.#root);
    } catch (err) {
      throw this.#map(err, '/');
    }
    if (!st.isDirectory()) {
      throw new FsError('ENOTDIR', `${this.#uri}: not a directory`, { details: { path: this.#uri } });
    }
    // Reading needs r-x on the root; writing is checked when it happens (read-only roots are fine).
    const fh = await open(this.#root, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY).catch(
      (err: unknown) => {
        throw this.#map(err, '/');
      },
    );
    await fh.close();
  }

  async stat(path: string, opts: UfsCallOptions = {}): Promise<UfsStatus> {
    const p = normaliseUfsPath(path);
    throwIfAborted(opts.signal);
    let st: BigIntStats;
    try {
      st = await stat(this.#abs(p), { bigint: true });
    } catch (err) {
      throw this.#map(err, p);
    }
    this.#checkKind(p, st);
    return this.#status(p, st);
  }

  async list(path: string, opts: UfsListOptions = {}): Promise<UfsListPage> {
    const p = normaliseUfsPath(path);
    throwIfAborted(opts.signal);
    const limit = Math.min(Math.max(1, opts.limit ?? UFS_LIST_PAGE_MAX), UFS_LIST_PAGE_MAX);
    let names: string[];
    try {
      names = await readdir(this.#abs(p));
    } catch (err) {
      throw this.#map(err, p);
    }
    names = names.filter((n) => !n.startsWith(LOCAL_TEMP_PREFIX)).sort(compareNames);
    let start = 0;
    if (opts.cursor !== undefined) {
      const cursor = opts.cursor;
      start = lowerBound(names, cursor);
      if (names[start] === cursor) start++;
    }
    const entries: UfsStatus[] = [];
    let i = start;
    // Entries that vanish or are neither file nor directory are skipped; keep reading until the
    // page is full so a page is short only at the end.
    while (entries.length < limit && i < names.length) {
      const batch = names.slice(i, i + Math.min(LIST_STAT_CONCURRENCY, limit - entries.length));
      i += batch.length;
      const stats = await Promise.all(
        batch.map((n) => stat(join(this.#abs(p), n), { bigint: true }).catch(() => undefined)),
      );
      batch.forEach((n, k) => {
        const st = stats[k];
        if (st !== undefined && (st.isFile() || st.isDirectory()))
          entries.push(this.#status(ufsJoin(p, n), st));
      });
    }
    const last = names[i - 1];
    return i < names.length && last !== undefined ? { entries, cursor: last } : { entries };
  }

  async openRead(path: string, opts: UfsReadOptions = {}): Promise<UfsRead> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    throwIfAborted(signal);
    const where = this.#where(p);
    let fh: FileHandle;
    try {
      fh = await open(this.#abs(p), 'r');
    } catch (err) {
      throw this.#map(err, p);
    }
    try {
      const st = await fh.stat({ bigint: true });
      if (st.isDirectory())
        throw new FsError('EISDIR', `${where}: is a directory`, { details: { path: where } });
      this.#checkKind(p, st);
      const status = this.#status(p, st);
      checkValidator(where, status, opts.validator);
      const offset = opts.offset ?? 0;
      const length = Math.max(0, Math.min(opts.length ?? Infinity, status.size - offset));
      if (length === 0) {
        await fh.close();
        return { body: Readable.from([]), length: 0, objectSize: status.size, ...etagOf(status) };
      }
      const raw = fh.createReadStream({ start: offset, end: offset + length - 1, autoClose: true });
      if (signal !== undefined) addAbortSignal(signal, raw);
      const body = exactLength(raw, length, where, (err) => this.#map(err, p));
      return { body, length, objectSize: status.size, ...etagOf(status) };
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw this.#map(err, p);
    }
  }

  async write(
    path: string,
    source: AsyncIterable<Uint8Array>,
    opts: UfsWriteOptions = {},
  ): Promise<UfsStatus> {
    const p = normaliseUfsPath(path);
    if (p === '/')
      throw new FsError('EISDIR', `${this.#uri}: is a directory`, { details: { path: this.#uri } });
    const signal = opts.signal;
    throwIfAborted(signal);
    const target = this.#abs(p);
    const dir = this.#abs(ufsParent(p));
    const existing = await stat(target).catch(() => undefined);
    if (existing?.isDirectory() === true) {
      throw new FsError('EISDIR', `${this.#where(p)}: is a directory`, { details: { path: this.#where(p) } });
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw this.#map(err, ufsParent(p));
    }
    const tmp = join(dir, `${LOCAL_TEMP_PREFIX}${randomUUID()}`);
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, 'wx', 0o644);
      await writeCoalesced(fh, source, signal);
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, target);
      await syncDir(dir);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throwIfAborted(signal);
      throw this.#map(err, p);
    }
    return this.stat(p);
  }

  async delete(path: string, opts: UfsCallOptions & { recursive?: boolean } = {}): Promise<void> {
    const p = normaliseUfsPath(path);
    throwIfAborted(opts.signal);
    if (p === '/')
      throw new FsError('EPERM', `${this.#uri}: the UFS root cannot be deleted`, {
        details: { path: this.#uri },
      });
    const abs = this.#abs(p);
    try {
      const st = await stat(abs);
      if (!st.isDirectory()) await unlink(abs);
      else if (opts.recursive === true) await rm(abs, { recursive: true });
      else await rmdir(abs);
    } catch (err) {
      throw this.#map(err, p);
    }
  }

  async rename(src: string, dst: string, opts: UfsCallOptions = {}): Promise<void> {
    const s = normaliseUfsPath(src);
    const d = normaliseUfsPath(dst);
    throwIfAborted(opts.signal);
    if (s === '/' || d === '/') {
      throw new FsError('EPERM', `${this.#uri}: the UFS root cannot be renamed`, {
        details: { path: this.#uri },
      });
    }
    if (d.startsWith(`${s}/`)) {
      throw new FsError('EINVAL', `${this.#where(s)}: cannot move a directory into itself`, {
        details: { path: this.#where(s) },
      });
    }
    try {
      await stat(this.#abs(s));
    } catch (err) {
      throw this.#map(err, s);
    }
    try {
      await mkdir(this.#abs(ufsParent(d)), { recursive: true });
      await rename(this.#abs(s), this.#abs(d));
    } catch (err) {
      throw this.#map(err, d);
    }
  }

  async mkdir(path: string, opts: UfsCallOptions = {}): Promise<void> {
    const p = normaliseUfsPath(path);
    throwIfAborted(opts.signal);
    try {
      await mkdir(this.#abs(p), { recursive: true });
    } catch (err) {
      throw this.#map(err, p);
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}

/** Small chunks are gathered into writes of this size (fewer syscalls); big ones go straight through. */
const WRITE_GATHER_BYTES = 1024 * 1024;

async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

async function writeCoalesced(
  fh: FileHandle,
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const gather = Buffer.allocUnsafe(WRITE_GATHER_BYTES);
  let fill = 0;
  for await (const chunk of source) {
    throwIfAborted(signal);
    if (fill + chunk.length > WRITE_GATHER_BYTES && fill > 0) {
      await writeAll(fh, gather.subarray(0, fill));
      fill = 0;
    }
    if (chunk.length >= WRITE_GATHER_BYTES / 4) {
      await writeAll(fh, chunk);
    } else {
      gather.set(chunk, fill);
      fill += chunk.length;
    }
  }
  if (fill > 0) await writeAll(fh, gather.subarray(0, fill));
}

function etagOf(s: UfsStatus): { etag?: string } {
  return s.etag === undefined ? {} : { etag: s.etag };
}

/** Code-unit order of names: any fixed total order keeps cursors stable between pages. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(sorted[mid] ?? '', key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Makes a rename in `dir` durable (the directory entry itself reaches the disk). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY).catch(() => undefined);
  if (fh === undefined) return;
  try {
    await fh.sync();
  } catch {
    // Some filesystems (network mounts) refuse fsync on directories: the rename still happened.
  } finally {
    await fh.close();
  }
}
