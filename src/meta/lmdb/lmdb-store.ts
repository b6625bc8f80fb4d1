/**
 * The embedded MetaStore engine on LMDB (lmdb-js). One writer, memory-mapped reads.
 *
 * Pipelined group commit. A transaction function runs at once, in JavaScript, against a view of
 * the store made of the committed LMDB data under an overlay of the writes of transactions that
 * ran before it and are not committed yet. Its writes then go to lmdb-js as asynchronous puts,
 * which lmdb-js commits on its write thread, every put of one event-loop turn in one LMDB
 * transaction. So functions run strictly one after another (serializable, never re-run) in the
 * order their writes commit, and the JavaScript thread keeps running new transactions while
 * earlier batches are being written: commit latency overlaps with work instead of adding to it.
 * The promise of a transaction resolves when its batch is committed and synced to disk. With
 * `durability: 'flush'` (the default) data and LMDB's meta page are synced at every commit, so
 * an acknowledged transaction survives power loss; with `'commit'` the meta page sync is left to
 * the next commit or the OS (LMDB's MDB_NOMETASYNC): a crash of the process loses nothing, a
 * crash of the machine may undo the last transaction. LMDB is never corrupted either way.
 *
 * A failed commit (disk full, I/O error) fails the store: later transactions may have read
 * writes that never landed, so every pending and later call rejects with STRATA_META_IO and the
 * process must reopen the store (the master exits and restarts; LMDB holds the last good state).
 *
 * Plain reads (`read`, `get`, `scan`) see committed data only: everything whose transaction has
 * resolved, never a write still in flight.
 *
 * Revisions: a counter kept in a second LMDB database (written with every transaction, in the
 * same LMDB transaction), stamped on every written entry through LMDB's per-entry version.
 *
 * With `wal: true` a transaction is acknowledged when its record is in the write-ahead log
 * (wal.ts: one fdatasync for every transaction that arrived meanwhile), not when LMDB commits:
 * LMDB still commits every batch synced (`durability` is then always 'flush'), but off the
 * acknowledgement path, and each of its commits lets the log drop what it now holds. Plain reads
 * then see LMDB's committed data under the writes of every transaction whose log record is
 * durable (so an acknowledged write is visible at once, and a write not yet durable never is);
 * on open, the log's records above LMDB's revision are applied before anything else runs.
 *
 * Behind the log, LMDB is fed in batches (`LMDB_APPLY_INTERVAL_MS`): the writes of every
 * transaction since the last batch go to lmdb-js together once its previous commit has landed,
 * and at most one batch per interval. Durability does not depend on LMDB there, so fewer, larger
 * LMDB commits only save work: each commit rewrites the hot pages (directories, tree spines) and
 * syncs twice, and lmdb-js wakes its write thread for every put that arrives while it waits in a
 * transaction. The overlay holds the writes of those batches until they land.
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getLastVersion, open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';
import type { Logger } from '../../common/logging.js';
import { recoverWal, WriteAheadLog } from './wal.js';
import { encodeWalRecord } from './wal-record.js';
import type { WalWrite } from './wal-record.js';
import { bytesEqual, bytesId, compareBytes, inInterval, normaliseScan } from '../bytes.js';
import type { Interval } from '../bytes.js';
import { MetaCompareError, MetaError, metaClosed, metaIo } from '../errors.js';
import { CheckedReader, TxnBuffer } from '../txn-buffer.js';
import type { EngineReader } from '../txn-buffer.js';
import type {
  MetaEntry,
  MetaKey,
  MetaReader,
  MetaStore,
  MetaStoreStats,
  MetaTxn,
  MetaValue,
  ScanOptions,
} from '../store.js';

export const LMDB_FILE_NAME = 'strata.mdb';
const REVISION_KEY = 'revision';

export type LmdbDurability = 'flush' | 'commit';

export interface LmdbStoreOptions {
  /** Directory holding the database file (created when missing). */
  dir: string;
  durability?: LmdbDurability;
  /** Acknowledge at the write-ahead log's sync instead of LMDB's commit (see the module comment). */
  wal?: boolean;
  /** Segment size of the write-ahead log (tests make it small to exercise rotation). */
  walSegmentBytes?: number;
  log?: Logger;
}

