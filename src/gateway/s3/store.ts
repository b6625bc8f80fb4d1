/**
 * Objects on the file system: buckets are top-level directories, an object is the file at
 * `/<bucket>/<key>` with its S3 metadata in an extended attribute. Every upload is written to a
 * hidden temp file, checked (length, MD5, SHA-256, checksum) and only then renamed into place, so
 * an interrupted or corrupted upload never becomes (or replaces) an object.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FileReader, FileSystem, FileWriter } from '../../client/index.js';
import { FsError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { FileStatus } from '../../protocol/types.js';
import { algorithmsFor, verifyDigests } from './digests.js';
import type { ExpectedDigests } from './digests.js';
import { S3Error, toS3Error } from './errors.js';
import type { HashPool } from './hash-pool.js';
import { timed } from './metrics.js';
import { READ_AHEAD_BYTES, ReadAhead } from './read-ahead.js';
import { PiecePool, WriteGather } from './write-gather.js';
import type { UploadPhaseObserver } from './metrics.js';
import {
  GATEWAY_ROOT,
  NAME_XATTR,
  TMP_DIR,
  UPLOADS_DIR,
  besideName,
  bucketPath,
  checkBucketName,
  locateKey,
} from './keys.js';
import type { EncodedName, KeyLocation } from './keys.js';
import { META_XATTR, decodeMeta, encodeMeta } from './object-meta.js';
import type { ObjectInfo, ObjectMeta } from './object-meta.js';

/** Temp files older than this at start-up are leftovers of a crashed gateway and are removed. */
export const STALE_TMP_AGE_MS = 60 * 60 * 1000;
/** Attempts of mkdir-parents + rename when a concurrent delete removes an emptied parent in between. */
const COMMIT_ATTEMPTS = 4;

export interface TempUpload {
  tmpPath: string;
  size: number;
  md5: Buffer;
  /** With a target: where the object now is (the upload was completed into place). */
  path?: string;
}

export interface WriteLimits {
  /** Largest body accepted (EntityTooLarge beyond). */
  maxBytes: number;
  /** Content-Length or x-amz-decoded-content-length the client announced, when known. */
  expectedBytes?: number;
}

export class ObjectStore {
  readonly fs: FileSystem;
  readonly #log: Logger;
  readonly #hashes: HashPool;
  readonly #phases: UploadPhaseObserver | undefined;
  /** Buffers uploads are gathered into before they go to the writer (see write-gather.ts). */
  readonly #pieces = new PiecePool();

  /** `phases` is told how long each phase of an upload took (see UploadPhase). */
  constructor(fs: FileSystem, log: Logger, hashes: HashPool, phases?: UploadPhaseObserver) {
    this.fs = fs;
    this.#log = log;
    this.#hashes = hashes;
    this.#phases = phases;
  }

  /** Creates the gateway's directories and removes temp files a crashed gateway left behind. */
  async init(nowMs = Date.now()): Promise<void> {
    await this.fs.mkdir(TMP_DIR, { parents: true });
    await this.fs.mkdir(UPLOADS_DIR, { parents: true });
    for await (const e of this.fs.entries(TMP_DIR)) {
      if (nowMs - e.mtimeMs > STALE_TMP_AGE_MS) {
        await this.fs.delete(`${TMP_DIR}/${e.name}`, { recursive: true }).catch(() => undefined);
      }
    }
  }

  // ---- buckets -------------------------------------------------------------------------------

  async listBuckets(): Promise<FileStatus[]> {
    const out: FileStatus[] = [];
    for await (const e of this.fs.entries('/')) {
      if (e.type !== 'dir' || `/${e.name}` === GATEWAY_ROOT) continue;
      try {
        checkBucketName(e.name);
      } catch {
        continue; // a top-level directory whose name no bucket can have is not shown
      }
      out.push(e);
    }
    return out;
  }

