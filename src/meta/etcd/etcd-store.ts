/**
 * The MetaStore engine on etcd (v3 API, `etcd3` client): the HA masters' shared store.
 *
 * Transactions are optimistic, like etcd's STM, with two ways of validating what a run read:
 *
 * - Per key (the usual case). The function runs against the engine's entry cache and whatever
 *   it fetched; the commit is one etcd transaction whose compares check that every key read
 *   still has the modRevision it had (0 = still absent) and that no key was created, changed or
 *   deleted in a scanned range since the scan. While this process is the only writer, a
 *   transaction costs one round trip: its commit.
 * - Whole snapshot. When a run read more than fit in one request's compares (etcd allows
 *   `--max-txn-ops`, 128 by default), it runs again against one etcd revision R and commits only
 *   if nothing at all committed since R (every commit writes `x/commit`). Such a transaction
 *   takes the engine's commit gate exclusively (no other local commit is sent meanwhile), so it
 *   cannot be starved by a busy leader.
 *
 * Writes that do not fit one request go through a redo log and an intent record (big-txn.ts):
 * no reader ever sees them half applied.
 *
 * Conflicts between this process's own transactions are ordered locally: a run that read or
 * wrote a key that a commit in flight writes waits for that commit and runs again (with the
 * cache now current) instead of sending a commit that would fail. Transactions resolve in commit
 * order (a reorder buffer holds an answer until no commit sent earlier can still land before it).
 *
 * Fencing: with a fence set (`setFence`), every commit also compares the fence key's
 * create_revision — the HA master's leadership key — so a deposed or partitioned leader cannot
 * commit anything (STRATA_META_FENCED).
 *
 * A commit whose answer is lost (etcd or the path to it failed after the request left) fails
 * with STRATA_META_OUTCOME_UNKNOWN; the master ends its term on it (see docs/ha.md).
 */
import { randomBytes } from 'node:crypto';
import type {
  Etcd3,
  ICompare,
  IKeyValue,
  IRangeRequest,
  IRangeResponse,
  IRequestOp,
  ITxnResponse,
  Lease,
} from 'etcd3';
import type { Logger } from '../../common/logging.js';
import { bytesId, compareBytes, idBytes, inInterval, normaliseScan } from '../bytes.js';
import type { Interval } from '../bytes.js';
import { MetaCompareError, metaClosed, metaConflict, metaLimit } from '../errors.js';
import { CheckedReader, TxnBuffer } from '../txn-buffer.js';
import type {
  MetaCompare,
  MetaEntry,
  MetaKey,
  MetaReader,
  MetaStore,
  MetaStoreStats,
  MetaTxn,
  MetaValue,
  ScanOptions,
} from '../store.js';
import {
  checkChunkCount,
  decodeIntent,
  encodeIntent,
  packRedo,
  readRedo,
  rollForward,
  writeOp,
} from './big-txn.js';
import type { ApplyContext, IntentRecord, RedoWrite } from './big-txn.js';
import { CommitGate, CommitOrder } from './commit-order.js';
import { EntryCache } from './entry-cache.js';
import { etcdFenced, message } from './errors.js';
import { EtcdLayout } from './layout.js';
import {
  ETCD_DEFAULT_CACHE_ENTRIES,
  ETCD_DEFAULT_MAX_REQUEST_BYTES,
  ETCD_DEFAULT_MAX_TXN_OPS,
  ETCD_INTENT_HELP_AFTER_MS,
  ETCD_INTENT_POLL_MAX_MS,
  ETCD_INTENT_POLL_MIN_MS,
  ETCD_MAX_ATTEMPTS,
  ETCD_MIN_TXN_OPS,
  ETCD_OP_OVERHEAD_BYTES,
  ETCD_REDO_CHUNK_BYTES,
  ETCD_REQUEST_OVERHEAD_BYTES,
  ETCD_SCAN_PAGE_ENTRIES,
  ETCD_SESSION_TTL_S,
} from './limits.js';
import { OptimisticRun, ReadMiss, SnapshotRun, intervalId } from './runs.js';
import type { FetchedRange } from './runs.js';
import { CompactedError, EtcdTransport, delay } from './transport.js';
import type { EtcdObserver } from './transport.js';

export interface EtcdStoreOptions {
  client: Etcd3;
  /** Key prefix of this store in etcd (e.g. "/strata/<cluster_id>/meta/"). */
  prefix: string;
  /** Close the client with the store. */
  ownsClient?: boolean;
  /** etcd's `--max-txn-ops` (default 128). */
  maxTxnOps?: number;
  /** etcd's `--max-request-bytes` (default 1.5 MiB). */
  maxRequestBytes?: number;
  cacheEntries?: number;
  observe?: EtcdObserver;
  log?: Logger;
}

