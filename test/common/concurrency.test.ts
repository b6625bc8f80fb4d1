// mapConcurrent: results in input order, never more calls in flight than the limit, and after a
// failure no new call starts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapConcurrent } from '../../src/common/concurrency.js';

test('mapConcurrent keeps order, bounds concurrency and stops after a failure', async () => {
  let inFlight = 0;
  let most = 0;
  const items = Array.from({ length: 25 }, (_, i) => i);
  const out = await mapConcurrent(items, 4, async (n, i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    // Later items finish first: the order of results must not follow completion.
    await new Promise((r) => setImmediate(r));
    if (n % 3 === 0) await new Promise((r) => setImmediate(r));
    inFlight--;
    return n * 10 + (i === n ? 0 : 1);
  });
  assert.deepEqual(
    out,
    items.map((n) => n * 10),
  );
  assert.equal(most, 4);
  assert.deepEqual(await mapConcurrent([], 4, async () => 1), []);

  const started: number[] = [];
  await assert.rejects(
    mapConcurrent(items, 2, async (n) => {
      started.push(n);
      await new Promise((r) => setImmediate(r));
      if (n === 3) throw new Error('item 3 failed');
      return n;
    }),
    /item 3 failed/,
  );
  assert.ok(started.length <= 6, `calls started after the failure: ${started.join(',')}`);
});
