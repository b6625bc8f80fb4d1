/**
 * Buckets are top-level directories and keys are paths below them. This file maps any S3 key
 * (1-1024 bytes of UTF-8) onto names a directory tree can hold, and back:
 *
 * - A key is split at '/' into segments; each segment is one name. A segment that is a valid,
 *   unreserved file name (non-empty, not "." or "..", at most 255 bytes, not starting with
 *   RESERVED_PREFIX) is itself: ordinary keys are ordinary files at their natural path.
 * - Other segments are escaped into the reserved name space: `.s3~l~SEGMENT` (literal: the empty
 *   segment of `a//b` or of a trailing `/`, ".", "..", names starting with `.s3~`), or, when that
 *   does not fit in 255 bytes, `.s3~h~HASH` (SHA-256 of the segment) with the segment kept in the
 *   NAME_XATTR attribute of the entry.
 * - The object of a key whose name is also a directory (`a` beside `a/b`) is the file
 *   `.s3~o~NAME` beside that directory (hashed like above when too long). A key's object is the
 *   file at its natural path when that is a file, else the file beside it.
 *
 * So `a/` is the file `a/.s3~l~`, `a//b` is `a/.s3~l~/b`, and `a` beside `a/b` is `.s3~o~a` next
 * to the directory `a`. The gateway's own hidden files live in a top-level name no bucket can take.
 */
import { createHash } from 'node:crypto';
import { S3Error } from './errors.js';

/** S3's limit on a key's UTF-8 length. */
export const MAX_KEY_BYTES = 1024;
/** The namespace's limits on one name and one path (src/protocol/types.ts). */
export const MAX_NAME_BYTES = 255;
export const MAX_PATH_BYTES = 4096;
/** The gateway's own directory (temp files of uploads in flight, multipart uploads). */
export const GATEWAY_ROOT = '/.s3-gateway';
export const TMP_DIR = `${GATEWAY_ROOT}/tmp`;
export const UPLOADS_DIR = `${GATEWAY_ROOT}/uploads`;

/** Names starting with this inside a bucket belong to the gateway's escapes. */
export const RESERVED_PREFIX = '.s3~';
const LITERAL_PREFIX = `${RESERVED_PREFIX}l~`;
const HASHED_PREFIX = `${RESERVED_PREFIX}h~`;
const BESIDE_PREFIX = `${RESERVED_PREFIX}o~`;
/** The segment a hashed name stands for, on the entry (file or directory) itself. */
export const NAME_XATTR = 'user.s3.name';

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** S3's bucket naming rules (3-63 lowercase letters, digits, dots, hyphens; not an IP address). */
export function checkBucketName(name: string): void {
  if (!BUCKET_RE.test(name) || name.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(name)) {
    throw new S3Error(
      'InvalidBucketName',
      'The specified bucket is not valid: use 3-63 lowercase letters, digits, "." and "-", starting and ending with a letter or digit.',
      { BucketName: name },
    );
  }
}

/** A key segment and the name it has in its directory. */
export interface EncodedName {
  name: string;
  segment: string;
  /** The name is a hash: the segment must be stored in NAME_XATTR of the entry. */
  hashed: boolean;
}

const byteLength = (s: string): number => Buffer.byteLength(s);

function hashedName(prefix: string, segment: string): string {
  return prefix + createHash('sha256').update(segment).digest('base64url');
}

/** Whether a segment can be a name as it is. */
function isPlain(segment: string): boolean {
  return (
    segment !== '' &&
    segment !== '.' &&
    segment !== '..' &&
    !segment.startsWith(RESERVED_PREFIX) &&
    byteLength(segment) <= MAX_NAME_BYTES
  );
}

export function encodeSegment(segment: string): EncodedName {
  if (isPlain(segment)) return { name: segment, segment, hashed: false };
  const literal = LITERAL_PREFIX + segment;
  if (byteLength(literal) <= MAX_NAME_BYTES) return { name: literal, segment, hashed: false };
  return { name: hashedName(HASHED_PREFIX, segment), segment, hashed: true };
}

