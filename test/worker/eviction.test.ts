// Proves tiering in-process on small tiers in temp dirs: watermark demotion of least-recently-used
// blocks, drops only with the master's permission (a sole copy stays and the write gets ENOSPC),
// pins, promotion after repeated reads, readers undisturbed by moves, and the space accounting.
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, statfsSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseConfigText } from '../../src/common/config/index.js';
import { fileSizeFor } from '../../src/protocol/block-format.js';
import { NoSpaceError } from '../../src/worker/errors.js';
import { TMPFS_MAGIC, TierDir } from '../../src/worker/tier-dir.js';
import { buildTiers } from '../../src/worker/tiers.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { openFixture, randomData, readBlock, writeBlock } from './store-fixture.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const MEM_WATERMARKS =
  '[worker.watermarks]\nMEM = { high = 0.6, low = 0.3 }\nDISK = { high = 0.9, low = 0.5 }\n';

test('above the high mark, least-recently-used blocks move down until the low mark', async (t) => {
  const f = await openFixture(t, {
    dataDirs: ['[MEM:4MB]{dir}/mem', '[DISK:64MB]{dir}/disk'],
    extraToml: MEM_WATERMARKS,
  });
  const blocks = new Map<number, Buffer>();
  for (let id = 1; id <= 6; id++) {
    blocks.set(id, randomData(512 * KiB));
    await writeBlock(f.store, id, blocks.get(id) as Buffer, 'MEM');
  }
  const mem = f.tiers.get('MEM');
  assert.ok(mem !== undefined);
  assert.equal(mem.blocks, 6);
  assert.ok(mem.usageRatio > 0.6);
  // Blocks 1 and 2 become the most recently used.
  f.store.recordRead(1, 0);
  f.store.recordRead(2, 0);
  const r = await f.evictor.runOnce();
  assert.equal(r.demoted, 4);
  assert.ok(mem.usageRatio <= 0.3, `MEM at ${mem.usageRatio}`);
  const where = new Map([...f.store.list()].map((b) => [b.blockId, b.storageType]));
  assert.deepEqual(Object.fromEntries(where), {
    1: 'MEM',
    2: 'MEM',
    3: 'DISK',
    4: 'DISK',
    5: 'DISK',
    6: 'DISK',
  });
  for (const [id, data] of blocks) assert.ok((await readBlock(f.store, id)).equals(data), `block ${id}`);
  assert.equal(mem.usedBytes, 2 * fileSizeFor(512 * KiB));
  assert.equal(f.tiers.get('DISK')?.usedBytes, 4 * fileSizeFor(512 * KiB));
  assert.equal(mem.pendingBytes + (f.tiers.get('DISK')?.pendingBytes ?? 0), 0);
  assert.ok(!existsSync(join(f.dir, 'mem', 'test', 'active', '3.blk')), 'old copy removed');
});

test('the periodic pass keeps a tier under its high mark while writes keep coming', async (t) => {
  const f = await openFixture(t, {
    dataDirs: ['[MEM:4MB]{dir}/mem', '[DISK:64MB]{dir}/disk'],
    extraToml: MEM_WATERMARKS,
  });
  f.evictor.start();
  for (let id = 1; id <= 20; id++) await writeBlock(f.store, id, randomData(256 * KiB), 'MEM');
  const mem = f.tiers.get('MEM');
  await waitFor('MEM back under its high mark', () => (mem?.usageRatio ?? 1) <= 0.6, 5000);
  assert.equal(f.store.size, 20);
});

test('a sole copy is never dropped: with nothing to free a write fails with ENOSPC and nothing is lost', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[DISK:2MB]{dir}/disk'], spaceWaitMs: 300 });
  const stored = new Map<number, Buffer>();
  for (let id = 1; id <= 3; id++) {
    stored.set(id, randomData(512 * KiB));
    await writeBlock(f.store, id, stored.get(id) as Buffer, 'DISK');
  }
  await assert.rejects(writeBlock(f.store, 4, randomData(600 * KiB), 'DISK'), (err: unknown) => {
    assert.ok(err instanceof NoSpaceError);
    assert.equal(err.code, 'ENOSPC');
    assert.match(err.message, /no space left on this worker .*only copy/);
    return true;
  });
  // The worker asked the master whether the oldest block may go, and was not allowed.
  assert.ok(f.dropRequests.flat().includes(1), JSON.stringify(f.dropRequests));
  assert.equal(f.store.size, 3);
  for (const [id, data] of stored) assert.ok((await readBlock(f.store, id)).equals(data));
  assert.equal(f.tiers.top.pendingBytes, 0);
  assert.equal(f.store.has(4), false);
});

