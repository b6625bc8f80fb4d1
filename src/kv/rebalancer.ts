/**
 * Moves keys to the nodes that should hold them when the cluster view changes.
 *
 * On every view change this node scans its keys (in chunks, yielding between them) and, for
 * each, compares the key's alive replica list before and after. Nodes new to the list are sent
 * the key's record; when this node has left the list the record goes to every owner and is then
 * dropped here. Sends are versioned writes, so duplicates and races with fresh writes are
 * harmless: the receiver keeps the newest. A key is only dropped after every target acknowledged
 * and only if it was not rewritten meanwhile, so a handoff never loses a write.
 *
 * The same queue carries hints: a write this node accepted for a key it does not own (its owners
 * were unreachable) or a replica copy that failed. Sends to a peer that is down are abandoned; the
 * view change that brings it back schedules them again from the scan.
 *
 * A joining node pulls instead (`pull`): before it counts as up it asks every up peer for the
 * records it will own, so it never answers a read with a miss for a key the cluster holds.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../common/logging.js';
import type { HandoffSink, KvEngine } from './engine.js';
import { KIND_TOMBSTONE } from './entry.js';
import type { WriteRecord } from './entry.js';
import { PeerUnreachableError } from './errors.js';
import type { Membership, View, ViewChange } from './membership.js';
import type { KvMetrics } from './metrics.js';
import { INTERNAL_PATHS } from './peers.js';
import type { PeerSet } from './peers.js';
import { HashRing } from './ring.js';
import type { LruStore } from './store.js';
import { BATCH_BYTES, RECORDS_PER_BATCH, recordToTuple, tupleToRecord } from './wire.js';
import type { RecordTuple } from './wire.js';

/** Keys examined per scan step before yielding to the event loop. */
const SCAN_CHUNK_KEYS = 2_000;
/** Peers sent to at once by the handoff loop. */
const HANDOFF_CONCURRENCY = 4;
/** Wait before retrying a peer that failed but is not (yet) marked down. */
const RETRY_DELAY_MS = 500;

export interface RebalancerOptions {
  store: LruStore;
  membership: Membership;
  peers: PeerSet;
  engine: KvEngine;
  metrics: KvMetrics;
  log: Logger;
  /** Deadline per pull stream chunk and per handoff batch. */
  timeoutMs: number;
}

export class Rebalancer implements HandoffSink {
  readonly #store: LruStore;
  readonly #m: Membership;
  readonly #peers: PeerSet;
  readonly #engine: KvEngine;
  readonly #metrics: KvMetrics;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  /**
   * key → node ids still to receive it ("*" = its current owners). Arrays, not Sets: a handoff
   * after a node leaves can queue every key of a node, and most keys have one target.
   */
  readonly #queue = new Map<string, string[]>();
  /** The view before the oldest change whose scan has not finished. */
  #scanBase: View | undefined;
  #scanGeneration = 0;
  #scanning: Promise<void> | undefined;
  #pumping = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #idleWaiters: (() => void)[] = [];

  constructor(opts: RebalancerOptions) {
    this.#store = opts.store;
    this.#m = opts.membership;
    this.#peers = opts.peers;
    this.#engine = opts.engine;
    this.#metrics = opts.metrics;
    this.#log = opts.log;
    this.#timeoutMs = opts.timeoutMs;
  }

  /** Keys waiting to be handed off. */
  get pending(): number {
    return this.#queue.size;
  }

  /** True while a scan or a handoff is in progress. */
  get busy(): boolean {
    return this.#scanning !== undefined || this.#queue.size > 0;
  }

