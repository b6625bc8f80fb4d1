// What the etcd engine guarantees beyond the shared conformance suite, on a real etcd: big
// transactions are never seen half applied and are finished by others when their writer dies,
// fenced commits are refused, and two stores (two processes) on one prefix stay serializable
// through per-key, per-range and whole-snapshot validation.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { EtcdLayout, EtcdStore, createEtcdClient } from '../../src/meta/etcd/index.js';
import { encodeIntent, packRedo } from '../../src/meta/etcd/big-txn.js';
import type { RedoWrite } from '../../src/meta/etcd/big-txn.js';
import { requireTools } from '../helpers/ci.js';
import { ETCD_BIN, EtcdCluster } from '../helpers/etcd.js';

const skip = requireTools(ETCD_BIN);
const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const s = (u: Uint8Array | undefined): string =>
  u === undefined ? '<none>' : Buffer.from(u).toString('latin1');

describe('etcd engine', { skip }, () => {
  let etcd: EtcdCluster;
  const clients: Etcd3[] = [];
  before(async () => {
    etcd = await EtcdCluster.start(undefined);
  });
  after(async () => {
    for (const c of clients) c.close();
    await etcd.stop();
  });

  const client = (): Etcd3 => {
    const c = createEtcdClient({ endpoints: etcd.endpoints });
    clients.push(c);
    return c;
  };
  const prefix = (): string => `/strata-test/${randomBytes(6).toString('hex')}/`;
  async function open(p: string, opts: { maxTxnOps?: number } = {}): Promise<EtcdStore> {
    return EtcdStore.open({ client: client(), prefix: p, ...opts });
  }

  test('a big transaction is never seen half applied by readers or transactions', async (t) => {
    const p = prefix();
    const writer = await open(p);
    const reader = await open(p);
    t.after(() => Promise.all([writer.close(), reader.close()]));
    const n = 1500;
    const keys = Array.from({ length: n }, (_, i) => b(`big/${String(i).padStart(5, '0')}`));
    await writer.transaction((tx) => {
      for (const k of keys) tx.put(k, b('gen0'));
    });
    let stop = false;
    const seen = new Set<string>();
    const readers = [
      (async () => {
        while (!stop) {
          const vals = await reader.read((r) => r.scan({ prefix: b('big/') }).map((e) => s(e.value)));
          assert.equal(vals.length, n);
          const distinct = new Set(vals);
          assert.equal(distinct.size, 1, `a snapshot mixed generations: ${[...distinct].join(', ')}`);
          seen.add(vals[0] as string);
        }
      })(),
      (async () => {
        while (!stop) {
          // A transaction reading the first and the last key must never see two generations.
          const pair = await reader.transaction((tx) => [
            s(tx.get(keys[0] as Buffer)),
            s(tx.get(keys[n - 1] as Buffer)),
          ]);
          assert.equal(pair[0], pair[1], 'a transaction saw two generations');
        }
      })(),
    ];
    for (let gen = 1; gen <= 3; gen++) {
      await writer.transaction((tx) => {
        for (const k of keys) tx.put(k, b(`gen${gen}`));
      });
    }
    stop = true;
    await Promise.all(readers);
    const last = await reader.read((r) => r.scan({ prefix: b('big/') }));
    assert.ok(last.every((e) => s(e.value) === 'gen3'));
    assert.ok(seen.size >= 1);
  });

  test('a big transaction whose writer died after its commit point is finished by the next reader', async (t) => {
    const p = prefix();
    const raw = client();
    const layout = new EtcdLayout(p);
    // What a writer leaves when it dies between its commit point and the end of its roll forward:
    // the intent record, the detached redo log, part of the writes applied.
    const n = 600;
    const writes: RedoWrite[] = Array.from({ length: n }, (_, i) => [
      layout.toEtcd(b(`k/${String(i).padStart(4, '0')}`)),
      b(`v${i}`),
    ]);
    writes.push([layout.toEtcd(b('gone')), null]);
    await raw.kv.put({ key: layout.toEtcd(b('gone')), value: b('x') });
    const chunks = packRedo(writes, 4096);
    for (let i = 0; i < chunks.length; i++)
      await raw.kv.put({ key: layout.redoKey('dead-1', i), value: chunks[i] });
    const lease = await raw.leaseClient.leaseGrant({ TTL: 5 });
    await raw.leaseClient.leaseRevoke({ ID: lease.ID });
    await raw.kv.put({
      key: layout.intentKey,
      value: encodeIntent({ id: 'dead-1', chunks: chunks.length, owner: lease.ID, atMs: Date.now() }),
    });
    for (const [k, v] of writes.slice(0, 100)) await raw.kv.put({ key: k, value: v as Buffer });

    const store = await open(p);
    t.after(() => store.close());
    const got = await store.read((r) => r.scan({ prefix: b('k/') }));
    assert.equal(got.length, n, 'every write of the dead transaction is there');
    assert.equal(await store.get(b('gone')), undefined, 'its delete too');
    const left = await raw.kv.range({ key: layout.intentKey });
    assert.equal(left.kvs.length, 0, 'the intent is released');
    const redo = await raw.kv.range({
      key: layout.redoPrefix('dead-1'),
      range_end: layout.redoPrefix('dead-2'),
    });
    assert.equal(redo.kvs.length, 0, 'the redo log is deleted');
  });

  test('with a fence, a commit after the fence key changed is refused and applies nothing', async (t) => {
    const p = prefix();
    const raw = client();
    const store = await open(p);
    t.after(() => store.close());
    const fenceKey = b(`${p}leader`);
    const put = await raw.kv.put({ key: fenceKey, value: b('me') });
    store.setFence({ key: fenceKey, createRevision: Number(put.header.revision) });
    await store.put(b('a'), b('1'));
    // Leadership lost and won by someone else: the key is re-created (new create_revision).
    await raw.kv.deleteRange({ key: fenceKey });
    await raw.kv.put({ key: fenceKey, value: b('other') });
    await assert.rejects(store.put(b('a'), b('2')), { code: 'STRATA_META_FENCED' });
    await assert.rejects(
      store.transaction((tx) => {
        for (let i = 0; i < 300; i++) tx.put(b(`many/${i}`), b('x'));
      }),
      { code: 'STRATA_META_FENCED' },
      'a big transaction is fenced too',
    );
    store.setFence(undefined);
    assert.equal(s(await store.get(b('a'))), '1');
    assert.equal((await store.scan({ prefix: b('many/') })).length, 0);
  });

  test('two stores on one prefix: counters and transfers stay exact', async (t) => {
    const p = prefix();
    const one = await open(p);
    const two = await open(p, { maxTxnOps: 16 });
    t.after(() => Promise.all([one.close(), two.close()]));
    await one.transaction((tx) => {
      tx.put(b('counter'), b('0'));
      for (let i = 0; i < 8; i++) tx.put(b(`acct/${i}`), b('100'));
    });
    const work: Promise<unknown>[] = [];
    for (const [si, st] of [one, two].entries()) {
      for (let i = 0; i < 40; i++) {
        work.push(
          st.transaction((tx) => {
            const n = Number(s(tx.get(b('counter'))));
            tx.put(b('counter'), b(String(n + 1)));
          }),
        );
        work.push(
          st.transaction((tx) => {
            const from = b(`acct/${(i + si) % 8}`);
            const to = b(`acct/${(i * 3 + 1) % 8}`);
            const x = Number(s(tx.get(from)));
            tx.put(from, b(String(x - 7)));
            const y = Number(s(tx.get(to)));
            tx.put(to, b(String(y + 7)));
          }),
        );
      }
    }
    await Promise.all(work);
    assert.equal(s(await one.get(b('counter'))), '80');
    const accts = await two.scan({ prefix: b('acct/') });
    assert.equal(
      accts.reduce((a, e) => a + Number(s(e.value)), 0),
      800,
      'transfers conserve the total',
    );
  });

  test('a scan is validated at commit: inserts and deletes by others in its range are caught', async (t) => {
    const p = prefix();
    const stores = await Promise.all([open(p), open(p), open(p), open(p)]);
    t.after(() => Promise.all(stores.map((x) => x.close())));
    // Each insert records how many members it saw, with blind writes only: in any serial order
    // the counts seen are 0, 1, 2…, all different. Two inserts that both saw k mean one of them
    // committed although the range it scanned had changed.
    const per = 25;
    const seen = await Promise.all(
      stores.flatMap((st, si) =>
        Array.from({ length: per }, (_, i) =>
          st.transaction((tx) => {
            const k = tx.scan({ prefix: b('set/') }).length;
            tx.put(b(`set/${si}-${i}`), b('m'));
            return k;
          }),
        ),
      ),
    );
    assert.deepEqual(
      [...seen].sort((x, y) => x - y),
      Array.from({ length: per * stores.length }, (_, i) => i),
    );
    // The same with deletes: each removes the first member and reports the size it saw.
    const removed = await Promise.all(
      stores.flatMap((st) =>
        Array.from({ length: per }, () =>
          st.transaction((tx) => {
            const members = tx.scan({ prefix: b('set/') });
            const first = members[0];
            if (first !== undefined) tx.delete(first.key);
            return members.length;
          }),
        ),
      ),
    );
    assert.deepEqual(
      [...removed].sort((x, y) => x - y),
      Array.from({ length: per * stores.length }, (_, i) => i + 1),
    );
  });

  test('a transaction reading more keys than one request can compare is validated as a whole snapshot', async (t) => {
    const p = prefix();
    const one = await open(p);
    const two = await open(p);
    t.after(() => Promise.all([one.close(), two.close()]));
    const n = 300;
    await one.transaction((tx) => {
      for (let i = 0; i < n; i++) tx.put(b(`x/${String(i).padStart(3, '0')}`), b('1'));
      tx.put(b('sum'), b(String(n)));
    });
    // Writers move units between keys (total constant); summers read every key one by one.
    let stop = false;
    const movers = (async () => {
      for (let i = 0; !stop && i < 200; i++) {
        await two.transaction((tx) => {
          const a = b(`x/${String((i * 7) % n).padStart(3, '0')}`);
          const c = b(`x/${String((i * 13 + 1) % n).padStart(3, '0')}`);
          if (a.equals(c)) return;
          tx.put(a, b(String(Number(s(tx.get(a))) - 1)));
          tx.put(c, b(String(Number(s(tx.get(c))) + 1)));
        });
      }
    })();
    for (let round = 0; round < 5; round++) {
      const total = await one.transaction((tx) => {
        let sum = 0;
        for (let i = 0; i < n; i++) sum += Number(s(tx.get(b(`x/${String(i).padStart(3, '0')}`))));
        tx.put(b('sum'), b(String(sum)));
        return sum;
      });
      assert.equal(total, n, 'a validated transaction saw one consistent state');
    }
    stop = true;
    await movers;
    assert.equal(s(await one.get(b('sum'))), String(n));
  });
});
