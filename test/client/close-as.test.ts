// FileWriter.close({ xattrs, renameTo }) against a real cluster (MiniCluster): the file appears under
// its new name whole, with its attributes, replacing a file; a refused rename leaves the writer open to close again or abort;
// placeFirstBlock gets the first block with the create (no AddBlock call) and gives it back unused; openWithXattr
// opens a file and reads one attribute in one call (GetBlockLocations with xattr).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import { FsError } from '../../src/common/errors.js';
import { loadConfig } from '../../src/common/config/index.js';
import { Registry } from '../../src/common/metrics.js';
import { MiniCluster } from '../helpers/mini-cluster.js';

const MiB = 1024 * 1024;

function hasCode(code: string): (err: unknown) => boolean {
  return (err) => err instanceof FsError && err.code === code;
}

test('close with attributes and a rename commits the file into place in one step', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 1 });
  const registry = new Registry();
  const fs = FileSystem.create({
    config: loadConfig({ path: cluster.clientConfPath, env: {} }).config,
    registry,
  });
  t.after(() => fs.close());
  await fs.mkdir('/tmp', { parents: true });
  await fs.writeFile('/bucket/key', 'the old object', { parents: true });

  // Replacing an existing file, with two attributes, across a block boundary.
  const data = randomBytes(2 * MiB + 123);
  const w = await fs.create('/tmp/u1', { blockSizeBytes: MiB });
  await w.write(data);
  const st = await w.close({
    xattrs: { 'user.s3.object': Buffer.from('{"etag":"e"}'), 'user.other': Buffer.from([0, 1, 2]) },
    renameTo: '/bucket/key',
  });
  assert.equal(st.path, '/bucket/key');
  assert.equal(st.size, data.length);
  assert.equal(await fs.exists('/tmp/u1'), undefined);
  assert.ok((await fs.readFile('/bucket/key')).equals(data));
  assert.equal((await fs.getXattr('/bucket/key', 'user.s3.object')).toString(), '{"etag":"e"}');
  assert.deepEqual([...(await fs.getXattr('/bucket/key', 'user.other'))], [0, 1, 2]);
  assert.equal((await w.close()).path, '/bucket/key', 'closing again returns the committed status');

  // A missing parent and a directory at the target: refused, nothing committed, close again works.
  await fs.mkdir('/bucket/dir');
  const w2 = await fs.create('/tmp/u2');
  await w2.write(Buffer.from('second'));
  await assert.rejects(w2.close({ renameTo: '/bucket/missing/k' }), hasCode('ENOENT'));
  await assert.rejects(w2.close({ renameTo: '/bucket/dir' }), hasCode('EISDIR'));
  await assert.rejects(w2.write(Buffer.from('more')), 'no writes after a close was asked for');
  assert.equal((await fs.stat('/tmp/u2')).state, 'writing');
  await fs.mkdir('/bucket/missing');
  const st2 = await w2.close({ renameTo: '/bucket/missing/k', xattrs: { 'user.a': Buffer.from('1') } });
  assert.equal(st2.path, '/bucket/missing/k');
  assert.equal((await fs.readFile('/bucket/missing/k')).toString(), 'second');
  assert.equal((await fs.getXattr('/bucket/missing/k', 'user.a')).toString(), '1');

  // A refused close then abort: the temp file goes, the target was never touched.
  const w3 = await fs.create('/tmp/u3');
  await w3.write(Buffer.from('third'));
  await assert.rejects(w3.close({ renameTo: '/nobucket/k' }), hasCode('ENOENT'));
  await w3.abort();
  assert.equal(await fs.exists('/tmp/u3'), undefined);
  assert.equal(await fs.exists('/nobucket'), undefined);

  // Attributes only: completed in place.
  const w4 = await fs.create('/tmp/u4');
  await w4.write(Buffer.from('fourth'));
  const st4 = await w4.close({ xattrs: { 'user.b': Buffer.from('2') } });
  assert.equal(st4.path, '/tmp/u4');
  assert.equal((await fs.getXattr('/tmp/u4', 'user.b')).toString(), '2');

  // The first block placed with the create: no AddBlock for a one-block file; unused, given back.
  const addBlocks = async (): Promise<number> => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'strata_client_master_calls_total');
    return (m?.values ?? [])
      .filter((v) => v.labels.call === 'master.addBlock')
      .reduce((a, v) => a + v.value, 0);
  };
  const before = await addBlocks();
  const small = randomBytes(300_000);
  const w5 = await fs.create('/tmp/u5', { placeFirstBlock: true, sizeHintBytes: small.length });
  await w5.write(small);
  await w5.close({ renameTo: '/bucket/small' });
  assert.ok((await fs.readFile('/bucket/small')).equals(small));
  assert.equal(await addBlocks(), before, 'the create placed the only block');
  const w6 = await fs.create('/tmp/u6', { placeFirstBlock: true, blockSizeBytes: MiB });
  await w6.write(data);
  await w6.close();
  assert.ok((await fs.readFile('/tmp/u6')).equals(data));
  assert.equal(await addBlocks(), before + 2, 'the later blocks are added as usual');
  const w7 = await fs.create('/tmp/u7', { placeFirstBlock: true });
  const st7 = await w7.close();
  assert.equal(st7.size, 0);
  assert.deepEqual((await fs.blockLocations('/tmp/u7')).blocks, [], 'an unused first block is given back');

  // Open and one attribute together: one master call instead of two.
  const opened = await fs.openWithXattr('/bucket/key', 'user.s3.object');
  assert.equal(opened.xattr?.toString(), '{"etag":"e"}');
  const back = Buffer.alloc(data.length);
  assert.equal(await opened.reader.read(back, 0), data.length);
  assert.ok(back.equals(data));
  await opened.reader.close();
  const plain = await fs.openWithXattr('/bucket/small', 'user.s3.object');
  assert.equal(plain.xattr, undefined);
  assert.equal(plain.reader.size, small.length);
  await plain.reader.close();
  await assert.rejects(fs.openWithXattr('/bucket/none', 'user.s3.object'), hasCode('ENOENT'));
  await assert.rejects(fs.openWithXattr('/bucket/dir', 'user.s3.object'), hasCode('EISDIR'));
});