/** The name of the object file beside the directory `dir` (same segment). */
export function besideName(dir: EncodedName): EncodedName {
  const name = BESIDE_PREFIX + dir.name;
  if (byteLength(name) <= MAX_NAME_BYTES) return { name, segment: dir.segment, hashed: dir.hashed };
  return { name: BESIDE_PREFIX + hashedName(HASHED_PREFIX, dir.segment), segment: dir.segment, hashed: true };
}

/**
 * What a directory entry's name stands for: a segment (its key is the directory's key prefix
 * plus the segment, plus '/' for a directory), or an object beside a directory. `segment` is
 * undefined for hashed names (read NAME_XATTR). Undefined for reserved names this gateway does
 * not know (they are not keys).
 */
export function decodeName(name: string): { beside: boolean; segment: string | undefined } | undefined {
  if (!name.startsWith(RESERVED_PREFIX)) return { beside: false, segment: name };
  let beside = false;
  let rest = name;
  if (rest.startsWith(BESIDE_PREFIX)) {
    beside = true;
    rest = rest.slice(BESIDE_PREFIX.length);
    if (!rest.startsWith(RESERVED_PREFIX)) return isPlain(rest) ? { beside, segment: rest } : undefined;
  }
  if (rest.startsWith(LITERAL_PREFIX)) return { beside, segment: rest.slice(LITERAL_PREFIX.length) };
  if (rest.startsWith(HASHED_PREFIX)) return { beside, segment: undefined };
  return undefined;
}

/** Where a key lives: its natural path and the path beside its directory form. */
export interface KeyLocation {
  bucket: string;
  key: string;
  /** Directory names from the bucket down to the key's parent. */
  dirs: EncodedName[];
  leaf: EncodedName;
  beside: EncodedName;
  parentPath: string;
  /** The object's file when no directory has its name. */
  path: string;
  /** The object's file when a directory has its name (`a` beside `a/b`). */
  besidePath: string;
}

function invalidKey(bucket: string, key: string, why: string): S3Error {
  return new S3Error('InvalidArgument', `Object key is not valid: ${why}.`, { BucketName: bucket, Key: key });
}

/**
 * Checks a key: 1 to 1024 bytes, no NUL (XML cannot carry it), and the path it maps to fits the
 * namespace's 4096 bytes (only keys of hundreds of empty segments, like "////…", do not).
 */
export function checkKey(bucket: string, key: string): void {
  locateKey(bucket, key);
}

export function locateKey(bucket: string, key: string): KeyLocation {
  if (key === '') throw invalidKey(bucket, key, 'it must not be empty');
  if (byteLength(key) > MAX_KEY_BYTES) {
    throw new S3Error('KeyTooLongError', `Your key is too long (at most ${MAX_KEY_BYTES} bytes).`, {
      Key: key,
    });
  }
  if (key.includes('\0')) throw invalidKey(bucket, key, 'it must not contain NUL characters');
  const segments = key.split('/');
  const names = segments.map(encodeSegment);
  const leaf = names.pop() as EncodedName;
  const parentPath = [`/${bucket}`, ...names.map((n) => n.name)].join('/');
  const beside = besideName(leaf);
  const loc: KeyLocation = {
    bucket,
    key,
    dirs: names,
    leaf,
    beside,
    parentPath,
    path: `${parentPath}/${leaf.name}`,
    besidePath: `${parentPath}/${beside.name}`,
  };
  if (byteLength(loc.path) > MAX_PATH_BYTES || byteLength(loc.besidePath) > MAX_PATH_BYTES) {
    throw invalidKey(
      bucket,
      key,
      `its ${segments.length} segments map to a path longer than ${MAX_PATH_BYTES} bytes`,
    );
  }
  return loc;
}

/** The directory holding the keys that start with `prefix` (a key prefix ending in '/', or ''). */
export function prefixDirPath(bucket: string, prefix: string): string {
  const segments = prefix.split('/').slice(0, -1);
  return [`/${bucket}`, ...segments.map((s) => encodeSegment(s).name)].join('/');
}

export function bucketPath(bucket: string): string {
  return `/${bucket}`;
}

/** Compares two keys the way S3 orders them: by UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