/**
 * Writes LMDB may lag behind the write-ahead log before transactions wait for LMDB's commit too
 * (bounds the memory of the overlay and the cost of scans merging it).
 */
export const WAL_MAX_PENDING_WRITES = 100_000;
/**
 * With a log: the least time between the starts of two LMDB commits. Transactions meanwhile go
 * into one LMDB commit (written pages and syncs shared); the overlay, which scans merge by walking
 * it, holds the writes of about two intervals. 20 ms is at most 50 LMDB commits per second.
 */
export const LMDB_APPLY_INTERVAL_MS = 20;
/** Log records applied per LMDB transaction on replay. */
const REPLAY_BATCH_RECORDS = 1000;

/** A transaction acknowledged from the log, waiting for LMDB. */
interface LoggedTxn {
  seq: number;
  ids: string[];
  written: PendingWrite[];
  /** Set once LMDB has committed it. */
  landed: boolean;
}

/** Transactions handed to LMDB together (one lmdb-js commit). */
interface ApplyBatch {
  txns: LoggedTxn[];
  lastRevision: number;
  /** Settles when LMDB has committed (and synced) the batch. */
  landed: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A write not committed yet: the latest one of its key wins in the overlay. */
interface PendingWrite {
  key: Buffer;
  value: Buffer | undefined;
  revision: number;
  /** The transaction that wrote it, to know whether a later one has overwritten it. */
  seq: number;
}

export class LmdbStore implements MetaStore {
  readonly engine = 'lmdb';
  readonly serialTransactions = true;
  readonly #root: RootDatabase;
  readonly #kv: Database<Buffer, Buffer>;
  readonly #engineDb: Database<number, string>;
  readonly #durability: LmdbDurability;
  readonly #path: string;
  readonly #log: Logger | undefined;
  /** Committed data only. */
  readonly #committed: EngineReader;
  /** Committed data under the pending writes: what the next transaction sees. */
  readonly #latest: EngineReader;
  readonly #pending = new Map<string, PendingWrite>();
  /** With a WAL: the writes of transactions durable in the log that LMDB has not committed yet. */
  readonly #durable = new Map<string, PendingWrite>();
  /** What plain reads see: committed data, under #durable with a WAL. */
  readonly #visible: EngineReader;
  #wal: WriteAheadLog | undefined;
  readonly #walWanted: boolean;
  readonly #walSegmentBytes: number | undefined;
  #lastDurable: Promise<void> | undefined;
  #lastCommit: Promise<unknown> | undefined;
  /** With a log: the batch taking transactions, not handed to LMDB yet. */
  #nextBatch: ApplyBatch | undefined;
  /** With a log: a batch is being committed by LMDB (the next waits for it). */
  #applying = false;
  #applyTimer: NodeJS.Timeout | undefined;
  #lastApplyMs = 0;
  #revision: number;
  #seq = 0;
  #open = true;
  #failed: MetaError | undefined;
  readonly #fatalListeners: ((err: MetaError) => void)[] = [];
  #inFunction = false;
  #transactions = 0;
  /** Physical LMDB commits: lmdb-js hands every write of one batch the same promise. */
  #commits = 0;
  /** Milliseconds the physical commits took, from a batch's first write to its durable end. */
  #commitMs = 0;
  #closing: Promise<void> | undefined;

