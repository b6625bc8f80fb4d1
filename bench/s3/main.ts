/**
 * S3 gateway benchmark, in one invocation: GET and PUT of 1 MiB and 100 MiB objects with
 * concurrency 16 through `strata s3` (a MiniCluster of one master and one worker behind it),
 * beside nginx serving the same bytes from files (GET) and fio writing the same amount
 * sequentially with 16 jobs (PUT).
 *
 *   node dist/bench/s3/main.js [--small-count 256] [--large-count 16] [--concurrency 16]
 *                              [--runs 3] [--threadpool N] (UV_THREADPOOL_SIZE of the gateway)
 *                              [--profile-dir DIR] (a CPU profile of the gateway, node --cpu-prof)
 *                              [--multipart-parts 64] (CompleteMultipartUpload beside a copy; 0: skip)
 *
 * After the runs of each size it prints where the time of the last PUT and GET step went: the
 * gateway's upload phases and the mean time of each RPC as the gateway called it and as the
 * master and the worker served it (from their /metrics, see phases.ts), and the CPU time per
 * request of every process in each step (the gateway, master and worker from their
 * process_cpu_seconds_total, nginx from /proc/PID/schedstat, the load generator from
 * process.cpuUsage), summed over all runs: on a shared machine wall-clock figures swing 2-5×,
 * CPU per request much less, and on two cores the sum of them bounds the throughput.
 *
 * Targets (printed beside the ratios): GET ≥ 0.8× nginx, PUT ≥ 0.5× fio. One HTTP load
 * generator (node:http, keep-alive, presigned URLs so no per-request signing cost) drives both
 * the gateway and nginx, so the client's own cost is the same on both sides.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { STRATA_NODE_FLAGS } from '../../src/common/runtime.js';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { MiniCluster } from '../../test/helpers/mini-cluster.js';
import { STRATA_BIN, startProcess } from '../../test/helpers/process.js';
import { ACCESS_KEY, REGION, SECRET_KEY } from '../../test/gateway/harness.js';
import { presign } from '../../test/gateway/signing.js';
import { runFio } from '../lib/fio.js';
import { runIperf3Client, startIperf3Server } from '../lib/iperf3.js';
import { freePort, requireTool, startBackground, waitForPort } from '../lib/proc.js';
import type { Background } from '../lib/proc.js';
import { best, printComparisons } from '../lib/report.js';
import type { Comparison } from '../lib/report.js';
import { cpuKey, formatSplit, snapshot } from './phases.js';
import type { ProcessName, Snapshot } from './phases.js';

// The gateway's clients move gigabytes per second too: run with the flags strata processes use.
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

const { values } = parseArgs({
  options: {
    'small-count': { type: 'string', default: '256' },
    'large-count': { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '16' },
    /** Runs of each figure; the best is kept (a shared machine is noisy downwards). */
    runs: { type: 'string', default: '3' },
    /** UV_THREADPOOL_SIZE of the gateway process (default: what the environment says, else libuv's 4). */
    threadpool: { type: 'string' },
    /** Writes a V8 CPU profile of the gateway (node --cpu-prof) into this directory. */
    'profile-dir': { type: 'string' },
    /** Parts of 8 MiB of the multipart-complete figure (0: skip it). */
    'multipart-parts': { type: 'string', default: '64' },
  },
});
const CONCURRENCY = Number(values.concurrency);
const RUNS = Number(values.runs);
const SIZES = [
  { name: '1 MiB', bytes: MiB, count: Number(values['small-count']) },
  { name: '100 MiB', bytes: 100 * MiB, count: Number(values['large-count']) },
];
const MB = 1e6;

/**
 * Keep-alive connections of the load generator. A fresh pool per step: a socket left idle across
 * a step (fio runs for seconds) may be closed by the server just as it is reused (EPIPE).
 */
let agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function httpGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(n) : reject(new Error(`GET ${url}: ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function httpPut(url: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent, method: 'PUT', headers: { 'content-length': String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve()
            : reject(new Error(`PUT: ${res.statusCode} ${Buffer.concat(chunks).toString()}`)),
        );
      },
    );
    req.on('error', reject);
    // Write in 1 MiB pieces, as a client streaming from a file would.
    for (let off = 0; off < body.length; off += MiB)
      req.write(body.subarray(off, Math.min(body.length, off + MiB)));
    req.end();
  });
}

/** Runs `fn` over items with `n` in flight; returns bytes per second over the wall time. */
async function pool(
  items: readonly string[],
  n: number,
  fn: (item: string) => Promise<number>,
): Promise<number> {
  agent.destroy();
  agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  let bytes = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        // Not `bytes += await …`: that reads `bytes` before awaiting and loses the others' counts.
        const n = await fn(items[i] as string);
        bytes += n;
      }
    }),
  );
  return (bytes / (performance.now() - started)) * 1000;
}

async function startNginx(dir: string, root: string, port: number): Promise<Background> {
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
master_process off;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`,
  );
  return startBackground('nginx', ['-c', conf, '-p', dir, '-e', 'stderr'], () => waitForPort(port));
}

