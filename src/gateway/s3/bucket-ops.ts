/** Service and bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation. */
import type { HandlerDeps } from './deps.js';
import { OWNER_ID } from './deps.js';
import { drain, isoDate, sendEmpty, sendXml } from './http.js';
import type { S3Context } from './http.js';
import { S3_XMLNS, XML_DECLARATION, el, escapeXml, xmlDocument } from './xml.js';

export async function listBuckets(ctx: S3Context, d: HandlerDeps): Promise<void> {
  const buckets = await d.store.listBuckets();
  sendXml(
    ctx,
    200,
    xmlDocument('ListAllMyBucketsResult', [
      el('Owner', [el('ID', OWNER_ID), el('DisplayName', OWNER_ID)]),
      el(
        'Buckets',
        buckets.map((b) => el('Bucket', [el('Name', b.name), el('CreationDate', isoDate(b.ctimeMs))])),
      ),
    ]),
  );
}

export async function createBucket(ctx: S3Context, d: HandlerDeps, bucket: string): Promise<void> {
  // A CreateBucketConfiguration (location constraint) is accepted: the cluster has one region.
  await drain(ctx.req);
  await d.store.createBucket(bucket);
  sendEmpty(ctx, 200, { location: `/${bucket}` });
}

export async function deleteBucket(ctx: S3Context, d: HandlerDeps, bucket: string): Promise<void> {
  await d.store.deleteBucket(bucket);
  sendEmpty(ctx, 204);
}

export async function headBucket(ctx: S3Context, d: HandlerDeps, bucket: string): Promise<void> {
  await d.store.bucketStatus(bucket);
  sendEmpty(ctx, 200, { 'x-amz-bucket-region': d.region });
}

export async function getBucketLocation(ctx: S3Context, d: HandlerDeps, bucket: string): Promise<void> {
  await d.store.bucketStatus(bucket);
  // us-east-1 is reported as an empty constraint, as S3 does.
  const region = d.region === 'us-east-1' ? '' : escapeXml(d.region);
  sendXml(
    ctx,
    200,
    `${XML_DECLARATION}<LocationConstraint xmlns="${S3_XMLNS}">${region}</LocationConstraint>`,
  );
}

export async function getBucketVersioning(ctx: S3Context, d: HandlerDeps, bucket: string): Promise<void> {
  await d.store.bucketStatus(bucket);
  // Versioning was never enabled: an empty configuration.
  sendXml(ctx, 200, xmlDocument('VersioningConfiguration', []));
}
