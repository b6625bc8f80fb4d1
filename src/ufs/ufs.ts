/**
 * The under file system (UFS): the storage outside Strata that a mount caches (an S3 bucket, a
 * local or network directory, an HTTP origin). One interface, several engines behind it; the
 * master reads metadata through it, workers read block ranges and persist files through it.
 *
 * Paths given to a UFS are relative to its root (the mount's URI) and written absolute: "/" is
 * the root itself, "/a/b.bin" a file two levels down. `normaliseUfsPath` checks them; engines
 * never see "..", empty components or NUL.
 *
 * Errors are FsErrors with POSIX codes (ENOENT, EACCES, ENOTSUP, EROFS, ESTALE…) or, when the
 * storage cannot be reached, ECONNREFUSED / ETIMEDOUT naming the endpoint. Credentials never appear
 * in an error message, a log line or `describe()`.
 */
import type { Readable } from 'node:stream';

export type UfsScheme = 's3' | 'file' | 'http' | 'https';

export type UfsEntryType = 'file' | 'dir';

/** One file or directory as the UFS describes it. */
export interface UfsStatus {
  /** UFS path, "/"-rooted, relative to the UFS root. */
  path: string;
  /** Last path component ("" for the root). */
  name: string;
  type: UfsEntryType;
  /** Bytes; 0 for directories. */
  size: number;
  /** Last modification, ms since the epoch; 0 when the UFS does not say (directories on S3). */
  mtimeMs: number;
  /** Opaque version tag when the UFS has one (S3/HTTP ETag, local inode+mtime). */
  etag?: string;
}

/**
 * What the reader believes the object is. A read whose object no longer matches fails with
 * ESTALE instead of returning bytes of another version.
 */
export interface UfsValidator {
  size?: number;
  mtimeMs?: number;
  etag?: string;
}

export interface UfsCallOptions {
  signal?: AbortSignal;
}

export interface UfsListOptions extends UfsCallOptions {
  /** Opaque cursor from the previous page's `cursor`. */
  cursor?: string;
  /** Entries wanted at most (the engine may return fewer); default and maximum UFS_LIST_PAGE_MAX. */
  limit?: number;
}

export interface UfsListPage {
  /** Children of the listed directory, in the engine's order; never the directory itself. */
  entries: UfsStatus[];
  /** Present when more entries follow. */
  cursor?: string;
}

export interface UfsReadOptions extends UfsCallOptions {
  /** First byte wanted (default 0). */
  offset?: number;
  /** Bytes wanted from `offset`; absent = to the end. A range past the end is cut at the end. */
  length?: number;
  validator?: UfsValidator;
}

/** An open range read: the stream yields exactly `length` bytes or fails (never a short read). */
export interface UfsRead {
  body: Readable;
  /** Bytes the stream will yield. */
  length: number;
  /** Size of the whole object, as the UFS reported it with this read. */
  objectSize: number;
  etag?: string;
}

export interface UfsWriteOptions extends UfsCallOptions {
  /** Expected total bytes, when known: lets an engine choose a single request over a multipart upload. */
  sizeHint?: number;
}

export interface UfsCapabilities {
  /** Writes, deletes, renames and mkdir fail with EROFS. */
  readOnly: boolean;
  /** `list` works (HTTP origins cannot list: ENOTSUP). */
  canList: boolean;
  /** `rename` is one atomic step (local) rather than copy then delete (S3). */
  atomicRename: boolean;
  /** Directories exist on their own (local) rather than as key prefixes and markers (S3). */
  realDirectories: boolean;
}

export interface UnderFileSystem {
  readonly scheme: UfsScheme;
  readonly capabilities: UfsCapabilities;
  /** The root URI without secrets, for messages and logs. */
  describe(): string;
  /** Proves the UFS is reachable and the credentials work: resolves, or throws a clear FsError. */
  check(opts?: UfsCallOptions): Promise<void>;
  stat(path: string, opts?: UfsCallOptions): Promise<UfsStatus>;
  list(path: string, opts?: UfsListOptions): Promise<UfsListPage>;
  openRead(path: string, opts?: UfsReadOptions): Promise<UfsRead>;
  /** Streams `source` into a new version of the file (replacing it); visible only when complete. */
  write(path: string, source: AsyncIterable<Uint8Array>, opts?: UfsWriteOptions): Promise<UfsStatus>;
  /** Removes a file, or a directory (empty unless `recursive`). ENOENT when absent. */
  delete(path: string, opts?: UfsCallOptions & { recursive?: boolean }): Promise<void>;
  /** Moves a file or directory; an existing target file is replaced. */
  rename(src: string, dst: string, opts?: UfsCallOptions): Promise<void>;
  /** Creates a directory and its parents; fine when it exists. */
  mkdir(path: string, opts?: UfsCallOptions): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}
