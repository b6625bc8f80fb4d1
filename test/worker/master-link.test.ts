// Proves the worker's master link against a scripted in-memory master client: paged full
// reports, heartbeat deltas (last change wins, failed heartbeats give their changes back),
// re-registration on a `register` command or a refusal, and drop candidates riding on heartbeats.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { StrataError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logging.js';
import { MasterCalls } from '../../src/protocol/index.js';
import type { WorkerCommand } from '../../src/protocol/index.js';
import type { CallOptions, UnaryCall } from '../../src/rpc/api.js';
import { BlockDelta } from '../../src/worker/block-delta.js';
import { MasterLink } from '../../src/worker/master-link.js';
import type { MasterClient } from '../../src/worker/master-link.js';
import { waitFor } from '../helpers/wait.js';
import { openFixture, randomData, writeBlock } from './store-fixture.js';

interface Sent {
  name: string;
  req: Record<string, unknown>;
}

class ScriptedMaster implements MasterClient {
  readonly sent: Sent[] = [];
  /** Returns a reply, or throws to fail the call. */
  answer: (name: string, req: Record<string, unknown>) => unknown = (name) =>
    name === 'master.registerWorker'
      ? { heartbeatIntervalMs: 20 }
      : name === 'master.heartbeat'
        ? { commands: [] }
        : {};

  async call<Req, Res>(def: UnaryCall<Req, Res>, req: Req, _opts?: CallOptions): Promise<Res> {
    const r = req as Record<string, unknown>;
    this.sent.push({ name: def.name, req: r });
    return this.answer(def.name, r) as Res;
  }

  named(name: string): Record<string, unknown>[] {
    return this.sent.filter((s) => s.name === name).map((s) => s.req);
  }
}

test('the delta keeps the last change per block and gives failed batches back under newer ones', () => {
  const d = new BlockDelta();
  d.record({ kind: 'added', blockId: 1, lengthBytes: 10, storageType: 'MEM' });
  d.record({ kind: 'added', blockId: 2, lengthBytes: 20, storageType: 'MEM' });
  d.record({ kind: 'removed', blockId: 1, reason: 'deleted', fileBytes: 0, storageType: 'MEM' });
  d.record({ kind: 'removed', blockId: 3, reason: 'replaced', fileBytes: 0, storageType: 'MEM' });
  const batch = d.take(100);
  assert.deepEqual(batch, {
    added: [{ blockId: 2, length: 20, storageType: 'MEM' }],
    removed: [1],
    corrupt: [],
  });
  d.record({ kind: 'corrupt', blockId: 2, reason: 'x' });
  d.restore(batch);
  assert.deepEqual(d.take(100), { added: [], removed: [1], corrupt: [2] });
  d.record({ kind: 'added', blockId: 5, lengthBytes: 1, storageType: 'SSD' });
  d.markCorrupt(6);
  d.resetForFullReport();
  assert.deepEqual(d.take(100), { added: [], removed: [], corrupt: [6] });
});

test('registration sends the full report in pages; heartbeats carry deltas and drop candidates', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[DISK:64MB]{dir}/disk'] });
  for (let id = 1; id <= 7; id++) await writeBlock(f.store, id, randomData(1000 + id), 'DISK');
  const master = new ScriptedMaster();
  const delta = new BlockDelta();
  f.store.on((e) => delta.record(e));
  const candidates: number[][] = [[], [5, 6]];
  const commands: WorkerCommand[] = [];
  const link = new MasterLink({
    client: master,
    clusterId: 'test',
    address: { workerId: f.workerId, hostname: 'h', rpcPort: 1, webPort: 2, hostId: 'x' },
    version: 'v',
    store: f.store,
    delta,
    tierUsage: () => f.tiers.usage(),
    heartbeatIntervalMs: 1000,
    onCommand: async (c) => {
      commands.push(c);
    },
    takeEvictCandidates: () => candidates.shift() ?? [],
    log: silentLogger(),
    reportPageBlocks: 3,
  });
  t.after(() => link.stop());
  link.start();
  await waitFor('registered', () => link.everRegistered);
  const pages = master.named('master.blockReport');
  assert.deepEqual(
    pages.map((p) => [(p.blocks as unknown[]).length, p.last]),
    [
      [3, false],
      [3, false],
      [1, true],
    ],
  );
  assert.equal(link.heartbeatIntervalMs, 20, 'the master sets the interval');
  await writeBlock(f.store, 8, randomData(5), 'DISK');
  await f.store.delete(2);
  // The two changes may ride on one heartbeat or two: gather them.
  const seen = (key: 'addedBlocks' | 'removedBlocks'): unknown[] =>
    master.named('master.heartbeat').flatMap((h) => (Array.isArray(h[key]) ? (h[key] as unknown[]) : []));
  await waitFor(
    'delta heartbeated',
    () => seen('addedBlocks').length > 0 && seen('removedBlocks').length > 0,
  );
  assert.deepEqual(seen('addedBlocks'), [{ blockId: 8, length: 5, storageType: 'DISK' }]);
  assert.deepEqual(seen('removedBlocks'), [2]);
  assert.ok(master.named('master.heartbeat').some((h) => JSON.stringify(h.evictCandidates) === '[5,6]'));

  // A failing heartbeat gives its changes back; they arrive with the next one that succeeds.
  let failing = true;
  master.answer = (name) => {
    if (name === 'master.heartbeat' && failing) throw new StrataError('STRATA_CONNECTION', 'down');
    return name === 'master.registerWorker'
      ? { heartbeatIntervalMs: 20 }
      : name === 'master.heartbeat'
        ? { commands: [] }
        : {};
  };
  await f.store.delete(3);
  await new Promise((r) => setTimeout(r, 100));
  failing = false;
  await waitFor('removal delivered after the outage', () =>
    master.named('master.heartbeat').some((h) => JSON.stringify(h.removedBlocks) === '[3]'),
  );

  // A `register` command, or a refusal that is not retryable, leads to a new full report.
  const before = master.named('master.registerWorker').length;
  master.answer = (name) =>
    name === 'master.registerWorker'
      ? { heartbeatIntervalMs: 20 }
      : name === 'master.heartbeat'
        ? { commands: [{ type: 'register' }, { type: 'delete', blockIds: [4] }] }
        : {};
  await waitFor('re-registered', () => master.named('master.registerWorker').length > before);
  assert.ok(commands.some((c) => c.type === 'delete'));
  const n = master.named('master.registerWorker').length;
  master.answer = (name) => {
    if (name === 'master.heartbeat') throw new StrataError('STRATA_UNKNOWN_WORKER', 'who are you');
    return name === 'master.registerWorker' ? { heartbeatIntervalMs: 20 } : {};
  };
  await waitFor('re-registered after a refusal', () => master.named('master.registerWorker').length > n);
  assert.equal(MasterCalls.Heartbeat.name, 'master.heartbeat');
});
