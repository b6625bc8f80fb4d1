// Proves the worker on the real RPC against a stand-in master, in-process on loopback:
// registration with a full report, heartbeats with block deltas, remote reads identical to
// short-circuit reads, delete/replicate/pin/register commands, drop permission, corruption
// reporting, broken write streams, and readiness on the ops HTTP port.
import { strict as assert } from 'node:assert';
import { closeSync, openSync, readFileSync, readSync, readdirSync, writeSync } from 'node:fs';
import { test } from 'node:test';
import { WorkerCalls } from '../../src/protocol/index.js';
import { randomData } from './store-fixture.js';
import { FakeMaster } from './fake-master.js';
import { rpcRead, rpcWrite, startWorker } from './worker-fixture.js';
import { waitFor } from '../helpers/wait.js';

const KiB = 1024;
const MiB = 1024 * KiB;

test('a worker registers with a full block report, heartbeats deltas and becomes ready', async (t) => {
  const master = await FakeMaster.start(t);
  const first = await startWorker(t, master);
  const id = first.worker.workerId;
  await waitFor('registered', () => master.workers.get(id)?.reportDone === true);
  const ready = await fetch(`${first.webUrl}/ready`);
  assert.equal(ready.status, 200);
  const a = randomData(300 * KiB);
  await rpcWrite(first.client, 1, a, 'DISK');
  await rpcWrite(first.client, 2, randomData(10), 'MEM');
  await waitFor('blocks heartbeated', () => master.workers.get(id)?.blocks.size === 2);
  assert.deepEqual(master.workers.get(id)?.blocks.get(1), { length: a.length, storageType: 'DISK' });
  const w = master.workers.get(id);
  assert.ok(w !== undefined);
  assert.equal(w.address.hostname, '127.0.0.1');
  assert.equal(w.address.rpcPort, first.worker.address.rpcPort);
  assert.match(w.address.hostId, /^[0-9a-f]{32}$/);
  const mem = w.tiers.find((u) => u.storageType === 'MEM');
  assert.ok(mem !== undefined && mem.blocks === 1 && mem.capacityBytes === 8 * MiB);

  // A restarted worker keeps its id and reports what it has.
  const dir = first.dir;
  await first.worker.stop(1000);
  const again = await startWorker(t, master, { dir });
  assert.equal(again.worker.workerId, id);
  await waitFor('re-registered', () => master.registrations.filter((x) => x === id).length === 2);
  await waitFor('full report', () => master.workers.get(id)?.reportDone === true);
  assert.deepEqual([...(master.workers.get(id)?.blocks.keys() ?? [])].sort(), [1, 2]);
  assert.ok((await rpcRead(again.client, 1)).equals(a));
});

test('remote reads return the same bytes as the short-circuit file, at any range', async (t) => {
  const master = await FakeMaster.start(t);
  const w = await startWorker(t, master);
  const data = randomData(5 * MiB + 333);
  assert.deepEqual(await rpcWrite(w.client, 7, data, 'DISK'), { length: data.length, storageType: 'DISK' });
  const remote = await rpcRead(w.client, 7);
  const local = await w.client.call(WorkerCalls.OpenLocalRead, { blockId: 7 });
  assert.equal(local.length, data.length);
  const fromFile = readFileSync(local.path).subarray(0, local.length);
  assert.ok(remote.equals(data));
  assert.ok(fromFile.equals(remote));
  assert.ok((await rpcRead(w.client, 7, 65_535, 2 * MiB)).equals(data.subarray(65_535, 65_535 + 2 * MiB)));
  await assert.rejects(
    rpcRead(w.client, 99),
    (e: unknown) => (e as { code?: string }).code === 'STRATA_BLOCK_NOT_FOUND',
  );
});

test('a cancelled write stream leaves no block; a short-circuit write commits through the wire', async (t) => {
  const master = await FakeMaster.start(t);
  const w = await startWorker(t, master);
  const call = w.client.write(WorkerCalls.WriteBlock, {
    blockId: 3,
    storageType: 'DISK',
    lengthHint: 4 * MiB,
  });
  await call.write(randomData(MiB));
  call.cancel('test cancels');
  await assert.rejects(call.end());
  await waitFor('writer cleaned up', () =>
    w.worker.tiers.allDirs().every((d) => d.pendingBytes === 0 && readdirSync(d.stagingDir).length === 0),
  );
  assert.equal(w.worker.store.has(3), false);

  const data = randomData(600 * KiB);
  const open = await w.client.call(WorkerCalls.OpenLocalWrite, {
    blockId: 4,
    storageType: 'MEM',
    lengthHint: data.length,
  });
  const fd = openSync(open.path, 'w');
  writeSync(fd, data);
  closeSync(fd);
  await w.client.call(WorkerCalls.CommitLocalWrite, { blockId: 4, length: data.length });
  assert.ok((await rpcRead(w.client, 4)).equals(data));
});

