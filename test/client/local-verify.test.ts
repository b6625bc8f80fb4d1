// Verified short-circuit reads (src/client/local-verify.ts): reads of a block file check the
// chunks they touch against its checksum table, whatever the range's alignment; a flipped byte
// or a damaged trailer is an error, never bytes. Through a real cluster: a block file damaged on
// a worker's disk is not served to a client on the same machine. The client reads the block
// through the worker instead, which finds the damage, drops its copy, and the read completes
// from the other replica (or fails with STRATA_BLOCK_CORRUPT when there is none).
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, readdirSync, writeSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileSystem } from '../../src/client/index.js';
import type { ClientSettings } from '../../src/client/index.js';
import {
  LocalCopyCorruptError,
  mustVerify,
  readChecksumTable,
  readVerified,
  readVerifiedSync,
} from '../../src/client/local-verify.js';
import { loadConfig } from '../../src/common/config/index.js';
import { CHUNK_SIZE_BYTES, ChunkChecksummer, encodeTrailer } from '../../src/protocol/block-format.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { runStrata } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const C = CHUNK_SIZE_BYTES;

/** A block file as a worker writes it: data, checksum table, footer. */
function blockFile(data: Buffer): Buffer {
  const sums = new ChunkChecksummer(data.length);
  sums.update(data);
  return Buffer.concat([data, encodeTrailer(data.length, sums.finish())]);
}

function flip(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = (b[0] as number) ^ 0x5a;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

test('verified reads: every alignment gives the file bytes; a damaged chunk or trailer is an error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-local-verify-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const data = randomBytes(3 * C + 1000);
  const path = join(dir, '1.blk');
  await writeFile(path, blockFile(data));
  const fh = await open(path, 'r');
  t.after(() => fh.close());
  const file = { blockId: 1, lengthBytes: data.length, table: await readChecksumTable(fh, 1, data.length) };

  const ranges: [number, number][] = [
    [0, data.length], // whole block, short last chunk
    [0, C], // one whole chunk
    [10, 20], // inside one chunk
    [C - 5, 10], // across a chunk boundary
    [C, 2 * C], // whole chunks in the middle
    [100, 2 * C], // partial head, whole middle, partial tail
    [3 * C, 1000], // the short last chunk alone
    [3 * C + 999, 1], // its last byte
    [2 * C + 7, 5000], // partial last-but-one into the last
    [data.length - 10, 100], // past the end: stops at the data's end
  ];
  for (const [off, len] of ranges) {
    const want = data.subarray(off, Math.min(off + len, data.length));
    const a = Buffer.alloc(len + 8, 0xee);
    assert.equal(await readVerified(fh, file, a, 4, off, len), want.length, `async ${off}+${len}`);
    assert.deepEqual(a.subarray(4, 4 + want.length), want, `async bytes ${off}+${len}`);
    assert.equal(a[3], 0xee, 'nothing written before the target offset');
    const s = Buffer.alloc(len + 8, 0xee);
    assert.equal(readVerifiedSync(fh.fd, file, s, 4, off, len), want.length, `sync ${off}+${len}`);
    assert.deepEqual(s.subarray(4, 4 + want.length), want, `sync bytes ${off}+${len}`);
  }

  // One flipped byte in chunk 1: reads touching chunk 1 fail, the others still work.
  flip(path, C + 1234);
  for (const [off, len] of [
    [C + 1234, 1],
    [0, 2 * C],
    [C - 1, 2],
    [2 * C - 1, 1],
  ] as const) {
    await assert.rejects(
      readVerified(fh, file, Buffer.alloc(len), 0, off, len),
      (err: unknown) =>
        err instanceof LocalCopyCorruptError &&
        err.code === 'STRATA_BLOCK_CORRUPT' &&
        /checksum mismatch in chunk 1/.test(err.message),
      `async ${off}+${len}`,
    );
    assert.throws(() => readVerifiedSync(fh.fd, file, Buffer.alloc(len), 0, off, len), LocalCopyCorruptError);
  }
  const ok = Buffer.alloc(C);
  assert.equal(await readVerified(fh, file, ok, 0, 2 * C, C), C);
  assert.deepEqual(ok, data.subarray(2 * C, 3 * C));

  // A damaged trailer: the table is refused.
  flip(path, data.length + 2);
  await assert.rejects(
    readChecksumTable(fh, 1, data.length),
    /block 1: the local copy is corrupt \(checksum table is damaged\)/,
  );
  await assert.rejects(readChecksumTable(fh, 1, data.length + 1), LocalCopyCorruptError);
});

test('which tiers are verified: disk (default) all but MEM, all, none', () => {
  assert.equal(mustVerify('disk', 'MEM'), false);
  for (const t of ['SSD', 'HDD', 'DISK', 'NVME'] as const) assert.equal(mustVerify('disk', t), true);
  assert.equal(mustVerify('all', 'MEM'), true);
  assert.equal(mustVerify('none', 'SSD'), false);
});