  async bucketStatus(bucket: string): Promise<FileStatus> {
    const st = await this.fs.exists(bucketPath(bucket)).catch((err: unknown) => {
      throw toS3Error(err, { bucket });
    });
    if (st === undefined || st.type !== 'dir') {
      throw new S3Error('NoSuchBucket', 'The specified bucket does not exist.', { BucketName: bucket });
    }
    return st;
  }

  async createBucket(bucket: string): Promise<void> {
    checkBucketName(bucket);
    try {
      await this.fs.mkdir(bucketPath(bucket));
    } catch (err) {
      if (err instanceof FsError && err.code === 'EEXIST') {
        throw new S3Error(
          'BucketAlreadyOwnedByYou',
          'Your previous request to create the named bucket succeeded and you already own it.',
          { BucketName: bucket },
        );
      }
      throw toS3Error(err, { bucket });
    }
  }

  async deleteBucket(bucket: string): Promise<void> {
    await this.bucketStatus(bucket);
    try {
      await this.fs.delete(bucketPath(bucket));
    } catch (err) {
      throw toS3Error(err, { bucket });
    }
    // Multipart uploads of a deleted bucket can never complete.
    await this.fs.delete(`${UPLOADS_DIR}/${bucket}`, { recursive: true }).catch(() => undefined);
  }

  // ---- objects -------------------------------------------------------------------------------

