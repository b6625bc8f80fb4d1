// Proves the worker with the real master as child processes (MiniCluster): registration and
// heartbeats with tier usage, blocks written to the workers AddBlock chose and located through the
// master, `delete` after a file is deleted, `replicate` for an under-replicated block, and
// re-registration with a full report after the master restarts.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { MasterCalls as M, WorkerCalls as W } from '../../src/protocol/index.js';
import type { WorkerAddress } from '../../src/protocol/index.js';
import { RpcClient } from '../../src/rpc/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { randomData } from './store-fixture.js';
import { rpcRead, rpcWrite } from './worker-fixture.js';

const MiB = 1024 * 1024;
const FAST = 'heartbeat_interval = 100\nworker_blacklist_interval = 600\nworker_lost_interval = 2000';

interface Harness {
  mc: MiniCluster;
  master: RpcClient;
  worker(a: WorkerAddress): RpcClient;
}

async function harness(t: TestContext, workers: number): Promise<Harness> {
  const mc = await MiniCluster.start(t, {
    workers,
    masterToml: FAST,
    workerTiers: () => ['[MEM:16MB]{dir}/mem', '[DISK:128MB]{dir}/disk'],
  });
  const master = new RpcClient({ addresses: [{ host: '127.0.0.1', port: mc.masters[0]?.rpcPort ?? 0 }] });
  const clients = new Map<number, RpcClient>();
  t.after(async () => {
    await master.close();
    for (const c of clients.values()) await c.close();
  });
  return {
    mc,
    master,
    worker(a) {
      let c = clients.get(a.rpcPort);
      if (c === undefined) {
        c = new RpcClient({ addresses: [{ host: '127.0.0.1', port: a.rpcPort }], retryMax: 0 });
        clients.set(a.rpcPort, c);
      }
      return c;
    },
  };
}

/** Creates a one-block file, writes the block to the workers AddBlock chose (or `onlyFirst`). */
async function writeFile(
  h: Harness,
  path: string,
  data: Buffer,
  replicas: number,
  onlyFirst = false,
): Promise<{ blockId: number; workers: WorkerAddress[] }> {
  const { status, leaseId } = await h.master.call(M.Create, { path, replicas, parents: true });
  const { blockId, workers } = await h.master.call(M.AddBlock, { fileId: status.id, leaseId });
  assert.equal(workers.length, replicas);
  const targets = onlyFirst ? workers.slice(0, 1) : workers;
  for (const w of targets) await rpcWrite(h.worker(w), blockId, data, 'MEM');
  await h.master.call(M.Complete, {
    fileId: status.id,
    leaseId,
    blocks: [{ blockId, length: data.length, workers: targets.map((w) => w.workerId) }],
    length: data.length,
  });
  return { blockId, workers };
}

async function holders(h: Harness, path: string): Promise<string[]> {
  const loc = await h.master.call(M.GetBlockLocations, { path });
  return (loc.blocks[0]?.workers ?? []).map((w) => w.workerId).sort();
}

test('workers register with their tiers, blocks are located through the master, deletes reach the worker', async (t) => {
  const h = await harness(t, 2);
  const { workers } = await h.master.call(M.ListWorkers, {});
  assert.equal(workers.length, 2);
  for (const w of workers) {
    assert.equal(w.state, 'live');
    assert.deepEqual(
      w.tiers.map((u) => [u.storageType, u.capacityBytes]),
      [
        ['MEM', 16 * MiB],
        ['DISK', 128 * MiB],
      ],
    );
    assert.match(w.address.hostId, /^[0-9a-f]{32}$/);
  }
  const data = randomData(3 * MiB + 17);
  const { blockId, workers: chosen } = await writeFile(h, '/d/f1', data, 1);
  const holder = chosen[0] as WorkerAddress;
  assert.deepEqual(await holders(h, '/d/f1'), [holder.workerId]);
  assert.ok((await rpcRead(h.worker(holder), blockId)).equals(data));
  await waitFor('usage heartbeated', async () => {
    const ws = (await h.master.call(M.ListWorkers, {})).workers;
    return ws.find((w) => w.address.workerId === holder.workerId)?.blocks === 1;
  });

  await h.master.call(M.Delete, { path: '/d/f1' });
  await waitFor(
    'the worker dropped the deleted block',
    async () =>
      (await h
        .worker(holder)
        .call(W.GetBlockInfo, { blockId })
        .then(
          () => false,
          (e: unknown) => (e as { code?: string }).code === 'STRATA_BLOCK_NOT_FOUND',
        )) === true,
    10_000,
  );
});

test('an under-replicated block is copied to another worker on the master’s replicate command', async (t) => {
  const h = await harness(t, 2);
  const data = randomData(2 * MiB + 5);
  const { blockId, workers } = await writeFile(h, '/r/f', data, 2, true);
  const [first, second] = workers as [WorkerAddress, WorkerAddress];
  await waitFor('the second copy arrived', async () => (await holders(h, '/r/f')).length === 2, 15_000);
  assert.deepEqual(await holders(h, '/r/f'), [first.workerId, second.workerId].sort());
  assert.ok((await rpcRead(h.worker(second), blockId)).equals(data));
});

test('after a master restart the workers register again and their blocks are located again', async (t) => {
  const h = await harness(t, 1);
  const data = randomData(MiB);
  const { blockId, workers } = await writeFile(h, '/m/f', data, 1);
  const w = workers[0] as WorkerAddress;
  const m = h.mc.masters[0];
  assert.ok(m !== undefined);
  await h.mc.restartNode(m);
  await waitFor(
    'block located after the restart',
    async () => (await holders(h, '/m/f').catch(() => [])).length === 1,
    15_000,
  );
  assert.deepEqual(await holders(h, '/m/f'), [w.workerId]);
  // A worker restarted keeps its identity and its blocks.
  const node = h.mc.workers[0];
  assert.ok(node !== undefined);
  await h.mc.restartNode(node);
  const after = (await h.master.call(M.ListWorkers, {})).workers.filter((x) => x.state === 'live');
  assert.deepEqual(
    after.map((x) => x.address.workerId),
    [w.workerId],
  );
  assert.ok((await rpcRead(h.worker(w), blockId)).equals(data));
});
