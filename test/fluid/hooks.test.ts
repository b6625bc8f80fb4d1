// Proves Fluid's CacheRuntime hooks: the pure mapping (Fluid options → mount options, secrets from
// files, the mount/unmount plan, DataLoad's environment), then the compiled CLI against a two-worker
// MiniCluster with an s3rver and a file:// UFS: mount-ufs (exact stdout, idempotent, removal,
// readOnly mounts refusing changes with EROFS), report-summary, dataload with per-path replicas.
import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { ConfigError, FsError } from '../../src/common/errors.js';
import {
  dataloadTarget,
  datasetMasterEndpoints,
  planMountSync,
  wantedMounts,
} from '../../src/fluid/index.js';
import type { FluidMount } from '../../src/fluid/index.js';
import type { MountInfo } from '../../src/protocol/ufs-types.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { runStrata } from '../helpers/process.js';
import type { RunResult } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, S3Server } from '../ufs/s3-server.js';
import { assertProblem } from './helpers.js';

/** Deadline for a load job on a loaded machine. */
const BACKGROUND_WAIT_MS = 60_000;

function fluidMount(m: Partial<FluidMount> & { mountPoint: string }): FluidMount {
  return { options: {}, encryptOptions: {}, ...m };
}

test('wantedMounts: Fluid option names, secrets from files, native schemes skipped', () => {
  const secrets: Record<string, string> = { '/s/ak': 'AK', '/s/sk': 'SK' };
  const read = (p: string): string => {
    const v = secrets[p];
    if (v === undefined) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
    return v;
  };
  const got = wantedMounts(
    [
      fluidMount({
        mountPoint: 's3://test',
        name: 'minio',
        path: '/minio',
        options: { endpoint_url: 'http://minio:9000', region_name: 'us-east-1', 'ufs.max_attempts': '2' },
        encryptOptions: { access: '/s/ak', secret: '/s/sk' },
      }),
      fluidMount({ mountPoint: 'local:///mnt/x', name: 'x' }),
      fluidMount({ mountPoint: 'pvc://claim', name: 'y' }),
      fluidMount({ mountPoint: 'file:///srv/data', name: 'data', readOnly: true }),
    ],
    read,
    'runtime.json',
  );
  assert.deepEqual(got, [
    {
      uri: 's3://test',
      path: '/minio',
      options: {
        's3.endpoint_url': 'http://minio:9000',
        's3.region_name': 'us-east-1',
        'ufs.max_attempts': '2',
        's3.credentials.access': 'AK',
        's3.credentials.secret': 'SK',
      },
      readOnly: false,
    },
    { uri: 'file:///srv/data', path: '/data', options: {}, readOnly: true },
  ]);
  assertProblem(
    () =>
      wantedMounts(
        [fluidMount({ mountPoint: 's3://b', name: 'b', encryptOptions: { access: '/nope' } })],
        read,
        'r',
      ),
    'mounts[0].encryptOptions.access',
    /cannot read the secret file \(ENOENT\)/,
  );
  assertProblem(
    () =>
      wantedMounts(
        [
          fluidMount({ mountPoint: 'file:///a', path: '/d' }),
          fluidMount({ mountPoint: 'file:///b', path: '/d' }),
        ],
        read,
        'r',
      ),
    'mounts[1].path',
    /mounts\[0\] is already mounted there/,
  );
});

test('planMountSync: keep the same, remount the changed, unmount the unlisted', () => {
  const info = (
    path: string,
    uri: string,
    options: Record<string, string>,
    mountReadOnly?: boolean,
  ): MountInfo =>
    ({
      path,
      uri,
      options,
      ...(mountReadOnly === undefined ? {} : { mountReadOnly }),
    }) as unknown as MountInfo;
  const sync = planMountSync(
    [
      {
        uri: 's3://a',
        path: '/a',
        options: { 's3.endpoint_url': 'http://e', 's3.credentials.secret': 'new' },
        readOnly: false,
      },
      { uri: 'file:///b2', path: '/b', options: {}, readOnly: false },
      { uri: 'file:///c', path: '/c', options: {}, readOnly: false },
      { uri: 'file:///d', path: '/d', options: {}, readOnly: true },
      { uri: 'file:///e', path: '/e', options: {}, readOnly: true },
    ],
    [
      info('/a', 's3://a', { 's3.endpoint_url': 'http://e', 's3.credentials.secret': '***' }),
      info('/b', 'file:///b', {}),
      info('/old', 'file:///old', {}),
      // readOnly turned on: mounted again; already read-only: kept.
      info('/d', 'file:///d', {}, false),
      info('/e', 'file:///e', {}, true),
    ],
  );
  assert.deepEqual(
    sync.keep.map((w) => w.path),
    ['/a', '/e'],
  );
  assert.deepEqual(
    sync.mount.map((w) => w.path),
    ['/b', '/c', '/d'],
  );
  assert.deepEqual(sync.unmount, ['/b', '/d', '/old']);
});

