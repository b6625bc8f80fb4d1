// Namespace.completeAs (the CompleteAs call): complete + attributes + rename in one transaction.
// Proves the object appears whole under its new name replacing the old file, that every refusal changes nothing,
// and that create's firstBlock allocates a block in the create's transaction (given back when unused).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FsError } from '../../src/common/errors.js';
import { checkNamespace } from '../../src/master/namespace/index.js';
import { openNs } from './ns-helpers.js';
import type { TestNs } from './ns-helpers.js';

const KiB = 1024;

async function consistent(t: TestNs): Promise<void> {
  assert.deepEqual((await checkNamespace(t.store)).problems, []);
}

function hasCode(code: string): (err: unknown) => boolean {
  return (err) => err instanceof FsError && err.code === code;
}

/** A file being written at `path` with one allocated block. */
async function writing(t: TestNs, path: string): Promise<{ id: number; leaseId: string; blockId: number }> {
  const { status, leaseId } = await t.ns.create(path, { parents: true });
  const { blockId } = await t.ns.addBlock(status.id, leaseId);
  return { id: status.id, leaseId, blockId };
}

describe('namespace completeAs', () => {
  test('completes, sets attributes and renames onto an existing file in one step', async (t) => {
    const n = await openNs(t, 'lmdb');
    const old = await writing(n, '/b/key');
    await n.ns.complete(old.id, old.leaseId, [{ blockId: old.blockId, length: 10 }], 10);
    await n.ns.setXattr('/b/key', 'user.old', Buffer.from('x'));
    const f = await writing(n, '/tmp/upload-1');
    const st = await n.ns.completeAs(f.id, f.leaseId, {
      blocks: [{ blockId: f.blockId, length: 4 * KiB }],
      length: 4 * KiB,
      xattrs: [
        { name: 'user.s3.object', value: Buffer.from('{"etag":"abc"}') },
        { name: 'user.s3.name', value: Buffer.from('key') },
      ],
      renameTo: '/b/key',
    });
    assert.equal(st.path, '/b/key');
    assert.equal(st.id, f.id);
    assert.equal(st.size, 4 * KiB);
    assert.equal(st.state, 'complete');
    assert.equal((await n.ns.getXattr('/b/key', 'user.s3.object')).toString(), '{"etag":"abc"}');
    assert.equal((await n.ns.getXattr('/b/key', 'user.s3.name')).toString(), 'key');
    assert.deepEqual((await n.ns.listXattr('/b/key')).sort(), ['user.s3.name', 'user.s3.object']);
    await assert.rejects(n.ns.getStatus('/tmp/upload-1'), hasCode('ENOENT'));
    const blocks = await n.ns.getBlocks('/b/key', 0);
    assert.deepEqual(
      blocks.blocks.map((b) => b.blockId),
      [f.blockId],
    );
    assert.ok(n.removed.includes(old.blockId), 'the replaced file gives its blocks back');
    // The lease is over: a second complete is refused.
    await assert.rejects(n.ns.complete(f.id, f.leaseId, [], 0), hasCode('EBADF'));
    await consistent(n);
  });

  test('a refused rename changes nothing and the writer may complete again', async (t) => {
    const n = await openNs(t, 'lmdb');
    await n.ns.mkdir('/b/dir', { parents: true });
    const f = await writing(n, '/tmp/upload-2');
    const c = {
      blocks: [{ blockId: f.blockId, length: 100 }],
      length: 100,
      xattrs: [{ name: 'user.s3.object', value: Buffer.from('meta') }],
    };
    await assert.rejects(
      n.ns.completeAs(f.id, f.leaseId, { ...c, renameTo: '/nobucket/k' }),
      hasCode('ENOENT'),
    );
    await assert.rejects(n.ns.completeAs(f.id, f.leaseId, { ...c, renameTo: '/b/dir' }), hasCode('EISDIR'));
    const still = await n.ns.getStatus('/tmp/upload-2');
    assert.equal(still.state, 'writing');
    assert.equal(still.size, 0);
    await assert.rejects(n.ns.getXattr('/tmp/upload-2', 'user.s3.object'), hasCode('ENODATA'));
    await consistent(n);
    const st = await n.ns.completeAs(f.id, f.leaseId, { ...c, renameTo: '/b/k' });
    assert.equal(st.path, '/b/k');
    assert.equal(st.size, 100);
    assert.equal((await n.ns.getXattr('/b/k', 'user.s3.object')).toString(), 'meta');
    await consistent(n);
  });

  test('without renameTo it completes in place with the attributes; bad input is refused up front', async (t) => {
    const n = await openNs(t, 'lmdb');
    const f = await writing(n, '/tmp/upload-3');
    await assert.rejects(
      n.ns.completeAs(f.id, f.leaseId, {
        blocks: [],
        length: 0,
        xattrs: [{ name: 'nonamespace', value: Buffer.alloc(1) }],
      }),
      hasCode('ENOTSUP'),
    );
    await assert.rejects(
      n.ns.completeAs(f.id, f.leaseId, { blocks: [{ blockId: f.blockId, length: 5 }], length: 6 }),
      hasCode('EINVAL'),
    );
    await assert.rejects(n.ns.completeAs(f.id, 'not-the-lease', { blocks: [], length: 0 }), hasCode('EBADF'));
    const st = await n.ns.completeAs(f.id, f.leaseId, {
      blocks: [{ blockId: f.blockId, length: 5 }],
      length: 5,
      xattrs: [{ name: 'user.a', value: Buffer.from('1') }],
    });
    assert.equal(st.path, '/tmp/upload-3');
    assert.equal(st.state, 'complete');
    assert.equal((await n.ns.getXattr('/tmp/upload-3', 'user.a')).toString(), '1');
    await consistent(n);
  });

  test('create with firstBlock allocates the first block in the same commit', async (t) => {
    const n = await openNs(t, 'lmdb');
    const a = await n.ns.create('/a', { firstBlock: true });
    assert.ok(a.firstBlockId !== undefined && a.firstBlockId > 0);
    const next = await n.ns.addBlock(a.status.id, a.leaseId);
    assert.notEqual(next.blockId, a.firstBlockId);
    const st = await n.ns.complete(
      a.status.id,
      a.leaseId,
      [
        { blockId: a.firstBlockId, length: 1024 * KiB },
        { blockId: next.blockId, length: 1 },
      ],
      1024 * KiB + 1,
    );
    assert.equal(st.size, 1024 * KiB + 1);
    const b = await n.ns.create('/b', { firstBlock: true });
    assert.ok(b.firstBlockId !== undefined);
    await n.ns.complete(b.status.id, b.leaseId, [], 0);
    assert.ok(n.removed.includes(b.firstBlockId), 'an unused first block is dropped at complete');
    const c = await n.ns.create('/c');
    assert.equal(c.firstBlockId, undefined);
    await consistent(n);
  });
});

