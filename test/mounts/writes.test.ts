// Write types, TTL and hit-ratio metrics end to end: the SDK against a MiniCluster (processes) with
// s3rver as UFS. `through` reaches S3 before close returns; `async` is persisted in the background
// and survives an S3 outage plus a master and worker restart; a mount TTL frees cached copies.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { S3Server } from '../ufs/s3-server.js';

/** Deadline for state that background work brings about (heartbeats, jobs, TTL) on a loaded machine. */
const BACKGROUND_WAIT_MS = 60_000;
const MiB = 1024 * 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function s3Client(s3: S3Server): S3Client {
  return s3.client({ maxAttempts: 1 });
}

async function objectBytes(c: S3Client, key: string): Promise<Buffer | undefined> {
  try {
    const r = await c.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
    return Buffer.from(
      await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

async function exists(c: S3Client, key: string): Promise<boolean> {
  return c.send(new HeadObjectCommand({ Bucket: 'data', Key: key })).then(
    () => true,
    () => false,
  );
}

test('write types through and async, TTL on mounts, hit-ratio metrics', async (t) => {
  let s3 = await S3Server.start(['data']);
  const port = s3.port;
  const dir = s3.dir;
  t.after(() => s3.stop());
  // The restarted server below reuses `dir` and does not own it: removed here.
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let raw = s3Client(s3);
  t.after(() => raw.destroy());
  const cluster = await MiniCluster.start(t, {
    workers: 1,
    masterToml: 'heartbeat_interval = 100\nttl_checker_interval = 200',
  });
  const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
  const fs = FileSystem.create({ config, settings: { blockSizeBytes: MiB } });
  t.after(() => fs.close());
  const opts = { options: s3.options(), blockSize: MiB };

  // through: S3 holds the file when close returns; delete and rename reach S3.
  await fs.mount('s3://data/thr', undefined, { ...opts, writeType: 'through' });
  const a = randomBytes(2 * MiB + 17);
  await fs.writeFile('/data/thr/dir/a.bin', a, { parents: true });
  assert.equal(sha((await objectBytes(raw, 'thr/dir/a.bin')) ?? Buffer.alloc(0)), sha(a));
  assert.equal(sha(await fs.readFile('/data/thr/dir/a.bin')), sha(a));
  await fs.rename('/data/thr/dir/a.bin', '/data/thr/dir/b.bin');
  assert.equal(await exists(raw, 'thr/dir/a.bin'), false);
  assert.equal(sha((await objectBytes(raw, 'thr/dir/b.bin')) ?? Buffer.alloc(0)), sha(a));
  await fs.delete('/data/thr/dir/b.bin');
  assert.equal(await exists(raw, 'thr/dir/b.bin'), false);

  // cache: Strata only.
  await fs.mount('s3://data/cch', undefined, opts);
  await fs.writeFile('/data/cch/only-here.bin', randomBytes(1000), { parents: true });
  assert.equal(await exists(raw, 'cch/only-here.bin'), false);

  // async: written while S3 is down, the master and the worker restarted, S3 back: persisted.
  await fs.mount('s3://data/asy', undefined, { ...opts, writeType: 'async' });
  await s3.stop();
  raw.destroy();
  const b = randomBytes(3 * MiB + 5);
  await fs.writeFile('/data/asy/late.bin', b, { parents: true });
  assert.equal(sha(await fs.readFile('/data/asy/late.bin')), sha(b), 'readable before it is persisted');
  await cluster.restartNode(cluster.workers[0] ?? assert.fail('no worker'));
  await cluster.restartNode(cluster.masters[0] ?? assert.fail('no master'));
  s3 = await S3Server.start(['data'], { dir, port });
  raw = s3Client(s3);
  // Until its bytes are the file's: s3rver answers HEAD (and GET, with the bytes written so far)
  // as soon as an object's metadata is written, which it does before its content stream has
  // flushed. Bytes that never become the file's time out here.
  await waitFor(
    'the async file persisted to S3',
    async () => sha((await objectBytes(raw, 'asy/late.bin')) ?? Buffer.alloc(0)) === sha(b),
    BACKGROUND_WAIT_MS,
  );
  // Block locations are soft state: the restarted master learns the worker's copies from its
  // block report, which may come after the upload. Read once it has, so that the read is served
  // from the cache (the hit-ratio check below counts it).
  await waitFor(
    'the restarted master knows the cached copies of late.bin',
    async () => (await fs.stat('/data/asy/late.bin')).cachedBytes === b.length,
    BACKGROUND_WAIT_MS,
  );
  // The object reaches S3 before the master records the file as persisted (and drops its queue
  // entry): until then a read of it is not a read of a UFS-backed file, and not counted below.
  await waitFor(
    'the master recorded late.bin as persisted (its persist queue empty)',
    async () => {
      const m = await (await fetch(`http://127.0.0.1:${cluster.masters[0]?.webPort}/metrics`)).text();
      return (
        /^strata_master_persist_queued(\{[^}]*\})? 0$/m.test(m) &&
        /^strata_master_persist_running(\{[^}]*\})? 0$/m.test(m)
      );
    },
    BACKGROUND_WAIT_MS,
  );
  assert.equal(sha(await fs.readFile('/data/asy/late.bin')), sha(b));

  // TTL free: copies of a read file are dropped after the TTL; the UFS still serves it. The TTL
  // runs from the object's mtime (the CopyObject below), so it must outlast the copy, the read and
  // the cache fill on a loaded machine, or the copies are freed before the test sees them cached.
  await fs.mount('s3://data/ttl', undefined, { ...opts, ttlMs: 5000, ttlAction: 'free' });
  const c = randomBytes(MiB + 1);
  await fs.writeFile('/data/thr/seed.bin', c);
  await raw.send(
    new CopyObjectCommand({
      Bucket: 'data',
      Key: 'ttl/x.bin',
      CopySource: 'data/thr/seed.bin',
    }),
  );
  assert.equal(sha(await fs.readFile('/data/ttl/x.bin')), sha(c));
  await waitFor(
    'x.bin cached',
    async () => ((await fs.stat('/data/ttl/x.bin')).cachedBytes ?? 0) === c.length,
    BACKGROUND_WAIT_MS,
  );
  await waitFor(
    'x.bin freed by its TTL',
    async () => (await fs.stat('/data/ttl/x.bin')).cachedBytes === 0,
    BACKGROUND_WAIT_MS,
  );
  assert.equal(sha(await fs.readFile('/data/ttl/x.bin')), sha(c));

  // Hit ratio: the master counts located blocks by cache and UFS.
  const metrics = await (await fetch(`http://127.0.0.1:${cluster.masters[0]?.webPort}/metrics`)).text();
  const count = (source: string): number =>
    Number(
      new RegExp(`^strata_master_ufs_block_reads_total\\{[^}]*source="${source}"[^}]*\\} (\\d+)`, 'm').exec(
        metrics,
      )?.[1] ?? 0,
    );
  assert.ok(count('ufs') >= 2, `ufs block reads: ${count('ufs')}`);
  assert.ok(count('cache') >= 1, `cache block reads: ${count('cache')}`);
  const report = await fs.cacheReport();
  assert.equal(report.cacheHitBlocks, count('cache'));
  assert.equal(report.cacheMissBlocks, count('ufs'));
});
