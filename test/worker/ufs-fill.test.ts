// Proves that a reader arriving at a read-through fill after bytes went by (a read-ahead started
// the fill) gets them from the staging file and then follows the fill live, without waiting for
// the whole block, and that both readers get exactly the object's bytes. In-process store on a
// temp dir and a UFS whose body the test releases piece by piece.
import { strict as assert } from 'node:assert';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import type { UfsBlockSource } from '../../src/protocol/ufs-types.js';
import type { UnderFileSystem } from '../../src/ufs/index.js';
import type { BlockWriter } from '../../src/worker/block-writer.js';
import { FILL_CHUNK_BYTES, FillCoordinator } from '../../src/worker/ufs-fill.js';
import { waitFor } from '../helpers/wait.js';
import { openFixture, randomData, readBlock } from './store-fixture.js';

/**
 * A fill coordinator on a temp store whose UFS serves `object` from a body the test feeds
 * (`feed()` swaps in a fresh one for the next fill); `opened()` counts upstream reads.
 */
async function fillRig(
  t: TestContext,
  object: Buffer,
): Promise<{
  f: Awaited<ReturnType<typeof openFixture>>;
  fills: FillCoordinator<BlockWriter>;
  source: UfsBlockSource;
  body: () => PassThrough;
  feed: () => PassThrough;
  opened: () => number;
}> {
  const f = await openFixture(t, { dataDirs: ['[DISK:64MB]{dir}/disk'] });
  let body = new PassThrough({ highWaterMark: FILL_CHUNK_BYTES });
  let opened = 0;
  // Only what a fill uses of a UFS: one ranged read whose body the test feeds.
  const ufs = {
    describe: () => 'test://',
    openRead: () => {
      opened++;
      return Promise.resolve({ length: object.length, body });
    },
  } as unknown as UnderFileSystem;
  const fills = new FillCoordinator<BlockWriter>({
    store: f.store,
    ufsFor: () => Promise.resolve(ufs),
    maxConcurrentFills: 2,
    log: silentLogger(),
  });
  t.after(() => fills.stop());
  const source: UfsBlockSource = {
    mountId: 1,
    ufsPath: '/obj',
    objectOffset: 0,
    length: object.length,
    validator: { size: object.length, mtimeMs: 1 },
    cache: true,
    storageType: 'DISK',
  };
  return {
    f,
    fills,
    source,
    body: () => body,
    feed: () => (body = new PassThrough({ highWaterMark: FILL_CHUNK_BYTES })),
    opened: () => opened,
  };
}

test('a reader joining a fill part way catches up from the staging file and follows it live', async (t) => {
  const object = randomData(5 * FILL_CHUNK_BYTES + 4321);
  const { f, fills, source, body: current, opened } = await fillRig(t, object);
  const body = current();
  const reader = (): { parts: Buffer[]; got: () => number; done: Promise<string> } => {
    const parts: Buffer[] = [];
    const done = fills.read(7, source, 0, object.length, (c) => void parts.push(Buffer.from(c)));
    return { parts, got: () => parts.reduce((a, b) => a + b.length, 0), done };
  };

  const first = reader();
  body.write(object.subarray(0, 3 * FILL_CHUNK_BYTES));
  await waitFor('the first reader to get 2 MiB', () => first.got() >= 2 * FILL_CHUNK_BYTES);
  const late = reader();
  // The late reader gets the bytes received so far while the UFS has sent no more.
  await waitFor('the late reader to catch up', () => late.got() >= 2 * FILL_CHUNK_BYTES);
  assert.equal(f.store.has(7), false, 'the block is not published yet');
  body.end(object.subarray(3 * FILL_CHUNK_BYTES));
  assert.equal(await first.done, 'ufs');
  assert.equal(await late.done, 'fill');
  assert.ok(Buffer.concat(first.parts).equals(object));
  assert.ok(Buffer.concat(late.parts).equals(object));
  assert.equal(opened(), 1, 'one upstream read');
  await waitFor('the block to be published', () => f.store.has(7));
  assert.ok((await readBlock(f.store, 7)).equals(object));
});

test("a follower on the worker's machine is told how far the staging file holds the block, then that it is stored; a failed fill is its error", async (t) => {
  const object = randomData(3 * FILL_CHUNK_BYTES + 99);
  const { f, fills, source, body: current, feed, opened } = await fillRig(t, object);
  let body = current();
  // Asking starts the fill; the answer waits until the file holds what was asked for.
  const first = fills.progress(8, source, FILL_CHUNK_BYTES, undefined);
  body.write(object.subarray(0, 2 * FILL_CHUNK_BYTES));
  const p = await first;
  assert.equal(p.state, 'filling');
  if (p.state !== 'filling') return;
  assert.ok(
    p.available >= FILL_CHUNK_BYTES && p.available <= 2 * FILL_CHUNK_BYTES,
    `available ${p.available}`,
  );
  const { readFileSync } = await import('node:fs');
  assert.ok(readFileSync(p.path).subarray(0, p.available).equals(object.subarray(0, p.available)));
  // Asking for the end while the UFS has sent everything: the block gets published.
  const last = fills.progress(8, source, object.length, undefined);
  body.end(object.subarray(2 * FILL_CHUNK_BYTES));
  const l = await last;
  assert.ok(l.state === 'stored' || l.available === object.length, JSON.stringify(l));
  await waitFor('the block to be published', () => f.store.has(8));
  assert.deepEqual(await fills.progress(8, source, object.length, undefined), { state: 'stored' });
  assert.equal(opened(), 1, 'one upstream read for every follower');

  // A UFS that fails part way: the follower waiting for more gets the failure.
  body = feed();
  const started = fills.progress(9, source, FILL_CHUNK_BYTES, undefined);
  body.write(object.subarray(0, FILL_CHUNK_BYTES));
  assert.equal((await started).state, 'filling');
  const waiting = fills.progress(9, source, object.length, undefined);
  body.destroy(Object.assign(new Error('connection reset by the UFS'), { code: 'ECONNRESET' }));
  await assert.rejects(waiting, /connection reset by the UFS/);
  assert.equal(f.store.has(9), false, 'no partial block');
});
