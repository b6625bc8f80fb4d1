/**
 * Buckets are top-level directories and keys are paths below them. This file decides which
 * bucket names and keys can be stored that way, and where the gateway's own hidden files live
 * (a top-level name no bucket can take, since bucket names never start with a dot).
 */
import { S3Error } from './errors.js';

/** S3's limit on a key's UTF-8 length. */
export const MAX_KEY_BYTES = 1024;
/** The gateway's own directory (temp files of uploads in flight, multipart uploads). */
export const GATEWAY_ROOT = '/.s3-gateway';
export const TMP_DIR = `${GATEWAY_ROOT}/tmp`;
export const UPLOADS_DIR = `${GATEWAY_ROOT}/uploads`;

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

/**
 * A key must map to one path: no empty segments (`a//b`), no `.`/`..` segments, no leading
 * slash, and no trailing slash (a "folder object" would be a directory, which holds no bytes).
 */
export function checkKey(bucket: string, key: string): void {
  if (key === '') throw new S3Error('InvalidArgument', 'The object key must not be empty.', { Key: key });
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new S3Error('KeyTooLongError', `Your key is too long (at most ${MAX_KEY_BYTES} bytes).`, {
      Key: key,
    });
  }
  const segments = key.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..') {
      throw new S3Error(
        'InvalidArgument',
        `Object key "${key}" is not supported by this gateway: keys map to paths, so they cannot start or end with "/", contain "//", or have "." or ".." segments.`,
        { BucketName: bucket, Key: key },
      );
    }
  }
  if (key.includes('\0')) {
    throw new S3Error('InvalidArgument', 'The object key must not contain NUL characters.', { Key: key });
  }
}

export function bucketPath(bucket: string): string {
  return `/${bucket}`;
}

export function objectPath(bucket: string, key: string): string {
  return `/${bucket}/${key}`;
}

/** Compares two keys the way S3 orders them: by UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
