// The client's block logic against an in-process fake cluster (test/client/fake-cluster.ts):
// byte-exact round trips across block boundaries, the random-write handle against a local file
// doing the same operations (fast-check), replica failover on read and re-placement on write.
import { createHash, randomBytes } from 'node:crypto';
import { open as openLocal } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FileSystem } from '../../src/client/filesystem.js';
import type { ClientSettings } from '../../src/client/settings.js';
import { defaultConfig } from '../../src/common/config/index.js';
import { FsError } from '../../src/common/errors.js';
import { Registry } from '../../src/common/metrics.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeCluster } from './fake-cluster.js';

const BS = 64 * 1024;
const LOCAL_HOST = 'host-local';

interface Setup {
  cluster: FakeCluster;
  fs: FileSystem;
  registry: Registry;
}

function setup(
  t: Parameters<typeof tempDir>[0],
  opts: { workers?: number; localWorkers?: number; settings?: Partial<ClientSettings> } = {},
): Setup {
  const dir = tempDir(t, 'strata-fake-');
  const workers = opts.workers ?? 2;
  const localWorkers = opts.localWorkers ?? 0;
  const cluster = new FakeCluster(dir, workers, (i) => (i < localWorkers ? LOCAL_HOST : `host-${i}`));
  const registry = new Registry();
  const fs = FileSystem.create({
    config: defaultConfig(),
    connector: cluster,
    registry,
    caller: null,
    settings: {
      masterAddrs: [cluster.masterAddress],
      hostId: LOCAL_HOST,
      blockSizeBytes: BS,
      readChunkBytes: 16 * 1024,
      writeChunkBytes: 16 * 1024,
      readAheadBytes: 64 * 1024,
      spillDir: dir,
      ...opts.settings,
    },
  });
  t.after(() => fs.close());
  return { cluster, fs, registry };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function readAllStream(fs: FileSystem, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    fs.createReadStream(path),
    new Writable({
      write(chunk: Buffer, _e, cb): void {
        parts.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

async function metric(registry: Registry, name: string, label?: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const values = (m?.values ?? []) as { value: number; labels: Record<string, string> }[];
  return values
    .filter((v) => label === undefined || Object.values(v.labels).includes(label))
    .reduce((a, v) => a + v.value, 0);
}

const SIZES = [0, 1, BS - 1, BS, BS + 1, 3 * BS + 17];

for (const mode of [
  { name: 'remote, 1 replica', replicas: 1, localWorkers: 0 },
  { name: 'remote, 2 replicas', replicas: 2, localWorkers: 0 },
  { name: 'short-circuit, 2 replicas', replicas: 2, localWorkers: 1 },
]) {
  test(`round trips are byte-identical (${mode.name})`, async (t) => {
    const { fs, cluster, registry } = setup(t, {
      localWorkers: mode.localWorkers,
      settings: { replicas: mode.replicas },
    });
    for (const size of SIZES) {
      const data = randomBytes(size);
      // Through the async writer, in uneven pieces to cross block boundaries mid-write.
      const w = await fs.create(`/rt/${size}`, { parents: true });
      for (let at = 0; at < size;) {
        const n = Math.min(size - at, 1 + ((at * 7919) % 40_000));
        await w.write(data.subarray(at, at + n));
        at += n;
      }
      const st = await w.close();
      assert.equal(st.size, size);
      assert.equal(sha(await fs.readFile(`/rt/${size}`)), sha(data), `readFile ${size}`);
      assert.equal(sha(await readAllStream(fs, `/rt/${size}`)), sha(data), `stream ${size}`);
      // Positional reads at block edges.
      const r = await fs.open(`/rt/${size}`);
      for (const [pos, len] of [
        [0, 10],
        [BS - 3, 7],
        [size - 1, 5],
        [Math.floor(size / 2), BS + 5],
      ] as const) {
        if (pos < 0) continue;
        const buf = Buffer.alloc(len);
        const n = await r.read(buf, pos);
        const want = data.subarray(pos, Math.min(size, pos + len));
        assert.equal(n, want.length, `read(${pos}, ${len}) of ${size}`);
        assert.deepEqual(buf.subarray(0, n), want);
      }
      await r.close();
      const { blocks } = await fs.blockLocations(`/rt/${size}`);
      assert.equal(blocks.length, Math.ceil(size / BS), `block count of ${size}`);
      for (const b of blocks) assert.equal(b.workers.length, mode.replicas);
    }
    const local = await metric(registry, 'strata_client_read_bytes_total', 'local');
    const localWrites = await metric(registry, 'strata_client_write_bytes_total', 'local');
    if (mode.localWorkers > 0) {
      assert.ok(local > 0, 'short-circuit reads happened');
      assert.ok(localWrites > 0, 'short-circuit writes happened');
      assert.ok((cluster.workers[0]?.localReads ?? 0) > 0);
    } else {
      assert.equal(local, 0);
    }
  });
}

test('a Writable and a Readable stream a file through', async (t) => {
  const { fs } = setup(t);
  const data = randomBytes(5 * BS + 3);
  const ws = fs.createWriteStream('/s/file', { parents: true });
  await pipeline(Readable.from([data.subarray(0, 100), data.subarray(100)]), ws);
  assert.equal(ws.status?.size, data.length);
  assert.equal(sha(await readAllStream(fs, '/s/file')), sha(data));
  await assert.rejects(
    readAllStream(fs, '/s/missing'),
    (e: unknown) => e instanceof FsError && e.code === 'ENOENT',
  );
});

test('positional sequential reads use the read-ahead window and stay exact', async (t) => {
  const { fs } = setup(t, { settings: { readAheadBytes: 3 * BS } });
  const data = randomBytes(7 * BS + 123);
  await fs.writeFile('/seq', data);
  const r = await fs.open('/seq');
  const out = Buffer.alloc(data.length);
  for (let at = 0; at < data.length;) {
    const n = await r.read(out, at, at, Math.min(10_000, data.length - at));
    assert.ok(n > 0);
    at += n;
  }
  assert.equal(sha(out), sha(data));
  // A jump back still reads right.
  const buf = Buffer.alloc(50);
  await r.read(buf, 10);
  assert.deepEqual(buf, data.subarray(10, 60));
  await r.close();
});

test('a replica that dies mid-read is skipped and the read completes', async (t) => {
  const { fs, cluster, registry } = setup(t, { workers: 2, settings: { replicas: 2, readAheadBytes: 0 } });
  const data = randomBytes(4 * BS);
  await fs.writeFile('/r2', data);
  // Whichever replica is asked first fails after 20 KiB.
  for (const w of cluster.workers) w.failReadAfterBytes = 20 * 1024;
  const first = cluster.workers[0];
  assert.ok(first !== undefined);
  const second = cluster.workers[1];
  assert.ok(second !== undefined);
  second.failReadAfterBytes = undefined;
  first.failReadAfterBytes = 20 * 1024;
  assert.equal(sha(await readAllStream(fs, '/r2')), sha(data));
  assert.ok((await metric(registry, 'strata_client_worker_failovers_total', 'read')) > 0);
  // The failed worker is remembered: the next read does not try it first.
  first.down = false;
  first.failReadAfterBytes = undefined;
  const before = first.readBytes;
  assert.equal(sha(await fs.readFile('/r2')), sha(data));
  assert.equal(first.readBytes, before, 'the failed worker was avoided for failed_worker_ttl');
});

test('a worker that dies mid-write gets the block re-placed elsewhere (remote)', async (t) => {
  const { fs, cluster, registry } = setup(t, { workers: 3, settings: { replicas: 1 } });
  const bad = cluster.workers[0];
  assert.ok(bad !== undefined);
  bad.failWriteAfterBytes = BS / 2;
  const data = randomBytes(6 * BS + 5);
  await fs.writeFile('/w1', data);
  assert.equal(sha(await fs.readFile('/w1')), sha(data));
  assert.ok(bad.down, 'the worker failed as injected');
  assert.ok((await metric(registry, 'strata_client_block_replacements_total')) >= 1);
  const { blocks } = await fs.blockLocations('/w1');
  for (const b of blocks) assert.ok(!b.workers.some((w) => w.workerId === bad.address.workerId));
  assert.ok((cluster.calls.get('master.abandonBlock') ?? 0) >= 1);
});

test('large writes to a remote replica go out as views of the kept copy, and replay exactly after a failure', async (t) => {
  // Writes of 1 MiB or more skip the gathering buffer: they are copied into the block's kept
  // copy (pooled segments) and sent as views of it; a replica failing mid-block replays from it.
  const bigBlock = 4 * 1024 * 1024;
  const { fs, cluster, registry } = setup(t, {
    workers: 3,
    settings: { replicas: 1, blockSizeBytes: bigBlock },
  });
  const bad = cluster.workers[0];
  assert.ok(bad !== undefined);
  bad.failWriteAfterBytes = bigBlock / 2 + 12_345;
  const data = randomBytes(3 * bigBlock + 7);
  const w = await fs.create('/views');
  const piece = 1536 * 1024;
  for (let at = 0; at < data.length; at += piece) {
    const src = Buffer.from(data.subarray(at, at + piece));
    await w.write(src);
    src.fill(0); // the caller reuses its buffer at once: what was sent must not change
  }
  await w.close();
  assert.ok(bad.down, 'the worker failed as injected');
  assert.ok((await metric(registry, 'strata_client_block_replacements_total')) >= 1);
  assert.equal(sha(await fs.readFile('/views')), sha(data));
});

test('a block whose worker fails while finishing it (in the background) is re-placed', async (t) => {
  const { fs, cluster, registry } = setup(t, { workers: 2, settings: { replicas: 1 } });
  const w0 = cluster.workers[0];
  assert.ok(w0 !== undefined);
  w0.failAtWriteEnd = true;
  const data = randomBytes(5 * BS + 77);
  const w = await fs.create('/finish');
  for (let at = 0; at < data.length; at += 10_000) await w.write(data.subarray(at, at + 10_000));
  await w.close();
  assert.ok(w0.down, 'the injected failure fired');
  assert.ok((await metric(registry, 'strata_client_block_replacements_total')) >= 1);
  w0.down = false;
  assert.equal(sha(await fs.readFile('/finish')), sha(data));
  const { blocks } = await fs.blockLocations('/finish');
  assert.equal(blocks.length, 6);
});

test('a short-circuit replica whose worker dies before commit is replayed from the local file', async (t) => {
  const { fs, cluster } = setup(t, { workers: 2, localWorkers: 1, settings: { replicas: 1 } });
  const local = cluster.workers[0];
  assert.ok(local !== undefined);
  const data = randomBytes(2 * BS + 100);
  const w = await fs.create('/sc');
  await w.write(data.subarray(0, BS + 10));
  local.down = true; // dies with block 2 staged but not committed
  await w.write(data.subarray(BS + 10));
  await w.close();
  local.down = false;
  assert.equal(sha(await fs.readFile('/sc')), sha(data));
});

test('writers keep within the memory budget by spilling to a temp file', async (t) => {
  const { fs, registry } = setup(t, { settings: { memoryBudgetBytes: 8 * 1024, replicas: 1 } });
  const data = randomBytes(3 * BS);
  await fs.writeFile('/spill', data);
  assert.equal(sha(await fs.readFile('/spill')), sha(data));
  assert.ok((await metric(registry, 'strata_client_spilled_bytes_total')) > 0);
});

test('random-write handle matches a local file doing the same (overwrite, append, truncate, holes)', async (t) => {
  const { fs, cluster } = setup(t, { settings: { memoryBudgetBytes: 32 * 1024 } });
  const dir = tempDir(t, 'strata-model-');
  type Op = { kind: 'write'; pos: number; len: number; seed: number } | { kind: 'truncate'; len: number };
  const op = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('write' as const),
        pos: fc.integer({ min: 0, max: 6 * BS }),
        len: fc.integer({ min: 1, max: 2 * BS }),
        seed: fc.integer(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('truncate' as const),
        len: fc.integer({ min: 0, max: 7 * BS }),
      }),
    },
  );
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3 * BS }),
      fc.array(op, { minLength: 1, maxLength: 12 }),
      async (initial, ops: Op[]) => {
        run++;
        const path = `/model/${run}`;
        const localPath = join(dir, String(run));
        const start = randomBytes(initial);
        await fs.writeFile(path, start, { parents: true });
        const model = await openLocal(localPath, 'w+');
        try {
          await model.write(start, 0, start.length, 0);
          const h = await fs.openForWrite(path);
          for (const o of ops) {
            if (o.kind === 'write') {
              const buf = Buffer.alloc(o.len, o.seed & 0xff);
              if (buf.length >= 4) buf.writeInt32LE(o.seed | 0, 0);
              await h.pwrite(buf, o.pos);
              await model.write(buf, 0, buf.length, o.pos);
            } else {
              await h.truncate(o.len);
              await model.truncate(o.len);
            }
            assert.equal(h.size, (await model.stat()).size);
          }
          // Reads through the handle see the unflushed state.
          const size = (await model.stat()).size;
          const want = Buffer.alloc(size);
          await model.read(want, 0, size, 0);
          const seen = Buffer.alloc(size);
          assert.equal(await h.pread(seen, 0), size);
          assert.equal(sha(seen), sha(want), 'pread before close');
          const st = await h.close();
          assert.equal(st.size, size);
          assert.equal(sha(await fs.readFile(path)), sha(want), `after close: ${JSON.stringify(ops)}`);
        } finally {
          await model.close();
        }
      },
    ),
    { numRuns: 40, seed: Number(process.env.STRATA_TEST_SEED ?? 4242) },
  );
  // Blocks dropped or replaced by the handles were given back or deleted: nothing referenced is missing.
  for (const id of cluster.referencedBlocks()) {
    assert.ok(
      cluster.workers.some((w) => w.blocks.has(id)),
      `block ${id} is stored`,
    );
  }
});

