// Proves the CacheRuntime entrypoints run the roles: `strata fluid cache-runtime` started as the
// master and a worker pod would be (Fluid's environment, a runtime.json from the fixture with
// tiered-store levels in temp dirs), both become Ready, a file written through the cluster reads
// back, and the mount-ufs hook run with the master's derived configuration serves a file:// UFS.
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { freePorts } from '../helpers/ports.js';
import { runStrata, startStrata } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { FLUID_FIXTURES } from './helpers.js';

/** A role's start on a loaded machine (build of the config, store open, registration). */
const READY_WAIT_MS = 30_000;

async function waitReady(proc: Proc, webPort: number, what: string): Promise<void> {
  await waitFor(
    `${what} ready on :${webPort}`,
    async () => {
      if (proc.child.exitCode !== null) {
        throw new Error(`${what} exited with ${proc.child.exitCode}\n${proc.stderr.slice(-4000)}`);
      }
      const res = await fetch(`http://127.0.0.1:${webPort}/ready`).catch(() => undefined);
      return res?.status === 200;
    },
    READY_WAIT_MS,
    50,
  );
}

test('cache-runtime master and worker entrypoints form a cluster that serves reads', async (t) => {
  const dir = tempDir(t, 'strata-fluid-entry-');
  const [masterRpc, masterWeb, workerRpc, workerWeb] = await freePorts(4);
  if (
    masterRpc === undefined ||
    masterWeb === undefined ||
    workerRpc === undefined ||
    workerWeb === undefined
  )
    throw new Error('no free ports');
  const ufsDir = join(dir, 'ufs');
  mkdirSync(ufsDir);
  writeFileSync(join(ufsDir, 'hello.txt'), 'hello from the UFS\n');

  // Fluid's runtime.json, with what a pod gets from Kubernetes (DNS, fixed ports, volumes) replaced
  // by loopback addresses, free ports and temp dirs given as component options.
  const fixture = JSON.parse(readFileSync(join(FLUID_FIXTURES, 'cache-runtime.json'), 'utf8')) as {
    mounts: unknown[];
    master: { options: Record<string, string> };
    worker: {
      options: Record<string, string>;
      tieredStoreLevels: { mountPaths: string[]; quotas: string[] }[];
    };
  };
  fixture.mounts = [{ mountPoint: `file://${ufsDir}`, name: 'local', path: '/local' }];
  fixture.master.options = {
    hostname: '127.0.0.1',
    rpc_port: String(masterRpc),
    web_port: String(masterWeb),
    meta_dir: join(dir, 'meta'),
    heartbeat_interval: '100',
    // Small blocks in the memory tier the worker's levels provide (the default is DISK, 128MB).
    'client.block_size': '1MB',
    'client.storage_type': 'MEM',
  };
  fixture.worker.options = {
    hostname: '127.0.0.1',
    rpc_port: String(workerRpc),
    web_port: String(workerWeb),
  };
  fixture.worker.tieredStoreLevels = fixture.worker.tieredStoreLevels.map((level, l) => ({
    ...level,
    mountPaths: level.mountPaths.map((_, p) => join(dir, `level-${l}-index-${p}`)),
    quotas: level.quotas.map(() => '64Mi'),
  }));
  const runtimeJson = join(dir, 'runtime.json');
  writeFileSync(runtimeJson, JSON.stringify(fixture));

  const podEnv = (component: 'master' | 'worker'): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    FLUID_DATASET_NAME: 'strata-demo',
    FLUID_DATASET_NAMESPACE: 'default',
    FLUID_RUNTIME_CONFIG_PATH: runtimeJson,
    FLUID_RUNTIME_COMPONENT_TYPE: component,
    FLUID_RUNTIME_COMPONENT_SVC_NAME: `svc-strata-demo-${component}`,
    FLUID_RUNTIME_MOUNT_PATH: join(dir, 'cache-fuse'),
    POD_NAME: `strata-demo-${component}-0`,
    // The pods' DNS names do not resolve here: the masters are given as Fluid's profile would.
    STRATA_MASTER_ENDPOINTS: `127.0.0.1:${masterRpc}`,
    STRATA_CONF_FILE: join(dir, component, 'strata-cluster.toml'),
  });

  const master = startStrata(['fluid', 'cache-runtime'], { env: podEnv('master'), t });
  await waitReady(master, masterWeb, 'master');
  const worker = startStrata(['fluid', 'cache-runtime'], { env: podEnv('worker'), t });
  await waitReady(worker, workerWeb, 'worker');

  const masterConf = join(dir, 'master', 'strata-cluster.toml');
  const config = loadConfig({ path: masterConf, env: {} }).config;
  assert.equal(config.cluster_id, 'default-strata-demo');
  const fs = FileSystem.create({ config });
  t.after(() => fs.close());

  // The worker registered with the tiers derived from tieredStoreLevels (MEM + two HDD paths).
  const workers = await fs.listWorkers();
  assert.equal(workers.length, 1);
  const payload = Buffer.alloc(2 * 1024 * 1024 + 17, 'fluid');
  await fs.writeFile('/written.bin', payload);
  assert.ok((await fs.readFile('/written.bin')).equals(payload));

  // The mountUFS hook as Fluid execs it in master-0: the master's own configuration file.
  const hook = await runStrata(['fluid', 'mount-ufs'], { env: podEnv('master'), timeoutMs: 60_000 });
  assert.equal(hook.code, 0, hook.stderr);
  assert.equal(hook.stdout, '{"mounted":["/local"]}\n');
  assert.equal((await fs.readFile('/local/hello.txt')).toString(), 'hello from the UFS\n');

  // SIGTERM stops each role gracefully (exit 0), as the pod's PID 1 forwards it.
  assert.equal(await worker.stop('SIGTERM'), 0);
  assert.equal(await master.stop('SIGTERM'), 0);
});
