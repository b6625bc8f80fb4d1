// `strata fs`, `report` and `node` end to end: the compiled CLI against a MiniCluster, checking
// output, files on both sides, POSIX errors in words and exit codes (docs/cli.md).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { STRATA_BIN, run, runStrata } from '../helpers/process.js';
import type { RunResult } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('strata fs, report and node against a cluster', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 2, clientToml: 'block_size = "1MB"\n' });
  const dir = tempDir(t, 'strata-cli-');
  const env = { ...process.env, STRATA_CONF_FILE: cluster.clientConfPath };
  const strata = (args: string[], input?: Buffer | string): Promise<RunResult> =>
    runStrata(args, { env, cwd: dir, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });
  const ok = async (args: string[], input?: Buffer | string): Promise<RunResult> => {
    const r = await strata(args, input);
    assert.equal(r.code, 0, `strata ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`);
    return r;
  };

  // mkdir, put (file, into a directory, stdin), ls, cat, get.
  await ok(['fs', 'mkdir', '-p', '/data/sub']);
  await ok(['fs', 'mkdir', '-p', '/data/sub']);
  const big = randomBytes(5 * 1024 * 1024 + 123);
  writeFileSync(join(dir, 'big.bin'), big);
  writeFileSync(join(dir, 'small.txt'), 'hello strata\n');
  await ok(['fs', 'put', 'big.bin', '/data/big.bin']);
  await ok(['fs', 'put', 'small.txt', '/data/sub/']);
  await ok(['fs', 'put', '-', '/data/stdin.txt'], 'from stdin\n');
  assert.equal(
    (await ok(['fs', 'cat', '/data/sub/small.txt', '/data/stdin.txt'])).stdout,
    'hello strata\nfrom stdin\n',
  );
  assert.deepEqual((await ok(['fs', 'ls', '/data'])).stdout.split('\n').filter(Boolean), [
    'big.bin',
    'stdin.txt',
    'sub',
  ]);
  const long = (await ok(['fs', 'ls', '-l', '/data'])).stdout;
  assert.match(
    long,
    new RegExp(
      `^-rw-r--r--\\s+1\\s+\\S+\\s+\\S+\\s+${big.length}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+big\\.bin$`,
      'm',
    ),
  );
  assert.match(long, /^drwx\S+\s+1\s+.*\ssub$/m);
  assert.match((await ok(['fs', 'ls', '-l', '-h', '/data'])).stdout, /5\.00MiB\s+\S+ \S+\s+big\.bin/);
  const rec = (await ok(['fs', 'ls', '-R', '/data'])).stdout;
  assert.match(rec, /^\/data:\nbig\.bin\nstdin\.txt\nsub\n\n\/data\/sub:\nsmall\.txt\n$/);
  await ok(['fs', 'get', '/data/big.bin', join(dir, 'back.bin')]);
  assert.equal(sha(readFileSync(join(dir, 'back.bin'))), sha(big));
  mkdirSync(join(dir, 'out'));
  await ok(['fs', 'get', '/data', join(dir, 'out')]);
  assert.equal(readFileSync(join(dir, 'out', 'data', 'sub', 'small.txt'), 'utf8'), 'hello strata\n');
  const exists = await strata(['fs', 'get', '/data/big.bin', join(dir, 'back.bin')]);
  assert.equal(exists.code, 1);
  assert.match(exists.stderr, /back\.bin: file exists \(local destination; -f overwrites\)/);
  // put of an existing file needs -f.
  const again = await strata(['fs', 'put', 'small.txt', '/data/sub/small.txt']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^strata: fs put \/data\/sub\/small\.txt: file exists/m);
  await ok(['fs', 'put', '-f', 'small.txt', '/data/sub/small.txt']);

  // JSON output.
  const st = JSON.parse((await ok(['--json', 'fs', 'stat', '/data/big.bin'])).stdout) as {
    size: number;
    type: string;
    blockSize: number;
  };
  assert.equal(st.size, big.length);
  assert.equal(st.type, 'file');
  assert.equal(st.blockSize, 1024 * 1024);
  const listed = JSON.parse((await ok(['--json', 'fs', 'ls', '-R', '/data'])).stdout) as { path: string }[];
  assert.deepEqual(listed.map((e) => e.path).sort(), [
    '/data/big.bin',
    '/data/stdin.txt',
    '/data/sub',
    '/data/sub/small.txt',
  ]);
  assert.match(
    (await ok(['fs', 'stat', '/data/big.bin'])).stdout,
    new RegExp(`^\\s+size: ${big.length}$`, 'm'),
  );

  // count, du, df, blocks.
  assert.match(
    (await ok(['fs', 'count', '/data'])).stdout,
    new RegExp(`^\\s*2\\s+3\\s+${big.length + 13 + 11}\\s+/data$`, 'm'),
  );
  const du = (await ok(['fs', 'du', '/data'])).stdout;
  assert.match(du, new RegExp(`^\\s*${big.length}\\s+\\d+\\s+/data/big\\.bin$`, 'm'));
  assert.match(du, /^\s*13\s+\d+\s+\/data\/sub$/m);
  assert.match((await ok(['fs', 'du', '-s', '-h', '/data'])).stdout, /^5\.00MiB\s+\S+\s+\/data$/m);
  assert.match((await ok(['fs', 'df', '-h'])).stdout, /^total\s+\S+\s+\S+\s+\S+\s+\d+%$/m);
  const blocks = (await ok(['fs', 'blocks', '/data/big.bin'])).stdout;
  assert.equal(blocks.split('\n').filter((l) => /^\d+\s/.test(l)).length, 6, blocks);
  assert.match(blocks, /127\.0\.0\.1:\d+/);

  // touch, mv, chmod, chown, rm.
  await ok(['fs', 'touch', '/data/empty']);
  assert.equal((await ok(['fs', 'cat', '/data/empty'])).stdout, '');
  await ok(['fs', 'mv', '/data/empty', '/data/sub']);
  await ok(['fs', 'chmod', '600', '/data/sub/empty']);
  await ok(['fs', 'chmod', '-R', 'g+w', '/data/sub']);
  assert.match((await ok(['fs', 'ls', '-l', '/data/sub'])).stdout, /^-rw--w----\s.*\sempty$/m);
  await ok(['fs', 'chown', '1234:2345', '/data/sub/empty']);
  const owned = JSON.parse((await ok(['--json', 'fs', 'stat', '/data/sub/empty'])).stdout) as {
    uid: number;
    gid: number;
  };
  assert.deepEqual([owned.uid, owned.gid], [1234, 2345]);

  // Errors in words with their exit codes.
  const missing = await strata(['fs', 'rm', '/nope']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'strata: fs rm /nope: no such file or directory\n');
  const isDir = await strata(['fs', 'rm', '/data/sub']);
  assert.equal(isDir.code, 1);
  assert.match(isDir.stderr, /^strata: fs rm \/data\/sub: is a directory \(use -r to remove a directory\)$/m);
  const exist = await strata(['fs', 'mkdir', '/data']);
  assert.equal(exist.code, 1);
  assert.equal(exist.stderr, 'strata: fs mkdir /data: file exists\n');
  const partial = await strata(['fs', 'rm', '/data/stdin.txt', '/nope2']);
  assert.equal(partial.code, 4, partial.stderr);
  assert.match(partial.stderr, /\/nope2: no such file or directory/);
  assert.equal((await strata(['fs', 'stat', '/data/stdin.txt'])).code, 1);
  const catDir = await strata(['fs', 'cat', '/data']);
  assert.equal(catDir.code, 1);
  assert.match(catDir.stderr, /is a directory/);
  const free = await strata(['fs', 'free', '/data/big.bin']);
  assert.equal(free.code, 1);
  assert.match(free.stderr, /needs a UFS mount/);
  await ok(['fs', 'rm', '-r', '/data/sub']);
  assert.ok(!(await ok(['fs', 'ls', '/data'])).stdout.includes('sub'));
  assert.equal((await ok(['fs', 'rm', '-f', '/never'])).stderr, '');

  // report and node.
  const report = (await ok(['report'])).stdout;
  assert.match(report, /workers: 2 live, 0 blacklisted, 0 lost/);
  assert.match(report, /capacity: /);
  const cap = (await ok(['report', 'capacity'])).stdout;
  assert.equal(cap.split('\n').filter((l) => /^127\.0\.0\.1:\d+\s+live/.test(l)).length, 2, cap);
  const rj = JSON.parse((await ok(['report', 'json'])).stdout) as {
    cluster: { workers: { live: number } };
    workers: unknown[];
  };
  assert.equal(rj.cluster.workers.live, 2);
  assert.equal(rj.workers.length, 2);
  const nodes = (await ok(['node', '--list'])).stdout;
  assert.equal(nodes.split('\n').filter((l) => /^127\.0\.0\.1:\d+\s/.test(l)).length, 2, nodes);
  assert.ok(existsSync(dir));
});

test('strata fs cat into a closed pipe stops quietly', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 1 });
  const dir = tempDir(t, 'strata-cli-');
  writeFileSync(join(dir, 'f'), randomBytes(20 * 1024 * 1024));
  const env = { ...process.env, STRATA_CONF_FILE: cluster.clientConfPath };
  const put = await runStrata(['fs', 'put', join(dir, 'f'), '/f'], { env, timeoutMs: 60_000 });
  assert.equal(put.code, 0, put.stderr);
  const r = await run(
    'bash',
    [
      '-c',
      `"${process.execPath}" "${STRATA_BIN}" fs cat /f | head -c 100 > /dev/null; echo "status=\${PIPESTATUS[0]}"`,
    ],
    { env, timeoutMs: 60_000 },
  );
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), 'status=0', r.stderr);
  assert.equal(r.stderr, '');
});
