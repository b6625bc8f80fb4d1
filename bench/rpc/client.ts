/**
 * The client half of the RPC benchmark, run as its own process by main.ts:
 *   node client.js <port> <unary|read|write> <seconds> <inflight>
 * Prints one JSON line: {"rate": <calls/s or bytes/s>, "clientCpuUsPerOp": …, "serverCpuUsPerOp": …}
 * where an op is a call (unary) or a MiB (streams).
 */
import { performance } from 'node:perf_hooks';
import { RpcClient } from '../../src/rpc/index.js';
import { cpu, ping, sink, source } from './calls.js';

const MiB = 1024 * 1024;
const CHUNK_BYTES = 1 * MiB;

const [portArg, scenario, secondsArg, inflightArg] = process.argv.slice(2);
const port = Number(portArg);
const seconds = Number(secondsArg ?? 5);
const inflight = Number(inflightArg ?? 50);
const client = new RpcClient({
  addresses: [{ host: '127.0.0.1', port }],
  streamDeadlineMs: (seconds + 60) * 1000,
});

async function unary(durationS: number): Promise<number> {
  const end = performance.now() + durationS * 1000;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < end) {
      await client.call(ping, { s: 'PING' });
      done++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  return done;
}

async function read(durationS: number): Promise<number> {
  const call = client.read(source, { totalBytes: Number.MAX_SAFE_INTEGER, chunkBytes: CHUNK_BYTES });
  const end = performance.now() + durationS * 1000;
  let bytes = 0;
  for await (const chunk of call) {
    bytes += chunk.length;
    if (performance.now() >= end) break; // leaving the loop cancels the stream
  }
  return bytes;
}

async function write(durationS: number): Promise<number> {
  const chunk = Buffer.alloc(CHUNK_BYTES, 0xa5);
  const call = client.write(sink, {});
  const end = performance.now() + durationS * 1000;
  while (performance.now() < end) await call.write(chunk);
  return (await call.end()).bytes;
}

const run =
  scenario === 'unary' ? unary : scenario === 'read' ? read : scenario === 'write' ? write : undefined;
if (run === undefined) throw new Error(`unknown scenario ${scenario} (expected unary, read or write)`);
await run(Math.min(1, seconds / 4)); // warm-up: JIT, connection, TCP windows
await client.call(cpu, {});
const cpuBefore = process.cpuUsage();
const started = performance.now();
const amount = await run(seconds);
const elapsedS = (performance.now() - started) / 1000;
const mine = process.cpuUsage(cpuBefore);
const theirs = await client.call(cpu, {});
const ops = scenario === 'unary' ? amount : amount / MiB;
process.stdout.write(
  `${JSON.stringify({
    rate: amount / elapsedS,
    clientCpuUsPerOp: (mine.user + mine.system) / ops,
    serverCpuUsPerOp: (theirs.userUs + theirs.systemUs) / ops,
  })}\n`,
);
await client.close();
