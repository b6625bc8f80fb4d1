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
