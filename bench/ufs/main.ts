/**
 * UFS benchmark, in one invocation: s3rver (its own process) holds a 1 GiB object and 2,000
 * objects of 64 KiB; a MiniCluster (a master and two workers) mounts the bucket. Measured, each
 * beside a direct @aws-sdk/client-s3 GET of the same data from the same s3rver in this process:
 *
 * - cold read-through of the 1 GiB file through the SDK (the workers fetch from s3rver while they
 *   cache), and of the 2,000 small files (32 at a time); target ≥ 0.9× the direct GET;
 * - warm read of the same data once cached; target ≥ 3× the cold read;
 * - `strata load` of the same data (a master job), in bytes per second; reference: the direct GET.
 *
 *   node dist/bench/ufs/main.js [--size 1GiB] [--files 2000] [--file-size 64KiB] [--runs 2]
 *
 * Each round mounts the bucket afresh at a new path, so its files are new to Strata (blocks a
 * freed file had may still sit on a worker for a moment and would make a "cold" read warm); the
 * metadata of the small files is entered by one listing before the timed reads (reads of data,
 * not of UFS metadata, are compared); `strata load` runs after `strata free` of the round's
 * mount. Figures are the best of --runs rounds, references and ours interleaved.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { STRATA_NODE_FLAGS } from '../../src/common/runtime.js';
import { formatBytes, parseSize } from '../../src/common/units.js';
import { MiniCluster } from '../../test/helpers/mini-cluster.js';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY } from '../../test/ufs/s3-server.js';
import { best, printComparisons } from '../lib/report.js';
import type { Comparison } from '../lib/report.js';

// The client receives hundreds of MB/s: run with the flags strata processes use.
if (!STRATA_NODE_FLAGS.every((f) => process.execArgv.includes(f))) {
  const r = spawnSync(
    process.execPath,
    [...STRATA_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
    },
  );
  process.exit(r.status ?? 1);
}

const MiB = 1024 * 1024;
const MB = 1e6;
const BUCKET = 'bench';
/** Small files read (and put) at once, by us and by the reference. */
const SMALL_CONCURRENCY = 32;
/** Block size of the mount: 64 MiB blocks keep a 1 GiB file at 16 fills. */
const MOUNT_BLOCK_BYTES = 64 * MiB;
const PUT_CHUNK_BYTES = 8 * MiB;
/** How often a load job and the cached state are polled. */
const POLL_MS = 100;
const CACHE_WAIT_MS = 120_000;

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    files: { type: 'string', default: '2000' },
    'file-size': { type: 'string', default: '64KiB' },
    runs: { type: 'string', default: '2' },
  },
});
const SIZE = parseSize(values.size) ?? 1024 * MiB;
const FILES = Number(values.files);
const FILE_BYTES = parseSize(values['file-size']) ?? 64 * 1024;
const RUNS = Math.max(1, Number(values.runs));

function rate(bytes: number, ms: number): number {
  return (bytes / Math.max(1, ms)) * 1000;
}

async function timed(fn: () => Promise<number>): Promise<number> {
  const t0 = performance.now();
  const bytes = await fn();
  return rate(bytes, performance.now() - t0);
}

async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of body) n += chunk.length;
  return n;
}

