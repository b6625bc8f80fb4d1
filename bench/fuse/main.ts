/**
 * FUSE benchmark, in one invocation: fio through our mount (`strata fuse` over a MiniCluster of a
 * master and one worker) beside the same fio jobs through libfuse's C `passthrough_ll` example
 * (built here from /usr/share/doc/libfuse3-dev/examples with gcc and pkg-config fuse3) over a
 * directory on the same disk; then metadata operations per second (create, stat, rename,
 * delete of 10,000 files) through both mounts, and `tar x` of an archive of small files (one
 * process, one file after another: create, write, fchown, fchmod, futimens, close per file, as
 * unpacking a source tree or a dataset does).
 *
 *   node dist/bench/fuse/main.js [--size 1GiB] [--runtime 15] [--files 10000] [--concurrency 16]
 *                                [--binding kernel|fuse-native] [--local-read-verify disk|all|none]
 *                                [--tar-files 2000]
 *
 * Targets: sequential read ≥ 0.5×, sequential write ≥ 0.5×, 4 KiB random read ≥ 0.3× of
 * passthrough_ll. fio's default `invalidate=1` drops the FUSE file's cached pages before each
 * job on both mounts, so reads go through the FUSE daemon; the layer below (the worker's block
 * files, passthrough's directory) stays warm on both sides alike.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { STRATA_NODE_FLAGS } from '../../src/common/runtime.js';
import { FUSE_BINDINGS, LOCAL_READ_VERIFY_MODES } from '../../src/common/config/schema.js';
import { formatBytes, parseSize } from '../../src/common/units.js';
import { mountAt } from '../../src/fuse/mount-point.js';
import { MiniCluster } from '../../test/helpers/mini-cluster.js';
import { forceUnmount, mountFuse } from '../../test/fuse/fuse-helper.js';
import { runFio } from '../lib/fio.js';
import { requireTool, runOk, startBackground } from '../lib/proc.js';
import { printComparisons } from '../lib/report.js';
import type { Comparison } from '../lib/report.js';

/** Metadata calls run on libuv's thread pool: give it room for the concurrency asked. */
const THREADPOOL_SIZE = '64';
if (
  !STRATA_NODE_FLAGS.every((f) => process.execArgv.includes(f)) ||
  process.env.UV_THREADPOOL_SIZE === undefined
) {
  const r = spawnSync(
    process.execPath,
    [...STRATA_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, UV_THREADPOOL_SIZE: THREADPOOL_SIZE },
    },
  );
  process.exit(r.status ?? 1);
}

const EXAMPLES_DIR = '/usr/share/doc/libfuse3-dev/examples';
const MiB = 1024 * 1024;
const MB = 1e6;
/** Blocks of 64 MiB: large sequential files, few AddBlock calls. */
const BENCH_BLOCK_SIZE = '64MB';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    runtime: { type: 'string', default: '15' },
    files: { type: 'string', default: '10000' },
    /** Files of 1-16 KiB in the archive `tar x` unpacks. */
    'tar-files': { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
    binding: { type: 'string', default: 'kernel' },
    /** client.local_read_verify of the mount: which block files its reads check (default disk). */
    'local-read-verify': { type: 'string', default: 'disk' },
  },
});
if (!(FUSE_BINDINGS as readonly string[]).includes(values.binding)) {
  console.error(`--binding: expected one of ${FUSE_BINDINGS.join(', ')} (got ${values.binding})`);
  process.exit(2);
}
if (!(LOCAL_READ_VERIFY_MODES as readonly string[]).includes(values['local-read-verify'])) {
  console.error(
    `--local-read-verify: expected one of ${LOCAL_READ_VERIFY_MODES.join(', ')} (got ${values['local-read-verify']})`,
  );
  process.exit(2);
}
const SIZE = parseSize(values.size) ?? 1024 * MiB;
const RUNTIME_S = Number(values.runtime);
const FILES = Number(values.files);
const CONCURRENCY = Number(values.concurrency);
const TAR_FILES = Number(values['tar-files']);

interface FuseFigures {
  seqWrite: number;
  seqRead: number;
  /** CPU seconds of the file system's process (all its threads) per GiB moved. */
  seqWriteCpuPerGiB: number;
  seqReadCpuPerGiB: number;
  randRead: number;
  randReadIops: number;
  meta: MetaFigures;
}

interface MetaFigures {
  create: number;
  stat: number;
  rename: number;
  delete: number;
  /** Files per second `tar x` unpacked. */
  untar: number;
}

