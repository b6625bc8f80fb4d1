/**
 * Files open through the mount. Every open path has one `OpenFile` shared by its handles: at
 * most one write handle of the client (the namespace grants one writer lease per file, and two
 * processes writing one file through a local mount must see each other's bytes), committed when
 * a writable descriptor is flushed (close(2)) or fsynced, so the next `open` anywhere sees the
 * data; later writes open a new one. Readers keep their own `FileReader` (their own read-ahead)
 * and refetch block lists when this mount committed a new version of the file.
 */
import type { FileReader, FileSystem, RandomWriteHandle } from '../client/index.js';
import type { FileStatus } from '../protocol/types.js';
import { FsError } from '../common/errors.js';

/** Handle numbers are 32-bit in the kernel protocol as this binding carries them; 0 is "none". */
const MAX_HANDLE = 0xffff_ffff;
/** Open handles at once; more answer EMFILE-like ENFILE (a leak guard, far above real use). */
export const MAX_OPEN_HANDLES = 1_000_000;

export class OpenFile {
  /** The namespace path (follows renames done through this mount). */
  path: string;
  refs = 0;
  /** Bumped at every commit or truncate this mount makes, so readers refetch block lists. */
  version = 0;
  /** When the current writer last changed the file (its mtime until committed). */
  lastWriteMs = 0;
  /**
   * Times set (utimens) while a writer is open: the commit would stamp mtime "now", so they are
   * set again after it (`cp -p` and `tar` set times before closing). A later write clears them.
   */
  pendingTimes: { atimeMs?: number; mtimeMs?: number } | undefined;
  /**
   * Unlinked (or replaced by a rename) while open: `path` is a hidden name in the same
   * directory, removed at the last release (POSIX keeps an open file alive after unlink).
   */
  hidden = false;
  /** Handles open for writing (a file with any is never read directly). */
  writableRefs = 0;
  /** Handles whose reads the engine answers directly, with the descriptors each holds (StrataFs.plan). */
  readonly direct = new Map<number, number>();
  /** Bumped whenever direct reads of this file are revoked (a plan made before is void). */
  directEpoch = 0;
  readonly #fs: FileSystem;
  #handle: RandomWriteHandle | undefined;
  #opening: Promise<RandomWriteHandle> | undefined;
  /** Writes, truncates and commits in turn (an append's position is the size when it runs). */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(fs: FileSystem, path: string) {
    this.#fs = fs;
    this.path = path;
  }

  get hasWriter(): boolean {
    return this.#handle !== undefined || this.#opening !== undefined;
  }

  /** The write handle if one is open now (for attributes). */
  get writerNow(): RandomWriteHandle | undefined {
    return this.#handle;
  }

  /** The write handle if one is open or opening. */
  async currentWriter(): Promise<RandomWriteHandle | undefined> {
    return this.#handle ?? (await this.#opening?.catch(() => undefined));
  }

  /** The write handle, opened on first use (no lease is taken for descriptors that never write). */
  writer(): Promise<RandomWriteHandle> {
    if (this.#handle !== undefined) return Promise.resolve(this.#handle);
    // A failed open is not kept: the next write tries again (e.g. after another writer's lease ended).
    this.#opening ??= this.#fs.openForWrite(this.path).then(
      (h) => {
        this.#handle = h;
        this.#opening = undefined;
        return h;
      },
      (err: unknown) => {
        this.#opening = undefined;
        throw err;
      },
    );
    return this.#opening;
  }

  /** Installs the handle `create` opened. */
  adopt(handle: RandomWriteHandle): void {
    this.#handle = handle;
    this.lastWriteMs = Date.now();
  }

