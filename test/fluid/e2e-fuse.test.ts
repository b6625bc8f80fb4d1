// Seed 000's acceptance story without Kubernetes, as root: the CacheRuntime master, worker and
// client pods (FUSE at FLUID_RUNTIME_MOUNT_PATH) and a ThinRuntime FUSE pod as processes with
// Fluid's environment and JSON; mount-ufs, then write/read/cross-access/dd 10 MB through the mounts.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { writeFileAtomic } from '../../src/fluid/index.js';
import { mountAt } from '../../src/fuse/mount-point.js';
import { requireTools } from '../helpers/ci.js';
import { freePorts } from '../helpers/ports.js';
import { runStrata, startStrata } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { FUSE_TOOLS, forceUnmount, shOk, waitMounted } from '../fuse/fuse-helper.js';
import { startFluidPods } from './fluid-pods.js';

const skip = requireTools(...FUSE_TOOLS, 'dd');

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

test(
  'seed 000 through the Fluid entrypoints: client and ThinRuntime FUSE mounts',
  { skip, timeout: 120_000 },
  async (t) => {
    const [clientWeb, thinWeb] = await freePorts(2);
    if (clientWeb === undefined || thinWeb === undefined) throw new Error('no free ports');
    const pods = await startFluidPods(t, { clientWebPort: clientWeb });

    const hook = await runStrata(['fluid', 'mount-ufs'], { env: pods.podEnv('master'), timeoutMs: 60_000 });
    assert.equal(hook.stdout, '{"mounted":["/local"]}\n', hook.stderr);

    // The client pod: FUSE at FLUID_RUNTIME_MOUNT_PATH, in the foreground.
    const procs: { client?: Proc; thin?: Proc } = {};
    const clientMnt = mountPoint(t, () => procs.client);
    const client = startStrata(['fluid', 'cache-runtime'], { env: pods.podEnv('client', clientMnt) });
    procs.client = client;
    await waitMounted(clientMnt, client);

    // The ThinRuntime pod on the same cluster: config.json names the master and the directory.
    const thinMnt = mountPoint(t, () => procs.thin);
    const thinJson = join(pods.dir, 'thin-config.json');
    const thinConfig = {
      mounts: [
        {
          mountPoint: 'strata:///',
          options: {
            'master-endpoints': `127.0.0.1:${pods.masterRpcPort}`,
            'web-port': String(thinWeb),
            'client.block_size': '1MB',
            'client.storage_type': 'MEM',
          },
        },
      ],
      targetPath: thinMnt,
      accessModes: ['ReadWriteMany'],
    };
    writeFileSync(thinJson, JSON.stringify(thinConfig));
    const thin = startStrata(['fluid', 'thin', '--config', thinJson], {
      env: {
        PATH: process.env.PATH,
        FLUID_RUNTIME_TYPE: 'thin',
        STRATA_CONF_FILE: join(pods.dir, 'thin.toml'),
      },
    });
    procs.thin = thin;
    await waitMounted(thinMnt, thin);

    // 1. through the client's own mount, including the UFS file the hook mounted
    await shOk(
      `echo 'Hello Strata!' > test1.txt && mkdir -p testdir && echo 'Directory test' > testdir/file.txt`,
      clientMnt,
    );
    assert.equal(await shOk('cat test1.txt', clientMnt), 'Hello Strata!\n');
    assert.equal(readFileSync(join(clientMnt, 'local', 'hello.txt'), 'utf8'), 'hello from the UFS\n');
    // 2. and 3. the other mount sees it, and the other way round
    assert.equal(await shOk('cat testdir/file.txt', thinMnt), 'Directory test\n');
    await shOk(`echo 'PVC test success!' > pvc-test.txt`, thinMnt);
    assert.equal(await shOk('cat pvc-test.txt', clientMnt), 'PVC test success!\n');
    // 4. a 10 MB file
    await shOk('dd if=/dev/zero of=bigfile.dat bs=1M count=10 status=none', thinMnt);
    assert.equal((await shOk('stat -c %s bigfile.dat', clientMnt)).trim(), String(10 * 1024 * 1024));
    assert.equal((await pods.fs.stat('/bigfile.dat')).size, 10 * 1024 * 1024);
    assert.match(await shOk(`grep " ${clientMnt} " /proc/self/mountinfo`, '/'), / fuse\.strata /);

    // Fluid rewrites the ConfigMap: an unusable file is reported and the mount kept; a changed
    // configuration unmounts and exits 0, for the DaemonSet to restart the container.
    writeFileAtomic(thinJson, '{"mounts": 1');
    await thin.waitForOutput('is not usable, keeping the mount', 20_000);
    assert.equal((await mountAt(thinMnt))?.fsType, 'fuse.strata');
    writeFileAtomic(
      thinJson,
      JSON.stringify({ ...thinConfig, runtimeOptions: { 'entry-timeout-ms': '2000' } }),
    );
    assert.equal(await thin.exited, 0);
    assert.match(thin.stderr, /changed; unmounting to remount with the new configuration/);
    assert.equal(await mountAt(thinMnt), undefined);

    // SIGTERM unmounts.
    assert.equal(await client.stop('SIGTERM', 15_000), 0);
    assert.equal(await mountAt(clientMnt), undefined);
  },
);
