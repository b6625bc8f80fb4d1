// Worker coordination through the master's handlers with a fake clock: registration rules,
// live → blacklisted → lost → re-registered, block reports, orphan and excess deletes,
// re-replication after a loss, decommission draining, delete resends, rebuilding locations after
// a master restart, and the TTL/lease timers. Real intervals over RPC: master-process.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as M from '../../src/protocol/master-calls.js';
import type { WorkerCommand } from '../../src/protocol/types.js';
import { checkNamespace } from '../../src/master/namespace/index.js';
import { waitFor } from '../helpers/wait.js';
import { TEST_TOML, address, openCore, tiers } from './core-helpers.js';
import type { TestCore } from './core-helpers.js';

const GiB = 1024 ** 3;

async function register(c: TestCore, id: string, port: number, avail = 10 * GiB): Promise<void> {
  await c.call(M.RegisterWorker, {
    clusterId: 'test',
    address: address(id, port),
    tiers: tiers(avail),
    version: 'test',
  });
  await c.call(M.BlockReport, { workerId: id, blocks: [], last: true });
}

async function beat(
  c: TestCore,
  id: string,
  extra: { added?: number[]; removed?: number[]; corrupt?: number[] } = {},
): Promise<WorkerCommand[]> {
  const r = await c.call(M.Heartbeat, {
    workerId: id,
    tiers: tiers(10 * GiB),
    ...(extra.added
      ? {
          addedBlocks: extra.added.map((blockId) => ({
            blockId,
            length: 1000,
            storageType: 'DISK' as const,
          })),
        }
      : {}),
    ...(extra.removed ? { removedBlocks: extra.removed } : {}),
    ...(extra.corrupt ? { corruptBlocks: extra.corrupt } : {}),
  });
  return r.commands;
}

async function states(c: TestCore): Promise<Record<string, string>> {
  const { workers } = await c.call(M.ListWorkers, {});
  return Object.fromEntries(workers.map((w) => [w.address.workerId, w.state]));
}

/** Writes a file of one block through the handlers; the chosen workers "store" it. */
async function writeOneBlock(
  c: TestCore,
  path: string,
  replicas: number,
): Promise<{ blockId: number; workers: string[] }> {
  const { status, leaseId } = await c.call(M.Create, { path, replicas });
  const { blockId, workers } = await c.call(M.AddBlock, { fileId: status.id, leaseId });
  const ids = workers.map((w) => w.workerId);
  for (const id of ids) await beat(c, id, { added: [blockId] });
  await c.call(M.Complete, {
    fileId: status.id,
    leaseId,
    blocks: [{ blockId, length: 1000, workers: ids }],
    length: 1000,
  });
  return { blockId, workers: ids };
}

function deletes(cmds: WorkerCommand[]): number[] {
  return cmds.flatMap((x) => (x.type === 'delete' ? x.blockIds : []));
}

function replications(cmds: WorkerCommand[]) {
  return cmds.flatMap((x) => (x.type === 'replicate' ? x.tasks : []));
}