test('random-write handle keeps untouched blocks and writes holes for gaps', async (t) => {
  const { fs, cluster } = setup(t);
  const data = randomBytes(4 * BS);
  await fs.writeFile('/cow', data);
  const before = (await fs.blockLocations('/cow')).blocks.map((b) => b.blockId);
  const h = await fs.openForWrite('/cow');
  await h.pwrite(Buffer.from('hello'), BS + 10); // block 1 only
  await h.pwrite(Buffer.from('tail'), 10 * BS); // far past the end: blocks 4..9 are holes
  await h.close();
  const after = (await fs.blockLocations('/cow')).blocks;
  const ids = after.map((b) => b.blockId);
  assert.equal(ids[0], before[0], 'block 0 untouched');
  assert.notEqual(ids[1], before[1], 'block 1 rewritten');
  assert.equal(ids[2], before[2]);
  assert.equal(ids[3], before[3]);
  // Holes are not located blocks: 4 data blocks + the tail block.
  assert.equal(after.length, 5);
  const st = await fs.stat('/cow');
  assert.equal(st.size, 10 * BS + 4);
  const all = await fs.readFile('/cow');
  assert.deepEqual(all.subarray(BS + 10, BS + 15), Buffer.from('hello'));
  assert.ok(all.subarray(4 * BS, 10 * BS).every((x) => x === 0));
  assert.deepEqual(all.subarray(10 * BS), Buffer.from('tail'));
  // The replaced block is gone from the workers.
  assert.ok(!cluster.workers.some((w) => w.blocks.has(before[1] as number)));
});

