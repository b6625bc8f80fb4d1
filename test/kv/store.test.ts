// Proves the node store: LRU eviction by entry count and by bytes in recency order, TTL expiry
// (lazy and by sweep), last-writer-wins versions with tombstones and the flush floor, and, with
// fast-check, that random operation sequences agree with a simple reference model.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { ENTRY_OVERHEAD_BYTES, KIND_JSON, KIND_STRING, KIND_TOMBSTONE } from '../../src/kv/entry.js';
import type { WriteRecord } from '../../src/kv/entry.js';
import { HybridClock } from '../../src/kv/hlc.js';
import { LruStore } from '../../src/kv/index.js';
import type { EvictionReason } from '../../src/kv/index.js';

const EMPTY = Buffer.alloc(0);

function rec(key: string, value: string, version: number, expiresAtMs = 0): WriteRecord {
  return { key, kind: KIND_STRING, value: Buffer.from(value), version, expiresAtMs };
}

function tomb(key: string, version: number): WriteRecord {
  return { key, kind: KIND_TOMBSTONE, value: EMPTY, version, expiresAtMs: 0 };
}

function store(maxEntries: number, maxBytes = 1 << 30, now = () => 1_000_000) {
  const evicted: [EvictionReason, string][] = [];
  const s = new LruStore(
    { maxEntries, maxBytes, tombstoneTtlMs: 60_000, maxTombstones: 1000 },
    { now, onEvict: (reason, e) => evicted.push([reason, e.key]) },
  );
  return { s, evicted };
}

test('LRU by entries: the least recently used key goes first; a read refreshes a key', () => {
  const { s, evicted } = store(3);
  let v = 1;
  for (const k of ['a', 'b', 'c']) s.apply(rec(k, k, v++));
  assert.ok(s.get('a')); // a is now most recent: b is the oldest
  s.apply(rec('d', 'd', v++));
  assert.deepEqual(evicted, [['entries', 'b']]);
  assert.equal(s.get('b'), undefined);
  s.apply(rec('c', 'c2', v++)); // rewriting refreshes too: a is the oldest now
  s.apply(rec('e', 'e', v));
  assert.deepEqual(evicted.at(-1), ['entries', 'a']);
  assert.deepEqual(
    [...s.entries()].map((e) => e.key),
    ['e', 'c', 'd'],
  );
  assert.equal(s.count, 3);
});

test('LRU by bytes: max_memory counts key, value and the per-entry overhead', () => {
  const per = 1 + 100 + ENTRY_OVERHEAD_BYTES; // one-letter key, 100-byte value
  const { s, evicted } = store(1000, per * 4);
  let v = 1;
  for (const k of ['a', 'b', 'c', 'd']) s.apply(rec(k, 'x'.repeat(100), v++));
  assert.equal(s.bytes, per * 4);
  assert.equal(evicted.length, 0);
  s.apply(rec('e', 'x'.repeat(100), v++));
  assert.deepEqual(evicted, [['memory', 'a']]);
  // A bigger value pushes out as many old keys as it needs.
  s.apply(rec('f', 'x'.repeat(250), v));
  assert.deepEqual(
    evicted.map(([, k]) => k),
    ['a', 'b', 'c', 'd'].slice(0, evicted.length),
  );
  assert.ok(s.bytes <= per * 4, `bytes ${s.bytes}`);
  const held = [...s.entries()].reduce((n, e) => n + e.sizeBytes, 0);
  assert.equal(held, s.bytes, 'byte accounting matches the entries held');
});

test('TTL: an expired key misses on read (lazy) and the sweep removes the rest', () => {
  let now = 1_000_000;
  const { s, evicted } = store(100, 1 << 30, () => now);
  s.apply(rec('short', '1', 1, now + 100));
  s.apply(rec('long', '2', 2, now + 10_000));
  s.apply(rec('never', '3', 3));
  for (let i = 0; i < 50; i++) s.apply(rec(`bulk${i}`, 'x', 10 + i, now + 200));
  now += 150;
  assert.equal(s.get('short'), undefined);
  assert.deepEqual(evicted, [['expired', 'short']]);
  assert.ok(s.get('bulk0'), 'not yet expired');
  now += 100;
  assert.equal(s.sweep(now), 50);
  assert.equal(s.count, 2);
  assert.ok(s.get('long') && s.get('never'));
  // An expired key's version still orders writes: a late older copy cannot revive it.
  assert.equal(s.apply(rec('short', 'old', 0)), false);
});

test('versions: last writer wins, tombstones block older writes, flush sets a floor', () => {
  const { s } = store(100);
  assert.equal(s.apply(rec('k', 'v2', 20)), true);
  assert.equal(s.apply(rec('k', 'v1', 10)), false, 'older write loses');
  assert.equal(s.get('k')?.value.toString(), 'v2');
  assert.equal(s.apply(tomb('k', 30)), true);
  assert.equal(s.get('k'), undefined);
  assert.equal(s.apply(rec('k', 'v2-again', 20)), false, 'a stale copy cannot resurrect a deleted key');
  assert.equal(s.apply(rec('k', 'v4', 40)), true, 'a newer write wins over the tombstone');
  assert.equal(s.tombstone('k'), undefined);
  // Equal versions: every replica picks the same winner whatever the order.
  const x = store(10).s;
  const y = store(10).s;
  const w1: WriteRecord = { key: 'j', kind: KIND_JSON, value: Buffer.from('1'), version: 5, expiresAtMs: 0 };
  const w2 = rec('j', 'zzz', 5);
  x.apply(w1);
  x.apply(w2);
  y.apply(w2);
  y.apply(w1);
  assert.deepEqual(x.get('j')?.value, y.get('j')?.value);
  s.flush(100);
  assert.equal(s.count, 0);
  assert.equal(s.apply(rec('k', 'pre-flush', 99)), false);
  assert.equal(s.apply(rec('k', 'post-flush', 101)), true);
});

test('the hybrid clock never goes backwards and moves past observed versions', () => {
  let wall = 5000;
  const c = new HybridClock(() => wall);
  const a = c.next();
  const b = c.next();
  assert.ok(b > a);
  wall = 4000; // the wall clock stepped back
  assert.ok(c.next() > b);
  c.observe(wall * 1024 + 10_000_000);
  assert.ok(c.next() > wall * 1024 + 10_000_000);
});

test('model check: random operations agree with a reference LRU', () => {
  const cap = 5;
  const op = fc.oneof(
    fc.record({
      t: fc.constant('set' as const),
      k: fc.integer({ min: 0, max: 9 }),
      v: fc.string({ maxLength: 3 }),
    }),
    fc.record({ t: fc.constant('get' as const), k: fc.integer({ min: 0, max: 9 }) }),
    fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 9 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const { s } = store(cap);
      const model = new Map<string, string>(); // insertion order = recency order (oldest first)
      let version = 1;
      for (const o of ops) {
        const key = `k${o.k}`;
        if (o.t === 'set') {
          s.apply(rec(key, o.v, version++));
          model.delete(key);
          model.set(key, o.v);
          if (model.size > cap) model.delete(model.keys().next().value as string);
        } else if (o.t === 'get') {
          const got = s.get(key)?.value.toString();
          assert.equal(got, model.get(key));
          if (model.has(key)) {
            const v = model.get(key) as string;
            model.delete(key);
            model.set(key, v);
          }
        } else {
          s.apply(tomb(key, version++));
          model.delete(key);
        }
        assert.equal(s.count, model.size);
      }
      assert.deepEqual(
        [...s.entries()].map((e) => e.key),
        [...model.keys()].reverse(),
      );
    }),
    { numRuns: 300 },
  );
});
