// Proves the L2 `cluster` backend against a real Strata cluster (MiniCluster: a master and a
// worker): the store contract (atomic publish, ranged reads, read-back of a fill in progress,
// metadata refresh, delete by key and family, capacity sweep), two `strata proxy` processes
// sharing one cache (the second answers from the cluster without asking the origin), and
// degradation to plain proxying when the cluster goes away.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { FileSystem } from '../../src/client/index.js';
import { sliceKey } from '../../src/proxy/cache-key.js';
import { ClusterStore } from '../../src/proxy/store/cluster.js';
import type { EntryMeta, StoreHit } from '../../src/proxy/store/types.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { get, pattern, scratch, serveRanged, startOrigin, startProxy } from './helpers.js';

const MiB = 1024 * 1024;

function meta(key: string, etag = '"e1"'): EntryMeta {
  return {
    key,
    status: 200,
    headers: [
      ['content-type', 'application/octet-stream'],
      ['etag', etag],
    ],
    // The store keeps the policy opaque; its shape is the HTTP layer's business.
    policy: { v: 1 } as unknown as EntryMeta['policy'],
    storedAtMs: Date.now(),
  };
}

async function collect(hit: StoreHit, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of hit.read(start, end)) parts.push(c);
  return Buffer.concat(parts);
}

function clientFor(c: MiniCluster): FileSystem {
  return FileSystem.create({
    // Small blocks, so bodies of a few MiB cross block boundaries.
    settings: {
      masterAddrs: c.masters.map((m) => ({ host: '127.0.0.1', port: m.rpcPort })),
      blockSizeBytes: MiB,
    },
    caller: null,
  });
}

test('cluster store: the ProxyStore contract on a real cluster', { timeout: 120_000 }, async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 1 });
  const fs = clientFor(cluster);
  t.after(() => fs.close());
  const store = new ClusterStore({
    root: '/.strata-proxy',
    masterAddrs: [],
    replicas: 1,
    capacityBytes: 64 * MiB,
    spoolDir: tempDir(t),
    log: silentLogger(),
    fs,
  });
  t.after(() => store.close());
  await store.ready();

  await t.test('nothing is visible before commit; after it, every range reads back', async () => {
    const body = pattern(1, 3 * MiB + 12_345);
    const w = await store.put(meta('/a/big'), { expectedBytes: body.length });
    assert.ok(w !== undefined);
    for (let off = 0; off < body.length; off += 256 * 1024)
      await w.write(body.subarray(off, off + 256 * 1024));
    assert.equal(await store.get('/a/big'), undefined, 'uncommitted entry must not be visible');
    // A reader that fell behind a fill reads back what was written so far.
    assert.ok((await w.readAt(MiB - 10, 20)).equals(body.subarray(MiB - 10, MiB + 10)));
    assert.equal(w.bytesWritten, body.length);
    await w.commit();
    const hit = await store.get('/a/big');
    assert.ok(hit !== undefined);
    t.after(() => hit.release());
    assert.equal(hit.bodyBytes, body.length);
    assert.deepEqual(hit.meta.headers, meta('/a/big').headers);
    assert.ok((await collect(hit, 0, body.length)).equals(body));
    // Ranges across block boundaries and at the end.
    assert.ok((await collect(hit, MiB - 1, 2 * MiB + 1)).equals(body.subarray(MiB - 1, 2 * MiB + 1)));
    assert.ok((await collect(hit, body.length - 5, body.length)).equals(body.subarray(-5)));
    assert.equal((await collect(hit, 10, 10)).length, 0);
  });

  await t.test('an aborted write leaves no entry and no temp file', async () => {
    const w = await store.put(meta('/a/aborted'));
    assert.ok(w !== undefined);
    await w.write(pattern(2, 100_000));
    await w.abort();
    assert.equal(await store.get('/a/aborted'), undefined);
    const tmp: string[] = [];
    for await (const page of fs.list('/.strata-proxy/.tmp')) tmp.push(...page.map((e) => e.name));
    assert.deepEqual(tmp, []);
  });

  await t.test('a new body replaces the old one atomically; updateMeta refreshes headers', async () => {
    for (const [i, etag] of [
      [3, '"v1"'],
      [4, '"v2"'],
    ] as const) {
      const w = await store.put(meta('/a/r', etag));
      assert.ok(w !== undefined);
      await w.write(pattern(i, 50_000));
      await w.commit();
    }
    const hit = await store.get('/a/r');
    assert.ok(hit !== undefined);
    assert.ok((await collect(hit, 0, hit.bodyBytes)).equals(pattern(4, 50_000)));
    hit.release();
    const refreshed = {
      ...meta('/a/r', '"v2"'),
      headers: [
        ['etag', '"v2"'],
        ['x-refreshed', 'yes'],
      ] as [string, string][],
    };
    assert.equal(await store.updateMeta(refreshed), true);
    const again = await store.get('/a/r');
    assert.deepEqual(again?.meta.headers, refreshed.headers);
    again?.release();
    assert.equal(await store.updateMeta(meta('/a/missing')), false);
  });

  await t.test('delete by key and by family (every slice of a URL)', async () => {
    for (let i = 0; i < 3; i++) {
      const key = sliceKey('/v/movie', i * 1000, i * 1000 + 999);
      const w = await store.put(meta(key));
      assert.ok(w !== undefined);
      await w.write(pattern(10 + i, 1000));
      await w.commit();
    }
    const w = await store.put(meta('/v/other'));
    assert.ok(w !== undefined);
    await w.write(pattern(20, 10));
    await w.commit();
    assert.equal(await store.delete('/v/other'), true);
    assert.equal(await store.delete('/v/other'), false);
    assert.equal(await store.deleteFamily('/v/movie'), 3);
    assert.equal(await store.get(sliceKey('/v/movie', 0, 999)), undefined);
    assert.equal(await store.deleteFamily('/v/movie'), 0);
  });

  await t.test('metadata that does not belong to the key is a corrupt entry, dropped', async () => {
    const w = await store.put(meta('/c/x'));
    assert.ok(w !== undefined);
    await w.write(pattern(5, 10));
    await w.commit();
    const paths: string[] = [];
    for await (const shard of fs.entries('/.strata-proxy'))
      if (shard.name !== '.tmp')
        for await (const fam of fs.entries(`/.strata-proxy/${shard.name}`))
          for await (const e of fs.entries(`/.strata-proxy/${shard.name}/${fam.name}`))
            paths.push(`/.strata-proxy/${shard.name}/${fam.name}/${e.name}`);
    for (const p of paths) {
      const m = await fs.getXattr(p, 'user.strata.proxy.meta');
      if (m.includes(Buffer.from('/c/x'))) await fs.setXattr(p, 'user.strata.proxy.meta', 'garbage');
    }
    await assert.rejects(store.get('/c/x'), { code: 'STRATA_PROXY_CORRUPT_ENTRY' });
    assert.equal(await store.get('/c/x'), undefined, 'the corrupt entry is dropped');
  });

  await t.test('the sweep keeps the bytes under capacity, oldest entries first', async () => {
    store.setCapacity(4 * MiB);
    for (let i = 0; i < 6; i++) {
      const w = await store.put(meta(`/s/${i}`));
      assert.ok(w !== undefined);
      await w.write(pattern(30 + i, MiB));
      await w.commit();
    }
    await store.sweep();
    assert.ok(store.stats().bytes <= 4 * MiB * 0.9, `bytes ${store.stats().bytes}`);
    assert.equal(await store.get('/a/big'), undefined, 'the oldest entry went first');
    const newest = await store.get('/s/5');
    assert.ok(newest !== undefined, 'the newest entry stays');
    newest.release();
  });
});

