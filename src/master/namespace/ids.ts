/**
 * Id allocation from persistent counters, a range at a time. Reserving a range is its own small
 * transaction; ids are then handed out from memory, so the hot counter is not written by every
 * create (with etcd, a counter in every transaction would make all of them conflict). Ids of a
 * range not used before a restart are skipped: ids are unique, not dense.
 */
import type { MetaStore } from '../../meta/index.js';
import { decodeU64, encodeU64, metaKey } from './keys.js';

export const DEFAULT_ID_RANGE = 1024;

export class IdAllocator {
  readonly #store: MetaStore;
  readonly #key: Buffer;
  readonly #range: number;
  /** The value the counter starts from when the store has none (a fresh namespace). */
  readonly #initial: () => number;
  #next = 0;
  #end = 0;
  #refill: Promise<void> | undefined;

  constructor(store: MetaStore, counterName: string, initial: () => number, range = DEFAULT_ID_RANGE) {
    this.#store = store;
    this.#key = metaKey(counterName);
    this.#initial = initial;
    this.#range = range;
  }

  /** `n` fresh ids (consecutive). */
  async take(n = 1): Promise<number[]> {
    while (this.#end - this.#next < n) {
      this.#refill ??= this.#reserve(Math.max(n, this.#range)).finally(() => {
        this.#refill = undefined;
      });
      await this.#refill;
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(this.#next++);
    return out;
  }

  async takeOne(): Promise<number> {
    if (this.#next < this.#end) return this.#next++;
    return (await this.take(1))[0] as number;
  }

  async #reserve(count: number): Promise<void> {
    const initial = this.#initial();
    const start = await this.#store.transaction((tx) => {
      const cur = tx.get(this.#key);
      const from = cur === undefined ? initial : decodeU64(cur);
      tx.put(this.#key, encodeU64(from + count));
      return from;
    });
    this.#next = start;
    this.#end = start + count;
  }
}