test('an aborted random-write handle leaves the file as it was', async (t) => {
  const { fs } = setup(t);
  const data = randomBytes(2 * BS);
  await fs.writeFile('/keep', data);
  const h = await fs.openForWrite('/keep');
  await h.pwrite(randomBytes(3 * BS), 0);
  await h.flush();
  await h.abort();
  assert.equal(sha(await fs.readFile('/keep')), sha(data));
});

test('namespace calls map to POSIX errors and paths are checked', async (t) => {
  const { fs } = setup(t);
  await fs.mkdir('/a/b', { parents: true });
  await fs.mkdir('/a/b', { parents: true });
  await assert.rejects(fs.mkdir('/a/b'), (e: unknown) => e instanceof FsError && e.code === 'EEXIST');
  await assert.rejects(fs.stat('/nope'), (e: unknown) => e instanceof FsError && e.code === 'ENOENT');
  await assert.rejects(fs.stat('relative'), (e: unknown) => e instanceof FsError && e.code === 'EINVAL');
  await assert.rejects(fs.stat('/a/../b'), (e: unknown) => e instanceof FsError && e.code === 'EINVAL');
  assert.equal((await fs.stat('//a///b/')).path, '/a/b');
  await fs.writeFile('/a/b/f', 'x');
  await assert.rejects(fs.delete('/a'), (e: unknown) => e instanceof FsError && e.code === 'ENOTEMPTY');
  await fs.setXattr('/a/b/f', 'user.k', Buffer.from([0, 1, 2]));
  assert.deepEqual(await fs.getXattr('/a/b/f', 'user.k'), Buffer.from([0, 1, 2]));
  assert.deepEqual(await fs.listXattr('/a/b/f'), ['user.k']);
  const names: string[] = [];
  for (let i = 0; i < 25; i++)
    await fs.writeFile(`/many/f${String(i).padStart(2, '0')}`, 'x', { parents: true });
  let pages = 0;
  for await (const page of fs.list('/many', { pageSize: 10 })) {
    pages++;
    names.push(...page.map((e) => e.name));
  }
  assert.equal(pages, 3);
  assert.equal(names.length, 25);
  assert.deepEqual(names, [...names].sort());
  await fs.rename('/a/b/f', '/a/g');
  assert.equal((await fs.contentSummary('/a')).files, 1);
  await fs.delete('/a', { recursive: true });
  assert.equal(await fs.exists('/a'), undefined);
});