/** fio writing `count` files of `bytes` each with CONCURRENCY jobs, flushed at the end (workers sync blocks). */
async function fioWrite(dir: string, bytes: number, count: number): Promise<number> {
  const perJob = Math.max(1, Math.floor(count / CONCURRENCY));
  const jobs = Math.min(CONCURRENCY, count);
  const fioDir = join(dir, 'fio');
  rmSync(fioDir, { recursive: true, force: true });
  mkdirSync(fioDir);
  const r = await runFio([
    '--name=put',
    `--directory=${fioDir}`,
    '--rw=write',
    '--bs=1M',
    `--filesize=${bytes}`,
    `--nrfiles=${perJob}`,
    `--size=${bytes * perJob}`,
    `--numjobs=${jobs}`,
    '--group_reporting',
    '--ioengine=psync',
    '--direct=0',
    '--end_fsync=1',
  ]);
  rmSync(fioDir, { recursive: true, force: true });
  return r.write.bytesPerSecond;
}

/** CPU seconds a single-threaded process (nginx, master_process off) has run: /proc/PID/schedstat, in ns. */
function threadCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
  } catch {
    return 0;
  }
}

/** This process's CPU seconds (the load generator). */
function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * CPU time per request, summed over every run of a size: wall-clock figures on a shared machine
 * swing 2-5×, CPU per request much less. `step → process → seconds`, with the requests counted.
 */
class CpuTally {
  readonly #seconds = new Map<string, number>();
  readonly #requests = new Map<string, number>();

  add(step: string, proc: string, seconds: number): void {
    const k = `${step}\t${proc}`;
    this.#seconds.set(k, (this.#seconds.get(k) ?? 0) + seconds);
  }

  requests(step: string, n: number): void {
    this.#requests.set(step, (this.#requests.get(step) ?? 0) + n);
  }

  format(title: string): string {
    const lines = [`${title} (CPU ms per request, all runs; user + system, all threads)`];
    for (const [k, s] of this.#seconds) {
      const [step = '', proc = ''] = k.split('\t');
      const n = this.#requests.get(step) ?? 0;
      if (n === 0) continue;
      lines.push(
        `  ${step.padEnd(10)} ${proc.padEnd(16)} ${((s / n) * 1000).toFixed(3).padStart(9)} ms  ×${n}`,
      );
    }
    return lines.join('\n');
  }
}

/** MB/s of MD5 on one core over `bytes` (what bounds the PUTs of one upload: S3 needs the ETag). */
function md5MegabytesPerSecond(bytes: number): number {
  const buf = randomBytes(MiB);
  const started = process.cpuUsage();
  const h = createHash('md5');
  for (let done = 0; done < bytes; done += buf.length) h.update(buf);
  h.digest();
  const used = process.cpuUsage(started);
  return bytes / MB / ((used.user + used.system) / 1e6);
}

/** The CPU the gateway, the master and the worker used between two snapshots. */
function tallyCpu(cpu: CpuTally, step: string, before: Snapshot, after: Snapshot): void {
  for (const proc of ['gateway', 'master', 'worker'] as const) {
    const a = after.get(cpuKey(proc))?.sum;
    const b = before.get(cpuKey(proc))?.sum;
    if (a !== undefined && b !== undefined) cpu.add(step, proc, a - b);
  }
}

/** Flushes dirty pages so one step's writeback does not slow the next. */
/**
 * CompleteMultipartUpload of `parts` × 8 MiB beside a CopyObject of the object it made (the bytes
 * moved once, what a complete that copies its parts costs), through the AWS SDK.
 */
