/** Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject. */
import { evaluateConditions, parseRange, preconditionFailed } from './conditions.js';
import type { HandlerDeps } from './deps.js';
import { MAX_DELETE_KEYS, MAX_XML_BODY_BYTES } from './deps.js';
import { S3Error, toS3Error } from './errors.js';
import {
  commonHeaders,
  header,
  isoDate,
  objectHeaders,
  readSmallBody,
  requestBody,
  sendEmpty,
  sendXml,
  sendXmlKeepingAlive,
} from './http.js';
import type { S3Context } from './http.js';
import { locateKey } from './keys.js';
import { sendRange } from './send.js';
import { metaFromRequest, partRange, partsCount } from './object-meta.js';
import type { ObjectInfo, ObjectMeta } from './object-meta.js';
import { childText, el, expectRoot, malformedXml, parseXml, xmlDocument } from './xml.js';
import type { XmlNode } from './xml.js';

/** Query parameters of GetObject that override response headers. */
const RESPONSE_OVERRIDES: Readonly<Record<string, string>> = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
};

export async function putObject(ctx: S3Context, d: HandlerDeps, bucket: string, key: string): Promise<void> {
  const loc = locateKey(bucket, key);
  const meta = metaFromRequest(ctx.req.headers);
  // No bucket check up front: the rename into place finds a missing bucket (NoSuchBucket). The
  // upload is completed onto the key with its metadata in one namespace commit.
  const body = requestBody(ctx);
  const tmp = await d.store.writeTemp(
    body.stream,
    {
      maxBytes: d.limits.maxObjectBytes,
      ...(body.expectedBytes === undefined ? {} : { expectedBytes: body.expectedBytes }),
    },
    body.expected,
    body.checksumAlgorithm,
    // Called once the body is in and checked, so a trailer's checksum is known here too.
    (md5) => {
      const checksum = body.expected().checksum;
      return { ...meta, etag: md5.toString('hex'), ...(checksum === undefined ? {} : { checksum }) };
    },
    loc,
  );
  const etag = tmp.md5.toString('hex');
  const echo = body.checksumEcho();
  sendEmpty(ctx, 200, { etag: `"${etag}"`, ...(echo === undefined ? {} : { [echo[0]]: echo[1] }) });
}

async function headOrGet(
  ctx: S3Context,
  d: HandlerDeps,
  bucket: string,
  key: string,
  get: boolean,
): Promise<void> {
  if (!get) {
    const r = responsePlan(ctx, await d.store.head(bucket, key));
    if (r === undefined) return;
    ctx.res.writeHead(r.status, r.headers);
    ctx.res.end();
    return;
  }
  // Opened (blocks located) before the headers go out: a missing key is a clean NoSuchKey.
  const opening = performance.now();
  const { info, reader } = await d.store.open(bucket, key);
  d.getPhases?.('open', (performance.now() - opening) / 1000);
  try {
    const r = responsePlan(ctx, info);
    if (r === undefined) return;
    ctx.res.writeHead(r.status, r.headers);
    if (r.end < r.start) {
      ctx.res.end();
      return;
    }
    const sending = performance.now();
    await sendRange(ctx.res, reader, r, d.sendBuffers, (n) => (ctx.bytesOut += n));
    d.getPhases?.('send', (performance.now() - sending) / 1000);
  } finally {
    await reader.close().catch(() => undefined);
  }
}

/**
 * The answer to a GET or HEAD of `info`: status, headers and byte range after the conditions,
 * Range or partNumber; undefined when a 304 was sent.
 */
function responsePlan(
  ctx: S3Context,
  info: ObjectInfo,
): { status: number; headers: Record<string, string>; start: number; end: number } | undefined {
  const cond = evaluateConditions(ctx.req, info);
  if (cond === 'failed')
    throw preconditionFailed(header(ctx.req, 'if-match') !== undefined ? 'If-Match' : 'If-Unmodified-Since');
  const headers: Record<string, string> = { ...commonHeaders(ctx), ...objectHeaders(info) };
  if (cond === 'not-modified') {
    ctx.res.writeHead(304, {
      ...commonHeaders(ctx),
      etag: headers.etag ?? '',
      'last-modified': headers['last-modified'] ?? '',
    });
    ctx.res.end();
    return undefined;
  }
  for (const [param, name] of Object.entries(RESPONSE_OVERRIDES)) {
    const v = ctx.query.get(param);
    if (v !== undefined) headers[name] = v;
  }
  const count = partsCount(info.meta);
  if (count !== undefined) headers['x-amz-mp-parts-count'] = String(count);
  let status = 200;
  let start = 0;
  let end = info.size - 1;
  const partText = ctx.query.get('partNumber');
  const rangeText = header(ctx.req, 'range');
  if (partText !== undefined) {
    if (rangeText !== undefined) {
      throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter.');
    }
    const n = Number(partText);
    if (!/^\d+$/.test(partText) || n < 1) {
      throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive.', {
        ArgumentName: 'partNumber',
        ArgumentValue: partText,
      });
    }
    const r = partRange(info.meta, info.size, n);
    if (r === undefined)
      throw new S3Error('InvalidRange', 'The requested partnumber is not satisfiable', {
        ActualObjectSize: String(info.size),
      });
    if (info.meta.parts !== undefined) {
      status = 206;
      headers['content-range'] = `bytes ${r.start}-${r.end}/${info.size}`;
    }
    start = r.start;
    end = r.end;
  } else {
    const r = parseRange(rangeText, info.size);
    if (r !== undefined) {
      status = 206;
      start = r.start;
      end = r.end;
      headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
    }
  }
  const length = Math.max(0, end - start + 1);
  headers['content-length'] = String(length);
  // The stored checksum describes the whole object: given for whole-object answers only, as S3.
  const sum = info.meta.checksum;
  if (
    sum !== undefined &&
    status === 200 &&
    header(ctx.req, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED'
  ) {
    headers[`x-amz-checksum-${sum.algorithm}`] = sum.base64;
    headers['x-amz-checksum-type'] = 'FULL_OBJECT';
  }
  return { status, headers, start, end };
}

