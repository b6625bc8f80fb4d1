// Proves client read-through end to end: a real cluster (master + 2 workers as processes), the SDK
// reading files under mounts of a real s3rver and a loopback HTTP origin, counting upstream GETs.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { FsError } from '../../src/common/errors.js';
import { Registry } from '../../src/common/metrics.js';
import { blockFileName } from '../../src/worker/recovery.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { HttpOrigin } from '../ufs/http-origin.js';
import { S3Server } from '../ufs/s3-server.js';

/** Deadline for state that background work brings about (heartbeats, jobs, TTL) on a loaded machine. */
const BACKGROUND_WAIT_MS = 60_000;
const MiB = 1024 * 1024;
const BS = MiB;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
/** Cleanups registered while the suite starts, run (last first) when it ends. */
const cleanups: (() => unknown)[] = [];
const hooks = { after: (fn: () => unknown): void => void cleanups.push(fn) };

let cluster: MiniCluster;
let s3: S3Server;
let raw: S3Client;
let origin: HttpOrigin;
let fs: FileSystem;
let registry: Registry;

async function put(key: string, body: Buffer): Promise<void> {
  await raw.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: body }));
}

/** Blocks of a file the master knows a cached copy of. */
async function cachedBlocks(path: string): Promise<number[]> {
  const { blocks } = await fs.blockLocations(path);
  return blocks.filter((b) => b.fill !== true && b.workers.length > 0).map((b) => b.offset / BS);
}

async function waitCached(path: string, want: number[]): Promise<void> {
  await waitFor(
    `${path}: blocks ${want.join(',')} cached`,
    async () => {
      return JSON.stringify(await cachedBlocks(path)) === JSON.stringify(want);
    },
    BACKGROUND_WAIT_MS,
  );
}

/** Block files the workers hold (published) and staging files (fills in progress). */
function workerFiles(): { active: string[]; staging: string[] } {
  const out = { active: [] as string[], staging: [] as string[] };
  for (const w of cluster.workers) {
    const root = join(w.dir, 'data', cluster.clusterId);
    for (const kind of ['active', 'staging'] as const) {
      const d = join(root, kind);
      if (existsSync(d)) out[kind].push(...readdirSync(d));
    }
  }
  return out;
}