describe('worker coordination', () => {
  test('registration checks the cluster id; unknown workers are told to register', async (t) => {
    const c = await openCore(t);
    await assert.rejects(
      c.call(M.RegisterWorker, {
        clusterId: 'other',
        address: address('w1', 1),
        tiers: tiers(GiB),
        version: 'x',
      }),
      (err: Error & { code?: string }) =>
        err.code === 'STRATA_CLUSTER_MISMATCH' &&
        /belongs to cluster "other"; this master serves cluster "test"/.test(err.message),
    );
    assert.deepEqual(await beat(c, 'nobody'), [{ type: 'register' }]);
    await assert.rejects(c.call(M.BlockReport, { workerId: 'nobody', blocks: [], last: true }), {
      code: 'STRATA_WORKER_UNKNOWN',
    });
    const r = await c.call(M.RegisterWorker, {
      clusterId: 'test',
      address: address('w1', 1),
      tiers: tiers(GiB),
      version: 'x',
    });
    assert.equal(r.heartbeatIntervalMs, 100);
    assert.deepEqual(await beat(c, 'w1'), []);
  });

  test('liveness: live → blacklisted → live → lost → registered again', async (t) => {
    const c = await openCore(t);
    await register(c, 'w1', 1);
    await register(c, 'w2', 2);
    c.clock.now += 301;
    await beat(c, 'w2');
    await c.core.blocks.tick();
    assert.deepEqual(await states(c), { w1: 'blacklisted', w2: 'live' });
    // A blacklisted worker gets no new blocks.
    for (let i = 0; i < 4; i++) {
      const { status, leaseId } = await c.call(M.Create, { path: `/f${i}` });
      const { workers } = await c.call(M.AddBlock, { fileId: status.id, leaseId });
      assert.deepEqual(
        workers.map((w) => w.workerId),
        ['w2'],
      );
    }
    await beat(c, 'w1');
    assert.equal((await states(c)).w1, 'live');
    c.clock.now += 1001;
    await beat(c, 'w2');
    await c.core.blocks.tick();
    assert.equal((await states(c)).w1, 'lost');
    assert.deepEqual(await beat(c, 'w1'), [{ type: 'register' }]);
    await register(c, 'w1', 1);
    assert.equal((await states(c)).w1, 'live');
    const info = await c.call(M.GetClusterInfo, {});
    assert.deepEqual(info.workers, { live: 2, blacklisted: 0, lost: 0, decommissioning: 0 });
  });

  test('a lost worker’s blocks are re-replicated from a live holder', async (t) => {
    const c = await openCore(t);
    for (const [i, id] of ['w1', 'w2', 'w3'].entries()) await register(c, id, i + 1);
    const { blockId, workers } = await writeOneBlock(c, '/f', 2);
    assert.equal(workers.length, 2);
    const spare = ['w1', 'w2', 'w3'].find((w) => !workers.includes(w)) as string;
    const [gone, kept] = workers as [string, string];
    let loc = await c.call(M.GetBlockLocations, { path: '/f' });
    assert.deepEqual(loc.blocks[0]?.workers.map((w) => w.workerId).sort(), [...workers].sort());
    c.clock.now += 1001;
    await beat(c, kept);
    await beat(c, spare);
    await c.core.blocks.tick();
    assert.equal((await states(c))[gone], 'lost');
    const tasks = replications(await beat(c, spare));
    assert.deepEqual(
      tasks.map((x) => [x.blockId, x.source.workerId, x.length]),
      [[blockId, kept, 1000]],
    );
    await beat(c, spare, { added: [blockId] });
    await c.core.blocks.tick();
    assert.deepEqual(replications(await beat(c, spare)), [], 'no second copy once it arrived');
    loc = await c.call(M.GetBlockLocations, { path: '/f' });
    assert.deepEqual(loc.blocks[0]?.workers.map((w) => w.workerId).sort(), [kept, spare].sort());
    assert.equal(loc.status.cachedBytes, 1000);
  });

  test('a replication the worker reports failed is planned again at the next tick, not after its timeout', async (t) => {
    const c = await openCore(t);
    for (const [i, id] of ['w1', 'w2', 'w3'].entries()) await register(c, id, i + 1);
    const { blockId, workers } = await writeOneBlock(c, '/f', 2);
    const spare = ['w1', 'w2', 'w3'].find((w) => !workers.includes(w)) as string;
    const [gone, kept] = workers as [string, string];
    c.clock.now += 1001;
    await beat(c, kept);
    await beat(c, spare);
    await c.core.blocks.tick();
    assert.equal((await states(c))[gone], 'lost');
    assert.deepEqual(
      replications(await beat(c, spare)).map((x) => x.blockId),
      [blockId],
    );
    // In flight: the next ticks plan nothing more while the task may still be running.
    await c.core.blocks.tick();
    assert.deepEqual(replications(await beat(c, spare)), []);
    // The copy failed on the spare: reported, the block is planned again at once (the fake clock
    // has not moved, so the 5-minute task timeout cannot be what frees it).
    const r = await c.call(M.Heartbeat, {
      workerId: spare,
      tiers: tiers(10 * GiB),
      failedReplications: [blockId],
    });
    assert.deepEqual(replications(r.commands), []);
    await c.core.blocks.tick();
    const again = replications(await beat(c, spare));
    assert.deepEqual(
      again.map((x) => [x.blockId, x.source.workerId]),
      [[blockId, kept]],
    );
    // A report for a block that is not in flight on that worker changes nothing.
    await c.call(M.Heartbeat, { workerId: kept, tiers: tiers(10 * GiB), failedReplications: [blockId, 999] });
    await c.core.blocks.tick();
    assert.deepEqual(replications(await beat(c, spare)), []);
  });

  test('placement reserves what the writer expects to write, until the next heartbeat', async (t) => {
    const c = await openCore(t);
    const MiB = 1024 * 1024;
    await register(c, 'w1', 1, 3 * MiB); // room for three 1 MiB blocks
    const { status, leaseId } = await c.call(M.Create, { path: '/small' });
    // Small blocks (a length hint of 1 KiB): a hundred fit where three whole blocks would.
    for (let i = 0; i < 100; i++) await c.call(M.AddBlock, { fileId: status.id, leaseId, lengthHint: 1024 });
    const created = await c.call(M.Create, { path: '/small2', firstBlock: { lengthHint: 1024 } });
    assert.ok(created.firstBlock !== undefined, 'the first block placed with the create');
    // Whole blocks: with ~101 KiB held by the small ones, two fit and the third is refused until
    // a heartbeat clears the reservations.
    const big = await c.call(M.Create, { path: '/big' });
    for (let i = 0; i < 2; i++) await c.call(M.AddBlock, { fileId: big.status.id, leaseId: big.leaseId });
    await assert.rejects(c.call(M.AddBlock, { fileId: big.status.id, leaseId: big.leaseId }), {
      code: 'ENOSPC',
    });
    await c.call(M.Heartbeat, { workerId: 'w1', tiers: tiers(3 * MiB) });
    await c.call(M.AddBlock, { fileId: big.status.id, leaseId: big.leaseId });
  });

  test('orphan blocks and removed files are deleted on the workers, until confirmed', async (t) => {
    const c = await openCore(t);
    await register(c, 'w1', 1);
    assert.deepEqual(
      deletes(await beat(c, 'w1', { added: [424242] })),
      [424242],
      'answered in the same reply',
    );
    assert.deepEqual(deletes(await beat(c, 'w1')), []);
    const { blockId } = await writeOneBlock(c, '/f', 1);
    await c.call(M.Delete, { path: '/f' });
    assert.deepEqual(deletes(await beat(c, 'w1')), [blockId]);
    assert.deepEqual(deletes(await beat(c, 'w1')), [], 'not repeated at once');
    c.clock.now += 100 * 10;
    assert.deepEqual(
      deletes(await beat(c, 'w1')).sort(),
      [424242, blockId].sort(),
      'resent while unconfirmed',
    );
    await beat(c, 'w1', { removed: [blockId, 424242] });
    c.clock.now += 100 * 10;
    assert.deepEqual(deletes(await beat(c, 'w1')), []);
  });

  test('lowering replication deletes excess copies; corrupt copies are replaced', async (t) => {
    const c = await openCore(t);
    for (const [i, id] of ['w1', 'w2', 'w3'].entries()) await register(c, id, i + 1);
    const { blockId, workers } = await writeOneBlock(c, '/f', 2);
    await c.call(M.SetAttr, { path: '/f', replicas: 1 });
    await c.core.blocks.tick();
    const dels = await Promise.all(workers.map(async (w) => deletes(await beat(c, w))));
    assert.equal(dels.flat().length, 1);
    assert.deepEqual(dels.flat(), [blockId]);
    const survivor = workers[dels.findIndex((d) => d.length === 0)] as string;
    assert.deepEqual(
      deletes(await beat(c, survivor, { corrupt: [blockId] })),
      [blockId],
      'the corrupt copy is deleted',
    );
    const loc = await c.call(M.GetBlockLocations, { path: '/f' });
    assert.deepEqual(loc.blocks[0]?.workers, [], 'no readable copy left');
  });

  test('eviction: a copy may be dropped only while another live copy exists', async (t) => {
    const c = await openCore(t);
    for (const [i, id] of ['w1', 'w2'].entries()) await register(c, id, i + 1);
    const single = await writeOneBlock(c, '/single', 1);
    const [holder] = single.workers as [string];
    const ask = async (id: string, candidates: number[]): Promise<number[]> =>
      deletes(
        (await c.call(M.Heartbeat, { workerId: id, tiers: tiers(10 * GiB), evictCandidates: candidates }))
          .commands,
      );
    assert.deepEqual(await ask(holder, [single.blockId]), [], 'the only copy is never dropped');

    const pair = await writeOneBlock(c, '/pair', 2);
    const [a, b] = pair.workers as [string, string];
    // Both holders ask at once: the first is granted, the second now holds the last copy.
    assert.deepEqual(await ask(a, [pair.blockId]), [pair.blockId]);
    assert.deepEqual(await ask(b, [pair.blockId]), [], 'the last copy stays');
    const loc = await c.call(M.GetBlockLocations, { path: '/pair' });
    assert.deepEqual(
      loc.blocks[0]?.workers.map((w) => w.workerId),
      [b],
    );

    await c.call(M.Delete, { path: '/single' });
    assert.ok(
      (await ask(holder, [single.blockId])).includes(single.blockId),
      'a deleted file’s block may go',
    );
  });

  test('decommission drains a worker, then marks it decommissioned', async (t) => {
    const c = await openCore(t);
    for (const [i, id] of ['w1', 'w2', 'w3'].entries()) await register(c, id, i + 1);
    const { blockId, workers } = await writeOneBlock(c, '/f', 1);
    const holder = workers[0] as string;
    await assert.rejects(c.call(M.DecommissionWorker, { worker: 'nope' }), { code: 'STRATA_WORKER_UNKNOWN' });
    const r = await c.call(M.DecommissionWorker, {
      worker: `127.0.0.1:${['w1', 'w2', 'w3'].indexOf(holder) + 1}`,
    });
    assert.equal(r.workerId, holder);
    assert.equal((await states(c))[holder], 'decommissioning');
    await c.core.blocks.tick();
    let target: string | undefined;
    for (const w of ['w1', 'w2', 'w3'].filter((x) => x !== holder)) {
      const tasks = replications(await beat(c, w));
      if (tasks.length > 0) {
        target = w;
        assert.equal(tasks[0]?.source.workerId, holder);
      }
    }
    assert.ok(target !== undefined, 'a replication was scheduled');
    await c.core.blocks.tick();
    assert.equal((await states(c))[holder], 'decommissioning');
    await beat(c, target, { added: [blockId] });
    await c.core.blocks.tick();
    assert.equal((await states(c))[holder], 'decommissioned');
    for (let i = 0; i < 3; i++) {
      const { status, leaseId } = await c.call(M.Create, { path: `/n${i}` });
      const { workers: ws } = await c.call(M.AddBlock, { fileId: status.id, leaseId });
      assert.notEqual(ws[0]?.workerId, holder, 'no new blocks on a decommissioned worker');
    }
  });

  test('AddBlock refuses with ENOSPC and allocates nothing when workers are missing', async (t) => {
    const c = await openCore(t);
    await register(c, 'w1', 1);
    const { status, leaseId } = await c.call(M.Create, { path: '/f', replicas: 3 });
    await assert.rejects(
      c.call(M.AddBlock, { fileId: status.id, leaseId }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ENOSPC');
        assert.match(err.message, /cannot place 3 copies/);
        return true;
      },
    );
    await assert.rejects(c.call(M.AddBlock, { fileId: status.id, leaseId: 'wrong' }), { code: 'EBADF' });
    assert.equal(c.core.namespace.counts().blocks, 0);
    assert.deepEqual((await checkNamespace(c.store)).problems, []);
  });

  test('after a master restart, workers re-register and their reports rebuild the locations', async (t) => {
    const c = await openCore(t);
    await register(c, 'w1', 1);
    const { blockId } = await writeOneBlock(c, '/f', 1);
    await c.core.stop();
    const again = await openCore(t, { store: c.store, clock: c.clock });
    assert.deepEqual((await again.call(M.GetBlockLocations, { path: '/f' })).blocks[0]?.workers, []);
    assert.deepEqual(await beat(again, 'w1'), [{ type: 'register' }]);
    await again.call(M.RegisterWorker, {
      clusterId: 'test',
      address: address('w1', 1),
      tiers: tiers(GiB),
      version: 'x',
    });
    await again.call(M.BlockReport, {
      workerId: 'w1',
      blocks: [
        { blockId, length: 1000, storageType: 'DISK' },
        { blockId: 777, length: 5, storageType: 'DISK' },
      ],
      last: true,
    });
    const loc = await again.call(M.GetBlockLocations, { path: '/f' });
    assert.deepEqual(
      loc.blocks[0]?.workers.map((w) => w.workerId),
      ['w1'],
    );
    assert.deepEqual(deletes(await beat(again, 'w1')), [777], 'the orphan in the report is deleted');
  });

  test('xattr values travel as the raw payload', async (t) => {
    const c = await openCore(t);
    await c.call(M.Mkdir, { path: '/d' });
    await c.call(M.SetXattr, { path: '/d', name: 'user.k' }, Buffer.from([1, 2, 3]));
    const got = await c.callRaw(M.GetXattr, { path: '/d', name: 'user.k' });
    assert.deepEqual([...got.payload], [1, 2, 3]);
    assert.deepEqual((await c.call(M.ListXattr, { path: '/d' })).names, ['user.k']);
  });
});

describe('periodic work', () => {
  test('the TTL checker and lease recovery run on their timers', async (t) => {
    const toml = TEST_TOML.replace(
      'file_lease_timeout = 60000',
      'file_lease_timeout = 200\nttl_checker_interval = 50',
    );
    const c = await openCore(t, { toml, extra: { clock: Date.now } });
    c.core.start();
    const { status, leaseId } = await c.call(M.Create, { path: '/short', ttlMs: 100, ttlAction: 'delete' });
    await c.call(M.Complete, { fileId: status.id, leaseId, blocks: [], length: 0 });
    const w = await c.call(M.Create, { path: '/abandoned' });
    await waitFor(
      'TTL deletion',
      async () => !(await c.core.namespace.list('/')).entries.some((e) => e.name === 'short'),
      5000,
    );
    await waitFor(
      'lease expiry',
      async () => (await c.call(M.GetStatus, { path: '/abandoned' })).state === 'complete',
      5000,
    );
    await assert.rejects(c.call(M.AddBlock, { fileId: w.status.id, leaseId: w.leaseId }), { code: 'EBADF' });
  });
});