test(
  'two proxies share one cluster cache; a cluster outage degrades to proxying',
  { timeout: 120_000 },
  async (t) => {
    const cluster = await MiniCluster.start(t, { workers: 1 });
    const body = pattern(7, 3 * MiB);
    const origin = await startOrigin(t, (req, res) =>
      serveRanged(req, res, body, { etag: '"obj"', 'cache-control': 'max-age=600' }),
    );
    const dir = scratch(t);
    const conf = {
      upstream_address: origin.address,
      enable_l2_cache: true,
      l2_backend: 'cluster',
      // L1 off for this object size, so the second proxy's hit comes from the cluster.
      l1_max_object_size_bytes: 1024,
      cluster_cache: { master_addrs: cluster.masterAddrs },
    };
    const a = await startProxy(t, dir, conf);
    const b = await startProxy(t, dir, conf);

    const first = await get(a.url('/data/obj.bin'));
    assert.equal(first.status, 200);
    assert.ok(first.body.equals(body));
    assert.equal(origin.count('/data/obj.bin'), 1);
    // The fill commits after the response ends: wait until the entry is published in the cluster.
    const fs = clientFor(cluster);
    t.after(() => fs.close());
    await waitFor(
      'proxy A publishes the entry',
      async () => {
        for await (const shard of fs.entries('/.strata-proxy'))
          if (shard.name !== '.tmp')
            for await (const fam of fs.entries(`/.strata-proxy/${shard.name}`))
              for await (const e of fs.entries(`/.strata-proxy/${shard.name}/${fam.name}`))
                if (e.type === 'file') return true;
        return false;
      },
      20_000,
      100,
    );
    const fromB = await get(b.url('/data/obj.bin'));
    assert.equal(origin.count('/data/obj.bin'), 1, 'proxy B answered from the shared cache');
    assert.equal(fromB.status, 200);
    assert.ok(fromB.body.equals(body));
    const ranged = await get(b.url('/data/obj.bin'), { range: 'bytes=1048570-1048580' });
    assert.equal(ranged.status, 206);
    assert.ok(ranged.body.equals(body.subarray(1048570, 1048581)));
    assert.equal(origin.count('/data/obj.bin'), 1);

    // The cluster goes away: both proxies keep answering from the origin.
    await cluster.stop();
    const before = origin.count('/data/other.bin');
    const r = await get(a.url('/data/other.bin'));
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(body));
    assert.equal(origin.count('/data/other.bin'), before + 1);
  },
);