export function getObject(ctx: S3Context, d: HandlerDeps, bucket: string, key: string): Promise<void> {
  return headOrGet(ctx, d, bucket, key, true);
}

export function headObject(ctx: S3Context, d: HandlerDeps, bucket: string, key: string): Promise<void> {
  return headOrGet(ctx, d, bucket, key, false);
}

export async function deleteObject(
  ctx: S3Context,
  d: HandlerDeps,
  bucket: string,
  key: string,
): Promise<void> {
  await d.store.delete(bucket, key);
  sendEmpty(ctx, 204);
}

export async function deleteObjects(ctx: S3Context, d: HandlerDeps, bucket: string): Promise<void> {
  const doc = expectRoot(parseXml((await readSmallBody(ctx, MAX_XML_BODY_BYTES)).toString()), 'Delete');
  const quiet = childText(doc, 'Quiet')?.trim() === 'true';
  const keys = doc.children.filter((c) => c.name === 'Object').map((o) => childText(o, 'Key'));
  if (keys.length === 0 || keys.length > MAX_DELETE_KEYS) {
    throw malformedXml(`a Delete names 1 to ${MAX_DELETE_KEYS} objects (got ${keys.length})`);
  }
  await d.store.bucketStatus(bucket);
  const results: XmlNode[] = [];
  for (const key of keys) {
    if (key === undefined) throw malformedXml('an Object without a Key');
    try {
      await d.store.delete(bucket, key);
      if (!quiet) results.push(el('Deleted', [el('Key', key)]));
    } catch (err) {
      const e = toS3Error(err, { bucket, key });
      // A key that cannot exist here was not there to delete: S3 reports it deleted.
      if (e.s3Code === 'InvalidArgument' || e.s3Code === 'KeyTooLongError') {
        if (!quiet) results.push(el('Deleted', [el('Key', key)]));
        continue;
      }
      results.push(el('Error', [el('Key', key), el('Code', e.s3Code), el('Message', e.message)]));
    }
  }
  sendXml(ctx, 200, xmlDocument('DeleteResult', results));
}

/** The bucket and key named by x-amz-copy-source (`/bucket/key` or `bucket/key`, URL-encoded). */
export function copySource(ctx: S3Context): { bucket: string; key: string } {
  const raw = header(ctx.req, 'x-amz-copy-source') ?? '';
  const [pathPart = '', query = ''] = raw.split('?');
  if (query !== '' && !/^versionId=null$/.test(query)) {
    throw new S3Error(
      'InvalidArgument',
      'Only the null version of a copy source exists (versioning is not enabled).',
    );
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathPart).replace(/^\//, '');
  } catch {
    throw new S3Error('InvalidArgument', `Invalid copy source encoding: "${raw}".`);
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) {
    throw new S3Error(
      'InvalidArgument',
      'Copy Source must mention the source bucket and key: sourcebucket/sourcekey.',
    );
  }
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

/** Checks x-amz-copy-source-if-* against the source. */
export function checkCopyConditions(ctx: S3Context, src: ObjectInfo): void {
  const r = evaluateConditions(ctx.req, src, 'x-amz-copy-source-');
  if (r !== 'ok') throw preconditionFailed('x-amz-copy-source-If-*');
}

export { emptySource };

export async function copyObject(ctx: S3Context, d: HandlerDeps, bucket: string, key: string): Promise<void> {
  const loc = locateKey(bucket, key);
  const src = copySource(ctx);
  const directive = (header(ctx.req, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw new S3Error(
      'InvalidArgument',
      `Unknown metadata directive "${directive}" (allowed: COPY, REPLACE).`,
    );
  }
  const info = await d.store.head(src.bucket, src.key);
  checkCopyConditions(ctx, info);
  if (src.bucket === bucket && src.key === key && directive === 'COPY') {
    throw new S3Error(
      'InvalidRequest',
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  await d.store.bucketStatus(bucket);
  await drainBody(ctx);
  const base: Omit<ObjectMeta, 'etag'> =
    directive === 'REPLACE'
      ? metaFromRequest(ctx.req.headers)
      : { headers: info.meta.headers, user: info.meta.user };
  // The bytes stream through: a big copy takes long, so the answer may be kept alive.
  await sendXmlKeepingAlive(ctx, d.keepAliveAfterMs, async () => {
    const source = info.size === 0 ? emptySource() : d.store.read(info.path, 0, info.size - 1);
    const tmp = await d.store.writeTemp(
      source as AsyncIterable<Buffer>,
      { maxBytes: d.limits.maxObjectBytes, expectedBytes: info.size },
      {},
      undefined,
      (md5) => ({ ...base, etag: md5.toString('hex') }),
      loc,
    );
    const path = tmp.path ?? loc.path;
    let mtimeMs: number;
    try {
      mtimeMs = (await d.store.fs.stat(path)).mtimeMs;
    } catch (err) {
      throw toS3Error(err, { bucket, key });
    }
    return xmlDocument('CopyObjectResult', [
      el('LastModified', isoDate(mtimeMs)),
      el('ETag', `"${tmp.md5.toString('hex')}"`),
    ]);
  });
}

async function* emptySource(): AsyncGenerator<Buffer> {
  // an empty object has no bytes to read
}

/** Copy requests carry no body; read any so the connection stays usable. */
async function drainBody(ctx: S3Context): Promise<void> {
  for await (const _ of ctx.req) {
    // discard
  }
}
