/**
 * The worker benchmark's client process: against a running worker it writes a block set over
 * RPC and through short-circuit files, then reads it back both ways, and prints one JSON line of
 * bytes per second. Run by main.ts (with the same V8 flags as the worker).
 *
 * Beside each rate it reports the CPU the phase cost, this process's and the worker's (by pid), in
 * CPU seconds per GiB: a figure that does not swing with the load of a shared machine.
 *
 * argv: <rpcPort> <blocks> <blockBytes> <passes> <workerPid> [writes]   (`writes`: only the writes)
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { cpuSecondsPerGiB, ownCpuMs, processCpuMs } from '../lib/cpu.js';
import { ChunkChecksummer } from '../../src/protocol/chunk-checksums.js';
import { AlignedSlotPool, DirectAppender } from '../../src/protocol/direct-io.js';
import { WorkerCalls } from '../../src/protocol/index.js';
import { RpcClient } from '../../src/rpc/index.js';

const MiB = 1024 * 1024;
const [port, blocksArg, blockArg, passesArg, workerPidArg, onlyArg] = process.argv.slice(2);
const workerPid = Number(workerPidArg);
const writesOnly = onlyArg === 'writes';
const blocks = Number(blocksArg);
const blockBytes = Number(blockArg);
const passes = Number(passesArg ?? '2');
const client = new RpcClient({
  addresses: [{ host: '127.0.0.1', port: Number(port) }],
  streamDeadlineMs: 600_000,
});
const LOCAL_BASE_ID = 1_000_000;
const slots = new AlignedSlotPool();

const chunk = Buffer.alloc(MiB);
for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);

function rate(bytes: number, startedMs: number): number {
  return bytes / ((performance.now() - startedMs) / 1000);
}

async function remoteWrite(): Promise<number> {
  const t = performance.now();
  for (let b = 1; b <= blocks; b++) {
    const call = client.write(WorkerCalls.WriteBlock, {
      blockId: b,
      storageType: 'DISK',
      lengthHint: blockBytes,
    });
    for (let off = 0; off < blockBytes; off += MiB) await call.write(chunk);
    await call.end();
  }
  return rate(blocks * blockBytes, t);
}

async function localWrite(): Promise<number> {
  const t = performance.now();
  for (let b = 1; b <= blocks; b++) {
    const blockId = LOCAL_BASE_ID + b;
    const { path } = await client.call(WorkerCalls.OpenLocalWrite, {
      blockId,
      storageType: 'DISK',
      lengthHint: blockBytes,
    });
    // As the SDK's writer does with `client.direct_writes = true`: O_DIRECT through aligned slots where the filesystem allows it,
    // checksum each piece, hand the table over at commit.
    const opened = await DirectAppender.open(path, 'r+', slots);
    const sums = new ChunkChecksummer(blockBytes);
    if ('appender' in opened) {
      for (let off = 0; off < blockBytes; off += MiB) {
        sums.update(chunk);
        await opened.appender.append(chunk);
      }
      await opened.appender.flush();
      await opened.appender.close();
    } else {
      const fh = opened.plain;
      for (let off = 0; off < blockBytes; off += MiB) {
        const written = fh.write(chunk, 0, MiB, off);
        sums.update(chunk);
        await written;
      }
      await fh.close();
    }
    await client.call(
      WorkerCalls.CommitLocalWrite,
      { blockId, length: blockBytes, checksummed: true },
      { payload: sums.finish() },
    );
  }
  return rate(blocks * blockBytes, t);
}

/**
 * Streamed reads of every block. `reuseBuffers`: each chunk is valid until the next (this consumer
 * keeps none), so the stream receives into a few reused buffers, as the SDK's `read(buffer)` does.
 */
async function remoteRead(reuseBuffers = false): Promise<number> {
  const t = performance.now();
  let bytes = 0;
  for (let b = 1; b <= blocks; b++) {
    const call = client.read(WorkerCalls.ReadBlock, { blockId: b }, { reuseBuffers });
    for await (const c of call) bytes += c.length;
    await call.result;
  }
  return rate(bytes, t);
}

/** 1 MiB preads of the block files: synchronous like fio's psync engine, or through libuv's pool. */
async function localRead(sync: boolean): Promise<number> {
  const buf = Buffer.allocUnsafeSlow(MiB);
  const t = performance.now();
  let bytes = 0;
  for (let b = 1; b <= blocks; b++) {
    const { path, length } = await client.call(WorkerCalls.OpenLocalRead, { blockId: b });
    if (sync) {
      const fd = openSync(path, 'r');
      for (let off = 0; off < length;) {
        const n = readSync(fd, buf, 0, Math.min(MiB, length - off), off);
        if (n === 0) break;
        off += n;
        bytes += n;
      }
      closeSync(fd);
      continue;
    }
    const fh = await open(path, 'r');
    for (let off = 0; off < length;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(MiB, length - off), off);
      if (bytesRead === 0) break;
      off += bytesRead;
      bytes += bytesRead;
    }
    await fh.close();
  }
  return rate(bytes, t);
}

/** CPU seconds per GiB of the last measured pass of each phase: this process, the worker. */
const cpu: Record<string, { client: number; worker: number }> = {};

/** Runs a pass and records its CPU per GiB under `name` (the last pass's figure is kept). */
async function measured(name: string, f: () => Promise<number>): Promise<number> {
  const own = ownCpuMs();
  const worker = processCpuMs(workerPid);
  const rate = await f();
  const bytes = blocks * blockBytes;
  cpu[name] = {
    client: cpuSecondsPerGiB(ownCpuMs() - own, bytes),
    worker: cpuSecondsPerGiB(processCpuMs(workerPid) - worker, bytes),
  };
  return rate;
}

async function bestOf(n: number, name: string, f: () => Promise<number>): Promise<number> {
  let best = 0;
  for (let i = 0; i < n; i++) best = Math.max(best, await measured(name, f));
  return best;
}

const result = {
  remoteWrite: await measured('remoteWrite', remoteWrite),
  localWrite: await measured('localWrite', localWrite),
  // A first pass warms the page cache, as fio's layout pass does for its file.
  remoteRead: writesOnly ? 0 : (await remoteRead(), await bestOf(passes, 'remoteRead', () => remoteRead())),
  remoteReadReuse: writesOnly ? 0 : await bestOf(passes, 'remoteReadReuse', () => remoteRead(true)),
  localRead: writesOnly ? 0 : await bestOf(passes, 'localRead', () => localRead(true)),
  localReadAsync: writesOnly ? 0 : await bestOf(passes, 'localReadAsync', () => localRead(false)),
  cpu,
};
await client.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