async function startS3rver(dir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const script = new URL('./s3rver-child.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [script, dir, BUCKET], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /port=(\d+)/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${String(code)}`)));
  });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const t = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  try {
    const s3dir = mkdtempSync(join(tmpdir(), 'strata-bench-s3-'));
    cleanups.push(() => rmSync(s3dir, { recursive: true, force: true }));
    const s3 = await startS3rver(s3dir);
    cleanups.push(() => s3.stop());
    const endpoint = `http://127.0.0.1:${s3.port}`;
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    cleanups.push(() => client.destroy());

    process.stderr.write(
      `putting ${formatBytes(SIZE)} and ${FILES} × ${formatBytes(FILE_BYTES)} into s3rver…\n`,
    );
    const chunk = randomBytes(PUT_CHUNK_BYTES);
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'big/file.bin',
        ContentLength: SIZE,
        Body: Readable.from(
          (function* () {
            for (let left = SIZE; left > 0; left -= PUT_CHUNK_BYTES) {
              yield left >= PUT_CHUNK_BYTES ? chunk : chunk.subarray(0, left);
            }
          })(),
        ),
      }),
    );
    const small = Array.from({ length: FILES }, (_, i) => `small/f${String(i).padStart(5, '0')}.bin`);
    const smallBody = randomBytes(FILE_BYTES);
    await pool(small, SMALL_CONCURRENCY, async (key) => {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: smallBody }));
    });

    process.stderr.write('starting a cluster (1 master, 2 workers)…\n');
    const cluster = await MiniCluster.start(t, { workers: 2, masterToml: 'heartbeat_interval = 200' });
    const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
    const fs = FileSystem.create({ config });
    cleanups.push(() => fs.close());
    const mountRound = async (i: number): Promise<string> => {
      const root = `/bench${i}`;
      await fs.mount(`s3://${BUCKET}`, root, {
        options: {
          's3.endpoint_url': endpoint,
          's3.credentials.access': S3RVER_ACCESS_KEY,
          's3.credentials.secret': S3RVER_SECRET_KEY,
        },
        blockSize: MOUNT_BLOCK_BYTES,
      });
      let listed = 0;
      for await (const page of fs.list(`${root}/small`)) listed += page.length;
      if (listed !== FILES) throw new Error(`listed ${listed} small files, expected ${FILES}`);
      return root;
    };
    let root = '/bench0';
    const directBig = async (): Promise<number> => {
      const r = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'big/file.bin' }));
      return drain(r.Body as AsyncIterable<Uint8Array>);
    };
    const directSmall = async (): Promise<number> => {
      let n = 0;
      await pool(small, SMALL_CONCURRENCY, async (key) => {
        const r = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        // Not `n += await …`: that reads n before the await and loses the other readers' bytes.
        const got = await drain(r.Body as AsyncIterable<Uint8Array>);
        n += got;
      });
      return n;
    };
    const readBig = async (): Promise<number> => drain(fs.createReadStream(`${root}/big/file.bin`));
    const readSmall = async (): Promise<number> => {
      let n = 0;
      await pool(small, SMALL_CONCURRENCY, async (key) => {
        const got = (await fs.readFile(`${root}/${key}`)).length;
        n += got;
      });
      return n;
    };
    const total = SIZE + FILES * FILE_BYTES;
    const cachedBytes = async (): Promise<number> => (await fs.contentSummary(root)).cachedBytes;
    const waitCached = async (want: number): Promise<void> => {
      const deadline = Date.now() + CACHE_WAIT_MS;
      while ((await cachedBytes()) !== want) {
        if (Date.now() > deadline) throw new Error(`cached bytes did not reach ${want}`);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };
    const freeAll = async (): Promise<void> => {
      await fs.free(root);
      await waitCached(0);
    };
    const load = async (): Promise<number> => {
      let s = await fs.load(root);
      while (s.state === 'scanning' || s.state === 'running') {
        await new Promise((r) => setTimeout(r, POLL_MS));
        s = await fs.loadStatus(s.jobId);
      }
      if (s.state !== 'completed') throw new Error(`load ${s.state}: ${s.error ?? ''}`);
      return s.loadedBytes;
    };

    const f = {
      directBig: [] as number[],
      coldBig: [] as number[],
      warmBig: [] as number[],
      directSmall: [] as number[],
      coldSmall: [] as number[],
      warmSmall: [] as number[],
      load: [] as number[],
    };
    const step = async (name: string, list: number[], fn: () => Promise<number>): Promise<void> => {
      const v = await timed(fn);
      list.push(v);
      process.stderr.write(`  ${name}: ${(v / MB).toFixed(0)} MB/s\n`);
    };
    for (let i = 0; i < RUNS; i++) {
      process.stderr.write(`round ${i + 1} of ${RUNS}\n`);
      if (i > 0) await fs.unmount(root);
      root = await mountRound(i);
      await step('direct GET, 1 file', f.directBig, directBig);
      await step('cold read-through, 1 file', f.coldBig, readBig);
      await step('direct GET, small files', f.directSmall, directSmall);
      await step('cold read-through, small files', f.coldSmall, readSmall);
      await waitCached(total);
      await step('warm read, 1 file', f.warmBig, readBig);
      await step('warm read, small files', f.warmSmall, readSmall);
      await freeAll();
      await step('strata load, all', f.load, load);
    }

    const rows: Comparison[] = [
      {
        what: `cold read-through ${formatBytes(SIZE)}`,
        unit: 'MB/s',
        ours: best(f.coldBig) / MB,
        reference: best(f.directBig) / MB,
        referenceName: 'direct S3 GET',
        target: 0.9,
      },
      {
        what: `cold read-through ${FILES}×${formatBytes(FILE_BYTES)}`,
        unit: 'MB/s',
        ours: best(f.coldSmall) / MB,
        reference: best(f.directSmall) / MB,
        referenceName: `direct S3 GETs, ${SMALL_CONCURRENCY} at once`,
        target: 0.9,
      },
      {
        what: `warm read ${formatBytes(SIZE)}`,
        unit: 'MB/s',
        ours: best(f.warmBig) / MB,
        reference: best(f.coldBig) / MB,
        referenceName: 'our cold read',
        target: 3,
      },
      {
        what: `warm read ${FILES}×${formatBytes(FILE_BYTES)}`,
        unit: 'MB/s',
        ours: best(f.warmSmall) / MB,
        reference: best(f.coldSmall) / MB,
        referenceName: 'our cold read',
        target: 3,
      },
      {
        what: `strata load ${formatBytes(total)}`,
        unit: 'MB/s',
        ours: best(f.load) / MB,
        // The time direct GETs take for the same bytes, one big object then the small ones.
        reference: total / (SIZE / best(f.directBig) + (FILES * FILE_BYTES) / best(f.directSmall)) / MB,
        referenceName: 'direct S3 GETs of the same data',
        target: 0.9,
      },
    ];
    printComparisons('UFS read-through (s3rver on loopback; best of rounds)', rows);
  } finally {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  }
}

await main();
