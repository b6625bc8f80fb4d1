/**
 * Where block copies are: soft state in the master's memory, rebuilt from workers' block
 * reports and never persisted (after a restart every worker re-registers with a full report).
 * Indexed both ways: block → holders and worker → blocks.
 */
import type { StorageType } from '../../common/config/data-dir.js';

export interface Replica {
  workerId: string;
  storageType: StorageType;
  /** Bytes the worker stores (may exceed the file's logical length of the block after a truncate). */
  length: number;
}

export class BlockMap {
  readonly #blocks = new Map<number, Replica[]>();
  readonly #byWorker = new Map<string, Set<number>>();
  #replicas = 0;

  /** Records (or refreshes) a copy; returns true when it is new. */
  add(blockId: number, r: Replica): boolean {
    const list = this.#blocks.get(blockId);
    if (list === undefined) {
      this.#blocks.set(blockId, [r]);
    } else {
      const i = list.findIndex((x) => x.workerId === r.workerId);
      if (i >= 0) {
        list[i] = r;
        return false;
      }
      list.push(r);
    }
    let set = this.#byWorker.get(r.workerId);
    if (set === undefined) {
      set = new Set();
      this.#byWorker.set(r.workerId, set);
    }
    set.add(blockId);
    this.#replicas++;
    return true;
  }

  remove(blockId: number, workerId: string): boolean {
    const list = this.#blocks.get(blockId);
    if (list === undefined) return false;
    const i = list.findIndex((x) => x.workerId === workerId);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.#blocks.delete(blockId);
    this.#byWorker.get(workerId)?.delete(blockId);
    this.#replicas--;
    return true;
  }

  /** Forgets every copy a worker held; returns those blocks. */
  removeWorker(workerId: string): number[] {
    const set = this.#byWorker.get(workerId);
    if (set === undefined) return [];
    const ids = [...set];
    for (const id of ids) this.remove(id, workerId);
    this.#byWorker.delete(workerId);
    return ids;
  }

  replicas(blockId: number): readonly Replica[] {
    return this.#blocks.get(blockId) ?? [];
  }

  has(blockId: number, workerId: string): boolean {
    return this.#byWorker.get(workerId)?.has(blockId) === true;
  }

  blocksOf(workerId: string): ReadonlySet<number> {
    return this.#byWorker.get(workerId) ?? EMPTY;
  }

  /** Blocks with at least one known copy. */
  get size(): number {
    return this.#blocks.size;
  }

  /** Copies known, all blocks together. */
  get replicaCount(): number {
    return this.#replicas;
  }
}

const EMPTY: ReadonlySet<number> = new Set();
