/**
 * Metadata benchmark: namespace operations through the cluster RPC against a real `strata master`
 * (child process, LMDB store on local disk, synced group commits, default configuration) with
 * concurrent clients, beside `redis-benchmark -t set,get -c <clients> -P 1` against a
 * redis-server started here, on the same machine in the same invocation. Also runs the same
 * workload on the namespace in this process (no RPC) to tell the engine's cost from the transport's.
 *
 *   node dist/bench/meta/main.js [--clients=40] [--files=40000] [--threads=2] [--redis=false]
 *     [--direct=false] [--phases=create,stat,...] [--connections=client|thread]
 *   npm run bench -- meta
 *
 * Clients run in worker threads (`--threads`), each client with its own connection (like
 * redis-benchmark's), or with `--connections=thread` the clients of a thread share one connection,
 * as the callers of one Strata client process do. Operations: create+complete (a file = two RPCs,
 * counted as one create), empty (an empty file in one call: Create with `complete: true`, one
 * transaction, in directories of its own), stat, list (pages of 100), rename, delete. Each phase also prints the
 * CPU time per operation of the master and of the client process (robust on a busy machine, where
 * ops/s mostly measure the share of CPU we got) and the master's transactions per physical commit.
 * The create reference includes redis with `appendfsync always`, as creates are acknowledged
 * only once on disk. STRATA_BENCH_NODE_FLAGS passes extra node flags to the master (e.g.
 * "--cpu-prof"; phase boundaries are then printed on the monotonic clock of its samples).
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
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
  direct: boolean;
  /** Clients of a thread share one connection (as the callers of one Strata client process do). */
  shared: boolean;
  /** The master's write-ahead log (`master.meta_wal`). */
  wal: boolean;
  phases: Phase[];
}

