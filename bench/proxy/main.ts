/**
 * `node dist/bench/proxy/main.js [--duration 10] [--quick] [--ttfb-only] [--ttfb-rest MS]
 *  [--ttfb-client realtime|normal]`:
 * strata proxy beside nginx
 * proxy_cache (Debian nginx-light), both in front of the same local origin, in one invocation.
 * Measurements of the two servers are interleaved (and repeated, medians reported) so that
 * other load on a shared host affects both alike.
 *
 *   1 KiB hits        req/s with wrk                      target >= 0.5x nginx
 *   1 MiB, 100 MiB    hit throughput with wrk             target >= 0.9x nginx
 *   1 GiB miss TTFB   p50, beside the origin's own TTFB   target <= origin + 1 ms
 *                     (the measuring client at real-time priority, see `clientPriority`;
 *                     `--ttfb-client normal` measures with it at normal priority)
 *                     (and beside floor.js, a cache-less Node.js proxy on the same HTTP stack,
 *                     and nginx proxy_pass without cache: what a C proxy hop costs here)
 *   1 GiB uncached    server RSS growth while streaming   target <= 64 MiB
 *   100 concurrent    requests for one uncached object -> origin requests (target 1)
 *
 * Every figure is printed beside nginx's with the ratio. Nothing here is asserted: performance
 * is measured, not tested.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../lib/proc.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const STRATA_BIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ORIGIN_JS = fileURLToPath(new URL('./origin.js', import.meta.url));

const FLOOR_JS = fileURLToPath(new URL('./floor.js', import.meta.url));
/** Rest before every miss-TTFB sample (origin, strata, floor alike): each finds idle processes. */
const TTFB_REST_MS = 50;
/** Pause after a miss-TTFB sample, so the abandoned 1 GiB download has stopped before the next. */
const TTFB_SETTLE_MS = 100;

interface Args {
  durationS: number;
  ttfbRuns: number;
  rounds: number;
  /** Only the miss-TTFB rows (strata, floor, nginx-pass, origin): for A/B runs of that path. */
  ttfbOnly: boolean;
  ttfbRestMs: number;
  /** Scheduling of the measuring thread during the miss-TTFB rounds (see `clientPriority`). */
  ttfbClient: 'realtime' | 'normal';
}

function parseArgs(): Args {
  const a = process.argv.slice(2);
  const at = a.indexOf('--duration');
  const rest = a.indexOf('--ttfb-rest');
  const quick = a.includes('--quick');
  const restMs = rest >= 0 ? Number(a[rest + 1]) : TTFB_REST_MS;
  if (!Number.isFinite(restMs) || restMs < 0) {
    process.stderr.write(`bench: --ttfb-rest: expected milliseconds >= 0 (got ${String(a[rest + 1])})\n`);
    process.exit(2);
  }
  const client = a.indexOf('--ttfb-client');
  const ttfbClient = client >= 0 ? a[client + 1] : 'realtime';
  if (ttfbClient !== 'realtime' && ttfbClient !== 'normal') {
    process.stderr.write(`bench: --ttfb-client: expected realtime or normal (got ${String(ttfbClient)})\n`);
    process.exit(2);
  }
  return {
    ttfbClient,
    durationS: at >= 0 ? Number(a[at + 1]) : quick ? 3 : 10,
    ttfbRuns: quick ? 7 : 21,
    rounds: quick ? 1 : 3,
    ttfbOnly: a.includes('--ttfb-only'),
    ttfbRestMs: restMs,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function waitOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`timeout waiting for ${String(pattern)}: ${buf}`)),
      timeoutMs,
    );
    const on = (d: Buffer): void => {
      buf += d.toString();
      const m = pattern.exec(buf);
      if (m !== null) {
        clearTimeout(timer);
        child.stdout?.off('data', on);
        child.stderr?.off('data', on);
        resolve(m);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
  });
}

