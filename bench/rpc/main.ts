/**
 * RPC benchmark: unary calls/s with 50 calls in flight, and bulk streaming GB/s, each beside a
 * reference run on the same machine in the same invocation (redis-benchmark ping_mbulk against a
 * redis-server, iperf3 over loopback), with the ratio. Client and server are separate processes,
 * so both cores are used as they are by the references.
 *
 * Streams run twice: with V8's default heap sizing, and with --initial-heap-size (see
 * docs/rpc.md, "Performance": in a process whose heap is only a little over 8 MB, V8 answers a
 * high rate of Buffer allocation with back-to-back full collections).
 *
 *   node dist/bench/rpc/main.js [--seconds=5] [--rounds=2] [--inflight=50] [--only=unary|bulk]
 */
import { fileURLToPath } from 'node:url';
import { runIperf3Client, startIperf3Server } from '../lib/iperf3.js';
import { runOk, startBackground, waitForOutput } from '../lib/proc.js';
import { runRedisBenchmark, startRedisServer } from '../lib/redis.js';
import { best, printComparisons } from '../lib/report.js';
import type { Comparison } from '../lib/report.js';

const UNARY_TARGET = 0.4;
const BULK_TARGET = 0.6;
/** The V8 flag that gives a small process a heap sized for its allocation rate. */
const TUNED_HEAP_FLAGS = ['--initial-heap-size=64'];

function flag(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

const seconds = Number(flag('seconds', '5'));
const rounds = Number(flag('rounds', '2'));
const inflight = Number(flag('inflight', '50'));
const only = flag('only', 'all');

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

interface ClientResult {
  rate: number;
  clientCpuUsPerOp: number;
  serverCpuUsPerOp: number;
}

/** Starts a server process and runs one client process against it. */
async function runOurs(scenario: 'unary' | 'read' | 'write', v8Flags: string[]): Promise<ClientResult> {
  const server = await startBackground(process.execPath, [...v8Flags, here('./server.js')], async (out) => {
    await waitForOutput(out, /listening \d+/);
  });
  try {
    const port = /listening (\d+)/.exec(server.output())?.[1] ?? '0';
    const args = [...v8Flags, here('./client.js'), port, scenario, String(seconds), String(inflight)];
    const out = await runOk(process.execPath, args, (seconds * 3 + 60) * 1000);
    return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as ClientResult;
  } finally {
    await server.stop();
  }
}

const gb = (bytesPerSecond: number): number => bytesPerSecond / 1e9;

async function main(): Promise<void> {
  const rows: Comparison[] = [];
  if (only === 'all' || only === 'unary') {
    const redis = await startRedisServer();
    try {
      const ours: number[] = [];
      const ref: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const res = await runOurs('unary', []);
        ours.push(res.rate);
        console.log(
          `unary round ${r + 1}: ${res.rate.toFixed(0)} calls/s; CPU per call: client ${res.clientCpuUsPerOp.toFixed(1)} µs, server ${res.serverCpuUsPerOp.toFixed(1)} µs`,
        );
        const rps = await runRedisBenchmark({
          port: redis.port,
          test: 'ping_mbulk',
          clients: 50,
          pipeline: 1,
          requests: Math.max(100_000, Math.round(res.rate * seconds)),
        });
        ref.push(rps);
        console.log(`redis-benchmark round ${r + 1}: ${rps.toFixed(0)} requests/s`);
      }
      rows.push({
        what: `unary calls, ${inflight} in flight`,
        unit: 'calls/s',
        ours: best(ours),
        reference: best(ref),
        referenceName: 'redis-benchmark -t ping_mbulk -c 50 -P 1',
        target: UNARY_TARGET,
      });
    } finally {
      await redis.stop();
    }
  }
  if (only === 'all' || only === 'bulk') {
    const iperf = await startIperf3Server();
    try {
      const configs = [
        { name: 'default V8 heap', flags: [] as string[] },
        { name: TUNED_HEAP_FLAGS.join(' '), flags: TUNED_HEAP_FLAGS },
      ];
      const results = new Map<string, number[]>();
      const ref: number[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const c of configs) {
          for (const scenario of ['read', 'write'] as const) {
            const res = await runOurs(scenario, c.flags);
            const key = `${scenario}|${c.name}`;
            results.set(key, [...(results.get(key) ?? []), res.rate]);
            console.log(
              `bulk round ${r + 1}: ${scenario} stream (${c.name}) ${gb(res.rate).toFixed(2)} GB/s; CPU per MiB: client ${res.clientCpuUsPerOp.toFixed(0)} µs, server ${res.serverCpuUsPerOp.toFixed(0)} µs`,
            );
          }
        }
        const iperfRate = (await runIperf3Client(iperf.port, seconds)).bytesPerSecond;
        ref.push(iperfRate);
        console.log(`iperf3 round ${r + 1}: ${gb(iperfRate).toFixed(2)} GB/s`);
      }
      for (const c of configs) {
        for (const scenario of ['read', 'write'] as const) {
          const what = scenario === 'read' ? 'read stream (server→client)' : 'write stream (client→server)';
          rows.push({
            what: `${what}, ${c.name}`,
            unit: 'GB/s',
            ours: gb(best(results.get(`${scenario}|${c.name}`) ?? [0])),
            reference: gb(best(ref)),
            referenceName: 'iperf3 -c 127.0.0.1',
            target: BULK_TARGET,
          });
        }
      }
    } finally {
      await iperf.stop();
    }
  }
  printComparisons(`RPC benchmark (best of ${rounds} rounds of ${seconds} s; 1 GB = 1e9 bytes)`, rows);
}

await main();
