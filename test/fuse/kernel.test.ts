// What the kernel engine adds over fuse-native, on a real mount (root): entries created by a
// non-root caller are owned by that caller (and others get EACCES), atime and mtime are set
// apart and exactly, a 1 MiB write arrives as one request (/metrics request sizes), opcodes we
// do not implement answer ENOSYS and the mount keeps serving, and an unmount from outside ends
// the process (exit 1, no mount left), as does SIGTERM while another process holds a file open
// on the mount (exit 0: the detached session's connection is aborted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mountAt } from '../../src/fuse/mount-point.js';
import { requireTools } from '../helpers/ci.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { FUSE_TOOLS, TEST_CLUSTER, mountFuse, sh, shOk } from './fuse-helper.js';

const skip = requireTools(...FUSE_TOOLS, 'setpriv', 'touch', 'dd', 'fallocate');

/** Runs a shell command as uid:gid with no supplementary groups. */
function as(uid: number, script: string, cwd: string) {
  return sh(`setpriv --reuid=${uid} --regid=${uid} --clear-groups bash -c ${JSON.stringify(script)}`, cwd);
}

/** The value of the Prometheus sample `name` carrying all of `labels` (0 when absent). */
function sample(text: string, name: string, labels: string): number {
  const want = labels.split(',');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

test('the kernel engine: callers, times, 1 MiB requests, ENOSYS', { skip, timeout: 150_000 }, async (t) => {
  const cluster = await MiniCluster.start(t, TEST_CLUSTER);
  const m = await mountFuse(t, cluster, { binding: 'kernel' });
  const p = (name: string): string => join(m.mnt, name);
  assert.match(m.proc.stdout + m.proc.stderr, /"binding":"kernel"/);
  // Our mount(8) call, not libfuse's: max_read shows in the super-block options.
  const info = execFileSync('grep', [m.mnt, '/proc/self/mountinfo'], { encoding: 'utf8' });
  assert.match(info, /fuse\.strata strata rw,.*max_read=1048576/);

  await t.test('entries made by a non-root caller are owned by it; others get EACCES', async () => {
    await mkdir(p('shared'));
    await shOk('chmod 1777 shared', m.mnt);
    const made = await as(
      1000,
      'umask 022 && echo one > shared/u.txt && mkdir shared/ud && ln -s u.txt shared/ul && echo two >> shared/u.txt && cat shared/u.txt',
      m.mnt,
    );
    assert.equal(made.code, 0, made.stderr);
    assert.equal(made.stdout, 'one\ntwo\n', 'the creator reopens its own 0644 file for writing');
    for (const name of ['shared/u.txt', 'shared/ud']) {
      const st = await stat(p(name));
      assert.deepEqual([st.uid, st.gid], [1000, 1000], name);
    }
    assert.equal((await stat(p('shared/u.txt'))).mode & 0o777, 0o644);
    const link = await shOk('stat -c %u:%g shared/ul', m.mnt);
    assert.equal(link.trim(), '1000:1000');
    // Another user may read but not write it, nor change its mode.
    const other = await as(1001, 'cat shared/u.txt && echo x >> shared/u.txt', m.mnt);
    assert.equal(other.stdout, 'one\ntwo\n');
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /Permission denied/);
    const chmod = await as(1001, 'chmod 777 shared/u.txt', m.mnt);
    assert.match(chmod.stderr, /Operation not permitted/);
    // The owner may.
    assert.equal((await as(1000, 'chmod 600 shared/u.txt', m.mnt)).code, 0);
    assert.match((await as(1001, 'cat shared/u.txt', m.mnt)).stderr, /Permission denied/);
    assert.equal(await readFile(p('shared/u.txt'), 'utf8'), 'one\ntwo\n', 'root still reads it');
  });

  await t.test('touch -d, and atime and mtime set apart, exactly', async () => {
    await writeFile(p('times.txt'), 't');
    await shOk('touch -d "2020-02-03 04:05:06.789 UTC" times.txt', m.mnt);
    let st = await stat(p('times.txt'));
    assert.equal(st.mtime.toISOString(), '2020-02-03T04:05:06.789Z');
    assert.equal(st.atime.toISOString(), '2020-02-03T04:05:06.789Z');
    await shOk('touch -a -d "2001-01-01 00:00:01 UTC" times.txt', m.mnt);
    st = await stat(p('times.txt'));
    assert.equal(st.atime.toISOString(), '2001-01-01T00:00:01.000Z');
    assert.equal(st.mtime.toISOString(), '2020-02-03T04:05:06.789Z', 'touch -a keeps mtime');
    await shOk('touch -m -d "2019-05-06 07:08:09 UTC" times.txt', m.mnt);
    st = await stat(p('times.txt'));
    assert.equal(st.mtime.toISOString(), '2019-05-06T07:08:09.000Z');
    assert.equal(st.atime.toISOString(), '2001-01-01T00:00:01.000Z', 'touch -m keeps atime');
    // cp -p copies mtime (fuse-native set it to the source's atime).
    await shOk('cp -p times.txt copy.txt', m.mnt);
    assert.equal((await stat(p('copy.txt'))).mtime.toISOString(), '2019-05-06T07:08:09.000Z');
  });

  await t.test('a 1 MiB write(2) is one request', async () => {
    const metrics = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${m.webPort}/metrics`)).text();
    const before = await metrics();
    await shOk('dd if=/dev/urandom of=big.bin bs=1M count=8 status=none', m.mnt);
    const after = await metrics();
    const big = (text: string): number =>
      sample(text, 'strata_fuse_request_bytes_count', 'op="write"') -
      sample(text, 'strata_fuse_request_bytes_bucket', 'le="524288",op="write"');
    const writes =
      sample(after, 'strata_fuse_request_bytes_count', 'op="write"') -
      sample(before, 'strata_fuse_request_bytes_count', 'op="write"');
    const sizes = after
      .split('\n')
      .filter((l) => l.startsWith('strata_fuse_request_bytes'))
      .join('\n');
    assert.equal(big(after) - big(before), 8, `eight requests larger than 512 KiB:\n${sizes}`);
    assert.equal(writes, 8, 'and no others');
    assert.equal((await stat(p('big.bin'))).size, 8 * 1024 * 1024);
  });

  await t.test('an opcode we do not implement answers ENOSYS; the mount keeps serving', async () => {
    await writeFile(p('fa.bin'), 'x');
    // FUSE_FALLOCATE: the kernel turns our ENOSYS into EOPNOTSUPP.
    const r = await sh('fallocate -l 1M fa.bin', m.mnt);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not supported/i);
    assert.equal(await shOk('echo still > after.txt && cat after.txt', m.mnt), 'still\n');
  });
});

test('unmounting from outside ends the kernel engine process', { skip, timeout: 90_000 }, async (t) => {
  const cluster = await MiniCluster.start(t, TEST_CLUSTER);
  const m = await mountFuse(t, cluster, { binding: 'kernel' });
  await shOk('echo x > f && cat f', m.mnt);
  await shOk(`umount -l ${m.mnt}`, '/');
  await waitFor('strata fuse exits', () => m.proc.child.exitCode !== null, 20_000);
  assert.equal(m.proc.child.exitCode, 1);
  assert.match(m.proc.stdout + m.proc.stderr, /the mount disappeared: stopping/);
  assert.equal(await mountAt(m.mnt), undefined);
});

test(
  'SIGTERM while a process holds a file open on the mount: exit 0, no mount left',
  { skip, timeout: 90_000 },
  async (t) => {
    const cluster = await MiniCluster.start(t, TEST_CLUSTER);
    const m = await mountFuse(t, cluster, { binding: 'kernel' });
    await shOk('echo held > held.txt', m.mnt);
    // The holder keeps the detached mount busy: the kernel would keep the session (and our
    // reader thread blocked in read(2), which keeps Node from exiting) until it lets go.
    const holder = spawn('sh', ['-c', 'exec 3<held.txt; sleep 300'], { cwd: m.mnt, stdio: 'ignore' });
    t.after(() => holder.kill('SIGKILL'));
    await waitFor(
      'the holder has the file open',
      () => {
        try {
          return readdirSync(`/proc/${String(holder.pid)}/fd`).includes('3');
        } catch {
          return false;
        }
      },
      10_000,
    );
    assert.equal(await m.proc.stop('SIGTERM', 30_000), 0);
    assert.equal(await mountAt(m.mnt), undefined);
  },
);
