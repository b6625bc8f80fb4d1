// One conformance suite for every ProxyStore engine (memory, file, raw disk with and without
// compression): round trips with ranged reads, read-back during a write, abort, metadata
// updates, deletes by key and by family, replacement, and staying within capacity.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { sliceKey, variantKey } from '../../src/proxy/cache-key.js';
import { FileStore } from '../../src/proxy/store/file.js';
import { MemoryStore } from '../../src/proxy/store/memory.js';
import { RawDiskStore } from '../../src/proxy/store/raw-disk/store.js';
import type { EntryMeta, ProxyStore, StoreHit } from '../../src/proxy/store/types.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { pattern } from './helpers.js';

const MiB = 1024 * 1024;

interface Engine {
  name: string;
  /** Capacity in bytes the engine was made with (eviction checks). */
  capacityBytes: number;
  make(t: TestContext, capacityBytes: number): Promise<ProxyStore>;
}

const ENGINES: Engine[] = [
  {
    name: 'memory',
    capacityBytes: 64 * MiB,
    make: async (_t, cap) => new MemoryStore(cap, 16 * MiB),
  },
  {
    name: 'file',
    capacityBytes: 64 * MiB,
    make: async (t, cap) =>
      new FileStore({ dir: join(tempDir(t), 'l2'), capacityBytes: cap, log: silentLogger() }),
  },
  {
    name: 'raw_disk',
    capacityBytes: 64 * MiB,
    make: async (t, cap) =>
      new RawDiskStore({
        devicePath: join(tempDir(t), 'raw.cache'),
        totalBytes: cap,
        blockSizeBytes: 4096,
        compression: false,
        prefetch: true,
        directIo: false,
        log: silentLogger(),
        autoDefrag: false,
      }),
  },
  {
    name: 'raw_disk (compressed, 512 B blocks)',
    capacityBytes: 64 * MiB,
    make: async (t, cap) =>
      new RawDiskStore({
        devicePath: join(tempDir(t), 'raw.cache'),
        totalBytes: cap,
        blockSizeBytes: 512,
        compression: true,
        prefetch: false,
        directIo: false,
        log: silentLogger(),
        autoDefrag: false,
      }),
  },
];

function meta(key: string, extra: Partial<EntryMeta> = {}): EntryMeta {
  return {
    key,
    status: 200,
    headers: [
      ['content-type', 'text/plain'],
      ['etag', '"e1"'],
    ],
    policy: { v: 1 } as unknown as EntryMeta['policy'],
    storedAtMs: 1_700_000_000_000,
    ...extra,
  };
}

async function readAll(hit: StoreHit, start = 0, end = hit.bodyBytes): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of hit.read(start, end)) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function store(s: ProxyStore, m: EntryMeta, body: Buffer, chunk = 50_000): Promise<void> {
  const w = await s.put(m, { expectedBytes: body.length, compressible: true });
  assert.ok(w !== undefined, `${m.key} accepted`);
  for (let off = 0; off < body.length; off += chunk) await w.write(body.subarray(off, off + chunk));
  await w.commit();
  w.dispose?.();
}