/** Block files of a MiniCluster worker. */
function blockFiles(cluster: MiniCluster, worker: number): string[] {
  const dir = join(cluster.workers[worker]?.dir ?? '', 'data', cluster.clusterId, 'active');
  return existsSync(dir) ? readdirSync(dir).map((n) => join(dir, n)) : [];
}

function client(
  t: { after: (fn: () => Promise<void>) => void },
  cluster: MiniCluster,
  s: Partial<ClientSettings>,
): FileSystem {
  const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
  const fs = FileSystem.create({ config, settings: s });
  t.after(() => fs.close());
  return fs;
}

test('a block file damaged on disk is not served short-circuit: the other replica answers, the bad copy is dropped', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 2 });
  const fs = client(t, cluster, { blockSizeBytes: MiB, replicas: 2, shortCircuit: true });
  const data = randomBytes(4 * MiB);
  await fs.writeFile('/v/file', data, { parents: true });
  const damaged = blockFiles(cluster, 0);
  assert.equal(damaged.length, 4);
  for (const f of damaged) flip(f, 300_000);

  // A new client, so that no block file is open yet; each way of reading.
  for (const how of ['readFile', 'stream', 'pread'] as const) {
    const reader = client(t, cluster, { shortCircuit: true });
    let got: Buffer;
    if (how === 'readFile') got = await reader.readFile('/v/file');
    else if (how === 'stream') {
      const parts: Buffer[] = [];
      for await (const c of reader.createReadStream('/v/file')) parts.push(c as Buffer);
      got = Buffer.concat(parts);
    } else {
      const r = await reader.open('/v/file');
      got = Buffer.alloc(data.length);
      // Unaligned pieces, several per chunk.
      for (let at = 0; at < data.length; at += 100_003) {
        assert.equal(
          await r.read(got, at, at, Math.min(100_003, data.length - at)),
          Math.min(100_003, data.length - at),
        );
      }
      await r.close();
    }
    assert.ok(got.equals(data), `${how}: the file's own bytes`);
  }
  // Every block was read from worker 0 first at least once (the order spreads by block id, and
  // each replica came first for some blocks): the worker found those copies bad and dropped them.
  await waitFor('the damaged copies dropped', () => blockFiles(cluster, 0).length < 4, 20_000);
  for (const f of blockFiles(cluster, 0)) assert.ok(damaged.includes(f));
});

test('the only copy damaged: STRATA_BLOCK_CORRUPT, not its bytes; with local_read_verify = none the bytes come through', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 1 });
  const fs = client(t, cluster, { blockSizeBytes: MiB, shortCircuit: true });
  const data = randomBytes(2 * MiB);
  await fs.writeFile('/v/one', data, { parents: true });
  const files = blockFiles(cluster, 0);
  assert.equal(files.length, 2);
  for (const f of files) flip(f, 70_000);

  const unchecked = client(t, cluster, { shortCircuit: true, localReadVerify: 'none' });
  const raw = await unchecked.readFile('/v/one');
  assert.equal(raw.length, data.length);
  assert.ok(!raw.equals(data), 'without checks the damaged bytes are what a reader gets');

  const reader = client(t, cluster, { shortCircuit: true });
  const corrupt = (err: unknown): boolean => {
    assert.match(String((err as Error).message), /input\/output error .*corrupt/);
    return true;
  };
  await assert.rejects(reader.readFile('/v/one'), corrupt);
  // Each block on its own, reading its damaged chunk (the whole-file read stops at its first
  // error, having maybe read ahead into the second block): an error either way, corrupt while
  // the worker's answer is the news, "no copy" once its heartbeat told the master.
  const gone = /input\/output error .*(corrupt|no copy is known to the master)/;
  for (const at of [0, MiB + 69_990]) {
    const r = await reader.open('/v/one');
    await assert.rejects(r.read(Buffer.alloc(1000), at), gone);
    await r.close();
  }
  await waitFor('the damaged copies dropped', () => blockFiles(cluster, 0).length === 0, 20_000);
  // Asked again: an error, never the bad bytes; the CLI prints it (it once exited silently with
  // code 13 while its read waited between retries on an unref'd timer).
  await assert.rejects(reader.readFile('/v/one'), gone);
  const cli = await runStrata(['--conf', cluster.clientConfPath, 'fs', 'cat', '/v/one'], {
    timeoutMs: 60_000,
  });
  assert.equal(cli.code, 1, cli.stderr);
  assert.match(cli.stderr, /^strata: fs cat \/v\/one: input\/output error \(block \d+: /);
  assert.equal(cli.stdout, '', 'no byte of the file');
});
