/**
 * Multipart uploads. An upload is a hidden directory `/.s3-gateway/uploads/<bucket>/<id>` whose
 * attribute records the key and metadata; each part is a file in it (written to a temp file and
 * renamed in, so a retried part replaces the old one whole). Complete hands the chosen parts'
 * blocks, in order, to a new file committed onto the key in one namespace transaction (`concat`):
 * no byte is copied, and the object appears whole or not at all.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FileSystem } from '../../client/index.js';
import { mapConcurrent } from '../../common/concurrency.js';
import { FsError } from '../../common/errors.js';
import type { FileStatus } from '../../protocol/types.js';
import { LIST_META_CONCURRENCY } from './deps.js';
import { S3Error, toS3Error } from './errors.js';
import { TMP_DIR, UPLOADS_DIR, compareKeys, locateKey } from './keys.js';
import { compactParts } from './object-meta.js';
import type { ObjectMeta } from './object-meta.js';
import type { ObjectStore } from './store.js';

export const MIN_PART_NUMBER = 1;
export const MAX_PART_NUMBER = 10_000;
/** S3's smallest part (except the last). */
export const MIN_PART_SIZE_BYTES = 5 * 1024 * 1024;
const UPLOAD_XATTR = 'user.s3.upload';
const PART_XATTR = 'user.s3.part';
const UPLOAD_ID_RE = /^[0-9a-f]{32}$/;

export interface UploadRecord {
  bucket: string;
  key: string;
  uploadId: string;
  initiatedMs: number;
  meta: Omit<ObjectMeta, 'etag'>;
}

export interface PartRecord {
  partNumber: number;
  etag: string;
  size: number;
  mtimeMs: number;
}

export interface CompletePart {
  partNumber: number;
  etag: string;
}

function noSuchUpload(uploadId: string): S3Error {
  return new S3Error(
    'NoSuchUpload',
    'The specified multipart upload does not exist. The upload ID might be invalid, or the upload might have been aborted or completed.',
    { UploadId: uploadId },
  );
}

export function checkPartNumber(text: string | null): number {
  const n = Number(text);
  if (text === null || !/^\d+$/.test(text) || n < MIN_PART_NUMBER || n > MAX_PART_NUMBER) {
    throw new S3Error(
      'InvalidArgument',
      `Part number must be an integer between ${MIN_PART_NUMBER} and ${MAX_PART_NUMBER}, inclusive.`,
      { ArgumentName: 'partNumber', ArgumentValue: text ?? '' },
    );
  }
  return n;
}

/** ETags are compared without quotes. */
export function unquote(etag: string): string {
  return etag.trim().replace(/^"(.*)"$/, '$1');
}

export class Multipart {
  readonly #store: ObjectStore;
  readonly #fs: FileSystem;

  constructor(store: ObjectStore) {
    this.#store = store;
    this.#fs = store.fs;
  }

