// The kernel engine's protocol layer without a mount: raw requests (as /dev/fuse delivers them)
// go into a FuseSession over recording operations, and the reply bytes are decoded and checked:
// INIT negotiation, ENOSYS for unknown opcodes, garbage that must not crash, xattr size probes,
// readdir paging, setattr times (mtime kept apart from atime), renameat2 flags, the caller's
// uid/gid reaching create, the node table following renames and forgets, readdirplus entries
// counted as lookups, INTERRUPT (EINTR for a pending read, a pending mkdir left to finish), and
// direct-read grants (asked after a read, once; refused ones again later; never after RELEASE).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { FsError } from '../../src/common/errors.js';
import type { DirectReadPlan, FuseAttr, FuseContext, FuseOperations } from '../../src/fuse/binding.js';
import { kernelMountOptions } from '../../src/fuse/kernel/mount.js';
import { Fattr, IN_HEADER_BYTES, InitFlag, Op, OUT_HEADER_BYTES } from '../../src/fuse/kernel/protocol.js';
import { FuseSession } from '../../src/fuse/kernel/session.js';
import type { DirectReadLink } from '../../src/fuse/kernel/session.js';
import { waitFor } from '../helpers/wait.js';
import { NodeTable } from '../../src/fuse/kernel/nodes.js';

const E = constants.errno;
const MiB = 1024 * 1024;

function attr(ino: number, mode = 0o100644, size = 0): FuseAttr {
  return {
    ino,
    mode,
    nlink: 1,
    uid: 0,
    gid: 0,
    size,
    blocks: 0,
    blksize: 4096,
    atimeMs: 1000,
    mtimeMs: 2000,
    ctimeMs: 3000,
  };
}

/** Operations over a tiny in-memory tree that record what they were asked. */
function fakeOps() {
  const calls: unknown[][] = [];
  const entries = new Map<string, FuseAttr>([
    ['/', attr(1, 0o40755)],
    ['/dir', attr(2, 0o40755)],
    ['/dir/file', attr(3, 0o100644, 5)],
  ]);
  const xattrs = new Map<string, Buffer>([['user.color', Buffer.from('blue')]]);
  const get = (path: string): FuseAttr => {
    const a = entries.get(path);
    if (a === undefined) throw new FsError('ENOENT', path);
    return a;
  };
  const ops: FuseOperations = {
    getattr: async (path) => get(path),
    fgetattr: async (path) => get(path),
    readdir: async (path) => {
      calls.push(['readdir', path]);
      return ['.', '..', ...Array.from({ length: 50 }, (_, i) => `entry-${i}`)];
    },
    // Fifty entries: even ones files (ino 100 + i), odd ones directories.
    readdirPlus: async (path) => {
      calls.push(['readdirPlus', path]);
      return [
        { name: '.' },
        { name: '..' },
        ...Array.from({ length: 50 }, (_, i) => ({
          name: `entry-${i}`,
          attr: attr(100 + i, i % 2 === 0 ? 0o100644 : 0o40755, i),
        })),
      ];
    },
    open: async () => 7,
    create: async (path: string, mode: number, ctx: FuseContext, flags?: number) => {
      calls.push(['create', path, mode, ctx, flags]);
      entries.set(path, { ...attr(10, mode), uid: ctx.uid, gid: ctx.gid });
      return 9;
    },
    read: async (_p, _fh, buf, length) => buf.write('hello'.slice(0, length)),
    write: async (_p, _fh, _buf, length) => length,
    flush: async () => undefined,
    fsync: async () => undefined,
    release: async (path, fh) => void calls.push(['release', path, fh]),
    truncate: async (path, size) => void calls.push(['truncate', path, size]),
    ftruncate: async (path, fh, size) => void calls.push(['ftruncate', path, fh, size]),
    unlink: async (path) => {
      entries.delete(path);
      return undefined;
    },
    mkdir: async (path, mode, ctx) => {
      calls.push(['mkdir', path, mode, ctx]);
      entries.set(path, attr(11, 0o40000 | mode));
      return undefined;
    },
    rmdir: async (path) => void entries.delete(path),
    rename: async (src, dst, noReplace) => {
      calls.push(['rename', src, dst, noReplace]);
      entries.set(dst, get(src));
      entries.delete(src);
      return undefined;
    },
    symlink: async (target, path, ctx) => {
      calls.push(['symlink', target, path, ctx]);
      entries.set(path, attr(12, 0o120777));
      return undefined;
    },
    readlink: async () => 'target',
    link: async () => undefined,
    chmod: async (path, mode) => void calls.push(['chmod', path, mode]),
    chown: async (path, uid, gid) => void calls.push(['chown', path, uid, gid]),
    utimens: async (path, a, m) => void calls.push(['utimens', path, a, m]),
    statfs: async () => ({
      bsize: 4096,
      frsize: 4096,
      blocks: 10,
      bfree: 5,
      bavail: 5,
      files: 100,
      ffree: 50,
      favail: 50,
      namemax: 255,
    }),
    setxattr: async () => undefined,
    getxattr: async (_p, name) => {
      const v = xattrs.get(name);
      if (v === undefined) throw new FsError('ENODATA', name);
      return v;
    },
    listxattr: async () => [...xattrs.keys(), 'user.other'],
    removexattr: async () => undefined,
  };
  return { ops, calls, entries };
}