function flag(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

/**
 * Phases run in their fixed order. Each works on the files an earlier one left, so the phases a
 * chosen one needs are added (stat, list and rename need create; delete needs rename).
 */
function parsePhases(list: string): Phase[] {
  const wanted = new Set(list.split(',').filter((p) => p !== ''));
  for (const p of wanted)
    if (!(PHASES as readonly string[]).includes(p))
      throw new Error(`--phases: unknown phase "${p}" (allowed: ${PHASES.join(', ')})`);
  if (wanted.has('delete')) wanted.add('rename');
  if (wanted.size > 0) wanted.add('create');
  return PHASES.filter((p) => wanted.has(p));
}

function parseArgs(): Args {
  const a: Args = {
    clients: Number(flag('clients', '40')),
    files: Number(flag('files', '40000')),
    threads: Number(flag('threads', '2')),
    redis: flag('redis', 'true') !== 'false',
    direct: flag('direct', 'true') !== 'false',
    shared: flag('connections', 'client') === 'thread',
    wal: flag('wal', 'true') !== 'false',
    phases: parsePhases(flag('phases', PHASES.join(','))),
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

type Phase = 'create' | 'empty' | 'stat' | 'list' | 'rename' | 'delete';
const PHASES: readonly Phase[] = ['create', 'empty', 'stat', 'list', 'rename', 'delete'];

interface PhaseResult {
  phase: Phase;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  /** CPU time (user + system) per operation of the master process and of the client process. */
  masterCpuUs?: number;
  clientCpuUs?: number;
  /** Store transactions per physical commit in the master during the phase (the group-commit size). */
  txnsPerCommit?: number;
  /** Mean time of a physical commit, from its first write to its durable end. */
  commitMs?: number;
}

/** The master's store counters, from its /metrics. */
async function storeCounters(
  webPort: number,
): Promise<{ txns: number; commits: number; commitSeconds: number } | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${webPort}/metrics`)).text();
    const read = (name: string): number =>
      Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return {
      txns: read('strata_master_meta_transactions'),
      commits: read('strata_master_meta_commits'),
      commitSeconds: read('strata_master_meta_commit_seconds'),
    };
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux port). */
const PROC_TICKS_PER_SEC = 100;

/** CPU time a process has used so far (user + system, µs), from /proc; undefined off Linux. */
function processCpuUs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1e6) / PROC_TICKS_PER_SEC;
  } catch {
    return undefined;
  }
}

function ownCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
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
  /** One connection per client (like redis-benchmark -c), or one per thread shared by its clients. */
  shared: boolean;
  phase: Phase;
  clients: number[];
  filesPerClient: number;
}

/** Connects, warms up, reports ready, waits for "go", then runs the phase. */
async function runThread(job: ThreadJob): Promise<void> {
  const conns = new Map<number, RpcClient>();
  const connect = (): RpcClient =>
    new RpcClient({ addresses: [{ host: '127.0.0.1', port: job.port }], retryMax: 0 });
  const one = job.shared ? connect() : undefined;
  for (const c of job.clients) conns.set(c, one ?? connect());
  const rpc = (c: number): RpcClient => conns.get(c) as RpcClient;
  await Promise.all(job.clients.map((c) => rpc(c).call(M.GetStatus, { path: `/bench/c${c}` })));
  const ops: Record<Phase, Op> = {
    create: async (c, i) => {
      const r = await rpc(c).call(M.Create, { path: `/bench/c${c}/f${i}` });
      await rpc(c).call(M.Complete, { fileId: r.status.id, leaseId: r.leaseId, blocks: [], length: 0 });
    },
    empty: (c, i) => rpc(c).call(M.Create, { path: `/bench/e${c}/f${i}`, complete: true }),
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
    await Promise.all([...new Set(conns.values())].map((c) => c.close()));
  }
}

if (!isMainThread) {
  runThread(workerData as ThreadJob).catch((err: unknown) => {
    throw err;
  });
}

/** Runs one phase in client threads; the clock starts when every thread is connected and warm. */
async function rpcPhase(
  args: Args,
  port: number,
  webPort: number,
  masterPid: number | undefined,
  phase: Phase,
): Promise<PhaseResult> {
  const perClient = Math.floor(args.files / args.clients);
  const threads = Math.max(1, Math.min(args.threads, args.clients));
  const groups: number[][] = Array.from({ length: threads }, () => []);
  for (let c = 0; c < args.clients; c++) groups[c % threads]?.push(c);
  const self = fileURLToPath(import.meta.url);
  const workers = groups.map((clients) => {
    const job: ThreadJob = { port, shared: args.shared, phase, clients, filesPerClient: perClient };
    return new Worker(self, { workerData: job });
  });
  const next = (w: Worker): Promise<unknown> =>
    new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  await Promise.all(workers.map(next));
  const store0 = await storeCounters(webPort);
  const t0 = performance.now();
  const master0 = processCpuUs(masterPid);
  const client0 = ownCpuUs();
  const results = workers.map((w) => next(w) as Promise<number[]>);
  for (const w of workers) w.postMessage('go');
  const lats = await Promise.all(results);
  const secs = (performance.now() - t0) / 1000;
  const master1 = processCpuUs(masterPid);
  const store1 = await storeCounters(webPort);
  const r = summarise(phase, secs, lats.flat());
  const ops = lats.reduce((n, l) => n + l.length, 0);
  if (ops > 0) {
    r.clientCpuUs = (ownCpuUs() - client0) / ops;
    if (master0 !== undefined && master1 !== undefined) r.masterCpuUs = (master1 - master0) / ops;
  }
  if (store0 !== undefined && store1 !== undefined && store1.commits > store0.commits) {
    const commits = store1.commits - store0.commits;
    r.txnsPerCommit = (store1.txns - store0.txns) / commits;
    r.commitMs = ((store1.commitSeconds - store0.commitSeconds) * 1000) / commits;
  }
  return r;
}

// ---- the namespace in this process --------------------------------------------------------------

async function directPhases(args: Args, dir: string): Promise<PhaseResult[]> {
  const store = await LmdbStore.open({ dir: join(dir, 'direct'), durability: 'commit', wal: args.wal });
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
  for (const c of clients) {
    await ns.mkdir(`/bench/c${c}`, { parents: true });
    await ns.mkdir(`/bench/e${c}`);
  }
  const ops: Record<Phase, Op> = {
    create: async (c, i) => {
      const r = await ns.create(`/bench/c${c}/f${i}`);
      await ns.complete(r.status.id, r.leaseId, [], 0);
    },
    empty: (c, i) => ns.create(`/bench/e${c}/f${i}`, { complete: true }),
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
    for (const phase of args.phases) {
      const t0 = performance.now();
      const cpu0 = ownCpuUs();
      const { latUs } = await drive(clients, perClient, ops[phase]);
      const r = summarise(phase, (performance.now() - t0) / 1000, latUs);
      // The namespace, the store and its threads are all this process: its CPU per operation.
      if (latUs.length > 0) r.masterCpuUs = (ownCpuUs() - cpu0) / latUs.length;
      out.push(r);
    }
  } finally {
    await store.close();
  }
  return out;
}

// ---- the disk's sync latency ---------------------------------------------------------------------

/** Synced appends of the disk probe, and the most time it may take. */
const SYNC_PROBE_WRITES = 200;
const SYNC_PROBE_MAX_MS = 3_000;
const SYNC_PROBE_WRITE_BYTES = 16 * 1024;

/**
 * fdatasync latency after an append, where the metadata store lives: what a commit waits for
 * (LMDB writes its pages, then syncs them). A create is acknowledged after two such commits.
 */
function probeSync(dir: string): { p50Ms: number; meanMs: number } {
  const file = join(dir, 'sync-probe');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(SYNC_PROBE_WRITE_BYTES, 1);
  const lat: number[] = [];
  const deadline = performance.now() + SYNC_PROBE_MAX_MS;
  try {
    for (let i = 0; i < SYNC_PROBE_WRITES && performance.now() < deadline; i++) {
      writeSync(fd, block, 0, block.length, i * block.length);
      const t0 = performance.now();
      fdatasyncSync(fd);
      lat.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  lat.sort((a, b) => a - b);
  return {
    p50Ms: lat[lat.length >> 1] ?? 0,
    meanMs: lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length),
  };
}

// ---- main ---------------------------------------------------------------------------------------

function printPhase(r: PhaseResult): void {
  const unit = r.phase === 'list' ? `pages/s (${LIST_PAGE} entries)` : 'ops/s';
  const group =
    r.txnsPerCommit === undefined
      ? ''
      : `  ${r.txnsPerCommit.toFixed(1)} txn/commit${r.commitMs === undefined || Number.isNaN(r.commitMs) ? '' : `, ${r.commitMs.toFixed(1)} ms/commit`}`;
  const cpu =
    r.clientCpuUs === undefined
      ? r.masterCpuUs === undefined
        ? ''
        : `  cpu/op: ${Math.round(r.masterCpuUs)} µs`
      : `  cpu/op: master ${r.masterCpuUs === undefined ? '?' : Math.round(r.masterCpuUs)} µs, clients ${Math.round(r.clientCpuUs)} µs`;
  process.stdout.write(
    `  ${r.phase.padEnd(8)} ${Math.round(r.opsPerSec).toString().padStart(8)} ${unit.padEnd(22)} p50 ${(r.p50Us / 1000).toFixed(2)} ms  p99 ${(r.p99Us / 1000).toFixed(2)} ms${cpu}${group}\n`,
  );
}

/** Requests of the durable SET reference: fewer, as each waits for an fsync. */
const DURABLE_SET_REQUESTS = 20_000;

interface RedisFigures {
  set: number;
  get: number;
  /** SET with every write fsynced before the reply. */
  durableSet: number | undefined;
}

async function redisBench(clients: number, dir: string): Promise<RedisFigures | undefined> {
  let server: RedisServer | undefined;
  let figures: RedisFigures;
  try {
    server = await startRedisServer();
    const port = server.port;
    const run = (test: string): Promise<number> =>
      runRedisBenchmark({ port, test, clients, pipeline: 1, requests: 200_000 });
    figures = { set: await run('set'), get: await run('get'), durableSet: undefined };
  } catch (err) {
    process.stderr.write(`redis reference unavailable: ${(err as Error).message}\n`);
    return undefined;
  } finally {
    await server?.stop();
  }
  let durable: RedisServer | undefined;
  try {
    durable = await startRedisServer({ durableDir: join(dir, 'redis-aof') });
    figures.durableSet = await runRedisBenchmark({
      port: durable.port,
      test: 'set',
      clients,
      pipeline: 1,
      requests: DURABLE_SET_REQUESTS,
    });
  } catch (err) {
    process.stderr.write(`durable redis reference unavailable: ${(err as Error).message}\n`);
  } finally {
    await durable?.stop();
  }
  return figures;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-meta-'));
  const rpcPort = await freePort();
  const webPort = await freePort();
  const conf = join(dir, 'master.toml');
  writeFileSync(
    conf,
    `cluster_id = "bench"\n[master]\nhostname = "127.0.0.1"\nbind_host = "127.0.0.1"\nrpc_port = ${rpcPort}\nweb_port = ${webPort}\nmeta_dir = "${join(dir, 'meta')}"\nmeta_wal = ${args.wal}\n[log]\nlevel = "WARN"\nlog_dir = "stderr"\n`,
  );
  const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const extra = (process.env.STRATA_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  const master = spawn(process.execPath, [...STRATA_NODE_FLAGS, ...extra, bin, 'master', '--conf', conf], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await waitReady(`http://127.0.0.1:${webPort}/ready`, 20_000);
    const setup = new RpcClient({ addresses: [{ host: '127.0.0.1', port: rpcPort }] });
    for (let c = 0; c < args.clients; c++) {
      await setup.call(M.Mkdir, { path: `/bench/c${c}`, parents: true });
      await setup.call(M.Mkdir, { path: `/bench/e${c}` });
    }
    await setup.close();
    process.stdout.write(
      `strata master over RPC (lmdb, ${args.wal ? 'write-ahead log, group-committed syncs' : 'synced group commits'}) — ${args.clients} clients, ${args.files} files, ${args.threads} client threads\n`,
    );
    const sync = probeSync(dir);
    process.stdout.write(
      `disk: fdatasync after a ${SYNC_PROBE_WRITE_BYTES / 1024} KiB append p50 ${sync.p50Ms.toFixed(2)} ms, mean ${sync.meanMs.toFixed(2)} ms` +
        ` — a create waits for two ${args.wal ? 'log syncs' : 'synced commits'}, so ${args.clients} clients can do at most ~${Math.round((args.clients * 1000) / (2 * sync.meanMs))} creates/s\n`,
    );
    const results: PhaseResult[] = [];
    for (const phase of args.phases) {
      const startUs = process.hrtime.bigint() / 1000n;
      const r = await rpcPhase(args, rpcPort, webPort, master.pid, phase);
      // Monotonic clock, the one --cpu-prof stamps samples with: cut a master profile by phase.
      if (extra.length > 0)
        process.stderr.write(`phase ${phase} monotonic µs ${startUs}-${process.hrtime.bigint() / 1000n}\n`);
      results.push(r);
      printPhase(r);
    }
    if (args.direct) {
      process.stdout.write(`namespace in this process, no RPC (same workload and store settings):\n`);
      for (const r of await directPhases(args, dir)) printPhase(r);
    }
    const redis = args.redis ? await redisBench(args.clients, dir) : undefined;
    if (redis !== undefined) {
      // One row per phase that ran (a --phases subset leaves the others out, not at 0).
      const row = (phase: Phase, what: string, reference: number, referenceName: string, goalOps: number) => {
        const ours = results.find((r) => r.phase === phase)?.opsPerSec;
        return ours === undefined
          ? []
          : [
              {
                what,
                unit: 'ops/s',
                ours,
                reference,
                referenceName,
                target: Number((goalOps / reference).toFixed(2)),
              },
            ];
      };
      printComparisons(
        `namespace over RPC beside redis-benchmark -c ${args.clients} -P 1 (targets: the absolute goals as ratios)`,
        [
          ...row('create', 'create+complete vs SET', redis.set, 'redis SET', CREATE_TARGET_OPS),
          ...(redis.durableSet === undefined
            ? []
            : row(
                'create',
                'create+complete vs fsynced SET',
                redis.durableSet,
                'redis SET, appendfsync always',
                CREATE_TARGET_OPS,
              )),
          ...row('empty', 'empty file (one call) vs SET', redis.set, 'redis SET', CREATE_TARGET_OPS),
          ...(redis.durableSet === undefined
            ? []
            : row(
                'empty',
                'empty file (one call) vs fsynced SET',
                redis.durableSet,
                'redis SET, appendfsync always',
                CREATE_TARGET_OPS,
              )),
          ...row('stat', 'stat vs GET', redis.get, 'redis GET', STAT_TARGET_OPS),
          ...row('rename', 'rename vs SET', redis.set, 'redis SET', 0),
          ...row('delete', 'delete vs SET', redis.set, 'redis SET', 0),
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
