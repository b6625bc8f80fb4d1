// The hash threads give the same digests as hashing inline, for many uploads at once, with
// back-pressure (more than the in-flight limit handed over) and dropped sessions in between.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { Crc64Nvme, crc32c } from '../../src/gateway/s3/checksums.js';
import { HASH_INFLIGHT_BYTES, HASH_THREAD_MIN_BYTES, HashPool } from '../../src/gateway/s3/hash-pool.js';

/** Bit-at-a-time CRC32C (reflected 0x82F63B78): slow and obviously right. */
function crc32cReference(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

/** Bit-at-a-time CRC64/NVME (reflected 0x9A6C9329AC4BC9B5) on BigInt, as hex. */
function crc64nvmeReference(data: Uint8Array): string {
  const poly = 0x9a6c9329ac4bc9b5n;
  let c = 0xffffffffffffffffn;
  for (const byte of data) {
    c ^= BigInt(byte);
    for (let k = 0; k < 8; k++) c = c & 1n ? poly ^ (c >> 1n) : c >> 1n;
  }
  return (c ^ 0xffffffffffffffffn).toString(16).padStart(16, '0');
}

test('checksums: the published check values, pieces continued, and the references', async () => {
  const nine = Buffer.from('123456789');
  assert.equal(crc32c(nine, 0), 0xe3069283);
  assert.equal(crc32c(nine.subarray(4), crc32c(nine.subarray(0, 4), 0)), 0xe3069283);
  const h = new Crc64Nvme();
  h.update(nine.subarray(0, 5));
  h.update(nine.subarray(5));
  assert.equal((await h.digest()).toString('hex'), 'ae8b14860a799888');
  assert.equal(crc64nvmeReference(nine), 'ae8b14860a799888');
  assert.equal(crc32cReference(nine), 0xe3069283);
  const odd = randomBytes(10_007);
  assert.equal(crc32c(odd, 0), crc32cReference(odd));
  const h2 = new Crc64Nvme();
  h2.update(odd);
  assert.equal((await h2.digest()).toString('hex'), crc64nvmeReference(odd));
});

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
        { sha256: i % 2 === 0, sha1: i === 3, crc32: i === 1, crc32c: i === 0, crc64nvme: i === 2 },
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
    if (i === 0) assert.equal(d.crc32c, crc32cReference(body));
    if (i === 2) assert.equal(d.crc64nvme?.toString('hex'), crc64nvmeReference(body));
  });
  // An empty body is a session with no chunks.
  const empty = await pool
    .session({ sha256: false, sha1: false, crc32: false, crc32c: false, crc64nvme: false })
    .digest();
  assert.equal(empty.md5.toString('hex'), 'd41d8cd98f00b204e9800998ecf8427e');
});