let nextUnique = 1n;

function request(opcode: number, nodeid: bigint, body: Buffer, who = { uid: 0, gid: 0, pid: 42 }): Buffer {
  const h = Buffer.alloc(IN_HEADER_BYTES);
  h.writeUInt32LE(IN_HEADER_BYTES + body.length, 0);
  h.writeUInt32LE(opcode, 4);
  h.writeBigUInt64LE(nextUnique++, 8);
  h.writeBigUInt64LE(nodeid, 16);
  h.writeUInt32LE(who.uid, 24);
  h.writeUInt32LE(who.gid, 28);
  h.writeUInt32LE(who.pid, 32);
  return Buffer.concat([h, body]);
}

const cstr = (...parts: string[]): Buffer => Buffer.from(parts.map((p) => `${p}\0`).join(''));
const u32s = (...v: number[]): Buffer => {
  const b = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => b.writeUInt32LE(x, i * 4));
  return b;
};
const u64 = (v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};

interface Reply {
  error: number;
  unique: bigint;
  body: Buffer;
}

function harness(opts: { requestTimeoutMs?: number; direct?: DirectReadLink } = {}) {
  const replies: Reply[] = [];
  const fake = fakeOps();
  const session = new FuseSession(
    fake.ops,
    {
      write(b) {
        assert.equal(b.readUInt32LE(0), b.length, 'the header length is the reply length');
        replies.push({
          error: b.readInt32LE(4),
          unique: b.readBigUInt64LE(8),
          body: b.subarray(OUT_HEADER_BYTES),
        });
      },
    },
    {
      entryTimeoutMs: 1500,
      attrTimeoutMs: 1000,
      maxWriteBytes: MiB,
      requestTimeoutMs: opts.requestTimeoutMs ?? 60_000,
      ...(opts.direct === undefined ? {} : { direct: opts.direct }),
    },
  );
  /** Sends one request and waits for its reply (or for nothing when none is due). */
  const send = async (req: Buffer): Promise<Reply | undefined> => {
    const unique = req.length >= 16 ? req.readBigUInt64LE(8) : -1n;
    const before = replies.length;
    session.handle(req);
    for (let i = 0; i < 50; i++) {
      const r = replies.slice(before).find((x) => x.unique === unique);
      if (r !== undefined) return r;
      await new Promise((res) => setImmediate(res));
    }
    return undefined;
  };
  const init = async (): Promise<Reply> => {
    const flags = InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.MAX_PAGES | (1 << 16) | (1 << 13);
    const r = await send(
      request(Op.INIT, 0n, u32s(7, 41, 128 * 1024, flags, 0, ...Array<number>(11).fill(0))),
    );
    assert.ok(r);
    return r;
  };
  return { session, replies, send, init, ...fake };
}

