// Proves the master's side of mounts through its real handlers (in process, real s3rver and a temp
// directory as UFS): checked mounts (bad credentials refused, nothing mounted), the mount table
// rules, the unified namespace (lazy lookups, merged listings, refresh after the sync interval),
// read-through locations, --read-verify-ufs invalidation, and deletes/renames per write type.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { PutObjectCommand, HeadObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { FsError } from '../../src/common/errors.js';
import * as M from '../../src/protocol/master-calls.js';
import * as U from '../../src/protocol/mount-calls.js';
import { tempDir } from '../helpers/tmp.js';
import { address, openCore, tiers } from '../master/core-helpers.js';
import type { TestCore } from '../master/core-helpers.js';
import { S3Server } from '../ufs/s3-server.js';

const GiB = 1024 ** 3;
const KiB = 1024;

const TOML = `
cluster_id = "test"
[master]
heartbeat_interval = 100
worker_blacklist_interval = 30000
worker_lost_interval = 60000
worker_policy = "robin"
ufs_sync_interval = "10s"
[client]
block_size = "1MB"
`;

async function register(c: TestCore, id: string, port: number): Promise<void> {
  await c.call(M.RegisterWorker, {
    clusterId: 'test',
    address: address(id, port),
    tiers: tiers(10 * GiB),
    version: 'test',
  });
  await c.call(M.BlockReport, { workerId: id, blocks: [], last: true });
}

async function rejectsCode(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FsError, String(e));
    assert.equal(e.code, code, e.message);
    if (pattern !== undefined) assert.match(e.message, pattern);
    return true;
  });
}

function raw(s: S3Server): S3Client {
  return s.client();
}

async function setup(t: { after(fn: () => unknown): void }) {
  const s3 = await S3Server.start(['data']);
  t.after(() => s3.stop());
  const client = raw(s3);
  t.after(() => client.destroy());
  const c = await openCore(t, { toml: TOML });
  await register(c, 'w1', 7001);
  await register(c, 'w2', 7002);
  const put = async (key: string, body: Buffer): Promise<void> => {
    await client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: body }));
  };
  return { s3, client, c, put };
}

