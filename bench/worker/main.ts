/**
 * Worker benchmark. Starts a real `strata worker` process on a temp directory and a client
 * process, writes a 1 GiB block set and reads it back, and prints each figure beside a reference
 * measured in the same invocation on the same machine:
 *
 *   remote streamed read   vs  iperf3 -c 127.0.0.1                            (target ≥ 0.6×)
 *     (twice: reused receive buffers, `reuseBuffers`, as iperf3 reads, with the target; and
 *     chunks the consumer may keep, printed without one)
 *   short-circuit read     vs  fio --rw=read  --bs=1M, same size, same dir    (target ≥ 0.9×)
 *   remote / local write   vs  fio --rw=write --bs=1M --end_fsync=1, same dir (target ≥ 0.5×)
 *
 * Reads are from the page cache on both sides (the blocks were just written; fio runs with
 * invalidate=0 after its own write). Writes include the sync of every block, as fio's end_fsync
 * does for its file. Short-circuit reads are 1 MiB synchronous preads, as fio's psync engine does;
 * the figure with async reads through libuv's thread pool is printed too (without a target: the
 * SDK reads block files the page cache holds inline, like the sync row). Worker and client run
 * with STRATA_NODE_FLAGS (--initial-heap-size=64, see docs/rpc.md, "Performance").
 *
 * Each round also prints the CPU seconds per GiB of every phase, client and worker process apart
 * (user + system): the figure to compare across changes, as it does not swing with machine load.
 *
 *   node dist/bench/worker/main.js [--dir=DIR] [--gib=1] [--block-mib=128] [--rounds=3] [--only=writes]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runFio } from '../lib/fio.js';
import { runIperf3Client, startIperf3Server } from '../lib/iperf3.js';
import { freePort, runOk, startBackground, waitForPort } from '../lib/proc.js';
import { best, printComparisons } from '../lib/report.js';
import { STRATA_NODE_FLAGS } from '../../src/common/runtime.js';
import type { Comparison } from '../lib/report.js';

const MiB = 1024 * 1024;
const IPERF_SECONDS = 5;

function flag(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

const baseDir = flag('dir', tmpdir());
const totalBytes = Math.round(Number(flag('gib', '1')) * 1024 * MiB);
const blockBytes = Number(flag('block-mib', '128')) * MiB;
const rounds = Number(flag('rounds', '3'));
/** `--only=writes`: the write phases and their reference alone (quicker, for work on the write path). */
const writesOnly = flag('only', 'all') === 'writes';
const blocks = Math.ceil(totalBytes / blockBytes);
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const STRATA_BIN = here('../../src/cli/main.js');

interface ClientResult {
  remoteWrite: number;
  localWrite: number;
  remoteRead: number;
  remoteReadReuse: number;
  localRead: number;
  localReadAsync: number;
  localReadVerified: number;
  /** CPU seconds per GiB of each phase, the client process's and the worker's. */
  cpu: Record<string, { client: number; worker: number; workerLoop: number }>;
}

/** One worker process and one client process with the given V8 flags, on a fresh data dir. */
async function runOurs(base: string, v8Flags: string[]): Promise<ClientResult> {
  const data = join(base, 'data');
  await rm(data, { recursive: true, force: true });
  const rpcPort = await freePort();
  const conf = join(base, 'strata.toml');
  await writeFile(
    conf,
    `cluster_id = "bench"
[log]
level = "ERROR"
log_dir = "stderr"
[[client.master_addrs]]
hostname = "127.0.0.1"
port = ${await freePort()}
[worker]
hostname = "127.0.0.1"
bind_host = "127.0.0.1"
rpc_port = ${rpcPort}
web_port = ${await freePort()}
data_dir = ["[DISK]${data}"]
`,
  );
  // No master runs here: the worker serves blocks while it keeps trying to register.
  const worker = await startBackground(
    process.execPath,
    [...v8Flags, STRATA_BIN, 'worker', '--conf', conf],
    () => waitForPort(rpcPort, 20_000),
  );
  try {
    const out = await runOk(
      process.execPath,
      [
        ...v8Flags,
        here('./client.js'),
        String(rpcPort),
        String(blocks),
        String(blockBytes),
        '2',
        String(worker.child.pid ?? 0),
        writesOnly ? 'writes' : 'all',
      ],
      600_000,
    );
    return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as ClientResult;
  } finally {
    await worker.stop();
  }
}

const gb = (bytesPerSecond: number): number => bytesPerSecond / 1e9;

