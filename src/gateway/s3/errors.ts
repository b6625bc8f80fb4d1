/**
 * S3 errors: the standard code, HTTP status and message S3 clients expect, and the mapping from
 * the namespace's POSIX results (decided once here, so every operation answers alike).
 */
import { FsError, StrataError } from '../../common/errors.js';

/** Standard S3 error codes this gateway answers with, and their HTTP status. */
export const S3_ERROR_STATUS = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  ExpiredToken: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  PreconditionFailed: 412,
  RequestTimeTooSkewed: 403,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  XAmzContentSHA256Mismatch: 400,
} as const;
export type S3ErrorCode = keyof typeof S3_ERROR_STATUS;

export class S3Error extends StrataError {
  readonly s3Code: S3ErrorCode;
  readonly status: number;
  /** Extra elements of the XML error body (e.g. BucketName, Key, UploadId). */
  readonly fields: Readonly<Record<string, string>>;

  constructor(code: S3ErrorCode, message: string, fields: Record<string, string> = {}, cause?: unknown) {
    super(`S3_${code}`, message, cause === undefined ? {} : { cause });
    this.name = 'S3Error';
    this.s3Code = code;
    this.status = S3_ERROR_STATUS[code];
    this.fields = fields;
  }
}

/** Where a namespace error happened, so it maps to the right S3 code. */
export interface ErrorScope {
  bucket?: string;
  key?: string;
}

/**
 * Maps anything thrown below the gateway to an S3Error. ENOENT means the key (or bucket) is
 * missing; ENOTDIR/EISDIR/EEXIST mean the key collides with a "directory" of other keys, which
 * a file system cannot hold (S3 can: `a` and `a/b` both as objects).
 */
export function toS3Error(err: unknown, scope: ErrorScope = {}): S3Error {
  if (err instanceof S3Error) return err;
  const fields: Record<string, string> = {};
  if (scope.bucket !== undefined) fields.BucketName = scope.bucket;
  if (scope.key !== undefined) fields.Key = scope.key;
  if (err instanceof FsError) {
    switch (err.code) {
      case 'ENOENT':
        return scope.key !== undefined
          ? new S3Error('NoSuchKey', 'The specified key does not exist.', fields, err)
          : new S3Error('NoSuchBucket', 'The specified bucket does not exist.', fields, err);
      case 'ENOTDIR':
      case 'EISDIR':
      case 'EEXIST':
        return new S3Error(
          'InvalidArgument',
          'The key collides with another key used as a folder (keys "a" and "a/b" cannot both exist here).',
          fields,
          err,
        );
      case 'ENOTEMPTY':
        return new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty.', fields, err);
      case 'EACCES':
      case 'EPERM':
        return new S3Error('AccessDenied', 'Access Denied', fields, err);
      case 'EROFS':
        // A bucket (or a folder in it) that is a read-only UFS mount.
        return new S3Error('AccessDenied', 'Access Denied: this bucket is mounted read-only.', fields, err);
      case 'ENOSPC':
        return new S3Error(
          'ServiceUnavailable',
          'The cluster has no space left for this object.',
          fields,
          err,
        );
      case 'ENAMETOOLONG':
        return new S3Error('KeyTooLongError', 'Your key is too long.', fields, err);
      case 'EFBIG':
        return new S3Error(
          'EntityTooLarge',
          'Your proposed upload exceeds the maximum allowed size.',
          fields,
          err,
        );
      default:
        return new S3Error('InternalError', `${err.code}: ${err.message}`, fields, err);
    }
  }
  if (err instanceof StrataError && err.retryable) {
    return new S3Error('ServiceUnavailable', `The cluster is unavailable: ${err.message}`, fields, err);
  }
  return new S3Error('InternalError', 'We encountered an internal error. Please try again.', fields, err);
}
