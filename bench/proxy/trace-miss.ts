/**
 * `node dist/bench/proxy/trace-miss.js [--samples 41] [--rest 50]`: where a 1 GiB miss's time
 * goes. Starts the bench origin, `strata proxy` (the bench's configuration) and floor.js, each
 * with trace-hooks.js preloaded, samples 1 GiB misses of the three in rotation with the bench's
 * schedule (previous download stopped, one tiny request, `--rest` ms, the measured request), and
 * prints for strata and floor the median time of each step after the client's write (µs), and
 * the median CPU time each process spent per stage, beside the origin's own steps when asked
 * directly. CPU time does not grow while a process waits for a CPU, so on a loaded host it is
 * the figure to compare builds by; wall time then shows the waits.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../lib/proc.js';
import type { TraceEvent } from './trace-hooks.js';

const GiB = 1024 * 1024 * 1024;
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const HOOKS = here('./trace-hooks.js');
/** Pause after a sample so its abandoned download has stopped (as in main.ts). */
const SETTLE_MS = 100;
const READY_TIMEOUT_MS = 20_000;

const argv = process.argv.slice(2);
function numArg(name: string, dflt: number): number {
  const at = argv.indexOf(name);
  const v = at >= 0 ? Number(argv[at + 1]) : dflt;
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`trace-miss: ${name}: expected a whole number >= 0 (got ${String(argv[at + 1])})\n`);
    process.exit(2);
  }
  return v;
}
const samples = numArg('--samples', 41);
const restMs = numArg('--rest', 50);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

function listening(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no "listening" line: ${buf}`)), READY_TIMEOUT_MS);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening (\d+)/.exec(buf);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Client write and first byte (monotonic µs) of one GET on a new connection, then dropped. */
function sample(port: number, path: string): Promise<[number, number]> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      const t0 = nowUs();
      sock.once('data', () => {
        const t1 = nowUs();
        sock.destroy();
        resolve([t0, t1]);
      });
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    });
    sock.setNoDelay(true);
    sock.on('error', reject);
  });
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const work = mkdtempSync(join(tmpdir(), 'strata-proxy-trace-'));
const children: ChildProcess[] = [];
function start(name: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', HOOKS, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env, TRACE_OUT: join(work, `${name}.json`) },
  });
  children.push(child);
  return child;
}

try {
  const originPort = await listening(start('origin', [here('./origin.js')]));
  const floorPort = await listening(start('floor', [here('./floor.js'), String(originPort)]));
  const [strataPort, health] = [await freePort(), await freePort()];
  const conf = join(work, 'strata.yaml');
  writeFileSync(
    conf,
    [
      `upstream_address: "127.0.0.1:${originPort}"`,
      `listen_address: "127.0.0.1:${strataPort}"`,
      `health_address: "127.0.0.1:${health}"`,
      'metrics_endpoint: { enabled: false }',
      'l1_cache_size_bytes: 256MB',
      'l1_max_object_size_bytes: 16MB',
      'enable_l2_cache: true',
      'l2_backend: file',
      `l2_cache_dir: "${join(work, 'l2')}"`,
      'l2_cache_max_size_bytes: 8GB',
      'log_level: warn',
      '',
    ].join('\n'),
  );
  const strata = start('strata', [here('../../src/cli/main.js'), 'proxy', '--config', conf], {
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
  });
  strata.stdout?.resume();
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await get(health, '/ready');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
  const targets = [
    { name: 'origin', port: originPort },
    { name: 'strata', port: strataPort },
    { name: 'floor', port: floorPort },
  ];
  for (const t of targets) await get(t.port, '/obj/1024');
  const client = new Map<string, [number, number][]>(targets.map((t) => [t.name, []]));
  for (let i = 0; i < samples; i++) {
    const k = i % targets.length;
    for (const t of [...targets.slice(k), ...targets.slice(0, k)]) {
      await sleep(SETTLE_MS);
      await get(t.port, `/obj/16?warm=${t.name}-${i}`, { 'cache-control': 'no-store' });
      await sleep(restMs);
      client.get(t.name)?.push(await sample(t.port, `/obj/${GiB}?ttfb=${t.name}-${i}`));
    }
  }
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(
    children.map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(null)))),
  );
  const trace = (n: string): TraceEvent[] =>
    JSON.parse(readFileSync(join(work, `${n}.json`), 'utf8')) as TraceEvent[];
  const origin = trace('origin');
  const find = (tr: TraceEvent[], ev: string, tag: string): TraceEvent | undefined =>
    tr.find((e) => e[0] === ev && e[2].endsWith(`?${tag}`));
  /** The server's accept of a measured request: the last connection event before its request. */
  const acceptOf = (tr: TraceEvent[], req: TraceEvent | undefined): TraceEvent | undefined =>
    req === undefined ? undefined : tr.filter((e) => e[0] === 'accept' && e[1] <= req[1]).at(-1);
  const out: string[] = [
    '',
    `1 GiB misses, ${samples} samples each, ${restMs} ms rest; µs after the client's write (medians)`,
  ];
  const od = (client.get('origin') ?? []).map(([t0, t1], i) => {
    const tag = `ttfb=origin-${i}`;
    const req = find(origin, 'req', tag);
    return [acceptOf(origin, req), req, find(origin, 'firstWrite', tag)]
      .map((e) => (e?.[1] ?? NaN) - t0)
      .concat(t1 - t0);
  });
  out.push(
    `origin direct: accept ${median(od.map((r) => r[0] ?? NaN))}, request ${median(od.map((r) => r[1] ?? NaN))}, ` +
      `head+first MiB written ${median(od.map((r) => r[2] ?? NaN))}, client's first byte ${median(od.map((r) => r[3] ?? NaN))}`,
  );
  for (const name of ['strata', 'floor']) {
    const tr = trace(name);
    const rows = (client.get(name) ?? []).map(([t0, t1], i) => {
      const tag = `ttfb=${name}-${i}`;
      const req = find(tr, 'req', tag);
      const ev = [
        acceptOf(tr, req),
        req,
        find(tr, 'upSend', tag),
        find(origin, 'req', tag),
        find(origin, 'firstWrite', tag),
        find(tr, 'upHeaders', tag),
        find(tr, 'headOut', tag),
      ];
      const cpu = (a: TraceEvent | undefined, b: TraceEvent | undefined): number =>
        a !== undefined && b !== undefined ? b[3] - a[3] : NaN;
      return {
        at: ev.map((e) => (e?.[1] ?? NaN) - t0).concat(t1 - t0),
        cpu: [cpu(ev[0], ev[1]), cpu(ev[1], ev[2]), cpu(ev[2], ev[5]), cpu(ev[5], ev[6]), cpu(ev[0], ev[6])],
      };
    });
    const at = (k: number): number => median(rows.map((r) => r.at[k] ?? NaN));
    const cpu = (k: number): number => median(rows.map((r) => r.cpu[k] ?? NaN));
    out.push(
      `${name}: accept ${at(0)}, request ${at(1)}, upstream write ${at(2)}, origin request ${at(3)}, ` +
        `origin head+first MiB written ${at(4)}, upstream headers ${at(5)}, head out ${at(6)}, client's first byte ${at(7)}`,
      `${name} CPU µs: accept->request ${cpu(0)}, request->upstream write ${cpu(1)}, ` +
        `upstream write->headers ${cpu(2)}, headers->head out ${cpu(3)}, total ${cpu(4)}`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await sleep(200);
  rmSync(work, { recursive: true, force: true });
}
