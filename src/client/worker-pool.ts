/**
 * Connections to workers, one channel per worker address, made on first use and cached for the
 * client's lifetime; and the memory of workers that failed recently (`client.failed_worker_ttl`),
 * so readers try them last and writers ask the master to place blocks elsewhere.
 */
import type { WorkerAddress } from '../protocol/types.js';
import type { ClientSettings } from './settings.js';
import type { RpcChannel, RpcConnector } from './transport.js';

/** Most failed workers remembered; the oldest entries are forgotten first. */
export const MAX_FAILED_WORKERS = 1024;
/** Most cached worker channels; a cluster larger than this reconnects to the least recently used. */
export const MAX_WORKER_CHANNELS = 4096;
/** Shortest pause of short-circuit I/O with a worker whose files could not be opened. */
export const NO_LOCAL_MIN_TTL_MS = 30_000;

export function workerKey(w: Pick<WorkerAddress, 'hostname' | 'rpcPort'>): string {
  return `${w.hostname}:${w.rpcPort}`;
}

export class FailedWorkers {
  readonly #ttlMs: number;
  readonly #until = new Map<string, number>();
  readonly #now: () => number;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** Remembers a worker id as failed for the TTL. */
  add(workerId: string): void {
    if (this.#ttlMs <= 0) return;
    this.#until.delete(workerId);
    this.#until.set(workerId, this.#now() + this.#ttlMs);
    while (this.#until.size > MAX_FAILED_WORKERS) {
      const oldest = this.#until.keys().next().value;
      if (oldest === undefined) break;
      this.#until.delete(oldest);
    }
  }

  has(workerId: string): boolean {
    const until = this.#until.get(workerId);
    if (until === undefined) return false;
    if (until <= this.#now()) {
      this.#until.delete(workerId);
      return false;
    }
    return true;
  }

  /** Worker ids still remembered (to exclude from placement). */
  list(): string[] {
    return [...this.#until.keys()].filter((id) => this.has(id));
  }

  clear(workerId: string): void {
    this.#until.delete(workerId);
  }
}

export class WorkerPool {
  readonly #connector: RpcConnector;
  readonly #settings: ClientSettings;
  readonly #channels = new Map<string, RpcChannel>();
  readonly failed: FailedWorkers;
  /** Workers whose block files this process could not open: short-circuit paused for them. */
  readonly #noLocal: FailedWorkers;

  constructor(connector: RpcConnector, settings: ClientSettings) {
    this.#connector = connector;
    this.#settings = settings;
    this.failed = new FailedWorkers(settings.failedWorkerTtlMs);
    this.#noLocal = new FailedWorkers(Math.max(settings.failedWorkerTtlMs, NO_LOCAL_MIN_TTL_MS));
  }

  channel(w: Pick<WorkerAddress, 'hostname' | 'rpcPort'>): RpcChannel {
    const key = workerKey(w);
    let ch = this.#channels.get(key);
    if (ch !== undefined) {
      // Refresh recency (Map order is insertion order).
      this.#channels.delete(key);
      this.#channels.set(key, ch);
      return ch;
    }
    ch = this.#connector.connect({
      addresses: [{ host: w.hostname, port: w.rpcPort }],
      callTimeoutMs: this.#settings.rpcTimeoutMs,
      connectTimeoutMs: this.#settings.connTimeoutMs,
      // Worker calls are retried by the block reader and writer (on other replicas), not here.
      retryMax: 0,
      label: `worker ${key}`,
    });
    this.#channels.set(key, ch);
    if (this.#channels.size > MAX_WORKER_CHANNELS) {
      const [oldKey, oldCh] = this.#channels.entries().next().value ?? [];
      if (oldKey !== undefined && oldCh !== undefined) {
        this.#channels.delete(oldKey);
        void oldCh.close().catch(() => undefined);
      }
    }
    return ch;
  }

  /** True when short-circuit I/O may be tried with this worker. */
  isLocal(w: WorkerAddress): boolean {
    return (
      this.#settings.shortCircuit && w.hostId === this.#settings.hostId && !this.#noLocal.has(w.workerId)
    );
  }

  /** The worker looked local but its block files could not be opened here: use RPC for a while. */
  markNotLocal(w: WorkerAddress): void {
    this.#noLocal.add(w.workerId);
  }

  async close(): Promise<void> {
    const all = [...this.#channels.values()];
    this.#channels.clear();
    await Promise.all(all.map((c) => c.close().catch(() => undefined)));
  }
}