/** CPU time of a process (user + system, all threads) in seconds, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100;
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** Runs `fn` and returns its result with the CPU seconds `pid` spent meanwhile, per GiB of SIZE. */
async function withCpu<T>(pid: number, fn: () => Promise<T>): Promise<{ value: T; cpuPerGiB: number }> {
  const before = cpuSeconds(pid);
  const value = await fn();
  return { value, cpuPerGiB: ((cpuSeconds(pid) - before) * 1024 * MiB) / SIZE };
}

async function buildPassthrough(dir: string): Promise<string> {
  const gcc = requireTool('gcc', 'gcc');
  requireTool('pkg-config', 'pkg-config');
  const flags = (await runOk('pkg-config', ['fuse3', '--cflags', '--libs'])).trim().split(/\s+/);
  const out = join(dir, 'passthrough_ll');
  await runOk(gcc, ['-O2', '-Wall', join(EXAMPLES_DIR, 'passthrough_ll.c'), ...flags, '-o', out]);
  return out;
}

async function fioJob(dir: string, name: string, args: string[]): Promise<{ bw: number; iops: number }> {
  const r = await runFio(
    [`--name=${name}`, `--filename=${join(dir, 'fio.dat')}`, `--size=${SIZE}`, '--ioengine=psync', ...args],
    600_000,
  );
  const side = args.some((a) => a.includes('write')) ? r.write : r.read;
  return { bw: side.bytesPerSecond, iops: side.iops };
}

/** Runs `fn(i)` for i in [0, n) with `concurrency` at once; resolves with operations per second. */
async function opsPerSecond(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  return (n / (performance.now() - started)) * 1000;
}

/**
 * create/stat/rename/delete of FILES empty files. The kernel serialises creations, renames and
 * deletions within one directory (the parent's inode lock), so the files are spread over one
 * directory per concurrent worker, on both mounts alike.
 */
async function metadata(dir: string): Promise<MetaFigures> {
  const base = join(dir, 'meta');
  for (let d = 0; d < CONCURRENCY; d++) mkdirSync(join(base, `d${d}`), { recursive: true });
  const a = (i: number): string => join(base, `d${i % CONCURRENCY}`, `f${i}`);
  const b = (i: number): string => join(base, `d${i % CONCURRENCY}`, `g${i}`);
  const create = await opsPerSecond(FILES, CONCURRENCY, async (i) => (await open(a(i), 'wx')).close());
  const statRate = await opsPerSecond(FILES, CONCURRENCY, async (i) => void (await stat(a(i))));
  const renameRate = await opsPerSecond(FILES, CONCURRENCY, (i) => rename(a(i), b(i)));
  const del = await opsPerSecond(FILES, CONCURRENCY, (i) => unlink(b(i)));
  const into = join(dir, 'untar');
  mkdirSync(into);
  const started = performance.now();
  await runOk('tar', ['-xf', TAR_ARCHIVE(), '-C', into], 600_000);
  const untar = (TAR_FILES / (performance.now() - started)) * 1000;
  return { create, stat: statRate, rename: renameRate, delete: del, untar };
}

let tarArchive: string | undefined;
const TAR_ARCHIVE = (): string => {
  if (tarArchive === undefined) throw new Error('the tar archive is made before the measurements');
  return tarArchive;
};

/** An archive of TAR_FILES files of 1-16 KiB in directories of 50 (made once, on local disk). */
async function makeTarArchive(work: string): Promise<string> {
  const src = join(work, 'tar-src');
  for (let i = 0; i < TAR_FILES; i++) {
    const d = join(src, `d${Math.floor(i / 50)}`);
    if (i % 50 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), Buffer.alloc(1024 * (1 + (i % 16)), i % 251));
  }
  const archive = join(work, 'small-files.tar');
  await runOk('tar', ['-cf', archive, '-C', src, '.']);
  rmSync(src, { recursive: true });
  return archive;
}

async function measure(dir: string, label: string, pid: number): Promise<FuseFigures> {
  console.log(`${label}: fio sequential write, 1 MiB, ${formatBytes(SIZE)}`);
  const seqWrite = await withCpu(pid, () =>
    fioJob(dir, 'seqwrite', ['--rw=write', '--bs=1M', '--end_fsync=1']),
  );
  console.log(`${label}: fio sequential read, 1 MiB`);
  const seqRead = await withCpu(pid, () => fioJob(dir, 'seqread', ['--rw=read', '--bs=1M']));
  console.log(`${label}: fio random read, 4 KiB, ${RUNTIME_S} s`);
  const rand = await fioJob(dir, 'randread', [
    '--rw=randread',
    '--bs=4k',
    `--runtime=${RUNTIME_S}`,
    '--time_based',
  ]);
  console.log(`${label}: metadata, ${FILES} files, ${CONCURRENCY} at once`);
  const meta = await metadata(dir);
  return {
    seqWrite: seqWrite.value.bw,
    seqRead: seqRead.value.bw,
    seqWriteCpuPerGiB: seqWrite.cpuPerGiB,
    seqReadCpuPerGiB: seqRead.cpuPerGiB,
    randRead: rand.bw,
    randReadIops: rand.iops,
    meta,
  };
}

