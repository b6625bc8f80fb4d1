// Proves the raw-disk store keeps its index across restarts (clean close, crash without close,
// journal overflow into checkpoints, a torn last journal record), never serves a damaged entry,
// compresses text, and defragments free space without losing entries.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { CorruptEntryError } from '../../src/proxy/errors.js';
import { scanRecords } from '../../src/proxy/store/raw-disk/journal.js';
import { computeGeometry } from '../../src/proxy/store/raw-disk/layout.js';
import { RawDiskStore } from '../../src/proxy/store/raw-disk/store.js';
import type { RawDiskOptions } from '../../src/proxy/store/raw-disk/store.js';
import type { EntryMeta, StoreHit } from '../../src/proxy/store/types.js';
import { tempDir } from '../helpers/tmp.js';
import { pattern } from './helpers.js';

const MiB = 1024 * 1024;

function opts(devicePath: string, extra: Partial<RawDiskOptions> = {}): RawDiskOptions {
  return {
    devicePath,
    totalBytes: 32 * MiB,
    blockSizeBytes: 4096,
    compression: false,
    prefetch: true,
    directIo: false,
    log: silentLogger(),
    autoDefrag: false,
    ...extra,
  };
}

function meta(key: string): EntryMeta {
  return {
    key,
    status: 200,
    headers: [['content-type', 'text/plain']],
    policy: { v: 1 } as unknown as EntryMeta['policy'],
    storedAtMs: 1,
  };
}

async function put(s: RawDiskStore, key: string, body: Buffer, compressible = false): Promise<void> {
  const w = await s.put(meta(key), { expectedBytes: body.length, compressible });
  assert.ok(w !== undefined, `${key} accepted`);
  for (let off = 0; off < body.length; off += 100_000) await w.write(body.subarray(off, off + 100_000));
  await w.commit();
}

async function body(hit: StoreHit): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of hit.read(0, hit.bodyBytes)) parts.push(Buffer.from(c));
  hit.release();
  return Buffer.concat(parts);
}

async function expectBody(s: RawDiskStore, key: string, want: Buffer): Promise<void> {
  const hit = await s.get(key);
  assert.ok(hit !== undefined, `${key} present`);
  assert.ok((await body(hit)).equals(want), `${key} intact`);
}

test('entries survive a clean restart', async (t) => {
  const dev = join(tempDir(t), 'raw');
  const s1 = new RawDiskStore(opts(dev));
  await s1.ready();
  const bodies = new Map<string, Buffer>();
  for (let i = 0; i < 20; i++) {
    const b = pattern(i, 10_000 + i * 50_000);
    bodies.set(`/obj/${i}`, b);
    await put(s1, `/obj/${i}`, b);
  }
  const statsBefore = s1.rawStats();
  await s1.close();
  const s2 = new RawDiskStore(opts(dev));
  t.after(() => s2.close());
  await s2.ready();
  assert.equal(s2.rawStats().entries, 20);
  const used = s2.rawStats().usedBlocks;
  // Exactly the entries' blocks, plus the checkpoint the clean close wrote.
  assert.ok(
    used >= statsBefore.usedBlocks && used <= statsBefore.usedBlocks + 2,
    `free-space map rebuilt (${used} blocks used)`,
  );
  for (const [k, b] of bodies) await expectBody(s2, k, b);
});

test('a crash (no close) keeps every committed entry and nothing of an unfinished one', async (t) => {
  const dev = join(tempDir(t), 'raw');
  const s1 = new RawDiskStore(opts(dev));
  await s1.ready();
  const bodies = new Map<string, Buffer>();
  for (let i = 0; i < 10; i++) {
    const b = randomBytes(200_000);
    bodies.set(`/c/${i}`, b);
    await put(s1, `/c/${i}`, b);
  }
  const unfinished = await s1.put(meta('/c/partial'), { expectedBytes: 5 * MiB });
  assert.ok(unfinished !== undefined);
  await unfinished.write(randomBytes(3 * MiB));
  const committedBlocks = s1.rawStats().usedBlocks;
  // No close, no checkpoint: the new instance must replay the journal.
  const s2 = new RawDiskStore(opts(dev));
  t.after(() => s2.close());
  await s2.ready();
  assert.equal(s2.rawStats().entries, 10);
  assert.equal(await s2.get('/c/partial'), undefined, 'the unfinished entry does not exist');
  assert.ok(s2.rawStats().usedBlocks < committedBlocks, 'its blocks are free again');
  for (const [k, b] of bodies) await expectBody(s2, k, b);
  await unfinished.abort();
  await s1.close();
});