/** The leadership key every commit is conditioned on. */
export interface EtcdFence {
  /** The full etcd key (outside the store's prefix). */
  key: Buffer;
  /** Its create_revision when leadership was won. */
  createRevision: number;
}

/** A big transaction of another process is being applied: wait for it, then start again. */
class IntentPending extends Error {
  constructor(readonly kv: IKeyValue) {
    super('etcd intent pending (internal)');
  }
}

type Outcome<T> =
  | { kind: 'done'; value: T }
  /** Run again (counts as a conflict). */
  | { kind: 'rerun' }
  /** Run again after waiting for a local commit (does not count). */
  | { kind: 'again' }
  | { kind: 'snapshot' }
  | { kind: 'exclusive' };

interface Plan {
  writes: RedoWrite[];
  /** Engine compares (no intent, fence), then `validation`, then the caller's own. */
  compares: ICompare[];
  /** The compares that check what the run read. */
  validation: ICompare[];
  failure: IRequestOp[];
  bytes: number;
  big: boolean;
  readOnly: boolean;
}

const EMPTY_RANGE_REVISION = 0;

export class EtcdStore implements MetaStore {
  readonly engine = 'etcd';
  readonly serialTransactions = false;
  readonly #client: Etcd3;
  readonly #transport: EtcdTransport;
  readonly #layout: EtcdLayout;
  readonly #ownsClient: boolean;
  readonly #maxOps: number;
  readonly #budgetBytes: number;
  readonly #cache: EntryCache;
  readonly #log: Logger | undefined;
  readonly #engineId = randomBytes(6).toString('hex');
  readonly #gate = new CommitGate();
  readonly #order = new CommitOrder();
  /** Keys written by commits in flight → settles once that commit is processed. */
  readonly #inflight = new Map<string, Promise<void>>();
  /** Single-key fetches in flight (concurrent misses of one key share one request). */
  readonly #fetching = new Map<string, Promise<void>>();
  /** Big transactions of this process being rolled forward, by redo id. */
  readonly #ownIntents = new Map<string, Promise<unknown>>();
  readonly #running = new Set<Promise<unknown>>();
  #fence: EtcdFence | undefined;
  #session: Lease | undefined;
  #bigSeq = 0;
  /** Revision of the last commit known (ours, or the store's at open). */
  #revision = 0;
  /** Highest etcd revision seen in any answer. */
  #seenRevision = 0;
  #open = true;
  #commits = 0;
  #transactions = 0;
  #reruns = 0;