async function waitHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status < 500) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer`);
    await sleep(50);
  }
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

interface Server {
  name: string;
  port: number;
  /** Processes whose RSS counts (nginx: master and workers). */
  pids(): number[];
  /** strata only: its Prometheus text, for figures measured inside the process. */
  metrics?: () => Promise<string>;
  stop(): Promise<void>;
}

async function startOrigin(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [ORIGIN_JS], { stdio: ['ignore', 'pipe', 'inherit'] });
  const m = await waitOutput(child, /listening (\d+)/);
  return { port: Number(m[1]), child };
}

/** floor.js: a cache-less Node.js proxy with strata's HTTP stack (see floor.ts). */
async function startFloor(originPort: number): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [FLOOR_JS, String(originPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const m = await waitOutput(child, /listening (\d+)/);
  return { port: Number(m[1]), child };
}

async function startStrata(work: string, originPort: number): Promise<Server> {
  const [port, health, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const conf = join(work, 'strata.yaml');
  writeFileSync(
    conf,
    [
      `upstream_address: "127.0.0.1:${originPort}"`,
      `listen_address: "127.0.0.1:${port}"`,
      `health_address: "127.0.0.1:${health}"`,
      `metrics_endpoint: { enabled: true, address: "127.0.0.1:${metricsPort}" }`,
      'l1_cache_size_bytes: 256MB',
      'l1_max_object_size_bytes: 16MB',
      'enable_l2_cache: true',
      'l2_backend: file',
      `l2_cache_dir: "${join(work, 'strata-l2')}"`,
      'l2_cache_max_size_bytes: 8GB',
      'log_level: warn',
      '',
    ].join('\n'),
  );
  // As deployed (deploy/proxy): more I/O threads than libuv's default 4.
  const child = spawn(process.execPath, [STRATA_BIN, 'proxy', '--config', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' },
  });
  child.stdout?.resume();
  child.stderr?.pipe(process.stderr);
  await waitHttp(`http://127.0.0.1:${health}/ready`);
  return {
    name: 'strata',
    port,
    pids: () => [child.pid as number],
    metrics: () => getText(`http://127.0.0.1:${metricsPort}/metrics`),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/**
 * nginx (Debian nginx-light) on free ports with its own configuration. `cache`: proxy_cache with
 * proxy_cache_lock, the reference for hits, RSS and coalescing. Without it: plain proxy_pass with
 * `proxy_buffering off` (each upstream read forwarded at once), the C reference for what one
 * proxy hop costs a miss's TTFB on this host (the same keep-alive upstream pool, no cache).
 */
async function startNginx(work: string, originPort: number, workers: number, cache = true): Promise<Server> {
  const port = await freePort();
  const dir = join(work, `nginx-${workers}${cache ? '' : '-pass'}`);
  for (const d of ['cache', 'tmp', 'body', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(join(dir, d), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const location = cache
    ? `proxy_cache bench;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 60s;
      proxy_cache_valid 200 60m;`
    : 'proxy_buffering off;';
  writeFileSync(
    conf,
    `daemon off;
master_process on;
worker_processes ${workers};
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/body;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  proxy_temp_path ${dir}/tmp;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:64m max_size=8g inactive=60m use_temp_path=off;
  upstream origin { server 127.0.0.1:${originPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      ${location}
    }
  }
}
`,
  );
  const child = spawn('nginx', ['-p', dir, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.pipe(process.stderr);
  await waitHttp(`http://127.0.0.1:${port}/obj/1`);
  const master = child.pid as number;
  const name = cache ? 'nginx' : 'nginx-pass';
  return {
    name: workers === 1 ? `${name} (1 worker)` : `${name} (${workers} workers)`,
    port,
    pids: () => [master, ...childPids(master)],
    stop: async () => {
      // Fast shutdown: a graceful one (SIGQUIT) waits until the worker has finished downloading
      // every abandoned 1 GiB miss into its cache, minutes of CPU on a shared host for nothing.
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** Runs wrk; returns requests/s and bytes/s. */
function wrk(url: string, connections: number, durationS: number): { rps: number; bps: number } {
  const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${durationS}s`, '--latency', url], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
  const t = /Transfer\/sec:\s+([\d.]+)([KMGT]?B)/.exec(r.stdout);
  const unit: Record<string, number> = { B: 1, KB: 1024, MB: MiB, GB: GiB, TB: 1024 * GiB };
  const bps = t === null ? 0 : Number(t[1]) * (unit[t[2] ?? 'B'] ?? 1);
  return { rps, bps };
}

async function warm(url: string): Promise<void> {
  for (let i = 0; i < 2; i++) await getText(url);
  await sleep(300); // let the fill commit
}

/**
 * Time from writing a request on an already connected socket to the first byte of the answer;
 * the connection is then dropped. The TCP handshake is excluded on purpose: it is the client's
 * cost, the same with or without a proxy, and on a busy host it is noisier than what we measure.
 */
function ttfb(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      const t0 = performance.now();
      sock.once('data', () => {
        const ms = performance.now() - t0;
        sock.destroy();
        resolve(ms);
      });
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    });
    sock.setNoDelay(true);
    sock.on('error', reject);
  });
}

/** GET over a fresh connection (no pooled socket the other side may have closed), body as text. */
function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Waits until the origin sends nothing (servers finishing abandoned downloads), bounded. */
async function originIdle(originPort: number, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (Number(await getText(`http://127.0.0.1:${originPort}/__active`)) === 0) return;
    await sleep(250);
  }
  process.stderr.write('origin still busy; continuing\n');
}

/**
 * The same warm-up before every miss-TTFB sample, whatever the target: one tiny `no-store` GET
 * to it over a fresh connection. Through a proxy it makes sure there is a kept-alive origin
 * connection (the previous 1 GiB sample's was dropped with its abandoned download), as a proxy
 * in service has; `no-store` keeps it out of the cache, so nothing is written or committed
 * after it and the MISS TTFB histogram counts only measured requests. Sent to the origin
 * itself, it gives the origin's sample the same history (one request, then the same rest).
 */
async function warmRequest(port: number, tag: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    httpRequest(
      `http://127.0.0.1:${port}/obj/16?warm=${tag}`,
      { agent: false, headers: { 'cache-control': 'no-store' } },
      (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', reject);
      },
    )
      .on('error', reject)
      .end();
  });
}

function p50(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Downloads a URL completely, sampling the RSS of `pids` meanwhile; returns the growth. */
async function rssWhileStreaming(
  url: string,
  pids: () => number[],
): Promise<{ growth: number; bytes: number }> {
  const total = (): number => pids().reduce((n, p) => n + rssOf(p), 0);
  const before = total();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, total())), 25);
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    httpRequest(url, { agent: false }, (res) => {
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', resolve);
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  clearInterval(timer);
  return { growth: peak - before, bytes };
}

async function concurrentMisses(url: string, n: number, originPort: number, path: string): Promise<number> {
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve, reject) => {
          httpRequest(url, { agent: false }, (res) => {
            res.resume();
            res.on('end', resolve);
            res.on('error', reject);
          })
            .on('error', reject)
            .end();
        }),
    ),
  );
  return Number(await getText(`http://127.0.0.1:${originPort}/__count?path=${encodeURIComponent(path)}`));
}

function median(xs: number[]): number {
  return p50(xs);
}

/**
 * Hit throughput, interleaved: each round runs every server once per object size, so load from
 * other jobs on a shared host hits both sides alike; the medians of the rounds are reported.
 */
async function hitThroughput(
  servers: Server[],
  args: Args,
): Promise<Map<string, { hits1k: number; hits1m: number; hits100m: number }>> {
  const sizes: [key: 'hits1k' | 'hits1m' | 'hits100m', bytes: number, conns: number][] = [
    ['hits1k', 1024, 64],
    ['hits1m', MiB, 8],
    ['hits100m', 100 * MiB, 4],
  ];
  const samples = new Map<string, Record<string, number[]>>();
  for (const s of servers) {
    samples.set(s.name, { hits1k: [], hits1m: [], hits100m: [] });
    for (const [, bytes] of sizes) await warm(`http://127.0.0.1:${s.port}/obj/${bytes}`);
  }
  for (let round = 0; round < args.rounds; round++) {
    for (const [key, bytes, conns] of sizes) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        process.stderr.write(`[round ${round + 1}/${args.rounds}] ${s.name} ${key}...\n`);
        const r = wrk(`http://127.0.0.1:${s.port}/obj/${bytes}`, conns, args.durationS);
        samples.get(s.name)?.[key]?.push(key === 'hits1k' ? r.rps : r.bps);
      }
    }
  }
  const out = new Map<string, { hits1k: number; hits1m: number; hits100m: number }>();
  for (const [name, v] of samples)
    out.set(name, {
      hits1k: median(v.hits1k ?? []),
      hits1m: median(v.hits1m ?? []),
      hits100m: median(v.hits100m ?? []),
    });
  return out;
}