test('a torn last journal record is ignored on replay', async (t) => {
  const dev = join(tempDir(t), 'raw');
  const s1 = new RawDiskStore(opts(dev));
  await s1.ready();
  for (let i = 0; i < 5; i++) await put(s1, `/t/${i}`, pattern(i, 50_000));
  await s1.releaseForTest();
  // Damage the last record as a crash in the middle of its write would.
  const geo = computeGeometry(32 * MiB, 4096);
  const fh = await open(dev, 'r+');
  const region = Buffer.alloc(geo.journalBytes);
  await fh.read(region, 0, region.length, geo.journalOffset);
  const sb = region.readUInt32BE(4); // epoch of the first record
  const { records, endOffset } = scanRecords(region, sb);
  assert.equal(records.length, 5);
  await fh.write(Buffer.from('garbage!'), 0, 8, geo.journalOffset + endOffset - 8);
  await fh.close();
  const s2 = new RawDiskStore(opts(dev));
  t.after(() => s2.close());
  await s2.ready();
  assert.equal(s2.rawStats().entries, 4, 'the damaged record and nothing else is lost');
  assert.equal(await s2.get('/t/4'), undefined);
  for (let i = 0; i < 4; i++) await expectBody(s2, `/t/${i}`, pattern(i, 50_000));
  // And the store keeps working after it.
  await put(s2, '/t/new', pattern(9, 70_000));
  await expectBody(s2, '/t/new', pattern(9, 70_000));
});

test('the journal overflows into checkpoints and replays across them', async (t) => {
  const dev = join(tempDir(t), 'raw');
  const o = opts(dev, { blockSizeBytes: 512 });
  const s1 = new RawDiskStore(o);
  await s1.ready();
  // Long keys make big records: 4000 of them are several times the 1 MiB journal.
  const long = 'x'.repeat(400);
  for (let i = 0; i < 4000; i++) await put(s1, `/j/${i}/${long}`, pattern(i, 300));
  const entries = s1.rawStats().entries;
  assert.ok(entries > 1000, `${entries} entries kept`);
  await s1.releaseForTest();
  const s2 = new RawDiskStore(o);
  t.after(() => s2.close());
  await s2.ready();
  assert.equal(s2.rawStats().entries, entries, 'every entry recovered from checkpoint + journal');
  let checked = 0;
  for (let i = 3999; i >= 0 && checked < 200; i--) {
    const hit = await s2.get(`/j/${i}/${long}`);
    if (hit === undefined) continue;
    assert.ok((await body(hit)).equals(pattern(i, 300)));
    checked++;
  }
  assert.equal(checked, 200);
});

test('a damaged body or metadata is detected on read and the entry dropped', async (t) => {
  const dev = join(tempDir(t), 'raw');
  const s1 = new RawDiskStore(opts(dev));
  await s1.ready();
  await put(s1, '/first', pattern(1, 300_000)); // at the start of the data region
  await put(s1, '/second', pattern(2, 300_000));
  await s1.close();
  const geo = computeGeometry(32 * MiB, 4096);
  const fh = await open(dev, 'r+');
  await fh.write(randomBytes(64), 0, 64, geo.dataOffset + 200_000); // inside /first's body
  await fh.close();
  const s2 = new RawDiskStore(opts(dev));
  t.after(() => s2.close());
  await s2.ready();
  const hit = await s2.get('/first');
  assert.ok(hit !== undefined, 'metadata is intact, so the entry is found');
  await assert.rejects(() => body(hit), CorruptEntryError);
  assert.equal(await s2.get('/first'), undefined, 'dropped after the damage was seen');
  await expectBody(s2, '/second', pattern(2, 300_000));
  // Damage to the metadata area is caught at lookup.
  await s2.close();
  const fh2 = await open(dev, 'r+');
  const data = Buffer.alloc(2 * MiB);
  await fh2.read(data, 0, data.length, geo.dataOffset);
  const at = data.indexOf(Buffer.from('/second'));
  assert.ok(at >= 0, 'found the metadata of /second');
  await fh2.write(Buffer.from('/sEcOnD'), 0, 7, geo.dataOffset + at);
  await fh2.close();
  const s3 = new RawDiskStore(opts(dev));
  t.after(() => s3.close());
  await s3.ready();
  await assert.rejects(() => s3.get('/second'), CorruptEntryError);
  assert.equal(await s3.get('/second'), undefined);
});

