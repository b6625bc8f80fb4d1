/**
 * Key operations with cluster routing, shared by the HTTP API, the RESP listener and the
 * internal API. Any node accepts any key:
 *
 * - A write goes to the key's primary (the first alive node of its preference list), which
 *   versions it, applies it and copies it to the other alive replicas before answering. So
 *   conditional writes (NX/XX) and INCR are decided in one place, and an acknowledged write is
 *   on every alive replica.
 * - A read is served by this node when it is one of the key's alive replicas, else by the primary.
 * - When a node cannot be reached the next node of the list takes over; when none can, this node
 *   serves the request itself and hands the key to its owners later (a hinted handoff).
 *
 * `execute` returns a plain result when the work is local and needs no replication (the common
 * case with replicas = 1), so the RESP pipeline avoids a promise per command.
 */
import type { Logger } from '../common/logging.js';
import { KIND_STRING, KIND_TOMBSTONE } from './entry.js';
import type { WriteRecord } from './entry.js';
import { KvError, PeerUnreachableError } from './errors.js';
import type { HybridClock } from './hlc.js';
import type { Membership } from './membership.js';
import type { KvMetrics } from './metrics.js';
import type { PeerSet } from './peers.js';
import { HashRing } from './ring.js';
import type { LruStore } from './store.js';
import type { KvOp, OpResult, StoredValue } from './wire.js';

const EMPTY = Buffer.alloc(0);
/** Shared result of a stored SET (results are read, never mutated). */
const SET_OK: OpResult = Object.freeze({ ok: true });
const INTEGER_RE = /^-?\d{1,16}$/;
/** Nodes past the replica list asked on a miss during the settle window. */
const SETTLE_EXTRA_CANDIDATES = 2;

/** Where keys that this node holds but does not own go to be handed to their owners. */
export interface HandoffSink {
  /** Schedules sending `key`'s record to `targets` (node ids); with none, to its current owners. */
  enqueue(key: string, targets?: readonly string[]): void;
}

export interface EngineOptions {
  store: LruStore;
  membership: Membership;
  clock: HybridClock;
  peers: PeerSet;
  metrics: KvMetrics;
  log: Logger;
  settleWindowMs: number;
  now?: () => number;
}

export type MaybePromise<T> = T | Promise<T>;

export class KvEngine {
  readonly #store: LruStore;
  readonly #m: Membership;
  readonly #clock: HybridClock;
  readonly #peers: PeerSet;
  readonly #metrics: KvMetrics;
  readonly #log: Logger;
  readonly #settleWindowMs: number;
  readonly #now: () => number;
  readonly #scratch: number[] = [];
  #handoff: HandoffSink = { enqueue: () => undefined };

  constructor(opts: EngineOptions) {
    this.#store = opts.store;
    this.#m = opts.membership;
    this.#clock = opts.clock;
    this.#peers = opts.peers;
    this.#metrics = opts.metrics;
    this.#log = opts.log;
    this.#settleWindowMs = opts.settleWindowMs;
    this.#now = opts.now ?? Date.now;
  }

  setHandoff(sink: HandoffSink): void {
    this.#handoff = sink;
  }

  get store(): LruStore {
    return this.#store;
  }

