/**
 * RPC clients from the master to workers, for the calls the master makes itself: load tasks and
 * persisting files. One client per worker address, opened on first use and closed when the
 * master stops (or when the address of a worker id changes).
 */
import type { Logger } from '../../common/logging.js';
import type { WorkerAddress } from '../../protocol/types.js';
import { RpcClient } from '../../rpc/index.js';

export interface WorkerClientOptions {
  connectTimeoutMs: number;
  log: Logger;
}

export class WorkerClients {
  readonly #opts: WorkerClientOptions;
  readonly #clients = new Map<string, { key: string; client: RpcClient }>();

  constructor(opts: WorkerClientOptions) {
    this.#opts = opts;
  }

  get(w: WorkerAddress): RpcClient {
    const key = `${w.hostname}:${w.rpcPort}`;
    const cur = this.#clients.get(w.workerId);
    if (cur !== undefined && cur.key === key) return cur.client;
    if (cur !== undefined) void cur.client.close();
    const client = new RpcClient({
      addresses: [{ host: w.hostname, port: w.rpcPort }],
      connectTimeoutMs: this.#opts.connectTimeoutMs,
      // A task that fails is rescheduled by its owner (load job, persist queue): no blind retries here.
      retryMax: 0,
      log: this.#opts.log,
    });
    this.#clients.set(w.workerId, { key, client });
    return client;
  }

  async close(): Promise<void> {
    const all = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.allSettled(all.map((c) => c.client.close()));
  }
}