test('a block the master allows to drop (another copy exists) is evicted to make room', async (t) => {
  const f = await openFixture(t, {
    dataDirs: ['[DISK:2MB]{dir}/disk'],
    spaceWaitMs: 3000,
    grantDrop: (id) => id === 1,
  });
  for (let id = 1; id <= 3; id++) await writeBlock(f.store, id, randomData(512 * KiB), 'DISK');
  const data = randomData(600 * KiB);
  await writeBlock(f.store, 4, data, 'DISK');
  assert.equal(f.store.has(1), false, 'the droppable block went');
  assert.deepEqual([...f.store.list()].map((b) => b.blockId).sort(), [2, 3, 4]);
  assert.ok((await readBlock(f.store, 4)).equals(data));
});

test('pinned blocks are neither demoted nor offered for dropping', async (t) => {
  const f = await openFixture(t, {
    dataDirs: ['[MEM:4MB]{dir}/mem', '[DISK:64MB]{dir}/disk'],
    extraToml: MEM_WATERMARKS,
  });
  for (let id = 1; id <= 6; id++) await writeBlock(f.store, id, randomData(512 * KiB), 'MEM');
  await f.store.setPinned([1, 2, 3], true);
  await f.evictor.runOnce();
  const mem = [...f.store.list()].filter((b) => b.storageType === 'MEM').map((b) => b.blockId);
  for (const id of [1, 2, 3]) assert.ok(mem.includes(id), `pinned block ${id} stayed: ${mem.join(',')}`);
  // Pins survive a restart.
  await f.store.close();
  const again = await openFixture(t, {
    dir: f.dir,
    dataDirs: ['[MEM:4MB]{dir}/mem', '[DISK:64MB]{dir}/disk'],
    extraToml: MEM_WATERMARKS,
  });
  assert.equal(again.store.isPinned(2), true);
  assert.equal(again.store.isPinned(5), false);
});

test('a block read promote_after_reads times in a slower tier moves to the top tier', async (t) => {
  const f = await openFixture(t, {
    dataDirs: ['[MEM:4MB]{dir}/mem', '[DISK:64MB]{dir}/disk'],
    promoteAfterReads: 3,
  });
  const data = randomData(300 * KiB);
  await writeBlock(f.store, 5, data, 'DISK');
  for (let i = 0; i < 2; i++) assert.equal(f.store.recordRead(5, 3), false);
  assert.equal(f.store.recordRead(5, 3), true);
  f.evictor.notePromotionCandidate(5);
  await waitFor('block 5 promoted', () => f.store.info(5)?.storageType === 'MEM', 5000);
  assert.equal(f.store.info(5)?.readsInTier, 0);
  assert.ok((await readBlock(f.store, 5)).equals(data));
  // No room under the top tier's high mark: the block stays where it is.
  await writeBlock(f.store, 6, randomData(3.6 * MiB), 'DISK');
  for (let i = 0; i < 3; i++) f.store.recordRead(6, 3);
  f.evictor.notePromotionCandidate(6);
  const r = await f.evictor.runOnce();
  assert.equal(r.promoted, 0);
  assert.equal(f.store.info(6)?.storageType, 'DISK');
});

test('a reader holding a block keeps reading it while it moves to another tier', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[MEM:4MB]{dir}/mem', '[DISK:64MB]{dir}/disk'] });
  const data = randomData(2 * MiB + 5);
  await writeBlock(f.store, 1, data, 'MEM');
  const reader = await f.store.openReader(1);
  const disk = f.tiers.get('DISK');
  assert.ok(disk !== undefined);
  assert.equal(await f.store.move(1, disk), true);
  assert.equal(f.store.info(1)?.storageType, 'DISK');
  const parts: Buffer[] = [];
  await reader.read(0, data.length, (s) => {
    parts.push(Buffer.from(s));
  });
  await reader.close();
  assert.ok(Buffer.concat(parts).equals(data), 'the old reader read the old file');
  assert.ok((await readBlock(f.store, 1)).equals(data), 'a new reader reads the new file');
});