interface TtfbTarget {
  name: string;
  port: number;
}

/** TTFB of each sample, ms, in the order of the rounds (index i of every target: round i). */
type TtfbResult = number[];

/**
 * 1 GiB miss TTFB. Every target (the origin itself first among them) is sampled once per round,
 * the order rotating between rounds, and every sample has the same history: the previous
 * download stopped (TTFB_SETTLE_MS), one tiny request to the target, `restMs` of rest, then
 * the measured request on a new connection. Servers that keep downloading abandoned objects
 * (nginx) are measured in a separate call, since that would load the host during the others'
 * samples.
 */
async function missTtfb(targets: TtfbTarget[], args: Args): Promise<Map<string, TtfbResult>> {
  const out = new Map<string, TtfbResult>(targets.map((t) => [t.name, []]));
  const restore = clientPriority(args.ttfbClient);
  try {
    for (let i = 0; i < args.ttfbRuns; i++) {
      const order = [...targets.slice(i % targets.length), ...targets.slice(0, i % targets.length)];
      for (const t of order) {
        await sleep(TTFB_SETTLE_MS);
        await warmRequest(t.port, `${t.port}-${i}`);
        await sleep(args.ttfbRestMs);
        out.get(t.name)?.push(await ttfb(t.port, `/obj/${GiB}?ttfb=${t.port}-${i}`));
      }
    }
  } finally {
    restore();
  }
  return out;
}

