// Gathering upload chunks into pooled pieces: the pieces put back together are the body byte for
// byte (chunks of odd sizes, across piece boundaries), only the last is short, and buffers given
// back are handed out again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PiecePool, UPLOAD_PIECE_BYTES, WriteGather } from '../../src/gateway/s3/write-gather.js';

test('write gather: full pieces in order, a short last one, the same bytes', () => {
  const pool = new PiecePool();
  const body = randomBytes(UPLOAD_PIECE_BYTES * 3 + 12_345);
  const gather = new WriteGather(pool);
  const out: Buffer[] = [];
  // Chunk sizes that do not divide the piece size, as sockets and aws-chunked frames hand out.
  for (let off = 0, i = 0; off < body.length; i++) {
    const n = [65_536, 1, 100_003, 7][i % 4] as number;
    for (const piece of gather.add(body.subarray(off, off + n))) {
      assert.equal(piece.length, UPLOAD_PIECE_BYTES);
      // A copy: the piece goes back to the pool (and is overwritten) right away, as after a write.
      out.push(Buffer.from(piece));
      pool.give(piece);
    }
    off += n;
  }
  const last = gather.end();
  assert.ok(last !== undefined);
  assert.equal(last.length, 12_345);
  out.push(Buffer.from(last));
  pool.give(last);
  assert.equal(out.length, 4);
  assert.ok(Buffer.concat(out).equals(body));
  assert.equal(gather.end(), undefined);
  // Every buffer came back, and only two were ever made: the full piece being written and the
  // next one being filled by the rest of the same chunk.
  assert.equal(pool.freeCount, 2);
});

test('write gather: an exact multiple of the piece size has no short last piece', () => {
  const pool = new PiecePool();
  const gather = new WriteGather(pool);
  const pieces = gather.add(randomBytes(UPLOAD_PIECE_BYTES * 2));
  assert.equal(pieces.length, 2);
  assert.equal(gather.end(), undefined);
  assert.equal(new WriteGather(pool).end(), undefined, 'an empty body has no piece');
  // A buffer of another size is never pooled (it would be handed out as a full piece).
  pool.give(Buffer.alloc(10));
  assert.equal(pool.freeCount, 0);
});
