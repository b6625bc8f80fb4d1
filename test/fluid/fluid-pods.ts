/**
 * The pods a CacheRuntime creates, started as processes: `strata fluid cache-runtime` with Fluid's
 * environment and a runtime.json built from the fixture, where what Kubernetes gives a pod (DNS
 * names, fixed ports, volumes) is replaced by loopback addresses, free ports and temp dirs passed
 * as component options. Pods of one StatefulSet share a runtime.json in Kubernetes but not a
 * network namespace nor volumes: here each worker gets its own copy of the file, differing only
 * in the worker's ports and tier directories.
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
  /** Fluid's environment for a component's pod (STRATA_CONF_FILE is its own file); `index` picks the worker. */
  podEnv(component: Component, mountPath?: string, index?: number): NodeJS.ProcessEnv;
  master: Proc;
  /** worker-0. */
  worker: Proc;
  workers: Proc[];
  /** Each worker's tier directories (level-<L>-index-<P>), worker-0 first. */
  workerTierDirs: string[][];
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

/** Starts master-0 and the workers of dataset `strata-demo` and waits until all are Ready. */
export interface FluidPodsOptions {
  /** Worker pods (default 1). */
  workers?: number;
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
  const workerCount = opts.workers ?? 1;
  const dir = tempDir(t, 'strata-fluid-pods-');
  const [masterRpc, masterWeb, ...workerPorts] = await freePorts(2 + 2 * workerCount);
  if (masterRpc === undefined || masterWeb === undefined || workerPorts.length !== 2 * workerCount)
    throw new Error('no free ports');
  const ufsDir = join(dir, 'ufs');
  mkdirSync(ufsDir);
  writeFileSync(join(ufsDir, 'hello.txt'), 'hello from the UFS\n');

  const fixture = JSON.parse(readFileSync(join(FLUID_FIXTURES, 'cache-runtime.json'), 'utf8')) as {
    mounts: unknown[];
    master: { options: Record<string, string> };
    worker: {
      options: Record<string, string>;
      replicas: number;
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
  fixture.worker.replicas = workerCount;
  fixture.client.options = {
    ...(clientWebPort > 0 ? { web_port: String(clientWebPort) } : {}),
    ...clientOptions,
  };
  const runtimeJson = join(dir, 'runtime.json');
  writeFileSync(runtimeJson, JSON.stringify(fixture));
  // What each worker pod sees: its own ports and volumes.
  const levels = fixture.worker.tieredStoreLevels;
  const workerTierDirs: string[][] = [];
  const workerJsons: string[] = [];
  const workerWebPorts: number[] = [];
  for (let i = 0; i < workerCount; i++) {
    const [rpc, web] = workerPorts.slice(2 * i, 2 * i + 2) as [number, number];
    workerWebPorts.push(web);
    const tiers: string[] = [];
    const own = {
      ...fixture,
      worker: {
        ...fixture.worker,
        options: { hostname: '127.0.0.1', rpc_port: String(rpc), web_port: String(web) },
        tieredStoreLevels: levels.map((level, l) => ({
          ...level,
          mountPaths: level.mountPaths.map((_, p) => {
            const d = join(dir, `worker-${i}-volumes`, `level-${l}-index-${p}`);
            tiers.push(d);
            return d;
          }),
          quotas: level.quotas.map(() => '64Mi'),
        })),
      },
    };
    workerTierDirs.push(tiers);
    const file = join(dir, `runtime-worker-${i}.json`);
    writeFileSync(file, JSON.stringify(own));
    workerJsons.push(file);
  }

  const podEnv = (component: Component, mountPath?: string, index = 0): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    FLUID_DATASET_NAME: 'strata-demo',
    FLUID_DATASET_NAMESPACE: 'default',
    FLUID_RUNTIME_CONFIG_PATH: component === 'worker' ? (workerJsons[index] ?? runtimeJson) : runtimeJson,
    FLUID_RUNTIME_COMPONENT_TYPE: component,
    FLUID_RUNTIME_COMPONENT_SVC_NAME: component === 'client' ? '' : `svc-strata-demo-${component}`,
    FLUID_RUNTIME_MOUNT_PATH: mountPath ?? join(dir, 'cache-fuse'),
    POD_NAME: `strata-demo-${component}-${index}`,
    // The pods' DNS names do not resolve here: the masters are given as Fluid's profile would.
    STRATA_MASTER_ENDPOINTS: `127.0.0.1:${masterRpc}`,
    STRATA_CONF_FILE: join(dir, `${component}-${index}`, 'strata-cluster.toml'),
    // The S3 client must not wait for an instance metadata service here.
    AWS_EC2_METADATA_DISABLED: 'true',
  });

  const master = startStrata(['fluid', 'cache-runtime'], { env: podEnv('master'), t });
  await waitReady(master, masterWeb, 'master');
  const workers = workerJsons.map((_, i) =>
    startStrata(['fluid', 'cache-runtime'], { env: podEnv('worker', undefined, i), t }),
  );
  for (const [i, w] of workers.entries()) await waitReady(w, workerWebPorts[i] ?? 0, `worker-${i}`);

  const config = loadConfig({ path: join(dir, 'master-0', 'strata-cluster.toml'), env: {} }).config;
  const fs = FileSystem.create({ config });
  t.after(() => fs.close());
  const worker = workers[0];
  if (worker === undefined) throw new Error('no worker');
  return {
    dir,
    ufsDir,
    runtimeJson,
    masterRpcPort: masterRpc,
    podEnv,
    master,
    worker,
    workers,
    workerTierDirs,
    config,
    fs,
  };
}
