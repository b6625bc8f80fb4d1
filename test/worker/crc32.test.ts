// The chunk-checksum CRC32 routine gives zlib's value for every length and alignment a block read
// produces (whole chunks, short tails, views at odd offsets), whichever engine was picked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { crc32, crc32Engine } from '../../src/protocol/crc32.js';

test('crc32 matches zlib on chunks, tails and unaligned views', () => {
  assert.ok(crc32Engine === 'native' || crc32Engine === 'zlib');
  // The standard check value of CRC-32/ISO-HDLC.
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  const data = Buffer.alloc(3 * 65_536 + 17);
  let x = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    data[i] = x & 0xff;
  }
  for (const [start, end] of [
    [0, 65_536],
    [65_536, 131_072],
    [131_072, data.length],
    [1, 65_537],
    [7, 8],
    [5, 5],
    [0, data.length],
  ] as const) {
    const view = data.subarray(start, end);
    assert.equal(crc32(view), zlibCrc32(view) >>> 0, `bytes ${start}..${end}`);
  }
  // Continued over pieces (a chunk arriving in several network reads) it gives the whole's value.
  for (const cut of [1, 4096, 40_003, 65_535]) {
    const whole = data.subarray(0, 65_536);
    assert.equal(
      crc32(whole.subarray(cut), crc32(whole.subarray(0, cut))),
      zlibCrc32(whole) >>> 0,
      `cut ${cut}`,
    );
  }
  // A flipped bit changes the value (what verification relies on).
  const chunk = Buffer.from(data.subarray(0, 65_536));
  const before = crc32(chunk);
  chunk[40_000] = (chunk[40_000] ?? 0) ^ 0x10;
  assert.notEqual(crc32(chunk), before);
});
