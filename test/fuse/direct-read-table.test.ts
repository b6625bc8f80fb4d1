// The reader thread's direct-read table without a mount: READ requests are fed to it as the
// kernel would send them, replies go to a temp file standing in for /dev/fuse, and every byte is
// checked against the block files (holes, block boundaries, end of file, a short block file).
// Also the ordering rules: a RELEASE ends a grant at once, a late grant for a released handle
// is ignored until the release is acknowledged, and a revocation sends reads back to the loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type { DirectReadPlan } from '../../src/fuse/binding.js';
import {
  DIRECT_STAT_BYTES,
  DIRECT_STAT_REQUESTS,
  DIRECT_STAT_SLOTS,
  DirectReadTable,
} from '../../src/fuse/kernel/direct-reads.js';
import type { DirectReadMessage } from '../../src/fuse/kernel/direct-reads.js';
import { IN_HEADER_BYTES, OUT_HEADER_BYTES, Op } from '../../src/fuse/kernel/protocol.js';
import { tempDir } from '../helpers/tmp.js';

const MAX_READ_BYTES = 64 * 1024;
let unique = 100n;

function request(opcode: number, body: Buffer): Buffer {
  const b = Buffer.alloc(IN_HEADER_BYTES + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(unique++, 8);
  b.writeBigUInt64LE(2n, 16);
  body.copy(b, IN_HEADER_BYTES);
  return b;
}

function readReq(fh: number, offset: number, size: number): Buffer {
  const body = Buffer.alloc(40);
  body.writeBigUInt64LE(BigInt(fh), 0);
  body.writeBigUInt64LE(BigInt(offset), 8);
  body.writeUInt32LE(size, 16);
  return request(Op.READ, body);
}

function releaseReq(fh: number): Buffer {
  const body = Buffer.alloc(24);
  body.writeBigUInt64LE(BigInt(fh), 0);
  return request(Op.RELEASE, body);
}

function setup(t: { after: (fn: () => void) => void }) {
  const dir = tempDir(t, 'strata-direct-');
  const replyPath = join(dir, 'replies');
  const dev = openSync(replyPath, 'w+');
  const channel = new MessageChannel();
  const stats = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT * DIRECT_STAT_SLOTS);
  const table = new DirectReadTable(dev, channel.port2, stats, MAX_READ_BYTES);
  t.after(() => {
    table.close();
    channel.port1.close();
    closeSync(dev);
  });
  let consumed = 0;
  /** Offers a request; returns the reply it wrote (undefined: left to the event loop). */
  const offer = (req: Buffer): { unique: bigint; error: number; body: Buffer } | undefined => {
    const answered = table.offer(req, req.length);
    const all = readFileSync(replyPath);
    const fresh = all.subarray(consumed);
    consumed = all.length;
    if (!answered) {
      assert.equal(fresh.length, 0, 'nothing written for a request left to the loop');
      return undefined;
    }
    assert.equal(fresh.readUInt32LE(0), fresh.length, 'one whole reply');
    assert.equal(fresh.readBigUInt64LE(8), req.readBigUInt64LE(8), 'the request unique');
    return {
      unique: fresh.readBigUInt64LE(8),
      error: fresh.readInt32LE(4),
      body: fresh.subarray(OUT_HEADER_BYTES),
    };
  };
  const post = (m: DirectReadMessage): void => channel.port1.postMessage(m);
  /** A block file holding `data` (plus `extra` trailing bytes, as after a truncate). */
  let n = 0;
  const blockFile = (data: Buffer, extra = 0): number => {
    const p = join(dir, `block-${n++}`);
    writeFileSync(p, Buffer.concat([data, randomBytes(extra)]));
    return openSync(p, 'r');
  };
  return { offer, post, blockFile, stats: new Float64Array(stats), table };
}

