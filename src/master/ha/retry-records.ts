/**
 * The durable half of exactly-once retries: each mutating request's outcome is written into the
 * MetaStore in the same transaction as the mutation itself, under the request's key
 * (`<call code>:<request id>`), with an expiry.
 *
 * Why inside the transaction: a record written after the commit could be lost with the leader
 * that made the commit (a kill between the two), and the retry on the next leader would run the
 * mutation again — a second create, or EEXIST for the client's own create. In the same
 * transaction, the mutation and its record exist together or not at all.
 *
 * How a retry finds it, without costing the first attempt a read: the commit is conditioned on
 * "no record for this request yet". A retry whose first attempt committed either fails inside
 * the namespace (the file exists now: EEXIST; the lease is gone: EBADF…) or reaches its commit,
 * which fails that condition; either way the namespace then reads the record and returns the
 * first attempt's outcome (Namespace #mutate → `replay`). So the cost is two small extra writes
 * per mutation, and one read only on the failure path.
 *
 * The in-memory RetryCache (src/rpc/retry-cache.ts) stays in front: it coalesces a retry with an
 * attempt still running and replays recent outcomes (including errors) without a store read.
 *
 * Keys (namespace key layout, keys.ts): 0x09 <request key> → msgpack { v: outcome, e: expiry ms };
 * 0x0a <expiry u64> <request key> → empty, the index the sweeper walks.
 */
import { pack, unpack } from 'msgpackr';
import type { Logger } from '../../common/logging.js';
import { readU64, writeU64 } from '../../meta/index.js';
import type { MetaStore, MetaTxn } from '../../meta/index.js';
import { TAG_RETRY, TAG_RETRY_EXPIRY } from '../namespace/keys.js';
import type { MutationRecorder, RecordSlot, RequestScope } from '../namespace/recorder.js';

/** Records deleted per sweep transaction (two keys each: fits one etcd request). */
export const RETRY_SWEEP_BATCH = 50;
/** Sweep passes stop after this many batches (the next pass continues). */
export const RETRY_SWEEP_MAX_BATCHES = 200;

interface Slot extends RecordSlot {
  readonly expiresAtMs: number;
  readonly requestKey: Buffer;
}

export interface RetryRecordsOptions {
  store: MetaStore;
  ttlMs: number;
  log: Logger;
  clock?: () => number;
}

export class RetryRecords implements MutationRecorder {
  readonly #store: MetaStore;
  readonly #ttlMs: number;
  readonly #clock: () => number;
  readonly #log: Logger;
  #replayed = 0;
  #recorded = 0;

  constructor(opts: RetryRecordsOptions) {
    this.#store = opts.store;
    this.#ttlMs = opts.ttlMs;
    this.#clock = opts.clock ?? Date.now;
    this.#log = opts.log;
  }

  get stats(): { recorded: number; replayed: number } {
    return { recorded: this.#recorded, replayed: this.#replayed };
  }

  begin(s: RequestScope): Slot | undefined {
    // One recorded mutation per request (the one its handler makes for it); later ones of the
    // same request, if a call ever made several, run unrecorded.
    if (s.used) return undefined;
    s.used = true;
    const requestKey = Buffer.from(s.key, 'utf8');
    return {
      key: Buffer.concat([Buffer.of(TAG_RETRY), requestKey]),
      requestKey,
      expiresAtMs: this.#clock() + this.#ttlMs,
    };
  }

  record(tx: MetaTxn, slot: RecordSlot, value: unknown): void {
    const s = slot as Slot;
    tx.compare({ key: s.key, value: undefined });
    tx.put(s.key, pack({ v: value, e: s.expiresAtMs }));
    tx.put(expiryKey(s.expiresAtMs, s.requestKey), EMPTY);
    this.#recorded++;
  }

  async replay(slot: RecordSlot): Promise<{ value: unknown } | undefined> {
    const raw = await this.#store.get(slot.key);
    if (raw === undefined) return undefined;
    const rec = unpack(raw) as { v?: unknown; e?: number };
    this.#replayed++;
    this.#log.info(
      { request: Buffer.from(slot.key.subarray(1)).toString('utf8') },
      'retried request: replaying the outcome its first attempt committed',
    );
    return { value: rec.v };
  }

  /** Deletes records whose expiry passed; returns how many. */
  async sweep(): Promise<number> {
    let removed = 0;
    const end = expiryKey(this.#clock() + 1, Buffer.alloc(0));
    for (let batch = 0; batch < RETRY_SWEEP_MAX_BATCHES; batch++) {
      const n = await this.#store.transaction((tx) => {
        const rows = tx.scan({ prefix: EXPIRY_PREFIX, end, limit: RETRY_SWEEP_BATCH });
        for (const r of rows) {
          tx.delete(r.key);
          tx.delete(Buffer.concat([Buffer.of(TAG_RETRY), r.key.subarray(9)]));
        }
        return rows.length;
      });
      removed += n;
      if (n < RETRY_SWEEP_BATCH) break;
    }
    if (removed > 0) this.#log.debug({ removed }, 'expired request outcomes removed');
    return removed;
  }
}

const EMPTY = new Uint8Array(0);
const EXPIRY_PREFIX = Buffer.of(TAG_RETRY_EXPIRY);

function expiryKey(expiresAtMs: number, requestKey: Buffer): Buffer {
  const k = Buffer.allocUnsafe(9 + requestKey.length);
  k[0] = TAG_RETRY_EXPIRY;
  writeU64(k, 1, Math.max(0, Math.floor(expiresAtMs)));
  requestKey.copy(k, 9);
  return k;
}

/** The expiry of an index key (for tests and tools). */
export function expiryOf(indexKey: Uint8Array): number {
  return readU64(indexKey, 1);
}
