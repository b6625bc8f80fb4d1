/**
 * Keeps every tier between its watermarks and promotes hot blocks.
 *
 * Each pass (every `eviction_interval`, and at once when a write waits for space) walks the
 * tiers fastest first. A tier above its `high` mark sheds least-recently-used blocks until it is
 * back at `low`: each moves to the nearest slower tier that stays under its own `high` mark, else
 * to the nearest one with room at all. A block that cannot move down (bottom tier, or every
 * slower tier full) may only be dropped when another copy exists — in the UFS or on another
 * worker — which only the master knows: the worker asks (the candidates ride on the next
 * heartbeat) and the master answers with a `delete` command for the blocks that may go. A block
 * whose only copy is here is therefore never dropped. Pinned blocks never move down.
 *
 * A block read `promote_after_reads` times while in a slower tier moves to the top tier when the
 * top tier has room under its `high` mark.
 */
import type { Logger } from '../common/logging.js';
import type { BlockInfo, BlockStore } from './block-store.js';
import type { Tier, TierSet } from './tiers.js';

/** A block asked about is asked again only after this long (the master said no, or was away). */
export const DROP_REQUEST_RETRY_MS = 30_000;
/** Most drop candidates asked about at once. */
export const MAX_DROP_REQUEST = 1000;
/** Candidates gathered per tier and pass beyond the bytes strictly needed (blocks may vanish meanwhile). */
const CANDIDATE_SLACK = 1.25;

export interface EvictorOptions {
  store: BlockStore;
  tiers: TierSet;
  intervalMs: number;
  /** 0 disables promotion. */
  promoteAfterReads: number;
  log: Logger;
  /**
   * Asks whether these blocks may be dropped (another copy exists). The answer comes back as
   * deletions; nothing happens for the blocks that must stay.
   */
  requestDrop: (blockIds: number[]) => void;
  dropRetryMs?: number;
}

export interface PassResult {
  demoted: number;
  promoted: number;
  dropRequested: number;
}

export class Evictor {
  readonly #o: EvictorOptions;
  readonly #promote = new Set<number>();
  readonly #requested = new Map<number, number>();
  /** Bytes writes are waiting for, per tier: freed even when the tier is under its high mark. */
  readonly #demand = new Map<Tier, number>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PassResult> | undefined;
  #again = false;
  #kicked = false;
  #stopped = false;

  constructor(opts: EvictorOptions) {
    this.#o = opts;
  }

