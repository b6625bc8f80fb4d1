/** Multipart operations: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts. */
import { checkCopyConditions, copySource, emptySource } from './object-ops.js';
import type { HandlerDeps } from './deps.js';
import { MAX_XML_BODY_BYTES, OWNER_ID, STORAGE_CLASS } from './deps.js';
import { S3Error, toS3Error } from './errors.js';
import {
  drain,
  header,
  isoDate,
  readSmallBody,
  requestBody,
  sendEmpty,
  sendXml,
  sendXmlKeepingAlive,
} from './http.js';
import type { S3Context } from './http.js';
import { checkKey } from './keys.js';
import { MAX_PART_NUMBER, checkPartNumber } from './multipart.js';
import type { CompletePart } from './multipart.js';
import { metaFromRequest } from './object-meta.js';
import { childText, el, expectRoot, malformedXml, opt, parseXml, xmlDocument } from './xml.js';

function uploadIdParam(ctx: S3Context): string {
  return ctx.query.get('uploadId') ?? '';
}

export async function createMultipartUpload(
  ctx: S3Context,
  d: HandlerDeps,
  bucket: string,
  key: string,
): Promise<void> {
  checkKey(bucket, key);
  const meta = metaFromRequest(ctx.req.headers);
  await drain(ctx.req);
  const uploadId = await d.multipart.create(bucket, key, meta);
  sendXml(
    ctx,
    200,
    xmlDocument('InitiateMultipartUploadResult', [
      el('Bucket', bucket),
      el('Key', key),
      el('UploadId', uploadId),
    ]),
  );
}

export async function uploadPart(ctx: S3Context, d: HandlerDeps, bucket: string, key: string): Promise<void> {
  const n = checkPartNumber(ctx.query.get('partNumber') ?? null);
  const rec = await d.multipart.get(bucket, key, uploadIdParam(ctx));
  const body = requestBody(ctx);
  const tmp = await d.store.writeTemp(
    body.stream,
    {
      maxBytes: d.limits.maxPartBytes,
      ...(body.expectedBytes === undefined ? {} : { expectedBytes: body.expectedBytes }),
    },
    body.expected,
    body.checksumAlgorithm,
  );
  const etag = await d.multipart.putPart(rec, n, tmp.tmpPath, tmp.md5);
  const echo = body.checksumEcho();
  sendEmpty(ctx, 200, { etag: `"${etag}"`, ...(echo === undefined ? {} : { [echo[0]]: echo[1] }) });
}

export async function uploadPartCopy(
  ctx: S3Context,
  d: HandlerDeps,
  bucket: string,
  key: string,
): Promise<void> {
  const n = checkPartNumber(ctx.query.get('partNumber') ?? null);
  const rec = await d.multipart.get(bucket, key, uploadIdParam(ctx));
  const src = copySource(ctx);
  const info = await d.store.head(src.bucket, src.key);
  checkCopyConditions(ctx, info);
  let start = 0;
  let end = info.size - 1;
  const rangeText = header(ctx.req, 'x-amz-copy-source-range');
  if (rangeText !== undefined) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(rangeText.trim());
    if (m === null || Number(m[2]) < Number(m[1]) || Number(m[2]) >= info.size) {
      throw new S3Error(
        'InvalidArgument',
        `The x-amz-copy-source-range "${rangeText}" must be bytes=first-last within the source object of ${info.size} bytes.`,
      );
    }
    start = Number(m[1]);
    end = Number(m[2]);
  }
  await drain(ctx.req);
  const length = end - start + 1;
  await sendXmlKeepingAlive(ctx, d.keepAliveAfterMs, async () => {
    const source = length <= 0 ? emptySource() : d.store.read(info.path, start, end);
    const tmp = await d.store.writeTemp(
      source as AsyncIterable<Buffer>,
      { maxBytes: d.limits.maxPartBytes, expectedBytes: Math.max(0, length) },
      {},
    );
    const etag = await d.multipart.putPart(rec, n, tmp.tmpPath, tmp.md5);
    return xmlDocument('CopyPartResult', [el('LastModified', isoDate(Date.now())), el('ETag', `"${etag}"`)]);
  });
}

export async function completeMultipartUpload(
  ctx: S3Context,
  d: HandlerDeps,
  bucket: string,
  key: string,
): Promise<void> {
  const rec = await d.multipart.get(bucket, key, uploadIdParam(ctx));
  const doc = expectRoot(
    parseXml((await readSmallBody(ctx, MAX_XML_BODY_BYTES)).toString()),
    'CompleteMultipartUpload',
  );
  const parts: CompletePart[] = [];
  for (const p of doc.children) {
    if (p.name !== 'Part') continue;
    const num = childText(p, 'PartNumber');
    const etag = childText(p, 'ETag');
    if (num === undefined || etag === undefined || !/^\d+$/.test(num.trim())) {
      throw malformedXml('each Part needs a PartNumber and an ETag');
    }
    const n = Number(num.trim());
    if (n < 1 || n > MAX_PART_NUMBER) throw malformedXml(`PartNumber ${n} is outside 1..${MAX_PART_NUMBER}`);
    parts.push({ partNumber: n, etag });
  }
  // Under a `through` mount the complete writes the whole object to the UFS: it may take long.
  await sendXmlKeepingAlive(ctx, d.keepAliveAfterMs, async () => {
    const { etag } = await d.multipart.complete(rec, parts).catch((err: unknown) => {
      throw toS3Error(err, { bucket, key });
    });
    return xmlDocument('CompleteMultipartUploadResult', [
      el('Location', `/${bucket}/${key}`),
      el('Bucket', bucket),
      el('Key', key),
      el('ETag', `"${etag}"`),
    ]);
  });
}

export async function abortMultipartUpload(
  ctx: S3Context,
  d: HandlerDeps,
  bucket: string,
  key: string,
): Promise<void> {
  await d.multipart.abort(bucket, key, uploadIdParam(ctx));
  sendEmpty(ctx, 204);
}

export async function listParts(ctx: S3Context, d: HandlerDeps, bucket: string, key: string): Promise<void> {
  const rec = await d.multipart.get(bucket, key, uploadIdParam(ctx));
  const markerText = ctx.query.get('part-number-marker') ?? '0';
  const maxText = ctx.query.get('max-parts') ?? '1000';
  if (!/^\d+$/.test(markerText) || !/^\d+$/.test(maxText)) {
    throw new S3Error('InvalidArgument', 'part-number-marker and max-parts must be non-negative integers.');
  }
  const maxParts = Math.min(Number(maxText), 1000);
  const all = await d.multipart.parts(rec, Number(markerText), maxParts);
  const page = all.slice(0, maxParts);
  const truncated = all.length > page.length;
  sendXml(
    ctx,
    200,
    xmlDocument('ListPartsResult', [
      el('Bucket', bucket),
      el('Key', key),
      el('UploadId', rec.uploadId),
      el('Initiator', [el('ID', OWNER_ID), el('DisplayName', OWNER_ID)]),
      el('Owner', [el('ID', OWNER_ID), el('DisplayName', OWNER_ID)]),
      el('StorageClass', STORAGE_CLASS),
      el('PartNumberMarker', Number(markerText)),
      opt('NextPartNumberMarker', page.length > 0 ? page[page.length - 1]?.partNumber : undefined),
      el('MaxParts', maxParts),
      el('IsTruncated', truncated),
      ...page.map((p) =>
        el('Part', [
          el('PartNumber', p.partNumber),
          el('LastModified', isoDate(p.mtimeMs)),
          el('ETag', `"${p.etag}"`),
          el('Size', p.size),
        ]),
      ),
    ]),
  );
}
