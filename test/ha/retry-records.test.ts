// Request outcomes recorded in the mutation's own transaction, in process on the re-running
// remote-like memory engine and on LMDB: a retry with the same request key replays the first
// outcome (also where the namespace would refuse it: EEXIST, EBADF, ENOENT), another key does not,
// and expired records are swept.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { LmdbStore, MemoryStore } from '../../src/meta/index.js';
import type { MetaStore } from '../../src/meta/index.js';
import { RetryRecords } from '../../src/master/ha/retry-records.js';
import { requestScope } from '../../src/master/namespace/recorder.js';
import { ROOT_CALLER } from '../../src/master/namespace/index.js';
import { Namespace } from '../../src/master/namespace/index.js';
import { TAG_RETRY, TAG_RETRY_EXPIRY } from '../../src/master/namespace/keys.js';
import { checkNamespace } from '../../src/master/namespace/index.js';
import { tempDir } from '../helpers/tmp.js';

const TTL_MS = 60_000;

async function openNs(
  store: MetaStore,
  clock: () => number,
  records = new RetryRecords({ store, ttlMs: TTL_MS, log: silentLogger(), clock }),
): Promise<{ ns: Namespace; records: RetryRecords }> {
  const ns = await Namespace.open({
    store,
    clusterId: 'test',
    defaults: { blockSizeBytes: 1 << 20, replicas: 1, storageType: 'DISK', ttlMs: 0, ttlAction: 'none' },
    leaseTimeoutMs: 60_000,
    log: silentLogger(),
    clock,
    recorder: records,
  });
  return { ns, records };
}

const engines: { name: string; open: (t: { after: (fn: () => unknown) => void }) => Promise<MetaStore> }[] = [
  { name: 'memory-remote', open: async () => new MemoryStore({ remote: true }) },
  {
    name: 'lmdb',
    open: async (t) => {
      const store = await LmdbStore.open({ dir: tempDir(t, 'strata-retry-') });
      t.after(() => store.close());
      return store;
    },
  },
];

