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
import { cpuSecondsPerGiB, mainThreadCpuMs, ownCpuMs, processCpuMs } from '../lib/cpu.js';
import { readChecksumTable, readVerifiedSync } from '../../src/client/local-verify.js';
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

/**
 * Blocks whose commit may still be running while the next block is written, as the SDK's file
 * writer allows (MAX_FINISHING_BLOCKS in src/client/file-writer.ts): a block's sync and publish
 * overlap the next block's bytes instead of stalling the stream.
 */
const FINISHING_BLOCKS = 2;
/** Block ids of the unmeasured warm-up writes (a fresh worker's code is not yet optimised). */
const WARMUP_BASE_ID = 2_000_000;
const WARMUP_BLOCKS = 2;

/** A block whose bytes are written; its commit may still be running. */
interface Written {
  commit: Promise<unknown>;
}

/**
 * Runs `write(b)` for blocks 1..count, one after another; each block's commit is awaited only
 * when FINISHING_BLOCKS later blocks have been written.
 */
async function writeBlocks(count: number, write: (b: number) => Promise<Written>): Promise<void> {
  const finishing: Promise<unknown>[] = [];
  for (let b = 1; b <= count; b++) {
    const { commit } = await write(b);
    commit.catch(() => undefined);
    finishing.push(commit);
    if (finishing.length > FINISHING_BLOCKS) await finishing.shift();
  }
  await Promise.all(finishing);
}

async function remoteBlock(blockId: number): Promise<Written> {
  const call = client.write(WorkerCalls.WriteBlock, {
    blockId,
    storageType: 'DISK',
    lengthHint: blockBytes,
  });
  for (let off = 0; off < blockBytes; off += MiB) await call.write(chunk);
  return { commit: call.end() };
}

async function localBlock(blockId: number): Promise<Written> {
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
  return {
    commit: client.call(
      WorkerCalls.CommitLocalWrite,
      { blockId, length: blockBytes, checksummed: true },
      { payload: sums.finish() },
    ),
  };
}

async function remoteWrite(): Promise<number> {
  const t = performance.now();
  await writeBlocks(blocks, (b) => remoteBlock(b));
  return rate(blocks * blockBytes, t);
}

async function localWrite(): Promise<number> {
  const t = performance.now();
  await writeBlocks(blocks, (b) => localBlock(LOCAL_BASE_ID + b));
  return rate(blocks * blockBytes, t);
}

/** Unmeasured: a few blocks both ways, so the measured writes run optimised code, as a running worker's does. */
async function warmUp(): Promise<void> {
  await writeBlocks(WARMUP_BLOCKS, (b) => remoteBlock(WARMUP_BASE_ID + b));
  await writeBlocks(WARMUP_BLOCKS, (b) => localBlock(WARMUP_BASE_ID + WARMUP_BLOCKS + b));
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

/**
 * 1 MiB reads of the block files through the SDK's checked path (local-verify.ts: the checksum
 * table read once per file, every chunk's CRC32 checked), synchronous as the SDK's inline reads.
 */
async function localReadVerified(): Promise<number> {
  const buf = Buffer.allocUnsafeSlow(MiB);
  const t = performance.now();
  let bytes = 0;
  for (let b = 1; b <= blocks; b++) {
    const { path, length } = await client.call(WorkerCalls.OpenLocalRead, { blockId: b });
    const fh = await open(path, 'r');
    const file = { blockId: b, lengthBytes: length, table: await readChecksumTable(fh, b, length) };
    for (let off = 0; off < length;) {
      const n = readVerifiedSync(fh.fd, file, buf, 0, off, Math.min(MiB, length - off));
      if (n === 0) break;
      off += n;
      bytes += n;
    }
    await fh.close();
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

/**
 * CPU seconds per GiB of the last measured pass of each phase: this process, the worker, and of
 * that the worker's event-loop thread.
 */
const cpu: Record<string, { client: number; worker: number; workerLoop: number }> = {};

/** Runs a pass and records its CPU per GiB under `name` (the last pass's figure is kept). */
async function measured(name: string, f: () => Promise<number>): Promise<number> {
  const own = ownCpuMs();
  const worker = processCpuMs(workerPid);
  const workerLoop = mainThreadCpuMs(workerPid);
  const rate = await f();
  const bytes = blocks * blockBytes;
  cpu[name] = {
    client: cpuSecondsPerGiB(ownCpuMs() - own, bytes),
    worker: cpuSecondsPerGiB(processCpuMs(workerPid) - worker, bytes),
    workerLoop: cpuSecondsPerGiB(mainThreadCpuMs(workerPid) - workerLoop, bytes),
  };
  return rate;
}

async function bestOf(n: number, name: string, f: () => Promise<number>): Promise<number> {
  let best = 0;
  for (let i = 0; i < n; i++) best = Math.max(best, await measured(name, f));
  return best;
}

await warmUp();
const result = {
  remoteWrite: await measured('remoteWrite', remoteWrite),
  localWrite: await measured('localWrite', localWrite),
  // A first pass warms the page cache, as fio's layout pass does for its file.
  remoteRead: writesOnly ? 0 : (await remoteRead(), await bestOf(passes, 'remoteRead', () => remoteRead())),
  remoteReadReuse: writesOnly ? 0 : await bestOf(passes, 'remoteReadReuse', () => remoteRead(true)),
  localRead: writesOnly ? 0 : await bestOf(passes, 'localRead', () => localRead(true)),
  localReadAsync: writesOnly ? 0 : await bestOf(passes, 'localReadAsync', () => localRead(false)),
  localReadVerified: writesOnly ? 0 : await bestOf(passes, 'localReadVerified', localReadVerified),
  cpu,
};
await client.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
