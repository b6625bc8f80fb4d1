/**
 * The console's metrics history: a fixed-size ring of samples taken every few seconds, enough
 * for the last hour's charts without Prometheus. Memory is bounded by construction (capacity
 * samples of a few numbers each, about 100 KiB for an hour at 5 s), and nothing survives a
 * restart: long-term history is Prometheus's job (deploy/grafana).
 */

/** One point of the charts: rates over the interval that ended at `tMs`. */
export interface HistorySample {
  /** End of the interval, ms since the epoch. */
  tMs: number;
  /** Metadata calls from clients per second (worker heartbeats and reports excluded). */
  opsPerSec: number;
  /** Calls answered with an error, per second. */
  errorsPerSec: number;
  /** Worker calls (register, heartbeat, block report) per second. */
  workerCallsPerSec: number;
  /** Block bytes served and stored by the workers per second (clients' traffic, not replication). */
  readBytesPerSec: number;
  writeBytesPerSec: number;
  /** Bytes copied between workers (re-replication, decommission) per second. */
  replicationBytesPerSec: number;
  /** Block reads located in the cache / all located reads of UFS-backed files; null without such reads. */
  hitRatio: number | null;
  /** Located block reads of UFS-backed files per second (the weight of hitRatio). */
  blockReadsPerSec: number;
  /** Namespace cache hits / lookups in the interval; null without lookups. */
  metaHitRatio: number | null;
  /** Workers that answered the scrape / workers asked. */
  workersScraped: number;
  workersAsked: number;
}

export class SampleRing<T> {
  readonly capacity: number;
  readonly #items: (T | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
  }

  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size; i++) out.push(this.#items[(start + i) % this.capacity] as T);
    return out;
  }

  last(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[(this.#next - 1 + this.capacity) % this.capacity];
  }
}