async function main(): Promise<void> {
  requireTool('fio', 'fio');
  requireTool('fusermount3', 'fuse3');
  const cleanups: (() => Promise<void> | void)[] = [];
  const t = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  try {
    const work = mkdtempSync(join(tmpdir(), 'strata-bench-fuse-'));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const passthrough = await buildPassthrough(work);
    tarArchive = await makeTarArchive(work);
    const lower = join(work, 'lower');
    const pmnt = join(work, 'passthrough-mnt');
    mkdirSync(lower);
    mkdirSync(pmnt);
    const pt = await startBackground(passthrough, ['-f', '-o', `source=${lower}`, pmnt], async () => {
      for (let i = 0; i < 200 && (await mountAt(pmnt)) === undefined; i++)
        await new Promise((r) => setTimeout(r, 50));
      if ((await mountAt(pmnt)) === undefined) throw new Error('passthrough_ll did not mount');
    });
    cleanups.push(async () => {
      forceUnmount(pmnt);
      await pt.stop();
    });

    const cluster = await MiniCluster.start(t, {
      clientToml: `block_size = "${BENCH_BLOCK_SIZE}"\nlocal_read_verify = "${values['local-read-verify']}"\n`,
    });
    const m = await mountFuse(t, cluster, { binding: values.binding });

    const ref = await measure(pmnt, 'passthrough_ll', pt.child.pid as number);
    const ours = await measure(m.mnt, `strata fuse (${values.binding})`, m.proc.child.pid as number);

    const mb = (v: number): number => v / MB;
    const rows: Comparison[] = [
      {
        what: 'sequential write 1 MiB',
        unit: 'MB/s',
        ours: mb(ours.seqWrite),
        reference: mb(ref.seqWrite),
        referenceName: 'passthrough_ll',
        target: 0.5,
      },
      {
        what: 'sequential read 1 MiB',
        unit: 'MB/s',
        ours: mb(ours.seqRead),
        reference: mb(ref.seqRead),
        referenceName: 'passthrough_ll',
        target: 0.5,
      },
      {
        what: 'random read 4 KiB',
        unit: 'IOPS',
        ours: ours.randReadIops,
        reference: ref.randReadIops,
        referenceName: 'passthrough_ll',
        target: 0.3,
      },
    ];
    printComparisons(
      `FUSE data path, ${values.binding} engine, local_read_verify = ${values['local-read-verify']} (${formatBytes(SIZE)} file, fio psync, 1 job)`,
      rows,
    );
    // CPU per GiB depends far less on what else runs on a shared machine than MB/s does.
    const cpu = (f: FuseFigures, k: 'seqWriteCpuPerGiB' | 'seqReadCpuPerGiB'): string => f[k].toFixed(2);
    console.log(
      `\nCPU of the file system process per GiB: sequential write ${cpu(ours, 'seqWriteCpuPerGiB')} s ` +
        `(passthrough_ll ${cpu(ref, 'seqWriteCpuPerGiB')} s), sequential read ${cpu(ours, 'seqReadCpuPerGiB')} s ` +
        `(passthrough_ll ${cpu(ref, 'seqReadCpuPerGiB')} s)`,
    );
    const metaRows: Comparison[] = (['create', 'stat', 'rename', 'delete'] as const).map((k) => ({
      what: `${k} (${FILES} files, ${CONCURRENCY} at once)`,
      unit: 'ops/s',
      ours: ours.meta[k],
      reference: ref.meta[k],
      referenceName: 'passthrough_ll',
    }));
    metaRows.push({
      what: `tar x (${TAR_FILES} files of 1-16 KiB, one process)`,
      unit: 'files/s',
      ours: ours.meta.untar,
      reference: ref.meta.untar,
      referenceName: 'passthrough_ll',
    });
    printComparisons(
      `FUSE metadata (${CONCURRENCY} directories; no target: the peer publishes ~20k-60k ops/s on 32 cores, 40 threads)`,
      metaRows,
    );
  } finally {
    for (const c of cleanups.reverse())
      await Promise.resolve(c()).catch((err: unknown) => console.error(err));
  }
}

await main();
