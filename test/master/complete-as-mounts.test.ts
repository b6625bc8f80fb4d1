// CompleteAs under a mount (MiniCluster, s3rver as the UFS of a `through` mount): the steps keep their
// mount rules, so the object reaches the UFS under its final name; a rename into a mount from outside is refused (EXDEV).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { FsError } from '../../src/common/errors.js';
import { loadConfig } from '../../src/common/config/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { S3Server } from '../ufs/s3-server.js';

const MiB = 1024 * 1024;

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

  // From outside the mount into it: refused before anything is committed.
  await fs.mkdir('/tmp', { parents: true });
  const w2 = await fs.create('/tmp/outside');
  await w2.write(Buffer.from('x'));
  await assert.rejects(
    w2.close({ renameTo: '/data/thr/other' }),
    (err: unknown) => err instanceof FsError && err.code === 'EXDEV',
  );
  await w2.abort();
  assert.equal(await fs.exists('/tmp/outside'), undefined);
  assert.equal(await fs.exists('/data/thr/other'), undefined);
});
