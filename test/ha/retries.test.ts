// Exactly-once retries across a failover (three masters on etcd) and across a restart of a lone
// LMDB master: a call repeated with the same request id after its master was killed gets the
// first attempt's outcome (same file, same lease, same block id), never EEXIST/ENOENT/EBADF.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MasterCalls } from '../../src/protocol/index.js';
import { RpcClient } from '../../src/rpc/index.js';
import { requireTools } from '../helpers/ci.js';
import { ETCD_BIN } from '../helpers/etcd.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { HaCluster } from './ha-cluster.js';

const skip = requireTools(ETCD_BIN);

describe('exactly-once retries', { timeout: 120_000 }, () => {
  test('on etcd: every mutating call retried on the next leader replays its outcome', { skip }, async (t) => {
    const ha = await HaCluster.start(t, { masters: 3, workers: 1 });
    const c = ha.client();
    let leader = await ha.waitLeader();
    // Placement needs the worker registered with the leader of the moment.
    const workerBack = (): Promise<boolean> =>
      waitFor('the worker registered with the leader', async () => (await ha.liveWorkers(c)) === 1, 20_000);
    await workerBack();
    // Operations: every master is ready (a standby can take over), one leads, the others point to it.
    const info = await c.call(MasterCalls.GetClusterInfo, {});
    assert.equal(info.masters.length, 3);
    assert.deepEqual(
      info.masters.filter((x) => x.role === 'leader').map((x) => x.address),
      [`127.0.0.1:${leader.rpcPort}`],
    );
    for (const m of ha.masters) {
      const ready = await fetch(`http://127.0.0.1:${m.webPort}/ready`);
      assert.equal(ready.status, 200, `master-${m.index} /ready`);
      const res = await fetch(`http://127.0.0.1:${m.webPort}/leader`);
      const body = (await res.json()) as { role: string; leader: string };
      assert.equal(res.status, m === leader ? 200 : 503);
      assert.equal(body.role, m === leader ? 'leader' : 'standby');
      assert.equal(body.leader, `127.0.0.1:${leader.rpcPort}`);
    }
    const failover = async (): Promise<void> => {
      await ha.mini.stopNode(leader, 'SIGKILL');
      const next = await ha.waitLeader(leader);
      await ha.mini.restartNode(leader);
      leader = next;
      await workerBack();
    };
    const created = await c.call(
      MasterCalls.Create,
      { path: '/f', parents: true },
      { requestId: 'create-f' },
    );
    const dir = await c.call(MasterCalls.Mkdir, { path: '/d' }, { requestId: 'mkdir-d' });
    const block = await c.call(
      MasterCalls.AddBlock,
      { fileId: created.status.id, leaseId: created.leaseId },
      { requestId: 'add-block' },
    );
    await failover();
    const again = await c.call(MasterCalls.Create, { path: '/f', parents: true }, { requestId: 'create-f' });
    assert.equal(again.status.id, created.status.id);
    assert.equal(again.leaseId, created.leaseId);
    assert.equal((await c.call(MasterCalls.Mkdir, { path: '/d' }, { requestId: 'mkdir-d' })).id, dir.id);
    const block2 = await c.call(
      MasterCalls.AddBlock,
      { fileId: created.status.id, leaseId: created.leaseId },
      { requestId: 'add-block' },
    );
    assert.equal(block2.blockId, block.blockId, 'the same block, not a second one');
    await assert.rejects(
      c.call(MasterCalls.Create, { path: '/f' }),
      { code: 'EEXIST' },
      'a new request is not a retry',
    );

    const completeReq = {
      fileId: created.status.id,
      leaseId: created.leaseId,
      blocks: [{ blockId: block.blockId, length: 10 }],
      length: 10,
    };
    await c.call(MasterCalls.Complete, completeReq, { requestId: 'complete-f' });
    await c.call(MasterCalls.Rename, { src: '/f', dst: '/g' }, { requestId: 'rename-f' });
    await failover();
    const st = await c.call(MasterCalls.Complete, completeReq, { requestId: 'complete-f' });
    assert.equal(st.state, 'complete');
    assert.equal(st.size, 10);
    await c.call(MasterCalls.Rename, { src: '/f', dst: '/g' }, { requestId: 'rename-f' });
    await c.call(MasterCalls.Delete, { path: '/g' }, { requestId: 'delete-g' });
    await failover();
    await c.call(MasterCalls.Delete, { path: '/g' }, { requestId: 'delete-g' });
    await assert.rejects(c.call(MasterCalls.GetStatus, { path: '/g' }), { code: 'ENOENT' });
    const list = await c.call(MasterCalls.List, { path: '/' });
    assert.deepEqual(
      list.entries.map((e) => e.name),
      ['d'],
    );
  });

  test('on LMDB: a retry after the master was killed and restarted replays its outcome', async (t) => {
    const mini = await MiniCluster.start(t, { masters: 1, workers: 0 });
    const m = mini.masters[0];
    assert.ok(m !== undefined);
    const c = new RpcClient({ addresses: [{ host: '127.0.0.1', port: m.rpcPort }], retryMax: 50 });
    t.after(() => c.close());
    const created = await c.call(MasterCalls.Create, { path: '/x' }, { requestId: 'lmdb-create' });
    await mini.stopNode(m, 'SIGKILL');
    await mini.restartNode(m);
    const again = await c.call(MasterCalls.Create, { path: '/x' }, { requestId: 'lmdb-create' });
    assert.equal(again.leaseId, created.leaseId);
    await assert.rejects(c.call(MasterCalls.Create, { path: '/x' }), { code: 'EEXIST' });
  });
});
