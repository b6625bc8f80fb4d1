/**
 * The mount's file system: every FUSE request answered with the client library (metadata from
 * the master, data from the workers, short-circuit when a worker shares this machine). Paths the
 * kernel gives are relative to the mount; `fsPath` roots them in the namespace.
 *
 * Permissions: the kernel checks them (`default_permissions`) against the owners and modes we
 * report, and the client acts as root. Entries are created owned by the caller the binding names
 * (the kernel engine passes the requester's uid/gid; fuse-native only knows the mount's user).
 */
import { close as closeFd, constants } from 'node:fs';
import { basename, dirname } from 'node:path/posix';
import type { FileSystem } from '../client/index.js';
import type { FileStatus } from '../protocol/types.js';
import { FsError, fsError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { XATTR_CREATE, XATTR_REPLACE } from './binding.js';
import type {
  DirectReadPlan,
  DirectReadSource,
  FuseAttr,
  FuseContext,
  FuseDirEntry,
  FuseOperations,
  FuseStatfs,
  SetattrChanges,
} from './binding.js';
import { toAttr, toStatfs } from './attrs.js';
import { OpenFiles } from './open-files.js';
import type { Handle, OpenFile } from './open-files.js';

/**
 * Name prefix of a file unlinked while open: it is renamed to `<prefix><mount tag>-<n>` in its
 * directory and deleted at its last release (libfuse's `.fuse_hidden`, hard_remove off).
 * Listings through the mount leave such names out.
 */
export const HIDDEN_PREFIX = '.strata-hidden-';
/**
 * Namespace directory holding one directory per mount (named by its tag) with a marker per
 * hidden file; the next mount with the same tag deletes what a crash left (see `cleanHidden`).
 */
export const HIDDEN_REGISTRY_DIR = '/.strata-fuse-hidden';
/** xattr of a marker naming its hidden file's namespace path. */
const HIDDEN_PATH_XATTR = 'user.strata.hidden_path';

/**
 * Files of more blocks than this are not read directly (a direct read keeps one descriptor
 * per block open for as long as the handle is open).
 */
export const MAX_DIRECT_READ_BLOCKS = 1024;
/**
 * Block-file descriptors all direct-read grants of the mount may hold at once; past it handles
 * are read through `read` (which keeps its own small cache of block files), so granted
 * handles never starve the process of descriptors.
 */
export const MAX_DIRECT_READ_DESCRIPTORS = 16_384;

/** chown's "leave unchanged" (-1 as an unsigned 32-bit id). */
const ID_UNCHANGED = 0xffff_ffff;
const PERMISSION_BITS = 0o7777;
/** open(2) access-mode mask (Linux; node:fs does not export it). */
const O_ACCMODE = 0o3;

export interface StrataFsOptions {
  fs: FileSystem;
  /** Namespace directory shown at the mount's root ("/" for all). */
  fsPath: string;
  /** st_blksize reported for files (tools size their I/O by it). */
  ioSizeBytes: number;
  log: Logger;
  /** Names this mount's hidden files and their registry (host and mount point, see service). */
  mountTag: string;
}

export class StrataFs implements FuseOperations, DirectReadSource {
  readonly #fs: FileSystem;
  readonly #root: string;
  readonly #ioSize: number;
  readonly #log: Logger;
  readonly #open: OpenFiles;
  readonly #tag: string;
  #hiddenSeq = 0;
  #onRevoke: ((fh: number) => void) | undefined;
  /** Descriptors held by granted handles (see MAX_DIRECT_READ_DESCRIPTORS). */
  #directDescriptors = 0;

  constructor(opts: StrataFsOptions) {
    this.#fs = opts.fs;
    this.#root = opts.fsPath === '/' ? '' : opts.fsPath.replace(/\/+$/, '');
    this.#ioSize = opts.ioSizeBytes;
    this.#log = opts.log;
    this.#open = new OpenFiles(opts.fs);
    this.#tag = opts.mountTag;
  }

  get openHandles(): number {
    return this.#open.size;
  }

  // ---- attributes ----------------------------------------------------------------------------

  async getattr(path: string): Promise<FuseAttr> {
    const ns = this.#ns(path);
    const attr = toAttr(await this.#fs.stat(ns), this.#ioSize);
    return this.#overlay(this.#open.file(ns), attr);
  }

  async fgetattr(path: string, fh: number): Promise<FuseAttr> {
    const h = this.#open.handle(fh);
    return this.#overlay(h.file, toAttr(await this.#fs.stat(h.file.path), this.#ioSize));
  }

  async readdir(path: string): Promise<string[]> {
    return (await this.readdirPlus(path)).map((e) => e.name);
  }

  async readdirPlus(path: string): Promise<FuseDirEntry[]> {
    const dir = this.#ns(path);
    const prefix = dir === '/' ? '/' : `${dir}/`;
    const out: FuseDirEntry[] = [{ name: '.' }, { name: '..' }];
    for await (const page of this.#fs.list(dir)) {
      for (const e of page) {
        if (isHiddenName(dir, e.name)) continue;
        const attr = toAttr(e, this.#ioSize);
        out.push({ name: e.name, attr: this.#overlay(this.#open.file(prefix + e.name), attr) });
      }
    }
    return out;
  }

  /**
   * One SETATTR, one master call for whatever it changes besides the size: chmod, chown and
   * the times together, answered with the attributes the call returned (no stat after).
   */
  async setattr(path: string, fh: number | undefined, c: SetattrChanges): Promise<FuseAttr> {
    if (c.size !== undefined) {
      if (fh !== undefined) await this.ftruncate(path, fh, c.size);
      else await this.truncate(path, c.size);
    }
    const ns = this.#ns(path);
    const file = fh !== undefined ? this.#open.handle(fh).file : this.#open.file(ns);
    const times = {
      ...(c.atimeMs === undefined ? {} : { atimeMs: c.atimeMs }),
      ...(c.mtimeMs === undefined ? {} : { mtimeMs: c.mtimeMs }),
    };
    const attrs = {
      ...(c.mode === undefined ? {} : { mode: c.mode & PERMISSION_BITS }),
      ...(c.uid === undefined || c.uid === ID_UNCHANGED ? {} : { uid: c.uid }),
      ...(c.gid === undefined || c.gid === ID_UNCHANGED ? {} : { gid: c.gid }),
      ...times,
    };
    if (Object.keys(attrs).length === 0)
      return fh !== undefined ? this.fgetattr(path, fh) : this.getattr(path);
    const st = await this.#fs.setattr(file?.path ?? ns, attrs);
    // An open file's commit stamps its mtime: the times are set again with it (OpenFile.commit).
    if (file?.hasWriter === true && Object.keys(times).length > 0)
      file.pendingTimes = { ...file.pendingTimes, ...times };
    return this.#overlay(file, toAttr(st, this.#ioSize));
  }

  createdAttr(fh: number): FuseAttr | undefined {
    const h = this.#open.handle(fh);
    const st = h.created;
    if (st === undefined) return undefined;
    h.created = undefined;
    return this.#overlay(h.file, toAttr(st, this.#ioSize));
  }

  // One change at a time (the fuse-native engine): each is a `setattr` of that change.
  async chmod(path: string, mode: number): Promise<void> {
    await this.setattr(path, undefined, { mode });
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    await this.setattr(path, undefined, { uid, gid });
  }

  async utimens(path: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void> {
    if (atimeMs === undefined && mtimeMs === undefined) return;
    await this.setattr(path, undefined, {
      ...(atimeMs === undefined ? {} : { atimeMs }),
      ...(mtimeMs === undefined ? {} : { mtimeMs }),
    });
  }

  async statfs(_path: string): Promise<FuseStatfs> {
    return toStatfs(await this.#fs.clusterInfo());
  }

  // ---- namespace -----------------------------------------------------------------------------

  async mkdir(path: string, mode: number, ctx: FuseContext): Promise<FuseAttr> {
    const ns = this.#ns(path);
    const st = await this.#fs.mkdir(ns, { mode: mode & PERMISSION_BITS });
    return toAttr(await this.#own(ns, st, ctx), this.#ioSize);
  }

  async rmdir(path: string): Promise<void> {
    const ns = this.#ns(path);
    // A stale kernel cache could call rmdir on what is now a file: never delete a file here.
    const st = await this.#fs.stat(ns);
    if (st.type !== 'dir') throw fsError('ENOTDIR', path);
    await this.#fs.delete(ns);
  }

  async unlink(path: string): Promise<string | undefined> {
    const ns = this.#ns(path);
    const open = this.#open.file(ns);
    if (open === undefined || open.refs === 0) {
      await this.#fs.delete(ns);
      return undefined;
    }
    return this.#hide(path, open);
  }

  async rename(src: string, dst: string, noReplace = false): Promise<string | undefined> {
    const from = this.#ns(src);
    const to = this.#ns(dst);
    // A replaced target that is open here lives on under a hidden name, as after unlink.
    const target = noReplace || from === to ? undefined : this.#open.file(to);
    const hidden = target !== undefined && target.refs > 0 ? await this.#hide(dst, target) : undefined;
    try {
      await this.#fs.rename(from, to, noReplace ? { noReplace: true } : {});
    } catch (err) {
      if (hidden !== undefined && target !== undefined) await this.#unhide(target, to);
      throw err;
    }
    this.#open.renamed(from, to);
    return hidden;
  }

  async symlink(target: string, path: string, ctx: FuseContext): Promise<FuseAttr> {
    const ns = this.#ns(path);
    return toAttr(await this.#own(ns, await this.#fs.symlink(target, ns), ctx), this.#ioSize);
  }

  async readlink(path: string): Promise<string> {
    return this.#fs.readlink(this.#ns(path));
  }

  async link(existing: string, path: string): Promise<FuseAttr> {
    const from = this.#ns(existing);
    const st = await this.#fs.link(from, this.#ns(path));
    return this.#overlay(this.#open.file(from), toAttr(st, this.#ioSize));
  }

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    const flag = (flags & XATTR_CREATE) !== 0 ? 'create' : (flags & XATTR_REPLACE) !== 0 ? 'replace' : 'any';
    await this.#fs.setXattr(this.#ns(path), name, value, flag);
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    return this.#fs.getXattr(this.#ns(path), name);
  }

  async listxattr(path: string): Promise<string[]> {
    return this.#fs.listXattr(this.#ns(path));
  }

  async removexattr(path: string, name: string): Promise<void> {
    await this.#fs.removeXattr(this.#ns(path), name);
  }

  // ---- data ----------------------------------------------------------------------------------

  async open(path: string, flags: number): Promise<number> {
    const ns = this.#ns(path);
    const access = flags & O_ACCMODE;
    const writable = access !== constants.O_RDONLY;
    const fh = this.#open.open(ns, writable, (flags & constants.O_APPEND) !== 0);
    if (writable) this.#revokeDirect(this.#open.handle(fh).file);
    try {
      // The kernel sends O_TRUNC only with atomic_o_trunc; otherwise it truncates with setattr.
      if (writable && (flags & constants.O_TRUNC) !== 0)
        await this.#truncateOpen(this.#open.handle(fh).file, 0);
    } catch (err) {
      await this.release(path, fh);
      throw err;
    }
    return fh;
  }

  async create(path: string, mode: number, ctx: FuseContext, flags = 0): Promise<number> {
    const ns = this.#ns(path);
    // O_EXCL: the master's create decides (another mount may have made the name since the
    // kernel's lookup); otherwise an existing file is opened, as open(2) with O_CREAT does.
    const handle = await this.#fs.openForWrite(ns, {
      create: true,
      mode: mode & PERMISSION_BITS,
      exclusive: (flags & constants.O_EXCL) !== 0,
    });
    let fh: number;
    let st: FileStatus;
    try {
      st = await this.#own(ns, handle.status, ctx);
      // O_RDONLY|O_CREAT still gets a write handle (it created the file); O_APPEND is kept.
      fh = this.#open.open(ns, true, (flags & constants.O_APPEND) !== 0);
      this.#revokeDirect(this.#open.handle(fh).file);
    } catch (err) {
      await handle.close().catch(() => handle.abort());
      throw err;
    }
    this.#open.handle(fh).file.adopt(handle);
    this.#open.handle(fh).created = st;
    return fh;
  }

  async read(
    _path: string,
    fh: number,
    buf: Buffer,
    length: number,
    position: number,
    signal?: AbortSignal,
  ): Promise<number> {
    const h = this.#open.handle(fh);
    const writer = await h.file.currentWriter();
    // This mount's own uncommitted bytes first: a descriptor reads what any descriptor wrote.
    if (writer !== undefined) return writer.pread(buf, position, 0, length);
    // One read at a time per descriptor: the reader's read-ahead follows one position. A read
    // interrupted while it waited its turn is not started.
    return h.serial(async () => {
      signal?.throwIfAborted();
      return (await this.#reader(h)).read(buf, position, 0, length);
    });
  }

  async write(_path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.#open.handle(fh);
    if (!h.writable) throw new FsError('EBADF', `${h.file.path}: not open for writing`);
    return h.file.write(buf.subarray(0, length), position, h.append);
  }

  async flush(_path: string, fh: number): Promise<void> {
    const h = this.#open.handle(fh);
    // close(2) of a writable descriptor: commit, so the next open (anywhere) sees the data and
    // errors like ENOSPC reach the application's close.
    if (h.writable) await h.file.commit();
  }

  async fsync(_path: string, fh: number, _dataOnly: boolean): Promise<void> {
    await this.#open.handle(fh).file.commit();
  }

  async release(_path: string, fh: number): Promise<void> {
    const closed = this.#open.close(fh);
    if (closed === undefined) return;
    const { handle, last } = closed;
    // The engine closes a granted handle's descriptors when it sees the RELEASE.
    this.#directDescriptors -= handle.file.direct.get(fh) ?? 0;
    handle.file.direct.delete(fh);
    const reader = await handle.reader?.catch(() => undefined);
    await reader?.close().catch(() => undefined);
    if (last && handle.file.hasWriter) {
      // Normally flush committed already; this covers descriptors closed without one.
      await handle.file.commit().catch((err: unknown) => {
        this.#log.error({ err, path: handle.file.path }, 'committing a file at release failed');
      });
    }
    if (last && handle.file.hidden) await this.#dropHidden(handle.file);
  }

  // ---- direct reads (DirectReadSource) --------------------------------------------------------

  /**
   * A plan for reading `fh` without `read`: for a read-only handle of a file nobody has open
   * for writing through this mount, whose blocks are all local (at most MAX_DIRECT_READ_BLOCKS),
   * the size and block files of the view its reads have now. Checked again once the block files
   * are open: a writer, truncate, commit or release meanwhile voids it.
   */
  async plan(fh: number): Promise<DirectReadPlan | undefined> {
    const h = this.#open.find(fh);
    if (h === undefined || h.writable || !directAllowed(h.file)) return undefined;
    const file = h.file;
    const epoch = file.directEpoch;
    const reader = await this.#reader(h);
    if (this.#directDescriptors + reader.blocks.length > MAX_DIRECT_READ_DESCRIPTORS) return undefined;
    const blocks = await reader.openLocalBlocks(MAX_DIRECT_READ_BLOCKS);
    if (blocks === undefined) return undefined;
    if (
      this.#open.find(fh) !== h ||
      file.directEpoch !== epoch ||
      h.readerVersion !== file.version ||
      !directAllowed(file) ||
      file.direct.has(fh)
    ) {
      for (const b of blocks) closeFd(b.fd, () => undefined);
      return undefined;
    }
    file.direct.set(fh, blocks.length);
    this.#directDescriptors += blocks.length;
    return { sizeBytes: reader.size, extents: blocks };
  }

  onRevoke(listener: (fh: number) => void): void {
    this.#onRevoke = listener;
  }

  /** Before anything changes `file`'s bytes through the mount: its direct reads stop. */
  #revokeDirect(file: OpenFile): void {
    file.directEpoch++;
    for (const [fh, descriptors] of file.direct) {
      this.#onRevoke?.(fh);
      this.#directDescriptors -= descriptors;
    }
    file.direct.clear();
  }

  /**
   * Deletes what a crashed predecessor with the same tag left: every hidden file its registry
   * names, then the registry. Run before mounting (nothing of this mount is hidden yet).
   * Resolves with the number of hidden files removed.
   */
  async cleanHidden(): Promise<number> {
    const registry = this.#registry();
    let removed = 0;
    try {
      for await (const page of this.#fs.list(registry)) {
        for (const marker of page) {
          const markerPath = `${registry}/${marker.name}`;
          const target = (
            await this.#fs.getXattr(markerPath, HIDDEN_PATH_XATTR).catch(() => undefined)
          )?.toString();
          // Only ever a hidden name: a marker never deletes a file someone can still see.
          if (target !== undefined && basename(target).startsWith(HIDDEN_PREFIX)) {
            await this.#fs.delete(target).then(
              () => removed++,
              (err: unknown) => {
                if (!(err instanceof FsError && err.code === 'ENOENT')) throw err;
              },
            );
          }
          await this.#fs.delete(markerPath, { recursive: true });
        }
      }
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENOENT') return removed;
      throw err;
    }
    return removed;
  }

  async truncate(path: string, size: number): Promise<void> {
    const ns = this.#ns(path);
    const file = this.#open.file(ns);
    if (file !== undefined) await this.#truncateOpen(file, size);
    else await this.#fs.truncate(ns, size);
  }

  async ftruncate(_path: string, fh: number, size: number): Promise<void> {
    await this.#truncateOpen(this.#open.handle(fh).file, size);
  }

  /** Commits every open file (graceful stop): nothing written through the mount is dropped. */
  async commitAll(): Promise<void> {
    for (const f of this.#open.allFiles()) {
      await f
        .commit()
        .catch((err: unknown) => this.#log.error({ err, path: f.path }, 'commit at stop failed'));
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  #registry(): string {
    return `${HIDDEN_REGISTRY_DIR}/${this.#tag}`;
  }

  /**
   * Unlink of an open file: rename it to a hidden name in its directory (its descriptors keep
   * reading and writing it) and record the name in this mount's registry, so a crash before the
   * last release leaves nothing the next mount does not remove. Resolves with the hidden
   * mount-relative path.
   */
  async #hide(path: string, file: OpenFile): Promise<string> {
    const name = `${HIDDEN_PREFIX}${this.#tag}-${Date.now().toString(36)}-${this.#hiddenSeq++}`;
    const dir = dirname(path);
    const hiddenPath = dir === '/' ? `/${name}` : `${dir}/${name}`;
    const from = file.path;
    const to = this.#ns(hiddenPath);
    const marker = `${this.#registry()}/${name}`;
    await this.#fs.mkdir(marker, { parents: true });
    await this.#fs.setXattr(marker, HIDDEN_PATH_XATTR, to);
    await this.#fs.rename(from, to);
    this.#open.renamed(from, to);
    file.hidden = true;
    return hiddenPath;
  }

  /** Undoes #hide when the rename it made room for failed. */
  async #unhide(file: OpenFile, ns: string): Promise<void> {
    const hiddenNs = file.path;
    await this.#fs.rename(hiddenNs, ns);
    this.#open.renamed(hiddenNs, ns);
    file.hidden = false;
    await this.#fs.delete(`${this.#registry()}/${basename(hiddenNs)}`).catch(() => undefined);
  }

  /** The last release of a hidden file: delete it and its marker. */
  async #dropHidden(file: OpenFile): Promise<void> {
    try {
      await this.#fs.delete(file.path);
      await this.#fs.delete(`${this.#registry()}/${basename(file.path)}`, { recursive: true });
    } catch (err) {
      // Left for the next mount's cleanHidden (its marker stays unless the file is gone).
      this.#log.warn({ err, path: file.path }, 'removing an unlinked file at its last close failed');
    }
  }

  /**
   * Gives a new entry to its creator: the master made it owned by the mount's user (root). One
   * setattr, only when the caller is someone else.
   */
  /** Gives a new entry to its creator (the client acts as root); resolves with its status after. */
  async #own(ns: string, st: FileStatus, ctx: FuseContext): Promise<FileStatus> {
    if (st.uid === ctx.uid && st.gid === ctx.gid) return st;
    return this.#fs.chown(ns, ctx.uid, ctx.gid);
  }

  #ns(path: string): string {
    return path === '/' ? this.#root || '/' : this.#root + path;
  }

  /** An open file's size and mtime come from its writer until it commits; a hidden one has one link less. */
  #overlay(file: OpenFile | undefined, st: FuseAttr): FuseAttr {
    const attr = file?.hidden === true ? { ...st, nlink: Math.max(0, st.nlink - 1) } : st;
    if (file === undefined || !file.hasWriter) return attr;
    const writer = file.writerNow;
    if (writer === undefined) return attr;
    const size = writer.size;
    return {
      ...attr,
      size,
      blocks: Math.ceil(size / 512),
      mtimeMs: file.pendingTimes?.mtimeMs ?? Math.max(attr.mtimeMs, file.lastWriteMs),
    };
  }

  async #truncateOpen(file: OpenFile, size: number): Promise<void> {
    this.#revokeDirect(file);
    if (file.hasWriter) {
      await file.truncate(size);
      return;
    }
    // Nobody writes through this mount: a metadata truncate (holes up, blocks dropped down).
    await this.#fs.truncate(file.path, size);
    file.version++;
  }

  async #reader(h: Handle) {
    if (h.reader === undefined || h.readerVersion !== h.file.version) {
      const old = h.reader;
      h.readerVersion = h.file.version;
      h.reader = this.#fs.open(h.file.path);
      if (old !== undefined) void old.then((r) => r.close()).catch(() => undefined);
      const opening = h.reader;
      opening.catch(() => {
        if (h.reader === opening) h.reader = undefined;
      });
    }
    return h.reader;
  }
}

/** Whether a file's handles may be read directly: nothing writes it through this mount. */
function directAllowed(file: OpenFile): boolean {
  return file.writableRefs === 0 && !file.hasWriter;
}

/** Names listings leave out: hidden open files, and the hidden-file registry at the namespace root. */
function isHiddenName(dir: string, name: string): boolean {
  return name.startsWith(HIDDEN_PREFIX) || (dir === '/' && `/${name}` === HIDDEN_REGISTRY_DIR);
}