  enqueue(key: string, targets?: readonly string[]): void {
    if (this.#stopped) return;
    let list = this.#queue.get(key);
    if (list === undefined) {
      list = [];
      this.#queue.set(key, list);
    }
    for (const t of targets ?? ['*']) if (t !== this.#m.selfId && !list.includes(t)) list.push(t);
    this.#kick();
  }

  /** Starts (or restarts) the scan for a view change. */
  onViewChange(change: ViewChange): void {
    if (this.#stopped) return;
    this.#metrics.viewChange();
    this.#scanBase ??= change.before;
    const base = this.#scanBase;
    const generation = ++this.#scanGeneration;
    const run = this.#scan(base, generation).then(
      () => {
        if (generation === this.#scanGeneration) {
          this.#scanBase = undefined;
          this.#scanning = undefined;
          this.#notifyIfIdle();
        }
      },
      (err: unknown) => {
        this.#log.error({ err }, 'rebalance scan failed');
        if (generation === this.#scanGeneration) this.#scanning = undefined;
      },
    );
    this.#scanning = run;
  }

  async #scan(base: View, generation: number): Promise<void> {
    const { keys, tombstoneKeys } = this.#store.keySnapshot();
    const all = keys.concat(tombstoneKeys);
    const R = this.#m.replicas;
    const selfId = this.#m.selfId;
    let queued = 0;
    for (let start = 0; start < all.length; start += SCAN_CHUNK_KEYS) {
      if (start > 0) await yieldToLoop();
      if (generation !== this.#scanGeneration || this.#stopped) return;
      const after = this.#m.view;
      const end = Math.min(all.length, start + SCAN_CHUNK_KEYS);
      for (let i = start; i < end; i++) {
        const key = all[i] as string;
        const hash = HashRing.hashKey(key);
        const was = idsOf(base, hash, R);
        const now = idsOf(after, hash, R);
        if (!now.includes(selfId)) {
          // Leaving this key's list: every owner gets it, then it is dropped here.
          this.enqueue(key, now);
          queued++;
          continue;
        }
        const fresh = now.filter((id) => id !== selfId && !was.includes(id));
        if (fresh.length > 0) {
          this.enqueue(key, fresh);
          queued++;
        }
      }
    }
    this.#log.info({ keys: all.length, queued }, 'rebalance scan done');
  }

  #kick(): void {
    if (this.#pumping || this.#stopped) return;
    this.#pumping = true;
    setImmediate(() => {
      this.#pump()
        .then(
          () => undefined,
          (err: unknown) => this.#log.error({ err }, 'handoff loop failed'),
        )
        .finally(() => {
          this.#pumping = false;
          this.#notifyIfIdle();
        });
    });
  }

  async #pump(): Promise<void> {
    while (this.#queue.size > 0 && !this.#stopped) {
      const batches = this.#collect();
      if (batches.size === 0) {
        // Everything left waits for a failing peer: retry later.
        this.#scheduleRetry();
        return;
      }
      const jobs = [...batches];
      for (let i = 0; i < jobs.length; i += HANDOFF_CONCURRENCY) {
        await Promise.all(jobs.slice(i, i + HANDOFF_CONCURRENCY).map(([target, b]) => this.#send(target, b)));
      }
    }
  }

  /** Groups queued keys into one batch per target, resolving "*" to the key's owners. */
  #collect(): Map<string, { keys: string[]; records: WriteRecord[]; bytes: number }> {
    const out = new Map<string, { keys: string[]; records: WriteRecord[]; bytes: number }>();
    const now = Date.now();
    for (const [key, queued] of this.#queue) {
      const record = this.#store.recordFor(key);
      if (record === undefined) {
        this.#queue.delete(key);
        continue;
      }
      let targets = queued;
      if (targets.includes('*')) {
        targets = targets.filter((t) => t !== '*');
        for (const id of this.#engine.liveOwners(key))
          if (id !== this.#m.selfId && !targets.includes(id)) targets.push(id);
      }
      // Down (or leaving) peers get the key from the scan of the view change that revives them.
      const reachable = targets.filter((t) => this.#m.isAlive(t));
      if (reachable.length < targets.length) {
        const owners = this.#engine.liveOwners(key);
        if (!owners.includes(this.#m.selfId)) {
          // Not ours to keep: it goes to whoever owns it now (the down node's stand-ins).
          for (const id of owners) if (!reachable.includes(id)) reachable.push(id);
        }
        if (reachable.length === 0) {
          // No alive owner: keep this copy, unqueued, until a view change finds one.
          this.#queue.delete(key);
          continue;
        }
      }
      targets = reachable;
      this.#queue.set(key, targets);
      for (const target of targets) {
        if ((this.#backoff.get(target) ?? 0) > now) continue;
        let b = out.get(target);
        if (b === undefined) {
          b = { keys: [], records: [], bytes: 0 };
          out.set(target, b);
        }
        if (b.records.length >= RECORDS_PER_BATCH || b.bytes >= BATCH_BYTES) continue;
        b.keys.push(key);
        b.records.push(record);
        b.bytes += record.value.length + key.length;
      }
      // Nothing to send (this node is the only owner, or no owner is alive): keep it, unqueued.
      if (targets.length === 0) this.#queue.delete(key);
      // Stop once every batch is full; later keys go in the next round.
      let full = out.size > 0;
      for (const b of out.values())
        if (b.records.length < RECORDS_PER_BATCH && b.bytes < BATCH_BYTES) full = false;
      if (full) break;
    }
    return out;
  }

  readonly #backoff = new Map<string, number>();

  async #send(target: string, batch: { keys: string[]; records: WriteRecord[] }): Promise<void> {
    const client = this.#peers.client(target);
    if (client === undefined) {
      this.#backoff.set(target, Date.now() + RETRY_DELAY_MS);
      return;
    }
    try {
      await client.call(
        INTERNAL_PATHS.replicate,
        { from: this.#m.selfId, records: batch.records.map(recordToTuple) },
        this.#timeoutMs,
      );
    } catch (err) {
      const message = (err as Error).message;
      if (!(err instanceof PeerUnreachableError)) {
        // The peer answered and refused (a bug or a limit mismatch): retrying will not help.
        // The keys stay here, unqueued; the next view change looks at them again.
        for (const key of batch.keys) this.#queue.delete(key);
        this.#log.error(
          { peer: target, keys: batch.keys.length, err: message },
          'handoff refused by peer; keys kept here',
        );
        return;
      }
      this.#m.recordFailure(target, message, err.refused);
      this.#log.warn(
        { peer: target, keys: batch.keys.length, err: message },
        'handoff batch failed; will retry',
      );
      this.#backoff.set(target, Date.now() + RETRY_DELAY_MS);
      return;
    }
    this.#backoff.delete(target);
    this.#metrics.migration('sent', batch.records.length);
    batch.keys.forEach((key, i) => {
      const targets = this.#queue.get(key);
      if (targets === undefined) return;
      const sent = (batch.records[i] as WriteRecord).version;
      // Rewritten while in flight: the target still needs the newer version.
      if (this.#store.recordFor(key)?.version !== sent) return;
      const left = targets.filter((t) => t !== target);
      this.#queue.set(key, left);
      if (left.length === 0) this.#finish(key, sent);
    });
  }

  /**
   * Every target acknowledged the key: drop it here if this node no longer owns it and it is
   * unchanged. Only called after delivery, so a copy is never dropped without being handed over.
   */
  #finish(key: string, sentVersion: number): void {
    this.#queue.delete(key);
    // Never drop while joining (not yet counted alive) or for a key this node still owns.
    if (this.#m.selfState === 'joining' || this.#engine.liveOwners(key).includes(this.#m.selfId)) return;
    const current = this.#store.recordFor(key);
    if (current === undefined) return;
    if (current.version !== sentVersion) {
      // Rewritten while in flight: hand the newer version over too.
      this.enqueue(key);
      return;
    }
    if (current.kind === KIND_TOMBSTONE) this.#store.dropTombstone(key);
    else this.#store.drop(key);
    this.#metrics.migration('dropped', 1);
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#stopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#kick();
    }, RETRY_DELAY_MS);
    this.#retryTimer.unref();
  }

  /**
   * Pulls from every up peer the records this node will own, so it starts complete. Returns the
   * number of records applied; unreachable peers are skipped (their keys have other replicas, or
   * come later by their own handoff).
   */
  async pull(): Promise<number> {
    let total = 0;
    await Promise.all(
      this.#m.peers().map(async (n) => {
        if (n.state !== 'up') return;
        const client = this.#peers.client(n.id);
        if (client === undefined) return;
        let received = 0;
        let applied = 0;
        try {
          await client.stream(
            INTERNAL_PATHS.pull,
            { target: this.#m.selfId },
            (frame) => {
              const records = (Array.isArray(frame) ? frame : []).map(tupleToRecord);
              received += records.length;
              // Copies of one key from several peers: only the newest is applied.
              applied += this.#engine.applyReplicated(records);
            },
            this.#timeoutMs,
          );
          this.#log.info({ peer: n.id, received, applied }, 'pulled keys from peer');
        } catch (err) {
          this.#log.warn(
            { peer: n.id, err: (err as Error).message, received, applied },
            'pull from peer failed',
          );
        }
        total += applied;
      }),
    );
    this.#metrics.migration('received', total);
    return total;
  }

  /**
   * Serves a peer's pull: the records (entries and tombstones) `target` will own once it is up,
   * in frames of at most RECORDS_PER_BATCH records. `write` resolves when the frame is sent.
   */
  async servePull(target: string, write: (tuples: RecordTuple[]) => Promise<void>): Promise<number> {
    const { ring } = this.#m.view;
    const idx = ring.indexOf(target);
    if (idx === undefined) return 0;
    const alive = this.#m.aliveWith(target);
    return this.#streamRecords(
      (hash) => ring.preference(hash, this.#m.replicas, alive).includes(idx),
      true,
      write,
    );
  }

  /**
   * Serves an export: this node's live entries, all of them (`scope` "node") or only those it is
   * the primary for (`scope` "primary", so a cluster export lists each key once).
   */
  async serveDump(
    scope: 'node' | 'primary',
    write: (tuples: RecordTuple[]) => Promise<void>,
  ): Promise<number> {
    const { ring, alive } = this.#m.view;
    const self = this.#m.selfIndex;
    const want = scope === 'node' ? () => true : (hash: number) => ring.primary(hash, alive) === self;
    return this.#streamRecords(want, false, write);
  }

  /** Streams the records selected by `want(hash)`; used by pull and by export. */
  async #streamRecords(
    want: (hash: number) => boolean,
    withTombstones: boolean,
    write: (tuples: RecordTuple[]) => Promise<void>,
  ): Promise<number> {
    const { keys, tombstoneKeys } = this.#store.keySnapshot();
    const all = withTombstones ? keys.concat(tombstoneKeys) : keys;
    const now = Date.now();
    let batch: RecordTuple[] = [];
    let bytes = 0;
    let sent = 0;
    for (let i = 0; i < all.length; i++) {
      const key = all[i] as string;
      if (!want(HashRing.hashKey(key))) continue;
      const rec = this.#store.recordFor(key);
      if (rec === undefined) continue;
      if (
        !withTombstones &&
        (rec.kind === KIND_TOMBSTONE || (rec.expiresAtMs !== 0 && rec.expiresAtMs <= now))
      )
        continue;
      batch.push(recordToTuple(rec));
      bytes += rec.value.length + key.length;
      if (batch.length >= RECORDS_PER_BATCH || bytes >= BATCH_BYTES) {
        await write(batch);
        sent += batch.length;
        batch = [];
        bytes = 0;
      }
    }
    if (batch.length > 0) {
      await write(batch);
      sent += batch.length;
    }
    return sent;
  }

  /** Resolves when no scan runs and the queue is empty, or at the deadline (false). */
  async idle(timeoutMs: number): Promise<boolean> {
    if (!this.busy && !this.#pumping) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  #notifyIfIdle(): void {
    if (this.busy || this.#pumping) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}

function idsOf(view: View, hash: number, count: number): string[] {
  return view.ring.preference(hash, count, view.alive).map((i) => view.ring.nodeIds[i] as string);
}
