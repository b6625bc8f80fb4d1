// POSIX behaviour of the mount (root and a non-root user via setpriv): the errno of each failure
// case, O_EXCL and O_APPEND, rename over an existing target, hard and symbolic links, chmod/chown/
// utimens, xattrs, truncate; every answer checked against what a local file system says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import {
  appendFile,
  link,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { Registry } from '../../src/common/metrics.js';
import { requireTools } from '../helpers/ci.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { FUSE_BINDING_UNDER_TEST, FUSE_TOOLS, TEST_CLUSTER, mountFuse, sh, shOk } from './fuse-helper.js';

const skip = requireTools(...FUSE_TOOLS, 'setpriv', 'setfattr', 'getfattr', 'truncate');

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** Runs a shell command as nobody:nogroup with no supplementary groups. */
function asNobody(script: string, cwd: string) {
  return sh(`setpriv --reuid=65534 --regid=65534 --clear-groups bash -c ${JSON.stringify(script)}`, cwd);
}

test('errnos, permissions and attributes through the mount', { skip, timeout: 150_000 }, async (t) => {
  const cluster = await MiniCluster.start(t, TEST_CLUSTER);
  const m = await mountFuse(t, cluster);
  const p = (name: string): string => join(m.mnt, name);

  await t.test('tar x keeps every mode, owner and mtime (set on open files, then closed)', async () => {
    // tar sets each file's times, owner and mode on its open descriptor before closing it: the
    // close must keep them (the commit stamps a new mtime unless it carries the one set).
    const src = await mkdtemp(join(tmpdir(), 'strata-tar-src-'));
    t.after(() => rm(src, { recursive: true, force: true }));
    await shOk(
      'mkdir -p a/b && printf one > a/one && printf twotwo > a/b/two && : > a/empty && ' +
        'chmod 0640 a/one && chmod 0751 a/b && chmod 0600 a/empty && chown 65534:65534 a/b/two && ' +
        'touch -m -d "2021-03-04 05:06:07.25" a/one && touch -m -d "2019-01-02 03:04:05" a/b/two a/empty a/b && ' +
        'tar -cf ../t.tar a',
      src,
    );
    // fuse-native loses mtimes (libfuse 2 passes the atime twice to utimens: docs/fuse.md).
    const keepsMtime = FUSE_BINDING_UNDER_TEST === undefined || FUSE_BINDING_UNDER_TEST === 'kernel';
    await mkdir(p('untar'));
    await shOk(`tar -xpf ${JSON.stringify(join(src, '..', 't.tar'))}`, p('untar'));
    for (const rel of ['a/one', 'a/b/two', 'a/empty', 'a/b']) {
      const want = await stat(join(src, rel));
      const got = await stat(p(`untar/${rel}`));
      assert.equal(got.mode.toString(8), want.mode.toString(8), `${rel} mode`);
      assert.equal(`${got.uid}:${got.gid}`, `${want.uid}:${want.gid}`, `${rel} owner`);
      if (keepsMtime)
        assert.equal(Math.floor(got.mtimeMs / 1000), Math.floor(want.mtimeMs / 1000), `${rel} mtime`);
      if (want.isFile()) assert.equal(got.size, want.size, `${rel} size`);
    }
    assert.equal(await readFile(p('untar/a/b/two'), 'utf8'), 'twotwo');
    // What another client sees (after the close), not only this mount's view.
    const fs = FileSystem.create({
      config: loadConfig({ path: cluster.clientConfPath, env: {} }).config,
      registry: new Registry(),
    });
    t.after(() => fs.close());
    const one = await fs.stat('/untar/a/one');
    if (keepsMtime)
      assert.equal(Math.floor(one.mtimeMs / 1000), Math.floor(Date.parse('2021-03-04T05:06:07Z') / 1000));
    assert.equal(one.mode, 0o640);
  });

  await t.test('errno of each failure case', async () => {
    await mkdir(p('d/sub'), { recursive: true });
    await writeFile(p('d/file'), 'x');
    assert.equal(await code(readFile(p('missing'))), 'ENOENT');
    assert.equal(await code(stat(p('d/missing/x'))), 'ENOENT');
    assert.equal(await code(unlink(p('missing'))), 'ENOENT');
    assert.equal(await code(mkdir(p('d'))), 'EEXIST');
    assert.equal(await code(writeFile(p('d/file'), 'y', { flag: 'wx' })), 'EEXIST');
    assert.equal(await code(symlink('t', p('d/file'))), 'EEXIST');
    assert.equal(await code(rmdir(p('d'))), 'ENOTEMPTY');
    assert.equal(
      await code(rename(p('d/sub'), p('d/sub2')).then(() => rename(p('d/sub2'), p('d/sub')))),
      'OK',
    );
    await writeFile(p('d/sub/inner'), 'z');
    await mkdir(p('other'));
    assert.equal(await code(rename(p('other'), p('d/sub'))), 'ENOTEMPTY');
    assert.equal(await code(writeFile(p('d'), 'x')), 'EISDIR');
    assert.equal(await code(unlink(p('d/sub'))), 'EISDIR');
    assert.equal(await code(rename(p('d/file'), p('d/sub'))), 'EISDIR');
    assert.equal(await code(mkdir(p('d/file/x'))), 'ENOTDIR');
    assert.equal(await code(readdir(p('d/file'))), 'ENOTDIR');
    assert.equal(await code(rmdir(p('d/file'))), 'ENOTDIR');
    assert.equal(await code(rename(p('other'), p('d/file'))), 'ENOTDIR');
    assert.equal(await code(rename(p('d'), p('d/sub/inside'))), 'EINVAL');
    assert.equal(await code(readFile(p('x'.repeat(256)))), 'ENAMETOOLONG');
  });

  await t.test('O_EXCL, O_APPEND, O_TRUNC, truncate and ftruncate', async () => {
    const f = p('flags.txt');
    await writeFile(f, 'one\n', { flag: 'wx' });
    await appendFile(f, 'two\n');
    await shOk('echo three >> flags.txt', m.mnt);
    assert.equal(await readFile(f, 'utf8'), 'one\ntwo\nthree\n');
    // Two appending descriptors open at once: both lines land at the end, none overwritten.
    const a = await open(f, 'a');
    const b = await open(f, 'a');
    await a.write('four\n');
    await b.write('five\n');
    await a.close();
    await b.close();
    assert.equal(await readFile(f, 'utf8'), 'one\ntwo\nthree\nfour\nfive\n');
    await truncate(f, 4);
    assert.equal(await readFile(f, 'utf8'), 'one\n');
    await truncate(f, 10);
    assert.deepEqual(await readFile(f), Buffer.concat([Buffer.from('one\n'), Buffer.alloc(6)]));
    const h = await open(f, 'r+');
    await h.truncate(2);
    await h.write('XY', 5);
    await h.close();
    assert.deepEqual(await readFile(f), Buffer.from('on\0\0\0XY'));
    await writeFile(f, 'new');
    assert.equal(await readFile(f, 'utf8'), 'new');
    assert.equal((await stat(f)).size, 3);
  });

  await t.test('two processes writing one file, each closing while the other writes', async () => {
    await writeFile(p('two.bin'), Buffer.alloc(64, '.'));
    // Writer A fills even offsets, B odd ones; every dd opens, writes, closes (commits).
    const writer = (parity: number, ch: string): string =>
      `for i in $(seq ${parity} 2 63); do printf ${ch} | dd of=two.bin bs=1 seek=$i conv=notrunc status=none || exit 1; done`;
    const [a, b] = await Promise.all([sh(writer(0, 'A'), m.mnt), sh(writer(1, 'B'), m.mnt)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(await readFile(p('two.bin'), 'utf8'), 'AB'.repeat(32));
  });

  await t.test('rename over an existing target, links, symlinks', async () => {
    await writeFile(p('src.txt'), 'source');
    await writeFile(p('dst.txt'), 'old target that is longer');
    await rename(p('src.txt'), p('dst.txt'));
    assert.equal(await readFile(p('dst.txt'), 'utf8'), 'source');
    assert.equal(await code(stat(p('src.txt'))), 'ENOENT');

    await link(p('dst.txt'), p('hard.txt'));
    const [s1, s2] = [await stat(p('dst.txt')), await stat(p('hard.txt'))];
    assert.equal(s1.ino, s2.ino);
    assert.equal(s2.nlink, 2);
    await unlink(p('dst.txt'));
    assert.equal(await readFile(p('hard.txt'), 'utf8'), 'source');

    await symlink('hard.txt', p('sym'));
    assert.equal(await readlink(p('sym')), 'hard.txt');
    assert.ok((await lstat(p('sym'))).isSymbolicLink());
    assert.equal(await readFile(p('sym'), 'utf8'), 'source');
  });

  await t.test('chmod, chown, utimens, xattrs', async () => {
    const f = p('attrs.txt');
    await writeFile(f, 'a');
    await shOk('chmod 640 attrs.txt && chown 1234:5678 attrs.txt', m.mnt);
    const st = await stat(f);
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 5678);
    assert.ok(((await stat(f)).mode & constants.S_IFMT) === constants.S_IFREG);
    await shOk('touch -d "2020-02-03 04:05:06 UTC" attrs.txt', m.mnt);
    assert.equal((await stat(f)).mtime.toISOString(), '2020-02-03T04:05:06.000Z');
    const before = Date.now();
    await shOk('touch attrs.txt', m.mnt);
    assert.ok((await stat(f)).mtimeMs >= before - 2000, 'touch sets the time to now');

    await shOk('setfattr -n user.color -v blue attrs.txt', m.mnt);
    assert.match(await shOk('getfattr -n user.color --only-values attrs.txt', m.mnt), /^blue$/);
    assert.match(await shOk('getfattr -d attrs.txt', m.mnt), /user\.color="blue"/);
    await shOk('setfattr -x user.color attrs.txt', m.mnt);
    const gone = await sh('getfattr -n user.color attrs.txt', m.mnt);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /No such attribute/);
  });

  await t.test('permissions of a non-root user', async () => {
    await mkdir(p('private'), { mode: 0o700 });
    await writeFile(p('private/secret'), 's');
    await writeFile(p('readonly.txt'), 'r', { mode: 0o644 });
    await writeFile(p('mine.txt'), 'm', { mode: 0o600 });
    await mkdir(p('shared'));
    await shOk('chmod 1777 shared', m.mnt);

    const denied = async (script: string, words = /Permission denied/): Promise<void> => {
      const r = await asNobody(script, m.mnt);
      assert.notEqual(r.code, 0, script);
      assert.match(r.stderr, words, `${script}: ${r.stderr}`);
    };
    await denied('cat private/secret');
    await denied('ls private');
    await denied('cat mine.txt');
    await denied('echo x >> readonly.txt');
    await denied('echo x > newfile');
    await denied('mkdir newdir');
    await denied('rm readonly.txt');
    // What nobody may do works.
    assert.equal((await asNobody('cat readonly.txt', m.mnt)).stdout, 'r');
    const ok = await asNobody(
      'echo hi > shared/n.txt && cat shared/n.txt && mkdir shared/dd && ls shared',
      m.mnt,
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'hi\ndd\nn.txt\n');
    // The sticky bit: nobody may not remove root's file in the shared directory (EPERM, as on Linux).
    await writeFile(p('shared/roots'), 'r');
    await denied('rm -f shared/roots', /Operation not permitted/);
  });
});

test('ENOSPC when the workers are full', { skip, timeout: 120_000 }, async (t) => {
  const cluster = await MiniCluster.start(t, {
    ...TEST_CLUSTER,
    workerTiers: () => ['[DISK:12MB]{dir}/data'],
  });
  const m = await mountFuse(t, cluster);
  const r = await sh('dd if=/dev/zero of=big bs=1M count=40 2>&1', m.mnt, 90_000);
  assert.notEqual(r.code, 0, r.stdout);
  assert.match(r.stdout, /No space left on device/);
  // The mount still serves afterwards.
  await shOk('echo fine > small && cat small', m.mnt);
});