test('INIT: version, flags we asked for (readdirplus, no writeback cache) and 1 MiB requests', async (t) => {
  const h = harness();
  t.after(() => h.session.close());
  const r = await h.init();
  assert.equal(r.error, 0);
  assert.equal(r.body.length, 64);
  assert.equal(r.body.readUInt32LE(0), 7);
  assert.equal(r.body.readUInt32LE(4), 38, 'the minor version we implement');
  const flags = r.body.readUInt32LE(12);
  assert.ok((flags & InitFlag.MAX_PAGES) !== 0 && (flags & InitFlag.BIG_WRITES) !== 0);
  assert.equal(flags & (1 << 16), 0, 'no writeback cache');
  assert.notEqual(flags & InitFlag.DO_READDIRPLUS, 0, 'readdirplus');
  assert.equal(r.body.readUInt32LE(20), MiB, 'max_write');
  assert.equal(r.body.readUInt16LE(28), 256, 'max_pages');
});

test('unknown opcodes answer ENOSYS; garbage is answered or dropped, never a crash', async (t) => {
  const h = harness();
  t.after(() => h.session.close());
  // Before INIT nothing is served.
  assert.equal((await h.send(request(Op.GETATTR, 1n, Buffer.alloc(16))))?.error, -E.EIO);
  await h.init();
  for (const opcode of [Op.INIT + 1000, 31, 37, 39, 43, 46, 47, 9999, 0xffff_ffff]) {
    const r = await h.send(request(opcode, 1n, Buffer.alloc(64)));
    assert.equal(r?.error, -E.ENOSYS, `opcode ${opcode}`);
  }
  // A header whose length disagrees with what was read.
  const bad = request(Op.GETATTR, 1n, Buffer.alloc(16));
  bad.writeUInt32LE(9999, 0);
  assert.equal((await h.send(bad))?.error, -E.EIO);
  // Too short for a header: answered EIO when `unique` is readable, dropped otherwise.
  assert.equal((await h.send(request(Op.GETATTR, 1n, Buffer.alloc(0)).subarray(0, 20)))?.error, -E.EIO);
  assert.equal(await h.send(Buffer.alloc(3)), undefined);
  // A name without its NUL, a body shorter than its struct.
  assert.equal((await h.send(request(Op.LOOKUP, 1n, Buffer.from('dir'))))?.error, -E.EINVAL);
  assert.equal((await h.send(request(Op.READ, 1n, Buffer.alloc(4))))?.error, -E.EINVAL);
  assert.equal(
    (await h.send(request(Op.WRITE, 1n, Buffer.concat([u64(7n), u64(0n), u32s(100, 0), Buffer.alloc(16)]))))
      ?.error,
    -E.EINVAL,
  );
  assert.ok(h.session.stats.malformed >= 5);
  // Still serving.
  const ok = await h.send(request(Op.LOOKUP, 1n, cstr('dir')));
  assert.equal(ok?.error, 0);
});

