// Small pieces of the client in isolation: the spill buffer across its memory/disk boundary, the
// memory budget, the failed-worker memory with its TTL, path normalisation, error mapping.
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnreachable, normaliseError } from '../../src/client/errors.js';
import { normalisePath } from '../../src/client/filesystem.js';
import { machineHostId } from '../../src/client/host-id.js';
import {
  MemoryBudget,
  SPILL_FIRST_SEGMENT_BYTES,
  SPILL_SEGMENT_BYTES,
  SpillBuffer,
} from '../../src/client/spill-buffer.js';
import { FailedWorkers } from '../../src/client/worker-pool.js';
import { FsError, StrataError } from '../../src/common/errors.js';
import { tempDir } from '../helpers/tmp.js';

test('spill buffer: bytes read back exactly across memory and the temp file; memory goes back to the budget', async (t) => {
  const budget = new MemoryBudget(10_000);
  const buf = new SpillBuffer(budget, tempDir(t, 'strata-spill-'));
  const parts = [randomBytes(4000), randomBytes(5000), randomBytes(3000), randomBytes(7000)];
  const offsets: number[] = [];
  for (const p of parts) offsets.push(await buf.append(p));
  assert.deepEqual(offsets, [0, 4000, 9000, 12_000]);
  assert.equal(buf.size, 19_000);
  assert.equal(budget.usedBytes, 9000, 'the first two fit in memory');
  assert.equal(buf.spilledBytes, 10_000);
  const all = Buffer.concat(parts);
  assert.deepEqual(await buf.read(0, all.length), all);
  assert.deepEqual(
    await buf.read(3990, 5100),
    all.subarray(3990, 9090),
    'a read across the memory/file boundary',
  );
  await assert.rejects(buf.read(18_000, 2000), /outside/);
  await buf.reset();
  assert.equal(budget.usedBytes, 0);
  assert.equal(buf.size, 0);
  const again = randomBytes(100);
  assert.equal(await buf.append(again), 0);
  assert.deepEqual(await buf.read(0, 100), again);
  await buf.close();
  assert.equal(budget.usedBytes, 0);
});

test('spill buffer: owned appends are kept without a copy', async (t) => {
  const budget = new MemoryBudget(1 << 20);
  const buf = new SpillBuffer(budget, tempDir(t, 'strata-spill-'));
  const mine = Buffer.from('abcdef');
  await buf.appendOwned(mine);
  mine[0] = 0x7a; // the log shares the bytes: the caller gave them up
  assert.equal((await buf.read(0, 6)).toString(), 'zbcdef');
  const copied = Buffer.from('xyz');
  await buf.append(copied);
  copied[0] = 0x41;
  assert.equal((await buf.read(6, 3)).toString(), 'xyz');
  await buf.close();
});

test('failed workers are remembered for the TTL only', () => {
  let now = 1000;
  const f = new FailedWorkers(500, () => now);
  f.add('w1');
  assert.ok(f.has('w1'));
  assert.deepEqual(f.list(), ['w1']);
  now = 1499;
  assert.ok(f.has('w1'));
  now = 1500;
  assert.ok(!f.has('w1'));
  assert.deepEqual(f.list(), []);
  const off = new FailedWorkers(0, () => now);
  off.add('w2');
  assert.ok(!off.has('w2'), 'a TTL of 0 turns the memory off');
});

test('paths are normalised or refused with EINVAL / ENAMETOOLONG', () => {
  assert.equal(normalisePath('/'), '/');
  assert.equal(normalisePath('//a//b/'), '/a/b');
  for (const bad of ['a/b', '', '/a/./b', '/a/../b', '/a\0b']) {
    assert.throws(
      () => normalisePath(bad),
      (e: unknown) => e instanceof FsError && e.code === 'EINVAL',
      bad,
    );
  }
  assert.throws(
    () => normalisePath(`/${'x'.repeat(256)}`),
    (e: unknown) => e instanceof FsError && e.code === 'ENAMETOOLONG',
  );
});

test('errors: POSIX codes become FsError; unreachable is recognised', () => {
  const e = normaliseError(
    new StrataError('ENOENT', '/x: no such file or directory', { details: { path: '/x' } }),
  );
  assert.ok(e instanceof FsError);
  assert.equal(e.code, 'ENOENT');
  assert.equal(e.details?.path, '/x');
  assert.ok(isUnreachable(new StrataError('STRATA_CONNECTION', 'x')));
  assert.ok(isUnreachable(new StrataError('STRATA_DEADLINE_EXCEEDED', 'x')));
  assert.ok(!isUnreachable(new FsError('EIO', 'x')));
});

test('the host id is stable and matches the worker formula (32 hex characters)', () => {
  assert.match(machineHostId(), /^[0-9a-f]{32}$/);
  assert.equal(machineHostId(), machineHostId());
});

test('spill buffer: appends share pooled segments; views are zero-copy within one segment only', async (t) => {
  const budget = new MemoryBudget(64 << 20);
  const buf = new SpillBuffer(budget, tempDir(t, 'strata-spill-'));
  // A small first append starts the doubling ramp (64 KiB, 64 KiB, 128 KiB, ...).
  const small = randomBytes(1000);
  assert.equal(await buf.append(small), 0);
  assert.equal(budget.usedBytes, SPILL_FIRST_SEGMENT_BYTES);
  const mib = SPILL_SEGMENT_BYTES;
  const big = randomBytes(3 * mib);
  assert.equal(await buf.append(big), 1000);
  const all = Buffer.concat([small, big]);
  assert.deepEqual(await buf.read(0, all.length), all);
  assert.equal(buf.spilledBytes, 0);
  // Past the first MiB, segments start at multiples of a segment: a MiB-aligned MiB is one view.
  const v = buf.view(mib, mib);
  assert.ok(v !== undefined, 'an aligned MiB is one segment');
  assert.deepEqual(v, all.subarray(mib, 2 * mib));
  assert.equal(buf.view(mib - 10, 20), undefined, 'a range across two segments has no view');
  assert.equal(buf.view(all.length - 5, 10), undefined, 'a range past the end has no view');
  const pieces = buf.views(500, 2 * mib);
  assert.ok(pieces !== undefined && pieces.length > 1, 'a range across segments comes in pieces');
  assert.deepEqual(Buffer.concat(pieces), all.subarray(500, 500 + 2 * mib));
  await buf.close();
  assert.equal(budget.usedBytes, 0);
  // The next log reuses the memory the first gave back; its bytes are its own.
  const next = new SpillBuffer(budget, tempDir(t, 'strata-spill-'));
  const other = randomBytes(mib);
  await next.append(other);
  assert.deepEqual(next.view(0, mib), other);
  assert.deepEqual(await next.read(0, mib), other);
  await next.close({ recycle: false });
  assert.equal(budget.usedBytes, 0);
});

test('spill buffer: a budget too small for a segment still keeps what fits, exactly', async (t) => {
  const budget = new MemoryBudget(SPILL_SEGMENT_BYTES + 100);
  const buf = new SpillBuffer(budget, tempDir(t, 'strata-spill-'));
  const data = randomBytes(SPILL_SEGMENT_BYTES + 5000);
  await buf.append(data);
  assert.equal(budget.usedBytes, SPILL_SEGMENT_BYTES, 'one full segment, the rest spilled');
  assert.equal(buf.spilledBytes, 5000);
  assert.equal(buf.views(0, data.length), undefined, 'no views of a range that spilled');
  assert.deepEqual(await buf.read(0, data.length), data);
  await buf.close();
  assert.equal(budget.usedBytes, 0);
});
