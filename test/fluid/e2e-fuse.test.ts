// Seed 000's acceptance story without Kubernetes, as root: the CacheRuntime master-0, two workers
// (tier directories of their own) and the client (FUSE at FLUID_RUNTIME_MOUNT_PATH), and a
// ThinRuntime FUSE pod, as processes with Fluid's environment and JSON; then mount-ufs against an
// s3rver, dataload with 2 replicas (a copy of every block in each worker's tier directories),
// report-summary, the seed's write/read/cross-access/dd 10 MB checks, and read-only mounts on
// both sides (a Dataset mount's readOnly in the cluster, `ro` on a ThinRuntime remount).
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { parse } from 'yaml';
import { formatBytes } from '../../src/common/units.js';
import { writeFileAtomic } from '../../src/fluid/index.js';
import { mountAt } from '../../src/fuse/mount-point.js';
import { requireTools } from '../helpers/ci.js';
import { freePorts } from '../helpers/ports.js';
import { run, runStrata, startStrata } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { S3Server } from '../ufs/s3-server.js';
import { FUSE_TOOLS, forceUnmount, shOk, waitMounted } from '../fuse/fuse-helper.js';
import { startFluidPods } from './fluid-pods.js';
import { REPO_ROOT } from './helpers.js';

const skip = requireTools(...FUSE_TOOLS, 'dd');

/** Replication and block reports reach the master by heartbeat: bounded, on a loaded machine. */
const BACKGROUND_WAIT_MS = 60_000;