test('a move interrupted after publishing its copy leaves one block after restart', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[MEM:4MB]{dir}/mem', '[DISK:64MB]{dir}/disk'] });
  const data = randomData(100 * KiB);
  const info = await writeBlock(f.store, 1, data, 'MEM');
  await f.store.close();
  // As if the copy into DISK was published and the worker died before removing the MEM file.
  const copy = join(f.dir, 'disk', 'test', 'active', '1.blk');
  copyFileSync(info.path, copy);
  const later = new Date(Date.now() + 5000);
  utimesSync(copy, later, later);
  const again = await openFixture(t, {
    dir: f.dir,
    dataDirs: ['[MEM:4MB]{dir}/mem', '[DISK:64MB]{dir}/disk'],
  });
  assert.equal(again.store.size, 1);
  assert.equal(again.store.info(1)?.storageType, 'DISK');
  assert.equal(existsSync(info.path), false);
  assert.equal(again.store.recovery.duplicatesRemoved, 1);
  assert.equal(again.tiers.get('MEM')?.usedBytes, 0);
  assert.ok((await readBlock(again.store, 1)).equals(data));
});

test('capacity is capped by the filesystem and dir_reserved; available never exceeds free space', () => {
  const fake = { type: 0xef53, totalBytes: 100 * MiB, freeBytes: 10 * MiB };
  const d = new TierDir({
    path: '/nowhere',
    clusterId: 'c',
    storageType: 'SSD',
    declaredCapacityBytes: 1024 * MiB,
    dirReservedBytes: 4 * MiB,
    statFs: () => fake,
  });
  assert.equal(d.capacityBytes, 96 * MiB);
  assert.equal(d.availableBytes, 6 * MiB);
  assert.equal(d.tryReserve(7 * MiB), false);
  assert.equal(d.tryReserve(5 * MiB), true);
  assert.equal(d.availableBytes, 1 * MiB);
  d.commit(5 * MiB, 5 * MiB);
  assert.equal(d.usedBytes, 5 * MiB);
  assert.throws(() => d.commit(1, 2), /only 1 reserved/);
  const small = new TierDir({
    path: '/nowhere',
    clusterId: 'c',
    storageType: 'MEM',
    declaredCapacityBytes: 8 * MiB,
    dirReservedBytes: 0,
    statFs: () => ({ ...fake, freeBytes: 90 * MiB }),
  });
  assert.equal(small.capacityBytes, 8 * MiB);
  assert.equal(small.availableBytes, 8 * MiB);
});

test('several directories of a tier fill in proportion to their free space', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[DISK:8MB]{dir}/d1', '[DISK:24MB]{dir}/d2'] });
  for (let id = 1; id <= 16; id++) await writeBlock(f.store, id, randomData(256 * KiB), 'DISK');
  const [d1, d2] = f.tiers.top.dirs;
  assert.ok(d1 !== undefined && d2 !== undefined);
  assert.equal(d1.blocks + d2.blocks, 16);
  assert.ok(d1.blocks >= 3 && d1.blocks <= 5, `d1 got ${d1.blocks}`);
  assert.ok(d2.blocks >= 11 && d2.blocks <= 13, `d2 got ${d2.blocks}`);
});

test('a MEM directory that is not a tmpfs gets a warning', (t) => {
  const dir = tempDir(t);
  const lines: string[] = [];
  const log = pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  );
  const config = parseConfigText(`[worker]\ndata_dir = ["[MEM:1MB]${dir}", "[MEM:1MB]/dev/shm"]\n`, 'x', {
    env: {},
  }).config;
  buildTiers(config, { log });
  const warned = lines.filter((l) => l.includes('not on a tmpfs'));
  const tmpIsTmpfs = statfsSync(dir).type === TMPFS_MAGIC;
  assert.equal(statfsSync('/dev/shm').type, TMPFS_MAGIC, '/dev/shm is a tmpfs on Linux');
  assert.equal(warned.length, tmpIsTmpfs ? 0 : 1, lines.join('\n'));
  if (!tmpIsTmpfs) assert.ok(warned[0]?.includes(dir));
});
