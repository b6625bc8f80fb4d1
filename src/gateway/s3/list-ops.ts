/** ListObjects (v1), ListObjectsV2, ListObjectVersions and ListMultipartUploads. */
import { mapConcurrent } from '../../common/concurrency.js';
import { FsError } from '../../common/errors.js';
import type { HandlerDeps } from './deps.js';
import { LIST_META_CONCURRENCY, OWNER_ID, STORAGE_CLASS } from './deps.js';
import type { UploadRecord } from './multipart.js';
import { S3Error } from './errors.js';
import { encodeKey, isoDate, sendXml } from './http.js';
import type { S3Context } from './http.js';
import { MAX_LIST_KEYS } from './listing.js';
import type { ListResult, ListedObject } from './listing.js';
import { META_XATTR, decodeMeta } from './object-meta.js';
import { el, opt, xmlDocument } from './xml.js';
import type { XmlNode } from './xml.js';

function maxKeysParam(ctx: S3Context, name: string): number {
  const text = ctx.query.get(name);
  if (text === undefined) return MAX_LIST_KEYS;
  if (!/^\d+$/.test(text)) {
    throw new S3Error('InvalidArgument', `${name} must be a non-negative integer (got "${text}").`, {
      ArgumentName: name,
      ArgumentValue: text,
    });
  }
  return Math.min(Number(text), MAX_LIST_KEYS);
}

function encodingParam(ctx: S3Context): boolean {
  const e = ctx.query.get('encoding-type');
  if (e === undefined) return false;
  if (e !== 'url') {
    throw new S3Error(
      'InvalidArgument',
      `Invalid Encoding Method specified in Request (got "${e}", allowed: url).`,
      {
        ArgumentName: 'encoding-type',
        ArgumentValue: e,
      },
    );
  }
  return true;
}

/** ETags of a page of objects, read with bounded concurrency. */
function etagsOf(d: HandlerDeps, objects: readonly ListedObject[]): Promise<string[]> {
  return mapConcurrent(objects, LIST_META_CONCURRENCY, async (o) => {
    let raw: Buffer | undefined;
    try {
      raw = await d.store.fs.getXattr(o.path, META_XATTR);
    } catch (err) {
      if (!(err instanceof FsError)) throw err;
    }
    return decodeMeta(raw, o.status).etag;
  });
}

const owner = (): XmlNode => el('Owner', [el('ID', OWNER_ID), el('DisplayName', OWNER_ID)]);

function commonPrefixNodes(r: ListResult, url: boolean): XmlNode[] {
  return r.commonPrefixes.map((p) => el('CommonPrefixes', [el('Prefix', encodeKey(p, url))]));
}

export async function listObjects(
  ctx: S3Context,
  d: HandlerDeps,
  bucket: string,
  v2: boolean,
): Promise<void> {
  const url = encodingParam(ctx);
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const maxKeys = maxKeysParam(ctx, 'max-keys');
  let after: string;
  let token: string | undefined;
  let startAfter: string | undefined;
  if (v2) {
    token = ctx.query.get('continuation-token');
    startAfter = ctx.query.get('start-after');
    if (token !== undefined) {
      after = Buffer.from(token, 'base64url').toString();
      if (token === '' || Buffer.from(after).toString('base64url') !== token) {
        throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect.', {
          ArgumentName: 'continuation-token',
        });
      }
    } else after = startAfter ?? '';
  } else after = ctx.query.get('marker') ?? '';
  await d.store.bucketStatus(bucket);
  const r = await d.lister.list({ bucket, prefix, delimiter, after, maxKeys });
  const etags = await etagsOf(d, r.objects);
  const fetchOwner = !v2 || ctx.query.get('fetch-owner') === 'true';
  const contents = r.objects.map((o, i) =>
    el('Contents', [
      el('Key', encodeKey(o.key, url)),
      el('LastModified', isoDate(o.mtimeMs)),
      el('ETag', `"${etags[i] ?? ''}"`),
      el('Size', o.size),
      fetchOwner ? owner() : undefined,
      el('StorageClass', STORAGE_CLASS),
    ]),
  );
  const common: (XmlNode | undefined)[] = [el('Name', bucket), el('Prefix', encodeKey(prefix, url))];
  let head: (XmlNode | undefined)[];
  if (v2) {
    head = [
      ...common,
      opt('ContinuationToken', token),
      opt('StartAfter', startAfter === undefined ? undefined : encodeKey(startAfter, url)),
      el('KeyCount', r.objects.length + r.commonPrefixes.length),
      el('MaxKeys', maxKeys),
      opt('Delimiter', delimiter === '' ? undefined : encodeKey(delimiter, url)),
      el('IsTruncated', r.isTruncated),
      opt(
        'NextContinuationToken',
        r.isTruncated && r.last !== undefined ? Buffer.from(r.last).toString('base64url') : undefined,
      ),
    ];
  } else {
    head = [
      ...common,
      el('Marker', encodeKey(after, url)),
      opt('NextMarker', r.isTruncated && r.last !== undefined ? encodeKey(r.last, url) : undefined),
      el('MaxKeys', maxKeys),
      opt('Delimiter', delimiter === '' ? undefined : encodeKey(delimiter, url)),
      el('IsTruncated', r.isTruncated),
    ];
  }
  sendXml(
    ctx,
    200,
    xmlDocument('ListBucketResult', [
      ...head,
      opt('EncodingType', url ? 'url' : undefined),
      ...contents,
      ...commonPrefixNodes(r, url),
    ]),
  );
}

