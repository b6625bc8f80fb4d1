/**
 * The workers a leader knew, kept in the MetaStore (tag 0x24, one key per worker id) so that the
 * next leader knows whom to wait for. Its re-registration window (worker-window.ts) then stays
 * open past its usual length while a worker the previous leader knew has not yet sent its full
 * block report — on a slow or loaded machine that can take longer than a few heartbeats, and
 * answering "no copy of this block is known" meanwhile would be wrong — but never longer than
 * `worker_lost_interval`, after which such a worker would count as lost anyway.
 *
 * The leader writes the set from its worker registry every heartbeat interval (only changes):
 * registered workers are added, lost ones removed. Block locations stay soft state.
 */
import type { Logger } from '../../common/logging.js';
import type { MetaStore } from '../../meta/index.js';
import type { WorkerRegistry } from '../workers/registry.js';

export const TAG_KNOWN_WORKER = 0x24;

function key(workerId: string): Buffer {
  return Buffer.concat([Buffer.of(TAG_KNOWN_WORKER), Buffer.from(workerId, 'utf8')]);
}

/** Ids of the workers the previous leaders knew. */
export async function loadKnownWorkers(store: MetaStore): Promise<Set<string>> {
  const rows = await store.scan({ prefix: Buffer.of(TAG_KNOWN_WORKER) });
  return new Set(rows.map((r) => Buffer.from(r.key).subarray(1).toString('utf8')));
}

/** Keeps the stored set in step with a term's worker registry. */
export class KnownWorkersRecorder {
  readonly #store: MetaStore;
  readonly #registry: WorkerRegistry;
  readonly #log: Logger;
  readonly #lostIntervalMs: number;
  readonly #clock: () => number;
  readonly #startedAtMs: number;
  #stored: Set<string>;
  #busy = false;

  constructor(opts: {
    store: MetaStore;
    registry: WorkerRegistry;
    /** What `loadKnownWorkers` found at the start of the term. */
    stored: Set<string>;
    lostIntervalMs: number;
    log: Logger;
    clock?: () => number;
  }) {
    this.#store = opts.store;
    this.#registry = opts.registry;
    this.#stored = new Set(opts.stored);
    this.#lostIntervalMs = opts.lostIntervalMs;
    this.#log = opts.log;
    this.#clock = opts.clock ?? Date.now;
    this.#startedAtMs = this.#clock();
  }

  /** Writes what changed since the last sync (one transaction); failures are retried next time. */
  async sync(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const now = new Set<string>();
      for (const w of this.#registry.all()) if (w.state !== 'lost') now.add(w.id);
      // A worker the previous leader knew but this one has not seen stays recorded for one lost
      // interval of this term (it may still be on its way back), then counts as lost.
      const unseenLost = this.#clock() - this.#startedAtMs >= this.#lostIntervalMs;
      const added = [...now].filter((id) => !this.#stored.has(id));
      const removed = [...this.#stored].filter((id) => {
        if (now.has(id)) return false;
        const w = this.#registry.get(id);
        return w === undefined ? unseenLost : w.state === 'lost';
      });
      if (added.length === 0 && removed.length === 0) return;
      await this.#store.transaction((tx) => {
        for (const id of added) tx.put(key(id), Buffer.alloc(0));
        for (const id of removed) tx.delete(key(id));
      });
      for (const id of added) this.#stored.add(id);
      for (const id of removed) this.#stored.delete(id);
    } catch (err) {
      this.#log.warn({ err }, 'could not record the known workers');
    } finally {
      this.#busy = false;
    }
  }
}
