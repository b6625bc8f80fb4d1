/**
 * An in-process worker on loopback (real RPC server, ops HTTP, tiers in a temp dir) talking to
 * a FakeMaster, plus an RpcClient of it: for wire-level worker tests without child processes.
 */
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfigText } from '../../src/common/config/index.js';
import type { ClusterConfig } from '../../src/common/config/index.js';
import { silentLogger } from '../../src/common/logging.js';
import { createRegistry } from '../../src/common/metrics.js';
import { WorkerCalls } from '../../src/protocol/index.js';
import { RpcClient } from '../../src/rpc/index.js';
import { createWorkerRpc } from '../../src/worker/rpc-wiring.js';
import { Worker } from '../../src/worker/worker.js';
import { tempDir } from '../helpers/tmp.js';
import type { FakeMaster } from './fake-master.js';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

export interface WorkerHandle {
  worker: Worker;
  config: ClusterConfig;
  dir: string;
  client: RpcClient;
  registry: ReturnType<typeof createRegistry>;
  webUrl: string;
}

export interface WorkerFixtureOptions {
  dataDirs?: string[];
  extraToml?: string;
  dir?: string;
  clusterId?: string;
}

export async function startWorker(
  t: Pick<TestContext, 'after'>,
  master: FakeMaster,
  o: WorkerFixtureOptions = {},
): Promise<WorkerHandle> {
  const dir = o.dir ?? tempDir(t, 'strata-wrpc-');
  const dataDirs = (o.dataDirs ?? ['[MEM:8MB]{dir}/mem', '[DISK:128MB]{dir}/disk']).map((d) =>
    d.replaceAll('{dir}', dir),
  );
  const config = parseConfigText(
    `cluster_id = "${o.clusterId ?? 'test'}"
[master]
heartbeat_interval = "100ms"
[[client.master_addrs]]
hostname = "127.0.0.1"
port = ${master.port}
[client]
rpc_timeout = "2s"
conn_timeout = "500ms"
[worker]
hostname = "127.0.0.1"
bind_host = "127.0.0.1"
rpc_port = 0
web_port = 0
eviction_interval = "50ms"
data_dir = ${JSON.stringify(dataDirs)}
${o.extraToml ?? ''}
`,
    join(dir, 'strata.toml'),
    { env: {} },
  ).config;
  const log = silentLogger();
  const registry = createRegistry('worker');
  const worker = await Worker.start({ config, log, registry, rpc: createWorkerRpc(config, log, registry) });
  const client = new RpcClient({
    addresses: [{ host: '127.0.0.1', port: worker.address.rpcPort }],
    deadlineMs: 5000,
  });
  t.after(async () => {
    await client.close();
    await worker.stop(1000);
  });
  return { worker, config, dir, client, registry, webUrl: `http://127.0.0.1:${worker.address.webPort}` };
}

export async function rpcWrite(
  client: RpcClient,
  blockId: number,
  data: Buffer,
  storageType: 'MEM' | 'SSD' | 'DISK' | 'HDD' | 'NVME' = 'MEM',
  chunkBytes = 256 * 1024,
): Promise<{ length: number; storageType: string }> {
  const call = client.write(WorkerCalls.WriteBlock, { blockId, storageType, lengthHint: data.length });
  for (let off = 0; off < data.length; off += chunkBytes)
    await call.write(data.subarray(off, off + chunkBytes));
  return call.end();
}

export async function rpcRead(
  client: RpcClient,
  blockId: number,
  offset?: number,
  length?: number,
): Promise<Buffer> {
  const call = client.read(WorkerCalls.ReadBlock, {
    blockId,
    ...(offset === undefined ? {} : { offset }),
    ...(length === undefined ? {} : { length }),
  });
  const parts: Buffer[] = [];
  for await (const chunk of call) parts.push(Buffer.from(chunk));
  const res = await call.result;
  const out = Buffer.concat(parts);
  if (res.bytes !== out.length) throw new Error(`read reported ${res.bytes} bytes, got ${out.length}`);
  return out;
}

/** Corrupts one byte of a file in place (a bit flip on disk, for checksum tests). */
export function flipByte(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = (b[0] ?? 0) ^ 0x40;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}
