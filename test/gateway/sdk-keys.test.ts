// Keys that are not paths (`a/`, `a//b`, `/x`, `.` and `..` segments, `a` beside `a/b`, reserved
// and over-long segments) through @aws-sdk/client-s3: stored, read, listed against a model of S3.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { startGateway } from './harness.js';

const BUCKET = 'keys';
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** What S3 lists: keys after `after` under `prefix`, rolled up at `delimiter`, one page. */
function model(
  keys: readonly string[],
  q: { prefix: string; delimiter: string; after: string; max: number },
): { keys: string[]; prefixes: string[]; truncated: boolean } {
  const out: { key: string; prefix: boolean }[] = [];
  for (const k of [...keys].sort(byBytes)) {
    if (!k.startsWith(q.prefix)) continue;
    const i = q.delimiter === '' ? -1 : k.indexOf(q.delimiter, q.prefix.length);
    const item =
      i < 0 ? { key: k, prefix: false } : { key: k.slice(0, i + q.delimiter.length), prefix: true };
    if (byBytes(item.key, q.after) <= 0) continue;
    if (item.prefix && out[out.length - 1]?.key === item.key) continue;
    out.push(item);
  }
  const page = out.slice(0, q.max);
  return {
    keys: page.filter((e) => !e.prefix).map((e) => e.key),
    prefixes: page.filter((e) => e.prefix).map((e) => e.key),
    truncated: out.length > q.max,
  };
}

/** Every page of a v2 listing, concatenated. */
async function listAllV2(
  s3: S3Client,
  prefix: string,
  delimiter: string,
  max: number,
  startAfter?: string,
): Promise<{ keys: string[]; prefixes: string[]; pages: number }> {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const r = await s3.send(
      new ListObjectsV2Command({
        Bucket: BUCKET,
        Prefix: prefix,
        Delimiter: delimiter === '' ? undefined : delimiter,
        MaxKeys: max,
        ContinuationToken: token,
        StartAfter: token === undefined ? startAfter : undefined,
      }),
    );
    pages++;
    keys.push(...(r.Contents ?? []).map((c) => c.Key ?? ''));
    prefixes.push(...(r.CommonPrefixes ?? []).map((c) => c.Prefix ?? ''));
    token = r.IsTruncated === true ? r.NextContinuationToken : undefined;
    assert.ok(pages < 200, 'listing does not end');
  } while (token !== undefined);
  return { keys, prefixes, pages };
}

/** Every page of the model, concatenated (what listAllV2 must return). */
function modelAll(
  keys: readonly string[],
  prefix: string,
  delimiter: string,
  startAfter = '',
): { keys: string[]; prefixes: string[] } {
  const m = model(keys, { prefix, delimiter, after: startAfter, max: Number.MAX_SAFE_INTEGER });
  return { keys: m.keys, prefixes: m.prefixes };
}

async function s3ErrorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err.name;
    throw err;
  }
  assert.fail('expected an S3 error');
}

