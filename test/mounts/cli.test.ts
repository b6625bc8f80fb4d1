// The UFS commands end to end: the compiled `strata` CLI against a MiniCluster and a real s3rver
// (and a slow loopback origin for a job long enough to cancel): mount/umount/list with masked
// secrets, refused mounts, load with --watch/--status/--cancel, free, fs ls --cache-only, and
// report fluid-summary; exit codes and one-line errors.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { loadLine } from '../../src/cli/commands/load.js';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { runStrata } from '../helpers/process.js';
import type { RunResult } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { HttpOrigin } from '../ufs/http-origin.js';
import { S3RVER_ACCESS_KEY, S3Server } from '../ufs/s3-server.js';

/** Deadline for state that background work brings about (heartbeats, jobs, TTL) on a loaded machine. */
const BACKGROUND_WAIT_MS = 60_000;
const MiB = 1024 * 1024;

test('load progress line: bar, files, bytes, rate and ETA', () => {
  const line = loadLine(
    {
      jobId: 'j1',
      path: '/data/ds',
      state: 'running',
      totalFiles: 10,
      totalBytes: 100 * MiB,
      doneFiles: 4,
      doneBytes: 40 * MiB,
      loadedBytes: 40 * MiB,
      failedBlocks: 0,
      startedAtMs: 0,
    },
    4000,
  );
  assert.equal(
    line,
    'load /data/ds  [==========              ]   40%  4/10 files  40.0MiB/100MiB  10.0MiB/s  ETA 6.0s',
  );
});