async function multipartFigure(port: number, parts: number): Promise<string> {
  const PART = 8 * MiB;
  const s3 = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  });
  try {
    process.stderr.write(`multipart: ${parts} parts of 8 MiB…\n`);
    const body = randomBytes(PART);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bench', Key: 'mpu' }));
    const etags: string[] = [];
    await pool(
      Array.from({ length: parts }, (_, i) => String(i + 1)),
      4,
      async (part) => {
        const n = Number(part);
        const r = await s3.send(
          new UploadPartCommand({ Bucket: 'bench', Key: 'mpu', UploadId, PartNumber: n, Body: body }),
        );
        etags[n - 1] = r.ETag ?? '';
        return PART;
      },
    );
    settle();
    let t0 = performance.now();
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'bench',
        Key: 'mpu',
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    const completeMs = performance.now() - t0;
    settle();
    t0 = performance.now();
    await s3.send(new CopyObjectCommand({ Bucket: 'bench', Key: 'mpu-copy', CopySource: 'bench/mpu' }));
    const copyMs = performance.now() - t0;
    await s3.send(new DeleteObjectCommand({ Bucket: 'bench', Key: 'mpu' }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'bench', Key: 'mpu-copy' }));
    const mib = (parts * PART) / MiB;
    return (
      `CompleteMultipartUpload of ${parts} × 8 MiB (${mib} MiB): ${completeMs.toFixed(1)} ms; ` +
      `CopyObject of the result (its bytes moved once): ${copyMs.toFixed(0)} ms (${(copyMs / completeMs).toFixed(1)}× the complete)`
    );
  } finally {
    s3.destroy();
  }
}

