/**
 * Client benchmark, in one invocation: put and get of a 1 GiB file through the SDK, short-circuit
 * and remote, beside fio sequential write and read of a 1 GiB file on the same filesystem and an
 * iperf3 loopback run; then 10,000 small files (4 KiB) created, written and read back.
 *
 *   node dist/bench/client/main.js [--size 1GiB] [--files 10000] [--concurrency 32]
 *
 * Targets (printed beside the ratios): get ≥ 0.8× fio read (short-circuit), get ≥ 0.5× iperf3
 * (remote), put ≥ 0.5× fio write. The cluster is a MiniCluster (a master and two workers as
 * child processes) in a temp directory on the same filesystem as the fio file.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { formatBytes, parseSize } from '../../src/common/units.js';
import { MiniCluster } from '../../test/helpers/mini-cluster.js';
import { freePort } from '../../test/helpers/ports.js';
import { which } from '../../test/helpers/ci.js';

const MiB = 1024 * 1024;
const CHUNK_BYTES = 4 * MiB;

interface Row {
  what: string;
  ours: string;
  reference: string;
  ratio: string;
  target: string;
}

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    files: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '32' },
  },
});
const SIZE = parseSize(values.size) ?? 1024 * MiB;
const FILES = Number(values.files);
const CONCURRENCY = Number(values.concurrency);

function rate(bytes: number, ms: number): number {
  return (bytes / ms) * 1000;
}

function mbs(bytesPerS: number): string {
  return `${formatBytes(Math.round(bytesPerS))}/s`;
}

async function runJson(cmd: string, args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${String(code)}: ${err}`));
        return;
      }
      try {
        resolve(JSON.parse(out) as unknown);
      } catch (e) {
        reject(new Error(`${cmd}: output is not JSON: ${(e as Error).message}\n${out.slice(0, 500)}`));
      }
    });
  });
}

async function fio(dir: string, rw: 'write' | 'read'): Promise<number> {
  const r = (await runJson('fio', [
    `--name=seq${rw}`,
    `--filename=${join(dir, 'fio.dat')}`,
    `--rw=${rw}`,
    '--bs=1M',
    `--size=${SIZE}`,
    '--ioengine=psync',
    '--direct=0',
    // Workers sync a block before publishing it, so the write reference includes the flush too.
    ...(rw === 'write' ? ['--end_fsync=1'] : []),
    '--output-format=json',
  ])) as { jobs: { read: { bw_bytes: number }; write: { bw_bytes: number } }[] };
  const job = r.jobs[0];
  if (job === undefined) throw new Error('fio printed no job');
  return rw === 'write' ? job.write.bw_bytes : job.read.bw_bytes;
}

async function iperf3(): Promise<number> {
  const port = await freePort();
  const server = spawn('iperf3', ['-s', '-1', '-p', String(port)], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const r = (await runJson('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', '5', '-J'])) as {
      end: { sum_received: { bits_per_second: number } };
    };
    return r.end.sum_received.bits_per_second / 8;
  } finally {
    server.kill('SIGKILL');
  }
}

async function put(fs: FileSystem, path: string, chunk: Buffer): Promise<number> {
  const started = performance.now();
  const w = await fs.create(path, { overwrite: true, sizeHintBytes: SIZE });
  for (let done = 0; done < SIZE; done += chunk.length) {
    await w.write(done + chunk.length <= SIZE ? chunk : chunk.subarray(0, SIZE - done));
  }
  const st = await w.close();
  if (st.size !== SIZE) throw new Error(`put wrote ${st.size} bytes, expected ${SIZE}`);
  return rate(SIZE, performance.now() - started);
}

async function get(fs: FileSystem, path: string, chunk: Buffer): Promise<number> {
  const started = performance.now();
  const r = await fs.open(path);
  let got = 0;
  let first: Buffer | undefined;
  for await (const c of r.chunks()) {
    if (first === undefined) first = Buffer.from(c.subarray(0, 64));
    got += c.length;
  }
  await r.close();
  const ms = performance.now() - started;
  if (got !== SIZE) throw new Error(`get read ${got} bytes, expected ${SIZE}`);
  if (first === undefined || !first.equals(chunk.subarray(0, 64)))
    throw new Error('get returned different bytes');
  return rate(SIZE, ms);
}

async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i] as T);
      }
    }),
  );
}

async function main(): Promise<void> {
  for (const tool of ['fio', 'iperf3']) {
    if (which(tool) === undefined)
      throw new Error(`${tool} is needed for the reference figures (apt-get install ${tool})`);
  }
  const cleanups: (() => Promise<void> | void)[] = [];
  const t = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  try {
    process.stderr.write('starting a cluster (1 master, 2 workers)…\n');
    const cluster = await MiniCluster.start(t, { workers: 2 });
    const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
    const local = FileSystem.create({ config });
    const remote = FileSystem.create({ config, settings: { shortCircuit: false } });
    cleanups.push(
      () => local.close(),
      () => remote.close(),
    );
    const chunk = randomBytes(CHUNK_BYTES);
    const rows: Row[] = [];

    process.stderr.write(`fio on ${cluster.dir}…\n`);
    const fioWrite = await fio(cluster.dir, 'write');
    const fioRead = await fio(cluster.dir, 'read');
    rmSync(join(cluster.dir, 'fio.dat'), { force: true });
    process.stderr.write('iperf3 on loopback…\n');
    const net = await iperf3();

    process.stderr.write(`SDK put/get of ${formatBytes(SIZE)}…\n`);
    const putLocal = await put(local, '/bench/sc.bin', chunk);
    const getLocal = await get(local, '/bench/sc.bin', chunk);
    const putRemote = await put(remote, '/bench/remote.bin', chunk);
    const getRemote = await get(remote, '/bench/remote.bin', chunk);
    const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
    rows.push(
      {
        what: 'put, short-circuit',
        ours: mbs(putLocal),
        reference: `fio write ${mbs(fioWrite)}`,
        ratio: ratio(putLocal, fioWrite),
        target: '≥ 0.5×',
      },
      {
        what: 'get, short-circuit',
        ours: mbs(getLocal),
        reference: `fio read ${mbs(fioRead)}`,
        ratio: ratio(getLocal, fioRead),
        target: '≥ 0.8×',
      },
      {
        what: 'put, remote',
        ours: mbs(putRemote),
        reference: `fio write ${mbs(fioWrite)}`,
        ratio: ratio(putRemote, fioWrite),
        target: '≥ 0.5×',
      },
      {
        what: 'get, remote',
        ours: mbs(getRemote),
        reference: `iperf3 ${mbs(net)}`,
        ratio: ratio(getRemote, net),
        target: '≥ 0.5×',
      },
    );
    await local.delete('/bench', { recursive: true });

    process.stderr.write(`${FILES} files of 4 KiB, ${CONCURRENCY} at a time…\n`);
    const small = randomBytes(4096);
    const names = Array.from({ length: FILES }, (_, i) => `/small/d${i % 100}/f${i}`);
    await pool(
      Array.from({ length: 100 }, (_, i) => `/small/d${i}`),
      CONCURRENCY,
      async (d) => void (await local.mkdir(d, { parents: true })),
    );
    let started = performance.now();
    await pool(names, CONCURRENCY, async (p) => void (await local.writeFile(p, small)));
    const writeFilesPerS = (FILES / (performance.now() - started)) * 1000;
    started = performance.now();
    await pool(names, CONCURRENCY, async (p) => {
      const b = await local.readFile(p);
      if (b.length !== small.length) throw new Error(`${p}: read ${b.length} bytes`);
    });
    const readFilesPerS = (FILES / (performance.now() - started)) * 1000;
    rows.push(
      {
        what: `small files: create+write+close (${FILES} × 4 KiB)`,
        ours: `${writeFilesPerS.toFixed(0)} files/s`,
        reference: '-',
        ratio: '-',
        target: '-',
      },
      {
        what: `small files: open+read (${FILES} × 4 KiB)`,
        ours: `${readFilesPerS.toFixed(0)} files/s`,
        reference: '-',
        ratio: '-',
        target: '-',
      },
    );

    const head: Row = {
      what: 'figure',
      ours: 'strata',
      reference: 'reference',
      ratio: 'ratio',
      target: 'target',
    };
    const all = [head, ...rows];
    const w = (k: keyof Row): number => Math.max(...all.map((r) => r[k].length));
    process.stdout.write(
      `\nclient benchmark (${formatBytes(SIZE)} file, block size ${formatBytes(config.client.block_size)}, 1 replica)\n`,
    );
    for (const r of all) {
      process.stdout.write(
        `${r.what.padEnd(w('what'))}  ${r.ours.padStart(w('ours'))}  ${r.reference.padEnd(w('reference'))}  ${r.ratio.padStart(w('ratio'))}  ${r.target}\n`,
      );
    }
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}

await main();
