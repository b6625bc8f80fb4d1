/**
 * KV benchmark: our node beside its references, in one invocation on this machine.
 *
 *   node dist/bench/kv/main.js [--quick] [--json]
 *
 * - RESP: `redis-benchmark -t set,get` at -P 1 and -P 16 against a single `strata kv` node's RESP
 *   listener and against `redis-server` (no persistence), same client settings. Targets: ≥ 0.5×
 *   and ≥ 0.25× redis.
 * - HTTP: `wrk` GETs of one cached key from a node vs nginx answering `return 200` from a minimal
 *   config. Both run one process (nginx: one worker, no master), as a node is one event loop.
 *   Target ≥ 0.3×.
 * - Also (for information): the same RESP runs through one node of a 3-node cluster, where two
 *   thirds of the keys live on other nodes and are forwarded.
 * - Spread: keys per node with 150 virtual nodes over 3 nodes (1,000,000 keys), as the ring
 *   places them; target stddev < 5% of the mean. The classic one-probe ring is shown beside it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HashRing, relativeStdDev } from '../../src/kv/index.js';

const STRATA = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
/** redis-benchmark requests per run, wrk seconds per run. */
const P1_REQUESTS = quick ? 20_000 : 100_000;
const P16_REQUESTS = quick ? 200_000 : 1_000_000;
const WRK_SECONDS = quick ? 3 : 10;
const CLIENTS = 50;
/** Requests of the warm-up run against each server: covers the benchmark's 100,000 keys. */
const WARMUP_REQUESTS = 300_000;
/** Wait after a cluster starts: every node sees its peers up and the read settle window passed. */
const CLUSTER_SETTLE_MS = 6_000;
const SPREAD_KEYS = 1_000_000;

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'strata-kv-bench-'));

function running(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

/** Last resort when exiting early: no child may outlive the benchmark. */
function cleanup(): void {
  for (const c of children) if (running(c)) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);

/** Stops every child with SIGTERM and waits (SIGKILL after 5 s). */
async function stopAll(): Promise<void> {
  await Promise.all(
    children.filter(running).map(
      (c) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}
process.on('SIGINT', () => process.exit(130));

function log(line: string): void {
  if (!asJson) process.stderr.write(`${line}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  c.stdout?.resume();
  c.stderr?.resume();
  children.push(c);
  return c;
}

async function runTool(cmd: string, args: string[], timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', reject);
    c.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err || out}`));
    });
  });
}

