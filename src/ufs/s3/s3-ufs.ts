/**
 * `s3://bucket/prefix`: an S3 bucket (AWS or any S3-compatible store) as a UFS, through
 * @aws-sdk/client-s3 (object GETs signed with its signer and sent directly: see s3-direct-get.ts). Directories are key prefixes: a "directory" exists when some key lies under
 * it or when a marker object `dir/` exists (what `mkdir` writes, as Hadoop's S3A and Alluxio do).
 * Renames are copies then deletes (S3 has no rename): not atomic, but every source key is deleted
 * only after every copy succeeded, so a failure never loses data.
 *
 * Request checksums are computed only when S3 requires them (`requestChecksumCalculation:
 * WHEN_REQUIRED`): S3-compatible stores that do not understand the newer trailing checksums keep
 * working, and reads are not slowed by a CRC over every byte.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable, addAbortSignal } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
  CreateMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, GetObjectCommandOutput, ListObjectsCommandOutput } from '@aws-sdk/client-s3';
import { FsError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { abortReason, throwIfAborted, wasAborted } from '../errors.js';
import { discard, exactLength, sliceStream } from '../exact-stream.js';
import {
  MAX_S3_SINGLE_COPY_BYTES,
  MAX_S3_TREE_KEYS,
  S3_COPY_PART_SIZE_BYTES,
  S3_DELETE_BATCH,
  UFS_LIST_PAGE_MAX,
  UFS_MAX_SOCKETS,
} from '../limits.js';
import type { S3UfsOptions } from '../options.js';
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
import { checkValidator, normaliseEtag } from '../validator.js';
import { mapS3Error, s3ErrorName, s3Status } from './s3-errors.js';
import { DirectGetRefused, S3DirectGet } from './s3-direct-get.js';
import type { GetAnswer, ObjectHeaders } from './s3-direct-get.js';
import { uploadObject } from './s3-upload.js';

// The SDK warns on every process start that its releases after January 2027 will need Node 22.
// Strata pins the SDK's minor version, so the warning is about releases we do not run: noise in
// every daemon's stderr. An operator who sets the variable keeps their choice.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * Appended to a common prefix to make a StartAfter beyond every key under it: U+10FFFF sorts after
 * every other code point in S3's UTF-8 key order.
 */
const PREFIX_END = '\u{10FFFF}';

/** Copies of a directory rename in flight at once. */
const TREE_COPY_CONCURRENCY = 16;

/**
 * Statuses of a direct GET or HEAD that say nothing about the direct path itself (a missing
 * object, a changed one, a range past the end, throttling; and any 5xx): sent again through the
 * SDK for its error or retry, without giving the direct path up.
 */
const EXPECTED_GET_REFUSALS = new Set([404, 412, 416, 429]);

interface KeyInfo {
  key: string;
  size: number;
}

export class S3Ufs implements UnderFileSystem {
  readonly scheme = 's3' as const;
  readonly capabilities: UfsCapabilities = {
    readOnly: false,
    canList: true,
    atomicRename: false,
    realDirectories: false,
  };
  readonly #client: S3Client;
  readonly #bucket: string;
  /** Key prefix of the UFS root without slashes at either end ("" for the bucket root). */
  readonly #prefix: string;
  readonly #uri: string;
  readonly #endpoint: string;
  readonly #opts: S3UfsOptions;
  readonly #agents: { close(): void }[];
  /** Object GETs without the SDK's middleware (undefined when `s3.direct.get = false`). */
  readonly #direct: S3DirectGet | undefined;
  /** Object GETs and HEADs answered by each path (for tests and debugging). */
  readonly #answered = { direct: 0, sdk: 0 };

