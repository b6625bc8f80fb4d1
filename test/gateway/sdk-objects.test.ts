// Bucket and object operations through @aws-sdk/client-s3 (default checksum behaviour: CRC32
// headers on buffers, aws-chunked with a trailing checksum on streams) against a real gateway
// and MiniCluster: bytes, ETags, metadata, ranges, conditionals, copies and the S3 error codes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { HASH_THREAD_MIN_BYTES } from '../../src/gateway/s3/hash-pool.js';
import { startGateway } from './harness.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function s3Error(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return { name: err.name, status: err.$metadata.httpStatusCode };
    throw err;
  }
  assert.fail('expected an S3 error');
}

test('S3 gateway through the AWS SDK: buckets and objects', async (t) => {
  const gw = await startGateway(t);
  const s3 = gw.client;

  await t.test('buckets: create, list, head, location, delete only when empty', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'alpha' }));
    const dup = await s3Error(s3.send(new CreateBucketCommand({ Bucket: 'alpha' })));
    assert.deepEqual(dup, { name: 'BucketAlreadyOwnedByYou', status: 409 });
    assert.equal(
      (await s3Error(s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })))).name,
      'InvalidBucketName',
    );
    const list = await s3.send(new ListBucketsCommand({}));
    assert.deepEqual(
      list.Buckets?.map((b) => b.Name),
      ['alpha'],
    );
    await s3.send(new HeadBucketCommand({ Bucket: 'alpha' }));
    assert.equal((await s3Error(s3.send(new HeadBucketCommand({ Bucket: 'nope' })))).status, 404);
    const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'alpha' }));
    assert.equal(loc.LocationConstraint ?? '', '');
    await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'x/y', Body: 'z' }));
    assert.deepEqual(await s3Error(s3.send(new DeleteBucketCommand({ Bucket: 'alpha' }))), {
      name: 'BucketNotEmpty',
      status: 409,
    });
    await s3.send(new DeleteObjectCommand({ Bucket: 'alpha', Key: 'x/y' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'alpha' }));
    assert.deepEqual(await s3Error(s3.send(new DeleteBucketCommand({ Bucket: 'alpha' }))), {
      name: 'NoSuchBucket',
      status: 404,
    });
  });

  await s3.send(new CreateBucketCommand({ Bucket: 'data' }));

  await t.test('put and get: bytes, MD5 ETag, stored headers and user metadata', async () => {
    const body = randomBytes(300_000);
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: 'data',
        Key: 'dir/sub/obj.bin',
        Body: body,
        ContentType: 'application/x-test',
        ContentDisposition: 'attachment; filename="a.bin"',
        CacheControl: 'max-age=60',
        Metadata: { color: 'blue', 'mixed-case': 'Value 1' },
      }),
    );
    assert.equal(put.ETag, `"${md5(body)}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'dir/sub/obj.bin' }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assert.ok(bytes.equals(body));
    assert.equal(got.ETag, `"${md5(body)}"`);
    assert.equal(got.ContentType, 'application/x-test');
    assert.equal(got.ContentDisposition, 'attachment; filename="a.bin"');
    assert.equal(got.CacheControl, 'max-age=60');
    assert.deepEqual(got.Metadata, { color: 'blue', 'mixed-case': 'Value 1' });
    assert.equal(got.ContentLength, body.length);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'dir/sub/obj.bin' }));
    assert.equal(head.ContentLength, body.length);
    assert.equal(head.ETag, put.ETag);
  });

  await t.test('streamed put (aws-chunked with a trailing CRC32) stores only the payload', async () => {
    const body = randomBytes(2 * 1024 * 1024 + 123);
    const stream = Readable.from([
      body.subarray(0, 1000),
      body.subarray(1000, 70_000),
      body.subarray(70_000),
    ]);
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: 'data',
        Key: 'streamed.bin',
        Body: stream,
        ContentLength: body.length,
      }),
    );
    assert.equal(put.ETag, `"${md5(body)}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'streamed.bin' }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
    // aws-chunked framed the upload; it is not the object's Content-Encoding.
    assert.equal(got.ContentEncoding, undefined);
  });

  await t.test('concurrent uploads through the pooled pieces come back byte for byte', async () => {
    // Uploads share the gateway's pool of 1 MiB pieces: a piece reused while another upload's
    // bytes were still in it would show up as a wrong body or ETag here. Sizes straddle pieces.
    const bodies = Array.from({ length: 8 }, (_, i) => randomBytes(3 * 1024 * 1024 + 1000 * i + 1));
    const puts = await Promise.all(
      bodies.map((Body, i) => s3.send(new PutObjectCommand({ Bucket: 'data', Key: `pool/${i}`, Body }))),
    );
    puts.forEach((p, i) => assert.equal(p.ETag, `"${md5(bodies[i] as Buffer)}"`));
    const gots = await Promise.all(
      bodies.map(async (_, i) => {
        const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: `pool/${i}` }));
        return Buffer.from(await got.Body!.transformToByteArray());
      }),
    );
    gots.forEach((g, i) => assert.ok(g.equals(bodies[i] as Buffer), `body ${i}`));
  });

  await t.test('empty object and overwrite', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'empty', Body: '' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'empty' }));
    assert.equal((await got.Body!.transformToByteArray()).length, 0);
    assert.equal(got.ETag, `"${md5(Buffer.alloc(0))}"`);
    await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'empty', Body: 'now full' }));
    const again = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'empty' }));
    assert.equal(await again.Body!.transformToString(), 'now full');
  });

  await t.test('ranges, response overrides, conditionals', async () => {
    const body = Buffer.from('0123456789abcdefghij');
    const put = await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'r.txt', Body: body }));
    const r1 = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', Range: 'bytes=5-9' }));
    assert.equal(await r1.Body!.transformToString(), '56789');
    assert.equal(r1.ContentRange, 'bytes 5-9/20');
    const r2 = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', Range: 'bytes=-3' }));
    assert.equal(await r2.Body!.transformToString(), 'hij');
    const r3 = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', Range: 'bytes=15-' }));
    assert.equal(await r3.Body!.transformToString(), 'fghij');
    assert.deepEqual(
      await s3Error(s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', Range: 'bytes=20-' }))),
      {
        name: 'InvalidRange',
        status: 416,
      },
    );
    const o = await s3.send(
      new GetObjectCommand({
        Bucket: 'data',
        Key: 'r.txt',
        ResponseContentType: 'text/x-over',
        ResponseContentDisposition: 'inline',
        ResponseCacheControl: 'no-store',
      }),
    );
    assert.equal(o.ContentType, 'text/x-over');
    assert.equal(o.ContentDisposition, 'inline');
    assert.equal(o.CacheControl, 'no-store');
    await o.Body!.transformToString();
    const ok = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', IfMatch: put.ETag }));
    assert.equal(await ok.Body!.transformToString(), body.toString());
    assert.deepEqual(
      await s3Error(s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', IfMatch: '"deadbeef"' }))),
      {
        name: 'PreconditionFailed',
        status: 412,
      },
    );
    assert.equal(
      (await s3Error(s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', IfNoneMatch: put.ETag }))))
        .status,
      304,
    );
    const future = new Date(Date.now() + 3600_000);
    const past = new Date(Date.now() - 3600_000);
    assert.equal(
      (
        await s3Error(
          s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', IfModifiedSince: future })),
        )
      ).status,
      304,
    );
    assert.equal(
      (
        await s3Error(
          s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', IfUnmodifiedSince: past })),
        )
      ).status,
      412,
    );
    const fresh = await s3.send(
      new GetObjectCommand({ Bucket: 'data', Key: 'r.txt', IfModifiedSince: past }),
    );
    assert.equal(await fresh.Body!.transformToString(), body.toString());
  });

  await t.test('missing keys and buckets', async () => {
    assert.deepEqual(await s3Error(s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'none' }))), {
      name: 'NoSuchKey',
      status: 404,
    });
    assert.deepEqual(await s3Error(s3.send(new GetObjectCommand({ Bucket: 'nobucket', Key: 'none' }))), {
      name: 'NoSuchBucket',
      status: 404,
    });
    assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'dir' })))).status, 404);
    assert.deepEqual(
      await s3Error(s3.send(new PutObjectCommand({ Bucket: 'nobucket', Key: 'k', Body: 'x' }))),
      {
        name: 'NoSuchBucket',
        status: 404,
      },
    );
  });

  await t.test('every x-amz-checksum algorithm is checked, in a header and in a trailer', async () => {
    const body = randomBytes(1024 * 1024 + 333);
    for (const algo of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const) {
      // A buffer: the checksum in a header; a stream: aws-chunked with the checksum in a trailer.
      for (const streamed of [false, true]) {
        const Key = `sum/${algo}-${streamed}`;
        const put = await s3.send(
          new PutObjectCommand({
            Bucket: 'data',
            Key,
            Body: streamed ? Readable.from([body.subarray(0, 70_000), body.subarray(70_000)]) : body,
            ContentLength: body.length,
            ChecksumAlgorithm: algo,
          }),
        );
        const field = `Checksum${algo}` as const;
        assert.ok(put[field] !== undefined, `${algo}: the checksum is echoed`);
        // Stored and given back with the object: the SDK checks the body against it as it reads.
        const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key, ChecksumMode: 'ENABLED' }));
        assert.equal(got[field], put[field], `${algo} ${streamed}`);
        assert.equal(got.ChecksumType, 'FULL_OBJECT');
        assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body), `${algo} ${streamed}`);
        const head = await s3.send(new HeadObjectCommand({ Bucket: 'data', Key, ChecksumMode: 'ENABLED' }));
        assert.equal(head[field], put[field]);
        // Not for a part of it.
        const part = await s3.send(
          new GetObjectCommand({ Bucket: 'data', Key, ChecksumMode: 'ENABLED', Range: 'bytes=0-9' }),
        );
        assert.equal(part[field], undefined);
        assert.equal((await part.Body!.transformToByteArray()).length, 10);
      }
    }
    // Bodies large enough to be hashed on the hash threads (digests come back by message).
    const big = randomBytes(HASH_THREAD_MIN_BYTES + 5);
    for (const algo of ['CRC32C', 'CRC64NVME', 'SHA256'] as const) {
      const Key = `sum/big-${algo}`;
      await s3.send(new PutObjectCommand({ Bucket: 'data', Key, Body: big, ChecksumAlgorithm: algo }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key }));
      assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(big), `big ${algo}`);
    }
    // A checksum that does not match the body: nothing is stored.
    const wrong = {
      ChecksumCRC32C: Buffer.from([1, 2, 3, 4]).toString('base64'),
      ChecksumCRC64NVME: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]).toString('base64'),
    };
    for (const [field, value] of Object.entries(wrong)) {
      const Key = `sum/wrong-${field}`;
      const bad = await s3Error(
        s3.send(new PutObjectCommand({ Bucket: 'data', Key, Body: body, [field]: value })),
      );
      assert.deepEqual(bad, { name: 'BadDigest', status: 400 }, field);
      assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'data', Key })))).status, 404);
    }
  });

  await t.test('an object changed in place by another front end gets a new ETag', async () => {
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: 'data',
        Key: 'inplace.txt',
        Body: 'hello world',
        ContentType: 'text/x-t',
        ChecksumAlgorithm: 'CRC32',
      }),
    );
    assert.ok(put.ChecksumCRC32 !== undefined);
    assert.equal(put.ETag, `"${createHash('md5').update('hello world').digest('hex')}"`);
    assert.equal(
      (await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'inplace.txt' }))).ETag,
      put.ETag,
    );
    // A truncate through the SDK (as FUSE's ftruncate does) keeps the file and its attributes.
    const fs = FileSystem.create({ config: loadConfig({ path: gw.cluster.clientConfPath, env: {} }).config });
    t.after(() => fs.close());
    await fs.setattr('/data/inplace.txt', { length: 5 });
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: 'data', Key: 'inplace.txt', ChecksumMode: 'ENABLED' }),
    );
    assert.equal(head.ChecksumCRC32, undefined, "the old bytes' checksum is not given either");
    assert.equal(head.ContentLength, 5);
    assert.notEqual(head.ETag, put.ETag, 'the ETag of the old bytes is not served for the new ones');
    assert.equal(head.ContentType, 'text/x-t', 'the stored headers stay');
    const got = await s3.send(
      new GetObjectCommand({ Bucket: 'data', Key: 'inplace.txt', ChecksumMode: 'ENABLED' }),
    );
    assert.equal(got.ETag, head.ETag);
    assert.equal(await got.Body!.transformToString(), 'hello');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'inplace' }));
    assert.equal(listed.Contents?.[0]?.ETag, head.ETag);
    // A conditional GET with the old ETag no longer matches.
    assert.equal(
      (
        await s3Error(
          s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'inplace.txt', IfMatch: put.ETag })),
        )
      ).status,
      412,
    );
  });

  await t.test('Content-MD5 is checked; a wrong one stores nothing', async () => {
    const bad = await s3Error(
      s3.send(
        new PutObjectCommand({
          Bucket: 'data',
          Key: 'md5.txt',
          Body: 'hello',
          ContentMD5: createHash('md5').update('other').digest('base64'),
        }),
      ),
    );
    assert.deepEqual(bad, { name: 'BadDigest', status: 400 });
    assert.equal(
      (await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'md5.txt' })))).status,
      404,
    );
    await s3.send(
      new PutObjectCommand({
        Bucket: 'data',
        Key: 'md5.txt',
        Body: 'hello',
        ContentMD5: createHash('md5').update('hello').digest('base64'),
      }),
    );
  });

  await t.test('copy: COPY and REPLACE metadata, copy-source conditions, copy to itself', async () => {
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: 'data',
        Key: 'src.txt',
        Body: 'copy me',
        ContentType: 'text/plain',
        Metadata: { a: '1' },
      }),
    );
    const c1 = await s3.send(
      new CopyObjectCommand({ Bucket: 'data', Key: 'copies/c1.txt', CopySource: 'data/src.txt' }),
    );
    assert.equal(c1.CopyObjectResult?.ETag, put.ETag);
    const h1 = await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'copies/c1.txt' }));
    assert.equal(h1.ContentType, 'text/plain');
    assert.deepEqual(h1.Metadata, { a: '1' });
    await s3.send(
      new CopyObjectCommand({
        Bucket: 'data',
        Key: 'copies/c2.txt',
        CopySource: '/data/src.txt',
        MetadataDirective: 'REPLACE',
        ContentType: 'text/other',
        Metadata: { b: '2' },
      }),
    );
    const h2 = await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'copies/c2.txt' }));
    assert.equal(h2.ContentType, 'text/other');
    assert.deepEqual(h2.Metadata, { b: '2' });
    const g2 = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'copies/c2.txt' }));
    assert.equal(await g2.Body!.transformToString(), 'copy me');
    assert.deepEqual(
      await s3Error(
        s3.send(
          new CopyObjectCommand({
            Bucket: 'data',
            Key: 'c3',
            CopySource: 'data/src.txt',
            CopySourceIfMatch: '"00"',
          }),
        ),
      ),
      { name: 'PreconditionFailed', status: 412 },
    );
    await s3.send(
      new CopyObjectCommand({
        Bucket: 'data',
        Key: 'c3',
        CopySource: 'data/src.txt',
        CopySourceIfNoneMatch: '"00"',
      }),
    );
    assert.equal(
      (
        await s3Error(
          s3.send(new CopyObjectCommand({ Bucket: 'data', Key: 'src.txt', CopySource: 'data/src.txt' })),
        )
      ).name,
      'InvalidRequest',
    );
    assert.equal(
      (
        await s3Error(
          s3.send(new CopyObjectCommand({ Bucket: 'data', Key: 'c4', CopySource: 'data/missing' })),
        )
      ).name,
      'NoSuchKey',
    );
  });

  await t.test('delete: single (idempotent), batch verbose and quiet, emptied folders vanish', async () => {
    for (const k of ['del/a', 'del/b', 'del/deep/c'])
      await s3.send(new PutObjectCommand({ Bucket: 'data', Key: k, Body: k }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'del/a' }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'del/a' }));
    const verbose = await s3.send(
      new DeleteObjectsCommand({
        Bucket: 'data',
        Delete: { Objects: [{ Key: 'del/b' }, { Key: 'del/missing' }] },
      }),
    );
    assert.deepEqual(verbose.Deleted?.map((d) => d.Key).sort(), ['del/b', 'del/missing']);
    const quiet = await s3.send(
      new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: [{ Key: 'del/deep/c' }], Quiet: true } }),
    );
    assert.equal(quiet.Deleted, undefined);
    assert.equal(quiet.Errors, undefined);
    assert.equal(
      (await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'del/deep/c' })))).status,
      404,
    );
    // The folders emptied by the deletes are gone, so the bucket can be emptied and deleted.
    await s3.send(new CreateBucketCommand({ Bucket: 'tmpb' }));
    await s3.send(new PutObjectCommand({ Bucket: 'tmpb', Key: 'a/b/c/d', Body: 'x' }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'tmpb', Key: 'a/b/c/d' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'tmpb' }));
  });

  // Keys that are not paths (`a/`, `a//b`, `a` beside `a/b`…): sdk-keys.test.ts.
  await t.test('keys with spaces, reserved URL characters and non-ASCII letters', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'odd key +&=ü.txt', Body: 'unicode' }));
    const g = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'odd key +&=ü.txt' }));
    assert.equal(await g.Body!.transformToString(), 'unicode');
  });
});