test('lookup, getattr, setattr times and ids, rename2 flags, forget', async (t) => {
  const h = harness();
  t.after(() => h.session.close());
  await h.init();
  const dir = await h.send(request(Op.LOOKUP, 1n, cstr('dir')));
  assert.equal(dir?.error, 0);
  const dirId = dir.body.readBigUInt64LE(0);
  assert.equal(dir.body.readBigUInt64LE(16), 1n, 'entry_valid seconds');
  assert.equal(dir.body.readUInt32LE(32), 500_000_000, 'entry_valid nanoseconds');
  assert.equal(dir.body.readBigUInt64LE(40), 2n, 'the inode number is the namespace id');
  const file = await h.send(request(Op.LOOKUP, dirId, cstr('file')));
  const fileId = file!.body.readBigUInt64LE(0);
  assert.equal((await h.send(request(Op.LOOKUP, dirId, cstr('nope'))))?.error, -E.ENOENT);

  // setattr: mtime alone (atime omitted), then both "now", then mode/uid/size.
  const setattr = (valid: number, fill: (b: Buffer) => void): Buffer => {
    const b = Buffer.alloc(88);
    b.writeUInt32LE(valid, 0);
    fill(b);
    return request(Op.SETATTR, fileId, b);
  };
  const r = await h.send(
    setattr(Fattr.MTIME, (b) => {
      b.writeBigUInt64LE(1_580_702_706n, 40);
      b.writeUInt32LE(123_000_000, 60);
      b.writeBigUInt64LE(999n, 32); // atime, not valid: must be ignored
    }),
  );
  assert.equal(r?.error, 0);
  assert.deepEqual(h.calls.at(-1), ['utimens', '/dir/file', undefined, 1_580_702_706_123]);
  const before = Date.now();
  await h.send(setattr(Fattr.ATIME | Fattr.MTIME | Fattr.ATIME_NOW | Fattr.MTIME_NOW, () => undefined));
  const [, , a, m] = h.calls.at(-1) as [string, string, number, number];
  assert.ok(a >= before && m === a);
  await h.send(
    setattr(Fattr.MODE | Fattr.UID | Fattr.SIZE | Fattr.FH, (b) => {
      b.writeBigUInt64LE(7n, 8);
      b.writeBigUInt64LE(4096n, 16);
      b.writeUInt32LE(0o600, 68);
      b.writeUInt32LE(1000, 76);
    }),
  );
  assert.deepEqual(h.calls.slice(-3), [
    ['ftruncate', '/dir/file', 7, 4096],
    ['chmod', '/dir/file', 0o600],
    ['chown', '/dir/file', 1000, 0xffff_ffff],
  ]);

  // rename2: EXCHANGE is refused, NOREPLACE is passed on; the node follows the rename.
  const rename2 = (flags: number): Buffer =>
    request(Op.RENAME2, dirId, Buffer.concat([u64(1n), u32s(flags, 0), cstr('file', 'moved')]));
  assert.equal((await h.send(rename2(2)))?.error, -E.EINVAL);
  assert.equal((await h.send(rename2(1)))?.error, 0);
  assert.deepEqual(h.calls.at(-1), ['rename', '/dir/file', '/moved', true]);
  assert.equal(h.session.nodes.path(fileId), '/moved');
  const g = await h.send(request(Op.GETATTR, fileId, Buffer.alloc(16)));
  assert.equal(g?.error, 0);
  assert.equal(g.body.readBigUInt64LE(16), 3n);

  // forget drops the node; its id is then unknown (ENOENT, not a crash).
  const nodes = h.session.nodes.size;
  h.session.handle(request(Op.FORGET, fileId, u64(1n)));
  assert.equal(h.session.nodes.size, nodes - 1);
  assert.equal((await h.send(request(Op.GETATTR, fileId, Buffer.alloc(16))))?.error, -E.ENOENT);
});

