// Seed 000's checks on a real mount (root, MiniCluster + `strata fuse`): echo/cat, mkdir -p,
// ls -la, dd of 10 MiB and its size, fuse.strata in mountinfo, /metrics and /healthz, cp -r + diff -r.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTools } from '../helpers/ci.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { FUSE_TOOLS, TEST_CLUSTER, mountFuse, shOk } from './fuse-helper.js';

const skip = requireTools(...FUSE_TOOLS, 'dd', 'diff', 'cp');

test('seed 000 checks through the mount', { skip, timeout: 120_000 }, async (t) => {
  const cluster = await MiniCluster.start(t, TEST_CLUSTER);
  const m = await mountFuse(t, cluster);
  const cwd = m.mnt;

  await shOk('echo "Hello Strata!" > test1.txt', cwd);
  assert.equal(await shOk('cat test1.txt', cwd), 'Hello Strata!\n');

  await shOk('mkdir -p testdir && echo "Directory test" > testdir/file.txt', cwd);
  assert.equal(await shOk('cat testdir/file.txt', cwd), 'Directory test\n');
  await shOk('mkdir -p testdir/a/b/c', cwd);

  const ls = await shOk('ls -la', cwd);
  assert.match(ls, /^-rw-r--r-- +1 root root +14 .* test1\.txt$/m);
  assert.match(ls, /^drwxr-xr-x .* testdir$/m);
  assert.match(ls, / \.$/m);

  const dd = await shOk('dd if=/dev/zero of=bigfile.dat bs=1M count=10 2>&1', cwd);
  assert.match(dd, /10\+0 records in\n10\+0 records out\n10485760 bytes/);
  assert.match(await shOk('ls -lh bigfile.dat', cwd), /^-rw-r--r-- 1 root root 10M .* bigfile\.dat$/m);
  assert.equal(await shOk('stat -c %s bigfile.dat', cwd), '10485760\n');
  assert.equal(await shOk('cmp bigfile.dat <(head -c 10485760 /dev/zero) && echo same', cwd), 'same\n');

  // The mount as the kernel and the web port show it.
  const info = await shOk(`grep " ${m.mnt} " /proc/self/mountinfo`, '/');
  assert.match(info, / - fuse\.strata strata /);
  const health = await fetch(`http://127.0.0.1:${m.webPort}/healthz`);
  assert.equal(health.status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${m.webPort}/metrics`)).text();
  const sample = (name: string, ...labels: string[]): number => {
    const line = metrics
      .split('\n')
      .find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)));
    return Number(line?.split(' ').pop() ?? NaN);
  };
  assert.ok(sample('strata_fuse_requests_total', 'op="write"') > 0, metrics);
  assert.ok(sample('strata_fuse_bytes_total', 'op="write"') >= 10 * 1024 * 1024);
  assert.ok(sample('strata_fuse_bytes_total', 'op="read"') >= 10 * 1024 * 1024);
  assert.ok(sample('strata_fuse_errors_total', 'op="getattr"', 'errno="ENOENT"') > 0);
  assert.ok(sample('strata_fuse_request_seconds_count', 'op="read"') > 0);

  // df shows the cluster's capacity.
  const df = await shOk(`df -B1 --output=size,avail ${m.mnt} | tail -1`, '/');
  const [size, avail] = df.trim().split(/\s+/).map(Number);
  assert.ok((size ?? 0) > 0 && (avail ?? 0) > 0 && (avail ?? 0) <= (size ?? 0), df);
});

test('cp -r of a tree and diff -r with the source', { skip, timeout: 120_000 }, async (t) => {
  const cluster = await MiniCluster.start(t, TEST_CLUSTER);
  const m = await mountFuse(t, cluster);
  const src = join(tempDir(t, 'strata-fuse-src-'), 'tree');
  // A tree with empty files, small files, files around the 4 MiB block size, nested dirs, a symlink.
  const sizes = [0, 1, 4095, 4096, 131_072, 1_000_000, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9_000_000];
  for (let d = 0; d < 3; d++) {
    const dir = join(src, `d${d}`, `sub${d}`);
    mkdirSync(dir, { recursive: true });
    sizes.forEach((n, i) => {
      if ((i + d) % 2 === 0 || n < 200_000) writeFileSync(join(dir, `f${i}.bin`), randomBytes(n));
    });
  }
  await shOk('ln -s d0/sub0/f1.bin link', src);
  await shOk(`cp -r ${src} ${m.mnt}/copy`, '/', 120_000);
  await shOk(`diff -r ${src} ${m.mnt}/copy && echo same`, '/', 120_000);
  assert.equal(await shOk('readlink copy/link', m.mnt), 'd0/sub0/f1.bin\n');
  const count = await shOk('find copy -type f | wc -l', m.mnt);
  assert.equal(Number(count), Number(await shOk('find tree -type f | wc -l', join(src, '..'))));
});
