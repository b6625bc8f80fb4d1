// Namespace operations one by one on LMDB: each documented result and error (POSIX codes, path
// and name limits, permissions, leases, truncate, links, xattrs, TTL, trash), with the store-wide
// consistency checker run after every scenario so a wrong record cannot hide behind a right reply.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { checkNamespace, truncateBlocks } from '../../src/master/namespace/index.js';
import type { Namespace } from '../../src/master/namespace/index.js';
import { openNs } from './ns-helpers.js';
import type { TestNs } from './ns-helpers.js';

const alice = { uid: 1000, gid: 1000 };
const bob = { uid: 1001, gid: 1001 };

async function consistent(t: TestNs): Promise<void> {
  const report = await checkNamespace(t.store);
  assert.deepEqual(report.problems, []);
}

/** A namespace test: the consistency checker runs on the store when the body has passed. */
function nsTest(
  name: string,
  body: (n: TestNs, t: TestContext) => Promise<void>,
  extra: Parameters<typeof openNs>[2] = {},
): void {
  test(name, async (t) => {
    const n = await openNs(t, 'lmdb', extra);
    await body(n, t);
    await consistent(n);
  });
}

async function writeFile(ns: Namespace, path: string, sizes: number[], opts = {}): Promise<number[]> {
  const { status, leaseId } = await ns.create(path, opts);
  const ids: number[] = [];
  for (let i = 0; i < sizes.length; i++) ids.push((await ns.addBlock(status.id, leaseId)).blockId);
  await ns.complete(
    status.id,
    leaseId,
    ids.map((blockId, i) => ({ blockId, length: sizes[i] as number })),
    sizes.reduce((a, b) => a + b, 0),
  );
  return ids;
}

