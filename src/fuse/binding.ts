/**
 * The seam between Strata's file system logic and a FUSE library. `FuseOperations` is what a
 * mount serves (promise-based, errors thrown as `FsError`s); a `FuseBinding` mounts it with one
 * particular library. Only the engine files know a library exists, so another binding (a libfuse3
 * low-level addon, say) replaces `fuse-native` without touching the operations.
 */
import type { VerifiedFile } from '../client/local-verify.js';

/** What getattr answers; times in milliseconds since the epoch, `mode` with the file-type bits. */
export interface FuseAttr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte units, as st_blocks. */
  blocks: number;
  blksize: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** A directory entry with its attributes when the listing carried them ("." and ".." do not). */
export interface FuseDirEntry {
  name: string;
  attr?: FuseAttr;
}

/** statvfs(3) fields; counts in `frsize` units. */
export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/**
 * Who makes a request (the kernel's fuse_in_header). Operations that create entries use it for
 * the owner; permission checks stay with the kernel (`default_permissions`).
 */
export interface FuseContext {
  uid: number;
  gid: number;
  pid: number;
}

/** setxattr(2) flags. */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

/**
 * The requests a mount serves. Paths are the mount-relative paths the kernel asks about ("/" is
 * the mount's root); `fh` is the number `open`/`create` returned. Every method throws an `FsError`
 * (or anything `errnoOf` understands) to answer with an errno.
 */