test('a granted handle is answered byte for byte: boundaries, holes, end of file', (t) => {
  const s = setup(t);
  // File of 300,000 bytes: block A [0, 100000), hole [100000, 150000), block B [150000, 300000).
  const a = randomBytes(100_000);
  const b = randomBytes(150_000);
  const file = Buffer.concat([a, Buffer.alloc(50_000), b]);
  const plan: DirectReadPlan = {
    sizeBytes: file.length,
    extents: [
      { offset: 0, length: a.length, fd: s.blockFile(a, 777) },
      { offset: 150_000, length: b.length, fd: s.blockFile(b) },
    ],
  };
  assert.equal(s.offer(readReq(7, 0, 4096)), undefined, 'no grant yet: the loop answers');
  s.post({ kind: 'grant', fh: 7, plan });
  const cases: [number, number][] = [
    [0, 4096],
    [100_000 - 10, 20], // end of block A into the hole
    [149_990, 20], // hole into block B
    [95_000, 60_000], // A, the whole hole, into B
    [0, MAX_READ_BYTES],
    [299_000, 4096], // across the end of the file: short
    [300_000, 4096], // at the end: empty
    [400_000, 10], // past the end: empty
  ];
  for (let i = 0; i < 200; i++) {
    const size = 1 + Math.floor(Math.random() * MAX_READ_BYTES);
    cases.push([Math.floor(Math.random() * (file.length + 1000)), size]);
  }
  let bytes = 0;
  for (const [offset, size] of cases) {
    const r = s.offer(readReq(7, offset, size));
    assert.ok(r, `read ${offset}+${size} answered directly`);
    assert.equal(r.error, 0);
    const want = file.subarray(Math.min(offset, file.length), Math.min(offset + size, file.length));
    assert.ok(r.body.equals(want), `bytes of ${offset}+${size}`);
    bytes += want.length;
  }
  assert.equal(s.stats[DIRECT_STAT_REQUESTS], cases.length);
  assert.equal(s.stats[DIRECT_STAT_BYTES], bytes);
  assert.equal(s.offer(readReq(8, 0, 10)), undefined, 'another handle: the loop');
  assert.equal(s.offer(readReq(7, 0, MAX_READ_BYTES + 1)), undefined, 'larger than max_read: the loop');
});

test('a block file shorter than its extent sends the read to the loop', (t) => {
  const s = setup(t);
  const a = randomBytes(10_000);
  s.post({
    kind: 'grant',
    fh: 3,
    plan: { sizeBytes: 20_000, extents: [{ offset: 0, length: 20_000, fd: s.blockFile(a) }] },
  });
  assert.ok(s.offer(readReq(3, 0, 5000))?.body.equals(a.subarray(0, 5000)));
  assert.equal(s.offer(readReq(3, 9000, 5000)), undefined);
});

test('RELEASE ends a grant at once; a late grant for the released number waits for the acknowledgement', (t) => {
  const s = setup(t);
  const one = randomBytes(8192);
  const two = randomBytes(8192);
  const fdOne = s.blockFile(one);
  s.post({
    kind: 'grant',
    fh: 5,
    plan: { sizeBytes: one.length, extents: [{ offset: 0, length: one.length, fd: fdOne }] },
  });
  assert.ok(s.offer(readReq(5, 0, 100))?.body.equals(one.subarray(0, 100)));
  assert.equal(s.offer(releaseReq(5)), undefined, 'RELEASE goes on to the loop');
  assert.throws(() => fstatSync(fdOne), /EBADF/, 'the grant descriptors were closed');
  assert.equal(s.offer(readReq(5, 0, 100)), undefined, 'no grant after RELEASE');
  // A grant computed for the old handle arrives after its RELEASE was read: ignored.
  const late = s.blockFile(one);
  s.post({
    kind: 'grant',
    fh: 5,
    plan: { sizeBytes: one.length, extents: [{ offset: 0, length: one.length, fd: late }] },
  });
  assert.equal(s.offer(readReq(5, 0, 100)), undefined, 'a late grant is not applied');
  assert.throws(() => fstatSync(late), /EBADF/, 'and its descriptors are closed');
  // The loop processed the RELEASE; number 5 now names a new handle of another file.
  s.post({ kind: 'released', fh: 5 });
  s.post({
    kind: 'grant',
    fh: 5,
    plan: { sizeBytes: two.length, extents: [{ offset: 0, length: two.length, fd: s.blockFile(two) }] },
  });
  assert.ok(
    s.offer(readReq(5, 0, 100))?.body.equals(two.subarray(0, 100)),
    'the new handle reads its own file',
  );
});

test('a revocation sends the handle back to the loop and closes its descriptors', (t) => {
  const s = setup(t);
  const one = randomBytes(4096);
  const fd = s.blockFile(one);
  s.post({
    kind: 'grant',
    fh: 9,
    plan: { sizeBytes: one.length, extents: [{ offset: 0, length: one.length, fd }] },
  });
  assert.ok(s.offer(readReq(9, 0, 10)));
  s.post({ kind: 'revoke', fh: 9 });
  assert.equal(s.offer(readReq(9, 0, 10)), undefined);
  assert.throws(() => fstatSync(fd), /EBADF/);
  assert.equal(s.table.size, 0);
});