test('create and mkdir carry the caller; mknod makes regular files only', async (t) => {
  const h = harness();
  t.after(() => h.session.close());
  await h.init();
  const who = { uid: 1000, gid: 1001, pid: 77 };
  const c = await h.send(
    request(Op.CREATE, 1n, Buffer.concat([u32s(0o102101, 0o100640, 0o022, 0), cstr('new.txt')]), who),
  );
  assert.equal(c?.error, 0);
  assert.equal(c.body.length, 128 + 16, 'entry_out + open_out');
  assert.equal(c.body.readBigUInt64LE(128), 9n, 'the handle create returned');
  assert.equal(c.body.readUInt32LE(40 + 68), 1000, 'owned by the caller');
  assert.deepEqual(h.calls.at(-1), ['create', '/new.txt', 0o100640, who, 0o102101]);
  await h.send(request(Op.MKDIR, 1n, Buffer.concat([u32s(0o755, 0o022), cstr('sub')]), who));
  assert.deepEqual(h.calls.at(-1), ['mkdir', '/sub', 0o755, who]);
  await h.send(request(Op.SYMLINK, 1n, cstr('ln', '/somewhere'), who));
  assert.deepEqual(h.calls.at(-1), ['symlink', '/somewhere', '/ln', who]);
  const fifo = await h.send(request(Op.MKNOD, 1n, Buffer.concat([u32s(0o010644, 0, 0, 0), cstr('fifo')])));
  assert.equal(fifo?.error, -E.EPERM);
  const reg = await h.send(
    request(Op.MKNOD, 1n, Buffer.concat([u32s(0o100644, 0, 0, 0), cstr('plain')]), who),
  );
  assert.equal(reg?.error, 0);
  assert.deepEqual(h.calls.slice(-2), [
    ['create', '/plain', 0o100644, who, undefined],
    ['release', '/plain', 9],
  ]);
});

test('getxattr/listxattr size probes and ERANGE; readdir pages with 8-byte aligned entries', async (t) => {
  const h = harness();
  t.after(() => h.session.close());
  await h.init();
  const getx = (size: number, name: string): Buffer =>
    request(Op.GETXATTR, 1n, Buffer.concat([u32s(size, 0), cstr(name)]));
  const probe = await h.send(getx(0, 'user.color'));
  assert.equal(probe!.body.readUInt32LE(0), 4);
  assert.equal((await h.send(getx(2, 'user.color')))?.error, -E.ERANGE);
  assert.equal((await h.send(getx(64, 'user.color')))?.body.toString(), 'blue');
  assert.equal((await h.send(getx(64, 'user.none')))?.error, -E.ENODATA);
  const list = await h.send(request(Op.LISTXATTR, 1n, u32s(0, 0)));
  assert.equal(list!.body.readUInt32LE(0), 'user.color\0user.other\0'.length);
  assert.equal(
    (await h.send(request(Op.LISTXATTR, 1n, u32s(64, 0))))?.body.toString(),
    'user.color\0user.other\0',
  );
  assert.equal((await h.send(request(Op.LISTXATTR, 1n, u32s(5, 0))))?.error, -E.ERANGE);

  const open = await h.send(request(Op.OPENDIR, 1n, u32s(0, 0)));
  const fh = open!.body.readBigUInt64LE(0);
  const names: string[] = [];
  let offset = 0n;
  for (let pages = 0; pages < 100; pages++) {
    const r = await h.send(
      request(Op.READDIR, 1n, Buffer.concat([u64(fh), u64(offset), u32s(256, 0), u64(0n), u32s(0, 0)])),
    );
    assert.equal(r?.error, 0);
    const body = r.body;
    assert.ok(body.length <= 256);
    if (body.length === 0) break;
    for (let o = 0; o < body.length;) {
      const len = body.readUInt32LE(o + 16);
      names.push(body.toString('utf8', o + 24, o + 24 + len));
      if (names.at(-1) === 'entry-3') {
        assert.equal(body.readBigUInt64LE(o), 103n, 'd_ino from the listing');
        assert.equal(body.readUInt32LE(o + 20), 4, 'DT_DIR');
      }
      if (names.at(-1) === 'entry-4') assert.equal(body.readUInt32LE(o + 20), 8, 'DT_REG');
      offset = body.readBigUInt64LE(o + 8);
      const size = (24 + len + 7) & ~7;
      assert.equal(size % 8, 0);
      o += size;
    }
  }
  assert.equal(names.length, 52);
  assert.deepEqual(names.slice(0, 3), ['.', '..', 'entry-0']);
  assert.equal(names.at(-1), 'entry-49');
  assert.equal(h.calls.filter((c) => c[0] === 'readdirPlus').length, 1, 'one listing per opendir');
  await h.send(request(Op.RELEASEDIR, 1n, Buffer.concat([u64(fh), u32s(0, 0), u64(0n)])));
  const gone = await h.send(
    request(Op.READDIR, 1n, Buffer.concat([u64(fh), u64(0n), u32s(256, 0), u64(0n), u32s(0, 0)])),
  );
  assert.equal(gone?.error, -E.EBADF);
});