test('strata mount, load, free, fs ls --cache-only and report fluid-summary', async (t) => {
  const s3 = await S3Server.start(['data']);
  t.after(() => s3.stop());
  const raw = s3.client();
  t.after(() => raw.destroy());
  const cluster = await MiniCluster.start(t, {
    workers: 2,
    masterToml: 'heartbeat_interval = 100',
    // The master's AWS default chain must not wait for an instance metadata service here.
    env: { AWS_EC2_METADATA_DISABLED: 'true' },
  });
  const dir = tempDir(t, 'strata-mcli-');
  const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
  const fs = FileSystem.create({ config });
  t.after(() => fs.close());
  /** Names of files under a directory tree with cached bytes (the SDK's view, to poll cheaply). */
  const cachedNames = async (path: string): Promise<string[]> => {
    const out: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for await (const e of fs.entries(d)) {
        if (e.type === 'dir') await walk(e.path);
        else if ((e.cachedBytes ?? 0) > 0) out.push(e.name);
      }
    };
    await walk(path);
    return out.sort();
  };
  const env = { ...process.env, STRATA_CONF_FILE: cluster.clientConfPath };
  const strata = (args: string[]): Promise<RunResult> =>
    runStrata(args, { env, cwd: dir, timeoutMs: 60_000 });
  const ok = async (args: string[]): Promise<RunResult> => {
    const r = await strata(args);
    assert.equal(r.code, 0, `strata ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`);
    return r;
  };
  const failsWith = async (args: string[], code: number, pattern: RegExp): Promise<RunResult> => {
    const r = await strata(args);
    assert.equal(r.code, code, `strata ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    return r;
  };
  const endpoint = `s3.endpoint_url=${s3.endpoint}`;
  const creds = (access: string, secret: string): string[] => [
    '-c',
    `s3.credentials.access=${access}`,
    '-c',
    `s3.credentials.secret=${secret}`,
  ];

  // Refused mounts: nothing is mounted, the secret never shows.
  const bad = await failsWith(
    ['mount', 's3://data/ds', '-c', endpoint, ...creds('NOPE', 'Very-Secret-1')],
    1,
    /^strata: mount: s3:\/\/data.*access key id is not known.*nothing was mounted\n$/,
  );
  assert.doesNotMatch(bad.stderr + bad.stdout, /Very-Secret-1/);
  await failsWith(
    [
      'mount',
      's3://data/ds',
      '-c',
      's3.endpoint_url=http://127.0.0.1:1',
      '-c',
      'ufs.max_attempts=1',
      ...creds(S3RVER_ACCESS_KEY, 'S3RVER'),
    ],
    1,
    /cannot reach http:\/\/127\.0\.0\.1:1.*nothing was mounted/,
  );
  await failsWith(
    ['mount', 's3://data/ds', '-c', endpoint],
    1,
    /no credentials: none in the mount options nor in the AWS default chain.*give s3\.credentials\.access/,
  );
  await failsWith(
    ['mount', 's3://data/ds', '--write-type', 'sometimes'],
    2,
    /--write-type expects cache, through, async/,
  );
  await failsWith(['mount', 's3://data/ds', '-c', 's3.endpont_url=x'], 1, /did you mean s3\.endpoint_url/);
  assert.match((await ok(['mount'])).stdout, /^no mounts/);

  // --check contacts the UFS and mounts nothing; --dry-run does neither.
  const good = ['-c', endpoint, ...creds(S3RVER_ACCESS_KEY, 'S3RVER')];
  assert.match(
    (await ok(['mount', 's3://data/ds', ...good, '--check'])).stdout,
    /reachable, credentials accepted; would mount at \/data\/ds/,
  );
  assert.match(
    (await ok(['mount', 's3://data/ds', '/elsewhere', '--dry-run'])).stdout,
    /would mount at \/elsewhere/,
  );

  const sizes = [0, 1, MiB - 1, MiB, 2 * MiB + 3];
  for (const [i, size] of sizes.entries()) {
    await raw.send(new PutObjectCommand({ Bucket: 'data', Key: `ds/f${i}.bin`, Body: randomBytes(size) }));
  }
  await raw.send(new PutObjectCommand({ Bucket: 'data', Key: `ds/sub/deep.bin`, Body: randomBytes(1000) }));
  const total = sizes.reduce((a, b) => a + b, 0) + 1000;
  assert.match(
    (await ok(['mount', 's3://data/ds', ...good, '--ttl', '7d', '--block-size', '1MB', '--replicas', '1']))
      .stdout,
    /^mounted s3:\/\/data\/ds at \/data\/ds$/m,
  );
  const list = (await ok(['mount'])).stdout;
  assert.match(list, /\/data\/ds\s+s3:\/\/data\/ds\s+cache\s+7d.*free/);
  assert.match(list, /s3\.credentials\.secret=\*\*\*/);
  assert.doesNotMatch(list, /secret=S3RVER/);
  const mounts = JSON.parse((await ok(['--json', 'mount'])).stdout) as { options: Record<string, string> }[];
  assert.equal(mounts[0]?.options['s3.credentials.secret'], '***');

  // The unified namespace lists the bucket; nothing is cached yet.
  assert.deepEqual((await ok(['fs', 'ls', '/data/ds'])).stdout.split('\n').filter(Boolean), [
    'f0.bin',
    'f1.bin',
    'f2.bin',
    'f3.bin',
    'f4.bin',
    'sub',
  ]);
  assert.deepEqual((await ok(['fs', 'ls', '--cache-only', '/data/ds'])).stdout.split('\n').filter(Boolean), [
    'sub',
  ]);
  await ok(['fs', 'cat', '/data/ds/f3.bin']);
  await waitFor(
    'f3 cached',
    async () => (await cachedNames('/data/ds')).includes('f3.bin'),
    BACKGROUND_WAIT_MS,
  );
  assert.deepEqual((await ok(['fs', 'ls', '--cache-only', '/data/ds'])).stdout.split('\n').filter(Boolean), [
    'f3.bin',
    'sub',
  ]);

  // Load the whole mount with two copies of each block, following it; then every file is cached.
  await failsWith(
    ['load', '/data/ds', '--replicas', 'two'],
    2,
    /--replicas expects an integer from 1 to 16 \(got "two"\)/,
  );
  const loaded = JSON.parse(
    (await ok(['--json', 'load', '/data/ds', '--watch', '--replicas', '2'])).stdout,
  ) as {
    jobId: string;
    state: string;
    totalFiles: number;
    doneFiles: number;
    totalBytes: number;
    doneBytes: number;
  };
  assert.equal(loaded.state, 'completed');
  assert.equal(loaded.totalFiles, sizes.length + 1);
  assert.equal(loaded.doneFiles, sizes.length + 1);
  assert.equal(loaded.totalBytes, total);
  assert.equal(loaded.doneBytes, total);
  assert.match((await ok(['load', '--status', loaded.jobId])).stdout, /state: completed/);
  assert.match((await ok(['load'])).stdout, new RegExp(`${loaded.jobId}\\s+completed`));
  const nonEmpty = ['deep.bin', 'f1.bin', 'f2.bin', 'f3.bin', 'f4.bin'];
  await waitFor(
    'everything cached',
    async () => (await cachedNames('/data/ds')).length === nonEmpty.length,
    BACKGROUND_WAIT_MS,
  );
  assert.deepEqual(await cachedNames('/data/ds'), nonEmpty);
  // --replicas 2: every block of every file has a copy on each of the two workers.
  for (const name of ['f3.bin', 'f4.bin', 'sub/deep.bin']) {
    const { blocks } = await fs.blockLocations(`/data/ds/${name}`);
    assert.ok(blocks.length > 0, name);
    for (const b of blocks) {
      const at = `${name} block at ${String(b.offset)}`;
      assert.notEqual(b.fill, true, at);
      assert.equal(new Set(b.workers.map((w) => w.workerId)).size, 2, at);
    }
  }
  const summary = JSON.parse((await ok(['report', 'fluid-summary'])).stdout) as Record<string, string>;
  assert.deepEqual(Object.keys(summary).sort(), [
    'cacheCapacity',
    'cacheHitRatio',
    'cached',
    'cachedPercentage',
    'fileNum',
    'ufsTotal',
  ]);
  assert.equal(summary.fileNum, String(sizes.length + 1));
  assert.equal(summary.cachedPercentage, '100.0%');
  assert.match(summary.cacheHitRatio ?? '', /^\d+\.\d%$/);

  // free drops the cached copies (the UFS keeps the data); a path under no mount is refused.
  assert.match((await ok(['free', '/data/ds'])).stdout, /freed \d+ file\(s\)/);
  await waitFor(
    'nothing cached',
    async () => (await cachedNames('/data/ds')).length === 0,
    BACKGROUND_WAIT_MS,
  );
  assert.doesNotMatch((await ok(['fs', 'ls', '-R', '--cache-only', '/data/ds'])).stdout, /\.bin/);
  await fs.mkdir('/plain');
  await failsWith(['free', '/plain'], 1, /^strata: free \/plain: needs a UFS mount/);

  // --read-only: reads work, every change is refused with EROFS, and the listing says so.
  const roRoot = tempDir(t, 'strata-ro-ufs-');
  writeFileSync(join(roRoot, 'kept.txt'), 'kept');
  await ok(['mount', `file://${roRoot}`, '/ro', '--read-only']);
  assert.match((await ok(['mount'])).stdout, /\/ro\s+file:\/\/\S+\s+cache\s+.*read-only/);
  assert.equal((await ok(['fs', 'cat', '/ro/kept.txt'])).stdout, 'kept');
  writeFileSync(join(dir, 'local.txt'), 'new');
  await failsWith(['fs', 'put', 'local.txt', '/ro/new.txt'], 1, /is mounted read-only at \/ro$/m);
  await failsWith(['fs', 'rm', '/ro/kept.txt'], 1, /is mounted read-only at \/ro$/m);
  assert.equal((await ok(['fs', 'cat', '/ro/kept.txt'])).stdout, 'kept');
  await ok(['umount', '/ro']);

  // A job long enough to cancel: a slow origin, 12 blocks.
  const root = tempDir(t, 'strata-slow-origin-');
  mkdirSync(join(root, 'slow'));
  writeFileSync(join(root, 'slow', 'big.bin'), randomBytes(12 * MiB));
  const origin = await HttpOrigin.start(root);
  t.after(() => origin.close());
  // Origin answers held far longer than the test: the job cannot finish before it is cancelled.
  origin.behaviour = { delayMs: 5_000 };
  await ok(['mount', `${origin.url}/slow`, '/slow', '--block-size', '1MB']);
  const job = await fs.load('/slow/big.bin');
  const cancelled = JSON.parse((await ok(['--json', 'load', '--cancel', job.jobId])).stdout) as {
    state: string;
    doneBytes: number;
  };
  assert.equal(cancelled.state, 'cancelled');
  assert.ok(cancelled.doneBytes < 12 * MiB);
  assert.equal((await fs.loadStatus(job.jobId)).state, 'cancelled');

  await fs.unmount('/slow');
  await ok(['umount', '/data/ds']);
  assert.match((await ok(['mount'])).stdout, /^no mounts/);
  await failsWith(['fs', 'ls', '/data/ds'], 1, /no such file or directory/);
});
