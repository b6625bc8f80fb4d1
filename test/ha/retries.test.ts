// Exactly-once retries across a failover (three masters on etcd) and across a restart of a lone
// LMDB master: a call repeated with the same request id after its master was killed gets the
// first attempt's outcome (same file, same lease, same block id), never EEXIST/ENOENT/EBADF.
// Every mutating namespace call is retried once across a restart: a handler that does not hand
// its request to the namespace mutation (so nothing is recorded) fails its retry here.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MasterCalls } from '../../src/protocol/index.js';
import { MASTER_CALLS } from '../../src/protocol/master-calls.js';
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

  test('on LMDB: every mutating namespace call, retried after a SIGKILL, answers its first outcome', async (t) => {
    const mini = await MiniCluster.start(t, { masters: 1, workers: 1 });
    const m = mini.masters[0];
    assert.ok(m !== undefined);
    const c = new RpcClient({ addresses: [{ host: '127.0.0.1', port: m.rpcPort }], retryMax: 50 });
    t.after(() => c.close());
    const workerLive = (): Promise<boolean> =>
      waitFor(
        'the worker registered',
        async () => (await c.call(MasterCalls.ListWorkers, {})).workers.some((w) => w.state === 'live'),
        30_000,
      );
    await workerLive();
    const M = MasterCalls;
    const value = Buffer.from('v1');
    // Each step runs once, then (after the kill) again with the same request id, when the state
    // has moved on: without its recorded outcome every retry below fails (EEXIST, ENOENT, EBADF,
    // ENODATA) or answers differently. The steps run in phases, one kill after each, so that a
    // retry comes before later steps of the same writer make it moot (a retried AddBlock after
    // the file was completed, as no writer can send, is refused before any record is read).
    let phase = 0;
    const steps: {
      phase: number;
      name: string;
      run: (id: string) => Promise<unknown>;
      same?: (a: unknown, b: unknown) => void;
    }[] = [];
    const step = <T>(name: string, run: (id: string) => Promise<T>, same?: (a: T, b: T) => void): void => {
      steps.push({
        phase,
        name,
        run,
        ...(same === undefined ? {} : { same: same as (a: unknown, b: unknown) => void }),
      });
    };
    const ids = new Map<string, number>();
    let lease = '';
    let lease2 = '';
    let block = 0;
    let spare = 0;
    const fileId = (): number => ids.get('f') ?? -1;
    step(
      'mkdir',
      (id) => c.call(M.Mkdir, { path: '/d' }, { requestId: id }),
      (a, b) => assert.equal(b.id, a.id),
    );
    step(
      'create',
      async (id) => {
        const r = await c.call(M.Create, { path: '/d/f' }, { requestId: id });
        ids.set('f', r.status.id);
        lease = r.leaseId;
        return r;
      },
      (a, b) => assert.equal(b.leaseId, a.leaseId),
    );
    step(
      'addBlock',
      async (id) => {
        const r = await c.call(M.AddBlock, { fileId: fileId(), leaseId: lease }, { requestId: id });
        block = r.blockId;
        return r;
      },
      (a, b) => assert.equal(b.blockId, a.blockId),
    );
    step('addBlock (spare)', async (id) => {
      const r = await c.call(M.AddBlock, { fileId: fileId(), leaseId: lease }, { requestId: id });
      spare = r.blockId;
      return r;
    });
    step('abandonBlock', (id) =>
      c.call(M.AbandonBlock, { fileId: fileId(), leaseId: lease, blockId: spare }, { requestId: id }),
    );
    phase++;
    step(
      'complete',
      (id) =>
        c.call(
          M.Complete,
          { fileId: fileId(), leaseId: lease, blocks: [{ blockId: block, length: 10 }], length: 10 },
          { requestId: id },
        ),
      (a, b) => assert.equal(b.size, a.size),
    );
    step('setAttr', (id) => c.call(M.SetAttr, { path: '/d/f', mode: 0o600 }, { requestId: id }));
    step('setXattr', (id) =>
      c.call(M.SetXattr, { path: '/d/f', name: 'user.k', flag: 'create' }, { requestId: id, payload: value }),
    );
    step('removeXattr', (id) => c.call(M.RemoveXattr, { path: '/d/f', name: 'user.k' }, { requestId: id }));
    // A second change after each: a retry that ran again would undo it.
    step('setAttr (later)', (id) => c.call(M.SetAttr, { path: '/d/f', mode: 0o640 }, { requestId: id }));
    step('symlink', (id) => c.call(M.Symlink, { target: '/d/f', path: '/d/s' }, { requestId: id }));
    step('link', (id) => c.call(M.Link, { existing: '/d/f', path: '/d/h' }, { requestId: id }));
    step('rename', (id) => c.call(M.Rename, { src: '/d/h', dst: '/d/h2' }, { requestId: id }));
    step('delete', (id) => c.call(M.Delete, { path: '/d/h2' }, { requestId: id }));
    step(
      'openForWrite',
      async (id) => {
        const r = await c.call(M.OpenForWrite, { path: '/d/f' }, { requestId: id });
        lease2 = r.leaseId;
        return r;
      },
      (a, b) => assert.equal(b.leaseId, a.leaseId),
    );
    phase++;
    step(
      'completeAs',
      (id) =>
        c.call(
          M.CompleteAs,
          {
            fileId: fileId(),
            leaseId: lease2,
            blocks: [{ blockId: block, length: 10 }],
            length: 10,
            renameTo: '/d/g',
          },
          { requestId: id },
        ),
      (a, b) => assert.equal(b.path, a.path),
    );
    // Every mutating call the namespace serves is above; the others change no namespace state
    // through a recorded mutation (worker decommission, coordination).
    const covered = new Set([
      'mkdir',
      'create',
      'addBlock',
      'abandonBlock',
      'complete',
      'setAttr',
      'setXattr',
      'removeXattr',
      'symlink',
      'link',
      'rename',
      'delete',
      'openForWrite',
      'completeAs',
    ]);
    const notNamespace = new Set(['decommissionWorker', 'registerWorker']);
    for (const def of MASTER_CALLS) {
      if (!def.mutating) continue;
      const short = def.name.replace(/^master\./, '');
      assert.ok(
        covered.has(short) || notNamespace.has(short),
        `mutating call ${def.name} has no retry step here`,
      );
    }
    for (let p = 0; p <= phase; p++) {
      const these = steps.filter((x) => x.phase === p);
      const first: unknown[] = [];
      for (const x of these) first.push(await x.run(`retry-${x.name}`));
      await mini.stopNode(m, 'SIGKILL');
      await mini.restartNode(m);
      await workerLive();
      for (const [i, x] of these.entries()) {
        const again = await x.run(`retry-${x.name}`).catch((err: unknown) => {
          throw new Error(`retry of ${x.name} failed: ${String(err)}`, { cause: err });
        });
        x.same?.(first[i], again);
      }
    }
    const st = await c.call(M.GetStatus, { path: '/d/g' });
    assert.equal(st.size, 10);
    assert.equal(st.mode & 0o777, 0o640);
    await assert.rejects(c.call(M.GetXattr, { path: '/d/g', name: 'user.k' }), { code: 'ENODATA' });
    await assert.rejects(c.call(M.GetStatus, { path: '/d/h2' }), { code: 'ENOENT' });
    await assert.rejects(c.call(M.Mkdir, { path: '/d' }), { code: 'EEXIST' }, 'a new request is not a retry');
  });
});
