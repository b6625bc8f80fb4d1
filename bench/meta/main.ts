/**
 * Metadata benchmark: namespace operations through the cluster RPC against a real `strata master`
 * (child process, LMDB store on local disk, synced group commits, default configuration) with
 * concurrent clients, beside `redis-benchmark -t set,get -c <clients> -P 1` against a
 * redis-server started here, on the same machine in the same invocation. Also runs the same
 * workload on the namespace in this process (no RPC) to tell the engine's cost from the transport's.
 *
 *   node dist/bench/meta/main.js [--clients=40] [--files=40000] [--threads=2] [--redis=false]
 *   npm run bench -- meta
 *
 * Clients run in worker threads (`--threads`), each client with its own connection. Operations:
 * create+complete (a file = two RPCs, counted as one create), stat, list (pages of 100), rename,
 * delete. STRATA_BENCH_NODE_FLAGS passes extra node flags to the master (e.g. "--cpu-prof").
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { silentLogger } from '../../src/common/logging.js';
import { STRATA_NODE_FLAGS } from '../../src/common/runtime.js';
import { LmdbStore } from '../../src/meta/index.js';
import { Namespace } from '../../src/master/namespace/index.js';
import * as M from '../../src/protocol/master-calls.js';
import { RpcClient } from '../../src/rpc/index.js';
import { freePort } from '../lib/proc.js';
import { runRedisBenchmark, startRedisServer } from '../lib/redis.js';
import type { RedisServer } from '../lib/redis.js';
import { printComparisons } from '../lib/report.js';

const CREATE_TARGET_OPS = 20_000;
const STAT_TARGET_OPS = 60_000;
const LIST_PAGE = 100;

interface Args {
  clients: number;
  files: number;
  threads: number;
  redis: boolean;
}

function flag(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

function parseArgs(): Args {
  const a: Args = {
    clients: Number(flag('clients', '40')),
    files: Number(flag('files', '40000')),
    threads: Number(flag('threads', '2')),
    redis: flag('redis', 'true') !== 'false',
  };
  for (const [k, v] of Object.entries(a))
    if (typeof v === 'number' && (!Number.isInteger(v) || v < 1))
      throw new Error(`--${k} must be a positive integer`);
  return a;
}

async function waitReady(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} not ready within ${ms} ms`);
}

type Phase = 'create' | 'stat' | 'list' | 'rename' | 'delete';
const PHASES: readonly Phase[] = ['create', 'stat', 'list', 'rename', 'delete'];

interface PhaseResult {
  phase: Phase;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
}

/** One operation of a client: `undefined` when this index has nothing to do in the phase. */
type Op = (c: number, i: number) => Promise<unknown> | undefined;

/** Runs `op` for every (client, index) with one loop per client; returns rate and latencies. */
async function drive(
  clients: readonly number[],
  perClient: number,
  op: Op,
): Promise<{ ops: number; latUs: number[] }> {
  const latUs: number[] = [];
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < perClient; i++) {
        const t0 = process.hrtime.bigint();
        const p = op(c, i);
        if (p === undefined) continue;
        await p;
        latUs.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }),
  );
  return { ops: latUs.length, latUs };
}

function summarise(phase: Phase, secs: number, latUs: number[]): PhaseResult {
  latUs.sort((a, b) => a - b);
  const pct = (q: number): number => latUs[Math.min(latUs.length - 1, Math.floor(q * latUs.length))] ?? 0;
  return { phase, opsPerSec: latUs.length / secs, p50Us: pct(0.5), p99Us: pct(0.99) };
}

// ---- client threads (RPC) ----------------------------------------------------------------------

interface ThreadJob {
  port: number;
  phase: Phase;
  clients: number[];
  filesPerClient: number;
}