  private constructor(opts: LmdbStoreOptions) {
    mkdirSync(opts.dir, { recursive: true });
    this.#path = join(opts.dir, LMDB_FILE_NAME);
    this.#walWanted = opts.wal === true;
    this.#walSegmentBytes = opts.walSegmentBytes;
    // With a log, LMDB's commits are what let the log drop records: they must be fully synced.
    this.#durability = this.#walWanted ? 'flush' : (opts.durability ?? 'flush');
    this.#log = opts.log;
    // Plain synchronous commits: LMDB's overlapping sync measured slower here (one outstanding
    // sync serialises commits anyway). 'commit' skips the separate sync of the meta page.
    this.#root = open({
      path: this.#path,
      encoding: 'binary',
      keyEncoding: 'binary',
      overlappingSync: false,
      noMetaSync: this.#durability === 'commit',
    });
    this.#kv = this.#root.openDB<Buffer, Buffer>({
      name: 'kv',
      encoding: 'binary',
      keyEncoding: 'binary',
      useVersions: true,
    });
    this.#engineDb = this.#root.openDB<number, string>({ name: 'engine', encoding: 'msgpack' });
    this.#revision = this.#engineDb.get(REVISION_KEY) ?? 0;
    const kv = this.#kv;
    this.#committed = {
      get: (key) => readValue(kv, asBuffer(key)),
      getEntry: (key) => {
        const v = readValue(kv, asBuffer(key));
        if (v === undefined) return undefined;
        return { key: copy(key), value: v, modRevision: getLastVersion() };
      },
      scanInterval: (iv) => scanLmdb(kv, iv),
    };
    this.#latest = this.#overlaid(this.#pending);
    this.#visible = this.#overlaid(this.#durable);
  }

  static async open(opts: LmdbStoreOptions): Promise<LmdbStore> {
    let store: LmdbStore;
    try {
      store = new LmdbStore(opts);
    } catch (err) {
      throw metaIo('lmdb', err);
    }
    if (store.#walWanted) {
      try {
        store.#startWal(opts.dir);
      } catch (err) {
        await store.#root.close().catch(noop);
        throw err instanceof MetaError ? err : metaIo('lmdb', err);
      }
    }
    return store;
  }

  /**
   * Applies the log's records above LMDB's revision (synced commits, so the log's segments are
   * then redundant), then starts a fresh log. Idempotent: a crash anywhere in here leaves LMDB at
   * some revision and the segments still holding everything above it.
   */
  #startWal(dir: string): void {
    const records = recoverWal(dir, this.#revision, this.#log);
    for (let i = 0; i < records.length; i += REPLAY_BATCH_RECORDS) {
      const batch = records.slice(i, i + REPLAY_BATCH_RECORDS);
      this.#root.transactionSync(() => {
        for (const r of batch) {
          for (const w of r.writes) {
            if (w.value === undefined) this.#kv.removeSync(w.key);
            else this.#kv.putSync(w.key, w.value, r.revision);
          }
          this.#revision = r.revision;
        }
        this.#engineDb.putSync(REVISION_KEY, this.#revision);
      });
    }
    if (records.length > 0)
      this.#log?.info(
        { records: records.length, revision: this.#revision },
        'applied write-ahead log records LMDB lacked',
      );
    this.#wal = new WriteAheadLog({
      dir,
      nextRevision: this.#revision + 1,
      ...(this.#walSegmentBytes === undefined ? {} : { segmentBytes: this.#walSegmentBytes }),
      ...(this.#log === undefined ? {} : { log: this.#log }),
    });
  }

  /** False once closed, and once a commit has failed (the store then refuses all work). */
  get isOpen(): boolean {
    return this.#open && this.#failed === undefined;
  }

  get path(): string {
    return this.#path;
  }

  async read<T>(fn: (r: MetaReader) => T): Promise<T> {
    this.#check();
    if (this.#inFunction) throw new Error('MetaStore.read called inside a transaction function');
    return fn(new CheckedReader(this.#visible));
  }

  async transaction<T>(fn: (tx: MetaTxn) => T): Promise<T> {
    this.#check();
    if (this.#inFunction) throw new Error('MetaStore.transaction called inside a transaction function');
    const rev = this.#revision + 1;
    // No copies of written bytes: lmdb-js copies them into its write buffer at put, and the
    // overlay of pending writes only needs them until the commit settles.
    const buf = new TxnBuffer(this.#latest, rev, false);
    this.#inFunction = true;
    let value: T;
    try {
      value = fn(buf);
    } finally {
      this.#inFunction = false;
    }
    for (const c of buf.compares) {
      const cur = this.#latest.getEntry(c.key);
      const holds =
        'modRevision' in c ? (cur?.modRevision ?? 0) === c.modRevision : bytesEqual(cur?.value, c.value);
      if (!holds)
        throw new MetaCompareError(
          `transaction condition failed on key ${Buffer.from(c.key).toString('hex')}`,
        );
    }
    this.#transactions++;
    if (buf.writes.size === 0) {
      // Read-only, but it may have read writes still in flight: answer once they have landed.
      if (this.#pending.size > 0) {
        if (this.#wal !== undefined) await this.#settle(this.#lastDurable);
        else if (this.#lastCommit !== undefined) await this.#settle(this.#lastCommit);
      }
      return value;
    }
    this.#revision = rev;
    const seq = ++this.#seq;
    if (this.#wal !== undefined) return this.#logTransaction(this.#wal, value, buf, rev, seq);
    const ids: string[] = [];
    let committed: Promise<unknown>;
    try {
      for (const [id, w] of buf.writes) {
        const key = asBuffer(w.key);
        const v = w.value === undefined ? undefined : asBuffer(w.value);
        this.#pending.set(id, { key, value: v, revision: rev, seq });
        ids.push(id);
        if (v === undefined) void this.#kv.remove(key).catch(observeCommitCause);
        else void this.#kv.put(key, v, rev).catch(observeCommitCause);
      }
      committed = this.#engineDb.put(REVISION_KEY, rev);
    } catch (err) {
      // lmdb-js refused a write synchronously (closed, oversized): the batch may be partial.
      throw this.#fail(err);
    }
    if (committed !== this.#lastCommit) this.#countCommit(committed);
    this.#lastCommit = committed;
    try {
      await this.#settle(committed);
    } finally {
      for (const id of ids) if (this.#pending.get(id)?.seq === seq) this.#pending.delete(id);
    }
    return value;
  }

  #countCommit(committed: Promise<unknown>): void {
    this.#commits++;
    const startedMs = performance.now();
    committed.then(() => {
      this.#commitMs += performance.now() - startedMs;
    }, noop);
  }

  /**
   * With a log: the record holds copies of the written bytes, which the overlays keep after the
   * transaction settles (when the caller may reuse its own buffers). The writes join the next
   * batch for LMDB; the transaction is acknowledged at the record's sync.
   */
  #logTransaction<T>(wal: WriteAheadLog, value: T, buf: TxnBuffer, rev: number, seq: number): Promise<T> {
    const views: WalWrite[] = [];
    const writes: WalWrite[] = [];
    for (const w of buf.writes.values())
      writes.push({ key: asBuffer(w.key), value: w.value === undefined ? undefined : asBuffer(w.value) });
    const record = encodeWalRecord(rev, writes, views);
    const ids: string[] = [];
    const written: PendingWrite[] = [];
    let i = 0;
    for (const id of buf.writes.keys()) {
      const view = views[i++];
      if (view === undefined) throw new Error('write-ahead log record lacks a write');
      const p = { key: view.key, value: view.value, revision: rev, seq };
      this.#pending.set(id, p);
      ids.push(id);
      written.push(p);
    }
    const txn: LoggedTxn = { seq, ids, written, landed: false };
    const batch = (this.#nextBatch ??= newBatch());
    batch.txns.push(txn);
    batch.lastRevision = rev;
    this.#scheduleApply();
    return this.#acknowledgeFromLog(wal, value, batch.landed, txn, rev, record);
  }

  /** Hands the next batch to LMDB once the previous one landed and the interval has passed. */
  #scheduleApply(): void {
    if (this.#applying || this.#applyTimer !== undefined || this.#nextBatch === undefined) return;
    const waitMs = Math.max(0, this.#lastApplyMs + LMDB_APPLY_INTERVAL_MS - performance.now());
    this.#applyTimer = setTimeout(() => {
      this.#applyTimer = undefined;
      this.#apply();
    }, waitMs);
  }

  #apply(): void {
    const batch = this.#nextBatch;
    if (batch === undefined || this.#applying) return;
    this.#nextBatch = undefined;
    this.#applying = true;
    this.#lastApplyMs = performance.now();
    let committed: Promise<unknown>;
    try {
      for (const t of batch.txns)
        for (const p of t.written) {
          if (p.value === undefined) void this.#kv.remove(p.key).catch(observeCommitCause);
          else void this.#kv.put(p.key, p.value, p.revision).catch(observeCommitCause);
        }
      committed = this.#engineDb.put(REVISION_KEY, batch.lastRevision);
    } catch (err) {
      // lmdb-js refused a write synchronously (closed, oversized): the batch may be partial.
      batch.reject(this.#fail(err));
      return;
    }
    this.#countCommit(committed);
    this.#lastCommit = committed;
    committed.then(
      () => {
        for (const t of batch.txns) {
          t.landed = true;
          for (const id of t.ids) {
            if (this.#pending.get(id)?.seq === t.seq) this.#pending.delete(id);
            if (this.#durable.get(id)?.seq === t.seq) this.#durable.delete(id);
          }
        }
        this.#wal?.release(batch.lastRevision);
        this.#applying = false;
        batch.resolve();
        this.#scheduleApply();
      },
      (err: unknown) => {
        void commitCause(err).then((cause) => batch.reject(this.#fail(cause)));
      },
    );
  }

  /**
   * With a WAL: resolves once the transaction's log record is durable; its writes then join what
   * plain reads see until LMDB's commit (which keeps running in the background) lands them.
   */
  async #acknowledgeFromLog<T>(
    wal: WriteAheadLog,
    value: T,
    landed: Promise<void>,
    txn: LoggedTxn,
    rev: number,
    record: Buffer,
  ): Promise<T> {
    const durable = wal.append(rev, record);
    this.#lastDurable = durable;
    await this.#settle(durable);
    // LMDB may have landed it first (then committed data already shows it).
    if (!txn.landed) txn.written.forEach((p, i) => this.#durable.set(txn.ids[i] ?? '', p));
    // LMDB far behind: wait for it, so the overlay stays bounded.
    if (this.#pending.size > WAL_MAX_PENDING_WRITES) await this.#settle(landed);
    return value;
  }

  async #settle(commit: Promise<unknown> | undefined): Promise<void> {
    try {
      await commit;
    } catch (err) {
      throw this.#fail(await commitCause(err));
    }
    if (this.#failed !== undefined) throw this.#failed;
  }

  #fail(err: unknown): MetaError {
    if (this.#failed === undefined) {
      const failed = metaIo('lmdb', err);
      this.#failed = failed;
      this.#log?.fatal({ err }, 'metadata commit failed: the store refuses further work until reopened');
      for (const listener of this.#fatalListeners.splice(0)) queueMicrotask(() => listener(failed));
    }
    return this.#failed;
  }

  /**
   * Calls `listener` once if a commit fails (a full or failing disk under the store or its log):
   * the store then refuses all work, and only reopening it (which replays the log) recovers. The
   * master stops on it so that its supervisor restarts it.
   */
  onFatal(listener: (err: MetaError) => void): void {
    const failed = this.#failed;
    if (failed !== undefined) queueMicrotask(() => listener(failed));
    else this.#fatalListeners.push(listener);
  }

  #check(): void {
    if (!this.#open) throw metaClosed(this.engine);
    if (this.#failed !== undefined) throw this.#failed;
  }

  /** Committed entries of an interval merged with the overlay's writes in it. */
  /** Committed data seen under `overlay` (writes not yet in LMDB; a deletion is `value: undefined`). */
  #overlaid(overlay: Map<string, PendingWrite>): EngineReader {
    return {
      get: (key) => {
        if (overlay.size > 0) {
          const p = overlay.get(bytesId(key));
          if (p !== undefined) return copy(p.value);
        }
        return this.#committed.get(key);
      },
      getEntry: (key) => {
        if (overlay.size > 0) {
          const p = overlay.get(bytesId(key));
          if (p !== undefined)
            return p.value === undefined
              ? undefined
              : { key: copy(p.key), value: copy(p.value), modRevision: p.revision };
        }
        return this.#committed.getEntry(key);
      },
      scanInterval: (iv) => this.#scanOverlay(overlay, iv),
    };
  }

  #scanOverlay(overlay: Map<string, PendingWrite>, iv: Interval): MetaEntry[] {
    const mine: PendingWrite[] = [];
    if (overlay.size > 0) for (const p of overlay.values()) if (inInterval(p.key, iv)) mine.push(p);
    if (mine.length === 0) return this.#committed.scanInterval(iv);
    const base = this.#committed.scanInterval({ ...iv, limit: iv.limit + mine.length });
    const sign = iv.reverse ? -1 : 1;
    mine.sort((a, b) => sign * compareBytes(a.key, b.key));
    const out: MetaEntry[] = [];
    let i = 0;
    let j = 0;
    while (out.length < iv.limit && (i < base.length || j < mine.length)) {
      const b = base[i];
      const m = mine[j];
      const c = b === undefined ? 1 : m === undefined ? -1 : sign * compareBytes(b.key, m.key);
      if (c < 0 && b !== undefined) {
        out.push(b);
        i++;
      } else if (m !== undefined) {
        if (m.value !== undefined)
          out.push({ key: copy(m.key), value: copy(m.value), modRevision: m.revision });
        j++;
        if (c === 0) i++;
      }
    }
    return out;
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

  stats(): MetaStoreStats {
    let sizeBytes: number | undefined;
    try {
      sizeBytes = statSync(this.#path).size;
    } catch {
      sizeBytes = undefined;
    }
    return {
      engine: this.engine,
      revision: this.#revision,
      // With a log, the durable commit is the log's sync.
      commits: this.#wal?.syncs ?? this.#commits,
      transactions: this.#transactions,
      reruns: 0,
      commitSeconds: (this.#wal?.syncMs ?? this.#commitMs) / 1000,
      ...(sizeBytes === undefined ? {} : { sizeBytes }),
    };
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#open = false;
    this.#closing = (async () => {
      await this.#lastDurable?.catch(noop);
      // Hand LMDB what the log holds beyond it now (the log would replay it on open anyway).
      while (this.#nextBatch !== undefined || this.#applying) {
        if (this.#applyTimer !== undefined) clearTimeout(this.#applyTimer);
        this.#applyTimer = undefined;
        if (!this.#applying) this.#apply();
        if (this.#failed !== undefined) break;
        await this.#lastCommit?.catch(noop);
      }
      await this.#lastCommit?.catch(noop);
      await Promise.resolve(this.#kv.flushed).catch(noop);
      await this.#wal?.close().catch(noop);
      await this.#root.close();
    })();
    return this.#closing;
  }
}

function newBatch(): ApplyBatch {
  let resolve: () => void = noop;
  let reject: (err: unknown) => void = noop;
  const landed = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Observed by the transactions that wait for it; never an unhandled rejection.
  landed.catch(noop);
  return { txns: [], lastRevision: 0, landed, resolve, reject };
}

function noop(): void {
  // The outcome is observed through the transaction's commit promise.
}

/** How long to wait for lmdb-js to name why a commit failed before reporting its generic error. */
const COMMIT_CAUSE_WAIT_MS = 1000;

/**
 * Why an lmdb-js commit failed. lmdb-js rejects every write of a failed commit with "Commit failed
 * (see commitError for details)" and rejects `commitError`, one promise per failure, with the cause
 * (ENOSPC, EIO…): nothing else observes that promise, and left alone it is an unhandled rejection
 * that kills the process.
 */
function commitCause(err: unknown): Promise<unknown> {
  const pending = pendingCommitError(err);
  if (pending === undefined) return Promise.resolve(err);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(err), COMMIT_CAUSE_WAIT_MS);
    timer.unref();
    pending.then(
      () => resolve(err),
      (cause: unknown) => {
        clearTimeout(timer);
        resolve(cause);
      },
    );
  });
}

/**
 * Whether an unhandled rejection is lmdb-js's report of a failed commit (see commitCause). lmdb-js
 * also rejects the promise of a batch's first write, which it creates itself and hands no caller;
 * the store learns of the same failure through its own writes.
 */
export function isLmdbCommitFailure(reason: unknown): boolean {
  if (!(reason instanceof Error) || !('commitError' in reason)) return false;
  observeCommitCause(reason);
  return true;
}

/** A write's rejection is reported through its commit; only lmdb-js's cause promise needs a handler. */
function observeCommitCause(err: unknown): void {
  pendingCommitError(err)?.catch(noop);
}

/** lmdb-js's promise of a failed write's cause (`err.commitError`), when it has one. */
function pendingCommitError(err: unknown): Promise<unknown> | undefined {
  const pending = (err as { commitError?: unknown } | null | undefined)?.commitError;
  return pending instanceof Promise ? pending : undefined;
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function copy(b: Uint8Array): Buffer;
function copy(b: Uint8Array | undefined): Buffer | undefined;
function copy(b: Uint8Array | undefined): Buffer | undefined {
  return b === undefined ? undefined : Buffer.from(b);
}

/** What lmdb-js records of the last read: the length of the value in its shared read buffer. */
interface LastRead {
  lastSize?: unknown;
}

/**
 * A value read into a buffer of its own. getBinaryFast hands out lmdb-js's reused read buffer
 * (valid until the next read; the value is its first `lastSize` bytes, its `length` property is
 * set by lmdb-js): one copy out of it, into Node's small-buffer pool, is the only copy a read
 * makes (getBinary would first make a copy of its own, outside the pool, which we would still
 * have to copy into a Buffer).
 */
function readValue(kv: Database<Buffer, Buffer>, key: Buffer): Buffer | undefined {
  const v = kv.getBinaryFast(key);
  if (v === undefined) return undefined;
  const size = (kv as LastRead).lastSize;
  if (typeof size !== 'number' || size > v.byteLength) return copy(kv.getBinary(key));
  return Buffer.from(v.subarray(0, size));
}

/** Keys are never empty, so [0x00] is the smallest key; lmdb-js's implicit bounds exclude it. */
const SMALLEST_KEY = Buffer.from([0]);

function scanLmdb(kv: Database<Buffer, Buffer>, iv: Interval): MetaEntry[] {
  const out: MetaEntry[] = [];
  if (iv.limit === 0) return out;
  if (iv.hi !== undefined && Buffer.compare(iv.lo, iv.hi) >= 0) return out;
  const lo = iv.lo.length === 0 ? SMALLEST_KEY : asBuffer(iv.lo);
  const hi = iv.hi === undefined ? undefined : asBuffer(iv.hi);
  const range = iv.reverse
    ? kv.getRange({
        ...(hi === undefined ? {} : { start: hi, exclusiveStart: true }),
        end: lo,
        inclusiveEnd: true,
        reverse: true,
        limit: iv.limit,
        versions: true,
      })
    : kv.getRange({ start: lo, ...(hi === undefined ? {} : { end: hi }), limit: iv.limit, versions: true });
  for (const e of range) out.push({ key: copy(e.key), value: copy(e.value), modRevision: e.version ?? 0 });
  return out;
}
