// Proves the block store's file discipline in-process on temp dirs: blocks round-trip through
// staging → active with per-chunk CRCs, a flipped byte is caught on read, restarts rediscover
// blocks from names and sizes alone, and aborted writes leave nothing behind.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CHUNK_SIZE_BYTES,
  ChunkChecksummer,
  fileSizeFor,
  lengthFromFileSize,
} from '../../src/protocol/block-format.js';
import type { BlockEvent } from '../../src/worker/block-store.js';
import { BlockCorruptError, BlockNotFoundError } from '../../src/worker/errors.js';
import { openFixture, randomData, readBlock, writeBlock } from './store-fixture.js';
import { flipByte } from './worker-fixture.js';

test('the block file size is a one-to-one function of the block length', () => {
  for (const len of [0, 1, CHUNK_SIZE_BYTES - 1, CHUNK_SIZE_BYTES, CHUNK_SIZE_BYTES + 1, 128 * 1024 * 1024]) {
    assert.equal(lengthFromFileSize(fileSizeFor(len)), len);
  }
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (len) => lengthFromFileSize(fileSizeFor(len)) === len),
  );
  // Sizes between valid ones are not blocks.
  assert.equal(lengthFromFileSize(fileSizeFor(CHUNK_SIZE_BYTES) + 1), undefined);
  assert.equal(lengthFromFileSize(10), undefined);
});

test('checksums do not depend on how the bytes were split', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 3 * CHUNK_SIZE_BYTES }), { maxLength: 6 }), (sizes) => {
      const data = randomData(sizes.reduce((a, b) => a + b, 0));
      const whole = new ChunkChecksummer();
      whole.update(data);
      const split = new ChunkChecksummer();
      let off = 0;
      for (const s of sizes) {
        split.update(data.subarray(off, off + s));
        off += s;
      }
      return whole.finish().equals(split.finish());
    }),
    { numRuns: 30 },
  );
});

test('a written block reads back identically, whole and at any range, from <dir>/<cluster_id>/active', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[DISK:64MB]{dir}/disk'] });
  const data = randomData(3 * CHUNK_SIZE_BYTES + 12_345);
  const info = await writeBlock(f.store, 7, data, 'DISK', 50_000);
  assert.equal(info.lengthBytes, data.length);
  assert.equal(info.fileBytes, fileSizeFor(data.length));
  assert.equal(info.path, join(f.dir, 'disk', 'test', 'active', '7.blk'));
  assert.deepEqual(readdirSync(join(f.dir, 'disk', 'test', 'staging')), []);
  assert.ok((await readBlock(f.store, 7)).equals(data));
  for (const [off, len] of [
    [0, 1],
    [CHUNK_SIZE_BYTES - 1, 2],
    [100_000, 100_000],
    [data.length - 1, 1],
    [5, 0],
  ] as const) {
    assert.ok(
      (await readBlock(f.store, 7, off, len)).equals(data.subarray(off, off + len)),
      `range ${off}+${len}`,
    );
  }
  // The data comes first in the file: a short-circuit reader uses it as is.
  assert.ok(readFileSync(info.path).subarray(0, data.length).equals(data));
  const tier = f.tiers.top;
  assert.equal(tier.usedBytes, info.fileBytes);
  assert.equal(tier.pendingBytes, 0);
  assert.equal(tier.blocks, 1);
  await assert.rejects(readBlock(f.store, 7, data.length - 1, 2), /outside/);
  await assert.rejects(readBlock(f.store, 99), BlockNotFoundError);
});

test('a write without a length hint grows its reservation; an aborted write leaves nothing', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[DISK:64MB]{dir}/disk'] });
  const data = randomData(9 * 1024 * 1024 + 3);
  await writeBlock(f.store, 1, data, 'DISK', 1 << 20, false);
  assert.ok((await readBlock(f.store, 1)).equals(data));
  assert.equal(f.tiers.top.pendingBytes, 0, 'unused reservation returned');
  const w = await f.store.createWriter(2, 'DISK', 1 << 20);
  await w.write(randomData(4096));
  assert.ok(f.tiers.top.pendingBytes > 0);
  await f.store.abortWriter(w);
  assert.equal(f.tiers.top.pendingBytes, 0);
  assert.equal(f.store.has(2), false);
  assert.deepEqual(readdirSync(join(f.dir, 'disk', 'test', 'staging')), []);
  // A second writer of a block being written is refused.
  const w1 = await f.store.createWriter(3, 'DISK', 10);
  await assert.rejects(f.store.createWriter(3, 'DISK', 10), /already being written/);
  await f.store.abortWriter(w1);
  // A declared length that does not match what arrived is refused and nothing is published.
  await assert.rejects(
    (async () => {
      const w2 = await f.store.createWriter(4, 'DISK', 10);
      await w2.write(randomData(5));
      await f.store.commitWriter(w2, 10);
    })(),
    /declared 10/,
  );
  assert.equal(f.store.has(4), false);
});