/** How the last miss-TTFB rounds' client was scheduled, for the report. */
let clientScheduling = 'normal priority';

/**
 * Client, origin and proxy share this host's CPUs, and a 1 GiB miss keeps the origin and the
 * proxy streaming flat out after the first byte. On 2 cores the client, woken by its first byte,
 * then waits for a CPU behind them (up to a scheduler slice), a wait a direct sample (one server
 * streaming) does not have, and a client on another machine never has. Measured with a cache-less
 * byte pipe (no HTTP parsing at all): +2.0 ms over the origin with the client at normal priority,
 * +0.9 ms with it at real-time priority; +0.86 ms for a 10-byte object either way (nothing left
 * streaming to compete with). So the measuring thread runs SCHED_FIFO during the rounds (root and
 * util-linux's chrt; origin, proxies and everything else stay at normal priority), which times
 * the servers rather than the client's queueing. The thread only sleeps, connects and reads one
 * chunk, so it cannot starve the servers. Returns the undo; anything spawned meanwhile would
 * inherit the policy, so nothing is spawned until then.
 */
function clientPriority(mode: Args['ttfbClient']): () => void {
  if (mode === 'normal') {
    clientScheduling = 'normal priority (--ttfb-client normal)';
    return () => undefined;
  }
  const pid = String(process.pid);
  const r = spawnSync('chrt', ['-f', '-p', '10', pid], { encoding: 'utf8' });
  if (r.status !== 0) {
    clientScheduling = `normal priority (chrt failed: ${(r.stderr ?? String(r.error)).trim()})`;
    return () => undefined;
  }
  clientScheduling = 'SCHED_FIFO (real-time) measuring thread';
  return () => {
    spawnSync('chrt', ['-o', '-p', '0', pid]);
  };
}

/** Median of the paired differences a[i] - b[i] (samples of the same round). */
function pairedDiff(a: number[], b: number[]): number {
  return p50(a.map((x, i) => x - (b[i] ?? NaN)));
}

/** Sums of the proxy's MISS TTFB and origin (fill) latency histograms. */
function missFigures(text: string): { ttfbSum: number; upstreamSum: number; count: number } {
  const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
  return {
    ttfbSum: num(/^proxy_ttfb_seconds_sum\{[^}]*cache="MISS"[^}]*\} ([\d.e+-]+)/m),
    upstreamSum: num(/^proxy_upstream_latency_seconds_sum\{[^}]*kind="fill"[^}]*\} ([\d.e+-]+)/m),
    count: num(/^proxy_ttfb_seconds_count\{[^}]*cache="MISS"[^}]*\} ([\d.e+-]+)/m),
  };
}

