/**
 * Carries out `replicate` commands: copies blocks from another worker (a streamed, verified read
 * there) into this worker's store (a normal staged write here), a few at a time. A block already
 * stored is skipped; a failed copy leaves nothing and is reported in the next heartbeat, so the
 * master plans it again (perhaps from another source or to another target) at once.
 */
import type { Logger } from '../common/logging.js';
import type { WorkerAddress, WorkerCommand } from '../protocol/index.js';
import { MAX_REPORTED_REPLICATION_FAILURES } from '../protocol/master-calls.js';
import type { ReadCall } from '../rpc/api.js';
import type { BlockStore } from './block-store.js';
import type { WorkerMetrics } from './worker-metrics.js';

/** Copies running at once: replication must not starve client traffic. */
export const MAX_CONCURRENT_REPLICATIONS = 2;
/** Tasks waiting beyond this are dropped (the master asks again for what is still missing). */
export const MAX_QUEUED_REPLICATIONS = 10_000;

export type ReplicateTask = Extract<WorkerCommand, { type: 'replicate' }>['tasks'][number];

/** Opens a block read on another worker. */
export interface PeerReader {
  readBlock(source: WorkerAddress, blockId: number, signal: AbortSignal): ReadCall<{ bytes: number }>;
}

export interface ReplicatorOptions {
  store: BlockStore;
  peers: PeerReader;
  log: Logger;
  metrics?: WorkerMetrics;
  concurrency?: number;
}

export class Replicator {
  readonly #o: ReplicatorOptions;
  readonly #queue: ReplicateTask[] = [];
  readonly #queued = new Set<number>();
  readonly #abort = new AbortController();
  readonly #running = new Set<Promise<void>>();
  /** Tasks that failed (or were dropped) since the last heartbeat took them. */
  readonly #failed = new Set<number>();

  constructor(opts: ReplicatorOptions) {
    this.#o = opts;
  }

  get pending(): number {
    return this.#queue.length + this.#running.size;
  }

  /** Failed tasks to report in the next heartbeat (at most MAX_REPORTED_REPLICATION_FAILURES). */
  takeFailed(): number[] {
    const ids: number[] = [];
    for (const id of this.#failed) {
      if (ids.length >= MAX_REPORTED_REPLICATION_FAILURES) break;
      ids.push(id);
      this.#failed.delete(id);
    }
    return ids;
  }

  /** Reports taken by a heartbeat the master did not receive: sent with the next one. */
  restoreFailed(ids: readonly number[]): void {
    for (const id of ids) this.#failed.add(id);
  }

  enqueue(tasks: readonly ReplicateTask[]): void {
    for (const t of tasks) {
      if (this.#queued.has(t.blockId) || this.#o.store.has(t.blockId)) continue;
      if (this.#queue.length >= MAX_QUEUED_REPLICATIONS) {
        this.#o.log.warn({ blockId: t.blockId }, 'replication queue full: task dropped');
        this.#failed.add(t.blockId);
        continue;
      }
      this.#queue.push(t);
      this.#queued.add(t.blockId);
      this.#failed.delete(t.blockId);
    }
    this.#pump();
  }

  /** Cancels queued and running copies (their staging files are removed). */
  async stop(): Promise<void> {
    this.#queue.length = 0;
    this.#abort.abort(new Error('the worker is stopping'));
    await Promise.allSettled([...this.#running]);
  }

  #pump(): void {
    const limit = this.#o.concurrency ?? MAX_CONCURRENT_REPLICATIONS;
    while (this.#running.size < limit && this.#queue.length > 0 && !this.#abort.signal.aborted) {
      const task = this.#queue.shift() as ReplicateTask;
      const p = this.#copy(task).finally(() => {
        this.#running.delete(p);
        this.#queued.delete(task.blockId);
        this.#pump();
      });
      this.#running.add(p);
    }
  }

  async #copy(task: ReplicateTask): Promise<void> {
    const { store, log, metrics } = this.#o;
    if (store.has(task.blockId)) return;
    const signal = this.#abort.signal;
    const started = process.hrtime.bigint();
    let call: ReadCall<{ bytes: number }> | undefined;
    try {
      const writer = await store.createWriter(task.blockId, task.storageType, task.length, signal);
      try {
        call = this.#o.peers.readBlock(task.source, task.blockId, signal);
        for await (const chunk of call) await writer.write(chunk, signal);
        const res = await call.result;
        signal.throwIfAborted();
        if (res.bytes !== writer.writtenBytes) {
          throw new Error(`source sent ${writer.writtenBytes} bytes but reported ${res.bytes}`);
        }
        const info = await store.commitWriter(writer);
        metrics?.replications.inc({ outcome: 'ok' });
        metrics?.writeBytes.inc({ path: 'replication' }, info.lengthBytes);
        metrics?.writeSeconds.observe(
          { path: 'replication' },
          Number(process.hrtime.bigint() - started) / 1e9,
        );
        log.info(
          {
            blockId: task.blockId,
            from: task.source.workerId,
            bytes: info.lengthBytes,
            tier: info.storageType,
          },
          'block replicated',
        );
      } catch (err) {
        call?.cancel('replication failed');
        await store.abortWriter(writer);
        throw err;
      }
    } catch (err) {
      metrics?.replications.inc({ outcome: 'failed' });
      if (!signal.aborted) {
        log.warn({ err, blockId: task.blockId, from: task.source.workerId }, 'replication failed');
        this.#failed.add(task.blockId);
      }
    }
  }
}