test('a request that never finishes is answered ETIMEDOUT; its late answer is dropped', async (t) => {
  const h = harness({ requestTimeoutMs: 50 });
  t.after(() => h.session.close());
  await h.init();
  let release: () => void = () => undefined;
  h.ops.getattr = () => new Promise<FuseAttr>((res) => (release = () => res(attr(1, 0o40755))));
  const req = request(Op.GETATTR, 1n, Buffer.alloc(16));
  const unique = req.readBigUInt64LE(8);
  h.session.handle(req);
  const deadline = Date.now() + 10_000;
  while (!h.replies.some((r) => r.unique === unique) && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 20));
  assert.equal(h.replies.find((r) => r.unique === unique)?.error, -E.ETIMEDOUT);
  release();
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(h.replies.filter((r) => r.unique === unique).length, 1);
});

test('node table: paths through parents, renames of directories, unlinked names', () => {
  const n = new NodeTable();
  const a = n.remember(1n, 'a');
  const b = n.remember(a, 'b');
  assert.equal(n.path(b), '/a/b');
  assert.equal(n.remember(1n, 'a'), a, 'the same name is the same node');
  n.renamed(1n, 'a', 1n, 'z');
  assert.equal(n.path(b), '/z/b');
  n.removed(a, 'b');
  assert.throws(() => n.path(b), /not known/);
  assert.notEqual(n.remember(a, 'b'), b, 'a new entry of a removed name is a new node');
  n.forget(a, 2);
  assert.throws(() => n.path(a), /not known/);
});

