/**
 * Coalesces many small requests to one peer into few round trips: items submitted in the same
 * tick (or while the in-flight limit is reached) travel together. With one batch in flight (as
 * the peer set uses it) batches also arrive in submission order, so two operations on one key
 * execute in the order they were issued. Under load this turns N
 * forwarded commands into N/batch HTTP requests; idle, an item leaves on the next tick, so the
 * added latency is one event-loop turn. The queue is bounded: past `maxQueued` a submit fails at
 * once (overload is an answer, not unbounded memory).
 */
import { KvError } from './errors.js';

export interface BatcherOptions<I, R> {
  /** Sends one batch; resolves with one result per item, in order, or rejects for all. */
  send: (items: I[]) => Promise<R[]>;
  maxBatch: number;
  /** A batch is closed once its items weigh this much (at least one item per batch). */
  maxBatchBytes: number;
  /** Approximate bytes of an item on the wire. */
  weigh: (item: I) => number;
  maxInFlight: number;
  maxQueued: number;
  /** For messages. */
  name: string;
}

interface Pending<I, R> {
  item: I;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

export class Batcher<I, R> {
  readonly #opts: BatcherOptions<I, R>;
  #queue: Pending<I, R>[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(opts: BatcherOptions<I, R>) {
    this.#opts = opts;
  }

  get queued(): number {
    return this.#queue.length;
  }

  submit(item: I): Promise<R> {
    if (this.#queue.length >= this.#opts.maxQueued) {
      return Promise.reject(
        new KvError(
          'STRATA_KV_OVERLOADED',
          `${this.#opts.name}: more than ${this.#opts.maxQueued} requests queued`,
        ),
      );
    }
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#pump();
        });
      }
    });
  }

  #pump(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#opts.maxInFlight) {
      let count = 0;
      let bytes = 0;
      while (
        count < this.#queue.length &&
        count < this.#opts.maxBatch &&
        (count === 0 || bytes < this.#opts.maxBatchBytes)
      ) {
        bytes += this.#opts.weigh((this.#queue[count] as Pending<I, R>).item);
        count++;
      }
      const batch = this.#queue.splice(0, count);
      this.#inFlight++;
      this.#opts
        .send(batch.map((p) => p.item))
        .then(
          (results) => {
            batch.forEach((p, i) => {
              if (i < results.length) p.resolve(results[i] as R);
              else p.reject(new KvError('STRATA_KV_UNAVAILABLE', `${this.#opts.name}: short batch reply`));
            });
          },
          (err: unknown) => {
            for (const p of batch) p.reject(err);
          },
        )
        .finally(() => {
          this.#inFlight--;
          this.#pump();
        });
    }
  }
}