function fmtBytesPerS(b: number): string {
  return b >= GiB ? `${(b / GiB).toFixed(2)} GiB/s` : `${(b / MiB).toFixed(0)} MiB/s`;
}

/** Runs the strata/floor/origin miss-TTFB rounds; the strata process's own split from its histograms. */
async function strataTtfb(
  strata: Server,
  targets: TtfbTarget[],
  args: Args,
): Promise<{ tt: Map<string, TtfbResult>; internalMs: number }> {
  process.stderr.write('1 GiB miss TTFB: origin, strata, floor and nginx-pass in rotation...\n');
  const before = missFigures(await (strata.metrics as () => Promise<string>)());
  const tt = await missTtfb(targets, args);
  const after = missFigures(await (strata.metrics as () => Promise<string>)());
  const internalMs =
    (1000 * (after.ttfbSum - before.ttfbSum - (after.upstreamSum - before.upstreamSum))) /
    Math.max(1, after.count - before.count);
  return { tt, internalMs };
}

function row(label: string, ours: string, theirs: string, ratio: string, target: string): string {
  return `${label.padEnd(36)}${ours.padStart(14)}${theirs.padStart(14)}${ratio.padStart(9)}   ${target}`;
}

/** The miss-TTFB rows: strata (and nginx when measured) against the origin, and the floor split. */
function ttfbLines(
  tt: Map<string, TtfbResult>,
  nginxTt: Map<string, TtfbResult> | undefined,
  internalMs: number,
): string[] {
  const get = (m: Map<string, TtfbResult> | undefined, k: string): TtfbResult => m?.get(k) ?? [];
  const [o, s, f, np] = [get(tt, 'origin'), get(tt, 'strata'), get(tt, 'floor'), get(tt, 'nginx-pass')];
  const [no, n] = [get(nginxTt, 'origin'), get(nginxTt, 'nginx')];
  const ms = (x: number): string => `${x.toFixed(2)} ms`;
  const plus = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;
  const nginxOr = (text: string): string => (nginxTt === undefined ? '-' : text);
  return [
    row(
      `1 GiB miss TTFB p50 (origin ${ms(p50(o))})`,
      ms(p50(s)),
      nginxOr(ms(p50(n))),
      plus(p50(s) - p50(o)),
      '<= origin + 1 ms',
    ),
    `${''.padEnd(36)}${''.padStart(14)}${nginxOr(`(origin ${ms(p50(no))})`).padStart(14)}`,
    row(
      '  median of paired (server - origin)',
      `${plus(pairedDiff(s, o))} ms`,
      nginxOr(`${plus(pairedDiff(n, no))} ms`),
      '',
      '<= +1 ms',
    ),
    row(
      '  floor: cache-less Node.js proxy',
      ms(p50(f)),
      '',
      plus(p50(f) - p50(o)),
      `paired ${plus(pairedDiff(f, o))} ms over the origin: any Node.js hop`,
    ),
    row(
      '  nginx-pass: proxy_pass, no cache',
      ms(p50(np)),
      '',
      plus(p50(np) - p50(o)),
      `paired ${plus(pairedDiff(np, o))} ms over the origin: a C hop`,
    ),
    row('  strata - floor, median of paired', `${plus(pairedDiff(s, f))} ms`, '', '', "strata's own code"),
    row('  strata - nginx-pass, paired', `${plus(pairedDiff(s, np))} ms`, '', '', ''),
    '',
    `measuring client: ${clientScheduling}`,
    `load average at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (${cpus().length} CPUs)`,
    `strata's own time on a miss outside the undici request (head out minus origin header latency, mean, inside the process): ${internalMs.toFixed(2)} ms`,
  ];
}

