// Multipart uploads and listings through @aws-sdk/client-s3 against a real gateway: parts
// uploaded out of order, the part rules (order, ETags, 5 MiB minimum), UploadPartCopy, GET by
// partNumber; 1,000-key listings paged with delimiters in v1, v2 and ListObjectVersions.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { ListObjectsCommandOutput, ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { UPLOADS_DIR } from '../../src/gateway/s3/keys.js';
import { startGateway } from './harness.js';

const MiB = 1024 * 1024;
const md5 = (b: Buffer): Buffer => createHash('md5').update(b).digest();

async function s3Error(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err.name;
    throw err;
  }
  assert.fail('expected an S3 error');
}

async function putMany(
  s3: S3Client,
  bucket: string,
  keys: readonly string[],
  concurrency = 16,
): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < keys.length) {
        const k = keys[i++]!;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));
      }
    }),
  );
}

test('S3 gateway through the AWS SDK: multipart and listings', async (t) => {
  const gw = await startGateway(t);
  const s3 = gw.client;
  await s3.send(new CreateBucketCommand({ Bucket: 'mpu' }));
  const fs = FileSystem.create({ config: loadConfig({ path: gw.cluster.clientConfPath, env: {} }).config });
  t.after(() => fs.close());
  const blockIds = async (path: string): Promise<number[]> =>
    (await fs.blockLocations(path)).blocks.map((b) => b.blockId);

  await t.test(
    'multipart: parts out of order, md5-N ETag, GET by partNumber, ListParts, ListMultipartUploads',
    async () => {
      const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(777_777)];
      const created = await s3.send(
        new CreateMultipartUploadCommand({
          Bucket: 'mpu',
          Key: 'big/object.bin',
          ContentType: 'application/x-big',
          Metadata: { m: 'v' },
        }),
      );
      const uploadId = created.UploadId!;
      const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }));
      assert.deepEqual(
        listed.Uploads?.map((u) => [u.Key, u.UploadId]),
        [['big/object.bin', uploadId]],
      );
      const etags: string[] = [];
      // Last part first, then the others concurrently.
      for (const n of [3, 1, 2]) {
        const r = await s3.send(
          new UploadPartCommand({
            Bucket: 'mpu',
            Key: 'big/object.bin',
            UploadId: uploadId,
            PartNumber: n,
            Body: parts[n - 1],
          }),
        );
        etags[n - 1] = r.ETag!;
        assert.equal(r.ETag, `"${md5(parts[n - 1]!).toString('hex')}"`);
      }
      const lp = await s3.send(
        new ListPartsCommand({ Bucket: 'mpu', Key: 'big/object.bin', UploadId: uploadId }),
      );
      assert.deepEqual(
        lp.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag]),
        [
          [1, 5 * MiB, etags[0]],
          [2, 5 * MiB, etags[1]],
          [3, 777_777, etags[2]],
        ],
      );
      const lp2 = await s3.send(
        new ListPartsCommand({ Bucket: 'mpu', Key: 'big/object.bin', UploadId: uploadId, MaxParts: 2 }),
      );
      assert.equal(lp2.IsTruncated, true);
      assert.equal(lp2.Parts?.length, 2);
      assert.equal(
        await s3Error(
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: 'mpu',
              Key: 'big/object.bin',
              UploadId: uploadId,
              MultipartUpload: {
                Parts: [
                  { PartNumber: 2, ETag: etags[1] },
                  { PartNumber: 1, ETag: etags[0] },
                ],
              },
            }),
          ),
        ),
        'InvalidPartOrder',
      );
      assert.equal(
        await s3Error(
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: 'mpu',
              Key: 'big/object.bin',
              UploadId: uploadId,
              MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }] },
            }),
          ),
        ),
        'InvalidPart',
      );
      assert.equal(
        await s3Error(
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: 'mpu',
              Key: 'big/object.bin',
              UploadId: uploadId,
              MultipartUpload: {
                Parts: [
                  { PartNumber: 3, ETag: etags[2] },
                  { PartNumber: 4, ETag: etags[2] },
                ],
              },
            }),
          ),
        ),
        'InvalidPart',
      );
      const partBlocks: number[] = [];
      for (const n of [1, 2, 3])
        partBlocks.push(...(await blockIds(`${UPLOADS_DIR}/mpu/${uploadId}/${String(n).padStart(5, '0')}`)));
      const done = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'mpu',
          Key: 'big/object.bin',
          UploadId: uploadId,
          MultipartUpload: { Parts: [1, 2, 3].map((n) => ({ PartNumber: n, ETag: etags[n - 1] })) },
        }),
      );
      const expectedEtag = `"${createHash('md5')
        .update(Buffer.concat(parts.map(md5)))
        .digest('hex')}-3"`;
      assert.equal(done.ETag, expectedEtag);
      const whole = Buffer.concat(parts);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big/object.bin' }));
      assert.equal(got.ETag, expectedEtag);
      assert.equal(got.ContentType, 'application/x-big');
      assert.deepEqual(got.Metadata, { m: 'v' });
      assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(whole));
      // Completing moved the parts' blocks into the object: the same blocks, in order, no copy.
      assert.deepEqual(await blockIds('/mpu/big/object.bin'), partBlocks);
      const p2 = await s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big/object.bin', PartNumber: 2 }));
      assert.equal(p2.PartsCount, 3);
      assert.equal(p2.ContentRange, `bytes ${5 * MiB}-${10 * MiB - 1}/${whole.length}`);
      assert.ok(Buffer.from(await p2.Body!.transformToByteArray()).equals(parts[1]!));
      assert.equal(
        await s3Error(s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big/object.bin', PartNumber: 4 }))),
        'InvalidRange',
      );
      // The upload is gone once completed.
      assert.equal(
        await s3Error(
          s3.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'big/object.bin', UploadId: uploadId })),
        ),
        'NoSuchUpload',
      );
      assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }))).Uploads, undefined);
    },
  );

  await t.test('multipart: small non-last part is EntityTooSmall; abort removes the upload', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'small' }));
    const e1 = await s3.send(
      new UploadPartCommand({ Bucket: 'mpu', Key: 'small', UploadId, PartNumber: 1, Body: 'tiny' }),
    );
    const e2 = await s3.send(
      new UploadPartCommand({ Bucket: 'mpu', Key: 'small', UploadId, PartNumber: 2, Body: 'tiny2' }),
    );
    assert.equal(
      await s3Error(
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: 'mpu',
            Key: 'small',
            UploadId,
            MultipartUpload: {
              Parts: [
                { PartNumber: 1, ETag: e1.ETag },
                { PartNumber: 2, ETag: e2.ETag },
              ],
            },
          }),
        ),
      ),
      'EntityTooSmall',
    );
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'small', UploadId }));
    assert.equal(
      await s3Error(
        s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'small', UploadId, PartNumber: 1, Body: 'x' })),
      ),
      'NoSuchUpload',
    );
    assert.equal(await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'small' }))), 'NotFound');
    // A single small part is a valid upload.
    const one = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'one' }));
    const p = await s3.send(
      new UploadPartCommand({
        Bucket: 'mpu',
        Key: 'one',
        UploadId: one.UploadId,
        PartNumber: 1,
        Body: 'solo',
      }),
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'mpu',
        Key: 'one',
        UploadId: one.UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag }] },
      }),
    );
    assert.equal(
      await (await s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'one' }))).Body!.transformToString(),
      'solo',
    );
  });

  await t.test('ListMultipartUploads groups keys by a delimiter and pages whole groups', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'mpl' }));
    const keys = ['dir/a', 'dir/b', 'dir/b', 'other/x', 'top', 'zz/y/z'];
    const ids: string[] = [];
    for (const Key of keys) {
      ids.push((await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpl', Key }))).UploadId!);
    }
    const one = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpl', Delimiter: '/' }));
    assert.deepEqual(
      one.Uploads?.map((u) => u.Key),
      ['top'],
    );
    assert.deepEqual(
      one.CommonPrefixes?.map((p) => p.Prefix),
      ['dir/', 'other/', 'zz/'],
    );
    assert.equal(one.Delimiter, '/');
    const nested = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: 'mpl', Delimiter: '/', Prefix: 'zz/' }),
    );
    assert.deepEqual(
      nested.CommonPrefixes?.map((p) => p.Prefix),
      ['zz/y/'],
    );
    // One entry per page: every group and upload exactly once, in order.
    const seen: string[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const r = await s3.send(
        new ListMultipartUploadsCommand({
          Bucket: 'mpl',
          Delimiter: '/',
          MaxUploads: 1,
          ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker, UploadIdMarker: idMarker }),
        }),
      );
      seen.push(...(r.Uploads ?? []).map((u) => u.Key!), ...(r.CommonPrefixes ?? []).map((p) => p.Prefix!));
      if (r.IsTruncated !== true) break;
      keyMarker = r.NextKeyMarker;
      idMarker = r.NextUploadIdMarker;
    }
    assert.deepEqual(seen, ['dir/', 'other/', 'top', 'zz/']);
    // Without a delimiter every upload is listed, two of the same key included.
    const flat = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpl' }));
    assert.deepEqual(
      flat.Uploads?.map((u) => u.Key),
      keys,
    );
    for (const [i, Key] of keys.entries()) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: 'mpl', Key, UploadId: ids[i] }));
    }
  });

  await t.test('UploadPartCopy with a source range', async () => {
    const src = randomBytes(6 * MiB);
    await s3.send(new PutObjectCommand({ Bucket: 'mpu', Key: 'copy-src', Body: src }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'copy-dst' }));
    const c1 = await s3.send(
      new UploadPartCopyCommand({
        Bucket: 'mpu',
        Key: 'copy-dst',
        UploadId,
        PartNumber: 1,
        CopySource: 'mpu/copy-src',
        CopySourceRange: `bytes=0-${5 * MiB - 1}`,
      }),
    );
    const c2 = await s3.send(
      new UploadPartCopyCommand({
        Bucket: 'mpu',
        Key: 'copy-dst',
        UploadId,
        PartNumber: 2,
        CopySource: 'mpu/copy-src',
        CopySourceRange: `bytes=${5 * MiB}-${6 * MiB - 1}`,
      }),
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'mpu',
        Key: 'copy-dst',
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: c1.CopyPartResult?.ETag },
            { PartNumber: 2, ETag: c2.CopyPartResult?.ETag },
          ],
        },
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'copy-dst' }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(src));
  });

  await t.test(
    '1,000-key listings paged with delimiters (v1, v2, versions), prefixes, start-after, url encoding',
    async () => {
      await s3.send(new CreateBucketCommand({ Bucket: 'many' }));
      const keys: string[] = [];
      for (let d = 0; d < 10; d++)
        for (let f = 0; f < 90; f++) keys.push(`dir${d}/file${String(f).padStart(3, '0')}`);
      for (let f = 0; f < 100; f++) keys.push(`top-${String(f).padStart(3, '0')}`);
      keys.push('dir1.txt', 'dir1-x/a'); // sort between "dir1" siblings: '.' and '-' come before '/'
      keys.push('sp ace/é+&.txt');
      await putMany(s3, 'many', keys);
      const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

      // v2 without delimiter, pages of 137: every key once, in byte order.
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const r: ListObjectsV2CommandOutput = await s3.send(
          new ListObjectsV2Command({ Bucket: 'many', MaxKeys: 137, ContinuationToken: token }),
        );
        seen.push(...(r.Contents ?? []).map((c) => c.Key!));
        assert.equal(r.KeyCount, (r.Contents ?? []).length);
        token = r.NextContinuationToken;
        assert.equal(r.IsTruncated, token !== undefined);
        pages++;
      } while (token !== undefined);
      assert.deepEqual(seen, sorted);
      assert.equal(pages, Math.ceil(sorted.length / 137));

      // v2 with the '/' delimiter in pages of 7: folders as common prefixes, top-level keys.
      const items: string[] = [];
      token = undefined;
      do {
        const r: ListObjectsV2CommandOutput = await s3.send(
          new ListObjectsV2Command({ Bucket: 'many', Delimiter: '/', MaxKeys: 7, ContinuationToken: token }),
        );
        items.push(
          ...(r.Contents ?? []).map((c) => c.Key!),
          ...(r.CommonPrefixes ?? []).map((p) => p.Prefix!),
        );
        token = r.NextContinuationToken;
      } while (token !== undefined);
      const expectTop = [
        ...new Set(sorted.map((k) => (k.includes('/') ? k.slice(0, k.indexOf('/') + 1) : k))),
      ];
      assert.deepEqual(items.sort(), expectTop.sort());

      // v1 with a prefix and delimiter, paged by NextMarker.
      const v1: string[] = [];
      let marker: string | undefined;
      for (;;) {
        const r: ListObjectsCommandOutput = await s3.send(
          new ListObjectsCommand({
            Bucket: 'many',
            Prefix: 'dir3/',
            Delimiter: '/',
            MaxKeys: 40,
            Marker: marker,
          }),
        );
        v1.push(...(r.Contents ?? []).map((c) => c.Key!));
        if (r.IsTruncated !== true) break;
        marker = r.NextMarker;
      }
      assert.deepEqual(
        v1,
        sorted.filter((k) => k.startsWith('dir3/')),
      );

      // A non-'/' delimiter and a prefix cutting inside names.
      const r2 = await s3.send(new ListObjectsV2Command({ Bucket: 'many', Prefix: 'dir1', Delimiter: 'e' }));
      assert.deepEqual(
        r2.CommonPrefixes?.map((p) => p.Prefix),
        ['dir1/file'],
      );
      assert.deepEqual(
        r2.Contents?.map((c) => c.Key),
        ['dir1-x/a', 'dir1.txt'],
      );

      // start-after, and url encoding of odd keys.
      const sa = await s3.send(new ListObjectsV2Command({ Bucket: 'many', StartAfter: 'top-097' }));
      assert.deepEqual(
        sa.Contents?.map((c) => c.Key),
        ['top-098', 'top-099'],
      );
      const enc = await s3.send(
        new ListObjectsV2Command({ Bucket: 'many', Prefix: 'sp ace/', EncodingType: 'url' }),
      );
      assert.equal(enc.EncodingType, 'url');
      assert.equal(decodeURIComponent(enc.Contents?.[0]?.Key ?? ''), 'sp ace/é+&.txt');
      assert.notEqual(enc.Contents?.[0]?.Key, 'sp ace/é+&.txt');
      // ETags in listings are the objects' MD5s.
      const one = await s3.send(new ListObjectsV2Command({ Bucket: 'many', Prefix: 'top-000' }));
      assert.equal(one.Contents?.[0]?.ETag, `"${createHash('md5').update('top-000').digest('hex')}"`);

      // Versions: one null version per key, paged by key marker.
      const versions: string[] = [];
      let keyMarker: string | undefined;
      for (;;) {
        const r = await s3.send(
          new ListObjectVersionsCommand({
            Bucket: 'many',
            Prefix: 'dir5/',
            MaxKeys: 50,
            KeyMarker: keyMarker,
          }),
        );
        for (const v of r.Versions ?? []) {
          assert.equal(v.VersionId, 'null');
          assert.equal(v.IsLatest, true);
          versions.push(v.Key!);
        }
        if (r.IsTruncated !== true) break;
        keyMarker = r.NextKeyMarker;
      }
      assert.deepEqual(
        versions,
        sorted.filter((k) => k.startsWith('dir5/')),
      );
    },
  );
});
