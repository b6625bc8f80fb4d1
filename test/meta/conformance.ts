/**
 * The MetaStore conformance suite: every engine (LMDB, memory, etcd) must pass it unchanged.
 * It pins down ordering, ranges, limits, transaction atomicity and isolation, revisions and
 * compares, copies of returned bytes, close, and persistence across reopen when the engine has it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import {
  META_MAX_KEY_BYTES,
  META_MAX_SCAN_LIMIT,
  MetaCompareError,
  compareBytes,
} from '../../src/meta/index.js';
import type { MetaStore } from '../../src/meta/index.js';

export interface ConformanceTarget {
  name: string;
  /** Opens a fresh, empty store; the suite closes it. */
  open(t: TestContext): Promise<MetaStore>;
  /** Closes `store` and opens the same data again; absent for engines without persistence. */
  reopen?: (t: TestContext, store: MetaStore) => Promise<MetaStore>;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

async function withStore(target: ConformanceTarget, t: TestContext): Promise<MetaStore> {
  const store = await target.open(t);
  t.after(() => (store.isOpen ? store.close() : undefined));
  return store;
}

async function seed(store: MetaStore, keys: string[]): Promise<void> {
  await store.transaction((tx) => {
    for (const k of keys) tx.put(b(k), b(`v:${k}`));
  });
}

