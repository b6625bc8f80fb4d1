// Proves the data server's handlers in-process (no wire): streamed reads and writes return the
// same bytes, a broken or cancelled write leaves nothing, short-circuit reads and writes agree
// with remote ones, corruption fails the read and is reported, and repeated reads promote.
import { strict as assert } from 'node:assert';
import { closeSync, openSync, readFileSync, readSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { createRegistry } from '../../src/common/metrics.js';
import { silentLogger } from '../../src/common/logging.js';
import type { StorageType } from '../../src/common/config/index.js';
import { ChunkChecksummer } from '../../src/protocol/chunk-checksums.js';
import { BlockDelta } from '../../src/worker/block-delta.js';
import { DataServer } from '../../src/worker/data-server.js';
import { LocalWrites } from '../../src/worker/local-write.js';
import { WorkerMetrics } from '../../src/worker/worker-metrics.js';
import { waitFor } from '../helpers/wait.js';
import { openFixture, randomData } from './store-fixture.js';
import type { Fixture, FixtureOptions } from './store-fixture.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface ServerFixture extends Fixture {
  server: DataServer;
  delta: BlockDelta;
  metrics: WorkerMetrics;
  registry: ReturnType<typeof createRegistry>;
}

async function openServer(t: TestContext, o: Partial<FixtureOptions> = {}): Promise<ServerFixture> {
  const f = await openFixture(t, { dataDirs: ['[MEM:8MB]{dir}/mem', '[DISK:64MB]{dir}/disk'], ...o });
  const registry = createRegistry('worker');
  const metrics = new WorkerMetrics(registry, f.tiers);
  const delta = new BlockDelta();
  f.store.on((e) => {
    delta.record(e);
    metrics.record(e);
  });
  const localWrites = new LocalWrites({ store: f.store, log: silentLogger() });
  t.after(() => localWrites.close());
  const server = new DataServer({
    store: f.store,
    evictor: f.evictor,
    localWrites,
    metrics,
    promoteAfterReads: f.config.worker.promote_after_reads,
    log: silentLogger(),
  });
  return { ...f, server, delta, metrics, registry };
}

const ctx = (): { signal: AbortSignal } => ({ signal: new AbortController().signal });
const withTable = (payload: Buffer): { signal: AbortSignal; payload: Buffer } => ({ ...ctx(), payload });

/** The table a short-circuit writer computes, fed in uneven pieces. */
function tableOf(data: Buffer): Buffer {
  const sums = new ChunkChecksummer(data.length);
  for (let at = 0; at < data.length; at += 100_003) sums.update(data.subarray(at, at + 100_003));
  return sums.finish();
}

async function* chunks(data: Buffer, size: number, failAt?: number): AsyncGenerator<Buffer> {
  for (let off = 0; off < data.length; off += size) {
    if (failAt !== undefined && off >= failAt) throw new Error('connection reset');
    yield data.subarray(off, off + size);
  }
}

async function remoteWrite(s: ServerFixture, blockId: number, data: Buffer, type: StorageType = 'MEM') {
  return s.server.writeBlock(
    { blockId, storageType: type, lengthHint: data.length },
    ctx(),
    chunks(data, 128 * KiB),
  );
}

async function remoteRead(
  s: ServerFixture,
  blockId: number,
  offset?: number,
  length?: number,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  const res = await s.server.readBlock({ blockId, offset, length }, ctx(), {
    write: async (b) => {
      parts.push(Buffer.from(b));
    },
  });
  const out = Buffer.concat(parts);
  assert.equal(res.bytes, out.length);
  return out;
}