  /**
   * Writes at `position`, or at the end for O_APPEND descriptors. Writes, truncates and commits
   * take turns (the handle runs its calls one at a time anyway), so a commit never closes the
   * handle under a write that another descriptor just issued.
   */
  write(data: Buffer, position: number, append: boolean): Promise<number> {
    return this.#serial(async () => {
      const w = await this.writer();
      const n = await w.pwrite(data, append ? w.size : position);
      this.lastWriteMs = Date.now();
      this.pendingTimes = undefined;
      return n;
    });
  }

  truncate(size: number): Promise<void> {
    return this.#serial(async () => {
      const w = await this.writer();
      await w.truncate(size);
      this.lastWriteMs = Date.now();
      this.pendingTimes = undefined;
    });
  }

  /** Commits the write handle (one Complete): the data becomes the file's for every reader. */
  commit(): Promise<void> {
    return this.#serial(async () => {
      const w = await this.currentWriter();
      this.#handle = undefined;
      this.#opening = undefined;
      if (w === undefined) return;
      // Times set while the file was open: its commit stamps the mtime (so they are set again),
      // the modification time in the same call; an access time needs a call of its own.
      const times = this.pendingTimes;
      this.pendingTimes = undefined;
      try {
        await w.close(times?.mtimeMs === undefined ? {} : { mtimeMs: times.mtimeMs });
      } catch (err) {
        await w.abort();
        throw err;
      } finally {
        this.version++;
      }
      if (times?.atimeMs !== undefined) await this.#fs.setattr(this.path, { atimeMs: times.atimeMs });
    });
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(op);
    this.#chain = p.catch(() => undefined);
    return p;
  }
}

/** One open descriptor (the kernel's file handle). */
export class Handle {
  readonly file: OpenFile;
  readonly writable: boolean;
  readonly append: boolean;
  reader: Promise<FileReader> | undefined;
  readerVersion = -1;
  /** What the master answered to the create that opened this handle, until the engine asks. */
  created: FileStatus | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(file: OpenFile, writable: boolean, append: boolean) {
    this.file = file;
    this.writable = writable;
    this.append = append;
  }

  /** Runs reads of this descriptor one after another. */
  serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(op);
    this.#chain = p.catch(() => undefined);
    return p;
  }
}

/** The table of open paths and handle numbers. */
export class OpenFiles {
  readonly #byPath = new Map<string, OpenFile>();
  readonly #handles = new Map<number, Handle>();
  readonly #fs: FileSystem;
  #next = 1;

  constructor(fs: FileSystem) {
    this.#fs = fs;
  }

  get size(): number {
    return this.#handles.size;
  }

  file(path: string): OpenFile | undefined {
    return this.#byPath.get(path);
  }

  /** Opens a handle on `path` (sharing the path's OpenFile). */
  open(path: string, writable: boolean, append: boolean): number {
    if (this.#handles.size >= MAX_OPEN_HANDLES) {
      throw new FsError('EIO', `${path}: more than ${MAX_OPEN_HANDLES} files open through this mount`);
    }
    let file = this.#byPath.get(path);
    if (file === undefined) {
      file = new OpenFile(this.#fs, path);
      this.#byPath.set(path, file);
    }
    file.refs++;
    if (writable) file.writableRefs++;
    let fh = this.#next;
    while (fh === 0 || this.#handles.has(fh)) fh = fh >= MAX_HANDLE ? 1 : fh + 1;
    this.#next = fh >= MAX_HANDLE ? 1 : fh + 1;
    this.#handles.set(fh, new Handle(file, writable, append));
    return fh;
  }

  /** The handle `fh`, or undefined when it is not open. */
  find(fh: number): Handle | undefined {
    return this.#handles.get(fh);
  }

  handle(fh: number): Handle {
    const h = this.#handles.get(fh);
    if (h === undefined) throw new FsError('EBADF', `file handle ${fh} is not open`);
    return h;
  }

  /** Forgets a handle; returns its file when that was the last handle on it. */
  close(fh: number): { handle: Handle; last: boolean } | undefined {
    const h = this.#handles.get(fh);
    if (h === undefined) return undefined;
    this.#handles.delete(fh);
    h.file.refs--;
    if (h.writable) h.file.writableRefs--;
    const last = h.file.refs === 0;
    if (last && this.#byPath.get(h.file.path) === h.file) this.#byPath.delete(h.file.path);
    return { handle: h, last };
  }

  /** Follows a rename: open files at `src` or below it now live at `dst`. */
  renamed(src: string, dst: string): void {
    const prefix = `${src}/`;
    for (const [path, file] of [...this.#byPath]) {
      if (path !== src && !path.startsWith(prefix)) continue;
      const next = dst + path.slice(src.length);
      this.#byPath.delete(path);
      file.path = next;
      this.#byPath.set(next, file);
    }
  }

  allFiles(): OpenFile[] {
    return [...new Set([...this.#handles.values()].map((h) => h.file))];
  }
}