describe('client read-through from UFS mounts', () => {
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  before(async () => {
    s3 = await S3Server.start(['data']);
    hooks.after(() => s3.stop());
    raw = s3.client();
    hooks.after(() => raw.destroy());
    const root = tempDir(hooks, 'strata-origin-');
    mkdirSync(join(root, 'site'), { recursive: true });
    origin = await HttpOrigin.start(root);
    hooks.after(() => origin.close());
    cluster = await MiniCluster.start(hooks, {
      workers: 2,
      masterToml: 'heartbeat_interval = 100\nufs_sync_interval = "1s"',
    });
    registry = new Registry();
    const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
    fs = FileSystem.create({ config, settings: { blockSizeBytes: BS }, registry });
    hooks.after(() => fs.close());
    await fs.mount('s3://data/ds', undefined, { options: s3.options(), blockSize: BS });
    await fs.mount(origin.url + '/site', '/web', { options: {}, blockSize: BS });
  });

  test('files of sizes around block boundaries read byte-exact through s3, then from the cache', async () => {
    const sizes = [0, 1, BS - 1, BS, BS + 1, 3 * BS + 5];
    const data = new Map<number, Buffer>();
    for (const size of sizes) {
      const b = randomBytes(size);
      data.set(size, b);
      await put(`ds/sizes/f${size}`, b);
    }
    for (const size of sizes) {
      const path = `/data/ds/sizes/f${size}`;
      const want = data.get(size) as Buffer;
      const chunks: Buffer[] = [];
      for await (const c of fs.createReadStream(path)) chunks.push(c as Buffer);
      assert.equal(sha(Buffer.concat(chunks)), sha(want), `stream of ${size} bytes`);
      assert.equal(sha(await fs.readFile(path)), sha(want), `positional read of ${size} bytes`);
      const blocks = Math.ceil(size / BS);
      await waitCached(
        path,
        Array.from({ length: blocks }, (_, i) => i),
      );
      assert.equal(s3.gets('data', `ds/sizes/f${size}`).length, blocks, `one GET per block of ${size}`);
    }
    // Cached now: reading again fetches nothing from the UFS.
    const getsBefore = s3Gets();
    for (const size of sizes) {
      assert.equal(sha(await fs.readFile(`/data/ds/sizes/f${size}`)), sha(data.get(size) as Buffer));
    }
    assert.equal(s3Gets(), getsBefore, 'cached files are not fetched again');
    const names = (await collect(fs.entries('/data/ds/sizes'))).map((e) => e.name).sort();
    assert.deepEqual(names, sizes.map((s) => `f${s}`).sort());
    const metrics = await registry.getSingleMetricAsString('strata_client_read_bytes_total');
    assert.match(metrics, /path="ufs"/);
  });

  test('20 concurrent readers of an uncached file share one upstream fetch per block', async () => {
    const body = randomBytes(3 * BS + 123);
    writeFileSync(join(origin.root, 'site', 'shared.bin'), body);
    origin.behaviour = { delayMs: 200 };
    try {
      const reads = await Promise.all(Array.from({ length: 20 }, () => fs.readFile('/web/shared.bin')));
      for (const r of reads) assert.equal(sha(r), sha(body));
    } finally {
      origin.behaviour = {};
    }
    const gets = origin.gets('/site/shared.bin');
    assert.equal(gets.length, 4, `GETs: ${gets.map((g) => g.range).join(' ')}`);
    assert.deepEqual(
      gets.map((g) => g.range).sort(),
      [
        `bytes=0-${BS - 1}`,
        `bytes=${BS}-${2 * BS - 1}`,
        `bytes=${2 * BS}-${3 * BS - 1}`,
        `bytes=${3 * BS}-${3 * BS + 122}`,
      ].sort(),
    );
  });

  test("a reader on a worker's machine reads the fill from its staging file; a remote one through the worker", async () => {
    // Without short-circuit the client counts as remote: the worker streams the bytes to it.
    const remote = FileSystem.create({
      config: loadConfig({ path: cluster.clientConfPath, env: {} }).config,
      settings: { blockSizeBytes: BS, shortCircuit: false },
    });
    try {
      const calls = async (): Promise<{ follow: number; through: number }> => {
        let follow = 0;
        let through = 0;
        for (const w of cluster.workers) {
          const text = await (await fetch(`http://127.0.0.1:${w.webPort}/metrics`)).text();
          const count = (call: string): number =>
            Number(
              new RegExp(
                `^strata_rpc_server_requests_total\\{call="${call}",status="ok"[^}]*\\} (\\d+)`,
                'm',
              ).exec(text)?.[1] ?? 0,
            );
          follow += count('worker.followFill');
          through += count('worker.readThrough');
        }
        return { follow, through };
      };
      const a = randomBytes(2 * BS + 777);
      const b = randomBytes(2 * BS + 777);
      await put('ds/follow-local.bin', a);
      await put('ds/follow-remote.bin', b);
      const before = await calls();
      assert.equal(sha(await fs.readFile('/data/ds/follow-local.bin')), sha(a));
      const local = await calls();
      assert.ok(local.follow > before.follow, 'the local reader followed the fill');
      assert.equal(local.through, before.through, 'no bytes through the worker for the local reader');
      assert.equal(sha(await remote.readFile('/data/ds/follow-remote.bin')), sha(b));
      const after = await calls();
      assert.ok(after.through > local.through, 'the remote reader read through the worker');
      assert.equal(after.follow, local.follow, 'the remote reader did not ask for the fill file');
      await waitCached('/data/ds/follow-local.bin', [0, 1, 2]);
      await waitCached('/data/ds/follow-remote.bin', [0, 1, 2]);

      // Both kinds of reader on one uncached file, at once, while the origin is slow: one fetch
      // per block, and both get every byte.
      const c = randomBytes(3 * BS + 5);
      writeFileSync(join(origin.root, 'site', 'mixed.bin'), c);
      origin.behaviour = { delayMs: 200 };
      try {
        const reads = await Promise.all([
          fs.readFile('/web/mixed.bin'),
          remote.readFile('/web/mixed.bin'),
          fs.readFile('/web/mixed.bin'),
          remote.readFile('/web/mixed.bin'),
        ]);
        for (const r of reads) assert.equal(sha(r), sha(c));
      } finally {
        origin.behaviour = {};
      }
      assert.equal(origin.gets('/site/mixed.bin').length, 4, 'one GET per block');
    } finally {
      await remote.close();
    }
  });

  test('a range read fetches and caches only the blocks it touches', async () => {
    const body = randomBytes(5 * BS);
    await put('ds/range.bin', body);
    const r = await fs.open('/data/ds/range.bin');
    try {
      const buf = Buffer.alloc(100_000);
      const at = 2 * BS + 500_000;
      assert.equal(await r.read(buf, at), buf.length);
      assert.equal(sha(buf), sha(body.subarray(at, at + buf.length)));
      // Straddles blocks 3 and 4 (block 1 stays untouched).
      const buf2 = Buffer.alloc(200_000);
      const at2 = 4 * BS - 100_000;
      assert.equal(await r.read(buf2, at2), buf2.length);
      assert.equal(sha(buf2), sha(body.subarray(at2, at2 + buf2.length)));
    } finally {
      await r.close();
    }
    const chunks: Buffer[] = [];
    for await (const c of fs.createReadStream('/data/ds/range.bin', { start: 10, end: 20 }))
      chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), body.subarray(10, 21));
    await waitCached('/data/ds/range.bin', [0, 2, 3, 4]);
    const ranges = s3.gets('data', 'ds/range.bin').map((g) => g.range);
    assert.deepEqual(ranges.sort(), [
      `bytes=0-${BS - 1}`,
      `bytes=${2 * BS}-${3 * BS - 1}`,
      `bytes=${3 * BS}-${4 * BS - 1}`,
      `bytes=${4 * BS}-${5 * BS - 1}`,
    ]);
  });

  test('with --read-verify-ufs a changed object invalidates the cached copy; without it the cache answers', async () => {
    await fs.mount('s3://data/verified', undefined, {
      options: s3.options(),
      blockSize: BS,
      readVerifyUfs: true,
    });
    const v1 = randomBytes(BS + 10);
    await put('verified/f.bin', v1);
    await put('ds/unverified.bin', v1);
    assert.equal(sha(await fs.readFile('/data/verified/f.bin')), sha(v1));
    assert.equal(sha(await fs.readFile('/data/ds/unverified.bin')), sha(v1));
    await waitCached('/data/verified/f.bin', [0, 1]);
    await waitCached('/data/ds/unverified.bin', [0, 1]);
    const v2 = randomBytes(2 * BS + 3);
    await put('verified/f.bin', v2);
    await put('ds/unverified.bin', v2);
    const got = await fs.readFile('/data/verified/f.bin');
    assert.equal(got.length, v2.length);
    assert.equal(sha(got), sha(v2));
    // The unverified mount serves its cached copy until the metadata interval passes.
    assert.equal(sha(await fs.readFile('/data/ds/unverified.bin')), sha(v1));
  });

  test('a UFS outage mid-read is an error to the reader and leaves no partial block', async () => {
    const body = randomBytes(2 * BS);
    writeFileSync(join(origin.root, 'site', 'cut.bin'), body);
    const st = await fs.stat('/web/cut.bin');
    assert.equal(st.size, body.length);
    origin.behaviour = { cutAfterBytes: BS / 2 };
    try {
      await assert.rejects(fs.readFile('/web/cut.bin'), (e: unknown) => {
        assert.ok(e instanceof FsError, String(e));
        assert.equal(e.code, 'EIO');
        assert.match(e.message, /\/web\/cut\.bin/);
        return true;
      });
    } finally {
      origin.behaviour = {};
    }
    const { blocks } = await fs.blockLocations('/web/cut.bin');
    const ids = blocks.map((b) => blockFileName(b.blockId));
    await waitFor('fills aborted', () => workerFiles().staging.length === 0, BACKGROUND_WAIT_MS);
    const active = workerFiles().active;
    for (const id of ids) assert.ok(!active.includes(id), `no block file ${id}`);
    assert.deepEqual(await cachedBlocks('/web/cut.bin'), []);
    // The UFS back: the same file reads whole.
    assert.equal(sha(await fs.readFile('/web/cut.bin')), sha(body));

    // An S3 store that goes away mid-stream: the reader gets its connection error.
    const gone = randomBytes(4 * BS);
    await put('ds/gone.bin', gone);
    await fs.stat('/data/ds/gone.bin');
    const stream = fs.createReadStream('/data/ds/gone.bin', { readAheadBytes: BS });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.ok(first.done !== true);
    await s3.stop();
    await assert.rejects(
      (async () => {
        for (;;) if ((await it.next()).done === true) break;
      })(),
      (e: unknown) => {
        assert.ok(e instanceof FsError, String(e));
        assert.match(e.code, /^(ECONNREFUSED|EIO)$/);
        return true;
      },
    );
    await waitFor('fills aborted', () => workerFiles().staging.length === 0, BACKGROUND_WAIT_MS);
  });
});

function s3Gets(): number {
  return s3.requests.filter((r) => r.method === 'GET').length;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