/** Waits until a TCP port answers a RESP PING (or accepts, for HTTP). */
async function waitForPort(port: number, resp: boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('error', () => resolve(false));
      s.once('connect', () => {
        if (!resp) {
          s.destroy();
          resolve(true);
          return;
        }
        s.write('PING\r\n');
        s.once('data', (b) => {
          s.destroy();
          resolve(b.toString().startsWith('+PONG'));
        });
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not come up on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startStrataNode(
  nodes: { id: string; http: number; resp: number }[],
  self: number,
): Promise<void> {
  const me = nodes[self] as { id: string; http: number; resp: number };
  const cfg = join(dir, `${me.id}.yaml`);
  writeFileSync(
    cfg,
    [
      `node_id: ${me.id}`,
      `address: "127.0.0.1:${me.http}"`,
      'cluster_nodes:',
      ...nodes.map((n) => `  ${n.id}: "127.0.0.1:${n.http}"`),
      'cache_size: 5000000',
      'max_memory: 2GB',
      `resp_address: "127.0.0.1:${me.resp}"`,
      'log_level: warn',
    ].join('\n'),
  );
  start(process.execPath, [STRATA, 'kv', `-config=${cfg}`]);
  await waitForPort(me.resp, true, `strata kv ${me.id}`);
}

/** Requests per second for SET and GET from one redis-benchmark run. */
async function redisBenchmark(
  port: number,
  pipeline: number,
  requests: number,
): Promise<{ set: number; get: number }> {
  const out = await runTool('redis-benchmark', [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-t',
    'set,get',
    '-n',
    String(requests),
    '-c',
    String(CLIENTS),
    '-P',
    String(pipeline),
    '-r',
    '100000',
    '--csv',
  ]);
  const rps = (name: string): number => {
    const m = new RegExp(`^"${name}","([\\d.]+)"`, 'm').exec(out);
    if (m === null) throw new Error(`no ${name} line in redis-benchmark output:\n${out}`);
    return Number(m[1]);
  };
  return { set: rps('SET'), get: rps('GET') };
}

async function wrk(url: string): Promise<number> {
  const out = await runTool('wrk', ['-t', '1', '-c', String(CLIENTS), '-d', `${WRK_SECONDS}s`, url]);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (errors !== null) throw new Error(`wrk saw ${errors[1]} error responses from ${url}`);
  if (m === null) throw new Error(`no Requests/sec in wrk output:\n${out}`);
  return Number(m[1]);
}

async function startNginx(port: number): Promise<void> {
  const prefix = join(dir, 'nginx');
  const conf = join(dir, 'nginx.conf');
  rmSync(prefix, { recursive: true, force: true });
  writeFileSync(
    conf,
    `worker_processes 1;
master_process off;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  server {
    listen 127.0.0.1:${port};
    location / { default_type application/json; return 200 '{"key":"bench","value":"hello world"}'; }
  }
}
`,
  );
  start('nginx', ['-c', conf, '-p', dir, '-e', 'stderr']);
  await waitForPort(port, false, 'nginx');
}

interface Row {
  name: string;
  ours: number;
  reference: number;
  referenceName: string;
  target: number;
}

async function main(): Promise<void> {
  for (const tool of ['redis-server', 'redis-benchmark', 'wrk', 'nginx']) {
    await runTool('sh', ['-c', `command -v ${tool}`]).catch(() => {
      throw new Error(`${tool} is not installed (Debian: redis-server redis-tools wrk nginx-light)`);
    });
  }
  const rows: Row[] = [];
  const info: Record<string, number> = {};

  // --- RESP: one node vs redis-server -------------------------------------------------------
  const [redisPort, soloHttp, soloResp] = [await freePort(), await freePort(), await freePort()];
  start('redis-server', [
    '--port',
    String(redisPort),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await waitForPort(redisPort, true, 'redis-server');
  await startStrataNode([{ id: 'solo', http: soloHttp, resp: soloResp }], 0);
  // Warm both up the same way (JIT for ours; the key space filled for both, so GETs hit).
  log('warm-up: redis-benchmark -P 16 against both…');
  await redisBenchmark(soloResp, 16, WARMUP_REQUESTS);
  await redisBenchmark(redisPort, 16, WARMUP_REQUESTS);
  for (const pipeline of [1, 16]) {
    const n = pipeline === 1 ? P1_REQUESTS : P16_REQUESTS;
    log(`redis-benchmark -P ${pipeline} -n ${n} -c ${CLIENTS}: strata…`);
    const ours = await redisBenchmark(soloResp, pipeline, n);
    log(`redis-benchmark -P ${pipeline} -n ${n} -c ${CLIENTS}: redis…`);
    const ref = await redisBenchmark(redisPort, pipeline, n);
    const target = pipeline === 1 ? 0.5 : 0.25;
    rows.push({
      name: `RESP SET -P ${pipeline} (req/s)`,
      ours: ours.set,
      reference: ref.set,
      referenceName: 'redis-server',
      target,
    });
    rows.push({
      name: `RESP GET -P ${pipeline} (req/s)`,
      ours: ours.get,
      reference: ref.get,
      referenceName: 'redis-server',
      target,
    });
  }

  // --- HTTP: GET of a cached key vs nginx `return 200` --------------------------------------
  const put = await fetch(`http://127.0.0.1:${soloHttp}/api/v1/cache/bench`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value: 'hello world' }),
  });
  if (put.status !== 200) throw new Error(`PUT failed: ${put.status}`);
  const nginxPort = await freePort();
  await startNginx(nginxPort);
  log(`wrk -t1 -c${CLIENTS} -d${WRK_SECONDS}s: strata GET /api/v1/cache/bench…`);
  const httpOurs = await wrk(`http://127.0.0.1:${soloHttp}/api/v1/cache/bench`);
  log(`wrk -t1 -c${CLIENTS} -d${WRK_SECONDS}s: nginx return 200…`);
  const httpRef = await wrk(`http://127.0.0.1:${nginxPort}/`);
  rows.push({
    name: 'HTTP GET (req/s)',
    ours: httpOurs,
    reference: httpRef,
    referenceName: 'nginx return 200',
    target: 0.3,
  });

  // --- For information: RESP through one node of a 3-node cluster ---------------------------
  const cluster = await Promise.all(
    ['c1', 'c2', 'c3'].map(async (id) => ({ id, http: await freePort(), resp: await freePort() })),
  );
  await Promise.all(cluster.map((_, i) => startStrataNode(cluster, i)));
  await new Promise((r) => setTimeout(r, CLUSTER_SETTLE_MS));
  log('redis-benchmark -P 16 through one node of a 3-node cluster…');
  await redisBenchmark((cluster[0] as { resp: number }).resp, 16, WARMUP_REQUESTS / 3);
  const viaCluster = await redisBenchmark((cluster[0] as { resp: number }).resp, 16, P16_REQUESTS / 2);
  info.cluster_set_p16 = viaCluster.set;
  info.cluster_get_p16 = viaCluster.get;

  // --- Spread ----------------------------------------------------------------------------------
  const spread = (probes: number): { counts: number[]; ratio: number } => {
    const ring = new HashRing(['node1', 'node2', 'node3'], { virtualNodes: 150, probes });
    const counts = [0, 0, 0];
    for (let i = 0; i < SPREAD_KEYS; i++) {
      const idx = ring.primary(HashRing.hashKey(`key:${i}`));
      counts[idx] = (counts[idx] ?? 0) + 1;
    }
    return { counts, ratio: relativeStdDev(counts) };
  };
  const multi = spread(5);
  const classic = spread(1);

  if (asJson) {
    process.stdout.write(
      `${JSON.stringify({ rows: rows.map((r) => ({ ...r, ratio: r.ours / r.reference })), info, spread: { multiProbe: multi, classicRing: classic } }, null, 2)}\n`,
    );
    return;
  }
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const lines = [
    '',
    `KV benchmark (${quick ? 'quick' : 'full'}; ${CLIENTS} clients; node ${process.version})`,
    `${'measure'.padEnd(26)}${'strata'.padStart(12)}${'reference'.padStart(12)}  ${'ratio'.padEnd(7)}target`,
    ...rows.map(
      (r) =>
        `${r.name.padEnd(26)}${fmt(r.ours).padStart(12)}${fmt(r.reference).padStart(12)}  ${(r.ours / r.reference).toFixed(2).padEnd(7)}≥ ${r.target}  ${r.ours / r.reference >= r.target ? 'met' : 'MISSED'}  (${r.referenceName})`,
    ),
    `${'keys/node stddev/mean'.padEnd(26)}${`${(multi.ratio * 100).toFixed(2)}%`.padStart(12)}${`${(classic.ratio * 100).toFixed(2)}%`.padStart(12)}  ${''.padEnd(7)}< 5%   ${multi.ratio < 0.05 ? 'met' : 'MISSED'}  (150 vnodes × 3 nodes, ${fmt(SPREAD_KEYS)} keys: multi-probe [${multi.counts.map(fmt).join(', ')}] vs classic ring [${classic.counts.map(fmt).join(', ')}])`,
    '',
    `info: through one node of a 3-node cluster (2/3 of keys forwarded), -P 16: SET ${fmt(viaCluster.set)} req/s, GET ${fmt(viaCluster.get)} req/s`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`bench/kv: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