describe('mounts on the master', () => {
  test('a mount with bad credentials or an unreachable endpoint is refused and nothing is mounted', async (t) => {
    const { s3, c } = await setup(t);
    await rejectsCode(
      c.call(U.Mount, {
        uri: 's3://data/x',
        options: { ...s3.options(), 's3.credentials.access': 'WRONG', 's3.credentials.secret': 'SeCrEt-42' },
      }),
      'EACCES',
      /access key id is not known/,
    );
    await rejectsCode(
      c.call(U.Mount, {
        uri: 's3://data/x',
        options: { ...s3.options(), 's3.endpoint_url': 'http://127.0.0.1:1', 'ufs.max_attempts': '1' },
      }),
      'ECONNREFUSED',
      /cannot reach http:\/\/127\.0\.0\.1:1/,
    );
    await rejectsCode(
      c.call(U.Mount, { uri: 's3://data/x', options: { 's3.endpont_url': 'x' } }),
      'EINVAL',
      /did you mean s3\.endpoint_url/,
    );
    assert.deepEqual((await c.call(U.ListMounts, {})).mounts, []);
    await rejectsCode(c.call(M.GetStatus, { path: '/data/x' }), 'ENOENT');
  });

  test('mount table: 1:1 default path, masked secrets, no nesting or overlap, empty mount points, dry runs', async (t) => {
    const { s3, c } = await setup(t);
    const dry = await c.call(U.Mount, { uri: 's3://data/ds', options: s3.options(), dryRun: true });
    assert.equal(dry.mountId, 0);
    assert.equal(dry.path, '/data/ds');
    assert.deepEqual((await c.call(U.ListMounts, {})).mounts, [], 'a dry run mounts nothing');
    const m = await c.call(U.Mount, {
      uri: 's3://data/ds',
      options: s3.options(),
      writeType: 'through',
      ttlMs: 60_000,
    });
    assert.equal(m.path, '/data/ds');
    assert.equal(m.writeType, 'through');
    assert.equal(m.ttlAction, 'free');
    const listed = (await c.call(U.ListMounts, {})).mounts;
    assert.equal(listed.length, 1);
    assert.equal(listed[0]?.options['s3.credentials.secret'], '***');
    assert.equal(listed[0]?.options['s3.credentials.access'], '***');
    assert.equal(listed[0]?.options['s3.endpoint_url'], s3.endpoint);
    assert.equal((await c.call(M.GetStatus, { path: '/data/ds' })).type, 'dir');
    await rejectsCode(
      c.call(U.Mount, { uri: 's3://data/other', path: '/data/ds/inner', options: s3.options() }),
      'EINVAL',
      /cannot nest/,
    );
    await rejectsCode(
      c.call(U.Mount, { uri: 's3://data/other', path: '/data', options: s3.options() }),
      'EINVAL',
      /cannot nest/,
    );
    await rejectsCode(
      c.call(U.Mount, { uri: 's3://data/ds/sub', path: '/elsewhere', options: s3.options() }),
      'EINVAL',
      /overlaps/,
    );
    await rejectsCode(
      c.call(U.Mount, { uri: 's3://data', path: '/elsewhere', options: s3.options() }),
      'EINVAL',
      /overlaps/,
    );
    await c.call(M.Mkdir, { path: '/busy' });
    await c.call(M.Create, { path: '/busy/f' });
    await rejectsCode(
      c.call(U.Mount, { uri: 's3://data/z', path: '/busy', options: s3.options() }),
      'ENOTEMPTY',
    );
    await rejectsCode(
      c.call(U.Mount, { uri: 's3://data/z', path: '/', options: s3.options() }),
      'EINVAL',
      /cannot mount at "\/"/,
    );
    await rejectsCode(c.call(M.Delete, { path: '/data', recursive: true }), 'EBUSY', /unmount it first/);
    await c.call(U.Unmount, { path: '/data/ds' });
    assert.deepEqual((await c.call(U.ListMounts, {})).mounts, []);
    await rejectsCode(c.call(U.Unmount, { path: '/data/ds' }), 'EINVAL', /not a mount point/);
  });

  test('unified namespace: lazy lookups, merged listings, and a refresh after the sync interval', async (t) => {
    const { s3, c, put, client } = await setup(t);
    await put('ds/a.bin', randomBytes(100));
    await put('ds/sub/b.bin', randomBytes(3 * 64 * KiB + 1));
    await c.call(U.Mount, { uri: 's3://data/ds', path: '/mnt', options: s3.options(), blockSize: 64 * KiB });
    const b = await c.call(M.GetStatus, { path: '/mnt/sub/b.bin' });
    assert.equal(b.type, 'file');
    assert.equal(b.size, 3 * 64 * KiB + 1);
    assert.equal(b.ufsPath, 's3://data/ds/sub/b.bin');
    assert.equal(b.cachedBytes, 0);
    // A file written through Strata (cache mount: it stays in Strata) beside the UFS entries.
    const created = await c.call(M.Create, { path: '/mnt/local.txt' });
    await c.call(M.Complete, { fileId: created.status.id, leaseId: created.leaseId, blocks: [], length: 0 });
    const names = (await c.call(M.List, { path: '/mnt' })).entries.map((e) => `${e.name}:${e.type}`).sort();
    assert.deepEqual(names, ['a.bin:file', 'local.txt:file', 'sub:dir']);
    await rejectsCode(c.call(M.GetStatus, { path: '/mnt/nope' }), 'ENOENT');
    // Changes in the UFS show after the sync interval, not before.
    await put('ds/new.bin', randomBytes(10));
    await client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'ds/a.bin' }));
    const before = (await c.call(M.List, { path: '/mnt' })).entries.map((e) => e.name).sort();
    assert.deepEqual(before, ['a.bin', 'local.txt', 'sub']);
    c.clock.now += 11_000;
    const after = (await c.call(M.List, { path: '/mnt' })).entries.map((e) => e.name).sort();
    assert.deepEqual(
      after,
      ['local.txt', 'new.bin', 'sub'],
      'new objects appear, deleted ones leave, Strata files stay',
    );
  });

  test('read-through locations: blocks around the boundaries, one assigned worker per block, UFS sources', async (t) => {
    const { s3, c, put } = await setup(t);
    const size = 2 * 64 * KiB + 1;
    await put('f/x.bin', randomBytes(size));
    await c.call(U.Mount, { uri: 's3://data/f', path: '/f', options: s3.options(), blockSize: 64 * KiB });
    const loc = await c.call(M.GetBlockLocations, { path: '/f/x.bin' });
    assert.deepEqual(
      loc.blocks.map((b) => [b.offset, b.length]),
      [
        [0, 64 * KiB],
        [64 * KiB, 64 * KiB],
        [128 * KiB, 1],
      ],
    );
    for (const b of loc.blocks) {
      assert.equal(b.workers.length, 1, 'one worker assigned to fill');
      assert.equal(b.ufs?.ufsPath, '/x.bin');
      assert.equal(b.ufs?.objectOffset, b.offset);
      assert.equal(b.ufs?.length, b.length);
      assert.equal(b.ufs?.validator.size, size);
    }
    const again = await c.call(M.GetBlockLocations, { path: '/f/x.bin', offset: 64 * KiB, length: 1 });
    assert.equal(again.blocks.length, 1, 'a range touches only its blocks');
    assert.equal(
      again.blocks[0]?.workers[0]?.workerId,
      loc.blocks[1]?.workers[0]?.workerId,
      'same worker while the fill runs',
    );
    const report = await c.call(U.GetCacheReport, {});
    assert.equal(report.cacheMissBlocks, 4);
    assert.equal(report.ufsTotalBytes, size);
  });

  test('--read-verify-ufs: a changed object drops the cached entry and its blocks', async (t) => {
    const { s3, c, put } = await setup(t);
    await put('v/x.bin', randomBytes(1000));
    await c.call(U.Mount, { uri: 's3://data/v', path: '/v', options: s3.options(), readVerifyUfs: true });
    const first = await c.call(M.GetBlockLocations, { path: '/v/x.bin' });
    const same = await c.call(M.GetBlockLocations, { path: '/v/x.bin' });
    assert.equal(same.blocks[0]?.blockId, first.blocks[0]?.blockId, 'unchanged: same blocks');
    await new Promise((r) => setTimeout(r, 1100)); // s3rver's mtimes have one-second resolution
    await put('v/x.bin', randomBytes(2000));
    const changed = await c.call(M.GetBlockLocations, { path: '/v/x.bin' });
    assert.equal(changed.status.size, 2000);
    assert.notEqual(
      changed.blocks[0]?.blockId,
      first.blocks[0]?.blockId,
      'a new block: the old copy is invalid',
    );
    assert.equal(changed.blocks[0]?.ufs?.validator.size, 2000);
  });

  test('deletes and renames reach the UFS for through mounts, never for cache mounts', async (t) => {
    const { s3, c, put, client } = await setup(t);
    const exists = async (key: string): Promise<boolean> =>
      client.send(new HeadObjectCommand({ Bucket: 'data', Key: key })).then(
        () => true,
        () => false,
      );
    await put('c/keep.bin', randomBytes(10));
    await put('t/gone.bin', randomBytes(10));
    await put('t/move.bin', randomBytes(10));
    await c.call(U.Mount, { uri: 's3://data/c', path: '/c', options: s3.options() });
    await c.call(U.Mount, { uri: 's3://data/t', path: '/t', options: s3.options(), writeType: 'through' });
    await c.call(M.Delete, { path: '/c/keep.bin' });
    assert.ok(await exists('c/keep.bin'), 'cache mount: the UFS object stays');
    await rejectsCode(
      c.call(M.Rename, { src: '/c/keep.bin', dst: '/c/k2.bin' }),
      'EPERM',
      /write type cache/,
    );
    await c.call(M.Delete, { path: '/t/gone.bin' });
    assert.ok(!(await exists('t/gone.bin')), 'through mount: deleted in the UFS');
    await c.call(M.Rename, { src: '/t/move.bin', dst: '/t/moved.bin' });
    assert.ok(
      !(await exists('t/move.bin')) && (await exists('t/moved.bin')),
      'through mount: renamed in the UFS',
    );
    assert.equal((await c.call(M.GetStatus, { path: '/t/moved.bin' })).size, 10);
    await rejectsCode(c.call(M.Rename, { src: '/t/moved.bin', dst: '/c/x.bin' }), 'EXDEV');
  });

  test('file:// mounts: lookups, listings and unmount leave the directory untouched', async (t) => {
    const c = await openCore(t, { toml: TOML });
    const dir = tempDir(t, 'strata-mount-local-');
    mkdirSync(join(dir, 'd'), { recursive: true });
    writeFileSync(join(dir, 'd', 'f.txt'), 'hello');
    await c.call(U.Mount, { uri: `file://${dir}`, path: '/local', options: {} });
    const names = (await c.call(M.List, { path: '/local/d' })).entries.map((e) => e.name);
    assert.deepEqual(names, ['f.txt']);
    assert.equal((await c.call(M.GetStatus, { path: '/local/d/f.txt' })).size, 5);
    await c.call(U.Unmount, { path: '/local' });
    await rejectsCode(c.call(M.GetStatus, { path: '/local' }), 'ENOENT');
    assert.ok(existsSync(join(dir, 'd', 'f.txt')), 'unmount never touches the UFS');
    rmSync(join(dir, 'd'), { recursive: true });
  });
});
