/**
 * Block changes not yet told to the master: what each heartbeat carries as added, removed and
 * corrupt. The last change of a block wins (added then removed = removed). A heartbeat that
 * fails gives its changes back, under any newer ones, so nothing is lost or reordered.
 */
import type { StorageType } from '../common/config/index.js';
import type { BlockEvent } from './block-store.js';

export interface AddedBlock {
  blockId: number;
  length: number;
  storageType: StorageType;
}

export interface DeltaBatch {
  added: AddedBlock[];
  removed: number[];
  corrupt: number[];
}

type Change = { kind: 'added'; block: AddedBlock } | { kind: 'removed' } | { kind: 'corrupt' };

export class BlockDelta {
  #changes = new Map<number, Change>();

  get size(): number {
    return this.#changes.size;
  }

  /** Feeds a store event in (subscribe with `store.on(e => delta.record(e))`). */
  record(e: BlockEvent): void {
    switch (e.kind) {
      case 'added':
        this.#changes.set(e.blockId, {
          kind: 'added',
          block: { blockId: e.blockId, length: e.lengthBytes, storageType: e.storageType },
        });
        break;
      case 'removed':
        // A replaced block is re-added by the same publish: its removal is not news.
        if (e.reason !== 'replaced') this.#changes.set(e.blockId, { kind: 'removed' });
        break;
      case 'corrupt':
        this.#changes.set(e.blockId, { kind: 'corrupt' });
        break;
      case 'moved':
        break;
    }
  }

  /** A block the master thinks is here and is not (e.g. a delete of a block already gone). */
  markRemoved(blockId: number): void {
    this.#changes.set(blockId, { kind: 'removed' });
  }

  markCorrupt(blockId: number): void {
    this.#changes.set(blockId, { kind: 'corrupt' });
  }

  /** Takes at most `max` changes of each kind out of the delta. */
  take(max: number): DeltaBatch {
    const batch: DeltaBatch = { added: [], removed: [], corrupt: [] };
    for (const [id, c] of this.#changes) {
      const list = c.kind === 'added' ? batch.added : c.kind === 'removed' ? batch.removed : batch.corrupt;
      if (list.length >= max) continue;
      if (c.kind === 'added') batch.added.push(c.block);
      else (c.kind === 'removed' ? batch.removed : batch.corrupt).push(id);
      this.#changes.delete(id);
    }
    return batch;
  }

  /** Gives back a batch that could not be delivered; changes recorded since take() win. */
  restore(batch: DeltaBatch): void {
    const older = new Map<number, Change>();
    for (const b of batch.added) older.set(b.blockId, { kind: 'added', block: b });
    for (const id of batch.removed) older.set(id, { kind: 'removed' });
    for (const id of batch.corrupt) older.set(id, { kind: 'corrupt' });
    for (const [id, c] of this.#changes) older.set(id, c);
    this.#changes = older;
  }

  /**
   * Starts over before a full block report: the report states everything, so pending adds and
   * removes are moot. Corrupt reports stay (they tell the master to re-replicate).
   */
  resetForFullReport(): void {
    for (const [id, c] of this.#changes) if (c.kind !== 'corrupt') this.#changes.delete(id);
  }
}
