// Proves the reuse rules of read streams opened with reuseBuffers: a chunk's buffer goes back only
// once the consumer asks for the next chunk (or stops), never while it may still be read, and a
// stream holds at most a window's worth of buffers plus two.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InboundStream } from '../../src/rpc/flow.js';
import { ReceiveBuffers } from '../../src/rpc/receive-buffers.js';

const MiB = 1024 * 1024;

test('a chunk is released when the next one is asked for, and when the iteration stops', async () => {
  const released: Buffer[] = [];
  const inbound = new InboundStream(
    4 * MiB,
    () => {},
    () => {},
    (chunk) => released.push(chunk),
  );
  const [a, b, c] = [Buffer.alloc(10, 1), Buffer.alloc(10, 2), Buffer.alloc(10, 3)];
  inbound.push(a);
  inbound.push(b);
  const it = inbound[Symbol.asyncIterator]();
  assert.equal((await it.next()).value, a);
  assert.deepEqual(released, [], 'the chunk just handed out is not released');
  assert.equal((await it.next()).value, b);
  assert.deepEqual(released, [a]);
  // A chunk handed to a consumer already waiting is released the same way.
  const waiting = it.next();
  assert.deepEqual(released, [a, b]);
  inbound.push(c);
  assert.equal((await waiting).value, c);
  await it.return?.();
  assert.deepEqual(released, [a, b, c]);
});

test('receive buffers are reused after release and bounded by the window', () => {
  const pool = new ReceiveBuffers(4 * MiB);
  // A short first piece, then full chunks: the buffers grow to the biggest body, and the small
  // one is not filled again.
  const piece = pool.take(100_000);
  assert.equal(piece?.length, 100_000);
  const first = pool.take(MiB);
  assert.ok(piece !== undefined && first !== undefined && first.length === MiB);
  pool.release(piece);
  // A shorter body gets a view of exactly its size.
  const short = pool.take(1000);
  assert.equal(short?.length, 1000);
  assert.notEqual(short?.buffer, piece.buffer, 'a buffer smaller than the chunks is not reused');
  // Releasing twice, or a chunk that is not ours, adds nothing to the free list.
  pool.release(first);
  pool.release(first);
  pool.release(Buffer.alloc(MiB));
  const again = pool.take(MiB);
  assert.equal(again?.buffer, first.buffer, 'a released buffer is filled again');
  const held = [again, short];
  let next: Buffer | undefined;
  while ((next = pool.take(MiB)) !== undefined) held.push(next);
  assert.equal(held.length, 4 + 2, 'a 4 MiB window of 1 MiB chunks: six buffers at most');
  assert.equal(new Set(held.map((b) => b?.buffer)).size, held.length, 'no buffer is lent twice');
  pool.release(held[3] as Buffer);
  assert.equal(pool.take(MiB)?.buffer, held[3]?.buffer, 'one released, one to take');
  assert.equal(pool.take(MiB), undefined);
});