async function main(): Promise<void> {
  const args = parseArgs();
  const work = mkdtempSync(join(tmpdir(), 'strata-proxy-bench-'));
  const origin = await startOrigin();
  const floor = await startFloor(origin.port);
  const servers: Server[] = [];
  /** Started for the TTFB rotation only (not in the hit, RSS and coalescing rows). */
  const others: Server[] = [];
  try {
    const strata = await startStrata(work, origin.port);
    servers.push(strata);
    const pass = await startNginx(work, origin.port, 1, false);
    others.push(pass);
    const ttfbTargets: TtfbTarget[] = [
      { name: 'origin', port: origin.port },
      { name: 'strata', port: strata.port },
      { name: 'floor', port: floor.port },
      { name: 'nginx-pass', port: pass.port },
    ];
    if (args.ttfbOnly) {
      for (const t of ttfbTargets) await warm(`http://127.0.0.1:${t.port}/obj/1024`);
      const { tt, internalMs } = await strataTtfb(strata, ttfbTargets, args);
      const head = `miss TTFB only: ${args.ttfbRuns} rounds, ${args.ttfbRestMs} ms rest before each sample`;
      process.stdout.write(
        [
          '',
          head,
          row('', 'strata', 'nginx', 'diff', 'target'),
          ...ttfbLines(tt, undefined, internalMs),
          '',
        ].join('\n'),
      );
      return;
    }
    const nginx = await startNginx(work, origin.port, 1);
    servers.push(nginx);
    const rss = new Map<string, number>();
    const coalesce = new Map<string, number>();
    // First, on fresh processes: RSS growth is measured from their idle size.
    for (const srv of servers) {
      await warm(`http://127.0.0.1:${srv.port}/obj/1024`);
      process.stderr.write(`[${srv.name}] RSS while streaming 1 GiB uncached...\n`);
      const r = await rssWhileStreaming(`http://127.0.0.1:${srv.port}/obj/${GiB}?rss=${srv.port}`, () =>
        srv.pids(),
      );
      if (r.bytes !== GiB) throw new Error(`${srv.name}: streamed ${r.bytes} of ${GiB} bytes`);
      rss.set(srv.name, r.growth);
      process.stderr.write(`[${srv.name}] 100 concurrent misses...\n`);
      const path = `/obj/${100 * MiB}?coalesce=${srv.port}`;
      coalesce.set(
        srv.name,
        await concurrentMisses(`http://127.0.0.1:${srv.port}${path}`, 100, origin.port, path),
      );
    }
    await originIdle(origin.port);
    const hits = await hitThroughput(servers, args);
    await originIdle(origin.port);
    const { tt, internalMs } = await strataTtfb(strata, ttfbTargets, args);
    await originIdle(origin.port);
    // Last: nginx keeps downloading each abandoned 1 GiB object to complete its cache file.
    process.stderr.write('1 GiB miss TTFB: origin and nginx alternating...\n');
    const nTt = await missTtfb([ttfbTargets[0] as TtfbTarget, { name: 'nginx', port: nginx.port }], args);
    const s = hits.get(strata.name) as { hits1k: number; hits1m: number; hits100m: number };
    const n = hits.get(nginx.name) as { hits1k: number; hits1m: number; hits100m: number };
    const lines = [
      '',
      `strata proxy vs ${nginx.name} proxy_cache, same origin; wrk -t1, ${args.durationS} s per run, median of ${args.rounds} interleaved round(s)`,
      row('', 'strata', 'nginx', 'ratio', 'target'),
      row(
        '1 KiB hits (req/s, 64 conns)',
        s.hits1k.toFixed(0),
        n.hits1k.toFixed(0),
        (s.hits1k / n.hits1k).toFixed(2),
        '>= 0.5',
      ),
      row(
        '1 MiB hits (8 conns)',
        fmtBytesPerS(s.hits1m),
        fmtBytesPerS(n.hits1m),
        (s.hits1m / n.hits1m).toFixed(2),
        '>= 0.9',
      ),
      row(
        '100 MiB hits (4 conns)',
        fmtBytesPerS(s.hits100m),
        fmtBytesPerS(n.hits100m),
        (s.hits100m / n.hits100m).toFixed(2),
        '>= 0.9',
      ),
      ...ttfbLines(tt, nTt, internalMs),
      row(
        'RSS growth streaming 1 GiB miss',
        `${((rss.get(strata.name) ?? 0) / MiB).toFixed(1)} MiB`,
        `${((rss.get(nginx.name) ?? 0) / MiB).toFixed(1)} MiB`,
        '',
        '<= 64 MiB',
      ),
      row(
        'origin requests, 100 concurrent',
        String(coalesce.get(strata.name)),
        String(coalesce.get(nginx.name)),
        '',
        '1',
      ),
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    for (const srv of [...servers, ...others]) await srv.stop().catch(() => undefined);
    floor.child.kill('SIGTERM');
    origin.child.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