test('kernel mount options: kernel and VFS options pass, libfuse ones are absorbed, others refused', () => {
  const s = kernelMountOptions({
    fd: 3,
    fsName: 'strata',
    subtype: 'strata',
    maxReadBytes: MiB,
    options: ['allow_other', 'default_permissions', 'ro', 'nonempty', 'big_writes', 'fsname=x', 'noatime'],
  });
  assert.match(
    s,
    /^fd=3,rootmode=40000,user_id=\d+,group_id=\d+,allow_other,default_permissions,ro,noatime,max_read=1048576$/,
  );
  assert.throws(
    () => kernelMountOptions({ fd: 3, fsName: 's', subtype: 's', maxReadBytes: MiB, options: ['bogus'] }),
    /unknown FUSE mount option "bogus" for the kernel binding \(allowed: allow_other/,
  );
});

test('security.capability, asked before every write, is answered from a cache of its absence', async (t) => {
  const h = harness();
  t.after(() => h.session.close());
  await h.init();
  let asked = 0;
  const inner = h.ops.getxattr.bind(h.ops);
  h.ops.getxattr = (path, name) => {
    asked++;
    return inner(path, name);
  };
  const cap = (): Buffer =>
    request(Op.GETXATTR, 1n, Buffer.concat([u32s(0, 0), cstr('security.capability')]));
  for (let i = 0; i < 5; i++) assert.equal((await h.send(cap()))?.error, -E.ENODATA);
  assert.equal(asked, 1, 'one call for five writes');
  // Setting it through the mount drops the cached absence.
  const set = request(
    Op.SETXATTR,
    1n,
    Buffer.concat([u32s(1, 0), cstr('security.capability'), Buffer.from('x')]),
  );
  assert.equal((await h.send(set))?.error, 0);
  await h.send(cap());
  assert.equal(asked, 2);
});

test('readdirplus: entries with node ids and attributes, counted as lookups; "." and ".." with none', async (t) => {
  const h = harness();
  t.after(() => h.session.close());
  await h.init();
  const open = await h.send(request(Op.OPENDIR, 1n, u32s(0, 0)));
  const fh = open!.body.readBigUInt64LE(0);
  const seen: { name: string; nodeid: bigint; ino: bigint; mode: number; size: bigint }[] = [];
  let offset = 0n;
  for (let pages = 0; pages < 100; pages++) {
    const r = await h.send(
      request(Op.READDIRPLUS, 1n, Buffer.concat([u64(fh), u64(offset), u32s(1024, 0), u64(0n), u32s(0, 0)])),
    );
    assert.equal(r?.error, 0);
    const body = r.body;
    assert.ok(body.length <= 1024, 'never more than asked');
    if (body.length === 0) break;
    for (let o = 0; o < body.length;) {
      // fuse_entry_out (128 bytes), then fuse_dirent.
      const d = o + 128;
      const len = body.readUInt32LE(d + 16);
      seen.push({
        name: body.toString('utf8', d + 24, d + 24 + len),
        nodeid: body.readBigUInt64LE(o),
        ino: body.readBigUInt64LE(o + 40),
        size: body.readBigUInt64LE(o + 48),
        mode: body.readUInt32LE(o + 40 + 60),
      });
      offset = body.readBigUInt64LE(d + 8);
      o += 128 + ((24 + len + 7) & ~7);
    }
  }
  assert.equal(seen.length, 52, 'every entry once across pages');
  assert.deepEqual(
    seen.slice(0, 2).map((e) => [e.name, e.nodeid]),
    [
      ['.', 0n],
      ['..', 0n],
    ],
  );
  const e7 = seen.find((e) => e.name === 'entry-7');
  assert.ok(e7 !== undefined && e7.nodeid > 1n);
  assert.equal(e7.ino, 107n);
  assert.equal(e7.size, 7n);
  assert.equal(e7.mode, 0o40755);
  // The node ids are the table's: a path each, and one lookup the kernel must FORGET.
  assert.equal(h.session.nodes.path(e7.nodeid), '/entry-7');
  const before = h.session.nodes.size;
  h.session.handle(request(Op.FORGET, e7.nodeid, u64(1n)));
  assert.equal(h.session.nodes.size, before - 1, 'one FORGET drops the entry readdirplus counted');
  assert.equal(h.calls.filter((c) => c[0] === 'readdir').length, 0, 'one listing call: readdirPlus');
});

test('INTERRUPT: a pending read answers EINTR at once (its late answer dropped); a pending mkdir finishes', async (t) => {
  const h = harness();
  t.after(() => h.session.close());
  await h.init();
  let finishRead: () => void = () => undefined;
  let signal: AbortSignal | undefined;
  h.ops.read = (_p, _fh, buf, _length, _pos, s) =>
    new Promise<number>((res) => {
      signal = s;
      finishRead = () => res(buf.write('late'));
    });
  const read = request(Op.READ, 3n, Buffer.concat([u64(7n), u64(0n), u32s(4096, 0), u64(0n), u32s(0, 0)]));
  const readUnique = read.readBigUInt64LE(8);
  h.session.handle(read);
  await new Promise((res) => setImmediate(res));
  assert.equal(h.replies.filter((r) => r.unique === readUnique).length, 0, 'still pending');
  h.session.handle(request(Op.INTERRUPT, 0n, u64(readUnique)));
  assert.deepEqual(
    h.replies.filter((r) => r.unique === readUnique).map((r) => r.error),
    [-E.EINTR],
  );
  assert.equal(signal?.aborted, true, 'the operation is told through its signal');
  finishRead();
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(h.replies.filter((r) => r.unique === readUnique).length, 1, 'the late answer is dropped');
  assert.equal(h.session.stats.interrupted, 1);

  let finishMkdir: () => void = () => undefined;
  h.ops.mkdir = () => new Promise<undefined>((res) => (finishMkdir = () => res(undefined)));
  const mkdir = request(Op.MKDIR, 1n, Buffer.concat([u32s(0o755, 0), cstr('dir')]));
  const mkdirUnique = mkdir.readBigUInt64LE(8);
  h.session.handle(mkdir);
  await new Promise((res) => setImmediate(res));
  h.session.handle(request(Op.INTERRUPT, 0n, u64(mkdirUnique)));
  assert.equal(h.replies.filter((r) => r.unique === mkdirUnique).length, 0, 'a change is not abandoned');
  finishMkdir();
  const deadline = Date.now() + 5_000;
  while (!h.replies.some((r) => r.unique === mkdirUnique) && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 5));
  assert.equal(
    h.replies.find((r) => r.unique === mkdirUnique)?.error,
    0,
    'it answers as if never interrupted',
  );
  // An interrupt for a request already answered is ignored (no reply to the INTERRUPT itself).
  const count = h.replies.length;
  h.session.handle(request(Op.INTERRUPT, 0n, u64(readUnique)));
  assert.equal(h.replies.length, count);
});