  private constructor(opts: EtcdStoreOptions) {
    this.#client = opts.client;
    this.#transport = new EtcdTransport(opts.client, opts.observe);
    this.#layout = new EtcdLayout(opts.prefix);
    this.#ownsClient = opts.ownsClient === true;
    this.#maxOps = opts.maxTxnOps ?? ETCD_DEFAULT_MAX_TXN_OPS;
    if (!Number.isInteger(this.#maxOps) || this.#maxOps < ETCD_MIN_TXN_OPS)
      throw metaLimit('etcd max_txn_ops (smallest the engine works with)', this.#maxOps, ETCD_MIN_TXN_OPS);
    const maxBytes = opts.maxRequestBytes ?? ETCD_DEFAULT_MAX_REQUEST_BYTES;
    this.#budgetBytes = maxBytes - ETCD_REQUEST_OVERHEAD_BYTES;
    if (this.#budgetBytes < 1024 * 1024 + ETCD_REQUEST_OVERHEAD_BYTES)
      throw metaLimit(
        'etcd max_request_bytes (must hold one 1 MiB value plus framing)',
        maxBytes,
        1024 * 1024 + 2 * ETCD_REQUEST_OVERHEAD_BYTES,
      );
    this.#cache = new EntryCache(opts.cacheEntries ?? ETCD_DEFAULT_CACHE_ENTRIES);
    this.#log = opts.log;
  }

  /** Connects (one request: the store's last commit revision) and returns the store. */
  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(opts);
    try {
      const r = await store.#transport.range({ key: store.#layout.commitKey });
      store.#saw(r.header.revision);
      store.#revision = Number(r.kvs[0]?.mod_revision ?? 0);
    } catch (err) {
      if (store.#ownsClient) store.#client.close();
      throw err;
    }
    return store;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  get prefix(): string {
    return this.#layout.prefix.toString('utf8');
  }

  /** Conditions every later commit on the fence key's create_revision (undefined: no fence). */
  setFence(fence: EtcdFence | undefined): void {
    this.#fence = fence;
  }

  /** Forgets every cached entry (a new leader starts from etcd's truth). */
  clearCache(): void {
    this.#cache.clear();
  }

  cacheStats(): { entries: number; hits: number; misses: number } {
    return { entries: this.#cache.size, hits: this.#cache.hits, misses: this.#cache.misses };
  }

  /** Finishes a big transaction left half applied by a dead writer, if there is one. */
  async settle(): Promise<void> {
    this.#assertOpen();
    for (;;) {
      const r = await this.#transport.range({ key: this.#layout.intentKey });
      this.#saw(r.header.revision);
      const kv = r.kvs[0];
      if (kv === undefined) return;
      await this.#awaitIntent(kv);
    }
  }

  // ---- reads --------------------------------------------------------------------------------

  read<T>(fn: (r: MetaReader) => T): Promise<T> {
    if (!this.#open) return Promise.reject(metaClosed(this.engine));
    return this.#track(this.#read(fn));
  }

  async #read<T>(fn: (r: MetaReader) => T): Promise<T> {
    for (;;) {
      const snap = new SnapshotRun();
      try {
        for (;;) {
          try {
            return fn(new CheckedReader(snap.reader));
          } catch (err) {
            if (!(err instanceof ReadMiss)) throw err;
            await this.#fetchSnapshot(snap, err);
          }
        }
      } catch (err) {
        if (err instanceof IntentPending) await this.#awaitIntent(err.kv);
        else if (!(err instanceof CompactedError)) throw err;
      }
      this.#assertOpen();
    }
  }

  async get(key: MetaKey): Promise<MetaValue | undefined> {
    return this.read((r) => r.get(key));
  }

  async scan(opts: ScanOptions): Promise<MetaEntry[]> {
    normaliseScan(opts);
    return this.read((r) => r.scan(opts));
  }

  async put(key: MetaKey, value: MetaValue): Promise<void> {
    await this.transaction((tx) => tx.put(key, value));
  }

  async delete(key: MetaKey): Promise<void> {
    await this.transaction((tx) => tx.delete(key));
  }

  // ---- transactions -------------------------------------------------------------------------

  transaction<T>(fn: (tx: MetaTxn) => T): Promise<T> {
    if (!this.#open) return Promise.reject(metaClosed(this.engine));
    return this.#track(this.#transaction(fn));
  }

  async #transaction<T>(fn: (tx: MetaTxn) => T): Promise<T> {
    let snapshot = false;
    let exclusive = false;
    let release: (() => void) | undefined;
    let conflicts = 0;
    try {
      for (;;) {
        this.#assertOpen();
        if (exclusive && release === undefined) release = await this.#gate.exclusive();
        const out = snapshot ? await this.#runSnapshot(fn) : await this.#runOptimistic(fn, exclusive);
        if (out.kind === 'done') {
          this.#transactions++;
          return out.value;
        }
        this.#reruns++;
        if (out.kind === 'snapshot') {
          snapshot = true;
          exclusive = true;
        } else if (out.kind === 'exclusive') {
          exclusive = true;
        } else if (out.kind === 'rerun') {
          conflicts++;
          if (conflicts >= ETCD_MAX_ATTEMPTS) throw metaConflict(conflicts);
          // A run that keeps conflicting takes the gate: nothing of ours can get in its way.
          if (conflicts >= 3) exclusive = true;
        }
      }
    } finally {
      release?.();
    }
  }

  async #runOptimistic<T>(fn: (tx: MetaTxn) => T, exclusive: boolean): Promise<Outcome<T>> {
    const run = new OptimisticRun(this.#cache);
    let buf: TxnBuffer;
    let value: T;
    for (;;) {
      run.begin();
      buf = new TxnBuffer(run.reader, this.#revision + 1);
      try {
        value = fn(buf);
        break;
      } catch (err) {
        if (err instanceof ReadMiss) {
          await this.#fetchOptimistic(run, err);
          continue;
        }
        // The function threw: a real outcome only if what it read was a consistent state.
        const v = await this.#validate(this.#optimisticCompares(run));
        if (v === 'valid') throw err;
        if (v === 'too-many') return { kind: 'snapshot' };
        if (v !== 'invalid') await this.#awaitIntent(v);
        this.#evict(run);
        return { kind: 'rerun' };
      }
    }
    const validation = this.#optimisticCompares(run);
    const plan = this.#plan(buf, validation);
    if (plan.compares.length + 1 > this.#maxOps) return { kind: 'snapshot' };
    if (plan.readOnly) {
      if (validation.length === 0) return { kind: 'done', value };
      const v = await this.#validate(validation);
      if (v === 'valid') return { kind: 'done', value };
      if (v === 'too-many') return { kind: 'snapshot' };
      if (v !== 'invalid') await this.#awaitIntent(v);
      this.#evict(run);
      return { kind: 'rerun' };
    }
    if (plan.big && !exclusive) return { kind: 'exclusive' };
    if (!exclusive) {
      const blocked = this.#gate.blocked;
      if (blocked !== undefined) {
        await blocked;
        return { kind: 'again' };
      }
      const waits = this.#conflicts(run, buf);
      if (waits.length > 0) {
        await Promise.all(waits);
        return { kind: 'again' };
      }
    }
    const out = plan.big ? await this.#commitBig(plan, buf, value) : await this.#commit(plan, buf, value);
    if (out.kind === 'rerun') this.#evict(run);
    return out;
  }

  async #runSnapshot<T>(fn: (tx: MetaTxn) => T): Promise<Outcome<T>> {
    const snap = new SnapshotRun();
    let buf: TxnBuffer;
    let value: T;
    try {
      for (;;) {
        buf = new TxnBuffer(snap.reader, this.#revision + 1);
        try {
          value = fn(buf);
          break;
        } catch (err) {
          if (!(err instanceof ReadMiss)) throw err;
          await this.#fetchSnapshot(snap, err);
        }
      }
    } catch (err) {
      if (err instanceof IntentPending) {
        await this.#awaitIntent(err.kv);
        return { kind: 'rerun' };
      }
      if (err instanceof CompactedError) return { kind: 'rerun' };
      throw err;
    }
    const validation: ICompare[] =
      snap.revision === undefined
        ? []
        : [{ key: this.#layout.commitKey, target: 'Mod', result: 'Less', mod_revision: snap.revision + 1 }];
    const plan = this.#plan(buf, validation);
    if (plan.compares.length + 1 > this.#maxOps)
      throw metaLimit('compares of one metadata transaction (etcd)', buf.compares.length, this.#maxOps - 4);
    if (plan.readOnly) return { kind: 'done', value };
    return plan.big ? this.#commitBig(plan, buf, value) : this.#commit(plan, buf, value);
  }

  /** Local commits in flight that touch what this run read or writes. */
  #conflicts(run: OptimisticRun, buf: TxnBuffer): Promise<void>[] {
    if (this.#inflight.size === 0) return [];
    const waits = new Set<Promise<void>>();
    for (const id of run.gets.keys()) {
      const p = this.#inflight.get(id);
      if (p !== undefined) waits.add(p);
    }
    for (const id of buf.writes.keys()) {
      const p = this.#inflight.get(id);
      if (p !== undefined) waits.add(p);
    }
    for (const rid of run.rangesRead) {
      const r = run.range(rid);
      if (r === undefined) continue;
      for (const [id, p] of this.#inflight) if (inInterval(idBytes(id), r.iv)) waits.add(p);
    }
    return [...waits];
  }

  /** The compares that check what an optimistic run read is still what etcd holds. */
  #optimisticCompares(run: OptimisticRun): ICompare[] {
    const out: ICompare[] = [];
    const seen = new Set<string>();
    for (const rid of run.rangesRead) {
      const r = run.range(rid);
      if (r === undefined || r.revision === EMPTY_RANGE_REVISION) continue;
      const [lo, hi] = validatedSpan(r);
      out.push({
        key: this.#layout.toEtcd(lo),
        range_end: hi === undefined ? this.#layout.dataEnd : this.#layout.toEtcd(hi),
        target: 'Mod',
        result: 'Less',
        mod_revision: r.revision + 1,
      });
      for (const e of r.entries) {
        const id = bytesId(e.key);
        if (seen.has(id)) continue;
        seen.add(id);
        out.push({
          key: this.#layout.toEtcd(e.key),
          target: 'Mod',
          result: 'Equal',
          mod_revision: e.modRevision,
        });
      }
    }
    for (const [key, rev] of run.getKeys()) {
      const id = bytesId(key);
      if (seen.has(id)) continue;
      seen.add(id);
      out.push({ key: this.#layout.toEtcd(key), target: 'Mod', result: 'Equal', mod_revision: rev });
    }
    return out;
  }

  #plan(buf: TxnBuffer, validation: ICompare[]): Plan {
    const L = this.#layout;
    const writes: RedoWrite[] = [];
    let bytes = 0;
    for (const w of buf.writes.values()) {
      const k = L.toEtcd(w.key);
      const v = w.value === undefined ? null : Buffer.from(w.value);
      writes.push([k, v]);
      bytes += k.length + (v?.length ?? 0) + ETCD_OP_OVERHEAD_BYTES;
    }
    const compares: ICompare[] = [{ key: L.intentKey, target: 'Version', result: 'Equal', version: 0 }];
    const failure: IRequestOp[] = [{ request_range: { key: L.intentKey } }];
    const fence = this.#fence;
    if (fence !== undefined) {
      compares.push({
        key: fence.key,
        target: 'Create',
        result: 'Equal',
        create_revision: fence.createRevision,
      });
      failure.push({ request_range: { key: fence.key } });
    }
    compares.push(...validation);
    for (const c of buf.compares) compares.push(this.#userCompare(c));
    for (const c of compares)
      bytes +=
        (c.key?.length ?? 0) + (c.range_end?.length ?? 0) + (c.value?.length ?? 0) + ETCD_OP_OVERHEAD_BYTES;
    const readOnly = writes.length === 0 && buf.compares.length === 0;
    const big = writes.length + 1 > this.#maxOps || bytes > this.#budgetBytes;
    return { writes, compares, validation, failure, bytes, big, readOnly };
  }

  #userCompare(c: MetaCompare): ICompare {
    const key = this.#layout.toEtcd(c.key);
    if ('modRevision' in c) return { key, target: 'Mod', result: 'Equal', mod_revision: c.modRevision };
    if (c.value === undefined) return { key, target: 'Version', result: 'Equal', version: 0 };
    return { key, target: 'Value', result: 'Equal', value: Buffer.from(c.value) };
  }

  /** One etcd transaction: compares, the writes and `x/commit`. */
  async #commit<T>(plan: Plan, buf: TxnBuffer, value: T): Promise<Outcome<T>> {
    if (plan.writes.length === 0 && buf.compares.length > 0) {
      // Conditions only: a compare-only transaction (no revision is spent).
      const v = await this.#check(plan);
      if (v === 'ok') return { kind: 'done', value };
      return v;
    }
    const ops = plan.writes.map(writeOp);
    ops.push({ request_put: { key: this.#layout.commitKey, value: Buffer.from(this.#engineId) } });
    const settled = this.#register(plan.writes);
    this.#gate.enter();
    const ticket = this.#order.enter(this.#seenRevision);
    try {
      let r: ITxnResponse;
      try {
        r = await this.#transport.commit({ compare: plan.compares, success: ops, failure: plan.failure });
      } catch (err) {
        this.#order.cancel(ticket);
        // Whatever happened, what we knew about these keys may be wrong now.
        for (const w of plan.writes) this.#cache.forget(bytesId(this.#layout.fromEtcd(w[0])));
        throw err;
      }
      this.#saw(r.header.revision);
      if (r.succeeded) {
        const rev = Number(r.header.revision);
        for (const [k, v] of plan.writes) {
          this.#cache.learn(bytesId(this.#layout.fromEtcd(k)), v ?? undefined, v === null ? 0 : rev, rev);
        }
        if (rev > this.#revision) this.#revision = rev;
        this.#commits++;
        await this.#order.done(ticket, rev);
        return { kind: 'done', value };
      }
      this.#order.cancel(ticket);
      return await this.#explainFailure(r, plan, buf.compares.length > 0);
    } finally {
      this.#gate.leave();
      settled();
    }
  }

  /** A transaction of conditions only: does it hold now? */
  async #check(plan: Plan): Promise<'ok' | { kind: 'rerun' }> {
    const r = await this.#transport.readTxn({ compare: plan.compares, success: [], failure: plan.failure });
    this.#saw(r.header.revision);
    if (r.succeeded) return 'ok';
    const why = await this.#explainFailure(r, plan, true);
    return why;
  }

  /**
   * Why a commit's compares failed: a big transaction in the way (wait, run again), the fence
   * (fail), or what the run read changed (run again), else the caller's own conditions
   * (STRATA_META_COMPARE_FAILED).
   */
  async #explainFailure(r: ITxnResponse, plan: Plan, userCompares: boolean): Promise<{ kind: 'rerun' }> {
    const intent = r.responses[0]?.response_range.kvs[0];
    if (intent !== undefined) {
      await this.#awaitIntent(intent);
      return { kind: 'rerun' };
    }
    const fence = this.#fence;
    if (fence !== undefined) {
      const f = r.responses[1]?.response_range.kvs[0];
      if (f === undefined || Number(f.create_revision) !== fence.createRevision)
        throw etcdFenced(fence.key.toString('utf8'));
    }
    if (userCompares) {
      // Only the caller's conditions are left to explain it if everything read is unchanged.
      const v = await this.#validate(plan.validation);
      if (v === 'valid') throw new MetaCompareError('a transaction condition failed (etcd)');
      if (typeof v === 'object') await this.#awaitIntent(v);
    }
    return { kind: 'rerun' };
  }

  /**
   * Checks compares in a transaction that writes nothing: 'valid', 'invalid', 'too-many' (they
   * do not fit one request), or the intent record standing in the way.
   */
  async #validate(compares: ICompare[]): Promise<'valid' | 'invalid' | 'too-many' | IKeyValue> {
    const L = this.#layout;
    const all: ICompare[] = [
      { key: L.intentKey, target: 'Version', result: 'Equal', version: 0 },
      ...compares,
    ];
    if (all.length > this.#maxOps) return 'too-many';
    const r = await this.#transport.readTxn({
      compare: all,
      success: [],
      failure: [{ request_range: { key: L.intentKey } }],
    });
    this.#saw(r.header.revision);
    if (r.succeeded) return 'valid';
    return r.responses[0]?.response_range.kvs[0] ?? 'invalid';
  }

  /** Marks keys as being written by a commit in flight; returns the function that clears them. */
  #register(writes: readonly RedoWrite[]): () => void {
    let done!: () => void;
    const p = new Promise<void>((resolve) => (done = resolve));
    const ids = writes.map((w) => bytesId(this.#layout.fromEtcd(w[0])));
    for (const id of ids) this.#inflight.set(id, p);
    return () => {
      for (const id of ids) if (this.#inflight.get(id) === p) this.#inflight.delete(id);
      done();
    };
  }

  #evict(run: OptimisticRun): void {
    for (const id of run.gets.keys()) this.#cache.forget(id);
  }

  // ---- big transactions ---------------------------------------------------------------------

  async #commitBig<T>(plan: Plan, buf: TxnBuffer, value: T): Promise<Outcome<T>> {
    const L = this.#layout;
    const chunks = packRedo(plan.writes, Math.min(ETCD_REDO_CHUNK_BYTES, this.#budgetBytes));
    checkChunkCount(chunks.length, this.#maxOps);
    if (plan.compares.length + 1 > this.#maxOps) return { kind: 'snapshot' };
    const owner = await this.#sessionLease();
    const id = `${this.#engineId}-${++this.#bigSeq}`;
    for (let i = 0; i < chunks.length; i++) {
      const key = L.redoKey(id, i);
      const value = chunks[i] as Buffer;
      await this.#transport.idempotent('put', () => this.#client.kv.put({ key, value, lease: owner }));
    }
    const intent: IntentRecord = { id, chunks: chunks.length, owner, atMs: Date.now() };
    const success: IRequestOp[] = [
      { request_put: { key: L.intentKey, value: encodeIntent(intent) } },
      { request_put: { key: L.commitKey, value: Buffer.from(this.#engineId) } },
    ];
    for (let i = 0; i < chunks.length; i++)
      success.push({ request_put: { key: L.redoKey(id, i), ignore_value: true, lease: 0 } });
    const compares: ICompare[] = [
      ...plan.compares,
      { key: L.redoKey(id, 0), target: 'Version', result: 'Greater', version: 0 },
    ];
    const settled = this.#register(plan.writes);
    const ticket = this.#order.enter(this.#seenRevision);
    let applying: Promise<number | undefined> | undefined;
    try {
      let r: ITxnResponse | undefined;
      try {
        r = await this.#transport.commit({ compare: compares, success, failure: plan.failure });
      } catch (err) {
        if ((err as { code?: string }).code !== 'STRATA_META_OUTCOME_UNKNOWN') throw err;
        // The intent record says whether the commit point was reached. Revoking the session
        // lease first deletes the chunks of an uncommitted log, so a commit still on its way
        // fails its "chunk 0 exists" compare: the answer read next is final.
        await this.#dropSession();
        const cur = (await this.#transport.range({ key: L.intentKey })).kvs[0];
        if (cur === undefined || decodeIntent(cur.value).id !== id) throw err;
        this.#log?.warn(
          { id },
          'etcd: big transaction commit answer lost, but it committed; rolling forward',
        );
        r = undefined;
        applying = this.#applyOwn(intent, Number(cur.mod_revision), plan.writes);
      }
      if (r !== undefined) {
        this.#saw(r.header.revision);
        if (!r.succeeded) {
          this.#order.cancel(ticket);
          await this.#deleteRedo(id);
          return await this.#explainFailure(r, plan, buf.compares.length > 0);
        }
        applying = this.#applyOwn(intent, Number(r.header.revision), plan.writes);
      }
      const rev = (await applying) ?? this.#seenRevision;
      for (const w of plan.writes) this.#cache.forget(bytesId(L.fromEtcd(w[0])));
      if (rev > this.#revision) this.#revision = rev;
      this.#commits++;
      await this.#order.done(ticket, rev);
      return { kind: 'done', value };
    } catch (err) {
      this.#order.cancel(ticket);
      throw err;
    } finally {
      settled();
    }
  }

  #applyOwn(intent: IntentRecord, intentRevision: number, writes: RedoWrite[]): Promise<number | undefined> {
    const p = rollForward(this.#applyContext(), intent, intentRevision, writes);
    this.#ownIntents.set(intent.id, p);
    const forget = (): void => {
      this.#ownIntents.delete(intent.id);
    };
    p.then(forget, forget);
    return p;
  }

  #applyContext(): ApplyContext {
    return {
      transport: this.#transport,
      layout: this.#layout,
      maxOps: this.#maxOps,
      budgetBytes: this.#budgetBytes,
    };
  }

  async #deleteRedo(id: string): Promise<void> {
    const key = this.#layout.redoPrefix(id);
    const end = Buffer.from(key);
    end[end.length - 1] = (end[end.length - 1] as number) + 1;
    await this.#transport
      .idempotent('delete', () => this.#client.kv.deleteRange({ key, range_end: end }))
      .catch((err: unknown) =>
        this.#log?.warn({ err: message(err), id }, 'etcd: could not delete an unused redo log'),
      );
  }

  /**
   * Waits until the intent record `kv` is gone: our own big transaction finishing, or another
   * process's. A writer whose session lease expired (or that has been at it too long) is dead:
   * its log is rolled forward here.
   */
  async #awaitIntent(kv: IKeyValue): Promise<void> {
    const rec = decodeIntent(kv.value);
    const rev = Number(kv.mod_revision);
    const own = this.#ownIntents.get(rec.id);
    if (own !== undefined) {
      await own.catch(() => undefined);
      return;
    }
    let pauseMs = ETCD_INTENT_POLL_MIN_MS;
    for (;;) {
      this.#assertOpen();
      if ((await this.#ownerGone(rec)) || Date.now() - rec.atMs > ETCD_INTENT_HELP_AFTER_MS) {
        this.#log?.warn({ id: rec.id }, 'etcd: finishing a big transaction its writer left half applied');
        const writes = await readRedo(this.#applyContext(), rec);
        await rollForward(this.#applyContext(), rec, rev, writes);
        this.#cache.clear();
        return;
      }
      await delay(pauseMs);
      pauseMs = Math.min(ETCD_INTENT_POLL_MAX_MS, pauseMs * 2);
      const cur = (await this.#transport.range({ key: this.#layout.intentKey })).kvs[0];
      if (cur === undefined || Number(cur.mod_revision) !== rev) {
        // Someone else's big transaction changed keys we may have cached.
        this.#cache.clear();
        return;
      }
    }
  }

  async #ownerGone(rec: IntentRecord): Promise<boolean> {
    try {
      const r = await this.#transport.idempotent('lease', () =>
        this.#client.leaseClient.leaseTimeToLive({ ID: rec.owner, keys: false }),
      );
      return Number(r.TTL) <= 0;
    } catch {
      return false;
    }
  }

  async #sessionLease(): Promise<string> {
    if (this.#session === undefined || this.#session.revoked()) {
      const lease = this.#client.lease(ETCD_SESSION_TTL_S);
      lease.on('lost', (err) => {
        this.#log?.warn({ err: message(err) }, 'etcd: session lease lost; a new one is taken when needed');
        if (this.#session === lease) this.#session = undefined;
      });
      this.#session = lease;
    }
    return this.#session.grant();
  }

  async #dropSession(): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    if (s !== undefined) await s.revoke().catch(() => undefined);
  }

  // ---- fetching -----------------------------------------------------------------------------

  async #fetchOptimistic(run: OptimisticRun, miss: ReadMiss): Promise<void> {
    if (miss.key !== undefined) {
      const id = bytesId(miss.key);
      let p = this.#fetching.get(id);
      if (p === undefined) {
        const key = this.#layout.toEtcd(miss.key);
        p = this.#transport.range({ key }).then((r) => {
          this.#saw(r.header.revision);
          const kv = r.kvs[0];
          const h = Number(r.header.revision);
          this.#cache.learn(
            id,
            kv === undefined ? undefined : Buffer.from(kv.value),
            Number(kv?.mod_revision ?? 0),
            h,
          );
        });
        const clear = (): void => {
          if (this.#fetching.get(id) === p) this.#fetching.delete(id);
        };
        p.then(clear, clear);
        this.#fetching.set(id, p);
      }
      await p;
      const known = this.#cache.get(id);
      if (known !== undefined) run.addKnown(id, known);
      return;
    }
    if (miss.iv !== undefined) run.addRange(await this.#scan(miss.iv, undefined));
  }

  async #fetchSnapshot(snap: SnapshotRun, miss: ReadMiss): Promise<void> {
    const L = this.#layout;
    if (snap.revision === undefined) {
      const ops: IRequestOp[] = [{ request_range: { key: L.intentKey } }];
      if (miss.key !== undefined) ops.push({ request_range: { key: L.toEtcd(miss.key) } });
      const r = await this.#transport.readTxn({ success: ops });
      this.#saw(r.header.revision);
      const intent = r.responses[0]?.response_range.kvs[0];
      if (intent !== undefined) throw new IntentPending(intent);
      snap.revision = Number(r.header.revision);
      if (miss.key !== undefined) {
        const kv = r.responses[1]?.response_range.kvs[0];
        snap.keys.set(bytesId(miss.key), kv === undefined ? null : this.#entry(kv));
        return;
      }
    } else if (miss.key !== undefined) {
      const r = await this.#transport.range({ key: L.toEtcd(miss.key), revision: snap.revision });
      const kv = r.kvs[0];
      snap.keys.set(bytesId(miss.key), kv === undefined ? null : this.#entry(kv));
      return;
    }
    if (miss.iv !== undefined) {
      const got = await this.#scan(miss.iv, snap.revision);
      snap.ranges.set(intervalId(miss.iv), got);
    }
  }

  /** A scan in pages, all at one revision (the first page's, when `revision` is undefined). */
  async #scan(iv: Interval, revision: number | undefined): Promise<FetchedRange> {
    const L = this.#layout;
    let lo = L.toEtcd(iv.lo);
    let hi = L.endToEtcd(iv.hi);
    const entries: MetaEntry[] = [];
    if (iv.limit === 0 || compareBytes(lo, hi) >= 0) return { iv, entries, revision: EMPTY_RANGE_REVISION };
    let rev = revision;
    for (;;) {
      const want = Math.min(ETCD_SCAN_PAGE_ENTRIES, iv.limit - entries.length);
      const req: IRangeRequest = { key: lo, range_end: hi, limit: want };
      if (iv.reverse) {
        req.sort_order = 'Descend';
        req.sort_target = 'Key';
      }
      if (rev !== undefined) req.revision = rev;
      const r: IRangeResponse = await this.#transport.range(req);
      this.#saw(r.header.revision);
      rev ??= Number(r.header.revision);
      for (const kv of r.kvs) entries.push(this.#entry(kv));
      const last = r.kvs[r.kvs.length - 1];
      if (!r.more || r.kvs.length === 0 || entries.length >= iv.limit || last === undefined) break;
      if (iv.reverse) hi = Buffer.from(last.key);
      else lo = Buffer.concat([last.key, ZERO]);
    }
    return { iv, entries, revision: rev };
  }

  #entry(kv: IKeyValue): MetaEntry {
    return {
      key: Buffer.from(this.#layout.fromEtcd(kv.key)),
      value: Buffer.from(kv.value),
      modRevision: Number(kv.mod_revision),
    };
  }

  #saw(revision: string | number): void {
    const n = Number(revision);
    if (n > this.#seenRevision) this.#seenRevision = n;
  }

  // ---- the rest -----------------------------------------------------------------------------

  stats(): MetaStoreStats {
    return {
      engine: this.engine,
      revision: this.#revision,
      commits: this.#commits,
      transactions: this.#transactions,
      reruns: this.#reruns,
    };
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#running.add(p);
    const forget = (): void => {
      this.#running.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  #assertOpen(): void {
    if (!this.#open) throw metaClosed(this.engine);
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    await Promise.allSettled([...this.#running]);
    await this.#dropSession();
    if (this.#ownsClient) this.#client.close();
  }
}

const ZERO = Buffer.of(0);

/**
 * The part of a fetched range whose contents the scan's result depends on: all of it, or, when
 * the scan stopped at its limit, up to (and including) the last entry returned.
 */
function validatedSpan(r: FetchedRange): [Uint8Array, Uint8Array | undefined] {
  const last = r.entries[r.entries.length - 1];
  if (r.entries.length < r.iv.limit || last === undefined) return [r.iv.lo, r.iv.hi];
  if (r.iv.reverse) return [last.key, r.iv.hi];
  return [r.iv.lo, Buffer.concat([last.key, ZERO])];
}