  #dir(bucket: string, uploadId: string): string {
    return `${UPLOADS_DIR}/${bucket}/${uploadId}`;
  }

  async create(bucket: string, key: string, meta: Omit<ObjectMeta, 'etag'>): Promise<string> {
    await this.#store.bucketStatus(bucket);
    const uploadId = randomBytes(16).toString('hex');
    const record: UploadRecord = { bucket, key, uploadId, initiatedMs: Date.now(), meta };
    // The record is written on a temp directory renamed into place, so a listed upload always has one.
    const tmp = `${TMP_DIR}/upload-${uploadId}`;
    await this.#fs.mkdir(tmp);
    await this.#fs.setXattr(tmp, UPLOAD_XATTR, JSON.stringify(record));
    await this.#fs.mkdir(`${UPLOADS_DIR}/${bucket}`, { parents: true });
    await this.#fs.rename(tmp, this.#dir(bucket, uploadId));
    return uploadId;
  }

  async get(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    if (!UPLOAD_ID_RE.test(uploadId)) throw noSuchUpload(uploadId);
    let raw: Buffer;
    try {
      raw = await this.#fs.getXattr(this.#dir(bucket, uploadId), UPLOAD_XATTR);
    } catch (err) {
      if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENODATA')) {
        await this.#store.bucketStatus(bucket);
        throw noSuchUpload(uploadId);
      }
      throw toS3Error(err, { bucket, key });
    }
    const rec = JSON.parse(raw.toString()) as UploadRecord;
    if (rec.key !== key) throw noSuchUpload(uploadId);
    return rec;
  }

  /** Moves a written temp file in as part `n` (replacing an earlier upload of it). */
  async putPart(rec: UploadRecord, n: number, tmpPath: string, md5: Buffer): Promise<string> {
    const etag = md5.toString('hex');
    try {
      await this.#fs.setXattr(tmpPath, PART_XATTR, etag);
      await this.#fs.rename(tmpPath, `${this.#dir(rec.bucket, rec.uploadId)}/${partName(n)}`);
    } catch (err) {
      await this.#store.discard(tmpPath);
      if (err instanceof FsError && err.code === 'ENOENT') throw noSuchUpload(rec.uploadId);
      throw toS3Error(err, { bucket: rec.bucket, key: rec.key });
    }
    return etag;
  }

  async parts(rec: UploadRecord, afterPart = 0, max = MAX_PART_NUMBER): Promise<PartRecord[]> {
    const out: PartRecord[] = [];
    const dir = this.#dir(rec.bucket, rec.uploadId);
    for await (const st of this.#fs.entries(dir, { startAfter: partName(afterPart) })) {
      if (st.type !== 'file' || !/^\d{5}$/.test(st.name)) continue;
      out.push(await this.#partRecord(dir, st));
      if (out.length >= max + 1) break;
    }
    return out;
  }

  async #partRecord(dir: string, st: FileStatus): Promise<PartRecord> {
    const etag = (await this.#fs.getXattr(`${dir}/${st.name}`, PART_XATTR)).toString();
    return { partNumber: Number(st.name), etag, size: st.size, mtimeMs: st.mtimeMs };
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.get(bucket, key, uploadId);
    await this.#fs.delete(this.#dir(bucket, uploadId), { recursive: true });
  }

  /**
   * Checks the client's part list against the stored parts (order, ETags, sizes) and commits
   * them as the object, their blocks moved, not copied. Returns the ETag `md5(part md5s)-N`.
   */
  async complete(rec: UploadRecord, wanted: readonly CompletePart[]): Promise<{ etag: string }> {
    if (wanted.length === 0) {
      throw new S3Error('MalformedXML', 'You must specify at least one part.');
    }
    const dir = this.#dir(rec.bucket, rec.uploadId);
    let prev = 0;
    for (const w of wanted) {
      if (w.partNumber <= prev) {
        throw new S3Error(
          'InvalidPartOrder',
          'The list of parts was not in ascending order. Parts must be ordered by part number.',
          {
            UploadId: rec.uploadId,
          },
        );
      }
      prev = w.partNumber;
    }
    // The stored parts in one listing, their ETags read LIST_META_CONCURRENCY at a time: a
    // complete of 10,000 parts is not 20,000 master round trips one after the other.
    const stored = new Map<number, FileStatus>();
    try {
      for await (const st of this.#fs.entries(dir)) {
        if (st.type === 'file' && /^\d{5}$/.test(st.name)) stored.set(Number(st.name), st);
      }
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENOENT') throw noSuchUpload(rec.uploadId);
      throw toS3Error(err, { bucket: rec.bucket, key: rec.key });
    }
    const files: { path: string; fileId: number }[] = [];
    const statuses: FileStatus[] = [];
    for (const w of wanted) {
      const st = stored.get(w.partNumber);
      if (st === undefined) throw invalidPart(rec, w);
      files.push({ path: `${dir}/${st.name}`, fileId: st.id });
      statuses.push(st);
    }
    const etags = await mapConcurrent(files, LIST_META_CONCURRENCY, (f) =>
      this.#fs.getXattr(f.path, PART_XATTR).then(
        (v) => v.toString(),
        (err: unknown) => {
          // Replaced or removed meanwhile: the ETag check below refuses it.
          if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENODATA')) return '';
          throw toS3Error(err, { bucket: rec.bucket, key: rec.key });
        },
      ),
    );
    const chosen: PartRecord[] = wanted.map((w, i) => {
      if (etags[i] !== unquote(w.etag)) throw invalidPart(rec, w);
      const st = statuses[i] as FileStatus;
      return { partNumber: w.partNumber, etag: etags[i] ?? '', size: st.size, mtimeMs: st.mtimeMs };
    });
    chosen.forEach((p, i) => {
      if (i < chosen.length - 1 && p.size < MIN_PART_SIZE_BYTES) {
        throw new S3Error(
          'EntityTooSmall',
          `Your proposed upload is smaller than the minimum allowed object size: part ${p.partNumber} has ${p.size} bytes, each part but the last needs at least ${MIN_PART_SIZE_BYTES}.`,
          {
            PartNumber: String(p.partNumber),
            ProposedSize: String(p.size),
            MinSizeAllowed: String(MIN_PART_SIZE_BYTES),
          },
        );
      }
    });
    const md5s = createHash('md5');
    for (const p of chosen) md5s.update(Buffer.from(p.etag, 'hex'));
    const etag = `${md5s.digest('hex')}-${chosen.length}`;
    const meta: ObjectMeta = { ...rec.meta, etag, parts: compactParts(chosen.map((p) => p.size)) };
    // The parts' blocks become the object's, with its metadata, in one namespace commit: no byte
    // is copied, so completing a 5 TB upload costs what completing a small one does.
    try {
      const size = chosen.reduce((sum, p) => sum + p.size, 0);
      await this.#store.concatInto(files, size, locateKey(rec.bucket, rec.key), meta);
    } catch (err) {
      if (err instanceof S3Error && err.cause instanceof FsError && err.cause.code === 'ESTALE') {
        // A part was uploaded again (or the upload aborted) while this complete ran.
        await this.get(rec.bucket, rec.key, rec.uploadId);
        throw new S3Error(
          'InvalidPart',
          'One or more of the specified parts changed while the upload was being completed. Complete it again.',
          { UploadId: rec.uploadId },
          err,
        );
      }
      throw err;
    }
    await this.#fs.delete(dir, { recursive: true }).catch(() => undefined);
    return { etag };
  }

  /** In-progress uploads of a bucket, ordered by key then upload id. */
  async uploads(
    bucket: string,
    prefix: string,
    keyMarker: string,
    uploadIdMarker: string,
  ): Promise<UploadRecord[]> {
    await this.#store.bucketStatus(bucket);
    const out: UploadRecord[] = [];
    let entries: AsyncIterable<FileStatus>;
    try {
      entries = this.#fs.entries(`${UPLOADS_DIR}/${bucket}`);
      for await (const st of entries) {
        if (st.type !== 'dir' || !UPLOAD_ID_RE.test(st.name)) continue;
        const raw = await this.#fs
          .getXattr(`${UPLOADS_DIR}/${bucket}/${st.name}`, UPLOAD_XATTR)
          .catch(() => undefined);
        if (raw === undefined) continue;
        const rec = JSON.parse(raw.toString()) as UploadRecord;
        if (!rec.key.startsWith(prefix)) continue;
        const c = compareKeys(rec.key, keyMarker);
        if (
          keyMarker !== '' &&
          (c < 0 || (c === 0 && (uploadIdMarker === '' || rec.uploadId <= uploadIdMarker)))
        )
          continue;
        out.push(rec);
      }
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENOENT') return out;
      throw toS3Error(err, { bucket });
    }
    return out.sort(
      (a, b) => compareKeys(a.key, b.key) || (a.uploadId < b.uploadId ? -1 : a.uploadId > b.uploadId ? 1 : 0),
    );
  }
}

function invalidPart(rec: UploadRecord, w: CompletePart): S3Error {
  return new S3Error(
    'InvalidPart',
    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    { UploadId: rec.uploadId, PartNumber: String(w.partNumber), ETag: w.etag },
  );
}

export function partName(n: number): string {
  return String(n).padStart(5, '0');
}