test('direct reads: a plan is asked after a read and granted; RELEASE is acknowledged after the operation', async (t) => {
  const events: string[] = [];
  const pending = new Map<number, (plan: DirectReadPlan | undefined) => void>();
  let revokeListener: (fh: number) => void = () => undefined;
  const direct: DirectReadLink = {
    source: {
      plan: (fh) => {
        events.push(`plan ${fh}`);
        return new Promise((res) => pending.set(fh, res));
      },
      onRevoke: (listener) => (revokeListener = listener),
    },
    grant: (fh) => void events.push(`grant ${fh}`),
    revoke: (fh) => void events.push(`revoke ${fh}`),
    released: (fh) => void events.push(`released ${fh}`),
  };
  const h = harness({ direct });
  t.after(() => h.session.close());
  await h.init();
  h.ops.read = async (_p, _fh, buf) => buf.write('data');
  h.ops.release = async (_p, fh) => void events.push(`release op ${fh}`);
  const read = (fh: number) =>
    h.send(
      request(Op.READ, 3n, Buffer.concat([u64(BigInt(fh)), u64(0n), u32s(4096, 0), u64(0n), u32s(0, 0)])),
    );
  const release = (fh: number) =>
    h.send(request(Op.RELEASE, 3n, Buffer.concat([u64(BigInt(fh)), u32s(0, 0), u64(0n)])));
  const plan: DirectReadPlan = { sizeBytes: 4, extents: [] };

  assert.equal((await read(7))?.body.toString(), 'data');
  await read(7);
  assert.deepEqual(events, ['plan 7'], 'asked once, after the first read');
  pending.get(7)?.(plan);
  await waitFor('the grant', () => events.includes('grant 7'), 5_000, 5);
  revokeListener(7);
  assert.equal(events.at(-1), 'revoke 7');
  await release(7);
  assert.deepEqual(events.slice(-2), ['release op 7', 'released 7'], 'acknowledged after the operation');

  // A plan that resolves after its handle's RELEASE is not granted (the number may be reused).
  await read(9);
  await release(9);
  pending.get(9)?.(plan);
  await new Promise((res) => setImmediate(res));
  assert.ok(!events.includes('grant 9'));

  // A refused handle is asked again at a read once DIRECT_REASK_MS passed, not before.
  await read(8);
  pending.get(8)?.(undefined);
  await new Promise((res) => setImmediate(res));
  await read(8);
  assert.equal(events.filter((e) => e === 'plan 8').length, 1, 'not asked again at once');
  await waitFor(
    'asked again',
    async () => {
      await read(8);
      return events.filter((e) => e === 'plan 8').length === 2;
    },
    5_000,
    50,
  );
});