  /** Status and metadata of an object; NoSuchKey for a missing key. */
  async head(bucket: string, key: string): Promise<ObjectInfo> {
    const loc = locateKey(bucket, key);
    const found = await this.#find(
      loc,
      (path) => this.fs.stat(path),
      (st) => st,
    );
    return found.info;
  }

  /**
   * Opens an object for reading: its info and an open reader (close it). The status, the block
   * locations and the metadata attribute come in one namespace call, so a GET costs one round
   * trip (two for a key whose object is beside a folder).
   */
  async open(bucket: string, key: string): Promise<{ info: ObjectInfo; reader: FileReader }> {
    const loc = locateKey(bucket, key);
    for (const path of [loc.path, loc.besidePath]) {
      const got = await this.fs.openWithXattr(path, META_XATTR).catch((err: unknown) => {
        // A directory of the key's name (EISDIR): the object is beside it.
        if (isNotFound(err)) return undefined;
        throw toS3Error(err, { bucket, key });
      });
      if (got === undefined) continue;
      const st = got.reader.status;
      const meta = decodeMeta(got.xattr, st);
      return { info: { key, path, size: st.size, mtimeMs: st.mtimeMs, meta }, reader: got.reader };
    }
    throw await this.#noSuchKey(loc);
  }

  /**
   * Looks for the object at its natural path, then beside a directory of its name. The status
   * (or an open reader) and the metadata attribute are fetched in parallel.
   */
  async #find<T>(
    loc: KeyLocation,
    get: (path: string) => Promise<T>,
    statusOf: (handle: T) => FileStatus,
  ): Promise<{ info: ObjectInfo; handle: T }> {
    for (const path of [loc.path, loc.besidePath]) {
      const [handle, raw] = await Promise.all([
        get(path).catch((err: unknown) => {
          if (isNotFound(err)) return undefined;
          throw toS3Error(err, { bucket: loc.bucket, key: loc.key });
        }),
        this.#readMeta(path),
      ]);
      if (handle === undefined) continue;
      const st = statusOf(handle);
      if (st.type !== 'file') continue; // a directory of the key's name: the object is beside it
      const info = { key: loc.key, path, size: st.size, mtimeMs: st.mtimeMs, meta: decodeMeta(raw, st) };
      return { info, handle };
    }
    throw await this.#noSuchKey(loc);
  }

  /** NoSuchBucket when the bucket is missing, else NoSuchKey. */
  async #noSuchKey(loc: KeyLocation): Promise<S3Error> {
    await this.bucketStatus(loc.bucket);
    return new S3Error('NoSuchKey', 'The specified key does not exist.', {
      BucketName: loc.bucket,
      Key: loc.key,
    });
  }

  async #readMeta(path: string): Promise<Buffer | undefined> {
    try {
      return await this.fs.getXattr(path, META_XATTR);
    } catch (err) {
      if (isNotFound(err) || (err instanceof FsError && err.code === 'ENODATA')) return undefined;
      throw err;
    }
  }

  /** The bytes [start, end] of the object file at `path` as a stream. */
  read(path: string, start: number, end: number): Readable {
    return this.fs.createReadStream(path, { start, end });
  }

  /**
   * Streams a body into a new temp file, checking the size limit as it goes and the digests at
   * the end (hashed on a hash thread while the bytes go to the workers). With `metaOf`, the
   * object's metadata attribute is set while the file is being completed (one round trip less
   * before the rename). With `target`, the file is completed, given its attributes and renamed
   * onto the key in one namespace commit (see #closeInto) instead of three. The temp file is
   * removed on any failure (including the client going away).
   */
  async writeTemp(
    body: AsyncIterable<Buffer>,
    limits: WriteLimits,
    expected: ExpectedDigests | (() => ExpectedDigests),
    checksumAlgorithm?: string,
    metaOf?: (md5: Buffer) => ObjectMeta,
    target?: KeyLocation,
  ): Promise<TempUpload> {
    if (limits.expectedBytes !== undefined && limits.expectedBytes > limits.maxBytes) {
      throw new S3Error(
        'EntityTooLarge',
        `Your proposed upload of ${limits.expectedBytes} bytes exceeds the maximum allowed size of ${limits.maxBytes} bytes.`,
      );
    }
    const expectedNow = (): ExpectedDigests => (typeof expected === 'function' ? expected() : expected);
    const tmpPath = `${TMP_DIR}/${randomUUID()}`;
    // Trailer checksums are known only at the end; what to hash is known now.
    const hasher = this.#hashes.session(
      algorithmsFor(expectedNow(), checksumAlgorithm),
      limits.expectedBytes,
    );
    // The body is received and hashed while the temp file is being created (one master round
    // trip), not left in the socket until then; the size limit is checked as bytes arrive.
    let received = 0;
    // The bytes come out gathered into pooled pieces (see write-gather.ts), given back once
    // written.
    const input = new ReadAhead(
      body,
      (chunk) => {
        received += chunk.length;
        if (received > limits.maxBytes) {
          throw new S3Error(
            'EntityTooLarge',
            `Your upload exceeds the maximum allowed size of ${limits.maxBytes} bytes.`,
          );
        }
        return hasher.update(chunk);
      },
      READ_AHEAD_BYTES,
      new WriteGather(this.#pieces),
    );
    let writer: FileWriter;
    try {
      writer = await timed(this.#phases, 'create', () =>
        this.fs.create(tmpPath, {
          ...(limits.expectedBytes === undefined ? {} : { sizeHintBytes: limits.expectedBytes }),
          // The first block is placed with the create: one master round trip less per upload.
          placeFirstBlock: limits.expectedBytes !== 0,
        }),
      );
    } catch (err) {
      input.stop();
      hasher.drop();
      throw err;
    }
    let bytes = 0;
    let receiveMs = 0;
    let writeMs = 0;
    try {
      for (let waitedAt = performance.now(); ;) {
        const next = await input.next();
        const gotAt = performance.now();
        receiveMs += gotAt - waitedAt;
        if (next === undefined) break;
        bytes += next.length;
        await writer.write(next);
        // The writer has the bytes (it copies what it keeps): the piece is free again.
        this.#pieces.give(next);
        waitedAt = performance.now();
        writeMs += waitedAt - gotAt;
      }
      if (limits.expectedBytes !== undefined && bytes !== limits.expectedBytes) {
        throw new S3Error(
          'IncompleteBody',
          `You did not provide the number of bytes specified by the Content-Length HTTP header (${bytes} of ${limits.expectedBytes}).`,
        );
      }
      this.#phases?.('receive', receiveMs / 1000);
      this.#phases?.('write', writeMs / 1000);
      const digests = await timed(this.#phases, 'digest', () => hasher.digest());
      verifyDigests(digests, expectedNow());
      const meta = metaOf?.(digests.md5);
      if (target !== undefined) {
        const path = await timed(this.#phases, 'close', () => this.#closeInto(writer, target, meta, bytes));
        return { tmpPath, size: bytes, md5: digests.md5, path };
      }
      await Promise.all([
        timed(this.#phases, 'close', () => writer.close()),
        meta === undefined
          ? undefined
          : timed(this.#phases, 'meta', () => this.fs.setXattr(tmpPath, META_XATTR, encodeMeta(meta))),
      ]);
      return { tmpPath, size: bytes, md5: digests.md5 };
    } catch (err) {
      input.stop();
      hasher.drop();
      await writer
        .abort()
        .catch((e: unknown) => this.#log.warn({ err: e, tmpPath }, 'abort of a temp upload failed'));
      throw err;
    }
  }

  /**
   * Makes the object at `target` from closed files, in order, without copying a byte: an empty
   * temp file is completed onto the key with the files appended (their blocks become the
   * object's, their names go) and the metadata set, in one namespace commit. `files` name the
   * file ids the caller checked (ESTALE when one changed since). On failure the temp file goes
   * and the files stay as they were.
   */
  async concatInto(
    files: readonly { path: string; fileId: number }[],
    size: number,
    target: KeyLocation,
    meta: ObjectMeta,
  ): Promise<string> {
    const tmpPath = `${TMP_DIR}/${randomUUID()}`;
    const writer = await this.fs.create(tmpPath);
    try {
      return await this.#closeInto(writer, target, meta, size, files);
    } catch (err) {
      await writer
        .abort()
        .catch((e: unknown) => this.#log.warn({ err: e, tmpPath }, 'abort of a temp upload failed'));
      throw err;
    }
  }

  /**
   * Completes an upload onto its key in one namespace commit: block list, metadata attribute (and
   * the name attribute of a hashed name) and the rename (an atomic replace). A
   * directory with the key's name sends the object beside it, and missing parents (ENOENT,
   * ENOTDIR: the master changed nothing, the writer stays open) are made before asking again.
   */
  async #closeInto(
    writer: FileWriter,
    loc: KeyLocation,
    meta: ObjectMeta | undefined,
    size: number,
    concat?: readonly { path: string; fileId: number }[],
  ): Promise<string> {
    // The file's mtime is ours to give, so the metadata can name the version it describes.
    const mtimeMs = Date.now();
    const xattrs: Record<string, Uint8Array> = {};
    if (meta !== undefined) xattrs[META_XATTR] = encodeMeta({ ...meta, version: { size, mtimeMs } });
    if (loc.leaf.hashed || loc.beside.hashed) xattrs[NAME_XATTR] = Buffer.from(loc.leaf.segment);
    try {
      for (let attempt = 1; ; attempt++) {
        let target = loc.path;
        try {
          const more = { mtimeMs, ...(concat === undefined ? {} : { concat }) };
          try {
            await writer.close({ xattrs, renameTo: target, ...more });
          } catch (err) {
            if (!(err instanceof FsError && err.code === 'EISDIR')) throw err;
            target = loc.besidePath;
            await writer.close({ xattrs, renameTo: target, ...more });
          }
          return target;
        } catch (err) {
          const code = err instanceof FsError ? err.code : undefined;
          if ((code !== 'ENOENT' && code !== 'ENOTDIR') || attempt >= COMMIT_ATTEMPTS) throw err;
          await this.#ensureParent(loc);
        }
      }
    } catch (err) {
      throw toS3Error(err, { bucket: loc.bucket, key: loc.key });
    }
  }

  /** Makes the key's parent folders (the bucket must exist: a deleted bucket is never made again). */
  async #ensureParent(loc: KeyLocation): Promise<void> {
    await this.bucketStatus(loc.bucket);
    if (loc.dirs.length === 0) return;
    if (!loc.dirs.some((d) => d.hashed)) {
      try {
        await this.fs.mkdir(loc.parentPath, { parents: true });
        return;
      } catch (err) {
        // An object has the name of one of the folders: walk down and move it aside.
        if (!(err instanceof FsError && (err.code === 'EEXIST' || err.code === 'ENOTDIR'))) throw err;
      }
    }
    let parent = bucketPath(loc.bucket);
    for (const d of loc.dirs) {
      await this.#ensureDir(parent, d);
      parent = `${parent}/${d.name}`;
    }
  }

  /** Makes the folder `d` in `parent`, moving an object of that name to the file beside it. */
  async #ensureDir(parent: string, d: EncodedName): Promise<void> {
    const path = `${parent}/${d.name}`;
    for (let attempt = 1; ; attempt++) {
      const st = await this.fs.exists(path);
      if (st?.type === 'dir') return;
      if (attempt > COMMIT_ATTEMPTS) {
        throw new FsError('EEXIST', `${path}: could not make the folder (it keeps being replaced)`);
      }
      if (st !== undefined) {
        // The object `a` becomes the file beside the folder `a` (replacing a stale one).
        const beside = besideName(d);
        if (beside.hashed && !d.hashed) await this.fs.setXattr(path, NAME_XATTR, d.segment);
        await this.fs.rename(path, `${parent}/${beside.name}`).catch((err: unknown) => {
          if (!isNotFound(err)) throw err; // moved or deleted meanwhile: look again
        });
      }
      try {
        await this.#mkdir(path, d);
      } catch (err) {
        if (!(err instanceof FsError && err.code === 'EEXIST')) throw err;
      }
    }
  }

  /** mkdir; a hashed name gets its segment attribute before it appears (made aside, renamed in). */
  async #mkdir(path: string, d: EncodedName): Promise<void> {
    if (!d.hashed) {
      await this.fs.mkdir(path);
      return;
    }
    const tmp = `${TMP_DIR}/dir-${randomUUID()}`;
    await this.fs.mkdir(tmp);
    try {
      await this.fs.setXattr(tmp, NAME_XATTR, d.segment);
      await this.fs.rename(tmp, path, { noReplace: true });
    } catch (err) {
      await this.fs.delete(tmp).catch(() => undefined);
      throw err;
    }
  }

  /** Removes a temp file (a failed step after writeTemp). */
  async discard(tmpPath: string): Promise<void> {
    await this.fs.delete(tmpPath).catch(() => undefined);
  }

  /**
   * Deletes an object (a missing one is not an error, as in S3): the file at its natural path
   * and any beside a folder of its name (a folder with keys in it stays), then prunes emptied
   * parent folders.
   */
  async delete(bucket: string, key: string): Promise<void> {
    const loc = locateKey(bucket, key);
    const results = await Promise.all(
      [loc.path, loc.besidePath].map((path) =>
        this.fs.delete(path).then(
          () => true,
          (err: unknown) => {
            if (isNotFound(err) || (err instanceof FsError && err.code === 'ENOTEMPTY')) return false;
            throw toS3Error(err, { bucket, key });
          },
        ),
      ),
    );
    if (!results.includes(true)) {
      await this.bucketStatus(bucket);
      return;
    }
    await this.pruneParents(loc);
  }

  /**
   * Removes the now-empty folders above a deleted key, so listings show no empty "folders";
   * an object that was moved beside a pruned folder goes back to its natural path.
   */
  async pruneParents(loc: KeyLocation): Promise<void> {
    for (let n = loc.dirs.length; n >= 1; n--) {
      const parent = [bucketPath(loc.bucket), ...loc.dirs.slice(0, n - 1).map((d) => d.name)].join('/');
      const d = loc.dirs[n - 1] as EncodedName;
      const dir = `${parent}/${d.name}`;
      try {
        await this.fs.delete(dir);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
      try {
        await this.fs.rename(`${parent}/${besideName(d).name}`, dir, { noReplace: true });
        return; // the folder's name is an object again: its parent is not empty
      } catch {
        // nothing beside it (the usual case), or the name was taken meanwhile
      }
    }
  }
}

/** ENOENT, or a path through a file or onto a folder: there is no object file there. */
function isNotFound(err: unknown): boolean {
  return err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'EISDIR');
}