for (const engine of ENGINES) {
  describe(`ProxyStore conformance: ${engine.name}`, () => {
    test('round trip: metadata, whole body and ranged reads', async (t) => {
      const s = await engine.make(t, engine.capacityBytes);
      t.after(() => s.close());
      await s.ready();
      const body = pattern(1, 3 * MiB + 17);
      await store(s, meta('/a?q=1'), body);
      const hit = await s.get('/a?q=1');
      assert.ok(hit !== undefined);
      t.after(() => hit.release());
      assert.equal(hit.bodyBytes, body.length);
      assert.equal(hit.meta.key, '/a?q=1');
      assert.deepEqual(hit.meta.headers, meta('/a').headers);
      assert.ok((await readAll(hit)).equals(body));
      for (const [a, b] of [
        [0, 1],
        [65535, 65537],
        [1_000_000, 2_500_000],
        [body.length - 5, body.length],
        [7, 7],
      ] as const) {
        assert.ok((await readAll(hit, a, b)).equals(body.subarray(a, b)), `range ${a}-${b}`);
      }
      assert.equal(await s.get('/a?q=2'), undefined, 'the query string is part of the key');
    });

    test('a writer reads back what it wrote before commit; nothing is visible until commit', async (t) => {
      const s = await engine.make(t, engine.capacityBytes);
      t.after(() => s.close());
      await s.ready();
      const body = pattern(2, 700_000);
      const w = await s.put(meta('/w'), { compressible: false });
      assert.ok(w !== undefined);
      await w.write(body.subarray(0, 300_000));
      assert.equal(w.bytesWritten, 300_000);
      assert.ok((await w.readAt(1000, 200_000)).equals(body.subarray(1000, 201_000)));
      assert.equal(await s.get('/w'), undefined, 'not visible before commit');
      await w.write(body.subarray(300_000));
      assert.ok((await w.readAt(250_000, 100_000)).equals(body.subarray(250_000, 350_000)));
      await w.commit();
      assert.ok((await w.readAt(600_000, 100_000)).equals(body.subarray(600_000)), 'read-back after commit');
      w.dispose?.();
      const hit = await s.get('/w');
      assert.ok(hit !== undefined);
      assert.ok((await readAll(hit)).equals(body));
      hit.release();
    });

    test('abort leaves no entry and gives its space back', async (t) => {
      const s = await engine.make(t, engine.capacityBytes);
      t.after(() => s.close());
      await s.ready();
      const before = s.stats().bytes;
      const w = await s.put(meta('/gone'));
      assert.ok(w !== undefined);
      await w.write(pattern(3, 2 * MiB));
      await w.abort();
      assert.equal(await s.get('/gone'), undefined);
      if (s instanceof RawDiskStore) await s.sync();
      assert.equal(s.stats().bytes, before, 'space returned');
    });

    test('metadata updates keep the body; replacement swaps both', async (t) => {
      const s = await engine.make(t, engine.capacityBytes);
      t.after(() => s.close());
      await s.ready();
      const body = pattern(4, 100_000);
      await store(s, meta('/m'), body);
      const updated = meta('/m', {
        headers: [
          ['etag', '"e1"'],
          ['x-new', 'yes'],
        ],
        storedAtMs: 1_800_000_000_000,
      });
      assert.equal(await s.updateMeta(updated), true);
      const hit = await s.get('/m');
      assert.ok(hit !== undefined);
      assert.deepEqual(hit.meta.headers, updated.headers);
      assert.equal(hit.meta.storedAtMs, 1_800_000_000_000);
      assert.ok((await readAll(hit)).equals(body));
      hit.release();
      assert.equal(await s.updateMeta(meta('/absent')), false);
      const body2 = pattern(5, 250_000);
      await store(s, meta('/m', { status: 404 }), body2);
      const again = await s.get('/m');
      assert.ok(again !== undefined);
      assert.equal(again.meta.status, 404);
      assert.ok((await readAll(again)).equals(body2));
      again.release();
    });

    test('delete by key and by family (variants and slices)', async (t) => {
      const s = await engine.make(t, engine.capacityBytes);
      t.after(() => s.close());
      await s.ready();
      const fam = '/video.mp4';
      const keys = [
        fam,
        variantKey(fam, ['accept-encoding'], () => 'gzip'),
        sliceKey(fam, 0, 1023),
        sliceKey(fam, 1024, 2047),
        '/other',
      ];
      for (const k of keys) await store(s, meta(k), pattern(6, 1000));
      assert.equal(await s.delete('/other'), true);
      assert.equal(await s.get('/other'), undefined);
      assert.equal(await s.deleteFamily(fam), 4);
      for (const k of keys) assert.equal(await s.get(k), undefined, `${k} gone`);
    });

    test('knownAbsent never claims a stored entry is absent (the synchronous miss path trusts it)', async (t) => {
      const s = await engine.make(t, engine.capacityBytes);
      t.after(() => s.close());
      await s.ready();
      const known = (k: string): boolean | undefined => s.knownAbsent?.(k);
      await store(s, meta('/k'), pattern(7, 1000));
      const w = await s.put(meta('/writing'), { compressible: false });
      assert.ok(w !== undefined);
      await w.write(pattern(8, 100));
      assert.notEqual(known('/k'), true, 'stored');
      assert.equal(await s.get('/writing'), undefined, 'uncommitted entries are misses for get as well');
      await w.commit();
      w.dispose?.();
      assert.notEqual(known('/writing'), true, 'committed');
      if (s.knownAbsent !== undefined) {
        // Engines with an index in memory answer for keys they never had and for deleted ones.
        assert.equal(known('/never'), true);
        assert.equal(await s.delete('/k'), true);
        assert.equal(known('/k'), true, 'deleted');
      }
    });

    test('a body-less entry (a Vary marker) round-trips', async (t) => {
      const s = await engine.make(t, engine.capacityBytes);
      t.after(() => s.close());
      await s.ready();
      await store(s, meta('/v', { vary: ['accept-encoding'] }), Buffer.alloc(0));
      const hit = await s.get('/v');
      assert.ok(hit !== undefined);
      assert.deepEqual(hit.meta.vary, ['accept-encoding']);
      assert.equal(hit.bodyBytes, 0);
      assert.equal((await readAll(hit)).length, 0);
      hit.release();
    });

    test('stays within capacity by evicting', async (t) => {
      const cap = 16 * MiB;
      const s = await engine.make(t, cap);
      t.after(() => s.close());
      await s.ready();
      // Random bytes: compression must not let everything fit.
      const bodies = Array.from({ length: 24 }, () => randomBytes(MiB));
      for (let i = 0; i < 24; i++) await store(s, meta(`/e${i}`), bodies[i] as Buffer);
      if (s instanceof RawDiskStore) await s.sync();
      assert.ok(s.stats().bytes <= cap, `${s.stats().bytes} bytes held, capacity ${cap}`);
      let present = 0;
      for (let i = 0; i < 24; i++) {
        const hit = await s.get(`/e${i}`);
        if (hit === undefined) continue;
        present++;
        assert.ok((await readAll(hit)).equals(bodies[i] as Buffer), `/e${i} intact`);
        hit.release();
      }
      assert.ok(present > 0 && present < 24, `${present} of 24 kept`);
    });
  });
}

