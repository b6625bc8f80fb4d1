/**
 * The engine's requests to etcd: reads repeated on transient failures (they change nothing),
 * commits sent once and their failures classified (never sent: safe to send again; sent and
 * unanswered: the outcome is unknown), every request timed for the latency metric.
 */
import type { Etcd3, IRangeRequest, IRangeResponse, ITxnRequest, ITxnResponse } from 'etcd3';
import { performance } from 'node:perf_hooks';
import {
  etcdOutcomeUnknown,
  etcdRefused,
  etcdUnavailable,
  isCompacted,
  isTransient,
  neverSent,
} from './errors.js';
import { ETCD_READ_ATTEMPTS, ETCD_READ_RETRY_DELAY_MS } from './limits.js';

/** Called after every request: kind of request, seconds it took, whether it succeeded. */
export type EtcdObserver = (op: EtcdOp, seconds: number, ok: boolean) => void;
export type EtcdOp = 'range' | 'read_txn' | 'commit' | 'put' | 'delete' | 'lease';

/** Thrown for a read at a revision etcd compacted away; the engine starts a fresh snapshot. */
export class CompactedError extends Error {
  constructor() {
    super('etcd revision compacted (internal: the snapshot starts again)');
  }
}

export class EtcdTransport {
  readonly client: Etcd3;
  readonly #observe: EtcdObserver | undefined;

  constructor(client: Etcd3, observe?: EtcdObserver) {
    this.client = client;
    this.#observe = observe;
  }

  range(req: IRangeRequest): Promise<IRangeResponse> {
    return this.#read('range', () => this.client.kv.range(req));
  }

  /** A transaction of reads only (one consistent revision for several ranges). */
  readTxn(req: ITxnRequest): Promise<ITxnResponse> {
    return this.#read('read_txn', () => this.client.kv.txn(req));
  }

  /**
   * Sends a writing transaction once more when the failure proves it never left; otherwise
   * STRATA_META_OUTCOME_UNKNOWN (transient failure after sending) or STRATA_META_IO (refused).
   */
  async commit(req: ITxnRequest): Promise<ITxnResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#timed('commit', () => this.client.kv.txn(req));
      } catch (err) {
        if (neverSent(err) && attempt < ETCD_READ_ATTEMPTS) {
          await delay(ETCD_READ_RETRY_DELAY_MS * 2 ** (attempt - 1));
          continue;
        }
        if (neverSent(err)) throw etcdUnavailable('commit', err);
        if (isTransient(err)) throw etcdOutcomeUnknown(err);
        throw etcdRefused('commit', err);
      }
    }
  }

  /** A write that is safe to repeat (idempotent: redo chunks, roll-forward batches). */
  async idempotent<T>(op: EtcdOp, fn: () => Promise<T>): Promise<T> {
    return this.#read(op, fn);
  }

  async #read<T>(op: EtcdOp, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#timed(op, fn);
      } catch (err) {
        if (isCompacted(err)) throw new CompactedError();
        if (!isTransient(err)) throw etcdRefused(op.replace('_', ' '), err);
        if (attempt >= ETCD_READ_ATTEMPTS) throw etcdUnavailable(op.replace('_', ' '), err);
        await delay(ETCD_READ_RETRY_DELAY_MS * 2 ** (attempt - 1));
      }
    }
  }

  async #timed<T>(op: EtcdOp, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const r = await fn();
      this.#observe?.(op, (performance.now() - t0) / 1000, true);
      return r;
    } catch (err) {
      this.#observe?.(op, (performance.now() - t0) / 1000, false);
      throw err;
    }
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