test('a streamed write reads back identically, whole and by range, and is counted', async (t) => {
  const s = await openServer(t);
  const data = randomData(3 * MiB + 77);
  const res = await remoteWrite(s, 1, data);
  assert.deepEqual(res, { length: data.length, storageType: 'MEM' });
  assert.ok((await remoteRead(s, 1)).equals(data));
  assert.ok((await remoteRead(s, 1, 1_000_000, 2_000_000)).equals(data.subarray(1_000_000, 3_000_000)));
  assert.ok((await remoteRead(s, 1, data.length)).equals(Buffer.alloc(0)));
  await assert.rejects(remoteRead(s, 1, data.length + 1), /past its end/);
  await assert.rejects(
    remoteRead(s, 2),
    (e: unknown) => (e as { code?: string }).code === 'STRATA_BLOCK_NOT_FOUND',
  );
  assert.deepEqual(await s.server.getBlockInfo({ blockId: 1 }), {
    length: data.length,
    storageType: 'MEM',
    reads: 3,
  });
  const text = await s.registry.metrics();
  assert.match(text, /strata_worker_write_bytes_total\{path="remote",role="worker"\} 3145805/);
  assert.match(text, /strata_worker_blocks\{tier="MEM",dir="[^"]+mem",role="worker"\} 1/);
  const batch = s.delta.take(100);
  assert.deepEqual(batch.added, [{ blockId: 1, length: data.length, storageType: 'MEM' }]);
});

test('a write stream that breaks or is cancelled leaves no block and no staging file', async (t) => {
  const s = await openServer(t);
  const data = randomData(2 * MiB);
  await assert.rejects(
    s.server.writeBlock(
      { blockId: 5, storageType: 'MEM', lengthHint: data.length },
      ctx(),
      chunks(data, 64 * KiB, MiB),
    ),
    /connection reset/,
  );
  const ac = new AbortController();
  const input = (async function* () {
    yield data.subarray(0, 100);
    ac.abort(new Error('client cancelled'));
  })();
  await assert.rejects(
    s.server.writeBlock({ blockId: 6, storageType: 'DISK' }, { signal: ac.signal }, input),
    /cancelled/,
  );
  assert.equal(s.store.size, 0);
  for (const d of s.tiers.allDirs()) {
    assert.deepEqual(readdirSync(d.stagingDir), [], d.stagingDir);
    assert.equal(d.pendingBytes, 0);
    assert.equal(d.usedBytes, 0);
  }
  assert.equal(s.delta.size, 0, 'nothing to report');
});

test('short-circuit reads return the same bytes as remote reads; short-circuit writes are checksummed at commit', async (t) => {
  const s = await openServer(t);
  const data = randomData(MiB + 5);
  await remoteWrite(s, 1, data, 'DISK');
  const local = await s.server.openLocalRead({ blockId: 1 });
  assert.equal(local.length, data.length);
  assert.equal(local.storageType, 'DISK');
  const fromFile = readFileSync(local.path).subarray(0, local.length);
  assert.ok(fromFile.equals(await remoteRead(s, 1)));

  const written = randomData(3 * MiB + 700 * KiB);
  const open = await s.server.openLocalWrite(
    { blockId: 2, storageType: 'MEM', lengthHint: written.length },
    ctx(),
  );
  assert.equal(open.storageType, 'MEM');
  writeFileSync(open.path, written);
  const committed = await s.server.commitLocalWrite({ blockId: 2, length: written.length }, ctx());
  assert.deepEqual(committed, { length: written.length, storageType: 'MEM' });
  assert.ok((await remoteRead(s, 2)).equals(written), 'the committed file verifies on a remote read');
  await assert.rejects(
    s.server.commitLocalWrite({ blockId: 2, length: written.length }, ctx()),
    /no short-circuit write is open/,
  );

  // A wrong length is refused and nothing is published; an abort removes the file.
  const bad = await s.server.openLocalWrite({ blockId: 3, storageType: 'MEM', lengthHint: 10 }, ctx());
  writeFileSync(bad.path, Buffer.alloc(9));
  await assert.rejects(
    s.server.commitLocalWrite({ blockId: 3, length: 10 }, ctx()),
    /holds 9 bytes but the commit says 10/,
  );
  assert.equal(s.store.has(3), false);
  const aborted = await s.server.openLocalWrite({ blockId: 4, storageType: 'DISK' }, ctx());
  writeFileSync(aborted.path, Buffer.alloc(100));
  await s.server.abortLocalWrite({ blockId: 4 });
  assert.equal(s.store.has(4), false);
  for (const d of s.tiers.allDirs()) {
    assert.deepEqual(readdirSync(d.stagingDir), []);
    assert.equal(d.pendingBytes, 0);
  }
  // A block open for a short-circuit write cannot be written remotely at the same time.
  await s.server.openLocalWrite({ blockId: 9, storageType: 'DISK', lengthHint: 1 }, ctx());
  await assert.rejects(remoteWrite(s, 9, Buffer.alloc(1)), /already being written/);
});

test('a short-circuit commit with the writer’s checksum table publishes without reading back; a wrong table is refused', async (t) => {
  const s = await openServer(t);
  const data = randomData(3 * MiB + 700 * KiB + 3);
  const commit = async (blockId: number, table: Buffer): Promise<unknown> => {
    const open = await s.server.openLocalWrite(
      { blockId, storageType: 'DISK', lengthHint: data.length },
      ctx(),
    );
    writeFileSync(open.path, data);
    return s.server.commitLocalWrite({ blockId, length: data.length, checksummed: true }, withTable(table));
  };
  assert.deepEqual(await commit(1, tableOf(data)), { length: data.length, storageType: 'DISK' });
  assert.ok((await remoteRead(s, 1)).equals(data), 'the published block verifies on read');

  // Wrong entry count, or a first/last chunk that does not match: refused, nothing published.
  await assert.rejects(commit(2, tableOf(data).subarray(4)), /checksum table holds .* expected for/);
  const badFirst = Buffer.from(tableOf(data));
  badFirst[0] = (badFirst[0] as number) ^ 1;
  await assert.rejects(commit(3, badFirst), /does not match chunk 0/);
  const badLast = Buffer.from(tableOf(data));
  badLast[badLast.length - 4] = (badLast[badLast.length - 4] as number) ^ 1;
  await assert.rejects(commit(4, badLast), /does not match chunk 58/);
  for (const id of [2, 3, 4]) assert.equal(s.store.has(id), false);

  // A wrong entry in the middle is not looked for at commit; the first read of that chunk finds
  // it and the block goes like any corrupt copy (no wrong byte is served).
  const badMiddle = Buffer.from(tableOf(data));
  badMiddle[20 * 4] = (badMiddle[20 * 4] as number) ^ 1;
  await commit(5, badMiddle);
  await assert.rejects(remoteRead(s, 5), /checksum mismatch in chunk 20/);
  assert.equal(s.store.has(5), false);

  // An empty block has an empty table.
  const empty = await s.server.openLocalWrite({ blockId: 6, storageType: 'DISK', lengthHint: 0 }, ctx());
  assert.ok(empty.path.length > 0);
  await s.server.commitLocalWrite({ blockId: 6, length: 0, checksummed: true }, withTable(Buffer.alloc(0)));
  assert.equal((await remoteRead(s, 6)).length, 0);
  for (const d of s.tiers.allDirs()) assert.deepEqual(readdirSync(d.stagingDir), []);
});

test('a flipped byte fails the remote read with a clear error and the block is reported corrupt', async (t) => {
  const s = await openServer(t);
  const data = randomData(2 * MiB);
  const info = await remoteWrite(s, 8, data, 'DISK');
  assert.equal(info.length, data.length);
  s.delta.take(100);
  const path = join(s.dir, 'disk', 'test', 'active', '8.blk');
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 1_500_000);
  b[0] = (b[0] ?? 0) ^ 1;
  writeSync(fd, b, 0, 1, 1_500_000);
  closeSync(fd);
  let received = 0;
  await assert.rejects(
    s.server.readBlock({ blockId: 8 }, ctx(), {
      write: async (chunk) => {
        received += chunk.length;
      },
    }),
    (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'STRATA_BLOCK_CORRUPT');
      assert.match(
        (err as Error).message,
        /block 8 is corrupt on this worker: checksum mismatch in chunk 22/,
      );
      return true;
    },
  );
  assert.ok(received <= 1_500_000, 'no byte of the damaged chunk was sent');
  assert.equal(s.store.has(8), false);
  assert.deepEqual(s.delta.take(100).corrupt, [8]);
  assert.match(await s.registry.metrics(), /strata_worker_checksum_failures_total\{role="worker"\} 1/);
});

test('a block read promote_after_reads times from a slower tier is promoted to the top tier', async (t) => {
  const s = await openServer(t, { promoteAfterReads: 2 });
  const data = randomData(500 * KiB);
  await remoteWrite(s, 3, data, 'DISK');
  await remoteRead(s, 3);
  assert.equal(s.store.info(3)?.storageType, 'DISK');
  await s.server.openLocalRead({ blockId: 3 });
  // The move is over when it is reported (the block's tier flips before the directory is synced
  // and the old file removed; a loaded machine was seen between the two).
  const promoted = /strata_worker_promotions_total\{from="DISK",to="MEM",role="worker"\} 1\n/;
  await waitFor('the promotion reported', async () => promoted.test(await s.registry.metrics()), 10_000);
  assert.equal(s.store.info(3)?.storageType, 'MEM');
  assert.ok((await remoteRead(s, 3)).equals(data));
});