test('S3 gateway: keys that are not paths', async (t) => {
  const gw = await startGateway(t);
  const s3 = gw.client;
  const fs = await FileSystem.connect({ config: loadConfig({ path: gw.cluster.clientConfPath }).config });
  t.after(() => fs.close());
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));

  const long = 'L'.repeat(300); // a segment longer than a file name may be
  const name252 = 'n'.repeat(252); // fits as a name, but not with the beside prefix
  // Each key's body is its own text, so a mix-up shows.
  const keys = [
    'folder/',
    'folder/inner',
    'a',
    'a/b',
    'a/b/c',
    'a.txt',
    'a!',
    'a//b',
    'a//',
    '/lead',
    '//x',
    './x',
    'x/./y',
    'x/../y',
    '..',
    '.s3~l~fake',
    '.s3~o~a',
    'plain/dir/file',
    `${long}/leaf`,
    long,
    `k${'é'.repeat(511)}`, // 1,023 bytes, one segment
    name252,
    `${name252}/child`,
    'z/',
    'z//',
  ];

  await t.test('every awkward key is stored and read back (both orders of a beside a/b)', async () => {
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: `body:${Key}` }));
    // The object before its folder and the folder before its object both work.
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'q/r', Body: 'body:q/r' }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'q', Body: 'body:q' }));
    keys.push('q/r', 'q');
    for (const Key of keys) {
      const g = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
      assert.equal(await g.Body?.transformToString(), `body:${Key}`, Key);
      const h = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key }));
      assert.equal(h.ETag, `"${md5(`body:${Key}`)}"`, Key);
    }
    // Overwrites land on the same object.
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'a', Body: 'body:a' }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'folder/', Body: 'body:folder/' }));
    for (const Key of ['a/', 'a/b/c/', 'folder', 'x/.', 'nope//']) {
      assert.equal(
        await s3ErrorName(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key }))),
        'NotFound',
        Key,
      );
    }
    assert.equal(
      await s3ErrorName(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'folder' }))),
      'NoSuchKey',
    );
    assert.equal(
      await s3ErrorName(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: '/'.repeat(700), Body: 'x' }))),
      'InvalidArgument',
    );
  });

  await t.test('ordinary keys stay files at their natural paths', async () => {
    assert.equal((await fs.stat(`/${BUCKET}/plain/dir/file`)).type, 'file');
    assert.equal((await fs.readFile(`/${BUCKET}/a.txt`)).toString(), 'body:a.txt');
    // `a` beside `a/b`: the folder keeps its name, the object is the reserved file beside it.
    assert.equal((await fs.stat(`/${BUCKET}/a`)).type, 'dir');
    assert.equal((await fs.readFile(`/${BUCKET}/.s3~o~a`)).toString(), 'body:a');
    assert.equal((await fs.readFile(`/${BUCKET}/folder/.s3~l~`)).toString(), 'body:folder/');
    assert.equal((await fs.readFile(`/${BUCKET}/a/.s3~l~/b`)).toString(), 'body:a//b');
  });

  await t.test('listings match S3 order and roll-ups, whole and in pages', async () => {
    const cases: [string, string][] = [
      ['', ''],
      ['', '/'],
      ['a', '/'],
      ['a/', '/'],
      ['a//', '/'],
      ['/', '/'],
      ['x/', '/'],
      ['z/', '/'],
      ['folder/', '/'],
      ['', 'b'],
      ['a', '!'],
      ['L', '/'],
    ];
    for (const [prefix, delimiter] of cases) {
      const want = modelAll(keys, prefix, delimiter);
      for (const max of [1000, 3, 1]) {
        const got = await listAllV2(s3, prefix, delimiter, max);
        assert.deepEqual(
          { keys: got.keys, prefixes: got.prefixes },
          want,
          `v2 prefix=${prefix} delimiter=${delimiter} max=${max}`,
        );
      }
    }
    // start-after at awkward keys and between an object and its folder.
    for (const after of ['a', 'a/', 'a//', 'folder/', '/', '.', 'q']) {
      assert.deepEqual(
        await listAllV2(s3, '', '/', 2, after).then((r) => ({ keys: r.keys, prefixes: r.prefixes })),
        modelAll(keys, '', '/', after),
        `start-after ${after}`,
      );
      assert.deepEqual(
        await listAllV2(s3, '', '', 4, after).then((r) => r.keys),
        modelAll(keys, '', '', after).keys,
        `start-after ${after}`,
      );
    }
  });

  await t.test('v1 markers and versions page across the awkward keys', async () => {
    const want = modelAll(keys, '', '/');
    const v1: string[] = [];
    const v1Prefixes: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const r = await s3.send(
        new ListObjectsCommand({
          Bucket: BUCKET,
          Delimiter: '/',
          MaxKeys: 2,
          Marker: marker,
          EncodingType: 'url',
        }),
      );
      v1.push(...(r.Contents ?? []).map((c) => decodeURIComponent(c.Key ?? '')));
      v1Prefixes.push(...(r.CommonPrefixes ?? []).map((c) => decodeURIComponent(c.Prefix ?? '')));
      if (r.IsTruncated !== true) break;
      marker = decodeURIComponent(r.NextMarker ?? '');
    }
    assert.deepEqual({ keys: v1, prefixes: v1Prefixes }, want);
    const versions: string[] = [];
    let keyMarker: string | undefined;
    for (;;) {
      const r = await s3.send(
        new ListObjectVersionsCommand({ Bucket: BUCKET, MaxKeys: 3, KeyMarker: keyMarker }),
      );
      versions.push(...(r.Versions ?? []).map((v) => v.Key ?? ''));
      if (r.IsTruncated !== true) break;
      keyMarker = r.NextKeyMarker;
    }
    assert.deepEqual(versions, [...keys].sort(byBytes));
  });

  await t.test('copies to and from awkward keys', async () => {
    await s3.send(
      new CopyObjectCommand({
        Bucket: BUCKET,
        Key: 'copy//of/',
        CopySource: `${BUCKET}/${encodeURIComponent('a')}`,
      }),
    );
    await s3.send(
      new CopyObjectCommand({
        Bucket: BUCKET,
        Key: 'a/copy',
        CopySource: `${BUCKET}/${encodeURIComponent('folder/')}`,
      }),
    );
    const g1 = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'copy//of/' }));
    assert.equal(await g1.Body?.transformToString(), 'body:a');
    const g2 = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a/copy' }));
    assert.equal(await g2.Body?.transformToString(), 'body:folder/');
    keys.push('copy//of/', 'a/copy');
    assert.deepEqual(await listAllV2(s3, 'copy/', '/', 1000).then((r) => r.prefixes), ['copy//']);
  });

  await t.test('multipart uploads onto a folder object and onto an object beside its folder', async () => {
    for (const Key of ['mp/', 'mp', 'mp/x']) {
      const c = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
      const p = await s3.send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key,
          UploadId: c.UploadId,
          PartNumber: 1,
          Body: `body:${Key}`,
        }),
      );
      if (Key === 'mp/x') {
        const ups = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'mp' }));
        assert.deepEqual(
          ups.Uploads?.map((u) => u.Key),
          ['mp/x'],
        );
      }
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key,
          UploadId: c.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag }] },
        }),
      );
      keys.push(Key);
    }
    for (const Key of ['mp/', 'mp', 'mp/x']) {
      const g = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
      assert.equal(await g.Body?.transformToString(), `body:${Key}`, Key);
    }
    const mp = await listAllV2(s3, 'mp', '/', 1);
    assert.deepEqual({ keys: mp.keys, prefixes: mp.prefixes }, { keys: ['mp'], prefixes: ['mp/'] });
    assert.deepEqual(modelAll(keys, 'mp', '/'), { keys: ['mp'], prefixes: ['mp/'] });
  });

  await t.test(
    'deletes: an object beside its folder, the folder object, and back to a plain file',
    async () => {
      const del = (Key: string): Promise<unknown> =>
        s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key }));
      await del('folder/');
      assert.equal(
        await s3ErrorName(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'folder/' }))),
        'NotFound',
      );
      const inner = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'folder/inner' }));
      assert.equal(await inner.Body?.transformToString(), 'body:folder/inner');
      await del('q');
      assert.equal(
        await s3ErrorName(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'q' }))),
        'NotFound',
      );
      assert.equal((await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'q/r' }))).ContentLength, 8);
      // Deleting the last key of a folder prunes it, and the object beside it is a plain file again.
      const r = await s3.send(
        new DeleteObjectsCommand({
          Bucket: BUCKET,
          Delete: {
            Objects: [{ Key: 'a/b/c' }, { Key: 'a/b' }, { Key: 'a//b' }, { Key: 'a//' }, { Key: 'a/copy' }],
          },
        }),
      );
      assert.equal(r.Errors, undefined);
      assert.equal(r.Deleted?.length, 5);
      assert.equal((await fs.stat(`/${BUCKET}/a`)).type, 'file');
      const a = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a' }));
      assert.equal(await a.Body?.transformToString(), 'body:a');
      const left = keys.filter((k) => !['folder/', 'q', 'a/b/c', 'a/b', 'a//b', 'a//', 'a/copy'].includes(k));
      assert.deepEqual(await listAllV2(s3, '', '', 5).then((x) => x.keys), [...left].sort(byBytes));
      assert.deepEqual(
        await listAllV2(s3, '', '/', 5).then((x) => ({ keys: x.keys, prefixes: x.prefixes })),
        modelAll(left, '', '/'),
      );
    },
  );

  await t.test(
    'a stale file beside a folder (a crash between rename and mkdir) loses to the natural one',
    async () => {
      // What a crash leaves: the old object moved beside, then a newer one written at the name.
      await fs.writeFile(`/${BUCKET}/.s3~o~stale`, 'old');
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'stale', Body: 'new' }));
      const g = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'stale' }));
      assert.equal(await g.Body?.transformToString(), 'new');
      const listed = await listAllV2(s3, 'stal', '', 1000);
      assert.deepEqual(listed.keys, ['stale']);
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'stale' }));
      assert.equal(
        await s3ErrorName(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'stale' }))),
        'NotFound',
      );
      assert.equal(await fs.exists(`/${BUCKET}/.s3~o~stale`), undefined);
    },
  );
});
