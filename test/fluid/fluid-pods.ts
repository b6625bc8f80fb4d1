/**
 * The pods a CacheRuntime creates, started as processes: `strata fluid cache-runtime` with Fluid's
 * environment and a runtime.json built from the fixture, where what Kubernetes gives a pod (DNS
 * names, fixed ports, volumes) is replaced by loopback addresses, free ports and temp dirs passed
 * as component options.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import type { ClusterConfig } from '../../src/common/config/index.js';
import { freePorts } from '../helpers/ports.js';
import { startStrata } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY } from '../ufs/s3-server.js';
import { FLUID_FIXTURES } from './helpers.js';

/** A role's start on a loaded machine (configuration, store open, registration). */
const READY_WAIT_MS = 30_000;

export type Component = 'master' | 'worker' | 'client';

export interface FluidPods {
  dir: string;
  /** The file:// UFS the Dataset mounts at /local (holds hello.txt). */
  ufsDir: string;
  runtimeJson: string;
  masterRpcPort: number;
  /** Fluid's environment for a component's pod (STRATA_CONF_FILE is its own file). */
  podEnv(component: Component, mountPath?: string): NodeJS.ProcessEnv;
  master: Proc;
  worker: Proc;
  /** The master's derived configuration. */
  config: ClusterConfig;
  fs: FileSystem;
}

export async function waitReady(proc: Proc, webPort: number, what: string): Promise<void> {
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

/** Starts master-0 and worker-0 of dataset `strata-demo` and waits until both are Ready. */
export interface FluidPodsOptions {
  /** The FUSE client's ops port (a free one when several mounts run). */
  clientWebPort?: number;
  /** An S3 endpoint: the Dataset also mounts s3://test at /minio, credentials from secret files. */
  s3Endpoint?: string;
}

export async function startFluidPods(
  t: Pick<TestContext, 'after'>,
  opts: FluidPodsOptions = {},
): Promise<FluidPods> {
  const clientWebPort = opts.clientWebPort ?? 0;
  const dir = tempDir(t, 'strata-fluid-pods-');
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

  const fixture = JSON.parse(readFileSync(join(FLUID_FIXTURES, 'cache-runtime.json'), 'utf8')) as {
    mounts: unknown[];
    master: { options: Record<string, string> };
    worker: {
      options: Record<string, string>;
      tieredStoreLevels: { mountPaths: string[]; quotas: string[] }[];
    };
    client: { options: Record<string, string> };
  };
  fixture.mounts = [{ mountPoint: `file://${ufsDir}`, name: 'local', path: '/local' }];
  if (opts.s3Endpoint !== undefined) {
    const secrets = join(dir, 'secrets');
    mkdirSync(secrets);
    writeFileSync(join(secrets, 'access-key'), `${S3RVER_ACCESS_KEY}\n`);
    writeFileSync(join(secrets, 'secret-key'), `${S3RVER_SECRET_KEY}\n`);
    fixture.mounts.unshift({
      mountPoint: 's3://test',
      name: 'minio',
      path: '/minio',
      options: { endpoint_url: opts.s3Endpoint, region_name: 'us-east-1' },
      encryptOptions: { access: join(secrets, 'access-key'), secret: join(secrets, 'secret-key') },
    });
  }
  // Small blocks in the memory tier the worker's levels provide (the default is DISK, 128MB).
  const clientOptions = { 'client.block_size': '1MB', 'client.storage_type': 'MEM' };
  fixture.master.options = {
    hostname: '127.0.0.1',
    rpc_port: String(masterRpc),
    web_port: String(masterWeb),
    meta_dir: join(dir, 'meta'),
    heartbeat_interval: '100',
    ...clientOptions,
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
  fixture.client.options = {
    ...(clientWebPort > 0 ? { web_port: String(clientWebPort) } : {}),
    ...clientOptions,
  };
  const runtimeJson = join(dir, 'runtime.json');
  writeFileSync(runtimeJson, JSON.stringify(fixture));

  const podEnv = (component: Component, mountPath?: string): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    FLUID_DATASET_NAME: 'strata-demo',
    FLUID_DATASET_NAMESPACE: 'default',
    FLUID_RUNTIME_CONFIG_PATH: runtimeJson,
    FLUID_RUNTIME_COMPONENT_TYPE: component,
    FLUID_RUNTIME_COMPONENT_SVC_NAME: component === 'client' ? '' : `svc-strata-demo-${component}`,
    FLUID_RUNTIME_MOUNT_PATH: mountPath ?? join(dir, 'cache-fuse'),
    POD_NAME: `strata-demo-${component}-0`,
    // The pods' DNS names do not resolve here: the masters are given as Fluid's profile would.
    STRATA_MASTER_ENDPOINTS: `127.0.0.1:${masterRpc}`,
    STRATA_CONF_FILE: join(dir, component, 'strata-cluster.toml'),
    // The S3 client must not wait for an instance metadata service here.
    AWS_EC2_METADATA_DISABLED: 'true',
  });

  const master = startStrata(['fluid', 'cache-runtime'], { env: podEnv('master'), t });
  await waitReady(master, masterWeb, 'master');
  const worker = startStrata(['fluid', 'cache-runtime'], { env: podEnv('worker'), t });
  await waitReady(worker, workerWeb, 'worker');

  const config = loadConfig({ path: join(dir, 'master', 'strata-cluster.toml'), env: {} }).config;
  const fs = FileSystem.create({ config });
  t.after(() => fs.close());
  return { dir, ufsDir, runtimeJson, masterRpcPort: masterRpc, podEnv, master, worker, config, fs };
}
