/**
 * The worker's RPC pieces on the cluster RPC: the server for its calls, a client of the masters
 * (every `client.master_addrs` entry; the client fails over to the leader), and clients of other
 * workers for replication (one per source, kept in a small LRU).
 */
import type { ClusterConfig } from '../common/config/index.js';
import type { Logger } from '../common/logging.js';
import type { Registry } from '../common/metrics.js';
import { WorkerCalls } from '../protocol/index.js';
import type { WorkerAddress } from '../protocol/index.js';
import { RpcClient, RpcServer, masterClientOptions } from '../rpc/index.js';
import type { ReadCall, RpcClientOptions } from '../rpc/index.js';
import type { WorkerRpc } from './worker.js';

/** Peer clients kept open for replication; the least recently used is closed beyond this. */
export const MAX_PEER_CLIENTS = 32;

export function createWorkerRpc(config: ClusterConfig, log: Logger, registry: Registry): WorkerRpc {
  const { addresses, ...clientOptions } = masterClientOptions(config);
  const server = new RpcServer({ log, registry });
  const master = new RpcClient({ ...clientOptions, addresses, log, registry });
  const peers = new PeerClients({ ...clientOptions, log, registry });
  return { server, master, peers };
}

type PeerOptions = Omit<RpcClientOptions, 'addresses'>;

class PeerClients {
  readonly #clients = new Map<string, RpcClient>();
  readonly #opts: PeerOptions;

  constructor(opts: PeerOptions) {
    this.#opts = opts;
  }

  readBlock(source: WorkerAddress, blockId: number, signal: AbortSignal): ReadCall<{ bytes: number }> {
    return this.#client(source).read(WorkerCalls.ReadBlock, { blockId }, { signal });
  }

  #client(source: WorkerAddress): RpcClient {
    const key = `${source.hostname}:${source.rpcPort}`;
    let client = this.#clients.get(key);
    if (client !== undefined) {
      this.#clients.delete(key);
      this.#clients.set(key, client);
      return client;
    }
    client = new RpcClient({ ...this.#opts, addresses: [{ host: source.hostname, port: source.rpcPort }] });
    this.#clients.set(key, client);
    if (this.#clients.size > MAX_PEER_CLIENTS) {
      const [oldestKey, oldest] = this.#clients.entries().next().value as [string, RpcClient];
      this.#clients.delete(oldestKey);
      void oldest.close();
    }
    return client;
  }

  async close(): Promise<void> {
    const all = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.allSettled(all.map((c) => c.close()));
  }
}