  constructor(uri: UfsUri, opts: S3UfsOptions, log?: Logger) {
    this.#bucket = uri.authority;
    this.#prefix = uri.rootPath === '/' ? '' : uri.rootPath.slice(1);
    this.#uri = uri.uri;
    this.#opts = opts;
    this.#endpoint = opts.endpointUrl ?? `https://s3.${opts.region}.amazonaws.com`;
    const agentOpts = { keepAlive: true, maxSockets: UFS_MAX_SOCKETS };
    const httpAgent = new HttpAgent(agentOpts);
    const httpsAgent = new HttpsAgent(agentOpts);
    this.#agents = [{ close: () => httpAgent.destroy() }, { close: () => httpsAgent.destroy() }];
    this.#client = new S3Client({
      region: opts.region,
      ...(opts.endpointUrl === undefined ? {} : { endpoint: opts.endpointUrl }),
      forcePathStyle: opts.forcePathStyle,
      ...(opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: opts.maxAttempts,
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs,
        socketTimeout: opts.requestTimeoutMs,
        httpAgent,
        httpsAgent,
      },
    });
    this.#direct = opts.directGet
      ? new S3DirectGet({
          client: this.#client,
          bucket: this.#bucket,
          region: opts.region,
          endpointUrl: opts.endpointUrl,
          forcePathStyle: opts.forcePathStyle,
          connectTimeoutMs: opts.connectTimeoutMs,
          requestTimeoutMs: opts.requestTimeoutMs,
          onDisabled: (reason) =>
            log?.warn(
              { ufs: this.#uri, reason },
              'direct S3 GETs and HEADs given up for this mount: they go through the SDK from now on',
            ),
        })
      : undefined;
  }

  describe(): string {
    return this.#uri;
  }

  #where(path: string): string {
    return path === '/' ? this.#uri : `${this.#uri}${path}`;
  }

  #key(path: string): string {
    const rel = path === '/' ? '' : path.slice(1);
    if (this.#prefix === '') return rel;
    return rel === '' ? this.#prefix : `${this.#prefix}/${rel}`;
  }

  /** The key prefix of everything inside the directory `path` ("" or ending with "/"). */
  #dirPrefix(path: string): string {
    const k = this.#key(path);
    return k === '' ? '' : `${k}/`;
  }

  #map(err: unknown, path: string): FsError {
    return mapS3Error(err, this.#where(path), this.#endpoint);
  }

  #send<T>(p: Promise<T>, path: string, signal: AbortSignal | undefined): Promise<T> {
    return p.catch((err: unknown) => {
      throwIfAborted(signal);
      throw this.#map(err, path);
    });
  }

  #callOpts(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
    return signal === undefined ? {} : { abortSignal: signal };
  }

  async check(opts: UfsCallOptions = {}): Promise<void> {
    // A list under the root proves the endpoint answers, the bucket exists and the credentials
    // may list; its error body names the exact problem (InvalidAccessKeyId, NoSuchBucket…).
    await this.#send(
      this.#client.send(
        new ListObjectsCommand({ Bucket: this.#bucket, Prefix: this.#dirPrefix('/'), MaxKeys: 1 }),
        this.#callOpts(opts.signal),
      ),
      '/',
      opts.signal,
    );
  }

  /** The object at `key`, or undefined when there is none (404). */
  async #head(path: string, signal: AbortSignal | undefined): Promise<UfsStatus | undefined> {
    const key = this.#key(path);
    let h: ObjectHeaders | undefined;
    try {
      h = await this.#either(
        (d) => d.head(key, signal),
        async () => {
          const r = await this.#client.send(
            new HeadObjectCommand({ Bucket: this.#bucket, Key: key }),
            this.#callOpts(signal),
          );
          return {
            contentRange: undefined,
            contentLength: r.ContentLength,
            etag: r.ETag,
            lastModifiedMs: r.LastModified?.getTime(),
          };
        },
      );
    } catch (err) {
      throwIfAborted(signal);
      const name = s3ErrorName(err);
      if (s3Status(err) === 404 && name !== 'NoSuchBucket') return undefined;
      if (name === 'NotFound' || name === 'NoSuchKey') return undefined;
      throw this.#map(err, path);
    }
    if (h === undefined) return undefined;
    return {
      path,
      name: ufsBaseName(path),
      type: 'file',
      size: h.contentLength ?? 0,
      mtimeMs: h.lastModifiedMs ?? 0,
      ...(h.etag === undefined ? {} : { etag: normaliseEtag(h.etag) ?? h.etag }),
    };
  }

  /** Up to `max` keys under the directory prefix of `path` (marker included). */
  async #peekDir(path: string, max: number, signal: AbortSignal | undefined): Promise<string[]> {
    const r = await this.#send(
      this.#client.send(
        new ListObjectsCommand({ Bucket: this.#bucket, Prefix: this.#dirPrefix(path), MaxKeys: max }),
        this.#callOpts(signal),
      ),
      path,
      signal,
    );
    return (r.Contents ?? []).map((o) => o.Key ?? '').filter((k) => k !== '');
  }

  #dirStatus(path: string): UfsStatus {
    return { path, name: path === '/' ? '' : ufsBaseName(path), type: 'dir', size: 0, mtimeMs: 0 };
  }

  async stat(path: string, opts: UfsCallOptions = {}): Promise<UfsStatus> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    throwIfAborted(signal);
    if (p === '/') {
      await this.check(opts);
      return this.#dirStatus(p);
    }
    const file = await this.#head(p, signal);
    if (file !== undefined) return file;
    const under = await this.#peekDir(p, 1, signal);
    if (under.length > 0) return this.#dirStatus(p);
    throw this.#map(Object.assign(new Error('NotFound'), { name: 'NotFound' }), p);
  }

  /**
   * Pages with our own cursor (the last key or common prefix returned, sent as the ListObjects
   * Marker) rather than ListObjectsV2's continuation token: it behaves the same on every
   * S3-compatible store, including ones whose V2 paging is broken (s3rver encrypts its tokens with
   * DES, which Node's OpenSSL 3 no longer has, so every truncated V2 listing fails there), or whose
   * delimiter paging is broken (s3rver counts only keys towards MaxKeys, walks keys in directory
   * order rather than key order, and cannot continue after a page of prefixes). Every request asks
   * for a full page; entries are merged in key order and cut at `limit` here, so small pages are
   * correct wherever a full page is.
   */
  async list(path: string, opts: UfsListOptions = {}): Promise<UfsListPage> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    throwIfAborted(signal);
    const limit = Math.min(Math.max(1, opts.limit ?? UFS_LIST_PAGE_MAX), UFS_LIST_PAGE_MAX);
    const prefix = this.#dirPrefix(p);
    if (opts.cursor !== undefined && !opts.cursor.startsWith(prefix)) {
      throw new FsError('EINVAL', `${this.#where(p)}: the list cursor belongs to another directory`, {
        details: { path: this.#where(p) },
      });
    }
    const r: ListObjectsCommandOutput = await this.#send(
      this.#client.send(
        new ListObjectsCommand({
          Bucket: this.#bucket,
          Prefix: prefix,
          Delimiter: '/',
          MaxKeys: UFS_LIST_PAGE_MAX,
          ...(opts.cursor === undefined ? {} : { Marker: opts.cursor }),
        }),
        this.#callOpts(signal),
      ),
      p,
      signal,
    );
    const items: { key: string; cursor: string; entry: UfsStatus }[] = [];
    const dirs = new Set<string>();
    for (const cp of r.CommonPrefixes ?? []) {
      const key = cp.Prefix ?? '';
      const name = key.slice(prefix.length, -1);
      // "a//b" style keys produce an empty name: not representable as a path, skipped.
      if (name === '' || name === '.' || name === '..') continue;
      dirs.add(name);
      // The next page starts after every key under this prefix.
      items.push({ key, cursor: `${key}${PREFIX_END}`, entry: this.#dirStatus(ufsJoin(p, name)) });
    }
    let sawSelf = false;
    let lastKey: string | undefined;
    for (const o of r.Contents ?? []) {
      const key = o.Key ?? '';
      lastKey = key;
      if (key === prefix) {
        sawSelf = true; // the directory's own marker
        continue;
      }
      const name = key.slice(prefix.length);
      if (name === '' || name.includes('/') || name === '.' || name === '..') continue;
      // A key "a" beside keys under "a/": the directory wins (a path names one thing).
      if (dirs.has(name)) continue;
      items.push({
        key,
        cursor: key,
        entry: {
          path: ufsJoin(p, name),
          name,
          type: 'file',
          size: o.Size ?? 0,
          mtimeMs: o.LastModified?.getTime() ?? 0,
          ...(o.ETag === undefined ? {} : { etag: normaliseEtag(o.ETag) ?? o.ETag }),
        },
      });
    }
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const page = items.slice(0, limit);
    if (opts.cursor === undefined && page.length === 0 && !sawSelf && p !== '/') {
      // Nothing under the prefix: a file (ENOTDIR) or nothing at all (ENOENT).
      const file = await this.#head(p, signal);
      if (file !== undefined) {
        throw new FsError('ENOTDIR', `${this.#where(p)}: not a directory`, {
          details: { path: this.#where(p) },
        });
      }
      throw this.#map(Object.assign(new Error('NotFound'), { name: 'NotFound' }), p);
    }
    const entries = page.map((i) => i.entry);
    const more = r.IsTruncated === true || items.length > page.length;
    if (!more) return { entries };
    // Only the marker (or skipped keys) on a truncated page: continue after the last key seen.
    const cursor = page.at(-1)?.cursor ?? lastKey;
    return cursor === undefined ? { entries } : { entries, cursor };
  }

  /**
   * One request of `direct` while the direct path works, of `sdk` otherwise. A direct request
   * that is refused (DirectGetRefused: not a 2xx, or no answer) is sent again through the SDK,
   * which maps the error (or retries, or follows a redirect). When the SDK then succeeds where
   * the direct request got a status other than 404, 412, 416, 429 or 5xx, the direct path is
   * wrong for this endpoint (a redirect, a signature the store reads differently…) and every
   * later request takes the SDK.
   */
  async #either<T>(direct: (d: S3DirectGet) => Promise<T>, sdk: () => Promise<T>): Promise<T> {
    const d = this.#direct;
    let refused: DirectGetRefused | undefined;
    if (d !== undefined && d.disabledReason === undefined) {
      try {
        const r = await direct(d);
        this.#answered.direct++;
        return r;
      } catch (err) {
        if (!(err instanceof DirectGetRefused)) throw err;
        refused = err;
      }
    }
    const r = await sdk();
    this.#answered.sdk++;
    const s = refused?.status;
    if (s !== undefined && !EXPECTED_GET_REFUSALS.has(s) && s < 500) {
      d?.disable(`a direct request got HTTP ${s} where the SDK's succeeded`);
    }
    return r;
  }

  /** One GET of object data (see #either). */
  #get(
    key: string,
    range: string | undefined,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<GetAnswer> {
    return this.#either(
      (d) => d.get(key, range, ifMatch, signal),
      async () => {
        const res: GetObjectCommandOutput = await this.#client.send(
          new GetObjectCommand({
            Bucket: this.#bucket,
            Key: key,
            ...(range === undefined ? {} : { Range: range }),
            ...(ifMatch === undefined ? {} : { IfMatch: ifMatch }),
          }),
          this.#callOpts(signal),
        );
        const body = res.Body as Readable | undefined;
        if (body === undefined)
          throw new FsError('EIO', `s3://${this.#bucket}/${key}: the storage returned no body`);
        return {
          contentRange: res.ContentRange,
          contentLength: res.ContentLength,
          etag: res.ETag,
          lastModifiedMs: res.LastModified?.getTime(),
          body,
        };
      },
    );
  }

  /** Object GETs and HEADs answered directly and through the SDK so far. */
  get answered(): { direct: number; sdk: number } {
    return { ...this.#answered };
  }

  /** Why object GETs go through the SDK (undefined: they are sent directly). For tests and logs. */
  get directGetDisabled(): string | undefined {
    return this.#direct === undefined ? 'off (s3.direct.get = false)' : this.#direct.disabledReason;
  }

  async openRead(path: string, opts: UfsReadOptions = {}): Promise<UfsRead> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    throwIfAborted(signal);
    const where = this.#where(p);
    const offset = opts.offset ?? 0;
    if (opts.length === 0) {
      const st = await this.#head(p, signal);
      if (st === undefined) throw this.#map(Object.assign(new Error('NotFound'), { name: 'NotFound' }), p);
      checkValidator(where, st, opts.validator);
      return {
        body: Readable.from([]),
        length: 0,
        objectSize: st.size,
        ...(st.etag === undefined ? {} : { etag: st.etag }),
      };
    }
    const range =
      offset === 0 && opts.length === undefined
        ? undefined
        : `bytes=${offset}-${opts.length === undefined ? '' : offset + opts.length - 1}`;
    const etag = normaliseEtag(opts.validator?.etag);
    let res: GetAnswer;
    try {
      res = await this.#get(this.#key(p), range, etag === undefined ? undefined : `"${etag}"`, signal);
    } catch (err) {
      throwIfAborted(signal);
      if (s3ErrorName(err) === 'InvalidRange' || s3Status(err) === 416) {
        // Reading at or past the end (or any range of an empty object) yields nothing, as pread does.
        const st = await this.#head(p, signal);
        if (st === undefined) throw this.#map(err, p);
        checkValidator(where, st, opts.validator);
        return {
          body: Readable.from([]),
          length: 0,
          objectSize: st.size,
          ...(st.etag === undefined ? {} : { etag: st.etag }),
        };
      }
      throw this.#map(err, p);
    }
    const raw = res.body;
    // What was served: the Content-Range, or the whole object when the range was ignored.
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.contentRange ?? '');
    const servedStart = cr === null ? 0 : Number(cr[1]);
    const servedLength = cr === null ? (res.contentLength ?? 0) : Number(cr[2]) - servedStart + 1;
    const objectSize =
      cr === null || cr[3] === '*' ? (cr === null ? servedLength : offset + servedLength) : Number(cr[3]);
    const seenEtag = normaliseEtag(res.etag);
    try {
      if (servedStart > offset)
        throw new FsError('EIO', `${where}: the storage answered a different range than asked`);
      checkValidator(
        where,
        {
          size: objectSize,
          mtimeMs: res.lastModifiedMs ?? 0,
          ...(seenEtag === undefined ? {} : { etag: seenEtag }),
        },
        opts.validator,
      );
    } catch (err) {
      discard(raw);
      throw err;
    }
    const skip = offset - servedStart;
    const length = Math.max(0, Math.min(opts.length ?? Infinity, objectSize - offset, servedLength - skip));
    // Stores that widen or ignore a range (s3rver reads "bytes=0-0" as the whole object): cut it.
    const source = skip > 0 || length < servedLength ? sliceStream(raw, skip, length) : raw;
    if (signal !== undefined) addAbortSignal(signal, source);
    const body = exactLength(source, length, where, (err) =>
      wasAborted(signal) && signal !== undefined ? abortReason(signal) : this.#map(err, p),
    );
    return { body, length, objectSize, ...(seenEtag === undefined ? {} : { etag: seenEtag }) };
  }

  async write(
    path: string,
    source: AsyncIterable<Uint8Array>,
    opts: UfsWriteOptions = {},
  ): Promise<UfsStatus> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    throwIfAborted(signal);
    if (p === '/')
      throw new FsError('EISDIR', `${this.#uri}: is a directory`, { details: { path: this.#uri } });
    if ((await this.#peekDir(p, 1, signal)).length > 0) {
      throw new FsError('EISDIR', `${this.#where(p)}: is a directory`, { details: { path: this.#where(p) } });
    }
    await this.#send(
      uploadObject(
        {
          client: this.#client,
          bucket: this.#bucket,
          key: this.#key(p),
          partSizeBytes: this.#opts.partSizeBytes,
          concurrency: this.#opts.uploadConcurrency,
          signal,
          sizeHint: opts.sizeHint,
          where: this.#where(p),
        },
        source,
      ),
      p,
      signal,
    );
    const st = await this.#head(p, signal);
    if (st === undefined)
      throw new FsError('EIO', `${this.#where(p)}: the object is missing right after it was written`);
    return st;
  }

  /** Every key under the directory prefix of `path` (marker included), up to MAX_S3_TREE_KEYS. */
  async #allKeys(path: string, signal: AbortSignal | undefined): Promise<KeyInfo[]> {
    const out: KeyInfo[] = [];
    let marker: string | undefined;
    do {
      const r: ListObjectsCommandOutput = await this.#send(
        this.#client.send(
          new ListObjectsCommand({
            Bucket: this.#bucket,
            Prefix: this.#dirPrefix(path),
            MaxKeys: UFS_LIST_PAGE_MAX,
            ...(marker === undefined ? {} : { Marker: marker }),
          }),
          this.#callOpts(signal),
        ),
        path,
        signal,
      );
      for (const o of r.Contents ?? []) if (o.Key !== undefined) out.push({ key: o.Key, size: o.Size ?? 0 });
      if (out.length > MAX_S3_TREE_KEYS) {
        throw new FsError(
          'E2BIG',
          `${this.#where(path)}: more than ${MAX_S3_TREE_KEYS} keys under this directory; do it in smaller parts`,
        );
      }
      // The greatest key of the page (some stores do not return keys in order).
      const page = (r.Contents ?? []).map((o) => o.Key ?? '');
      marker = r.IsTruncated === true && page.length > 0 ? page.reduce((a, b) => (b > a ? b : a)) : undefined;
    } while (marker !== undefined);
    return out;
  }

  async #deleteKeys(keys: readonly string[], path: string, signal: AbortSignal | undefined): Promise<void> {
    for (let i = 0; i < keys.length; i += S3_DELETE_BATCH) {
      const batch = keys.slice(i, i + S3_DELETE_BATCH);
      const r = await this.#send(
        this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
          this.#callOpts(signal),
        ),
        path,
        signal,
      );
      const failed = r.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw this.#map(
          Object.assign(new Error(first?.Message ?? 'delete failed'), {
            name: first?.Code ?? 'DeleteFailed',
          }),
          path,
        );
      }
    }
  }

  async delete(path: string, opts: UfsCallOptions & { recursive?: boolean } = {}): Promise<void> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    throwIfAborted(signal);
    if (p === '/')
      throw new FsError('EPERM', `${this.#uri}: the UFS root cannot be deleted`, {
        details: { path: this.#uri },
      });
    const file = await this.#head(p, signal);
    if (file !== undefined) {
      await this.#send(
        this.#client.send(
          new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(p) }),
          this.#callOpts(signal),
        ),
        p,
        signal,
      );
      return;
    }
    const marker = this.#dirPrefix(p);
    const peek = await this.#peekDir(p, 2, signal);
    if (peek.length === 0) throw this.#map(Object.assign(new Error('NotFound'), { name: 'NotFound' }), p);
    const onlyMarker = peek.length === 1 && peek[0] === marker;
    if (!onlyMarker && opts.recursive !== true) {
      throw new FsError('ENOTEMPTY', `${this.#where(p)}: directory not empty`, {
        details: { path: this.#where(p) },
      });
    }
    const keys = onlyMarker ? [marker] : (await this.#allKeys(p, signal)).map((k) => k.key);
    // Deepest keys first, the directory's own marker last: a partial failure leaves the directory.
    keys.sort((a, b) => (a === marker ? 1 : b === marker ? -1 : b.length - a.length));
    await this.#deleteKeys(keys, p, signal);
  }

  async #copyKey(src: KeyInfo, dstKey: string, path: string, signal: AbortSignal | undefined): Promise<void> {
    const copySource = `${this.#bucket}/${src.key.split('/').map(encodeURIComponent).join('/')}`;
    if (src.size <= MAX_S3_SINGLE_COPY_BYTES) {
      await this.#send(
        this.#client.send(
          new CopyObjectCommand({ Bucket: this.#bucket, Key: dstKey, CopySource: copySource }),
          this.#callOpts(signal),
        ),
        path,
        signal,
      );
      return;
    }
    // Objects over 5 GiB: S3 copies them only part by part.
    const created = await this.#send(
      this.#client.send(
        new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: dstKey }),
        this.#callOpts(signal),
      ),
      path,
      signal,
    );
    const uploadId = created.UploadId;
    if (uploadId === undefined)
      throw new FsError('EIO', `${this.#where(path)}: the storage returned no upload id`);
    try {
      const parts: CompletedPart[] = [];
      let n = 0;
      for (let off = 0; off < src.size; off += S3_COPY_PART_SIZE_BYTES) {
        n++;
        const end = Math.min(src.size, off + S3_COPY_PART_SIZE_BYTES) - 1;
        const r = await this.#send(
          this.#client.send(
            new UploadPartCopyCommand({
              Bucket: this.#bucket,
              Key: dstKey,
              UploadId: uploadId,
              PartNumber: n,
              CopySource: copySource,
              CopySourceRange: `bytes=${off}-${end}`,
            }),
            this.#callOpts(signal),
          ),
          path,
          signal,
        );
        parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag });
      }
      await this.#send(
        this.#client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.#bucket,
            Key: dstKey,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
          this.#callOpts(signal),
        ),
        path,
        signal,
      );
    } catch (err) {
      await this.#client
        .send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: dstKey, UploadId: uploadId }))
        .catch(() => undefined);
      throw err;
    }
  }

  async rename(src: string, dst: string, opts: UfsCallOptions = {}): Promise<void> {
    const s = normaliseUfsPath(src);
    const d = normaliseUfsPath(dst);
    const signal = opts.signal;
    throwIfAborted(signal);
    if (s === '/' || d === '/') {
      throw new FsError('EPERM', `${this.#uri}: the UFS root cannot be renamed`, {
        details: { path: this.#uri },
      });
    }
    if (s === d) return;
    if (d.startsWith(`${s}/`)) {
      throw new FsError('EINVAL', `${this.#where(s)}: cannot move a directory into itself`, {
        details: { path: this.#where(s) },
      });
    }
    const file = await this.#head(s, signal);
    const dstIsDir = (await this.#peekDir(d, 1, signal)).length > 0;
    if (file !== undefined) {
      if (dstIsDir)
        throw new FsError('EISDIR', `${this.#where(d)}: is a directory`, {
          details: { path: this.#where(d) },
        });
      await this.#copyKey({ key: this.#key(s), size: file.size }, this.#key(d), d, signal);
      await this.#send(
        this.#client.send(
          new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(s) }),
          this.#callOpts(signal),
        ),
        s,
        signal,
      );
      return;
    }
    const keys = await this.#allKeys(s, signal);
    if (keys.length === 0) throw this.#map(Object.assign(new Error('NotFound'), { name: 'NotFound' }), s);
    if ((await this.#head(d, signal)) !== undefined) {
      throw new FsError('ENOTDIR', `${this.#where(d)}: not a directory`, {
        details: { path: this.#where(d) },
      });
    }
    if (dstIsDir) {
      const peek = await this.#peekDir(d, 2, signal);
      if (!(peek.length === 1 && peek[0] === this.#dirPrefix(d))) {
        throw new FsError('ENOTEMPTY', `${this.#where(d)}: directory not empty`, {
          details: { path: this.#where(d) },
        });
      }
    }
    const from = this.#dirPrefix(s);
    const to = this.#dirPrefix(d);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const k = keys[next++];
        if (k === undefined) return;
        await this.#copyKey(k, to + k.key.slice(from.length), d, signal);
      }
    };
    await Promise.all(Array.from({ length: Math.min(TREE_COPY_CONCURRENCY, keys.length) }, worker));
    await this.#deleteKeys(
      keys.map((k) => k.key),
      s,
      signal,
    );
  }

  async mkdir(path: string, opts: UfsCallOptions = {}): Promise<void> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    throwIfAborted(signal);
    if (p === '/') return;
    // A file anywhere on the way makes the directory impossible (as on a real file system).
    for (let q = p; q !== '/'; q = ufsParent(q)) {
      if ((await this.#head(q, signal)) !== undefined) {
        const code = q === p ? 'EEXIST' : 'ENOTDIR';
        throw new FsError(
          code,
          `${this.#where(q)}: ${code === 'EEXIST' ? 'a file exists there' : 'not a directory'}`,
          {
            details: { path: this.#where(q) },
          },
        );
      }
    }
    await this.#send(
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: this.#dirPrefix(p),
          Body: Buffer.alloc(0),
          ContentLength: 0,
        }),
        this.#callOpts(signal),
      ),
      p,
      signal,
    );
  }

  async close(): Promise<void> {
    await this.#direct?.close();
    this.#client.destroy();
    for (const a of this.#agents) a.close();
  }
}
