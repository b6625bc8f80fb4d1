// The read-ahead of upload bodies: chunks come out whole and in order, the source is pulled
// before anyone reads (up to the bound, no further), and errors of the source or the hook surface.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadAhead } from '../../src/gateway/s3/read-ahead.js';
import { PiecePool, UPLOAD_PIECE_BYTES, WriteGather } from '../../src/gateway/s3/write-gather.js';
import { waitFor } from '../helpers/wait.js';

/** A source of `count` chunks of `size` bytes (byte value = chunk index) that counts its pulls. */
function source(count: number, size: number): { iter: AsyncIterable<Buffer>; pulled: () => number } {
  let pulled = 0;
  async function* gen(): AsyncGenerator<Buffer> {
    for (let i = 0; i < count; i++) {
      pulled++;
      await Promise.resolve();
      yield Buffer.alloc(size, i);
    }
  }
  return { iter: gen(), pulled: () => pulled };
}

test('read-ahead: pulls up to the bound before the first read, then yields everything in order', async () => {
  const s = source(10, 100);
  const seen: number[] = [];
  const ra = new ReadAhead(s.iter, (c) => void seen.push(c[0] as number), 300);
  // Three chunks fill the bound; the pump then waits for the consumer.
  await waitFor('three chunks pulled', () => s.pulled() === 3, 5000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(s.pulled(), 3);
  assert.deepEqual(seen, [0, 1, 2]);
  const out: number[] = [];
  for await (const c of ra) {
    assert.equal(c.length, 100);
    out.push(c[0] as number);
  }
  assert.deepEqual(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(seen, out);
  assert.equal(await ra.next(), undefined);
});

test('read-ahead: an error of the source is thrown after the chunks before it', async () => {
  async function* failing(): AsyncGenerator<Buffer> {
    yield Buffer.from('a');
    throw new Error('client went away');
  }
  const ra = new ReadAhead(failing());
  assert.deepEqual(await ra.next(), Buffer.from('a'));
  await assert.rejects(ra.next(), /client went away/);
});

test('read-ahead: an error of the hook (a size limit) stops the pull and is thrown', async () => {
  const s = source(100, 10);
  let bytes = 0;
  const ra = new ReadAhead(s.iter, (c) => {
    bytes += c.length;
    if (bytes > 25) throw new Error('too large');
  });
  const got: Buffer[] = [];
  await assert.rejects(async () => {
    for await (const c of ra) got.push(c);
  }, /too large/);
  assert.equal(got.length, 2);
  assert.ok(s.pulled() <= 4, `pulled ${s.pulled()} chunks after the failure`);
});

test('read-ahead: stop ends the pull; next() then reports the end', async () => {
  const s = source(1000, 10);
  const ra = new ReadAhead(s.iter, undefined, 50);
  await waitFor('five chunks pulled', () => s.pulled() >= 5, 5000);
  ra.stop();
  const at = s.pulled();
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(s.pulled() <= at + 1);
  // What was read before the stop is still handed out, then the end.
  let n = 0;
  while ((await ra.next()) !== undefined) n++;
  assert.ok(n <= 5);
});

test('read-ahead: with a gather, the body comes out in pooled pieces, the short last one at the end', async () => {
  const chunk = 300_000;
  const s = source(8, chunk); // 2.4 MB: two full pieces and a short one
  const pool = new PiecePool();
  const seen: number[] = [];
  const ra = new ReadAhead(
    s.iter,
    (c) => void seen.push(c.length),
    4 * UPLOAD_PIECE_BYTES,
    new WriteGather(pool),
  );
  const out: Buffer[] = [];
  for await (const piece of ra) {
    out.push(Buffer.from(piece));
    pool.give(piece);
  }
  assert.deepEqual(
    out.map((p) => p.length),
    [UPLOAD_PIECE_BYTES, UPLOAD_PIECE_BYTES, 8 * chunk - 2 * UPLOAD_PIECE_BYTES],
  );
  const expected = Buffer.concat(Array.from({ length: 8 }, (_, i) => Buffer.alloc(chunk, i)));
  assert.ok(Buffer.concat(out).equals(expected));
  assert.deepEqual(
    seen,
    Array.from({ length: 8 }, () => chunk),
    'the hook saw every chunk as it came',
  );
});