/** A mount point outside every temp dir removed by an earlier `after` hook, unmounted whatever happens. */
function mountPoint(t: Pick<TestContext, 'after'>, proc: () => Proc | undefined): string {
  const mnt = mkdtempSync(join(tmpdir(), 'strata-fluid-mnt-'));
  t.after(async () => {
    await proc()
      ?.stop('SIGTERM', 15_000)
      .catch(() => undefined);
    if ((await mountAt(mnt)) !== undefined) forceUnmount(mnt);
    if ((await mountAt(mnt)) === undefined) rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

/** The client container's readiness probe in the shipped CacheRuntimeClass. */
function clientReadinessProbe(): { command: string[]; timeoutSeconds: number } {
  const cls = parse(
    readFileSync(
      join(REPO_ROOT, 'deploy', 'fluid', 'cache-runtime', 'strata-cache-runtime-class.yaml'),
      'utf8',
    ),
  ) as {
    topology: {
      client: {
        template: {
          spec: {
            containers: { readinessProbe?: { exec?: { command: string[] }; timeoutSeconds?: number } }[];
          };
        };
      };
    };
  };
  const p = cls.topology.client.template.spec.containers[0]?.readinessProbe;
  if (p?.exec === undefined) throw new Error('the client has no exec readiness probe');
  // Kubernetes' default probe timeout is 1 s.
  return { command: p.exec.command, timeoutSeconds: p.timeoutSeconds ?? 1 };
}

/** Block files (`<id>.blk`) under a worker's volumes: id → bytes on disk. */
function blockFiles(dirs: readonly string[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of dirs) {
    for (const name of readdirSync(d, { recursive: true, encoding: 'utf8' })) {
      const m = /(?:^|\/)(\d+)\.blk$/.exec(name);
      if (m?.[1] !== undefined) out.set(Number(m[1]), statSync(join(d, name)).size);
    }
  }
  return out;
}

test(
  'seed 000 through the Fluid entrypoints: two workers, S3, dataload with replicas, client and ThinRuntime mounts',
  { skip, timeout: 240_000 },
  async (t) => {
    const s3 = await S3Server.start(['test']);
    t.after(() => s3.stop());
    const object = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < object.length; i++) object[i] = (i * 31 + 7) & 0xff;
    const raw = s3.client();
    t.after(() => raw.destroy());
    await raw.send(new PutObjectCommand({ Bucket: 'test', Key: 'obj.bin', Body: object }));

    const [clientWeb, thinWeb] = await freePorts(2);
    if (clientWeb === undefined || thinWeb === undefined) throw new Error('no free ports');
    const pods = await startFluidPods(t, { clientWebPort: clientWeb, s3Endpoint: s3.endpoint, workers: 2 });
    const { fs } = pods;

    // Both workers registered, each with the tiers of its own volumes.
    const workers = await fs.listWorkers();
    assert.equal(workers.length, 2);
    for (const [i, dirs] of pods.workerTierDirs.entries()) {
      const w = workers.find((x) => x.tiers.some((tier) => dirs.includes(tier.dir)));
      assert.ok(w !== undefined, `a worker serves worker-${i}'s volumes`);
      assert.deepEqual(w.tiers.map((tier) => tier.dir).sort(), [...dirs].sort());
    }

    // mountUFS as Fluid execs it in master-0.
    const hook = await runStrata(['fluid', 'mount-ufs'], { env: pods.podEnv('master'), timeoutMs: 60_000 });
    assert.equal(hook.stdout, '{"mounted":["/minio","/local"]}\n', hook.stderr);

    // DataLoad with replicas 2 (the Job's environment: no configuration file, the master by variable).
    const load = await runStrata(['fluid', 'dataload', '--dataset', 'strata-demo'], {
      env: {
        ...pods.podEnv('master'),
        STRATA_CONF_FILE: '/nonexistent/strata.toml',
        FLUID_DATALOAD_DATA_PATH: '/minio',
        FLUID_DATALOAD_PATH_REPLICAS: '2',
        FLUID_DATALOAD_METADATA: 'false',
      },
      timeoutMs: 90_000,
    });
    assert.equal(load.code, 0, load.stderr);
    assert.match(
      load.stderr,
      new RegExp(
        `/minio: job \\S+ completed: 1/1 files, ${object.length} of ${object.length} bytes cached \\(2 copies of each block\\)`,
      ),
    );
    // Every block of the object on both workers: in the master's map and as files in each
    // worker's own tier directories.
    const ids = new Set(workers.map((w) => w.address.workerId));
    let blockIds: number[] = [];
    await waitFor(
      'every block of /minio/obj.bin on both workers',
      async () => {
        const { blocks } = await fs.blockLocations('/minio/obj.bin');
        blockIds = blocks.map((b) => b.blockId);
        return (
          blocks.length === 4 &&
          blocks.every((b) => b.fill !== true && new Set(b.workers.map((w) => w.workerId)).size === ids.size)
        );
      },
      BACKGROUND_WAIT_MS,
    );
    for (const [i, dirs] of pods.workerTierDirs.entries()) {
      const files = blockFiles(dirs);
      for (const id of blockIds) assert.ok((files.get(id) ?? 0) > 0, `block ${id} stored by worker-${i}`);
    }
    assert.equal((await fs.stat('/minio/obj.bin')).replicas, 2);

    // reportSummary: both workers' tiers in the capacity, the dataset fully cached (the file://
    // mount's file read once, so its metadata is known too).
    assert.equal((await fs.readFile('/local/hello.txt')).toString(), 'hello from the UFS\n');
    const summary = await runStrata(['fluid', 'report-summary'], { env: pods.podEnv('master') });
    assert.equal(summary.code, 0, summary.stderr);
    const parsed = JSON.parse(summary.stdout) as Record<string, string>;
    const perWorker = (await fs.listWorkers()).map((w) => w.capacityBytes);
    assert.ok(perWorker.length === 2 && perWorker.every((c) => c > 0));
    assert.equal(parsed.cacheCapacity, formatBytes(perWorker.reduce((a, b) => a + b, 0)));
    assert.equal(parsed.fileNum, '2');
    assert.equal(parsed.cachedPercentage, '100.0%');

    // The client pod: FUSE at FLUID_RUNTIME_MOUNT_PATH, in the foreground.
    const procs: { client?: Proc; thin?: Proc } = {};
    const clientMnt = mountPoint(t, () => procs.client);
    const client = startStrata(['fluid', 'cache-runtime'], { env: pods.podEnv('client', clientMnt) });
    procs.client = client;
    await waitMounted(clientMnt, client);

    // The ThinRuntime pod on the same cluster: config.json names the master and the directory.
    const thinMnt = mountPoint(t, () => procs.thin);
    const thinJson = join(pods.dir, 'thin-config.json');
    const thinMount = {
      mountPoint: 'strata:///',
      options: {
        'master-endpoints': `127.0.0.1:${pods.masterRpcPort}`,
        'web-port': String(thinWeb),
        'client.block_size': '1MB',
        'client.storage_type': 'MEM',
      },
    };
    const thinConfig = { mounts: [thinMount], targetPath: thinMnt, accessModes: ['ReadWriteMany'] };
    writeFileSync(thinJson, JSON.stringify(thinConfig));
    const startThin = (): Proc =>
      startStrata(['fluid', 'thin', '--config', thinJson], {
        env: {
          PATH: process.env.PATH,
          FLUID_RUNTIME_TYPE: 'thin',
          STRATA_CONF_FILE: join(pods.dir, 'thin.toml'),
        },
      });
    let thin = startThin();
    procs.thin = thin;
    await waitMounted(thinMnt, thin);

    // 1. through the client's own mount, including the UFS files the hook mounted
    await shOk(
      `echo 'Hello Strata!' > test1.txt && mkdir -p testdir && echo 'Directory test' > testdir/file.txt`,
      clientMnt,
    );
    assert.equal(await shOk('cat test1.txt', clientMnt), 'Hello Strata!\n');
    assert.equal(readFileSync(join(clientMnt, 'local', 'hello.txt'), 'utf8'), 'hello from the UFS\n');
    assert.ok(readFileSync(join(thinMnt, 'minio', 'obj.bin')).equals(object));
    // 2. and 3. the other mount sees it, and the other way round
    assert.equal(await shOk('cat testdir/file.txt', thinMnt), 'Directory test\n');
    await shOk(`echo 'PVC test success!' > pvc-test.txt`, thinMnt);
    assert.equal(await shOk('cat pvc-test.txt', clientMnt), 'PVC test success!\n');
    // 4. a 10 MB file
    await shOk('dd if=/dev/zero of=bigfile.dat bs=1M count=10 status=none', thinMnt);
    assert.equal((await shOk('stat -c %s bigfile.dat', clientMnt)).trim(), String(10 * 1024 * 1024));
    assert.equal((await pods.fs.stat('/bigfile.dat')).size, 10 * 1024 * 1024);
    assert.match(await shOk(`grep " ${clientMnt} " /proc/self/mountinfo`, '/'), / fuse\.strata /);

    // The Dataset marks /local readOnly: after mount-ufs, the cluster refuses writes under it,
    // through the client mount too, with EROFS; reads go on.
    const ro = JSON.parse(readFileSync(pods.runtimeJson, 'utf8')) as { mounts: { path: string }[] };
    for (const m of ro.mounts) if (m.path === '/local') Object.assign(m, { readOnly: true });
    writeFileSync(pods.runtimeJson, JSON.stringify(ro));
    const roHook = await runStrata(['fluid', 'mount-ufs'], { env: pods.podEnv('master'), timeoutMs: 60_000 });
    assert.equal(roHook.stdout, '{"mounted":["/minio","/local"]}\n', roHook.stderr);
    assert.match(roHook.stderr, /at \/local \(read-only\)/);
    const denied = await run('sh', ['-c', 'echo x > local/new.txt'], { cwd: clientMnt, timeoutMs: 20_000 });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Read-only file system/);
    assert.equal(await shOk('cat local/hello.txt', clientMnt), 'hello from the UFS\n');
    await shOk('echo still > writable.txt', clientMnt);

    // Fluid rewrites the ConfigMap: an unusable file is reported and the mount kept; a changed
    // configuration unmounts and exits 0, for the DaemonSet to restart the container.
    writeFileAtomic(thinJson, '{"mounts": 1');
    await thin.waitForOutput('is not usable, keeping the mount', 20_000);
    assert.equal((await mountAt(thinMnt))?.fsType, 'fuse.strata');
    writeFileAtomic(thinJson, JSON.stringify({ ...thinConfig, mounts: [{ ...thinMount, readOnly: true }] }));
    assert.equal(await thin.exited, 0);
    assert.match(thin.stderr, /changed; unmounting to remount with the new configuration/);
    assert.equal(await mountAt(thinMnt), undefined);
    // The restarted container mounts the read-only Dataset mount with `ro`: the kernel refuses writes.
    thin = startThin();
    procs.thin = thin;
    await waitMounted(thinMnt, thin);
    // mountinfo: "<id> <parent> <dev> <root> <mount point> <options> …"
    assert.match(
      await shOk(`grep " ${thinMnt} " /proc/self/mountinfo`, '/'),
      new RegExp(` ${thinMnt} ro[, ]`),
    );
    const roWrite = await run('sh', ['-c', 'echo x > thin-ro.txt'], { cwd: thinMnt, timeoutMs: 20_000 });
    assert.notEqual(roWrite.code, 0);
    assert.match(roWrite.stderr, /Read-only file system/);
    assert.equal(await shOk('cat pvc-test.txt', thinMnt), 'PVC test success!\n');

    // The client's readiness probe from the CacheRuntimeClass, as the kubelet runs it: ready
    // while it can serve, not once the master is gone (no answer within the probe's timeout).
    const probe = clientReadinessProbe();
    const runProbe = () =>
      run('timeout', ['-s', 'KILL', String(probe.timeoutSeconds), ...probe.command], {
        env: { PATH: process.env.PATH, FLUID_RUNTIME_MOUNT_PATH: clientMnt },
        timeoutMs: 30_000,
      });
    const readyNow = await runProbe();
    assert.equal(readyNow.code, 0, readyNow.stderr);
    assert.equal(await pods.master.stop('SIGTERM', 15_000), 0);
    await waitFor(
      'the client probe failing without a master',
      async () => (await runProbe()).code !== 0,
      60_000,
    );

    // SIGTERM unmounts.
    assert.equal(await thin.stop('SIGTERM', 15_000), 0);
    assert.equal(await client.stop('SIGTERM', 15_000), 0);
    assert.equal(await mountAt(clientMnt), undefined);
    assert.equal(await mountAt(thinMnt), undefined);
  },
);
