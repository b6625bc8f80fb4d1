// The FUSE layer's pure pieces without a mount: stat and statfs conversion, the libfuse option
// string, errno mapping, and the open-file table (handle numbers, sharing, renames).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import type { FileSystem } from '../../src/client/index.js';
import { FsError, StrataError, TimeoutError } from '../../src/common/errors.js';
import { DIR_SIZE_BYTES, toAttr, toStatfs } from '../../src/fuse/attrs.js';
import type { MountOptions } from '../../src/fuse/binding.js';
import { errnoOf } from '../../src/fuse/errno.js';
import { nativeOptionString } from '../../src/fuse/native-engine.js';
import { OpenFiles } from '../../src/fuse/open-files.js';
import type { FileStatus } from '../../src/protocol/types.js';

const GiB = 1024 ** 3;

function status(over: Partial<FileStatus>): FileStatus {
  return {
    id: 42,
    path: '/x',
    name: 'x',
    type: 'file',
    size: 1000,
    mode: 0o644,
    uid: 7,
    gid: 8,
    nlink: 1,
    atimeMs: 1,
    mtimeMs: 2,
    ctimeMs: 3,
    blockSize: 4 * 1024 * 1024,
    replicas: 1,
    storageType: 'DISK',
    ttlMs: 0,
    ttlAction: 'none',
    state: 'complete',
    ...over,
  };
}

test('stat fields: type bits, sizes, blocks, inode', () => {
  const f = toAttr(status({}), 131_072);
  assert.equal(f.mode, constants.S_IFREG | 0o644);
  assert.deepEqual([f.ino, f.uid, f.gid, f.size, f.blocks, f.blksize], [42, 7, 8, 1000, 2, 131_072]);
  assert.deepEqual([f.atimeMs, f.mtimeMs, f.ctimeMs], [1, 2, 3]);
  const d = toAttr(status({ type: 'dir', size: 0, mode: 0o1777, nlink: 3 }), 4096);
  assert.equal(d.mode, constants.S_IFDIR | 0o1777);
  assert.equal(d.size, DIR_SIZE_BYTES);
  assert.equal(d.nlink, 3);
  const l = toAttr(status({ type: 'symlink', size: 5, target: 'hello' }), 4096);
  assert.equal(l.mode & constants.S_IFMT, constants.S_IFLNK);
  assert.equal(toAttr(status({ nlink: 0 }), 4096).nlink, 1);
});

test('statfs: the cluster capacity in fragments that fit 32 bits', () => {
  const s = toStatfs({
    capacityBytes: 100 * GiB,
    usedBytes: 10 * GiB,
    availableBytes: 80 * GiB,
    files: 5,
    dirs: 2,
  });
  assert.equal(s.frsize, 4096);
  assert.equal(s.blocks * s.frsize, 100 * GiB);
  assert.equal(s.bavail * s.frsize, 80 * GiB);
  assert.equal(s.bfree * s.frsize, 90 * GiB);
  assert.equal(s.files - s.ffree, 7);
  const big = toStatfs({
    capacityBytes: 64 * 1024 * 1024 * GiB,
    usedBytes: 0,
    availableBytes: 64 * 1024 * 1024 * GiB,
    files: 0,
    dirs: 1,
  });
  assert.ok(big.blocks <= 0xffff_ffff && big.frsize > 4096);
  assert.equal(big.blocks * big.frsize, 64 * 1024 * 1024 * GiB);
  const empty = toStatfs({ capacityBytes: 0, usedBytes: 0, availableBytes: 0, files: 0, dirs: 1 });
  assert.deepEqual([empty.blocks, empty.bfree, empty.bavail], [0, 0, 0]);
});

test('libfuse option string', () => {
  const opts: MountOptions = {
    mountPath: '/m',
    fsName: 'strata',
    subtype: 'strata',
    entryTimeoutMs: 1000,
    attrTimeoutMs: 500,
    maxWriteBytes: 1024 * 1024,
    extraOptions: ['allow_other', 'ro'],
    debug: false,
    requestTimeoutMs: 1000,
  };
  assert.equal(
    nativeOptionString(opts),
    '-ofsname=strata,subtype=strata,big_writes,max_write=1048576,entry_timeout=1,attr_timeout=0.5,use_ino,auto_cache,allow_other,ro',
  );
  assert.match(nativeOptionString({ ...opts, debug: true }), /,debug$/);
  assert.throws(() => nativeOptionString({ ...opts, extraOptions: ['a,b'] }), /bad FUSE option "a,b"/);
});

test('errno of what operations throw', () => {
  assert.equal(errnoOf(new FsError('ENOENT', 'x')), 2);
  assert.equal(errnoOf(new FsError('ENOTEMPTY', 'x')), 39);
  assert.equal(errnoOf(new StrataError('ENOSPC', 'from the wire')), 28);
  assert.equal(errnoOf(new StrataError('STRATA_UNAVAILABLE', 'no master')), 5);
  assert.equal(errnoOf(new TimeoutError('call', 10)), 110);
  assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'EACCES' })), 13);
  assert.equal(errnoOf(new Error('bug')), 5);
  assert.equal(errnoOf(undefined), 5);
});

test('open-file table: shared files, unique handles, renames, last close', () => {
  const table = new OpenFiles({} as FileSystem);
  const a = table.open('/d/sub/f', false, false);
  const b = table.open('/d/sub/f', true, true);
  const c = table.open('/d/other', true, false);
  assert.equal(new Set([a, b, c]).size, 3);
  assert.ok(a > 0 && b > 0 && c > 0);
  assert.equal(table.handle(a).file, table.handle(b).file, 'one OpenFile per path');
  assert.equal(table.handle(b).append, true);
  assert.equal(table.handle(a).writable, false);

  table.renamed('/d/sub', '/e');
  assert.equal(table.file('/d/sub/f'), undefined);
  assert.equal(table.file('/e/f'), table.handle(a).file);
  assert.equal(table.handle(a).file.path, '/e/f');
  assert.equal(table.file('/d/other')?.path, '/d/other', 'a sibling with a common prefix is not moved');
  table.renamed('/d/oth', '/z');
  assert.equal(table.file('/d/other')?.path, '/d/other');

  assert.equal(table.close(a)?.last, false);
  assert.equal(table.close(b)?.last, true);
  assert.equal(table.file('/e/f'), undefined);
  assert.equal(table.close(b), undefined, 'closing twice is harmless');
  assert.throws(
    () => table.handle(a),
    (err: FsError) => err.code === 'EBADF',
  );
  assert.equal(table.size, 1);
});