for (const engine of engines) {
  describe(`request outcome records (${engine.name})`, () => {
    test('a retry replays the first outcome, even where the namespace would now refuse', async (t) => {
      const store = await engine.open(t);
      const now = 1_000_000;
      const clock = (): number => now;
      // A fresh namespace per attempt: nothing in memory survives (like a new leader).
      const first = await openNs(store, clock);
      const created = await first.ns.create('/f', {}, ROOT_CALLER, requestScope('103:req-1'));
      const again = await openNs(store, clock);
      const replay = await again.ns.create('/f', {}, ROOT_CALLER, requestScope('103:req-1'));
      assert.equal(replay.leaseId, created.leaseId, 'the same lease, not a new one');
      assert.equal(replay.status.id, created.status.id);
      await assert.rejects(
        again.ns.create('/f', {}, ROOT_CALLER, requestScope('103:req-2')),
        { code: 'EEXIST' },
        'another request is not a retry',
      );
      // Complete: the lease is gone after the first attempt, so the retry would be EBADF.
      const fileId = created.status.id;
      await again.ns.complete(fileId, created.leaseId, [], 0, undefined, requestScope('106:req-3'));
      const third = await openNs(store, clock);
      const st = await third.ns.complete(
        fileId,
        created.leaseId,
        [],
        0,
        undefined,
        requestScope('106:req-3'),
      );
      assert.equal(st.state, 'complete');
      await assert.rejects(
        third.ns.complete(fileId, created.leaseId, [], 0, undefined, requestScope('106:req-4')),
        { code: 'EBADF' },
      );
      // Delete: the retry would be ENOENT.
      await third.ns.delete('/f', {}, ROOT_CALLER, requestScope('111:req-5'));
      await third.ns.delete('/f', {}, ROOT_CALLER, requestScope('111:req-5'));
      await assert.rejects(third.ns.delete('/f', {}, ROOT_CALLER, requestScope('111:req-6')), {
        code: 'ENOENT',
      });
      // An idempotent-looking retry (chmod) is replayed, not run again after a later change.
      await third.ns.mkdir('/d', {}, ROOT_CALLER, requestScope('100:req-7'));
      await third.ns.setAttr('/d', { mode: 0o700 }, ROOT_CALLER, requestScope('116:req-8'));
      await third.ns.setAttr('/d', { mode: 0o755 }, ROOT_CALLER, requestScope('116:req-9'));
      const replayed = await third.ns.setAttr('/d', { mode: 0o700 }, ROOT_CALLER, requestScope('116:req-8'));
      assert.equal(replayed.mode, 0o700, 'the first outcome is answered');
      assert.equal((await third.ns.getStatus('/d')).mode, 0o755, 'and nothing ran again');
      assert.ok(third.records.stats.replayed >= 3);
      const report = await checkNamespace(store);
      assert.deepEqual(report.problems, []);
    });

    test('a retried AddBlock gets the first block id back; work outside a request is not recorded', async (t) => {
      const store = await engine.open(t);
      const clock = (): number => 5_000_000;
      const { ns } = await openNs(store, clock);
      const f = await ns.create('/g', {}, ROOT_CALLER, requestScope('103:c'));
      const a = await ns.addBlock(f.status.id, f.leaseId, requestScope('105:a'));
      const b = await ns.addBlock(f.status.id, f.leaseId, requestScope('105:a'));
      assert.equal(b.blockId, a.blockId);
      assert.deepEqual(b.file.pending, [a.blockId], 'one block allocated, not two');
      const before = (await store.scan({ prefix: Buffer.of(TAG_RETRY) })).length;
      await ns.mkdir('/unrecorded');
      assert.equal((await store.scan({ prefix: Buffer.of(TAG_RETRY) })).length, before);
    });

    test('expired records are swept (record and index), then the request id is forgotten', async (t) => {
      const store = await engine.open(t);
      let now = 10_000_000;
      const { ns, records } = await openNs(store, () => now);
      for (let i = 0; i < 130; i++) await ns.mkdir(`/m${i}`, {}, ROOT_CALLER, requestScope(`100:m${i}`));
      assert.equal(await records.sweep(), 0, 'nothing expired yet');
      now += TTL_MS + 1;
      assert.equal(await records.sweep(), 130);
      assert.equal((await store.scan({ prefix: Buffer.of(TAG_RETRY) })).length, 0);
      assert.equal((await store.scan({ prefix: Buffer.of(TAG_RETRY_EXPIRY) })).length, 0);
      await assert.rejects(ns.mkdir('/m0', {}, ROOT_CALLER, requestScope('100:m0')), { code: 'EEXIST' });
    });
  });
}

test("a record that cannot be read is the store failure, not the retry's own EEXIST", async () => {
  const store = new MemoryStore({ remote: true });
  const clock = (): number => 1_000_000;
  const { ns } = await openNs(store, clock);
  await ns.mkdir('/d', {}, ROOT_CALLER, requestScope('104:req-a'));
  // A namespace whose record reads fail, as a store losing a member does.
  const failing = new RetryRecords({ store, ttlMs: TTL_MS, log: silentLogger(), clock });
  const unavailable = Object.assign(new Error('etcd unavailable (test)'), {
    code: 'STRATA_META_UNAVAILABLE',
  });
  failing.replay = () => Promise.reject(unavailable);
  const { ns: again } = await openNs(store, clock, failing);
  await assert.rejects(
    again.mkdir('/d', {}, ROOT_CALLER, requestScope('104:req-a')),
    (e: unknown) => e === unavailable,
    'not EEXIST: the first attempt may be the one that made /d',
  );
  // Once the record reads again, the retry gets the first attempt's outcome.
  const { ns: healed } = await openNs(store, clock);
  const st = await healed.mkdir('/d', {}, ROOT_CALLER, requestScope('104:req-a'));
  assert.equal(st.path, '/d');
  // Without a request to record, the namespace's own answer stands.
  await assert.rejects(again.mkdir('/d'), { code: 'EEXIST' });
});