test('a flipped byte in a block file fails the read, drops the block and reports it corrupt', async (t) => {
  const f = await openFixture(t, { dataDirs: ['[DISK:64MB]{dir}/disk'] });
  const events: BlockEvent[] = [];
  f.store.on((e) => events.push(e));
  const data = randomData(5 * CHUNK_SIZE_BYTES);
  const info = await writeBlock(f.store, 11, data, 'DISK');
  flipByte(info.path, 3 * CHUNK_SIZE_BYTES + 17);
  // A range that avoids the damaged chunk still reads.
  assert.ok((await readBlock(f.store, 11, 0, CHUNK_SIZE_BYTES)).equals(data.subarray(0, CHUNK_SIZE_BYTES)));
  await assert.rejects(readBlock(f.store, 11), (err: unknown) => {
    assert.ok(err instanceof BlockCorruptError);
    assert.match(err.message, /checksum mismatch in chunk 3/);
    return true;
  });
  // The failed read dropped the block and reported it.
  assert.equal(f.store.has(11), false);
  assert.equal(existsSync(info.path), false);
  assert.ok(events.some((e) => e.kind === 'corrupt' && e.blockId === 11));
  assert.equal(f.tiers.top.usedBytes, 0);

  // A damaged trailer is caught when the block is opened.
  const info2 = await writeBlock(f.store, 12, data, 'DISK');
  flipByte(info2.path, info2.fileBytes - 3);
  await assert.rejects(f.store.openReader(12), /footer checksum mismatch/);
  assert.equal(f.store.has(12), false);
});

test('a restart rediscovers blocks from names and sizes, removes staging leftovers and keeps the worker id', async (t) => {
  const first = await openFixture(t, { dataDirs: ['[MEM:8MB]{dir}/mem', '[DISK:64MB]{dir}/disk'] });
  const a = randomData(300_000);
  const b = randomData(70_000);
  await writeBlock(first.store, 1, a, 'MEM');
  await writeBlock(first.store, 2, b, 'DISK');
  const halfWritten = await first.store.createWriter(3, 'DISK', 1000);
  await halfWritten.write(randomData(500));
  await first.store.close();
  writeFileSync(join(first.dir, 'disk', 'test', 'staging', 'leftover.tmp'), 'x');
  writeFileSync(join(first.dir, 'disk', 'test', 'active', '9.blk'), 'not a block');

  const second = await openFixture(t, {
    dir: first.dir,
    dataDirs: ['[MEM:8MB]{dir}/mem', '[DISK:64MB]{dir}/disk'],
  });
  assert.equal(second.workerId, first.workerId);
  assert.deepEqual([...second.store.list()].map((i) => [i.blockId, i.storageType]).sort(), [
    [1, 'MEM'],
    [2, 'DISK'],
  ]);
  assert.equal(second.store.recovery.stagingFilesRemoved, 2);
  assert.deepEqual(second.store.recovery.corrupt, [9]);
  assert.deepEqual(readdirSync(join(first.dir, 'disk', 'test', 'staging')), []);
  assert.ok((await readBlock(second.store, 1)).equals(a));
  assert.ok((await readBlock(second.store, 2)).equals(b));
  assert.equal(second.tiers.get('MEM')?.usedBytes, fileSizeFor(a.length));
  assert.equal(second.tiers.get('DISK')?.usedBytes, fileSizeFor(b.length));
});

test('a data directory of another cluster is refused; format_worker wipes it', async (t) => {
  const first = await openFixture(t, { dataDirs: ['[DISK:64MB]{dir}/disk'] });
  await writeBlock(first.store, 1, randomData(1000), 'DISK');
  await first.store.close();
  await assert.rejects(
    openFixture(t, { dir: first.dir, dataDirs: ['[DISK:64MB]{dir}/disk'], extraToml: '', ...otherCluster() }),
    /belongs to cluster "test" but this worker is in cluster "other".*format_worker = true/,
  );
  const wiped = await openFixture(t, {
    dir: first.dir,
    dataDirs: ['[DISK:64MB]{dir}/disk'],
    ...otherCluster(true),
  });
  assert.equal(wiped.store.size, 0);
  assert.notEqual(wiped.workerId, first.workerId);
  assert.equal(existsSync(join(first.dir, 'disk', 'test')), false);
});

function otherCluster(format = false): { clusterId: string; format: boolean } {
  return { clusterId: 'other', format };
}
