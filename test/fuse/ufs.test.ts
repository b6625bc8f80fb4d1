// Mounted UFS data through a real FUSE mount (root, MiniCluster + `strata fuse`, s3rver and a
// loopback HTTP origin): ls shows the bucket's objects before anything is cached, cat/cmp/sha256
// of files that span blocks read through from S3, a range read with dd, a write through the
// mount that lands in the bucket (`through`), and the second read served from the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { requireTools } from '../helpers/ci.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { HttpOrigin } from '../ufs/http-origin.js';
import { S3Server } from '../ufs/s3-server.js';
import { FUSE_TOOLS, TEST_CLUSTER, mountFuse, shOk } from './fuse-helper.js';

const skip = requireTools(...FUSE_TOOLS, 'dd', 'cmp', 'sha256sum');
const MiB = 1024 * 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('UFS mounts read and written through the FUSE mount', { skip, timeout: 180_000 }, async (t) => {
  const s3 = await S3Server.start(['data']);
  t.after(() => s3.stop());
  const raw = s3.client();
  t.after(() => raw.destroy());
  // 4 MiB blocks (TEST_CLUSTER): the big object spans three blocks and ends mid-block.
  const big = randomBytes(9 * MiB + 12_345);
  const small = Buffer.from('hello from S3\n');
  await raw.send(new PutObjectCommand({ Bucket: 'data', Key: 'ds/big.bin', Body: big }));
  await raw.send(new PutObjectCommand({ Bucket: 'data', Key: 'ds/sub/small.txt', Body: small }));

  const site = tempDir(t, 'strata-fuse-http-');
  mkdirSync(join(site, 'pub'));
  const page = randomBytes(5 * MiB + 1);
  writeFileSync(join(site, 'pub', 'page.bin'), page);
  const origin = await HttpOrigin.start(site);
  t.after(() => origin.close());

  const cluster = await MiniCluster.start(t, {
    ...TEST_CLUSTER,
    env: { AWS_EC2_METADATA_DISABLED: 'true' },
  });
  const fs = FileSystem.create({ config: loadConfig({ path: cluster.clientConfPath, env: {} }).config });
  t.after(() => fs.close());
  await fs.mount('s3://data/ds', undefined, { options: s3.options(), writeType: 'through' });
  await fs.mount(`${origin.url}/pub`, '/web', { options: {} });
  const m = await mountFuse(t, cluster);
  const cwd = m.mnt;

  // Listing before anything is cached: the bucket's objects with their sizes.
  assert.equal(await shOk('ls data/ds', cwd), 'big.bin\nsub\n');
  assert.equal(
    await shOk('stat -c "%s %F" data/ds/big.bin data/ds/sub', cwd),
    `${big.length} regular file\n4096 directory\n`,
  );
  assert.equal(await shOk('cat data/ds/sub/small.txt', cwd), small.toString());
  assert.equal((await shOk('sha256sum data/ds/big.bin', cwd)).split(' ')[0], sha(big));
  // A range across the first block boundary.
  const range = await shOk('dd if=data/ds/big.bin bs=1M skip=3 count=2 status=none | sha256sum', cwd);
  assert.equal(range.split(' ')[0], sha(big.subarray(3 * MiB, 5 * MiB)));
  await waitFor(
    'big.bin cached after the read',
    async () => (await fs.stat('/data/ds/big.bin')).cachedBytes === big.length,
    60_000,
  );
  assert.equal((await shOk('sha256sum data/ds/big.bin', cwd)).split(' ')[0], sha(big), 'warm read');

  // HTTP origin: listed through its index page, read through.
  assert.equal(await shOk('ls web', cwd), 'page.bin\n');
  assert.equal((await shOk('sha256sum web/page.bin', cwd)).split(' ')[0], sha(page));

  // A write through the mount reaches the bucket (write type `through`).
  const out = randomBytes(4 * MiB + 7);
  // Asynchronously: s3rver runs in this process, and the master asks it about the new name while
  // the kernel waits on the mount (a synchronous write here would stall both for the deadline).
  await writeFile(join(cwd, 'data', 'ds', 'written.bin'), out);
  const got = await raw.send(new GetObjectCommand({ Bucket: 'data', Key: 'ds/written.bin' }));
  const body = Buffer.from(
    await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
  assert.equal(sha(body), sha(out));
  assert.equal(await shOk('ls data/ds', cwd), 'big.bin\nsub\nwritten.bin\n');
  assert.equal((await shOk('sha256sum data/ds/written.bin', cwd)).split(' ')[0], sha(out));
});
