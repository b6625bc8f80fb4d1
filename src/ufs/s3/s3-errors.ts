/**
 * How S3 failures read: the SDK's error names and HTTP statuses mapped to FsErrors with a message
 * a person can act on. Credentials never reach a message (the SDK's own messages do not carry
 * them; we still build ours from the error name and status only).
 */
import { FsError } from '../../common/errors.js';
import { mapNetworkError, ufsAccessDenied, ufsIo, ufsNotFound, ufsStale } from '../errors.js';

const DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'Forbidden',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
]);
const CREDENTIALS_HINT = 'check s3.credentials.access and s3.credentials.secret';

interface SdkErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  Code?: string;
}

export function s3Status(err: unknown): number | undefined {
  return (err as SdkErrorShape | null)?.$metadata?.httpStatusCode;
}

export function s3ErrorName(err: unknown): string {
  const e = err as SdkErrorShape | null;
  return e?.Code ?? e?.name ?? 'Error';
}

/**
 * Maps any error of an S3 call. `where` is the object or bucket URI; `endpoint` what was dialled
 * (the endpoint URL, or the AWS regional endpoint).
 */
export function mapS3Error(err: unknown, where: string, endpoint: string): FsError {
  if (err instanceof FsError) return err;
  const net = mapNetworkError(err, where, endpoint);
  const name = s3ErrorName(err);
  const status = s3Status(err);
  if (net !== undefined && status === undefined) return net;
  if (name === 'CredentialsProviderError') {
    // No keys in the mount options and none in the AWS default chain (env, profile, instance role).
    return ufsAccessDenied(
      where,
      'no credentials: none in the mount options nor in the AWS default chain',
      'give s3.credentials.access and s3.credentials.secret',
    );
  }
  if (name === 'NoSuchBucket') {
    return new FsError('ENOENT', `${where}: the bucket does not exist at ${endpoint}`, {
      details: { path: where, reason: name },
    });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return ufsNotFound(where);
  if (DENIED.has(name) || status === 403 || status === 401) {
    const why =
      name === 'InvalidAccessKeyId'
        ? 'the access key id is not known'
        : name === 'SignatureDoesNotMatch'
          ? 'the secret does not match the access key'
          : name;
    return ufsAccessDenied(where, why, CREDENTIALS_HINT);
  }
  if (name === 'PreconditionFailed' || status === 412) return ufsStale(where, 'ETag no longer matches');
  if (name === 'SlowDown' || status === 503) {
    return new FsError('EAGAIN', `${where}: the storage is busy (${name}); try again`, {
      details: { path: where, reason: name },
    });
  }
  if (net !== undefined) return net;
  const msg = (err as SdkErrorShape | null)?.message;
  const shown = status === undefined ? name : `${name}, HTTP ${status}`;
  return ufsIo(
    where,
    `S3 error (${shown})${msg !== undefined && msg !== '' && msg !== name ? `: ${msg}` : ''}`,
  );
}
