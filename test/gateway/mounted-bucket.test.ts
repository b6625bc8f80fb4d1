// A bucket that is a UFS mount (a `file://` directory mounted at /<bucket>), read and written
// through the S3 gateway with the AWS SDK: objects the UFS already holds are served, and every
// write (PutObject, CopyObject, CompleteMultipartUpload, DeleteObject) reaches the UFS under the
// object's own key, and no temp name ever does; an `async` bucket gets a completed multipart object
// in the background. A read-only mount refuses writes with AccessDenied.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { startGateway } from './harness.js';

const MiB = 1024 * 1024;
/** Deadline for the background persist of an `async` mount on a loaded machine. */
const PERSIST_WAIT_MS = 60_000;
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

/** Every file below `dir`, as paths relative to it, sorted. */
function filesBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

async function getBytes(c: S3Client, bucket: string, key: string): Promise<Buffer> {
  const r = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(
    await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

test('a bucket mounted from a UFS: gateway writes reach the UFS under their keys', async (t) => {
  const h = await startGateway(t);
  const ufs = tempDir(t, 'strata-ufs-bucket-');
  const ro = tempDir(t, 'strata-ufs-ro-');
  const lazy = tempDir(t, 'strata-ufs-lazy-');
  mkdirSync(join(ufs, 'old'));
  writeFileSync(join(ufs, 'old', 'a.txt'), 'from the UFS');
  writeFileSync(join(ufs, 'replace.txt'), 'first version');
  writeFileSync(join(ro, 'kept.txt'), 'read-only data');

  const fs = FileSystem.create({ config: loadConfig({ path: h.cluster.clientConfPath, env: {} }).config });
  t.after(() => fs.close());
  await fs.mount(`file://${ufs}`, '/data', { options: {}, writeType: 'through', blockSize: MiB });
  await fs.mount(`file://${ro}`, '/frozen', { options: {}, mountReadOnly: true });
  await fs.mount(`file://${lazy}`, '/lazy', { options: {}, writeType: 'async', blockSize: MiB });
  const c = h.client;

  // What the UFS held before is served and listed.
  assert.equal((await getBytes(c, 'data', 'old/a.txt')).toString(), 'from the UFS');

  // PutObject of a new key (in a folder the UFS does not have yet), with its metadata.
  const body = randomBytes(MiB + 123);
  const put = await c.send(
    new PutObjectCommand({
      Bucket: 'data',
      Key: 'new/dir/obj.bin',
      Body: body,
      ContentType: 'application/x-test',
      Metadata: { origin: 'gateway' },
    }),
  );
  assert.equal(put.ETag, `"${md5(body)}"`);
  assert.ok(readFileSync(join(ufs, 'new', 'dir', 'obj.bin')).equals(body), 'the UFS has the object');
  const head = await c.send(new HeadObjectCommand({ Bucket: 'data', Key: 'new/dir/obj.bin' }));
  assert.equal(head.ContentType, 'application/x-test');
  assert.equal(head.Metadata?.origin, 'gateway');
  assert.equal(head.ETag, `"${md5(body)}"`);
  assert.ok((await getBytes(c, 'data', 'new/dir/obj.bin')).equals(body));

  // PutObject over an object the UFS holds: the UFS gets the new version.
  await c.send(new PutObjectCommand({ Bucket: 'data', Key: 'replace.txt', Body: 'second version' }));
  assert.equal(readFileSync(join(ufs, 'replace.txt'), 'utf8'), 'second version');
  assert.equal((await getBytes(c, 'data', 'replace.txt')).toString(), 'second version');

  // Multipart, parts uploaded out of order.
  const parts = [randomBytes(5 * MiB), randomBytes(MiB + 7)];
  const up = await c.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'big.bin' }));
  const etags: string[] = [];
  for (const n of [2, 1]) {
    const r = await c.send(
      new UploadPartCommand({
        Bucket: 'data',
        Key: 'big.bin',
        UploadId: up.UploadId,
        PartNumber: n,
        Body: parts[n - 1],
      }),
    );
    etags[n - 1] = r.ETag ?? '';
  }
  const done = await c.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'data',
      Key: 'big.bin',
      UploadId: up.UploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }),
  );
  assert.match(done.ETag ?? '', /-2"$/);
  assert.ok(readFileSync(join(ufs, 'big.bin')).equals(Buffer.concat(parts)));

  // CopyObject from an object only the UFS held before the mount.
  await c.send(new CopyObjectCommand({ Bucket: 'data', Key: 'copy.txt', CopySource: 'data/old/a.txt' }));
  assert.equal(readFileSync(join(ufs, 'copy.txt'), 'utf8'), 'from the UFS');

  // DeleteObject removes it from the UFS too.
  await c.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'replace.txt' }));
  await assert.rejects(c.send(new HeadObjectCommand({ Bucket: 'data', Key: 'replace.txt' })));

  // The UFS holds exactly the objects, under their keys: no temp or hidden names.
  assert.deepEqual(filesBelow(ufs), ['big.bin', 'copy.txt', 'new/dir/obj.bin', 'old/a.txt']);
  const listed = await c.send(new ListObjectsV2Command({ Bucket: 'data' }));
  assert.deepEqual(
    (listed.Contents ?? []).map((o) => o.Key),
    ['big.bin', 'copy.txt', 'new/dir/obj.bin', 'old/a.txt'],
  );

  // An `async` bucket: a multipart upload is cached at once and reaches the UFS in the background.
  const lazyParts = [randomBytes(5 * MiB + 1), randomBytes(3)];
  const lu = await c.send(new CreateMultipartUploadCommand({ Bucket: 'lazy', Key: 'deep/mp.bin' }));
  const lazyTags: string[] = [];
  for (const [i, p] of lazyParts.entries()) {
    const r = await c.send(
      new UploadPartCommand({
        Bucket: 'lazy',
        Key: 'deep/mp.bin',
        UploadId: lu.UploadId,
        PartNumber: i + 1,
        Body: p,
      }),
    );
    lazyTags.push(r.ETag ?? '');
  }
  await c.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'lazy',
      Key: 'deep/mp.bin',
      UploadId: lu.UploadId,
      MultipartUpload: { Parts: lazyTags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }),
  );
  assert.ok((await getBytes(c, 'lazy', 'deep/mp.bin')).equals(Buffer.concat(lazyParts)));
  await waitFor(
    'the async bucket persists the completed object under its key',
    () => {
      try {
        return readFileSync(join(lazy, 'deep', 'mp.bin')).equals(Buffer.concat(lazyParts));
      } catch {
        return false;
      }
    },
    PERSIST_WAIT_MS,
    100,
  );

  // A read-only mount: reads work, writes are AccessDenied and change nothing.
  assert.equal((await getBytes(c, 'frozen', 'kept.txt')).toString(), 'read-only data');
  await assert.rejects(
    c.send(new PutObjectCommand({ Bucket: 'frozen', Key: 'new.txt', Body: 'x' })),
    (err: unknown) => (err as { name?: string }).name === 'AccessDenied',
  );
  await assert.rejects(
    c.send(new DeleteObjectCommand({ Bucket: 'frozen', Key: 'kept.txt' })),
    (err: unknown) => (err as { name?: string }).name === 'AccessDenied',
  );
  assert.deepEqual(filesBelow(ro), ['kept.txt']);
  assert.equal((await getBytes(c, 'frozen', 'kept.txt')).toString(), 'read-only data');
});
