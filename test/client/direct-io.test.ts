// Proves the O_DIRECT appender (protocol/direct-io.ts, the SDK's short-circuit writes) writes exactly the bytes appended, in pieces
// of any size across slot boundaries, with flushes in between and an unaligned end, on a temp dir.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { AlignedSlotPool, DIRECT_SLOT_BYTES, DirectAppender } from '../../src/protocol/direct-io.js';
import { tempDir } from '../helpers/tmp.js';

async function appendAll(
  path: string,
  pool: AlignedSlotPool,
  pieces: readonly Buffer[],
  flushAfter: ReadonlySet<number>,
): Promise<boolean> {
  const opened = await DirectAppender.open(path, 'wx+', pool);
  if (!('appender' in opened)) {
    // A filesystem without O_DIRECT: the caller writes buffered; nothing more to prove here.
    await opened.plain.close();
    return false;
  }
  const a = opened.appender;
  try {
    let total = 0;
    for (const [i, p] of pieces.entries()) {
      await a.append(p);
      total += p.length;
      assert.equal(a.appendedBytes, total);
      if (flushAfter.has(i)) {
        await a.flush();
        // Everything appended so far is readable through the ordinary descriptor.
        const back = Buffer.alloc(total);
        const { bytesRead } = await a.plain.read(back, 0, total, 0);
        assert.equal(bytesRead, total);
        assert.ok(back.equals(Buffer.concat(pieces.slice(0, i + 1))));
      }
    }
    await a.flush();
  } finally {
    await a.close();
  }
  return true;
}

test('direct appends of any piece sizes, with flushes between, give the exact bytes', async (t) => {
  const dir = tempDir(t);
  const pool = new AlignedSlotPool(4);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: DIRECT_SLOT_BYTES + 5000 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(5), { maxLength: 3 }),
      async (sizes, flushes) => {
        const data = randomBytes(sizes.reduce((a, b) => a + b, 0));
        const pieces: Buffer[] = [];
        let off = 0;
        for (const s of sizes) {
          pieces.push(data.subarray(off, off + s));
          off += s;
        }
        const path = join(dir, `f${run++}`);
        if (!(await appendAll(path, pool, pieces, new Set(flushes)))) return;
        assert.equal(statSync(path).size, data.length);
        assert.ok(readFileSync(path).equals(data));
      },
    ),
    { numRuns: 25 },
  );
  // Every appender gave its slots back: the 4-slot pool still serves two at once.
  assert.ok(pool.allocatedSlots <= 4);
});

test('with no free slots the appender is not used and the file is written buffered', async (t) => {
  const dir = tempDir(t);
  const pool = new AlignedSlotPool(2);
  const first = await DirectAppender.open(join(dir, 'a'), 'wx', pool);
  const second = await DirectAppender.open(join(dir, 'b'), 'wx', pool);
  try {
    if (!('appender' in first)) return; // no O_DIRECT on this filesystem
    assert.ok('plain' in second && !('appender' in second), 'the cap of 2 slots is held by the first');
  } finally {
    if ('appender' in first) await first.appender.close();
    else await first.plain.close();
    if ('appender' in second) await second.appender.close();
    else await second.plain.close();
  }
  const third = await DirectAppender.open(join(dir, 'c'), 'wx', pool);
  assert.ok('appender' in third, 'slots come back on close');
  await third.appender.close();
});