test('delete, replicate, pin and register commands are carried out', async (t) => {
  const master = await FakeMaster.start(t);
  const a = await startWorker(t, master);
  const b = await startWorker(t, master);
  const data = randomData(2 * MiB + 1);
  await rpcWrite(a.client, 10, data, 'DISK');
  await rpcWrite(a.client, 11, randomData(100), 'DISK');
  await waitFor('a reported', () => master.workers.get(a.worker.workerId)?.blocks.size === 2);

  master.queue(b.worker.workerId, {
    type: 'replicate',
    tasks: [{ blockId: 10, length: data.length, source: a.worker.address, storageType: 'MEM' }],
  });
  await waitFor(
    'b has the copy',
    () => master.workers.get(b.worker.workerId)?.blocks.has(10) === true,
    10_000,
  );
  assert.ok((await rpcRead(b.client, 10)).equals(data));
  assert.equal(b.worker.store.info(10)?.storageType, 'MEM');

  // A copy whose source does not hold the block fails, leaves nothing, and is reported once.
  master.queue(b.worker.workerId, {
    type: 'replicate',
    tasks: [{ blockId: 12, length: 100, source: a.worker.address, storageType: 'DISK' }],
  });
  await waitFor('the failed copy reported', () =>
    master.workers.get(b.worker.workerId)?.failedReplications.includes(12),
  );
  assert.equal(b.worker.store.has(12), false);
  const beats = master.workers.get(b.worker.workerId)?.heartbeats ?? 0;
  await waitFor(
    'two more heartbeats',
    () => (master.workers.get(b.worker.workerId)?.heartbeats ?? 0) >= beats + 2,
  );
  assert.deepEqual(master.workers.get(b.worker.workerId)?.failedReplications, [12], 'reported once');

  master.queue(a.worker.workerId, { type: 'delete', blockIds: [11] });
  await waitFor('a dropped 11', () => master.workers.get(a.worker.workerId)?.blocks.has(11) === false);
  assert.equal(a.worker.store.has(11), false);

  master.queue(a.worker.workerId, { type: 'pin', blockIds: [10], pinned: true });
  await waitFor('pinned', () => a.worker.store.isPinned(10));

  // A master that lost its state asks for a new registration and gets a full report.
  master.forgetWorkers();
  await waitFor(
    're-registered after master restart',
    () => master.workers.get(a.worker.workerId)?.reportDone === true,
  );
  assert.deepEqual([...(master.workers.get(a.worker.workerId)?.blocks.keys() ?? [])], [10]);
});

test('a full worker asks before dropping; sole copies stay and writes get ENOSPC', async (t) => {
  const master = await FakeMaster.start(t);
  const w = await startWorker(t, master, {
    dataDirs: ['[DISK:3MB]{dir}/disk'],
    extraToml: '[worker.watermarks]\nDISK = { high = 0.8, low = 0.5 }\n',
  });
  const id = w.worker.workerId;
  for (let b = 1; b <= 5; b++) await rpcWrite(w.client, b, randomData(512 * KiB), 'DISK');
  await waitFor('asked about the oldest blocks', () => (master.workers.get(id)?.evictAsked.length ?? 0) > 0);
  assert.ok(master.workers.get(id)?.evictAsked.includes(1));
  // Nothing is allowed to go: a write that does not fit fails with ENOSPC, nothing is lost.
  const started = Date.now();
  await assert.rejects(rpcWrite(w.client, 6, randomData(MiB), 'DISK'), (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'ENOSPC');
    assert.match((e as Error).message, /no space left on this worker/);
    return true;
  });
  assert.ok(Date.now() - started >= 1000, 'the write waited for eviction first');
  assert.equal(w.worker.store.size, 5);
  // Blocks 1 and 2 have another copy: the master allows them to go, and the write then fits.
  master.grantEvict = (b) => b <= 2;
  await rpcWrite(w.client, 6, randomData(MiB), 'DISK');
  assert.deepEqual([...w.worker.store.list()].map((b) => b.blockId).sort(), [3, 4, 5, 6]);
  assert.match(
    await (await fetch(`${w.webUrl}/metrics`)).text(),
    /strata_worker_evictions_total\{tier="DISK",role="worker"\} 2/,
  );
});

test('a flipped byte fails the remote read and the master hears the block is corrupt', async (t) => {
  const master = await FakeMaster.start(t);
  const w = await startWorker(t, master);
  const data = randomData(3 * MiB);
  await rpcWrite(w.client, 21, data, 'DISK');
  const info = w.worker.store.info(21);
  assert.ok(info !== undefined);
  const fd = openSync(info.path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 2 * MiB + 9);
  b[0] = (b[0] ?? 0) ^ 0x80;
  writeSync(fd, b, 0, 1, 2 * MiB + 9);
  closeSync(fd);
  await assert.rejects(rpcRead(w.client, 21), (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'STRATA_BLOCK_CORRUPT');
    assert.match((e as Error).message, /checksum mismatch/);
    return true;
  });
  await waitFor(
    'corrupt reported',
    () => master.workers.get(w.worker.workerId)?.corrupt.includes(21) === true,
  );
  assert.equal(w.worker.store.has(21), false);
});

test('concurrent remote reads of large blocks on one connection, with slow readers, stay byte-exact', async (t) => {
  const master = await FakeMaster.start(t);
  const w = await startWorker(t, master, { dataDirs: ['[DISK:256MB]{dir}/disk'] });
  const blocks = new Map<number, Buffer>();
  for (let id = 1; id <= 3; id++) {
    blocks.set(id, randomData(16 * MiB + id * 4099));
    await rpcWrite(w.client, id, blocks.get(id) as Buffer, 'DISK', MiB);
  }
  // Readers that dawdle make the socket queue fill up, the case where reused buffers would show.
  const reads = [...blocks].flatMap(([id, data]) =>
    [0, 1].map(async (k) => {
      const call = w.client.read(WorkerCalls.ReadBlock, { blockId: id });
      const parts: Buffer[] = [];
      let n = 0;
      for await (const chunk of call) {
        parts.push(Buffer.from(chunk));
        if (++n % (7 + k) === 0) await new Promise((r) => setTimeout(r, 2));
      }
      await call.result;
      assert.ok(Buffer.concat(parts).equals(data), `block ${id} reader ${k}`);
    }),
  );
  await Promise.all(reads);
});