async function main(): Promise<void> {
  const base = await mkdtemp(join(baseDir, 'strata-bench-worker-'));
  console.log(`worker benchmark: ${blocks} blocks of ${blockBytes / MiB} MiB in ${base}`);
  const iperf = await startIperf3Server();
  try {
    // Strata processes run with STRATA_NODE_FLAGS (the bin's shebang); the client process too.
    const configs = [{ name: STRATA_NODE_FLAGS.join(' '), flags: [...STRATA_NODE_FLAGS] }];
    const ours = new Map<string, ClientResult[]>();
    const iperfRuns: number[] = [];
    const fioWrites: number[] = [];
    const fioReads: number[] = [];
    const fioFile = join(base, 'fio.dat');
    const size = String(blocks * blockBytes);
    for (let r = 0; r < rounds; r++) {
      for (const c of configs) {
        const res = await runOurs(base, c.flags);
        ours.set(c.name, [...(ours.get(c.name) ?? []), res]);
        console.log(
          `round ${r + 1} (${c.name}): remote write ${gb(res.remoteWrite).toFixed(2)}, short-circuit write ` +
            `${gb(res.localWrite).toFixed(2)}, remote read ${gb(res.remoteRead).toFixed(2)} (reused buffers ` +
            `${gb(res.remoteReadReuse).toFixed(2)}), short-circuit read ` +
            `${gb(res.localRead).toFixed(2)} (async ${gb(res.localReadAsync).toFixed(2)}) GB/s`,
        );
        const perPhase = Object.entries(res.cpu).map(
          ([phase, c]) =>
            `${phase} ${(c.client + c.worker).toFixed(2)} (client ${c.client.toFixed(2)} + worker ${c.worker.toFixed(2)}, ` +
            `of which its event loop ${c.workerLoop.toFixed(2)})`,
        );
        console.log(`  CPU s/GiB: ${perPhase.join(', ')}`);
      }
      await rm(join(base, 'data'), { recursive: true, force: true });
      const common = ['--name=ref', `--filename=${fioFile}`, '--bs=1M', `--size=${size}`, '--ioengine=psync'];
      fioWrites.push((await runFio([...common, '--rw=write', '--end_fsync=1'])).write.bytesPerSecond);
      if (!writesOnly) {
        fioReads.push((await runFio([...common, '--rw=read', '--invalidate=0'])).read.bytesPerSecond);
        iperfRuns.push((await runIperf3Client(iperf.port, IPERF_SECONDS)).bytesPerSecond);
      }
      console.log(
        `round ${r + 1}: fio write ${gb(fioWrites.at(-1) ?? 0).toFixed(2)}, fio read ${gb(fioReads.at(-1) ?? 0).toFixed(2)}, ` +
          `iperf3 ${gb(iperfRuns.at(-1) ?? 0).toFixed(2)} GB/s`,
      );
    }
    const rows: Comparison[] = [];
    type Rate = Exclude<keyof ClientResult, 'cpu'>;
    const pick = (name: string, k: Rate): number => gb(best((ours.get(name) ?? []).map((x) => x[k])));
    for (const c of configs) {
      const row = (what: string, k: Rate, refName: string, ref: number[], target?: number): void => {
        rows.push({
          what: `${what}, ${c.name}`,
          unit: 'GB/s',
          ours: pick(c.name, k),
          reference: gb(best(ref)),
          referenceName: refName,
          ...(target === undefined ? {} : { target }),
        });
      };
      if (!writesOnly) {
        // iperf3 receives into one reused buffer: the like-for-like row is the stream into reused
        // buffers (what the SDK's read(buffer) does); chunks the consumer keeps also pay for
        // faulting in fresh memory, and are printed without a target.
        row('remote streamed read, chunks kept', 'remoteRead', 'iperf3 -c 127.0.0.1', iperfRuns);
        row('remote streamed read, reused buffers', 'remoteReadReuse', 'iperf3 -c 127.0.0.1', iperfRuns, 0.6);
        // What the SDK does on a disk tier by default (client.local_read_verify = "disk"): every
        // chunk's CRC32 checked. The unchecked row is `local_read_verify = "none"` (and MEM tiers).
        row(
          'short-circuit read, checked (sync 1 MiB)',
          'localReadVerified',
          'fio --rw=read --bs=1M',
          fioReads,
          0.9,
        );
        row(
          'short-circuit read, unchecked (sync 1 MiB)',
          'localRead',
          'fio --rw=read --bs=1M',
          fioReads,
          0.9,
        );
        // The SDK reads page-cache-resident block files inline, as the sync row does
        // (src/client/local-read-policy.ts); the thread pool's cost is printed without a target.
        row('short-circuit read (async 1 MiB)', 'localReadAsync', 'fio --rw=read --bs=1M', fioReads);
      }
      row('remote write', 'remoteWrite', 'fio --rw=write --bs=1M --end_fsync=1', fioWrites, 0.5);
      row('short-circuit write', 'localWrite', 'fio --rw=write --bs=1M --end_fsync=1', fioWrites, 0.5);
    }
    printComparisons(
      `Worker benchmark (${blocks} × ${blockBytes / MiB} MiB blocks, best of ${rounds} rounds; 1 GB = 1e9 bytes)`,
      rows,
    );
  } finally {
    await iperf.stop();
    await rm(base, { recursive: true, force: true });
  }
}

await main();
