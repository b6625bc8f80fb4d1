// Proves background scrubbing: a pass finds a block damaged on disk without any client read,
// drops it and reports it, paces itself at the configured rate (injected clock), and in a real
// cluster (MiniCluster) the master drops the bad location and copies the block again.
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { createRegistry } from '../../src/common/metrics.js';
import { MasterCalls as M, WorkerCalls as W } from '../../src/protocol/index.js';
import type { WorkerAddress } from '../../src/protocol/index.js';
import { RpcClient } from '../../src/rpc/index.js';
import { CHUNK_SIZE_BYTES } from '../../src/protocol/block-format.js';
import type { BlockEvent } from '../../src/worker/block-store.js';
import { Scrubber } from '../../src/worker/scrubber.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { openFixture, randomData, readBlock, writeBlock } from './store-fixture.js';
import { rpcRead, rpcWrite, flipByte } from './worker-fixture.js';

const MiB = 1024 * 1024;

async function metric(
  registry: ReturnType<typeof createRegistry>,
  name: string,
  labels = '',
): Promise<number> {
  const text = await registry.metrics();
  // Every line also carries the registry's default labels (role).
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`) && l.includes('} '));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

test('a scrub pass finds a flipped byte in an unread block, drops it and reports it; good blocks stay', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[MEM:8MB]{dir}/mem', '[DISK:64MB]{dir}/disk'] });
  const events: BlockEvent[] = [];
  f.store.on((e) => events.push(e));
  const good = randomData(3 * CHUNK_SIZE_BYTES + 5);
  const bad = randomData(5 * CHUNK_SIZE_BYTES);
  await writeBlock(f.store, 1, good, 'MEM');
  const badInfo = await writeBlock(f.store, 2, bad, 'DISK');
  await writeBlock(f.store, 3, good, 'DISK');
  flipByte(badInfo.path, 4 * CHUNK_SIZE_BYTES + 9);

  const registry = createRegistry('worker');
  const reported: number[] = [];
  const scrubber = new Scrubber({
    store: f.store,
    rateBytesPerSec: 0,
    intervalMs: 60_000,
    onCorrupt: (id) => reported.push(id),
    registry,
    log: silentLogger(),
  });
  assert.equal(scrubber.enabled, false, 'rate 0 disables the background passes');
  const r = await scrubber.runPass();
  assert.deepEqual(r.corrupt, [2]);
  assert.deepEqual(reported, [2]);
  assert.equal(r.blocks, 3);
  assert.equal(f.store.has(2), false);
  assert.equal(existsSync(badInfo.path), false);
  assert.ok(events.some((e) => e.kind === 'corrupt' && e.blockId === 2));
  assert.ok((await readBlock(f.store, 1)).equals(good));
  assert.ok((await readBlock(f.store, 3)).equals(good));
  assert.equal(await metric(registry, 'strata_worker_scrub_blocks_total', 'outcome="ok"'), 2);
  assert.equal(await metric(registry, 'strata_worker_scrub_blocks_total', 'outcome="corrupt"'), 1);
  assert.equal(await metric(registry, 'strata_worker_scrub_passes_total'), 1);
  // The bad block's one read window failed verification as a whole: none of it counts.
  assert.equal(await metric(registry, 'strata_worker_scrub_bytes_total'), 2 * good.length);

  // A damaged trailer is found too (the file no longer describes itself).
  const info4 = await writeBlock(f.store, 4, good, 'DISK');
  flipByte(info4.path, info4.fileBytes - 2);
  assert.deepEqual((await scrubber.runPass()).corrupt, [4]);
  assert.equal(f.store.has(4), false);
});

test('a scrub pass is paced at the configured rate', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[DISK:64MB]{dir}/disk'] });
  for (let id = 1; id <= 4; id++) await writeBlock(f.store, id, randomData(2 * MiB + id), 'DISK');
  const total = 4 * 2 * MiB + 10;
  // A clock that only moves when the scrubber sleeps: reads take no time, so the sleeps alone
  // must stretch the pass to bytes / rate.
  let nowMs = 1000;
  const sleeps: number[] = [];
  const rate = 8 * MiB;
  const scrubber = new Scrubber({
    store: f.store,
    rateBytesPerSec: rate,
    intervalMs: 60_000,
    log: silentLogger(),
    now: () => nowMs,
    sleep: async (ms) => {
      sleeps.push(ms);
      nowMs += ms;
    },
  });
  const r = await scrubber.runPass();
  assert.equal(r.bytes, total);
  const elapsedMs = nowMs - 1000;
  const expectedMs = (total / rate) * 1000;
  assert.ok(elapsedMs <= expectedMs + 1, `slept ${elapsedMs} ms, at most ${expectedMs} expected`);
  assert.ok(elapsedMs >= expectedMs - 5, `slept ${elapsedMs} ms, about ${expectedMs} expected`);
  assert.ok(
    sleeps.every((ms) => ms >= 5),
    'no timer shorter than the pacing step',
  );
});

test('in a cluster, a block damaged on disk is found by the scrubber and copied again, with no read', async (t) => {
  const mc = await MiniCluster.start(t, {
    workers: 3,
    // Blacklisting well above a heartbeat delay on a loaded machine: a worker blacklisted for a
    // moment has its copy not counted, the master re-replicates from the damaged copy, and that
    // read, not the scrubber, finds the damage (seen once in CI).
    masterToml: 'heartbeat_interval = 100\nworker_blacklist_interval = 10000\nworker_lost_interval = 20000',
    workerTiers: () => ['[DISK:128MB]{dir}/disk'],
    workerToml: 'scrub_rate = "64MB"\nscrub_interval = "200ms"',
  });
  const master = new RpcClient({ addresses: [{ host: '127.0.0.1', port: mc.masters[0]?.rpcPort ?? 0 }] });
  const clients: RpcClient[] = [];
  const worker = (a: WorkerAddress): RpcClient => {
    const c = new RpcClient({ addresses: [{ host: '127.0.0.1', port: a.rpcPort }], retryMax: 0 });
    clients.push(c);
    return c;
  };
  t.after(async () => {
    await master.close();
    for (const c of clients) await c.close();
  });
  await waitFor(
    'three live workers',
    async () => (await master.call(M.ListWorkers, {})).workers.length === 3,
  );

  const data = randomData(3 * MiB + 7);
  const { status, leaseId } = await master.call(M.Create, { path: '/s/f', replicas: 2, parents: true });
  const { blockId, workers } = await master.call(M.AddBlock, { fileId: status.id, leaseId });
  const [bad, good] = workers as [WorkerAddress, WorkerAddress];
  for (const w of workers) await rpcWrite(worker(w), blockId, data, 'DISK');
  await master.call(M.Complete, {
    fileId: status.id,
    leaseId,
    blocks: [{ blockId, length: data.length, workers: workers.map((w) => w.workerId) }],
    length: data.length,
  });
  const holders = async (): Promise<string[]> =>
    ((await master.call(M.GetBlockLocations, { path: '/s/f' })).blocks[0]?.workers ?? [])
      .map((w) => w.workerId)
      .sort();
  await waitFor('both copies located', async () => (await holders()).length === 2);

  // Damage the copy on `bad` on disk (OpenLocalRead only names the file; no data is read).
  const badClient = worker(bad);
  const { path } = await badClient.call(W.OpenLocalRead, { blockId });
  flipByte(path, 2 * MiB + 100);

  // The master hears of it from the scrubber alone: the location goes, then a copy is made again.
  const seen = await waitFor(
    'the damaged location dropped by the master',
    async () => {
      const h = await holders();
      return h.includes(bad.workerId) ? undefined : h;
    },
    20_000,
    10,
  );
  assert.ok(seen.includes(good.workerId));
  await waitFor('two good copies again', async () => (await holders()).length === 2, 20_000);
  const addrs = (await master.call(M.GetBlockLocations, { path: '/s/f' })).blocks[0]?.workers ?? [];
  for (const a of addrs) assert.ok((await rpcRead(worker(a), blockId)).equals(data), `copy on ${a.workerId}`);
  const text = await (await fetch(`http://127.0.0.1:${bad.webPort}/metrics`)).text();
  assert.match(text, /strata_worker_scrub_blocks_total\{outcome="corrupt"[^}]*\} 1\n/);
  assert.match(text, /strata_worker_checksum_failures_total\{[^}]*\} 1\n/);
});
