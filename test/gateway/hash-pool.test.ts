// The hash threads give the same digests as hashing inline, for many uploads at once, with
// back-pressure (more than the in-flight limit handed over) and dropped sessions in between.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { HASH_INFLIGHT_BYTES, HASH_THREAD_MIN_BYTES, HashPool } from '../../src/gateway/s3/hash-pool.js';

test('hash pool: digests match inline hashing across concurrent sessions', async (t) => {
  const pool = new HashPool(2);
  t.after(() => pool.close());
  const bodies = Array.from({ length: 6 }, (_, i) =>
    // Chunks that are views into a larger buffer, as sockets hand them out.
    randomBytes(i === 0 ? HASH_INFLIGHT_BYTES * 3 : 100_000 * (i + 1)),
  );
  const results = await Promise.all(
    bodies.map(async (body, i) => {
      // Sessions 0-3 on the threads (size unknown or large), 4 inline (known to be small).
      const s = pool.session(
        { sha256: i % 2 === 0, sha1: i === 3, crc32: i === 1 },
        i === 4 ? body.length : i === 2 ? HASH_THREAD_MIN_BYTES : undefined,
      );
      if (i === 5) {
        await s.update(body.subarray(0, 10));
        s.drop();
        return undefined;
      }
      for (let off = 0; off < body.length; off += 65_536) await s.update(body.subarray(off, off + 65_536));
      return s.digest();
    }),
  );
  results.forEach((d, i) => {
    if (i === 5) return assert.equal(d, undefined);
    const body = bodies[i] as Buffer;
    assert.ok(d !== undefined);
    assert.deepEqual(d.md5, createHash('md5').update(body).digest(), `md5 ${i}`);
    if (i % 2 === 0) assert.deepEqual(d.sha256, createHash('sha256').update(body).digest());
    else assert.equal(d.sha256, undefined);
    if (i === 3) assert.deepEqual(d.sha1, createHash('sha1').update(body).digest());
    if (i === 1) assert.equal(d.crc32, crc32(body) >>> 0);
  });
  // An empty body is a session with no chunks.
  const empty = await pool.session({ sha256: false, sha1: false, crc32: false }).digest();
  assert.equal(empty.md5.toString('hex'), 'd41d8cd98f00b204e9800998ecf8427e');
});