export function runMetaStoreConformance(target: ConformanceTarget): void {
  describe(`MetaStore conformance: ${target.name}`, () => {
    test('get, put, delete and absent keys', async (t) => {
      const store = await withStore(target, t);
      assert.equal(await store.get(b('a')), undefined);
      await store.put(b('a'), b('1'));
      assert.equal(s((await store.get(b('a'))) as Uint8Array), '1');
      await store.put(b('a'), b('2'));
      assert.equal(s((await store.get(b('a'))) as Uint8Array), '2');
      await store.delete(b('a'));
      assert.equal(await store.get(b('a')), undefined);
      await store.delete(b('never-there'));
      await store.put(b('empty'), new Uint8Array(0));
      const empty = await store.get(b('empty'));
      assert.ok(empty !== undefined);
      assert.equal(empty.length, 0, 'an empty value is a value, not an absent key');
    });

    test('keys order byte-wise, shorter before extensions', async (t) => {
      const store = await withStore(target, t);
      const keys = [
        '\x00',
        '\x00\x00',
        '\x01',
        'a',
        'a\x00',
        'ab',
        'b',
        '\x7f',
        '\x80',
        '\xfe',
        '\xff',
        '\xff\xff',
      ];
      const shuffled = [...keys].sort(() => Math.random() - 0.5);
      await seed(store, shuffled);
      const all = await store.scan({});
      const want = [...keys].sort((x, y) => compareBytes(b(x), b(y)));
      assert.deepEqual(
        all.map((e) => s(e.key)),
        want,
      );
      assert.deepEqual(
        all.map((e) => s(e.value)),
        want.map((k) => `v:${k}`),
      );
      const rev = await store.scan({ reverse: true });
      assert.deepEqual(
        rev.map((e) => s(e.key)),
        [...want].reverse(),
      );
    });

    test('scan by prefix, start, end, limit and reverse', async (t) => {
      const store = await withStore(target, t);
      await seed(store, ['p/1', 'p/2', 'p/3', 'p/4', 'p0', 'p', 'q/1', 'o/9']);
      const keys = async (o: Parameters<MetaStore['scan']>[0]) => (await store.scan(o)).map((e) => s(e.key));
      assert.deepEqual(await keys({ prefix: b('p/') }), ['p/1', 'p/2', 'p/3', 'p/4']);
      assert.deepEqual(await keys({ prefix: b('p/'), limit: 2 }), ['p/1', 'p/2']);
      assert.deepEqual(
        await keys({ prefix: b('p/'), start: b('p/2') }),
        ['p/2', 'p/3', 'p/4'],
        'start is inclusive',
      );
      assert.deepEqual(await keys({ prefix: b('p/'), end: b('p/3') }), ['p/1', 'p/2'], 'end is exclusive');
      assert.deepEqual(await keys({ prefix: b('p/'), reverse: true }), ['p/4', 'p/3', 'p/2', 'p/1']);
      assert.deepEqual(await keys({ prefix: b('p/'), reverse: true, limit: 3 }), ['p/4', 'p/3', 'p/2']);
      assert.deepEqual(await keys({ start: b('p/2'), end: b('p/4'), reverse: true }), ['p/3', 'p/2']);
      assert.deepEqual(await keys({ start: b('p'), end: b('p0') }), ['p', 'p/1', 'p/2', 'p/3', 'p/4']);
      assert.deepEqual(await keys({ start: b('z') }), []);
      assert.deepEqual(await keys({ start: b('p/3'), end: b('p/1') }), [], 'start after end is empty');
      assert.deepEqual(await keys({ prefix: b('p/'), limit: 0 }), []);
      assert.deepEqual(
        await keys({ prefix: b('p/'), start: b('a') }),
        ['p/1', 'p/2', 'p/3', 'p/4'],
        'start before the prefix',
      );
      assert.deepEqual(
        await keys({ prefix: b('p/'), end: b('zz') }),
        ['p/1', 'p/2', 'p/3', 'p/4'],
        'end after the prefix',
      );
    });

    test('prefixes of 0xff bytes reach the end of the keyspace', async (t) => {
      const store = await withStore(target, t);
      await seed(store, ['\xff', '\xff\x01', '\xff\xff', '\xff\xff\x00', '\xfe\xff']);
      const got = (await store.scan({ prefix: b('\xff\xff') })).map((e) => s(e.key));
      assert.deepEqual(got, ['\xff\xff', '\xff\xff\x00']);
      const rev = (await store.scan({ prefix: b('\xff'), reverse: true })).map((e) => s(e.key));
      assert.deepEqual(rev, ['\xff\xff\x00', '\xff\xff', '\xff\x01', '\xff']);
    });

    test('limits are enforced with STRATA_META_LIMIT', async (t) => {
      const store = await withStore(target, t);
      const big = Buffer.alloc(META_MAX_KEY_BYTES, 0x61);
      await store.put(big, b('ok'));
      assert.equal(s((await store.get(big)) as Uint8Array), 'ok');
      await assert.rejects(store.put(Buffer.alloc(META_MAX_KEY_BYTES + 1, 0x61), b('x')), {
        code: 'STRATA_META_LIMIT',
      });
      await assert.rejects(store.put(new Uint8Array(0), b('x')), { code: 'STRATA_META_LIMIT' });
      await assert.rejects(store.scan({ limit: META_MAX_SCAN_LIMIT + 1 }), { code: 'STRATA_META_LIMIT' });
      await assert.rejects(
        store.transaction((tx) => tx.scan({ limit: META_MAX_SCAN_LIMIT + 1 })),
        { code: 'STRATA_META_LIMIT' },
      );
    });

    test('a throwing transaction applies nothing and rethrows the same error', async (t) => {
      const store = await withStore(target, t);
      await store.put(b('keep'), b('1'));
      const boom = new Error('boom');
      await assert.rejects(
        store.transaction((tx) => {
          tx.put(b('new'), b('x'));
          tx.delete(b('keep'));
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.equal(await store.get(b('new')), undefined);
      assert.equal(s((await store.get(b('keep'))) as Uint8Array), '1');
    });

    test('a failing transaction does not disturb concurrent ones', async (t) => {
      const store = await withStore(target, t);
      const runs = [];
      for (let i = 0; i < 50; i++) {
        runs.push(
          store.transaction((tx) => {
            tx.put(b(`k${String(i).padStart(2, '0')}`), b(String(i)));
            if (i % 2 === 1) throw new Error(`odd ${i}`);
            return i;
          }),
        );
      }
      const results = await Promise.allSettled(runs);
      results.forEach((r, i) => assert.equal(r.status, i % 2 === 1 ? 'rejected' : 'fulfilled'));
      const keys = (await store.scan({ prefix: b('k') })).map((e) => s(e.key));
      assert.deepEqual(
        keys,
        Array.from({ length: 25 }, (_, i) => `k${String(i * 2).padStart(2, '0')}`),
      );
    });

    test('reads in a transaction see its own writes; scans merge them', async (t) => {
      const store = await withStore(target, t);
      await seed(store, ['d/1', 'd/3', 'd/5', 'd/7']);
      const seen = await store.transaction((tx) => {
        tx.put(b('d/2'), b('new'));
        tx.delete(b('d/3'));
        tx.put(b('d/5'), b('changed'));
        tx.put(b('d/9'), b('last'));
        return {
          get2: s(tx.get(b('d/2')) as Uint8Array),
          get3: tx.get(b('d/3')),
          all: tx.scan({ prefix: b('d/') }).map((e) => `${s(e.key)}=${s(e.value)}`),
          two: tx.scan({ prefix: b('d/'), limit: 2 }).map((e) => s(e.key)),
          rev: tx.scan({ prefix: b('d/'), reverse: true, limit: 3 }).map((e) => s(e.key)),
        };
      });
      assert.equal(seen.get2, 'new');
      assert.equal(seen.get3, undefined);
      assert.deepEqual(seen.all, ['d/1=v:d/1', 'd/2=new', 'd/5=changed', 'd/7=v:d/7', 'd/9=last']);
      assert.deepEqual(seen.two, ['d/1', 'd/2']);
      assert.deepEqual(seen.rev, ['d/9', 'd/7', 'd/5']);
      const after = (await store.scan({ prefix: b('d/') })).map((e) => s(e.key));
      assert.deepEqual(after, ['d/1', 'd/2', 'd/5', 'd/7', 'd/9']);
    });

    test('deletes in a transaction do not shorten a limited scan', async (t) => {
      const store = await withStore(target, t);
      await seed(store, ['e/1', 'e/2', 'e/3', 'e/4', 'e/5', 'e/6']);
      const got = await store.transaction((tx) => {
        tx.delete(b('e/1'));
        tx.delete(b('e/2'));
        tx.delete(b('e/3'));
        return tx.scan({ prefix: b('e/'), limit: 3 }).map((e) => s(e.key));
      });
      assert.deepEqual(got, ['e/4', 'e/5', 'e/6']);
    });

    test('concurrent read-modify-write transactions are serializable', async (t) => {
      const store = await withStore(target, t);
      await store.put(b('counter'), b('0'));
      await store.transaction((tx) => {
        for (let i = 0; i < 10; i++) tx.put(b(`acct/${i}`), b('100'));
      });
      const incs = Array.from({ length: 200 }, () =>
        store.transaction((tx) => {
          const n = Number(s(tx.get(b('counter')) as Uint8Array));
          tx.put(b('counter'), b(String(n + 1)));
        }),
      );
      const transfers = Array.from({ length: 100 }, (_, i) =>
        store.transaction((tx) => {
          const from = b(`acct/${i % 10}`);
          const to = b(`acct/${(i * 7 + 3) % 10}`);
          const a = Number(s(tx.get(from) as Uint8Array));
          tx.put(from, b(String(a - 5)));
          const c = Number(s(tx.get(to) as Uint8Array));
          tx.put(to, b(String(c + 5)));
        }),
      );
      const sums: number[] = [];
      const readers = Array.from({ length: 20 }, () =>
        store
          .read((r) => r.scan({ prefix: b('acct/') }).reduce((acc, e) => acc + Number(s(e.value)), 0))
          .then((sum) => sums.push(sum)),
      );
      await Promise.all([...incs, ...transfers, ...readers]);
      assert.equal(s((await store.get(b('counter'))) as Uint8Array), '200');
      const total = (await store.scan({ prefix: b('acct/') })).reduce(
        (acc, e) => acc + Number(s(e.value)),
        0,
      );
      assert.equal(total, 1000, 'transfers conserve the total');
      for (const sum of sums) assert.equal(sum, 1000, 'every snapshot read is consistent');
    });

    test('revisions grow; one transaction stamps one revision on all it writes', async (t) => {
      const store = await withStore(target, t);
      const r0 = store.stats().revision;
      await store.transaction((tx) => {
        tx.put(b('r/a'), b('1'));
        tx.put(b('r/b'), b('1'));
      });
      const [ea, eb] = await store.read((r) => [r.getEntry(b('r/a')), r.getEntry(b('r/b'))]);
      assert.ok(ea !== undefined && eb !== undefined);
      assert.ok(ea.modRevision > r0);
      assert.equal(ea.modRevision, eb.modRevision);
      await store.put(b('r/a'), b('2'));
      const ea2 = await store.read((r) => r.getEntry(b('r/a')));
      assert.ok(ea2 !== undefined && ea2.modRevision > ea.modRevision);
      const scanned = await store.scan({ prefix: b('r/') });
      assert.deepEqual(
        scanned.map((e) => e.modRevision),
        [ea2.modRevision, eb.modRevision],
      );
      assert.ok(store.stats().revision >= ea2.modRevision);
      // A read-only transaction does not advance the revision.
      const before = store.stats().revision;
      await store.transaction((tx) => tx.get(b('r/a')));
      assert.equal(store.stats().revision, before);
    });

    test('compare on revision and on value fences a transaction', async (t) => {
      const store = await withStore(target, t);
      await store.put(b('leader'), b('m1'));
      const rev = (await store.read((r) => r.getEntry(b('leader'))))?.modRevision ?? -1;
      await store.transaction((tx) => {
        tx.compare({ key: b('leader'), modRevision: rev });
        tx.compare({ key: b('leader'), value: b('m1') });
        tx.compare({ key: b('nobody'), modRevision: 0 });
        tx.compare({ key: b('nobody'), value: undefined });
        tx.put(b('fenced'), b('ok'));
      });
      assert.equal(s((await store.get(b('fenced'))) as Uint8Array), 'ok');
      await store.put(b('leader'), b('m2'));
      await assert.rejects(
        store.transaction((tx) => {
          tx.compare({ key: b('leader'), modRevision: rev });
          tx.put(b('fenced'), b('stale'));
        }),
        (err) => err instanceof MetaCompareError && err.code === 'STRATA_META_COMPARE_FAILED',
      );
      await assert.rejects(
        store.transaction((tx) => {
          tx.compare({ key: b('leader'), value: b('m1') });
          tx.put(b('fenced'), b('stale'));
        }),
        { code: 'STRATA_META_COMPARE_FAILED' },
      );
      assert.equal(s((await store.get(b('fenced'))) as Uint8Array), 'ok');
    });

    test('returned bytes are copies; written bytes are the caller’s again once settled', async (t) => {
      const store = await withStore(target, t);
      const key = b('copy');
      const val = b('abc');
      await store.put(key, val);
      // The store owned them until the put settled; changing them now must not matter.
      val[0] = 0x7a;
      key[0] = 0x7a;
      const got = (await store.get(b('copy'))) as Uint8Array;
      assert.equal(s(got), 'abc');
      got[0] = 0x78;
      const again = (await store.get(b('copy'))) as Uint8Array;
      assert.equal(s(again), 'abc');
      const [e] = await store.scan({ prefix: b('copy') });
      assert.ok(e !== undefined);
      e.value[1] = 0x78;
      assert.equal(s((await store.get(b('copy'))) as Uint8Array), 'abc');
      // Values read before another commit keep their contents.
      await store.put(b('copy2'), b('zzz'));
      assert.equal(s(again), 'abc');
    });

    test('a large transaction commits whole', async (t) => {
      const store = await withStore(target, t);
      const n = 20_000;
      await store.transaction((tx) => {
        for (let i = 0; i < n; i++)
          tx.put(b(`big/${String(i).padStart(6, '0')}`), Buffer.alloc(64, i & 0xff));
      });
      const first = await store.scan({ prefix: b('big/'), limit: 10 });
      assert.equal(first.length, 10);
      let count = 0;
      let start: Uint8Array | undefined;
      for (;;) {
        const page = await store.scan({ prefix: b('big/'), limit: 7000, ...(start ? { start } : {}) });
        const fresh =
          start === undefined ? page : page.filter((e) => compareBytes(e.key, start as Uint8Array) > 0);
        count += fresh.length;
        if (page.length < 7000) break;
        start = page[page.length - 1]?.key;
      }
      assert.equal(count, n);
    });

    test('operations after close fail with STRATA_META_CLOSED', async (t) => {
      const store = await withStore(target, t);
      await store.put(b('x'), b('1'));
      await store.close();
      assert.equal(store.isOpen, false);
      await assert.rejects(store.get(b('x')), { code: 'STRATA_META_CLOSED' });
      await assert.rejects(store.put(b('x'), b('2')), { code: 'STRATA_META_CLOSED' });
      await assert.rejects(
        store.transaction(() => 1),
        { code: 'STRATA_META_CLOSED' },
      );
    });

    test('a transaction function may run more than once and still commits once', async (t) => {
      const store = await withStore(target, t);
      await store.put(b('runs'), b('0'));
      let calls = 0;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.transaction((tx) => {
            calls++;
            const n = Number(s(tx.get(b('runs')) as Uint8Array));
            tx.put(b('runs'), b(String(n + 1)));
            return i;
          }),
        ),
      );
      assert.deepEqual(
        results,
        Array.from({ length: 20 }, (_, i) => i),
      );
      assert.equal(s((await store.get(b('runs'))) as Uint8Array), '20');
      assert.ok(calls >= 20);
    });

    test('transactions resolve in commit order', async (t) => {
      const store = await withStore(target, t);
      const order: number[] = [];
      await Promise.all(
        Array.from({ length: 100 }, () =>
          store
            .transaction((tx) => {
              const n = Number(s(tx.get(b('seq')) ?? b('0')));
              tx.put(b('seq'), b(String(n + 1)));
              return n;
            })
            .then((n) => order.push(n)),
        ),
      );
      assert.deepEqual(
        order,
        Array.from({ length: 100 }, (_, i) => i),
        'a later transaction never resolves first',
      );
    });

    const reopen = target.reopen;
    if (reopen !== undefined) {
      test('committed data and revisions survive close and reopen', async (t) => {
        let store = await withStore(target, t);
        await seed(store, ['p/1', 'p/2']);
        await store.delete(b('p/1'));
        const rev = store.stats().revision;
        store = await reopen(t, store);
        t.after(() => (store.isOpen ? store.close() : undefined));
        assert.deepEqual(
          (await store.scan({})).map((e) => s(e.key)),
          ['p/2'],
        );
        assert.equal(store.stats().revision, rev);
        await store.put(b('p/3'), b('x'));
        const e = await store.read((r) => r.getEntry(b('p/3')));
        assert.ok(e !== undefined && e.modRevision > rev, 'revisions continue after reopen');
      });
    }
  });
}
