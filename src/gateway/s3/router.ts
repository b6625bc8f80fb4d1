/**
 * Which operation a request is: the bucket and key from path-style (`/bucket/key`) or
 * virtual-hosted-style (`bucket.DOMAIN/key`) addressing, then the method and sub-resource.
 */
import type { IncomingMessage } from 'node:http';
import * as bucketOps from './bucket-ops.js';
import type { HandlerDeps } from './deps.js';
import { S3Error } from './errors.js';
import type { S3Context } from './http.js';
import * as listOps from './list-ops.js';
import * as mpOps from './multipart-ops.js';
import * as objectOps from './object-ops.js';

export interface Target {
  bucket: string | undefined;
  key: string | undefined;
  /** The path as sent (percent-encoded), which is what the signature covers. */
  rawPath: string;
  queryPairs: [string, string][];
}

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new S3Error('InvalidArgument', `Could not decode the ${what} (bad percent-encoding): "${text}".`);
  }
}

export function resolveTarget(req: IncomingMessage, domain: string): Target {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const queryPairs: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    queryPairs.push([decode(k, 'query'), decode(v, 'query')]);
  }
  if (!rawPath.startsWith('/')) throw new S3Error('InvalidArgument', 'The request path must start with "/".');
  const hostname = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  let bucket: string | undefined;
  let keyRaw: string;
  if (domain !== '' && hostname.endsWith(`.${domain}`)) {
    bucket = hostname.slice(0, -domain.length - 1);
    keyRaw = rawPath.slice(1);
  } else {
    const rest = rawPath.slice(1);
    const slash = rest.indexOf('/');
    const b = slash < 0 ? rest : rest.slice(0, slash);
    bucket = b === '' ? undefined : decode(b, 'bucket name');
    keyRaw = slash < 0 ? '' : rest.slice(slash + 1);
  }
  const key = keyRaw === '' ? undefined : decode(keyRaw, 'object key');
  return { bucket, key, rawPath, queryPairs };
}

/** Whether the request only reads (allowed anonymously with anonymous_read). */
export function isReadOnly(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** Sub-resources the gateway does not implement: answered NotImplemented, never misread as another call. */
const UNSUPPORTED_SUBRESOURCES = [
  'acl',
  'policy',
  'cors',
  'lifecycle',
  'tagging',
  'website',
  'logging',
  'notification',
  'replication',
  'encryption',
  'object-lock',
  'retention',
  'legal-hold',
  'torrent',
  'restore',
  'select',
  'accelerate',
  'requestPayment',
  'inventory',
  'metrics',
  'analytics',
  'ownershipControls',
  'publicAccessBlock',
  'intelligent-tiering',
  'attributes',
];

export type Handler = (ctx: S3Context, d: HandlerDeps) => Promise<void>;

export function route(ctx: S3Context): { op: string; handler: Handler } {
  const { method, bucket, key, query } = ctx;
  const has = (k: string): boolean => query.has(k);
  for (const sub of UNSUPPORTED_SUBRESOURCES) {
    if (has(sub)) {
      return {
        op: `Unsupported:${sub}`,
        handler: async () => {
          throw new S3Error('NotImplemented', `The ${sub} sub-resource is not implemented by this gateway.`);
        },
      };
    }
  }
  const notAllowed = (): never => {
    throw new S3Error(
      'MethodNotAllowed',
      `The specified method ${method} is not allowed against this resource.`,
    );
  };
  if (bucket === undefined) {
    if (method === 'GET') return { op: 'ListBuckets', handler: (c, d) => bucketOps.listBuckets(c, d) };
    notAllowed();
  }
  const b = bucket as string;
  if (key === undefined) {
    switch (method) {
      case 'PUT':
        if (has('versioning')) notAllowed();
        return { op: 'CreateBucket', handler: (c, d) => bucketOps.createBucket(c, d, b) };
      case 'DELETE':
        return { op: 'DeleteBucket', handler: (c, d) => bucketOps.deleteBucket(c, d, b) };
      case 'HEAD':
        return { op: 'HeadBucket', handler: (c, d) => bucketOps.headBucket(c, d, b) };
      case 'POST':
        if (has('delete'))
          return { op: 'DeleteObjects', handler: (c, d) => objectOps.deleteObjects(c, d, b) };
        return notAllowed();
      case 'GET':
        if (has('location'))
          return { op: 'GetBucketLocation', handler: (c, d) => bucketOps.getBucketLocation(c, d, b) };
        if (has('versioning'))
          return { op: 'GetBucketVersioning', handler: (c, d) => bucketOps.getBucketVersioning(c, d, b) };
        if (has('versions'))
          return { op: 'ListObjectVersions', handler: (c, d) => listOps.listObjectVersions(c, d, b) };
        if (has('uploads'))
          return { op: 'ListMultipartUploads', handler: (c, d) => listOps.listMultipartUploads(c, d, b) };
        if (query.get('list-type') === '2')
          return { op: 'ListObjectsV2', handler: (c, d) => listOps.listObjects(c, d, b, true) };
        return { op: 'ListObjects', handler: (c, d) => listOps.listObjects(c, d, b, false) };
      default:
        return notAllowed();
    }
  }
  const k = key;
  const copy = ctx.req.headers['x-amz-copy-source'] !== undefined;
  switch (method) {
    case 'PUT':
      if (has('uploadId') || has('partNumber')) {
        if (copy) return { op: 'UploadPartCopy', handler: (c, d) => mpOps.uploadPartCopy(c, d, b, k) };
        return { op: 'UploadPart', handler: (c, d) => mpOps.uploadPart(c, d, b, k) };
      }
      if (copy) return { op: 'CopyObject', handler: (c, d) => objectOps.copyObject(c, d, b, k) };
      return { op: 'PutObject', handler: (c, d) => objectOps.putObject(c, d, b, k) };
    case 'GET':
      if (has('uploadId')) return { op: 'ListParts', handler: (c, d) => mpOps.listParts(c, d, b, k) };
      return { op: 'GetObject', handler: (c, d) => objectOps.getObject(c, d, b, k) };
    case 'HEAD':
      return { op: 'HeadObject', handler: (c, d) => objectOps.headObject(c, d, b, k) };
    case 'DELETE':
      if (has('uploadId'))
        return { op: 'AbortMultipartUpload', handler: (c, d) => mpOps.abortMultipartUpload(c, d, b, k) };
      return { op: 'DeleteObject', handler: (c, d) => objectOps.deleteObject(c, d, b, k) };
    case 'POST':
      if (has('uploads'))
        return { op: 'CreateMultipartUpload', handler: (c, d) => mpOps.createMultipartUpload(c, d, b, k) };
      if (has('uploadId'))
        return {
          op: 'CompleteMultipartUpload',
          handler: (c, d) => mpOps.completeMultipartUpload(c, d, b, k),
        };
      return notAllowed();
    default:
      return notAllowed();
  }
}
