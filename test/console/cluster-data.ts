/**
 * Puts data into a MiniCluster through the master's and workers' RPC (the calls the client
 * library makes): directories, files whose blocks are written to the workers the master chose,
 * a file whose blocks no worker holds, and a directory of many empty files.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { MasterCalls as M, WorkerCalls as W } from '../../src/protocol/index.js';
import type { WorkerAddress } from '../../src/protocol/index.js';
import { RpcClient } from '../../src/rpc/index.js';

export const MiB = 1024 * 1024;

export class ClusterWriter {
  readonly master: RpcClient;
  readonly #workers = new Map<number, RpcClient>();

  constructor(masterRpcPort: number) {
    this.master = new RpcClient({ addresses: [{ host: '127.0.0.1', port: masterRpcPort }] });
  }

  #worker(a: WorkerAddress): RpcClient {
    let c = this.#workers.get(a.rpcPort);
    if (c === undefined) {
      c = new RpcClient({ addresses: [{ host: '127.0.0.1', port: a.rpcPort }], retryMax: 0 });
      this.#workers.set(a.rpcPort, c);
    }
    return c;
  }

  async close(): Promise<void> {
    await this.master.close();
    for (const c of this.#workers.values()) await c.close();
  }

  async mkdir(path: string): Promise<void> {
    await this.master.call(M.Mkdir, { path, parents: true });
  }

  /**
   * Writes a file of `bytes` random bytes in blocks of `blockBytes`, each block to the workers
   * the master placed it on; with `cached = false` the blocks are committed without any copy.
   */
  async writeFile(
    path: string,
    bytes: number,
    o: { blockBytes?: number; replicas?: number; cached?: boolean } = {},
  ): Promise<void> {
    const blockBytes = o.blockBytes ?? MiB;
    const { status, leaseId } = await this.master.call(M.Create, {
      path,
      parents: true,
      blockSize: blockBytes,
      replicas: o.replicas ?? 1,
    });
    const blocks: { blockId: number; length: number; workers: string[] }[] = [];
    for (let off = 0; off < bytes; off += blockBytes) {
      const length = Math.min(blockBytes, bytes - off);
      const { blockId, workers } = await this.master.call(M.AddBlock, { fileId: status.id, leaseId });
      const stored: string[] = [];
      if (o.cached !== false) {
        const data = randomBytes(length);
        for (const w of workers) {
          const call = this.#worker(w).write(W.WriteBlock, {
            blockId,
            storageType: 'DISK',
            lengthHint: length,
          });
          await call.write(data);
          await call.end();
          stored.push(w.workerId);
        }
        assert.ok(stored.length > 0, `no worker placed for block ${blockId}`);
      }
      blocks.push({ blockId, length, workers: stored });
    }
    await this.master.call(M.Complete, { fileId: status.id, leaseId, blocks, length: bytes });
  }

  /** Creates `count` empty files `<dir>/f-00000…` with `concurrency` calls in flight. */
  async emptyFiles(dir: string, count: number, concurrency = 32): Promise<void> {
    await this.mkdir(dir);
    let next = 0;
    const width = String(count - 1).length;
    const run = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const { status, leaseId } = await this.master.call(M.Create, {
          path: `${dir}/f-${String(i).padStart(width, '0')}`,
        });
        await this.master.call(M.Complete, { fileId: status.id, leaseId, blocks: [], length: 0 });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, run));
  }
}