test('file store: the index is rebuilt on restart; leftovers of a crash are cleaned up', async (t) => {
  const dir = join(tempDir(t), 'l2');
  const s1 = new FileStore({ dir, capacityBytes: 64 * MiB, log: silentLogger() });
  await s1.ready();
  const bodies = new Map<string, Buffer>();
  for (let i = 0; i < 12; i++) {
    const b = pattern(i, 10_000 + i * 30_000);
    bodies.set(`/f/${i}`, b);
    await store(s1, meta(`/f/${i}`), b);
  }
  // A crash mid-write leaves a partial body under tmp/; one entry's metadata gets damaged.
  const unfinished = await s1.put(meta('/f/partial'));
  assert.ok(unfinished !== undefined);
  await unfinished.write(pattern(99, 500_000));
  await s1.close();
  const metaFiles: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.meta')) metaFiles.push(p);
    }
  };
  walk(join(dir, 'objects'));
  assert.equal(metaFiles.length, 12);
  writeFileSync(metaFiles[0] as string, 'not metadata');
  const s2 = new FileStore({ dir, capacityBytes: 64 * MiB, log: silentLogger() });
  t.after(() => s2.close());
  await s2.ready();
  await waitFor('index rebuilt', () => s2.stats().entries === 11);
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'partial writes removed');
  assert.equal(await s2.get('/f/partial'), undefined);
  let intact = 0;
  for (const [k, b] of bodies) {
    const hit = await s2.get(k);
    if (hit === undefined) continue;
    assert.ok((await readAll(hit)).equals(b), `${k} intact`);
    hit.release();
    intact++;
  }
  assert.equal(intact, 11, 'every entry but the damaged one');
  assert.equal(await s2.deleteFamily('/f/3'), 1);
});