/** Every object has exactly one version, `null` (versioning is never enabled). */
export async function listObjectVersions(ctx: S3Context, d: HandlerDeps, bucket: string): Promise<void> {
  const url = encodingParam(ctx);
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const keyMarker = ctx.query.get('key-marker') ?? '';
  const versionMarker = ctx.query.get('version-id-marker');
  const maxKeys = maxKeysParam(ctx, 'max-keys');
  await d.store.bucketStatus(bucket);
  const r = await d.lister.list({ bucket, prefix, delimiter, after: keyMarker, maxKeys });
  const etags = await etagsOf(d, r.objects);
  sendXml(
    ctx,
    200,
    xmlDocument('ListVersionsResult', [
      el('Name', bucket),
      el('Prefix', encodeKey(prefix, url)),
      el('KeyMarker', encodeKey(keyMarker, url)),
      el('VersionIdMarker', versionMarker ?? ''),
      opt('NextKeyMarker', r.isTruncated && r.last !== undefined ? encodeKey(r.last, url) : undefined),
      opt('NextVersionIdMarker', r.isTruncated ? 'null' : undefined),
      el('MaxKeys', maxKeys),
      opt('Delimiter', delimiter === '' ? undefined : encodeKey(delimiter, url)),
      el('IsTruncated', r.isTruncated),
      opt('EncodingType', url ? 'url' : undefined),
      ...r.objects.map((o, i) =>
        el('Version', [
          el('Key', encodeKey(o.key, url)),
          el('VersionId', 'null'),
          el('IsLatest', true),
          el('LastModified', isoDate(o.mtimeMs)),
          el('ETag', `"${etags[i] ?? ''}"`),
          el('Size', o.size),
          owner(),
          el('StorageClass', STORAGE_CLASS),
        ]),
      ),
      ...commonPrefixNodes(r, url),
    ]),
  );
}

export async function listMultipartUploads(ctx: S3Context, d: HandlerDeps, bucket: string): Promise<void> {
  const url = encodingParam(ctx);
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const keyMarker = ctx.query.get('key-marker') ?? '';
  const uploadIdMarker = ctx.query.get('upload-id-marker') ?? '';
  const maxUploads = maxKeysParam(ctx, 'max-uploads');
  const all = await d.multipart.uploads(bucket, prefix, keyMarker, uploadIdMarker);
  // With a delimiter, the uploads of keys sharing a prefix up to it are one entry (a common
  // prefix); a page ends after a whole group, so the next marker (its last upload) skips it.
  const uploads: UploadRecord[] = [];
  const prefixes: string[] = [];
  let last: UploadRecord | undefined;
  let truncated = false;
  for (const u of all) {
    const cut = delimiter === '' ? -1 : u.key.indexOf(delimiter, prefix.length);
    const group = cut < 0 ? undefined : u.key.slice(0, cut + delimiter.length);
    if (group !== undefined && prefixes[prefixes.length - 1] === group) {
      last = u;
      continue;
    }
    if (uploads.length + prefixes.length >= maxUploads) {
      truncated = true;
      break;
    }
    if (group === undefined) uploads.push(u);
    else prefixes.push(group);
    last = u;
  }
  sendXml(
    ctx,
    200,
    xmlDocument('ListMultipartUploadsResult', [
      el('Bucket', bucket),
      el('KeyMarker', encodeKey(keyMarker, url)),
      el('UploadIdMarker', uploadIdMarker),
      opt('NextKeyMarker', truncated && last !== undefined ? encodeKey(last.key, url) : undefined),
      opt('NextUploadIdMarker', truncated ? last?.uploadId : undefined),
      el('Prefix', encodeKey(prefix, url)),
      opt('Delimiter', delimiter === '' ? undefined : encodeKey(delimiter, url)),
      el('MaxUploads', maxUploads),
      el('IsTruncated', truncated),
      opt('EncodingType', url ? 'url' : undefined),
      ...uploads.map((u) =>
        el('Upload', [
          el('Key', encodeKey(u.key, url)),
          el('UploadId', u.uploadId),
          el('Initiator', [el('ID', OWNER_ID), el('DisplayName', OWNER_ID)]),
          owner(),
          el('StorageClass', STORAGE_CLASS),
          el('Initiated', isoDate(u.initiatedMs)),
        ]),
      ),
      ...prefixes.map((p) => el('CommonPrefixes', [el('Prefix', encodeKey(p, url))])),
    ]),
  );
}