  /** Alive owners of a key by node id, primary first. */
  liveOwners(key: string, hash = HashRing.hashKey(key)): string[] {
    const { ring, alive } = this.#m.view;
    return ring.preference(hash, this.#m.replicas, alive).map((i) => ring.nodeIds[i] as string);
  }

  /** Owners of a key when every node is alive (its home nodes). */
  homeOwners(key: string, hash = HashRing.hashKey(key)): string[] {
    const ring = this.#m.ring;
    return ring.preference(hash, this.#m.replicas).map((i) => ring.nodeIds[i] as string);
  }

  /** Runs an operation from a client, routing it to the node that should execute it. */
  execute(op: KvOp, hash = HashRing.hashKey(op.key)): MaybePromise<OpResult> {
    const { ring, alive } = this.#m.view;
    const self = this.#m.selfIndex;
    const isRead = op.op === 'get' || op.op === 'exists' || op.op === 'ttl' || op.op === 'peek';
    if (this.#m.replicas === 1) {
      const p = ring.primary(hash, alive);
      if (p === self) return this.executeLocal(op, hash, true);
      if (p < 0) return this.executeLocal(op, hash);
      return this.#forward(op, hash, [ring.nodeIds[p] as string]);
    }
    const pref = ring.preference(hash, this.#m.replicas, alive, this.#scratch);
    if (pref.length === 0 || (isRead ? pref.includes(self) : pref[0] === self))
      return this.executeLocal(op, hash);
    return this.#forward(
      op,
      hash,
      pref.map((i) => ring.nodeIds[i] as string),
    );
  }

  async #forward(op: KvOp, hash: number, candidates: readonly string[]): Promise<OpResult> {
    for (const id of candidates) {
      if (id === this.#m.selfId) return this.executeLocal(op, hash);
      try {
        const r = await this.#peers.op(id, op);
        this.#metrics.forward('ok');
        return r;
      } catch (err) {
        if (!(err instanceof PeerUnreachableError)) {
          this.#metrics.forward('error');
          throw err;
        }
        this.#metrics.forward('unreachable');
        this.#m.recordFailure(id, err.message, err.refused);
        this.#log.debug(
          { peer: id, err: err.message, key: op.key },
          'forward failed; trying the next replica',
        );
      }
    }
    // No owner answered: serve it here; a write becomes a hint handed to the owners later.
    return this.executeLocal(op, hash);
  }

  /**
   * Executes an operation on this node as the key's coordinator (no forwarding). `soleOwner`:
   * the caller has just established that this node is the key's only alive owner (replicas = 1).
   */
  executeLocal(op: KvOp, hash = HashRing.hashKey(op.key), soleOwner = false): MaybePromise<OpResult> {
    const now = this.#now();
    const store = this.#store;
    switch (op.op) {
      case 'get': {
        const e = store.get(op.key, now);
        if (e !== undefined) {
          this.#metrics.hit();
          return { value: { kind: e.kind, bytes: e.value, expiresAtMs: e.expiresAtMs, version: e.version } };
        }
        if (this.#settling(now)) return this.#getFromOthers(op.key, hash);
        this.#metrics.miss();
        return { value: null };
      }
      case 'peek': {
        const e = store.peek(op.key, now);
        return {
          value:
            e === undefined
              ? null
              : { kind: e.kind, bytes: e.value, expiresAtMs: e.expiresAtMs, version: e.version },
        };
      }
      case 'exists':
        return { ok: store.peek(op.key, now) !== undefined };
      case 'ttl': {
        const e = store.peek(op.key, now);
        return { n: e === undefined ? -2 : e.expiresAtMs === 0 ? -1 : Math.max(0, e.expiresAtMs - now) };
      }
      case 'set': {
        let expiresAtMs = op.expiresAtMs;
        // A plain SET needs no look at the current value.
        if (op.nx || op.xx || op.keepTtl) {
          const cur = store.peek(op.key, now);
          if ((op.nx && cur !== undefined) || (op.xx && cur === undefined)) return { ok: false };
          if (op.keepTtl && cur !== undefined) expiresAtMs = cur.expiresAtMs;
        }
        return this.#commit(
          { key: op.key, kind: op.kind, value: op.value, version: this.#clock.next(), expiresAtMs },
          hash,
          SET_OK,
          soleOwner,
        );
      }
      case 'del': {
        const existed = store.peek(op.key, now) !== undefined;
        // The tombstone is written even when this copy is absent: another replica may hold one.
        return this.#commit(
          { key: op.key, kind: KIND_TOMBSTONE, value: EMPTY, version: this.#clock.next(), expiresAtMs: 0 },
          hash,
          { ok: existed },
        );
      }
      case 'incr': {
        const cur = store.peek(op.key, now);
        let base = 0;
        if (cur !== undefined) {
          const text = cur.value.toString('latin1');
          if (!INTEGER_RE.test(text) || !Number.isSafeInteger(Number(text))) {
            throw new KvError('STRATA_KV_NOT_INTEGER', 'value is not an integer or out of range');
          }
          base = Number(text);
        }
        const n = base + op.by;
        if (!Number.isSafeInteger(n)) {
          throw new KvError('STRATA_KV_NOT_INTEGER', 'increment or decrement would overflow (limit ±2^53-1)');
        }
        return this.#commit(
          {
            key: op.key,
            kind: cur?.kind ?? KIND_STRING,
            value: Buffer.from(String(n), 'latin1'),
            version: this.#clock.next(),
            expiresAtMs: cur?.expiresAtMs ?? 0,
          },
          hash,
          { n },
        );
      }
      case 'expire': {
        const cur = store.peek(op.key, now);
        if (cur === undefined) return { ok: false };
        const version = this.#clock.next();
        const rec: WriteRecord =
          op.expiresAtMs !== 0 && op.expiresAtMs <= now
            ? { key: op.key, kind: KIND_TOMBSTONE, value: EMPTY, version, expiresAtMs: 0 }
            : { key: op.key, kind: cur.kind, value: cur.value, version, expiresAtMs: op.expiresAtMs };
        return this.#commit(rec, hash, { ok: true });
      }
    }
  }

  /**
   * Applies a write here and copies it to the key's other alive replicas. Failed copies are
   * queued for handoff (retried until the replica answers or is marked down).
   */
  #commit(rec: WriteRecord, hash: number, result: OpResult, soleOwner = false): MaybePromise<OpResult> {
    this.#store.apply(rec);
    if (soleOwner) return result;
    const { ring, alive } = this.#m.view;
    const self = this.#m.selfIndex;
    if (this.#m.replicas === 1) {
      if (ring.primary(hash, alive) !== self) this.#handoff.enqueue(rec.key);
      return result;
    }
    const pref = ring.preference(hash, this.#m.replicas, alive, this.#scratch);
    if (!pref.includes(self)) this.#handoff.enqueue(rec.key);
    const targets = pref.filter((i) => i !== self).map((i) => ring.nodeIds[i] as string);
    if (targets.length === 0) return result;
    return Promise.all(
      targets.map((id) =>
        this.#peers.replicate(id, rec).then(
          () => this.#metrics.replication('ok'),
          (err: unknown) => {
            this.#metrics.replication('failed');
            if (err instanceof PeerUnreachableError) this.#m.recordFailure(id, err.message, err.refused);
            this.#log.debug(
              { peer: id, key: rec.key, err: (err as Error).message },
              'replication failed; queued for handoff',
            );
            this.#handoff.enqueue(rec.key, [id]);
          },
        ),
      ),
    ).then(() => result);
  }

  /** Applies writes copied from a peer (replication or handoff); returns how many won. */
  applyReplicated(records: readonly WriteRecord[]): number {
    let applied = 0;
    const { ring } = this.#m.view;
    // A joining node is pulling exactly the keys it will own: judge ownership as if it were up.
    const alive = this.#m.selfState === 'joining' ? this.#m.aliveWith(this.#m.selfId) : this.#m.view.alive;
    const self = this.#m.selfIndex;
    const now = this.#now();
    for (const rec of records) {
      this.#clock.observe(rec.version);
      if (!this.#store.apply(rec, now)) continue;
      applied++;
      // A copy of a key this node does not own (sent by a node with an older view): pass it on.
      const hash = HashRing.hashKey(rec.key);
      const owns =
        this.#m.replicas === 1
          ? ring.primary(hash, alive) === self
          : ring.preference(hash, this.#m.replicas, alive, this.#scratch).includes(self);
      if (!owns) this.#handoff.enqueue(rec.key);
    }
    return applied;
  }

  /**
   * After a membership change a key's new owner may not have received it yet: for a while a
   * miss asks the key's other candidates and keeps the newest copy found.
   */
  #settling(now: number): boolean {
    return this.#m.ring.size > 1 && now - this.#m.lastChangeMs < this.#settleWindowMs;
  }

  async #getFromOthers(key: string, hash: number): Promise<OpResult> {
    const { ring, alive } = this.#m.view;
    // Where a copy may sit: the key's replicas and the next two nodes, where writes land while
    // their owners are (or were believed) down. In a small cluster that is every node.
    const ids = ring
      .preference(hash, this.#m.replicas + SETTLE_EXTRA_CANDIDATES, alive)
      .map((i) => ring.nodeIds[i] as string)
      .filter((id) => id !== this.#m.selfId);
    const found = await Promise.all(
      ids.map((id) =>
        this.#peers.op(id, { op: 'peek', key }).then(
          (r) => r.value ?? null,
          () => null,
        ),
      ),
    );
    let best: StoredValue | null = null;
    for (const v of found) if (v !== null && (best === null || v.version > best.version)) best = v;
    if (best === null) {
      this.#metrics.miss();
      return { value: null };
    }
    this.#metrics.hit();
    // Read repair: keep the copy here too, as the versioned write it is (handed on if not ours).
    this.applyReplicated([
      { key, kind: best.kind, value: best.bytes, version: best.version, expiresAtMs: best.expiresAtMs },
    ]);
    return { value: best };
  }

  /** Deletes every key on every reachable node (FLUSHALL); peers that miss it learn it by health check. */
  async flushAll(): Promise<number> {
    const version = this.#clock.next();
    this.applyFlush(version);
    let reached = 1;
    await Promise.all(
      this.#m.peers().map(async (n) => {
        const c = this.#peers.client(n.id);
        if (c === undefined || n.state === 'down') return;
        try {
          await c.call('/internal/kv/flush', { version });
          reached++;
        } catch (err) {
          this.#log.warn(
            { peer: n.id, err: (err as Error).message },
            'flush not delivered; the peer learns it by health check',
          );
        }
      }),
    );
    return reached;
  }

  /** Empties this node's store as of `version` (writes older than it are refused from now on). */
  applyFlush(version: number): void {
    if (version <= this.#store.floorVersion) return;
    this.#clock.observe(version);
    this.#store.flush(version);
    this.#log.info({ version }, 'store flushed');
  }
}