/** Connects, warms up, reports ready, waits for "go", then runs the phase. */
async function runThread(job: ThreadJob): Promise<void> {
  const conns = new Map<number, RpcClient>();
  for (const c of job.clients)
    conns.set(c, new RpcClient({ addresses: [{ host: '127.0.0.1', port: job.port }], retryMax: 0 }));
  const rpc = (c: number): RpcClient => conns.get(c) as RpcClient;
  await Promise.all(job.clients.map((c) => rpc(c).call(M.GetStatus, { path: `/bench/c${c}` })));
  const ops: Record<Phase, Op> = {
    create: async (c, i) => {
      const r = await rpc(c).call(M.Create, { path: `/bench/c${c}/f${i}` });
      await rpc(c).call(M.Complete, { fileId: r.status.id, leaseId: r.leaseId, blocks: [], length: 0 });
    },
    stat: (c, i) => rpc(c).call(M.GetStatus, { path: `/bench/c${c}/f${i}` }),
    list: (c, i) =>
      i % LIST_PAGE === 0
        ? rpc(c).call(M.List, {
            path: `/bench/c${c}`,
            limit: LIST_PAGE,
            ...(i === 0 ? {} : { startAfter: `f${i - 1}` }),
          })
        : undefined,
    rename: (c, i) => rpc(c).call(M.Rename, { src: `/bench/c${c}/f${i}`, dst: `/bench/c${c}/r${i}` }),
    delete: (c, i) => rpc(c).call(M.Delete, { path: `/bench/c${c}/r${i}` }),
  };
  const port = parentPort;
  if (port === null) return;
  await new Promise<void>((resolve) => {
    port.once('message', () => resolve());
    port.postMessage('ready');
  });
  try {
    port.postMessage((await drive(job.clients, job.filesPerClient, ops[job.phase])).latUs);
  } finally {
    await Promise.all([...conns.values()].map((c) => c.close()));
  }
}

if (!isMainThread) {
  runThread(workerData as ThreadJob).catch((err: unknown) => {
    throw err;
  });
}

/** Runs one phase in client threads; the clock starts when every thread is connected and warm. */
async function rpcPhase(args: Args, port: number, phase: Phase): Promise<PhaseResult> {
  const perClient = Math.floor(args.files / args.clients);
  const threads = Math.max(1, Math.min(args.threads, args.clients));
  const groups: number[][] = Array.from({ length: threads }, () => []);
  for (let c = 0; c < args.clients; c++) groups[c % threads]?.push(c);
  const self = fileURLToPath(import.meta.url);
  const workers = groups.map((clients) => {
    const job: ThreadJob = { port, phase, clients, filesPerClient: perClient };
    return new Worker(self, { workerData: job });
  });
  const next = (w: Worker): Promise<unknown> =>
    new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  await Promise.all(workers.map(next));
  const t0 = performance.now();
  const results = workers.map((w) => next(w) as Promise<number[]>);
  for (const w of workers) w.postMessage('go');
  const lats = await Promise.all(results);
  return summarise(phase, (performance.now() - t0) / 1000, lats.flat());
}

// ---- the namespace in this process --------------------------------------------------------------

async function directPhases(args: Args, dir: string): Promise<PhaseResult[]> {
  const store = await LmdbStore.open({ dir: join(dir, 'direct'), durability: 'commit' });
  const ns = await Namespace.open({
    store,
    clusterId: 'bench',
    defaults: {
      blockSizeBytes: 128 * 1024 * 1024,
      replicas: 1,
      storageType: 'DISK',
      ttlMs: 0,
      ttlAction: 'none',
    },
    leaseTimeoutMs: 60_000,
    log: silentLogger(),
  });
  const perClient = Math.floor(args.files / args.clients);
  const clients = Array.from({ length: args.clients }, (_, c) => c);
  for (const c of clients) await ns.mkdir(`/bench/c${c}`, { parents: true });
  const ops: Record<Phase, Op> = {
    create: async (c, i) => {
      const r = await ns.create(`/bench/c${c}/f${i}`);
      await ns.complete(r.status.id, r.leaseId, [], 0);
    },
    stat: (c, i) => ns.getStatus(`/bench/c${c}/f${i}`),
    list: (c, i) =>
      i % LIST_PAGE === 0
        ? ns.list(`/bench/c${c}`, { limit: LIST_PAGE, ...(i === 0 ? {} : { startAfter: `f${i - 1}` }) })
        : undefined,
    rename: (c, i) => ns.rename(`/bench/c${c}/f${i}`, `/bench/c${c}/r${i}`),
    delete: (c, i) => ns.delete(`/bench/c${c}/r${i}`),
  };
  const out: PhaseResult[] = [];
  try {
    for (const phase of PHASES) {
      const t0 = performance.now();
      const { latUs } = await drive(clients, perClient, ops[phase]);
      out.push(summarise(phase, (performance.now() - t0) / 1000, latUs));
    }
  } finally {
    await store.close();
  }
  return out;
}