test('dataloadTarget and datasetMasterEndpoints', () => {
  assert.deepEqual(dataloadTarget({}), { paths: [{ path: '/', replicas: 1 }] });
  // One count per path, in order, as Fluid writes them; one count for all is accepted too.
  assert.deepEqual(
    dataloadTarget({ FLUID_DATALOAD_DATA_PATH: '/a:/b', FLUID_DATALOAD_PATH_REPLICAS: '1:2' }),
    {
      paths: [
        { path: '/a', replicas: 1 },
        { path: '/b', replicas: 2 },
      ],
    },
  );
  assert.deepEqual(dataloadTarget({ FLUID_DATALOAD_DATA_PATH: '/a:/b', FLUID_DATALOAD_PATH_REPLICAS: '3' }), {
    paths: [
      { path: '/a', replicas: 3 },
      { path: '/b', replicas: 3 },
    ],
  });
  assertProblem(
    () => dataloadTarget({ FLUID_DATALOAD_DATA_PATH: '/a:/b:/c', FLUID_DATALOAD_PATH_REPLICAS: '1:2' }),
    'FLUID_DATALOAD_PATH_REPLICAS',
    /2 replica counts for 3 path\(s\)/,
  );
  assertProblem(
    () => dataloadTarget({ FLUID_DATALOAD_PATH_REPLICAS: '17' }),
    'FLUID_DATALOAD_PATH_REPLICAS',
    /integers from 1 to 16/,
  );
  assertProblem(
    () => dataloadTarget({ FLUID_DATALOAD_PATH_REPLICAS: '1::2' }),
    'FLUID_DATALOAD_PATH_REPLICAS',
    /integers from 1 to 16/,
  );
  assertProblem(
    () => dataloadTarget({ FLUID_DATALOAD_DATA_PATH: 'rel' }),
    'FLUID_DATALOAD_DATA_PATH',
    /absolute paths/,
  );
  assert.throws(() => dataloadTarget({ FLUID_DATALOAD_PATH_REPLICAS: 'x' }), ConfigError);
  assert.equal(
    datasetMasterEndpoints('strata-demo', 2, 8995),
    'strata-demo-master-0.svc-strata-demo-master:8995,strata-demo-master-1.svc-strata-demo-master:8995',
  );
});