export interface FuseOperations {
  getattr(path: string): Promise<FuseAttr>;
  fgetattr(path: string, fh: number): Promise<FuseAttr>;
  readdir(path: string): Promise<string[]>;
  /**
   * The listing with each entry's attributes, from the same call (the kernel engine answers
   * READDIRPLUS with them, so `ls -l` needs no lookup per entry).
   */
  readdirPlus(path: string): Promise<FuseDirEntry[]>;
  open(path: string, flags: number): Promise<number>;
  /** `flags` are the open(2) flags when the engine knows them (O_EXCL, O_APPEND…). */
  create(path: string, mode: number, ctx: FuseContext, flags?: number): Promise<number>;
  /**
   * Reads into `buf[0…length)`; resolves with the bytes read (0 at end of file). `signal` is
   * aborted when the kernel interrupts the request (its answer is then dropped).
   */
  read(
    path: string,
    fh: number,
    buf: Buffer,
    length: number,
    position: number,
    signal?: AbortSignal,
  ): Promise<number>;
  /** `buf` belongs to the binding: copy what must outlive the call. Resolves with bytes written. */
  write(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number>;
  flush(path: string, fh: number): Promise<void>;
  fsync(path: string, fh: number, dataOnly: boolean): Promise<void>;
  release(path: string, fh: number): Promise<void>;
  truncate(path: string, size: number): Promise<void>;
  ftruncate(path: string, fh: number, size: number): Promise<void>;
  /**
   * Resolves with the mount-relative path the entry now lives under when it was kept for
   * descriptors still open on it (hidden until their last release), else undefined.
   */
  unlink(path: string): Promise<string | undefined>;
  /** Resolves with the new directory's attributes when the answer carried them. */
  mkdir(path: string, mode: number, ctx: FuseContext): Promise<FuseAttr | undefined>;
  rmdir(path: string): Promise<void>;
  /**
   * `noReplace`: renameat2's RENAME_NOREPLACE (EEXIST when `dst` exists). Resolves with the
   * hidden path of a replaced target kept for its open descriptors (as `unlink`), else undefined.
   */
  rename(src: string, dst: string, noReplace?: boolean): Promise<string | undefined>;
  /** Resolves with the new link's attributes when the answer carried them. */
  symlink(target: string, path: string, ctx: FuseContext): Promise<FuseAttr | undefined>;
  readlink(path: string): Promise<string>;
  /** Resolves with the file's attributes (one link more) when the answer carried them. */
  link(existing: string, path: string): Promise<FuseAttr | undefined>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  /** Times in ms since the epoch; `undefined` leaves that stamp unchanged (UTIME_OMIT). */
  utimens(path: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void>;
  statfs(path: string): Promise<FuseStatfs>;
  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void>;
  getxattr(path: string, name: string): Promise<Buffer>;
  listxattr(path: string): Promise<string[]>;
  removexattr(path: string, name: string): Promise<void>;
  /**
   * Attributes of the file `create` just opened as `fh`, when they are known without asking
   * (the create's own answer); asked once, right after the create.
   */
  createdAttr?(fh: number): FuseAttr | undefined;
  /**
   * A whole SETATTR in one operation: applies every change given and resolves with the
   * attributes after them, from the same answer where it can (the kernel engine uses it; its
   * absence means truncate/chmod/chown/utimens one by one, then getattr).
   */
  setattr?(path: string, fh: number | undefined, changes: SetattrChanges): Promise<FuseAttr>;
}

/** What one SETATTR changes (times in ms since the epoch; absent: unchanged). */
export interface SetattrChanges {
  size?: number;
  mode?: number;
  /** chown's ids; absent: unchanged. */
  uid?: number;
  gid?: number;
  atimeMs?: number;
  mtimeMs?: number;
}

/** The requests (createdAttr is a synchronous question the engine asks, not one of them). */
export type FuseOpName = Exclude<keyof FuseOperations, 'createdAttr'>;

/** A piece of an open file's bytes that lies in a local file (bytes [offset, offset + length)). */
export interface DirectExtent {
  offset: number;
  length: number;
  /** Descriptor of the local file; the extent's first byte is its byte 0. */
  fd: number;
  /**
   * The block file's checksums, when reads of it must check them (`client.local_read_verify`):
   * reads then cover whole chunks and check them, as the client's own reads do.
   */
  checksums?: VerifiedFile;
}

/**
 * How to answer reads of one open file handle without the operations: its size and where its
 * bytes lie (extents sorted by offset; gaps are holes and read as zeros). The descriptors
 * belong to whoever received the plan, which closes them once it is done with the handle.
 */
export interface DirectReadPlan {
  sizeBytes: number;
  extents: DirectExtent[];
}

/**
 * What the operations offer an engine able to answer READ requests itself (the kernel engine's
 * reader thread): a plan for a read-only handle whose bytes are all local and will not change
 * while it is open, and word when such a plan stops holding (a writer opened the file, it was
 * truncated), given before the change is acknowledged to anyone.
 */
export interface DirectReadSource {
  /** A plan for `fh`, or undefined when its reads must go through `read`. */
  plan(fh: number): Promise<DirectReadPlan | undefined>;
  /** `listener(fh)` is called (synchronously) when a plan given for `fh` no longer holds. */
  onRevoke(listener: (fh: number) => void): void;
}

export interface MountOptions {
  mountPath: string;
  /** Shown as the mount's source (`fsname=`) and type suffix (`fuse.<subtype>`). */
  fsName: string;
  subtype: string;
  entryTimeoutMs: number;
  attrTimeoutMs: number;
  maxWriteBytes: number;
  /** Further `-o` options, already split (e.g. "allow_other", "default_permissions"). */
  extraOptions: readonly string[];
  /** Log every request inside the library (its `debug` option). */
  debug: boolean;
  /** A request unanswered this long fails with ETIMEDOUT (so a wedged call never hangs the kernel). */
  requestTimeoutMs: number;
  /** Plans for answering reads without `read`, for engines that can (the kernel engine). */
  directReads?: DirectReadSource;
}

/** Reads an engine answered itself from a `DirectReadPlan`, since the mount began. */
export interface DirectReadStats {
  requests: number;
  bytes: number;
}

export interface MountedFs {
  readonly mountPath: string;
  /** Counts of reads answered without the operations (engines with direct reads only). */
  readonly directReads?: () => DirectReadStats;
  /** Detaches the mount (lazily: open files keep working until closed). Idempotent. */
  unmount(): Promise<void>;
}

export interface FuseBinding {
  readonly name: string;
  mount(ops: FuseOperations, opts: MountOptions): Promise<MountedFs>;
}
