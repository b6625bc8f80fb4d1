// CompleteAs under a mount (MiniCluster, s3rver as the UFS of `through` and `async` mounts): the
// steps keep their mount rules, so the object reaches the UFS under its final name. A file written
// outside the mounts may be completed onto a name under one (a new version of that name, written to
// the UFS under it and nowhere else); a plain rename into a mount from outside is refused (EXDEV).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { FsError } from '../../src/common/errors.js';
import { loadConfig } from '../../src/common/config/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { S3Server } from '../ufs/s3-server.js';

const MiB = 1024 * 1024;
/** Deadline for the background persist of an `async` mount on a loaded machine. */
const PERSIST_WAIT_MS = 60_000;

async function ufsObject(c: S3Client, key: string): Promise<Buffer | undefined> {
  try {
    const got = await c.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
    const bytes = await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
    return Buffer.from(bytes);
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

async function ufsKeys(c: S3Client, prefix: string): Promise<string[]> {
  const r = await c.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key ?? '').sort();
}

test('close with a rename under a through mount writes the UFS object under its final name', async (t) => {
  const s3 = await S3Server.start(['data']);
  t.after(() => s3.stop());
  const raw = s3.client({ maxAttempts: 1 });
  t.after(() => raw.destroy());
  const cluster = await MiniCluster.start(t, { workers: 1 });
  const fs = FileSystem.create({
    config: loadConfig({ path: cluster.clientConfPath, env: {} }).config,
    settings: { blockSizeBytes: MiB },
  });
  t.after(() => fs.close());
  await fs.mount('s3://data/thr', undefined, { options: s3.options(), blockSize: MiB, writeType: 'through' });

  const body = randomBytes(MiB + 99);
  const w = await fs.create('/data/thr/.tmp-1', { placeFirstBlock: true, sizeHintBytes: body.length });
  await w.write(body);
  const st = await w.close({ xattrs: { 'user.s3.object': Buffer.from('m') }, renameTo: '/data/thr/obj' });
  assert.equal(st.path, '/data/thr/obj');
  assert.ok((await fs.readFile('/data/thr/obj')).equals(body));
  assert.equal((await fs.getXattr('/data/thr/obj', 'user.s3.object')).toString(), 'm');
  const got = await raw.send(new GetObjectCommand({ Bucket: 'data', Key: 'thr/obj' }));
  const bytes = await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
  assert.ok(Buffer.from(bytes).equals(body), 'the UFS holds the object under its final name');

  // Written outside the mounts, completed onto a name under one: the UFS gets the object under
  // that name (replacing the version there) before the commit, and never a temp name.
  await fs.mkdir('/tmp', { parents: true });
  const next = randomBytes(2 * MiB + 5);
  const w2 = await fs.create('/tmp/outside', { placeFirstBlock: true, sizeHintBytes: next.length });
  await w2.write(next);
  const st2 = await w2.close({ xattrs: { 'user.s3.object': Buffer.from('n') }, renameTo: '/data/thr/obj' });
  assert.equal(st2.path, '/data/thr/obj');
  assert.equal(st2.writeType, 'through');
  assert.equal(st2.ufsPath, 's3://data/thr/obj');
  assert.equal(await fs.exists('/tmp/outside'), undefined);
  assert.ok((await fs.readFile('/data/thr/obj')).equals(next));
  assert.equal((await fs.getXattr('/data/thr/obj', 'user.s3.object')).toString(), 'n');
  assert.ok((await ufsObject(raw, 'thr/obj'))?.equals(next), 'the UFS holds the new version');
  assert.deepEqual(await ufsKeys(raw, 'thr/'), ['thr/obj'], 'no temp object reached the UFS');

  // A directory at the name: refused before the UFS is written; the writer may go elsewhere.
  await fs.mkdir('/data/thr/dir');
  const w3 = await fs.create('/tmp/outside-2');
  await w3.write(Buffer.from('x'));
  await assert.rejects(
    w3.close({ renameTo: '/data/thr/dir' }),
    (err: unknown) => err instanceof FsError && err.code === 'EISDIR',
  );
  assert.equal(await ufsObject(raw, 'thr/dir'), undefined, 'nothing was written to the UFS');
  await w3.close({ renameTo: '/data/thr/dir-beside' });
  assert.ok((await ufsObject(raw, 'thr/dir-beside'))?.equals(Buffer.from('x')));

  // Files under a mount take no part in a concat (their blocks are the cache of a UFS object).
  const w5 = await fs.create('/tmp/concat-target');
  const inMount = await fs.stat('/data/thr/dir-beside');
  await assert.rejects(
    w5.close({ concat: [{ path: '/data/thr/dir-beside', fileId: inMount.id }] }),
    (err: unknown) => err instanceof FsError && err.code === 'EINVAL' && /under a mount/.test(err.message),
  );
  assert.ok((await fs.readFile('/data/thr/dir-beside')).equals(Buffer.from('x')), 'left as it was');

  // A plain rename from outside into the mount stays refused: the UFS has never seen the file.
  const w4 = await fs.create('/tmp/outside-3');
  await w4.write(Buffer.from('y'));
  await w4.close();
  await assert.rejects(
    fs.rename('/tmp/outside-3', '/data/thr/other'),
    (err: unknown) => err instanceof FsError && err.code === 'EXDEV',
  );
  assert.equal(await fs.exists('/data/thr/other'), undefined);
  assert.equal(await ufsObject(raw, 'thr/other'), undefined);
});

test('completed from outside onto async and read-only mounts: queued, or refused (EROFS)', async (t) => {
  const s3 = await S3Server.start(['data']);
  t.after(() => s3.stop());
  const raw = s3.client({ maxAttempts: 1 });
  t.after(() => raw.destroy());
  const cluster = await MiniCluster.start(t, { workers: 1, masterToml: 'heartbeat_interval = 100' });
  const fs = FileSystem.create({
    config: loadConfig({ path: cluster.clientConfPath, env: {} }).config,
    settings: { blockSizeBytes: MiB },
  });
  t.after(() => fs.close());
  const DAY_MS = 24 * 3600 * 1000;
  await fs.mount('s3://data/lazy', undefined, {
    options: s3.options(),
    blockSize: MiB,
    writeType: 'async',
    ttlMs: DAY_MS,
    ttlAction: 'free',
  });
  await fs.mount('s3://data/ro', undefined, { options: s3.options(), blockSize: MiB, mountReadOnly: true });
  await fs.mkdir('/tmp', { parents: true });

  const body = randomBytes(3 * MiB + 1);
  const w = await fs.create('/tmp/a', { placeFirstBlock: true, sizeHintBytes: body.length });
  await w.write(body);
  const st = await w.close({ renameTo: '/data/lazy/obj' });
  assert.equal(st.path, '/data/lazy/obj');
  assert.equal(st.ttlMs, DAY_MS, "the mount's TTL applies as to a file created there");
  assert.equal(st.ttlAction, 'free');
  assert.ok((await fs.readFile('/data/lazy/obj')).equals(body));
  // s3rver writes an object in place (a GET may see part of it), so poll for the whole of it.
  await waitFor(
    'the async mount persists the file under its final name',
    async () => (await ufsObject(raw, 'lazy/obj'))?.equals(body) === true,
    PERSIST_WAIT_MS,
    100,
  );
  assert.deepEqual(await ufsKeys(raw, 'lazy/'), ['lazy/obj'], 'no temp object reached the UFS');

  const w2 = await fs.create('/tmp/b');
  await w2.write(Buffer.from('z'));
  await assert.rejects(
    w2.close({ renameTo: '/data/ro/obj' }),
    (err: unknown) => err instanceof FsError && err.code === 'EROFS' && /read-only/.test(err.message),
  );
  await w2.abort();
  assert.equal(await fs.exists('/data/ro/obj'), undefined);
  assert.equal(await ufsObject(raw, 'ro/obj'), undefined);
});
