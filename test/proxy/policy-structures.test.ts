// Model-based checks (fast-check) of the two data structures under the stores: the S3-FIFO
// eviction policy (never over capacity, consistent membership, scan resistance) and the
// raw-disk extent allocator (no overlap, exact accounting, free neighbours always merged).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { ExtentAllocator } from '../../src/proxy/store/raw-disk/allocator.js';
import type { Extent } from '../../src/proxy/store/raw-disk/allocator.js';
import { S3FifoPolicy } from '../../src/proxy/store/s3fifo.js';

type Op =
  { op: 'insert'; key: number; size: number } | { op: 'touch'; key: number } | { op: 'remove'; key: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('insert' as const),
    key: fc.integer({ min: 0, max: 60 }),
    size: fc.integer({ min: 1, max: 300 }),
  }),
  fc.record({ op: fc.constant('touch' as const), key: fc.integer({ min: 0, max: 60 }) }),
  fc.record({ op: fc.constant('remove' as const), key: fc.integer({ min: 0, max: 60 }) }),
);

test('S3-FIFO: never over capacity, and what it holds is exactly what was inserted and not evicted', () => {
  fc.assert(
    fc.property(fc.integer({ min: 300, max: 3000 }), fc.array(opArb, { maxLength: 400 }), (capacity, ops) => {
      const p = new S3FifoPolicy<number>(capacity);
      const model = new Map<number, number>();
      for (const o of ops) {
        if (o.op === 'insert') {
          model.set(o.key, o.size);
          for (const v of p.insert(o.key, o.size)) model.delete(v);
        } else if (o.op === 'touch') p.touch(o.key);
        else {
          assert.equal(p.remove(o.key), model.delete(o.key));
        }
        assert.ok(p.bytes <= capacity, `bytes ${p.bytes} <= capacity ${capacity}`);
        assert.equal(p.count, model.size);
        assert.equal(
          p.bytes,
          [...model.values()].reduce((a, b) => a + b, 0),
        );
        for (const k of model.keys()) assert.ok(p.has(k));
      }
    }),
    { numRuns: 300 },
  );
});

test('S3-FIFO: a hot set survives a one-time scan of many cold keys (LRU would not)', () => {
  const p = new S3FifoPolicy<string>(1000);
  const hot = Array.from({ length: 50 }, (_, i) => `hot${i}`);
  for (const k of hot) p.insert(k, 10);
  for (let round = 0; round < 3; round++) for (const k of hot) p.touch(k);
  // Bring the hot keys into the main queue by letting newcomers push them out of the small one.
  for (let i = 0; i < 200; i++) p.insert(`warm${i}`, 10);
  for (const k of hot) p.touch(k);
  for (let i = 0; i < 5000; i++) p.insert(`cold${i}`, 10); // a scan: each key seen once
  const survivors = hot.filter((k) => p.has(k)).length;
  assert.ok(survivors >= 45, `${survivors} of 50 hot keys survived the scan`);
});

type AllocOp = { op: 'alloc'; n: number; maxExtents: number } | { op: 'free'; pick: number };

test('extent allocator: no overlap, exact accounting, free neighbours merged', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 16, max: 2000 }),
      fc.array(
        fc.oneof(
          fc.record({
            op: fc.constant('alloc' as const),
            n: fc.integer({ min: 1, max: 200 }),
            maxExtents: fc.integer({ min: 1, max: 8 }),
          }),
          fc.record({ op: fc.constant('free' as const), pick: fc.nat() }),
        ),
        { maxLength: 200 },
      ),
      (total, ops: AllocOp[]) => {
        const a = new ExtentAllocator(total);
        const owned: Extent[][] = [];
        const used = new Uint8Array(total);
        for (const o of ops) {
          if (o.op === 'alloc') {
            const ext = a.allocate(o.n, o.maxExtents);
            if (ext === undefined) continue;
            assert.ok(ext.length <= o.maxExtents);
            assert.equal(
              ext.reduce((s, [, c]) => s + c, 0),
              o.n,
            );
            for (const [s, c] of ext)
              for (let b = s; b < s + c; b++) {
                assert.equal(used[b], 0, `block ${b} handed out twice`);
                used[b] = 1;
              }
            owned.push(ext);
          } else if (owned.length > 0) {
            const [ext] = owned.splice(o.pick % owned.length, 1);
            for (const [s, c] of ext ?? []) {
              a.free(s, c);
              for (let b = s; b < s + c; b++) used[b] = 0;
            }
          }
          const inUse = used.reduce((n, v) => n + v, 0);
          assert.equal(a.usedBlocks, inUse);
          const free = a.freeExtents();
          for (let i = 1; i < free.length; i++) {
            const prev = free[i - 1] as Extent;
            assert.ok(prev[0] + prev[1] < (free[i] as Extent)[0], 'adjacent free extents are merged');
          }
        }
        for (const ext of owned) for (const [s, c] of ext) a.free(s, c);
        assert.equal(a.freeBlocks, total);
        assert.equal(a.fragmentationRate(), 0);
        assert.equal(a.freeExtentCount, 1);
      },
    ),
    { numRuns: 300 },
  );
});

test('extent allocator: prefers one contiguous extent, splits only when it must', () => {
  const a = new ExtentAllocator(100);
  const x = a.allocate(30, 4);
  assert.deepEqual(x, [[0, 30]]);
  const y = a.allocate(30, 4);
  const z = a.allocate(30, 4);
  assert.ok(y !== undefined && z !== undefined);
  a.free(30, 30); // a hole of 30 in the middle, 10 free at the end
  assert.equal(a.fragmentationRate(), 1 - 30 / 40);
  assert.deepEqual(a.allocate(35, 1), undefined, 'no single extent of 35');
  const split = a.allocate(35, 2);
  assert.deepEqual(split, [
    [30, 30],
    [90, 5],
  ]);
});
