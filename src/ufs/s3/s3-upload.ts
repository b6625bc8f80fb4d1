/**
 * Streams bytes into one S3 object. Up to one part's worth of bytes goes up as a single PutObject;
 * beyond that, a multipart upload with a bounded number of parts in flight (memory of an upload is
 * at most `concurrency + 1` parts). Any failure aborts the multipart upload so no orphaned parts
 * are left billed in the bucket; the object appears only on CompleteMultipartUpload.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { FsError, toStrataError } from '../../common/errors.js';
import { MAX_S3_PARTS } from '../limits.js';

export interface UploadTarget {
  client: S3Client;
  bucket: string;
  key: string;
  partSizeBytes: number;
  concurrency: number;
  signal: AbortSignal | undefined;
  sizeHint: number | undefined;
  /** For messages: the object URI. */
  where: string;
}

export interface UploadResult {
  bytes: number;
  etag: string | undefined;
  parts: number;
}

/**
 * Collects incoming chunks into parts of exactly `partSizeBytes` (the last may be shorter), with
 * one copy per byte: the producer may reuse its buffers once we return to it. A part buffer starts
 * at the size hint when that is smaller (small files do not cost a whole part of memory).
 */
async function* parts(
  source: AsyncIterable<Uint8Array>,
  partSizeBytes: number,
  sizeHint: number | undefined,
): AsyncGenerator<Buffer> {
  const initial = Math.max(1, Math.min(partSizeBytes, sizeHint ?? partSizeBytes));
  let part = Buffer.allocUnsafe(initial);
  let fill = 0;
  let yielded = false;
  for await (const chunk of source) {
    let off = 0;
    while (off < chunk.length) {
      if (fill === part.length && part.length < partSizeBytes) {
        const grown = Buffer.allocUnsafe(partSizeBytes);
        part.copy(grown, 0, 0, fill);
        part = grown;
      }
      const take = Math.min(chunk.length - off, part.length - fill);
      part.set(chunk.subarray(off, off + take), fill);
      fill += take;
      off += take;
      if (fill === partSizeBytes) {
        yield part;
        yielded = true;
        part = Buffer.allocUnsafe(partSizeBytes);
        fill = 0;
      }
    }
  }
  if (fill > 0 || !yielded) yield part.subarray(0, fill);
}

export async function uploadObject(
  t: UploadTarget,
  source: AsyncIterable<Uint8Array>,
): Promise<UploadResult> {
  const opts = t.signal === undefined ? {} : { abortSignal: t.signal };
  const it = parts(source, t.partSizeBytes, t.sizeHint)[Symbol.asyncIterator]();
  const first = await it.next();
  const firstPart = first.done === true ? Buffer.alloc(0) : first.value;
  const second = first.done === true ? { done: true as const, value: undefined } : await it.next();
  if (second.done === true) {
    // Everything fits in one part: one request, no multipart bookkeeping.
    const res = await t.client.send(
      new PutObjectCommand({
        Bucket: t.bucket,
        Key: t.key,
        Body: firstPart,
        ContentLength: firstPart.length,
      }),
      opts,
    );
    return { bytes: firstPart.length, etag: res.ETag, parts: 1 };
  }

  const created = await t.client.send(
    new CreateMultipartUploadCommand({ Bucket: t.bucket, Key: t.key }),
    opts,
  );
  const uploadId = created.UploadId;
  if (uploadId === undefined) throw new FsError('EIO', `${t.where}: the storage returned no upload id`);
  const done: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  let bytes = 0;
  let partNumber = 0;

  const send = (body: Buffer): void => {
    partNumber++;
    if (partNumber > MAX_S3_PARTS) {
      throw new FsError(
        'EFBIG',
        `${t.where}: more than ${MAX_S3_PARTS} parts of ${t.partSizeBytes} bytes: raise the mount option s3.part.size`,
      );
    }
    const n = partNumber;
    bytes += body.length;
    const p = t.client
      .send(
        new UploadPartCommand({
          Bucket: t.bucket,
          Key: t.key,
          UploadId: uploadId,
          PartNumber: n,
          Body: body,
          ContentLength: body.length,
        }),
        opts,
      )
      .then((r) => {
        done.push({ PartNumber: n, ETag: r.ETag });
      })
      .catch((err: unknown) => {
        failure ??= err instanceof Error ? err : toStrataError(err);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  try {
    send(firstPart);
    send(second.value);
    for (;;) {
      while (inFlight.size >= t.concurrency && failure === undefined) await Promise.race(inFlight);
      if (failure !== undefined) break;
      const next = await it.next();
      if (next.done === true) break;
      send(next.value);
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const res = await t.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: t.bucket,
        Key: t.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: done },
      }),
      opts,
    );
    return { bytes, etag: res.ETag, parts: partNumber };
  } catch (err) {
    await Promise.allSettled(inFlight);
    // Abort without the caller's signal: it may be the reason we are here, and the parts must go.
    await t.client
      .send(new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: t.key, UploadId: uploadId }))
      .catch(() => undefined);
    await it.return?.(undefined);
    throw err;
  }
}
