/**
 * What S3 keeps beside an object's bytes (ETag, Content-Type and the other stored headers, user
 * metadata, part sizes of a multipart object), stored as one JSON extended attribute of the file.
 */
import { createHash } from 'node:crypto';
import type { FileStatus } from '../../protocol/types.js';
import { S3Error } from './errors.js';

export const META_XATTR = 'user.s3.object';
/** S3's limit on user metadata (names and values of x-amz-meta-*). */
export const MAX_USER_METADATA_BYTES = 2048;
/** Headers stored with an object and returned on GET/HEAD. */
export const STORED_HEADERS = [
  'content-type',
  'content-encoding',
  'content-disposition',
  'content-language',
  'cache-control',
  'expires',
] as const;
export const DEFAULT_CONTENT_TYPE = 'binary/octet-stream';

export interface ObjectMeta {
  /** Without quotes: hex MD5, or `hex-N` for a multipart object. */
  etag: string;
  headers: Partial<Record<(typeof STORED_HEADERS)[number], string>>;
  /** x-amz-meta-* names (lowercased, without the prefix) and values. */
  user: Record<string, string>;
  /** Multipart objects: part sizes, `{ size, count, last }` when all but the last are equal, else every size. */
  parts?: PartSizes;
  /**
   * The version of the file this metadata was written with (its length and the mtime the gateway
   * gave it). A file changed in place later (FUSE, the CLI) keeps its attributes: when either
   * differs, the ETag (and part layout) no longer describe it.
   */
  version?: { size: number; mtimeMs: number };
  /**
   * The full-object checksum the client sent with a single PutObject (checked before the commit),
   * returned on a whole-object GET or HEAD with `x-amz-checksum-mode: ENABLED`.
   */
  checksum?: { algorithm: string; base64: string };
}

export type PartSizes = { size: number; count: number; last: number } | number[];

export interface ObjectInfo {
  key: string;
  /** The file holding the object (its natural path, or the one beside a directory of its name). */
  path: string;
  size: number;
  mtimeMs: number;
  meta: ObjectMeta;
}

export function encodeMeta(meta: ObjectMeta): Buffer {
  return Buffer.from(JSON.stringify(meta));
}

/**
 * Reads the attribute; a file written by other means (CLI, FUSE) has none and gets a stable
 * ETag derived from its id, length and mtime (it changes whenever the file does). So does a file
 * changed in place since the gateway wrote it (its `version` no longer matches): it keeps its
 * stored headers and user metadata, but an ETag that names other bytes is never served.
 */
export function decodeMeta(raw: Buffer | undefined, st: FileStatus): ObjectMeta {
  const derived = createHash('md5').update(`${st.id}:${st.size}:${st.mtimeMs}`).digest('hex');
  if (raw !== undefined) {
    try {
      const v = JSON.parse(raw.toString()) as Partial<ObjectMeta>;
      if (typeof v.etag === 'string') {
        const headers = v.headers ?? {};
        const user = v.user ?? {};
        const ver = v.version;
        if (ver !== undefined && (ver.size !== st.size || ver.mtimeMs !== st.mtimeMs)) {
          return { etag: derived, headers, user };
        }
        return {
          etag: v.etag,
          headers,
          user,
          ...(v.parts ? { parts: v.parts } : {}),
          ...(ver === undefined ? {} : { version: ver }),
          // Only with a version: an attribute written before versions existed may be stale.
          ...(ver !== undefined && v.checksum !== undefined ? { checksum: v.checksum } : {}),
        };
      }
    } catch {
      // fall through to the derived ETag
    }
  }
  return { etag: derived, headers: {}, user: {} };
}

/** Stored headers and user metadata from a request (PUT, Copy with REPLACE, CreateMultipartUpload). */
export function metaFromRequest(
  headers: Record<string, string | string[] | undefined>,
): Omit<ObjectMeta, 'etag'> {
  const stored: ObjectMeta['headers'] = {};
  for (const h of STORED_HEADERS) {
    const v = headers[h];
    if (typeof v === 'string') stored[h] = v;
  }
  // aws-chunked is the transfer framing of this request, not an encoding of the object.
  const enc = stored['content-encoding']
    ?.split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '' && e.toLowerCase() !== 'aws-chunked')
    .join(',');
  if (enc === undefined || enc === '') delete stored['content-encoding'];
  else stored['content-encoding'] = enc;
  const user: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const k = name.slice('x-amz-meta-'.length);
    const v = Array.isArray(value) ? value.join(',') : value;
    user[k] = v;
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (bytes > MAX_USER_METADATA_BYTES) {
    throw new S3Error(
      'MetadataTooLarge',
      `Your metadata headers exceed the maximum allowed metadata size (${MAX_USER_METADATA_BYTES} bytes).`,
    );
  }
  return { headers: stored, user };
}

/** Compact part sizes: `{ size, count, last }` when uniform, else the list. */
export function compactParts(sizes: readonly number[]): PartSizes {
  const first = sizes[0] ?? 0;
  const uniform = sizes.slice(0, -1).every((s) => s === first);
  return uniform ? { size: first, count: sizes.length, last: sizes[sizes.length - 1] ?? 0 } : [...sizes];
}

function expandParts(p: PartSizes): number[] {
  if (Array.isArray(p)) return p;
  return Array.from({ length: p.count }, (_, i) => (i === p.count - 1 ? p.last : p.size));
}

/** Byte range [start, end] of part `n` (1-based), or undefined when the object has no such part. */
export function partRange(
  meta: ObjectMeta,
  size: number,
  n: number,
): { start: number; end: number; count: number } | undefined {
  const p = meta.parts;
  if (p === undefined) {
    return n === 1 ? { start: 0, end: size - 1, count: 1 } : undefined;
  }
  const sizes = expandParts(p);
  if (n < 1 || n > sizes.length) return undefined;
  let start = 0;
  for (let i = 0; i < n - 1; i++) start += sizes[i] ?? 0;
  return { start, end: start + (sizes[n - 1] ?? 0) - 1, count: sizes.length };
}

export function partsCount(meta: ObjectMeta): number | undefined {
  const p = meta.parts;
  if (p === undefined) return undefined;
  return Array.isArray(p) ? p.length : p.count;
}