test('mount-ufs, report-summary and dataload against a MiniCluster, s3rver and file:// UFS', async (t) => {
  const s3 = await S3Server.start(['test']);
  t.after(() => s3.stop());
  const cluster = await MiniCluster.start(t, {
    workers: 2,
    masterToml: 'heartbeat_interval = 100',
    env: { AWS_EC2_METADATA_DISABLED: 'true' },
  });
  const dir = tempDir(t, 'strata-fluid-hooks-');
  const ufsDir = join(dir, 'ufs');
  mkdirSync(join(ufsDir, 'sub'), { recursive: true });
  const payload = Buffer.alloc(300_000, 7);
  writeFileSync(join(ufsDir, 'a.bin'), payload);
  writeFileSync(join(ufsDir, 'sub', 'b.txt'), 'hello fluid\n');
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'access-key'), `${S3RVER_ACCESS_KEY}\n`);
  writeFileSync(join(dir, 'secrets', 'secret-key'), S3RVER_SECRET_KEY);

  const runtimeJson = join(dir, 'runtime.json');
  const writeRuntime = (mounts: unknown[]): void =>
    writeFileSync(
      runtimeJson,
      JSON.stringify({
        mounts,
        accessModes: ['ReadWriteMany'],
        master: {
          enabled: true,
          name: 'strata-demo-master',
          options: {},
          replicas: 1,
          service: { name: 'svc' },
        },
      }),
    );
  const s3Mount = {
    mountPoint: 's3://test',
    name: 'minio',
    path: '/minio',
    options: { endpoint_url: s3.endpoint, region_name: 'us-east-1' },
    encryptOptions: {
      access: join(dir, 'secrets', 'access-key'),
      secret: join(dir, 'secrets', 'secret-key'),
    },
  };
  const fileMount = { mountPoint: `file://${ufsDir}`, name: 'local-data', path: '/local-data' };
  const nativeMount = { mountPoint: 'local:///mnt/host', name: 'host' };

  const env = {
    ...process.env,
    STRATA_CONF_FILE: cluster.clientConfPath,
    FLUID_RUNTIME_CONFIG_PATH: runtimeJson,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const strata = (args: string[], extraEnv: Record<string, string> = {}): Promise<RunResult> =>
    runStrata(args, { env: { ...env, ...extraEnv }, cwd: dir, timeoutMs: 60_000 });
  const ok = async (args: string[], extraEnv: Record<string, string> = {}): Promise<RunResult> => {
    const r = await strata(args, extraEnv);
    assert.equal(r.code, 0, `strata ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`);
    return r;
  };

  const fs = FileSystem.create({ config: loadConfig({ path: cluster.clientConfPath, env: {} }).config });
  t.after(() => fs.close());

  // First call mounts both UFS mounts; stdout is exactly Fluid's answer, native schemes excluded.
  writeRuntime([s3Mount, nativeMount, fileMount]);
  const first = await ok(['fluid', 'mount-ufs']);
  assert.equal(first.stdout, '{"mounted":["/minio","/local-data"]}\n');
  assert.doesNotMatch(first.stdout + first.stderr, new RegExp(S3RVER_SECRET_KEY + '[^_]'));
  const mounts = await fs.listMounts();
  assert.deepEqual(mounts.map((m) => m.path).sort(), ['/local-data', '/minio']);
  const minio = mounts.find((m) => m.path === '/minio');
  assert.equal(minio?.options['s3.endpoint_url'], s3.endpoint);
  assert.equal(minio?.options['s3.credentials.access'], '***');

  // Again: idempotent, nothing unmounted or mounted.
  const again = await ok(['fluid', 'mount-ufs']);
  assert.equal(again.stdout, first.stdout);
  assert.doesNotMatch(again.stderr, /mounted|unmounted/);

  // A wrong secret: one line per refused mount on stderr, nothing on stdout, exit 1.
  writeFileSync(join(dir, 'secrets', 'bad-key'), 'NOPE');
  writeRuntime([
    {
      ...s3Mount,
      path: '/minio2',
      encryptOptions: { ...s3Mount.encryptOptions, access: join(dir, 'secrets', 'bad-key') },
    },
    fileMount,
  ]);
  const refused = await strata(['fluid', 'mount-ufs']);
  assert.equal(refused.code, 1, refused.stderr);
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, /s3:\/\/test: .*access key id is not known/);
  assert.match(refused.stderr, /1 of 2 mount\(s\) refused/);
  // /minio was no longer listed, so that call unmounted it already.
  assert.match(refused.stderr, /unmounted \/minio\n/);

  // The Dataset drops the S3 mount for good: the file mount stays, nothing else changes.
  writeRuntime([fileMount]);
  const dropped = await ok(['fluid', 'mount-ufs']);
  assert.equal(dropped.stdout, '{"mounted":["/local-data"]}\n');
  assert.equal(dropped.stderr, '');
  assert.deepEqual(
    (await fs.listMounts()).map((m) => m.path),
    ['/local-data'],
  );

  // A missing runtime.json is a one-line usage error.
  const missing = await strata(['fluid', 'mount-ufs', '--config', join(dir, 'nope.json')]);
  assert.equal(missing.code, 2, missing.stderr);
  assert.equal(missing.stdout, '');

  // DataLoad through STRATA_MASTER_ENDPOINTS (the Job has no runtime.json and no config file),
  // with the DataLoad's replicas: every block on both workers.
  const load = await ok(['fluid', 'dataload'], {
    STRATA_CONF_FILE: join(dir, 'no-such.toml'),
    STRATA_MASTER_ENDPOINTS: cluster.masterAddrs,
    FLUID_DATALOAD_DATA_PATH: '/local-data',
    FLUID_DATALOAD_PATH_REPLICAS: '2',
  });
  assert.equal(load.stdout, '');
  assert.match(
    load.stderr,
    /\/local-data: job \S+ completed: 2\/2 files, 300012 of 300012 bytes cached \(2 copies of each block\)/,
  );
  // The job says completed when its blocks are stored; the master learns of them by heartbeat.
  const workerIds = async (path: string): Promise<string[][]> =>
    (await fs.blockLocations(path)).blocks.map((b) =>
      b.fill === true ? [] : b.workers.map((w) => w.workerId).sort(),
    );
  for (const path of ['/local-data/a.bin', '/local-data/sub/b.txt']) {
    await waitFor(
      `${path} on both workers`,
      async () => {
        const blocks = await workerIds(path);
        return blocks.length > 0 && blocks.every((ids) => new Set(ids).size === 2);
      },
      BACKGROUND_WAIT_MS,
    );
    // The file's replication was raised with it, so the block manager keeps both copies.
    assert.equal((await fs.stat(path)).replicas, 2);
  }
  assert.equal((await fs.stat('/local-data/a.bin')).cachedBytes, payload.length);

  // A Job that has the runtime.json Fluid names in FLUID_RUNTIME_CONFIG_PATH finds that Dataset's
  // masters there (the legacy shape's pod addresses here: the pods' DNS names do not resolve).
  const [masterHost, masterPort] = cluster.masterAddrs.split(',')[0]?.split(':') ?? [];
  const legacyJson = join(dir, 'legacy-config.json');
  writeFileSync(
    legacyJson,
    JSON.stringify({
      mounts: [fileMount],
      topology: {
        master: {
          podConfigs: [{ podName: 'm-0', podIP: masterHost, ports: { rpc: Number(masterPort) } }],
          replicas: 1,
        },
      },
    }),
  );
  const viaRuntime = await ok(['fluid', 'dataload'], {
    STRATA_CONF_FILE: join(dir, 'no-such.toml'),
    FLUID_RUNTIME_CONFIG_PATH: legacyJson,
    FLUID_DATALOAD_DATA_PATH: '/local-data/sub',
  });
  assert.match(viaRuntime.stderr, /\/local-data\/sub: job \S+ completed: 1\/1 files/);

  // More copies than workers: the Job fails at once and says how many workers there are.
  const tooMany = await strata(['fluid', 'dataload'], {
    STRATA_MASTER_ENDPOINTS: cluster.masterAddrs,
    FLUID_DATALOAD_DATA_PATH: '/local-data/sub',
    FLUID_DATALOAD_PATH_REPLICAS: '3',
  });
  assert.equal(tooMany.code, 1, tooMany.stderr);
  assert.match(tooMany.stderr, /3 copies of each block asked, but 2 live worker\(s\) can hold one/);

  // A path outside every mount fails the Job with exit 1.
  const badLoad = await strata(['fluid', 'dataload'], {
    STRATA_MASTER_ENDPOINTS: cluster.masterAddrs,
    FLUID_DATALOAD_DATA_PATH: '/not-mounted',
  });
  assert.notEqual(badLoad.code, 0);
  assert.equal(badLoad.stdout, '');

  // The summary: Fluid's keys, the loaded bytes counted as cached.
  const summary = JSON.parse((await ok(['fluid', 'report-summary'])).stdout) as Record<string, string>;
  assert.deepEqual(Object.keys(summary).sort(), [
    'cacheCapacity',
    'cacheHitRatio',
    'cached',
    'cachedPercentage',
    'fileNum',
    'ufsTotal',
  ]);
  assert.equal(summary.fileNum, '2');
  assert.equal(summary.cachedPercentage, '100.0%');

  // The Dataset marks the mount readOnly: mount-ufs mounts it again, read-only; reads and loads
  // work, every change under it fails with EROFS naming the mount.
  writeRuntime([{ ...fileMount, readOnly: true }]);
  const ro = await ok(['fluid', 'mount-ufs']);
  assert.equal(ro.stdout, '{"mounted":["/local-data"]}\n');
  assert.match(ro.stderr, /unmounted \/local-data\n.*mounted file:\/\/\S+ at \/local-data \(read-only\)/s);
  assert.equal((await fs.listMounts())[0]?.mountReadOnly, true);
  assert.deepEqual(await fs.readFile('/local-data/a.bin'), payload);
  const erofs = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    await assert.rejects(fn, (err: unknown) => {
      assert.ok(err instanceof FsError, `${what}: ${String(err)}`);
      assert.equal(err.code, 'EROFS', `${what}: ${err.message}`);
      assert.match(err.message, /is mounted read-only at \/local-data/);
      return true;
    });
  };
  await erofs('create', () => fs.writeFile('/local-data/new.txt', 'x'));
  await erofs('mkdir', () => fs.mkdir('/local-data/newdir'));
  await erofs('delete', () => fs.delete('/local-data/a.bin'));
  await erofs('rename', () => fs.rename('/local-data/a.bin', '/local-data/c.bin'));
  await erofs('rename onto', async () => {
    await fs.writeFile('/outside.txt', 'x');
    await fs.rename('/outside.txt', '/local-data/outside.txt');
  });
  await erofs('chmod', () => fs.setattr('/local-data/a.bin', { mode: 0o600 }));
  await erofs('symlink', () => fs.symlink('/x', '/local-data/link'));
  assert.equal((await fs.stat('/local-data/a.bin')).size, payload.length);
  const roLoad = await ok(['fluid', 'dataload'], {
    STRATA_MASTER_ENDPOINTS: cluster.masterAddrs,
    FLUID_DATALOAD_DATA_PATH: '/local-data',
  });
  assert.match(roLoad.stderr, /\/local-data: job \S+ completed: 2\/2 files/);

  // And back: writable again.
  writeRuntime([fileMount]);
  assert.match((await ok(['fluid', 'mount-ufs'])).stderr, /mounted file:\/\/\S+ at \/local-data\n/);
  await fs.writeFile('/local-data/new.txt', 'x');
});