function settle(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

async function main(): Promise<void> {
  requireTool('nginx', 'nginx-light');
  requireTool('fio', 'fio');
  requireTool('iperf3', 'iperf3');
  const cleanups: (() => Promise<void> | void)[] = [];
  let gatewayLog: (() => string) | undefined;
  const t = { after: (fn: () => Promise<void> | void) => void cleanups.push(fn) };
  try {
    process.stderr.write('starting a cluster (1 master, 1 worker) and the S3 gateway…\n');
    const cluster = await MiniCluster.start(t, { workers: 1 });
    const port = await freePort();
    const webPort = await freePort();
    const conf = join(cluster.dir, 's3.toml');
    writeFileSync(
      conf,
      readFileSync(cluster.clientConfPath, 'utf8').replace('level = "INFO"', 'level = "WARN"') +
        `\n[s3_gateway]\nlisten = "127.0.0.1:${port}"\nweb_port = ${webPort}\nregion = "${REGION}"\naccess_key = "${ACCESS_KEY}"\nsecret_key = "${SECRET_KEY}"\n`,
    );
    const profileDir = values['profile-dir'];
    const profileFlags = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
    const threadpool = values.threadpool;
    const gw = startProcess(
      process.execPath,
      [...STRATA_NODE_FLAGS, ...profileFlags, STRATA_BIN, 's3', '--conf', conf],
      threadpool === undefined ? {} : { env: { ...process.env, UV_THREADPOOL_SIZE: threadpool } },
    );
    gatewayLog = () => gw.stderr;
    cleanups.push(async () => void (await gw.stop('SIGTERM')));
    await waitForPort(port, 20_000);
    await waitForPort(webPort, 20_000);
    // Create the bucket (a signed PUT of the bucket path, via a presigned URL).
    await httpPut(await presign({ method: 'PUT', port, path: '/bench' }, 3600), Buffer.alloc(0));

    const www = join(cluster.dir, 'www');
    mkdirSync(www);
    const nginxPort = await freePort();
    const nginx = await startNginx(cluster.dir, www, nginxPort);
    cleanups.push(() => nginx.stop());

    const metricsUrls: Record<ProcessName, string> = {
      gateway: `http://127.0.0.1:${webPort}/metrics`,
      master: `http://127.0.0.1:${cluster.masters[0]?.webPort ?? 0}/metrics`,
      worker: `http://127.0.0.1:${cluster.workers[0]?.webPort ?? 0}/metrics`,
    };
    const splits: string[] = [];
    const rows: Comparison[] = [];
    for (const size of SIZES.filter((s) => s.count > 0)) {
      const body = randomBytes(size.bytes);
      const keys = Array.from({ length: size.count }, (_, i) => `${size.bytes}/obj-${i}`);
      mkdirSync(join(www, String(size.bytes)), { recursive: true });
      for (const k of keys) writeFileSync(join(www, k), body);
      const putUrls = new Map<string, string>();
      const getUrls = new Map<string, string>();
      for (const k of keys) {
        putUrls.set(k, await presign({ method: 'PUT', port, path: `/bench/${k}` }, 3600));
        getUrls.set(k, await presign({ method: 'GET', port, path: `/bench/${k}` }, 3600));
      }
      const puts: number[] = [];
      const fios: number[] = [];
      const gets: number[] = [];
      const nginxGets: number[] = [];
      const cpu = new CpuTally();
      let putSplit: [Snapshot, Snapshot] | undefined;
      let getSplit: [Snapshot, Snapshot] | undefined;
      // References and ours interleave, run after run, so a busy moment hits both alike.
      for (let run = 0; run < RUNS; run++) {
        process.stderr.write(`${size.name} × ${size.count}: run ${run + 1}/${RUNS}…\n`);
        // Each step starts with no dirty pages left by the previous one (fio's or ours).
        settle();
        fios.push(await fioWrite(cluster.dir, size.bytes, size.count));
        settle();
        const beforePut = await snapshot(metricsUrls);
        let loadCpu = ownCpuSeconds();
        puts.push(
          await pool(keys, CONCURRENCY, async (k) => {
            await httpPut(putUrls.get(k) ?? '', body);
            return body.length;
          }),
        );
        cpu.add('PUT', 'load generator', ownCpuSeconds() - loadCpu);
        putSplit = [beforePut, await snapshot(metricsUrls)];
        tallyCpu(cpu, 'PUT', ...putSplit);
        cpu.requests('PUT', keys.length);
        settle();
        const nginxCpu = threadCpuSeconds(nginx.child.pid);
        loadCpu = ownCpuSeconds();
        nginxGets.push(await pool(keys, CONCURRENCY, (k) => httpGet(`http://127.0.0.1:${nginxPort}/${k}`)));
        cpu.add('nginx GET', 'load generator', ownCpuSeconds() - loadCpu);
        cpu.add('nginx GET', 'nginx', threadCpuSeconds(nginx.child.pid) - nginxCpu);
        cpu.requests('nginx GET', keys.length);
        const beforeGet = await snapshot(metricsUrls);
        loadCpu = ownCpuSeconds();
        gets.push(
          await pool(keys, CONCURRENCY, async (k) => {
            const n = await httpGet(getUrls.get(k) ?? '');
            if (n !== body.length) throw new Error(`GET ${k}: ${n} bytes, expected ${body.length}`);
            return n;
          }),
        );
        cpu.add('GET', 'load generator', ownCpuSeconds() - loadCpu);
        getSplit = [beforeGet, await snapshot(metricsUrls)];
        tallyCpu(cpu, 'GET', ...getSplit);
        cpu.requests('GET', keys.length);
        const mbs = (v: number[]): string => `${((v[v.length - 1] ?? 0) / MB).toFixed(1)} MB/s`;
        process.stderr.write(
          `  fio write ${mbs(fios)}, PUT ${mbs(puts)}, nginx GET ${mbs(nginxGets)}, GET ${mbs(gets)}\n`,
        );
      }
      if (putSplit !== undefined) splits.push(formatSplit(`PUT ${size.name}, last run`, ...putSplit));
      if (getSplit !== undefined) splits.push(formatSplit(`GET ${size.name}, last run`, ...getSplit));
      splits.push(cpu.format(`${size.name}`));
      rows.push({
        what: `GET ${size.name} ×${size.count}, c=${CONCURRENCY}`,
        unit: 'MB/s',
        ours: best(gets) / MB,
        reference: best(nginxGets) / MB,
        referenceName: 'nginx',
        target: 0.8,
      });
      rows.push({
        what: `PUT ${size.name} ×${size.count}, c=${CONCURRENCY}`,
        unit: 'MB/s',
        ours: best(puts) / MB,
        reference: best(fios) / MB,
        referenceName: 'fio write',
        target: 0.5,
      });
      rmSync(join(www, String(size.bytes)), { recursive: true, force: true });
    }
    printComparisons('S3 gateway (strata s3) vs nginx (GET) and fio (PUT)', rows);
    const parts = Number(values['multipart-parts']);
    if (parts > 0) console.log(`\n${await multipartFigure(port, parts)}`);
    console.log(
      `load average (1, 5, 15 min): ${loadavg()
        .map((l) => l.toFixed(1))
        .join(', ')}`,
    );
    for (const s of splits) console.log(`\n${s}`);
    console.log(`\nMD5 on one core (this process): ${md5MegabytesPerSecond(256 * MiB).toFixed(0)} MB/s`);
    // Every S3 byte crosses loopback TCP twice at most; what one stream gets here bounds PUT.
    const iperf = await startIperf3Server();
    try {
      const r = await runIperf3Client(iperf.port, 3);
      console.log(`loopback TCP, one stream (iperf3): ${(r.bytesPerSecond / MB).toFixed(0)} MB/s`);
    } finally {
      await iperf.stop();
    }
  } catch (err) {
    if (gatewayLog !== undefined)
      process.stderr.write(`--- gateway log (tail)\n${gatewayLog().slice(-4000)}\n`);
    throw err;
  } finally {
    agent.destroy();
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