test('a close that may write the file to a UFS gets complete_timeout, others rpc_timeout', async (t) => {
  const RPC_MS = 30_000;
  const COMPLETE_MS = 3_600_000;
  const { cluster, fs } = setup(t, { settings: { rpcTimeoutMs: RPC_MS, completeTimeoutMs: COMPLETE_MS } });
  cluster.throughPrefix = '/through/';
  const written = async (path: string): Promise<Awaited<ReturnType<FileSystem['create']>>> => {
    const w = await fs.create(path, { parents: true });
    await w.write(Buffer.from('some bytes'));
    return w;
  };
  // Budgets are what is left of them when the call goes out: a little under the setting.
  await (await written('/plain/f')).close();
  const plain = cluster.deadlines.get('master.complete');
  assert.ok(plain !== undefined && plain <= RPC_MS && plain > RPC_MS - 10_000, `plain close: ${plain}`);
  await (await written('/through/f')).close();
  const through = cluster.deadlines.get('master.complete');
  assert.ok(through !== undefined && through > COMPLETE_MS - 10_000, `through close: ${through}`);
  // Completed onto another name (the S3 gateway's temp files), which may be under a through
  // mount. The fake master has no CompleteAs: what counts is the deadline the call went out with.
  const w = await written('/tmp/x');
  await w.close({ renameTo: '/plain/x' }).catch(() => undefined);
  const renamed = cluster.deadlines.get('master.completeAs');
  assert.ok(renamed !== undefined && renamed > COMPLETE_MS - 10_000, `close onto a name: ${renamed}`);
  await w.abort();
  // A handle opened for writing a file under a through mount.
  const h = await fs.openForWrite('/through/f');
  await h.pwrite(Buffer.from('more'), 0);
  await h.close();
  const random = cluster.deadlines.get('master.complete');
  assert.ok(random !== undefined && random > COMPLETE_MS - 10_000, `random-write close: ${random}`);
});

test('an exclusive create (O_CREAT|O_EXCL) never opens a file another client made', async (t) => {
  const { fs } = setup(t);
  await fs.mkdir('/x');
  const first = await fs.openForWrite('/x/f', { create: true, exclusive: true });
  await first.pwrite(Buffer.from('first'), 0);
  await first.close();
  // A second creator that looked before the first made the name: the master refuses it.
  await assert.rejects(
    fs.openForWrite('/x/f', { create: true, exclusive: true }),
    (err: unknown) => err instanceof FsError && err.code === 'EEXIST',
  );
  assert.equal((await fs.readFile('/x/f')).toString(), 'first');
  // Without O_EXCL, O_CREAT opens the existing file, as open(2) does.
  const again = await fs.openForWrite('/x/f', { create: true });
  await again.pwrite(Buffer.from('F'), 0);
  await again.close();
  assert.equal((await fs.readFile('/x/f')).toString(), 'First');
});