  start(): void {
    this.#timer = setInterval(() => this.kick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  /** Runs a pass soon (coalesced). */
  kick(): void {
    if (this.#stopped || this.#kicked) return;
    this.#kicked = true;
    setImmediate(() => {
      this.#kicked = false;
      this.runOnce().catch((err: unknown) => this.#o.log.error({ err }, 'eviction pass failed'));
    });
  }

  /** A write waits for `bytes` on `tier`: make room there now. */
  needSpace(tier: Tier, bytes: number): void {
    this.#demand.set(tier, Math.max(this.#demand.get(tier) ?? 0, bytes));
    this.kick();
  }

  /** A block that qualified for promotion (see BlockStore.recordRead). */
  notePromotionCandidate(blockId: number): void {
    if (this.#o.promoteAfterReads <= 0) return;
    this.#promote.add(blockId);
    this.kick();
  }

  /** Whether a deletion of this block answers one of our drop requests (metrics: eviction). */
  wasDropRequested(blockId: number): boolean {
    return this.#requested.has(blockId);
  }

  forget(blockId: number): void {
    this.#requested.delete(blockId);
    this.#promote.delete(blockId);
  }

  /** One pass; concurrent callers share it and a request during a pass runs another after it. */
  async runOnce(): Promise<PassResult> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      const total: PassResult = { demoted: 0, promoted: 0, dropRequested: 0 };
      do {
        this.#again = false;
        const r = await this.#pass();
        total.demoted += r.demoted;
        total.promoted += r.promoted;
        total.dropRequested += r.dropRequested;
      } while (this.#again && !this.#stopped);
      return total;
    })();
    try {
      return await this.#running;
    } finally {
      this.#running = undefined;
    }
  }

  async #pass(): Promise<PassResult> {
    const { tiers, store } = this.#o;
    const result: PassResult = { demoted: 0, promoted: 0, dropRequested: 0 };
    for (const d of tiers.allDirs()) d.refreshFs(true);
    const toAsk: number[] = [];
    const demand = new Map(this.#demand);
    this.#demand.clear();
    for (const tier of tiers.tiers) {
      if (this.#stopped) return result;
      const wanted = demand.get(tier) ?? 0;
      const need = Math.max(tier.bytesOverHigh(), wanted > 0 ? wanted - tier.availableBytes : 0);
      if (need <= 0) continue;
      let freed = 0;
      for (const c of this.#candidates(tier, need)) {
        if (freed >= need || this.#stopped) break;
        const now = store.info(c.blockId);
        if (now === undefined || now.tierLevel !== tier.level) continue;
        if (await this.#demote(c, tier)) {
          result.demoted++;
          freed += c.fileBytes;
          continue;
        }
        // Nowhere to move it: it can only go if another copy exists.
        freed += c.fileBytes;
        // Asked recently and refused: ask again only when a write is waiting for the space.
        const asked = this.#requested.get(c.blockId);
        const stale =
          asked === undefined || Date.now() - asked >= (this.#o.dropRetryMs ?? DROP_REQUEST_RETRY_MS);
        if (stale || wanted > 0) {
          toAsk.push(c.blockId);
        }
      }
    }
    if (toAsk.length > 0) {
      const batch = toAsk.slice(0, MAX_DROP_REQUEST);
      const now = Date.now();
      for (const id of batch) this.#requested.set(id, now);
      this.#pruneRequested(now);
      result.dropRequested = batch.length;
      this.#o.requestDrop(batch);
    }
    result.promoted = await this.#promotions();
    return result;
  }

  /** LRU blocks of `tier` worth a little more than `need` bytes, snapshotted before moving any. */
  #candidates(tier: Tier, need: number): BlockInfo[] {
    const out: BlockInfo[] = [];
    let bytes = 0;
    for (const c of this.#o.store.evictionCandidates(tier)) {
      out.push(c);
      bytes += c.fileBytes;
      if (bytes >= need * CANDIDATE_SLACK) break;
    }
    return out;
  }

  async #demote(c: BlockInfo, from: Tier): Promise<boolean> {
    const below = this.#o.tiers.tiers.slice(from.level + 1);
    const underHigh = below.filter(
      (t) => t.usedBytes + t.pendingBytes + c.fileBytes <= t.capacityBytes * t.highWatermark,
    );
    for (const target of [...underHigh, ...below.filter((t) => !underHigh.includes(t))]) {
      if (await this.#o.store.move(c.blockId, target)) return true;
    }
    return false;
  }

  async #promotions(): Promise<number> {
    let promoted = 0;
    const top = this.#o.tiers.top;
    for (const id of [...this.#promote]) {
      if (this.#stopped) break;
      this.#promote.delete(id);
      const info = this.#o.store.info(id);
      if (info === undefined || info.tierLevel === 0) continue;
      const after = top.usedBytes + top.pendingBytes + info.fileBytes;
      if (after > top.capacityBytes * top.highWatermark) continue;
      if (await this.#o.store.move(id, top)) promoted++;
    }
    return promoted;
  }

  #pruneRequested(now: number): void {
    const ttl = (this.#o.dropRetryMs ?? DROP_REQUEST_RETRY_MS) * 4;
    for (const [id, at] of this.#requested) {
      if (now - at > ttl || !this.#o.store.has(id)) this.#requested.delete(id);
    }
  }
}