describe('namespace', () => {
  nsTest('mkdir, create, getStatus and list', async ({ ns }) => {
    const d = await ns.mkdir('/a', { mode: 0o750 });
    assert.equal(d.type, 'dir');
    assert.equal(d.mode, 0o750);
    assert.equal(d.nlink, 2);
    await ns.mkdir('/a/b/c', { parents: true });
    assert.equal((await ns.getStatus('/a')).nlink, 3, 'a directory counts its subdirectories in nlink');
    const { status, leaseId } = await ns.create('/a/f', {
      replicas: 2,
      storageType: 'SSD',
      blockSize: 65536,
    });
    assert.equal(status.state, 'writing');
    assert.equal(status.replicas, 2);
    assert.equal(status.storageType, 'SSD');
    assert.ok(leaseId.length > 10);
    const root = await ns.getStatus('/');
    assert.equal(root.path, '/');
    assert.equal(root.children, 1);
    const l = await ns.list('/a');
    assert.deepEqual(
      l.entries.map((e) => [e.name, e.type, e.path]),
      [
        ['b', 'dir', '/a/b'],
        ['f', 'file', '/a/f'],
      ],
    );
    assert.equal(l.nextStartAfter, undefined);
    assert.equal((await ns.getStatus('/a/')).path, '/a/', 'a trailing slash is accepted');
  });

  nsTest('list pages in name order with startAfter', async ({ ns }) => {
    await ns.mkdir('/d');
    const names = Array.from({ length: 25 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    for (const n of [...names].reverse()) await ns.mkdir(`/d/${n}`);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await ns.list('/d', { limit: 10, ...(after === undefined ? {} : { startAfter: after }) });
      seen.push(...page.entries.map((e) => e.name));
      if (page.nextStartAfter === undefined) break;
      assert.equal(page.entries.length, 10);
      after = page.nextStartAfter;
    }
    assert.deepEqual(seen, names);
    assert.deepEqual(
      (await ns.list('/d', { startAfter: 'n23' })).entries.map((e) => e.name),
      ['n24'],
    );
    assert.deepEqual((await ns.list('/d', { startAfter: 'zzz' })).entries, []);
  });

  nsTest('path and name rules give EINVAL and ENAMETOOLONG', async ({ ns }) => {
    const bad: [string, string][] = [
      ['relative', 'EINVAL'],
      ['/a//b', 'EINVAL'],
      ['/a/./b', 'EINVAL'],
      ['/a/../b', 'EINVAL'],
      ['/a\0b', 'EINVAL'],
      [`/${'x'.repeat(256)}`, 'ENAMETOOLONG'],
      [`/${'é'.repeat(128)}`, 'ENAMETOOLONG'],
      [`/${Array.from({ length: 1400 }, () => 'abc').join('/')}`, 'ENAMETOOLONG'],
    ];
    for (const [p, code] of bad) {
      await assert.rejects(ns.mkdir(p), { code }, p.slice(0, 40));
      await assert.rejects(ns.getStatus(p), { code });
    }
    await ns.mkdir(`/${'x'.repeat(255)}`);
    await ns.mkdir(`/${'é'.repeat(127)}`);
  });

  nsTest('errors of missing, existing and wrong-type entries', async ({ ns }) => {
    await ns.mkdir('/d');
    await writeFile(ns, '/d/f', [10]);
    await assert.rejects(ns.getStatus('/nope'), { code: 'ENOENT' });
    await assert.rejects(ns.mkdir('/nope/x'), { code: 'ENOENT' });
    await assert.rejects(ns.mkdir('/d/f/x'), { code: 'ENOTDIR' });
    await assert.rejects(ns.mkdir('/d'), { code: 'EEXIST' });
    await assert.rejects(ns.mkdir('/'), { code: 'EEXIST' });
    await ns.mkdir('/', { parents: true });
    await ns.mkdir('/d', { parents: true });
    await assert.rejects(ns.mkdir('/d/f', { parents: true }), { code: 'EEXIST' });
    await assert.rejects(ns.create('/d'), { code: 'EISDIR' });
    await assert.rejects(ns.create('/d', { overwrite: true }), { code: 'EISDIR' });
    await assert.rejects(ns.create('/d/f'), { code: 'EEXIST' });
    await assert.rejects(ns.create('/x/y'), { code: 'ENOENT' });
    await ns.create('/x/y', { parents: true });
    await assert.rejects(ns.list('/d/f'), { code: 'ENOTDIR' });
    await assert.rejects(ns.delete('/d'), { code: 'ENOTEMPTY' });
    await assert.rejects(ns.delete('/'), { code: 'EBUSY' });
    await assert.rejects(ns.delete('/nope'), { code: 'ENOENT' });
    await assert.rejects(ns.readlink('/d/f'), { code: 'EINVAL' });
    await assert.rejects(ns.getBlocks('/d'), { code: 'EISDIR' });
  });

  nsTest('overwrite replaces a file and deletes its blocks', async ({ ns, removed }) => {
    const ids = await writeFile(ns, '/f', [100, 50]);
    const { status } = await ns.create('/f', { overwrite: true });
    assert.equal(status.size, 0);
    assert.deepEqual(removed.sort(), [...ids].sort());
  });

  nsTest('rename follows POSIX rules for existing targets', async ({ ns }) => {
    await ns.mkdir('/a/sub', { parents: true });
    await ns.mkdir('/b');
    await ns.mkdir('/full/x', { parents: true });
    await writeFile(ns, '/f1', [1]);
    await writeFile(ns, '/f2', [2]);
    await ns.rename('/f1', '/f2');
    assert.equal((await ns.getStatus('/f2')).size, 1, 'file over file replaces');
    await assert.rejects(ns.getStatus('/f1'), { code: 'ENOENT' });
    await assert.rejects(ns.rename('/f2', '/b'), { code: 'EISDIR' });
    await assert.rejects(ns.rename('/a', '/f2'), { code: 'ENOTDIR' });
    await assert.rejects(ns.rename('/a', '/full'), { code: 'ENOTEMPTY' });
    await assert.rejects(ns.rename('/a', '/a/sub/inner'), { code: 'EINVAL' });
    await assert.rejects(ns.rename('/a', '/a/new'), { code: 'EINVAL' });
    await assert.rejects(ns.rename('/missing', '/b/x'), { code: 'ENOENT' });
    await assert.rejects(ns.rename('/f2', '/missing/x'), { code: 'ENOENT' });
    await assert.rejects(ns.rename('/', '/x'), { code: 'EBUSY' });
    await assert.rejects(ns.rename('/f2', '/b', { noReplace: true }), { code: 'EEXIST' });
    await ns.rename('/a', '/b');
    assert.equal((await ns.getStatus('/b/sub')).type, 'dir', 'dir over empty dir replaces');
    await ns.rename('/b', '/b');
    await ns.rename('/b/sub', '/full/x/sub');
    assert.equal((await ns.getStatus('/full/x')).nlink, 3);
    assert.equal((await ns.getStatus('/b')).nlink, 2);
    await ns.link('/f2', '/b/hard');
    await ns.rename('/f2', '/b/hard');
    assert.equal((await ns.getStatus('/f2')).nlink, 2, 'rename between links of one inode does nothing');
  });

  nsTest('symlinks are followed in the middle of paths, never at the end', async ({ ns }) => {
    await ns.mkdir('/real/deep', { parents: true });
    await writeFile(ns, '/real/deep/f', [7]);
    await ns.symlink('/real', '/abs');
    await ns.symlink('real/deep', '/rel');
    await ns.symlink('../deep', '/real/deep/up');
    await ns.symlink('/loop2', '/loop1');
    await ns.symlink('/loop1', '/loop2');
    await ns.symlink('/real/deep/f', '/tofile');
    assert.equal((await ns.getStatus('/abs')).type, 'symlink');
    assert.equal((await ns.getStatus('/abs')).target, '/real');
    assert.equal((await ns.getStatus('/abs/deep/f')).size, 7);
    assert.equal((await ns.getStatus('/rel/f')).size, 7);
    assert.equal((await ns.getStatus('/real/deep/up/f')).size, 7);
    assert.equal(await ns.readlink('/rel'), 'real/deep');
    await assert.rejects(ns.getStatus('/loop1/x'), { code: 'ELOOP' });
    await assert.rejects(ns.getStatus('/tofile/x'), { code: 'ENOTDIR' });
    assert.deepEqual(
      (await ns.list('/abs/deep')).entries.map((e) => e.name),
      ['f', 'up'],
    );
    assert.equal((await ns.getBlocks('/tofile')).status.size, 7, 'opening a file follows the last symlink');
    await ns.mkdir('/abs/deep/made');
    assert.equal((await ns.getStatus('/real/deep/made')).type, 'dir');
    await assert.rejects(ns.symlink('', '/empty'), { code: 'EINVAL' });
    await assert.rejects(ns.symlink('/x', '/abs'), { code: 'EEXIST' });
    await ns.delete('/abs');
    assert.equal((await ns.getStatus('/real')).type, 'dir', 'deleting a symlink leaves its target');
  });

  nsTest('hard links share one inode; the last unlink frees it', async ({ ns, removed }) => {
    const ids = await writeFile(ns, '/f', [5]);
    await ns.mkdir('/d');
    const l = await ns.link('/f', '/d/g');
    assert.equal(l.nlink, 2);
    assert.equal((await ns.getStatus('/f')).id, l.id);
    await assert.rejects(ns.link('/d', '/e'), { code: 'EPERM' });
    await assert.rejects(ns.link('/f', '/d/g'), { code: 'EEXIST' });
    await assert.rejects(ns.link('/none', '/x'), { code: 'ENOENT' });
    await ns.delete('/f');
    assert.equal((await ns.getStatus('/d/g')).nlink, 1);
    assert.deepEqual(removed, []);
    await ns.delete('/d', { recursive: true });
    assert.deepEqual(removed, ids);
  });

  nsTest('setAttr: mode, owner, times, TTL, replicas, truncate', async ({ ns, removed }) => {
    const ids = await writeFile(ns, '/f', [1024 * 1024, 1024 * 1024, 100], { blockSize: 1024 * 1024 });
    let s = await ns.setAttr('/f', { mode: 0o600, uid: 5, gid: 6, atimeMs: 1, mtimeMs: 2 });
    assert.deepEqual([s.mode, s.uid, s.gid, s.atimeMs, s.mtimeMs], [0o600, 5, 6, 1, 2]);
    s = await ns.setAttr('/f', { length: 1024 * 1024 + 10 });
    assert.equal(s.size, 1024 * 1024 + 10);
    assert.deepEqual(removed, [ids[2]], 'blocks past the new end are deleted');
    let b = await ns.getBlocks('/f');
    assert.deepEqual(
      b.blocks.map((x) => [x.blockId, x.offset, x.length]),
      [
        [ids[0], 0, 1024 * 1024],
        [ids[1], 1024 * 1024, 10],
      ],
    );
    s = await ns.setAttr('/f', { length: 5 * 1024 * 1024 });
    assert.equal(s.size, 5 * 1024 * 1024);
    b = await ns.getBlocks('/f');
    assert.equal(b.blocks.length, 2, 'extending adds a hole, not blocks');
    b = await ns.getBlocks('/f', 1024 * 1024 + 5, 1);
    assert.deepEqual(
      b.blocks.map((x) => x.blockId),
      [ids[1]],
    );
    await assert.rejects(ns.setAttr('/', { length: 0 }), { code: 'EISDIR' });
    await assert.rejects(ns.setAttr('/f', { mode: 0o10000 }), { code: 'EINVAL' });
    s = await ns.setAttr('/f', { replicas: 3, ttlMs: 1000, ttlAction: 'delete' });
    assert.equal(s.replicas, 3);
    assert.equal(s.ttlMs, 1000);
    const { status } = await ns.create('/w');
    await assert.rejects(ns.setAttr('/w', { length: 10 }), { code: 'EBUSY' });
    assert.equal(status.state, 'writing');
  });

  test('truncateBlocks keeps, shortens and drops blocks; growth is one hole', () => {
    assert.deepEqual(truncateBlocks([1, 10, 2, 10, 3, 10], 30, 15), { blocks: [1, 10, 2, 5], dropped: [3] });
    assert.deepEqual(truncateBlocks([1, 10, 2, 10], 20, 10), { blocks: [1, 10], dropped: [2] });
    assert.deepEqual(truncateBlocks([1, 10], 10, 0), { blocks: [], dropped: [1] });
    assert.deepEqual(truncateBlocks([1, 10], 10, 25), { blocks: [1, 10, 0, 15], dropped: [] });
    assert.deepEqual(truncateBlocks([1, 10, 0, 15], 25, 30), { blocks: [1, 10, 0, 20], dropped: [] });
    assert.deepEqual(truncateBlocks([0, 30], 30, 12), { blocks: [0, 12], dropped: [] });
  });

  nsTest('permissions: search, write, sticky, owner-only, root bypass', async ({ ns }) => {
    await ns.mkdir('/home', { mode: 0o755 });
    await ns.mkdir('/home/alice', { mode: 0o700 });
    await ns.setAttr('/home/alice', { uid: alice.uid, gid: alice.gid });
    await ns.mkdir('/home/alice/docs', {}, alice);
    await assert.rejects(ns.getStatus('/home/alice/docs', bob), { code: 'EACCES' });
    await assert.rejects(ns.list('/home/alice', {}, bob), { code: 'EACCES' });
    await assert.rejects(ns.mkdir('/home/bob', {}, bob), { code: 'EACCES' });
    await assert.rejects(ns.create('/home/alice/x', {}, bob), { code: 'EACCES' });
    await assert.rejects(ns.setAttr('/home/alice', { mode: 0o777 }, bob), { code: 'EPERM' });
    await assert.rejects(ns.setAttr('/home/alice', { uid: bob.uid }, alice), { code: 'EPERM' });
    await assert.rejects(ns.setAttr('/home/alice', { gid: 4242 }, alice), { code: 'EPERM' });
    await ns.setAttr('/home/alice', { gid: 4242 }, { ...alice, groups: [4242] });
    await ns.setAttr('/home/alice', { mode: 0o755 }, alice);
    assert.equal((await ns.getStatus('/home/alice/docs', bob)).uid, alice.uid);
    const f = await ns.create('/home/alice/docs/r', { mode: 0o600 }, alice);
    await assert.rejects(ns.getBlocks('/home/alice/docs/r', 0, undefined, bob), { code: 'EACCES' });
    await ns.complete(f.status.id, f.leaseId, [], 0);
    await assert.rejects(ns.openForWrite('/home/alice/docs/r', '', bob), { code: 'EACCES' });
    // Sticky /tmp: bob can create but not remove alice's entry.
    await ns.mkdir('/tmp', { mode: 0o1777 });
    await ns.mkdir('/tmp/a', {}, alice);
    await ns.mkdir('/tmp/b', {}, bob);
    await assert.rejects(ns.delete('/tmp/a', {}, bob), { code: 'EPERM' });
    await assert.rejects(ns.rename('/tmp/a', '/tmp/c', {}, bob), { code: 'EPERM' });
    await ns.delete('/tmp/b', {}, bob);
    // setgid directories hand their group down.
    await ns.mkdir('/grp', { mode: 0o2775 });
    await ns.setAttr('/grp', { gid: 77 });
    await ns.setAttr('/grp', { mode: 0o2777 });
    const sub = await ns.mkdir('/grp/sub', {}, alice);
    assert.equal(sub.gid, 77);
    assert.equal(sub.mode & 0o2000, 0o2000);
    assert.equal((await ns.create('/grp/file', {}, alice)).status.gid, 77);
    // Recursive delete by a non-root user needs wx on every directory below.
    await ns.mkdir('/tmp/a/locked', { mode: 0o500 }, alice);
    await ns.mkdir('/tmp/a/locked/in', { mode: 0o700 }, { uid: 0, gid: 0 });
    await assert.rejects(ns.delete('/tmp/a', { recursive: true }, alice), { code: 'EACCES' });
  });

  nsTest(
    'create with complete: an empty, complete file in one transaction, no lease',
    async ({ ns, store }) => {
      await ns.mkdir('/e');
      const before = store.stats().transactions;
      const { status, leaseId } = await ns.create('/e/f', { complete: true, mode: 0o640 });
      assert.equal(store.stats().transactions - before, 1, 'one store transaction');
      assert.equal(leaseId, '');
      assert.equal(status.state, 'complete');
      assert.equal(status.size, 0);
      assert.equal(status.mode, 0o640);
      assert.deepEqual(ns.openLeases(), []);
      assert.equal((await ns.getStatus('/e/f')).state, 'complete');
      assert.deepEqual((await ns.getBlocks('/e/f', 0)).blocks, []);
      await assert.rejects(ns.complete(status.id, '', [], 0), { code: 'EBADF' }, 'no lease to complete');
      await assert.rejects(ns.create('/e/f', { complete: true }), { code: 'EEXIST' });
      // No lease held: a writer opens it at once, and it can be replaced.
      const w = await ns.openForWrite('/e/f');
      await ns.complete(status.id, w.leaseId, [], 0);
      const again = await ns.create('/e/f', { complete: true, overwrite: true });
      assert.notEqual(again.status.id, status.id);
      assert.equal(ns.counts().files, 1);
    },
  );

  nsTest(
    'leases: one writer, block allocation, complete, abandon, expiry',
    async ({ ns, clock, removed }) => {
      const { status, leaseId } = await ns.create('/f', { blockSize: 4096 });
      await assert.rejects(ns.openForWrite('/f'), { code: 'EBUSY' });
      const b1 = await ns.addBlock(status.id, leaseId);
      const b2 = await ns.addBlock(status.id, leaseId);
      const b3 = await ns.addBlock(status.id, leaseId);
      await ns.abandonBlock(status.id, leaseId, b3.blockId);
      assert.deepEqual(removed, [b3.blockId]);
      await assert.rejects(ns.addBlock(status.id, 'not-the-lease'), { code: 'EBADF' });
      await assert.rejects(
        ns.complete(status.id, leaseId, [{ blockId: b1.blockId, length: 4096 }], 4000),
        { code: 'EINVAL' },
        'lengths must add up',
      );
      await assert.rejects(
        ns.complete(status.id, leaseId, [{ blockId: 999_999, length: 1 }], 1),
        { code: 'EINVAL' },
        'foreign block',
      );
      await assert.rejects(
        ns.complete(status.id, leaseId, [{ blockId: b1.blockId, length: 5000 }], 5000),
        { code: 'EINVAL' },
        'longer than the block size',
      );
      const done = await ns.complete(
        status.id,
        leaseId,
        [
          { blockId: b1.blockId, length: 4096 },
          { blockId: 0, length: 100 },
        ],
        4196,
      );
      assert.equal(done.state, 'complete');
      assert.equal(done.size, 4196);
      assert.ok(removed.includes(b2.blockId), 'allocated but unlisted blocks are deleted');
      await assert.rejects(ns.complete(status.id, leaseId, [], 0), { code: 'EBADF' });
      // Append: reopen, keep the old block, add one.
      const w = await ns.openForWrite('/f', 'hostA');
      assert.deepEqual(w.blocks, [
        { blockId: b1.blockId, length: 4096 },
        { blockId: 0, length: 100 },
      ]);
      const b4 = await ns.addBlock(status.id, w.leaseId);
      // The writer dies: after the lease timeout the file is closed with its committed blocks.
      clock.now += 61_000;
      await assert.rejects(ns.addBlock(status.id, w.leaseId), { code: 'EBADF' });
      assert.equal(await ns.recoverExpiredLeases(), 1);
      const after = await ns.getStatus('/f');
      assert.equal(after.state, 'complete');
      assert.equal(after.size, 4196);
      assert.ok(removed.includes(b4.blockId));
      assert.ok(ns.renewLease !== undefined);
      // Deleting a file being written ends its lease.
      const x = await ns.create('/x');
      await ns.delete('/x');
      await assert.rejects(ns.addBlock(x.status.id, x.leaseId), { code: 'EBADF' });
    },
  );

  nsTest('xattrs: set, get, list, flags, namespaces, limits', async ({ ns }) => {
    await ns.mkdir('/d');
    await ns.setXattr('/d', 'user.a', Buffer.from('1'));
    await ns.setXattr('/d', 'user.b', Buffer.from([0, 255, 1]));
    assert.deepEqual([...(await ns.getXattr('/d', 'user.b'))], [0, 255, 1]);
    assert.deepEqual(await ns.listXattr('/d'), ['user.a', 'user.b']);
    await assert.rejects(ns.setXattr('/d', 'user.a', Buffer.from('x'), 'create'), { code: 'EEXIST' });
    await assert.rejects(ns.setXattr('/d', 'user.z', Buffer.from('x'), 'replace'), { code: 'ENODATA' });
    await assert.rejects(ns.getXattr('/d', 'user.z'), { code: 'ENODATA' });
    await assert.rejects(ns.setXattr('/d', 'bogus', Buffer.from('x')), { code: 'ENOTSUP' });
    await assert.rejects(ns.setXattr('/d', 'trusted.x', Buffer.from('x'), 'any', alice), { code: 'EPERM' });
    await assert.rejects(ns.setXattr('/d', 'user.big', Buffer.alloc(64 * 1024 + 1)), { code: 'E2BIG' });
    await ns.removeXattr('/d', 'user.a');
    await assert.rejects(ns.removeXattr('/d', 'user.a'), { code: 'ENODATA' });
    assert.deepEqual(await ns.listXattr('/d'), ['user.b']);
    await ns.delete('/d');
  });

  nsTest(
    'TTL deletes expired files and directories through the expiry index',
    async ({ ns, clock, removed }) => {
      const ids = await writeFile(ns, '/short', [10], { ttlMs: 1000, ttlAction: 'delete' });
      await writeFile(ns, '/long', [10], { ttlMs: 100_000, ttlAction: 'delete' });
      await writeFile(ns, '/none', [10]);
      await ns.mkdir('/tmpdir/inner', { parents: true });
      await writeFile(ns, '/tmpdir/inner/f', [3]);
      await ns.setAttr('/tmpdir', { ttlMs: 5000, ttlAction: 'delete' });
      await ns.setAttr('/tmpdir', { mtimeMs: clock.now });
      clock.now += 999;
      assert.deepEqual(await ns.runTtl(), { deleted: 0, freed: 0, skipped: 0 });
      clock.now += 2;
      assert.equal((await ns.runTtl()).deleted, 1);
      await assert.rejects(ns.getStatus('/short'), { code: 'ENOENT' });
      assert.deepEqual(removed, ids);
      clock.now += 5000;
      assert.equal((await ns.runTtl()).deleted, 1);
      await assert.rejects(ns.getStatus('/tmpdir'), { code: 'ENOENT' });
      assert.equal((await ns.getStatus('/long')).type, 'file');
      assert.equal((await ns.getStatus('/none')).type, 'file');
    },
  );

  const free = new Set<number>();
  nsTest(
    'TTL free keeps the file and drops its replicas only when allowed',
    async ({ ns, clock, removed }) => {
      const a = await writeFile(ns, '/a', [10], { ttlMs: 10, ttlAction: 'free' });
      await writeFile(ns, '/b', [10], { ttlMs: 10, ttlAction: 'free' });
      free.add((await ns.getStatus('/a')).id);
      clock.now += 20;
      const r = await ns.runTtl();
      assert.deepEqual(r, { deleted: 0, freed: 1, skipped: 1 });
      assert.deepEqual(removed, a);
      assert.equal((await ns.getStatus('/a')).size, 10, 'a freed file keeps its metadata');
      assert.equal((await ns.getStatus('/b')).ttlMs, 0, 'a file with no copy outside Strata is not freed');
      assert.equal((await ns.getStatus('/b')).size, 10);
    },
    { events: { canFree: (f) => free.has(f.id) } },
  );

  nsTest(
    'recursive delete of a tree bigger than one transaction goes through the trash',
    async ({ ns, removed }) => {
      await ns.mkdir('/big');
      const all: number[] = [];
      for (let i = 0; i < 12; i++) {
        await ns.mkdir(`/big/d${i}`);
        for (let j = 0; j < 10; j++) all.push(...(await writeFile(ns, `/big/d${i}/f${j}`, [1])));
      }
      await writeFile(ns, '/keep', [1]);
      await ns.link('/big/d0/f0', '/keep-link');
      await ns.delete('/big', { recursive: true });
      await assert.rejects(ns.getStatus('/big'), { code: 'ENOENT' }, 'invisible at once');
      await ns.idle();
      const counts = ns.counts();
      assert.equal(counts.dirs, 1);
      assert.equal(counts.files, 2, '/keep and the hard-linked survivor');
      assert.equal(removed.length, all.length - 1);
      assert.equal((await ns.getStatus('/keep-link')).nlink, 1);
    },
    { inlineDeleteEntries: 50 },
  );

  test('counts follow every mutation and survive reopen', async (t) => {
    const n = await openNs(t);
    await n.ns.mkdir('/a/b', { parents: true });
    await writeFile(n.ns, '/a/f', [1, 2]);
    await n.ns.symlink('/a', '/s');
    assert.deepEqual(n.ns.counts(), { files: 1, dirs: 3, symlinks: 1, blocks: 2 });
    const again = await openNs(t, 'lmdb', {}, n.store);
    assert.deepEqual(again.ns.counts(), { files: 1, dirs: 3, symlinks: 1, blocks: 2 });
    await assert.rejects(openNs(t, 'lmdb', { clusterId: 'other' }, n.store), {
      code: 'STRATA_META_MISMATCH',
    });
  });
});
