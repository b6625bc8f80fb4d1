/**
 * Objects on the file system: buckets are top-level directories, an object is the file at
 * `/<bucket>/<key>` with its S3 metadata in an extended attribute. Every upload is written to a
 * hidden temp file, checked (length, MD5, SHA-256, checksum) and only then renamed into place, so
 * an interrupted or corrupted upload never becomes (or replaces) an object.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FileSystem } from '../../client/index.js';
import { FsError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { FileStatus } from '../../protocol/types.js';
import { BodyDigests } from './digests.js';
import type { ExpectedDigests } from './digests.js';
import { S3Error, toS3Error } from './errors.js';
import { GATEWAY_ROOT, TMP_DIR, UPLOADS_DIR, bucketPath, checkBucketName, objectPath } from './keys.js';
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

  constructor(fs: FileSystem, log: Logger) {
    this.fs = fs;
    this.#log = log;
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

  /** Status and metadata of an object; NoSuchKey for a missing key or a "folder". */
  async head(bucket: string, key: string): Promise<ObjectInfo> {
    const path = objectPath(bucket, key);
    let st: FileStatus | undefined;
    try {
      st = await this.fs.exists(path);
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENOTDIR') st = undefined;
      else throw toS3Error(err, { bucket, key });
    }
    if (st === undefined || st.type !== 'file') {
      await this.bucketStatus(bucket);
      throw new S3Error('NoSuchKey', 'The specified key does not exist.', { BucketName: bucket, Key: key });
    }
    return { key, size: st.size, mtimeMs: st.mtimeMs, meta: decodeMeta(await this.#readMeta(path), st) };
  }

  async #readMeta(path: string): Promise<Buffer | undefined> {
    try {
      return await this.fs.getXattr(path, META_XATTR);
    } catch (err) {
      if (err instanceof FsError && (err.code === 'ENODATA' || err.code === 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** The object's bytes [start, end] as a stream. */
  read(bucket: string, key: string, start: number, end: number): Readable {
    return this.fs.createReadStream(objectPath(bucket, key), { start, end });
  }

  /**
   * Streams a body into a new temp file, checking the size limit as it goes and the digests at
   * the end. The temp file is removed on any failure (including the client going away).
   */
  async writeTemp(
    body: AsyncIterable<Buffer>,
    limits: WriteLimits,
    expected: ExpectedDigests | (() => ExpectedDigests),
    checksumAlgorithm?: string,
  ): Promise<TempUpload> {
    if (limits.expectedBytes !== undefined && limits.expectedBytes > limits.maxBytes) {
      throw new S3Error(
        'EntityTooLarge',
        `Your proposed upload of ${limits.expectedBytes} bytes exceeds the maximum allowed size of ${limits.maxBytes} bytes.`,
      );
    }
    const tmpPath = `${TMP_DIR}/${randomUUID()}`;
    const writer = await this.fs.create(tmpPath, {
      ...(limits.expectedBytes === undefined ? {} : { sizeHintBytes: limits.expectedBytes }),
    });
    // Trailer checksums are known only at the end; what to hash is known now.
    const digests = new BodyDigests(
      typeof expected === 'function' ? expected() : expected,
      checksumAlgorithm,
    );
    try {
      for await (const chunk of body) {
        digests.update(chunk);
        if (digests.bytes > limits.maxBytes) {
          throw new S3Error(
            'EntityTooLarge',
            `Your upload exceeds the maximum allowed size of ${limits.maxBytes} bytes.`,
          );
        }
        await writer.write(chunk);
      }
      if (limits.expectedBytes !== undefined && digests.bytes !== limits.expectedBytes) {
        throw new S3Error(
          'IncompleteBody',
          `You did not provide the number of bytes specified by the Content-Length HTTP header (${digests.bytes} of ${limits.expectedBytes}).`,
        );
      }
      const md5 = digests.verify(typeof expected === 'function' ? expected() : expected);
      await writer.close();
      return { tmpPath, size: digests.bytes, md5 };
    } catch (err) {
      await writer
        .abort()
        .catch((e: unknown) => this.#log.warn({ err: e, tmpPath }, 'abort of a temp upload failed'));
      throw err;
    }
  }

  /**
   * Sets the metadata of a temp file and renames it to `dst`. Parent directories are created
   * only when the rename says they are missing (most keys land in existing folders: one call
   * saved per upload).
   */
  async commit(tmpPath: string, dst: string, meta: ObjectMeta): Promise<void> {
    try {
      await this.fs.setXattr(tmpPath, META_XATTR, encodeMeta(meta));
      const parent = dst.slice(0, dst.lastIndexOf('/'));
      for (let attempt = 1; ; attempt++) {
        try {
          await this.fs.rename(tmpPath, dst);
          return;
        } catch (err) {
          // Missing parents (or ones a concurrent delete pruned): create them and try again.
          const missing = err instanceof FsError && err.code === 'ENOENT';
          if (!missing || attempt >= COMMIT_ATTEMPTS || parent.split('/').length <= 2) throw err;
          await this.fs.mkdir(parent, { parents: true });
        }
      }
    } catch (err) {
      await this.fs.delete(tmpPath).catch(() => undefined);
      throw err;
    }
  }

  /** Removes a temp file (a failed step after writeTemp). */
  async discard(tmpPath: string): Promise<void> {
    await this.fs.delete(tmpPath).catch(() => undefined);
  }

  /** Deletes an object (a missing one is not an error, as in S3) and prunes emptied parent directories. */
  async delete(bucket: string, key: string): Promise<void> {
    const path = objectPath(bucket, key);
    try {
      const st = await this.fs.exists(path);
      if (st === undefined || st.type !== 'file') {
        await this.bucketStatus(bucket);
        return;
      }
      await this.fs.delete(path);
    } catch (err) {
      if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) {
        await this.bucketStatus(bucket);
        return;
      }
      throw toS3Error(err, { bucket, key });
    }
    await this.pruneParents(bucket, key);
  }

  /** Removes the now-empty directories above a deleted key, so listings show no empty "folders". */
  async pruneParents(bucket: string, key: string): Promise<void> {
    const segments = key.split('/');
    for (let n = segments.length - 1; n >= 1; n--) {
      const dir = objectPath(bucket, segments.slice(0, n).join('/'));
      try {
        await this.fs.delete(dir);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
    }
  }
}