/** A closed file at `path` whose blocks have these lengths (0 = a hole); returns its id and blocks. */
async function closed(
  t: TestNs,
  path: string,
  lengths: readonly number[],
): Promise<{ id: number; blocks: number[] }> {
  const { status, leaseId } = await t.ns.create(path, { parents: true });
  const blocks: { blockId: number; length: number }[] = [];
  for (const length of lengths) {
    blocks.push({ blockId: (await t.ns.addBlock(status.id, leaseId)).blockId, length });
  }
  await t.ns.complete(
    status.id,
    leaseId,
    blocks,
    lengths.reduce((a, b) => a + b, 0),
  );
  return { id: status.id, blocks: blocks.map((b) => b.blockId) };
}

describe('namespace completeAs with concat', () => {
  for (const engine of ['lmdb', 'memory-remote'] as const) {
    test(`appends closed files by moving their blocks, in one step (${engine})`, async (t) => {
      const n = await openNs(t, engine);
      const p1 = await closed(n, '/up/1', [5 * KiB]);
      const p2 = await closed(n, '/up/2', [3 * KiB, 2 * KiB]);
      const p3 = await closed(n, '/up/3', []);
      await n.ns.setXattr('/up/1', 'user.s3.part', Buffer.from('etag-1'));
      const before = (await n.ns.getStatus('/up')).children ?? 0;
      await n.ns.mkdir('/b');
      const target = await n.ns.create('/tmp/obj', { parents: true });
      const st = await n.ns.completeAs(target.status.id, target.leaseId, {
        blocks: [],
        length: 0,
        xattrs: [{ name: 'user.s3.object', value: Buffer.from('meta') }],
        renameTo: '/b/obj',
        concat: [
          { path: '/up/1', fileId: p1.id },
          { path: '/up/2', fileId: p2.id },
          { path: '/up/3', fileId: p3.id },
        ],
      });
      assert.equal(st.path, '/b/obj');
      assert.equal(st.size, 10 * KiB);
      assert.equal(st.state, 'complete');
      const got = await n.ns.getBlocks('/b/obj', 0);
      assert.deepEqual(
        got.blocks.map((b) => [b.blockId, b.offset, b.length]),
        [
          [p1.blocks[0], 0, 5 * KiB],
          [p2.blocks[0], 5 * KiB, 3 * KiB],
          [p2.blocks[1], 8 * KiB, 2 * KiB],
        ],
      );
      for (const p of ['/up/1', '/up/2', '/up/3'])
        await assert.rejects(n.ns.getStatus(p), hasCode('ENOENT'), `${p} is gone`);
      assert.equal((await n.ns.getStatus('/up')).children, before - 3);
      assert.deepEqual(n.removed, [], 'no block was dropped');
      const owners = await n.ns.blockOwners([...p1.blocks, ...p2.blocks]);
      assert.deepEqual(
        [...owners.values()].map((f) => f?.id),
        [st.id, st.id, st.id],
        'the blocks belong to the object now',
      );
      assert.equal((await n.ns.getXattr('/b/obj', 'user.s3.object')).toString(), 'meta');
      await consistent(n);
      // Deleting the object gives the moved blocks back.
      await n.ns.delete('/b/obj');
      assert.deepEqual([...n.removed].sort(), [...p1.blocks, ...p2.blocks].sort());
      await consistent(n);
    });
  }

  test('every refusal changes nothing', async (t) => {
    const n = await openNs(t, 'lmdb');
    const p1 = await closed(n, '/up/1', [KiB]);
    const p2 = await closed(n, '/up/2', [2 * KiB]);
    const open = await n.ns.create('/up/open');
    await n.ns.mkdir('/up/dir');
    const linked = await closed(n, '/up/linked', [KiB]);
    await n.ns.link('/up/linked', '/up/linked-2');
    const target = await n.ns.create('/tmp/obj', { parents: true });
    const tryConcat = (concat: { path: string; fileId: number }[]): Promise<unknown> =>
      n.ns.completeAs(target.status.id, target.leaseId, { blocks: [], length: 0, renameTo: '/obj', concat });
    const ok = { path: '/up/1', fileId: p1.id };
    await assert.rejects(tryConcat([ok, { path: '/up/2', fileId: linked.id }]), hasCode('ESTALE'));
    await assert.rejects(tryConcat([ok, { path: '/up/none', fileId: p2.id }]), hasCode('ESTALE'));
    await assert.rejects(tryConcat([ok, { path: '/nodir/x', fileId: p2.id }]), hasCode('ESTALE'));
    await assert.rejects(tryConcat([ok, ok]), hasCode('EINVAL'));
    await assert.rejects(tryConcat([{ path: '/tmp/obj', fileId: target.status.id }]), hasCode('EINVAL'));
    await assert.rejects(tryConcat([ok, { path: '/up/open', fileId: open.status.id }]), hasCode('EBUSY'));
    const dirId = (await n.ns.getStatus('/up/dir')).id;
    await assert.rejects(tryConcat([ok, { path: '/up/dir', fileId: dirId }]), hasCode('EISDIR'));
    await assert.rejects(tryConcat([ok, { path: '/up/linked', fileId: linked.id }]), hasCode('EMLINK'));
    // Nothing moved: the sources keep their blocks, the target is still open and empty.
    assert.deepEqual(
      (await n.ns.getBlocks('/up/1', 0)).blocks.map((b) => b.blockId),
      p1.blocks,
    );
    assert.deepEqual(
      (await n.ns.getBlocks('/up/2', 0)).blocks.map((b) => b.blockId),
      p2.blocks,
    );
    const still = await n.ns.getStatus('/tmp/obj');
    assert.equal(still.state, 'writing');
    await assert.rejects(n.ns.getStatus('/obj'), hasCode('ENOENT'));
    assert.deepEqual(n.removed, []);
    await consistent(n);
    // And the writer may still complete.
    const st = await tryConcat([ok, { path: '/up/2', fileId: p2.id }]);
    assert.equal((st as { size: number }).size, 3 * KiB);
    await consistent(n);
  });

  test('a source with bigger blocks raises the block size of the file', async (t) => {
    const n = await openNs(t, 'lmdb');
    const { status, leaseId } = await n.ns.create('/up/big', { parents: true, blockSize: 4 * 1024 * KiB });
    const b = await n.ns.addBlock(status.id, leaseId);
    await n.ns.complete(status.id, leaseId, [{ blockId: b.blockId, length: 3 * 1024 * KiB }], 3 * 1024 * KiB);
    const target = await n.ns.create('/obj');
    const st = await n.ns.completeAs(target.status.id, target.leaseId, {
      blocks: [],
      length: 0,
      concat: [{ path: '/up/big', fileId: status.id }],
    });
    assert.equal(st.size, 3 * 1024 * KiB);
    assert.equal(st.blockSize, 4 * 1024 * KiB);
    await consistent(n);
  });
});