// ---- main ---------------------------------------------------------------------------------------

function printPhase(r: PhaseResult): void {
  const unit = r.phase === 'list' ? `pages/s (${LIST_PAGE} entries)` : 'ops/s';
  process.stdout.write(
    `  ${r.phase.padEnd(8)} ${Math.round(r.opsPerSec).toString().padStart(8)} ${unit.padEnd(22)} p50 ${(r.p50Us / 1000).toFixed(2)} ms  p99 ${(r.p99Us / 1000).toFixed(2)} ms\n`,
  );
}

async function redisBench(clients: number): Promise<{ set: number; get: number } | undefined> {
  let server: RedisServer | undefined;
  try {
    server = await startRedisServer();
    const port = server.port;
    const run = (test: string): Promise<number> =>
      runRedisBenchmark({ port, test, clients, pipeline: 1, requests: 200_000 });
    return { set: await run('set'), get: await run('get') };
  } catch (err) {
    process.stderr.write(`redis reference unavailable: ${(err as Error).message}\n`);
    return undefined;
  } finally {
    await server?.stop();
  }
}

async function main(): Promise<void> {
  const args = parseArgs();
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-meta-'));
  const rpcPort = await freePort();
  const webPort = await freePort();
  const conf = join(dir, 'master.toml');
  writeFileSync(
    conf,
    `cluster_id = "bench"\n[master]\nhostname = "127.0.0.1"\nbind_host = "127.0.0.1"\nrpc_port = ${rpcPort}\nweb_port = ${webPort}\nmeta_dir = "${join(dir, 'meta')}"\n[log]\nlevel = "WARN"\nlog_dir = "stderr"\n`,
  );
  const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const extra = (process.env.STRATA_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  const master = spawn(process.execPath, [...STRATA_NODE_FLAGS, ...extra, bin, 'master', '--conf', conf], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await waitReady(`http://127.0.0.1:${webPort}/ready`, 20_000);
    const setup = new RpcClient({ addresses: [{ host: '127.0.0.1', port: rpcPort }] });
    for (let c = 0; c < args.clients; c++) await setup.call(M.Mkdir, { path: `/bench/c${c}`, parents: true });
    await setup.close();
    process.stdout.write(
      `strata master over RPC (lmdb, synced group commits) — ${args.clients} clients, ${args.files} files, ${args.threads} client threads\n`,
    );
    const results: PhaseResult[] = [];
    for (const phase of PHASES) {
      const r = await rpcPhase(args, rpcPort, phase);
      results.push(r);
      printPhase(r);
    }
    process.stdout.write(`namespace in this process, no RPC (same workload and store settings):\n`);
    for (const r of await directPhases(args, dir)) printPhase(r);
    const redis = args.redis ? await redisBench(args.clients) : undefined;
    if (redis !== undefined) {
      const rate = (p: Phase): number => results.find((r) => r.phase === p)?.opsPerSec ?? 0;
      printComparisons(
        `namespace over RPC beside redis-benchmark -c ${args.clients} -P 1 (targets: the absolute goals as ratios)`,
        [
          {
            what: 'create+complete vs SET',
            unit: 'ops/s',
            ours: rate('create'),
            reference: redis.set,
            referenceName: 'redis SET',
            target: Number((CREATE_TARGET_OPS / redis.set).toFixed(2)),
          },
          {
            what: 'stat vs GET',
            unit: 'ops/s',
            ours: rate('stat'),
            reference: redis.get,
            referenceName: 'redis GET',
            target: Number((STAT_TARGET_OPS / redis.get).toFixed(2)),
          },
          {
            what: 'rename vs SET',
            unit: 'ops/s',
            ours: rate('rename'),
            reference: redis.set,
            referenceName: 'redis SET',
            target: 0,
          },
          {
            what: 'delete vs SET',
            unit: 'ops/s',
            ours: rate('delete'),
            reference: redis.set,
            referenceName: 'redis SET',
            target: 0,
          },
        ],
      );
    }
    process.stdout.write(
      `absolute targets: create >= ${CREATE_TARGET_OPS} ops/s, stat >= ${STAT_TARGET_OPS} ops/s\n`,
    );
  } finally {
    master.kill('SIGTERM');
    await new Promise((r) => master.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
