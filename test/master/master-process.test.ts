// `strata master` as a real child process: readiness, namespace calls over RPC with their FsErrors,
// retried request ids answered once, worker liveness over real (short) intervals, the HTTP API
// and metric names, the one-master-per-directory lock, format_master, and a graceful SIGTERM.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import * as M from '../../src/protocol/master-calls.js';
import type { WorkerCommand } from '../../src/protocol/types.js';
import { RpcClient } from '../../src/rpc/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { startStrata } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { address, tiers } from './core-helpers.js';

const FAST = `heartbeat_interval = 100
worker_blacklist_interval = 400
worker_lost_interval = 1200
admin_token = "s3cret-token"`;

async function cluster(t: TestContext, masterToml = FAST): Promise<{ mc: MiniCluster; client: RpcClient }> {
  const mc = await MiniCluster.start(t, { workers: 0, masterToml });
  const client = new RpcClient({
    addresses: [{ host: '127.0.0.1', port: mc.masters[0]?.rpcPort ?? 0 }],
    retryMax: 2,
  });
  t.after(() => client.close());
  return { mc, client };
}

function web(mc: MiniCluster, path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${mc.masters[0]?.webPort ?? 0}${path}`);
}

describe('strata master process', () => {
  test('serves the namespace over RPC with FsErrors for bad requests', async (t) => {
    const { client } = await cluster(t);
    await client.call(M.Mkdir, { path: '/a/b', parents: true });
    const { status, leaseId } = await client.call(M.Create, { path: '/a/b/f' });
    await client.call(M.Complete, { fileId: status.id, leaseId, blocks: [], length: 0 });
    const l = await client.call(M.List, { path: '/a/b' });
    assert.deepEqual(
      l.entries.map((e) => [e.name, e.state]),
      [['f', 'complete']],
    );
    const bad: [string, string][] = [
      ['relative/path', 'EINVAL'],
      ['/a//b', 'EINVAL'],
      ['/a/../b', 'EINVAL'],
      [`/${'n'.repeat(300)}`, 'ENAMETOOLONG'],
      [`/${'d/'.repeat(2100)}x`, 'ENAMETOOLONG'],
    ];
    for (const [path, code] of bad) {
      await assert.rejects(client.call(M.GetStatus, { path }), { code }, path.slice(0, 30));
      await assert.rejects(client.call(M.Mkdir, { path }), { code });
    }
    await assert.rejects(client.call(M.GetStatus, { path: '/missing' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /\/missing: no such file or directory/);
      return true;
    });
    await assert.rejects(client.call(M.Delete, { path: '/a' }), { code: 'ENOTEMPTY' });
    await assert.rejects(client.call(M.Rename, { src: '/a', dst: '/a/b/c' }), { code: 'EINVAL' });
    await client.call(M.SetXattr, { path: '/a', name: 'user.x' }, { payload: Buffer.from('v') });
    const x = await client.callWithPayload(M.GetXattr, { path: '/a', name: 'user.x' });
    assert.equal(x.payload.toString(), 'v');
  });

  test('a retried request id returns the first outcome, not EEXIST or a second effect', async (t) => {
    const { client } = await cluster(t);
    const requestId = randomUUID();
    const first = await client.call(M.Create, { path: '/once' }, { requestId });
    const again = await client.call(M.Create, { path: '/once' }, { requestId });
    assert.equal(again.leaseId, first.leaseId);
    assert.equal(again.status.id, first.status.id);
    await assert.rejects(
      client.call(M.Create, { path: '/once' }),
      { code: 'EEXIST' },
      'a new request id runs for real',
    );
    // An empty file created complete in one call: a retry gets the same file, no second one.
    const empty = randomUUID();
    const e1 = await client.call(M.Create, { path: '/empty', complete: true }, { requestId: empty });
    const e2 = await client.call(M.Create, { path: '/empty', complete: true }, { requestId: empty });
    assert.deepEqual([e1.leaseId, e1.status.state, e1.status.size], ['', 'complete', 0]);
    assert.equal(e2.status.id, e1.status.id);
    assert.equal((await client.call(M.GetStatus, { path: '/empty' })).state, 'complete');
    const mk = randomUUID();
    await client.call(M.Mkdir, { path: '/d' }, { requestId: mk });
    await client.call(M.Mkdir, { path: '/d' }, { requestId: mk });
    const del = randomUUID();
    await client.call(M.Delete, { path: '/d' }, { requestId: del });
    await client.call(M.Delete, { path: '/d' }, { requestId: del });
    // An error outcome is remembered too.
    const bad = randomUUID();
    await assert.rejects(client.call(M.Delete, { path: '/nope' }, { requestId: bad }), { code: 'ENOENT' });
    await client.call(M.Mkdir, { path: '/nope' });
    await assert.rejects(client.call(M.Delete, { path: '/nope' }, { requestId: bad }), { code: 'ENOENT' });
  });

  test('worker liveness over real intervals: live → blacklisted → lost → registered again', async (t) => {
    const { client } = await cluster(t);
    const state = async (): Promise<string | undefined> =>
      (await client.call(M.ListWorkers, {})).workers.find((w) => w.address.workerId === 'w1')?.state;
    await assert.rejects(
      client.call(M.RegisterWorker, {
        clusterId: 'another',
        address: address('w1', 7001),
        tiers: tiers(1 << 30),
        version: 't',
      }),
      { code: 'STRATA_CLUSTER_MISMATCH' },
    );
    await client.call(M.RegisterWorker, {
      clusterId: 'mini',
      address: address('w1', 7001),
      tiers: tiers(1 << 30),
      version: 't',
    });
    await client.call(M.BlockReport, { workerId: 'w1', blocks: [], last: true });
    assert.equal(await state(), 'live');
    await waitFor('blacklisted', async () => (await state()) === 'blacklisted', 5000);
    await waitFor('lost', async () => (await state()) === 'lost', 5000);
    const hb = await client.call(M.Heartbeat, { workerId: 'w1', tiers: tiers(1 << 30) });
    assert.deepEqual(hb.commands, [{ type: 'register' } satisfies WorkerCommand]);
    await client.call(M.RegisterWorker, {
      clusterId: 'mini',
      address: address('w1', 7001),
      tiers: tiers(1 << 30),
      version: 't',
    });
    assert.equal(await state(), 'live');
    const info = await client.call(M.GetClusterInfo, {});
    assert.equal(info.clusterId, 'mini');
    assert.equal(info.workers.live, 1);
    assert.equal(info.capacityBytes, 10 * (1 << 30));
  });

  test('HTTP: metrics names, overview, workers, browse pages, masked config', async (t) => {
    const { mc, client } = await cluster(t);
    for (let i = 0; i < 5; i++) await client.call(M.Mkdir, { path: `/dir/e${i}`, parents: true });
    const metrics = await (await web(mc, '/metrics')).text();
    for (const name of [
      'strata_master_capacity',
      'strata_master_available',
      'strata_master_fs_used',
      'strata_master_num_blocks',
      'strata_master_worker_num',
      'strata_master_inode_dir_num',
      'strata_master_inode_file_num',
      'strata_rpc_server_requests_total',
      'strata_rpc_server_request_duration_seconds_bucket',
    ])
      assert.match(metrics, new RegExp(`^${name}\\{`, 'm'), name);
    assert.match(metrics, /^strata_master_inode_dir_num\{[^}]*\} 7$/m);
    assert.match(metrics, /strata_rpc_server_requests_total\{[^}]*call="master.mkdir"[^}]*\} 5/);
    const overview = (await (await web(mc, '/api/overview')).json()) as { namespace: { dirs: number } };
    assert.equal(overview.namespace.dirs, 7);
    const page1 = (await (await web(mc, '/api/browse?path=/dir&limit=2')).json()) as {
      entries: { name: string }[];
      nextStartAfter?: string;
    };
    assert.deepEqual(
      page1.entries.map((e) => e.name),
      ['e0', 'e1'],
    );
    assert.equal(page1.nextStartAfter, 'e1');
    const page2 = (await (await web(mc, `/api/browse?path=/dir&limit=10&startAfter=e1`)).json()) as {
      entries: { name: string }[];
    };
    assert.deepEqual(
      page2.entries.map((e) => e.name),
      ['e2', 'e3', 'e4'],
    );
    const missing = await web(mc, '/api/browse?path=/nope');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'ENOENT');
    assert.equal((await web(mc, '/api/browse?path=/&limit=0')).status, 400);
    const config = await (await web(mc, '/api/config')).text();
    assert.doesNotMatch(config, /s3cret-token/);
    assert.match(config, /"admin_token":"\*\*\*"/);
    assert.equal((await web(mc, '/api/workers')).status, 200);
    for (const p of ['/health', '/live', '/ready']) assert.equal((await web(mc, p)).status, 200, p);
  });

  test('one master per directory; SIGTERM stops cleanly; format_master wipes', async (t) => {
    const { mc, client } = await cluster(t);
    await client.call(M.Mkdir, { path: '/kept' });
    const node = mc.masters[0];
    assert.ok(node !== undefined);
    const second = startStrata(['master', '--conf', node.confPath], { t });
    assert.notEqual(await second.exited, 0);
    assert.match(
      second.stderr + second.stdout,
      /in use by another master \(pid \d+\)|EADDRINUSE|cannot listen/,
    );
    assert.equal(await mc.stopNode(node, 'SIGTERM'), 0, 'graceful stop exits 0');
    await mc.restartNode(node);
    assert.equal((await client.call(M.GetStatus, { path: '/kept' })).type, 'dir');
    await mc.stopNode(node, 'SIGTERM');
    writeFileSync(node.confPath, `format_master = true\n${readFileSync(node.confPath, 'utf8')}`);
    await mc.restartNode(node);
    await assert.rejects(client.call(M.GetStatus, { path: '/kept' }), { code: 'ENOENT' });
  });
});