test('text is compressed on disk and reads back byte for byte', async (t) => {
  const dev = join(tempDir(t), 'raw');
  const s = new RawDiskStore(opts(dev, { compression: true }));
  t.after(() => s.close());
  await s.ready();
  const text = Buffer.from('{"id": 12345, "name": "strata", "tags": ["cache", "proxy"]}\n'.repeat(80_000));
  const before = s.rawStats().usedBlocks;
  await put(s, '/data.json', text, true);
  const usedBytes = (s.rawStats().usedBlocks - before) * 4096;
  assert.ok(usedBytes < text.length / 4, `${text.length} bytes of text take ${usedBytes} bytes`);
  await expectBody(s, '/data.json', text);
  const hit = await s.get('/data.json');
  assert.ok(hit !== undefined);
  const parts: Buffer[] = [];
  for await (const c of hit.read(1_000_000, 1_000_100)) parts.push(Buffer.from(c));
  hit.release();
  assert.ok(
    Buffer.concat(parts).equals(text.subarray(1_000_000, 1_000_100)),
    'ranged read inside compressed frames',
  );
});

test('defragmentation merges free space and keeps every entry intact, also after restart', async (t) => {
  const dev = join(tempDir(t), 'raw');
  const s1 = new RawDiskStore(opts(dev));
  await s1.ready();
  const kept = new Map<string, Buffer>();
  // Fill most of the device so the free tail is small and the holes dominate.
  for (let i = 0; i < 440; i++) {
    const b = pattern(i, 60_000);
    await put(s1, `/d/${i}`, b);
    kept.set(`/d/${i}`, b);
  }
  for (let i = 0; i < 440; i += 2) {
    await s1.delete(`/d/${i}`);
    kept.delete(`/d/${i}`);
  }
  await s1.sync();
  const before = s1.rawStats().fragmentationRate;
  assert.ok(before > 0.3, `fragmented first (${before.toFixed(2)})`);
  const { moved } = await s1.defragment(64 * MiB);
  await s1.sync();
  const after = s1.rawStats().fragmentationRate;
  t.diagnostic(`fragmentation ${before.toFixed(3)} -> ${after.toFixed(3)} after moving ${moved} entries`);
  assert.ok(moved > 0);
  assert.ok(after < before / 2, `fragmentation fell from ${before.toFixed(2)} to ${after.toFixed(2)}`);
  for (const [k, b] of kept) await expectBody(s1, k, b);
  const s2 = new RawDiskStore(opts(dev));
  t.after(() => s2.close());
  await s2.ready();
  assert.equal(s2.rawStats().entries, kept.size);
  for (const [k, b] of kept) await expectBody(s2, k, b);
});

test('every block size from 512 B to 1 MiB works', async (t) => {
  for (const bs of [512, 8192, 1024 * 1024]) {
    const dev = join(tempDir(t), `raw-${bs}`);
    const s = new RawDiskStore(opts(dev, { blockSizeBytes: bs, totalBytes: 64 * MiB }));
    await s.ready();
    const b = pattern(bs, 3 * MiB + 5);
    await put(s, '/bs', b);
    await s.close();
    const again = new RawDiskStore(opts(dev, { blockSizeBytes: bs, totalBytes: 64 * MiB }));
    await again.ready();
    await expectBody(again, '/bs', b);
    await again.close();
  }
});
