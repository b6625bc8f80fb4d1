/**
 * The embedded MetaStore engine on LMDB (lmdb-js). One writer, memory-mapped reads.
 *
 * Transactions use lmdb-js's batched asynchronous `transaction()`: every transaction function
 * queued in one event-loop turn runs, in order and synchronously, inside one LMDB write
 * transaction that a background thread then commits (group commit). Each function sees the
 * writes of those before it in the batch, so execution is serial and never needs a re-run. Its
 * writes are buffered (TxnBuffer) and applied to LMDB only if it returns, so a throw aborts just
 * that transaction and not its batch neighbours. The promise resolves after the batch is
 * committed and flushed to disk (`durability: 'flush'`, the default), or once committed
 * (`'commit'`: survives a crash of the process, not of the machine).
 *
 * Revisions: the store keeps a counter (in a separate LMDB database, written in the same
 * transaction) and stamps every written entry with it through LMDB's per-entry version.
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';
import type { Logger } from '../../common/logging.js';
import { bytesEqual, normaliseScan } from '../bytes.js';
import type { Interval } from '../bytes.js';
import { MetaCompareError, metaClosed, metaIo } from '../errors.js';
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
  log?: Logger;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export class LmdbStore implements MetaStore {
  readonly engine = 'lmdb';
  readonly serialTransactions = true;
  readonly #root: RootDatabase;
  readonly #kv: Database<Buffer, Buffer>;
  readonly #engineDb: Database<number, string>;
  readonly #durability: LmdbDurability;
  readonly #path: string;
  readonly #reader: EngineReader;
  #revision: number;
  #open = true;
  #inCallback = false;
  #transactions = 0;
  #closing: Promise<void> | undefined;

  private constructor(opts: LmdbStoreOptions) {
    mkdirSync(opts.dir, { recursive: true });
    this.#path = join(opts.dir, LMDB_FILE_NAME);
    this.#durability = opts.durability ?? 'flush';
    this.#root = open({ path: this.#path, encoding: 'binary', keyEncoding: 'binary' });
    this.#kv = this.#root.openDB<Buffer, Buffer>({
      name: 'kv',
      encoding: 'binary',
      keyEncoding: 'binary',
      useVersions: true,
    });
    this.#engineDb = this.#root.openDB<number, string>({ name: 'engine', encoding: 'msgpack' });
    this.#revision = this.#engineDb.get(REVISION_KEY) ?? 0;
    const kv = this.#kv;
    this.#reader = {
      get: (key) => copy(kv.getBinary(asBuffer(key))),
      getEntry: (key) => {
        const e = kv.getEntry(asBuffer(key));
        if (e === undefined) return undefined;
        return { key: copy(key), value: copy(e.value), modRevision: e.version ?? 0 };
      },
      scanInterval: (iv) => scanLmdb(kv, iv),
    };
  }

  static async open(opts: LmdbStoreOptions): Promise<LmdbStore> {
    try {
      return new LmdbStore(opts);
    } catch (err) {
      throw metaIo('lmdb', err);
    }
  }

  get isOpen(): boolean {
    return this.#open;
  }

  get path(): string {
    return this.#path;
  }

  async read<T>(fn: (r: MetaReader) => T): Promise<T> {
    this.#assertOpen();
    if (this.#inCallback) throw new Error('MetaStore.read called inside a transaction function');
    return fn(new CheckedReader(this.#reader));
  }

  async transaction<T>(fn: (tx: MetaTxn) => T): Promise<T> {
    this.#assertOpen();
    if (this.#inCallback) throw new Error('MetaStore.transaction called inside a transaction function');
    let outcome: Outcome<T> | undefined;
    try {
      await this.#kv.transaction(() => {
        outcome = this.#runInBatch(fn);
      });
      if (this.#durability === 'flush') await this.#kv.flushed;
    } catch (err) {
      throw metaIo('lmdb', err);
    }
    if (outcome === undefined) throw metaIo('lmdb', new Error('transaction function did not run'));
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** Runs inside the LMDB write transaction, synchronously; never throws. */
  #runInBatch<T>(fn: (tx: MetaTxn) => T): Outcome<T> {
    const rev = this.#revision + 1;
    const buf = new TxnBuffer(this.#reader, rev);
    let value: T;
    this.#inCallback = true;
    try {
      value = fn(buf);
    } catch (error) {
      return { ok: false, error };
    } finally {
      this.#inCallback = false;
    }
    for (const c of buf.compares) {
      const cur = this.#reader.getEntry(c.key);
      const holds =
        'modRevision' in c ? (cur?.modRevision ?? 0) === c.modRevision : bytesEqual(cur?.value, c.value);
      if (!holds) {
        return {
          ok: false,
          error: new MetaCompareError(
            `transaction condition failed on key ${Buffer.from(c.key).toString('hex')}`,
          ),
        };
      }
    }
    this.#transactions++;
    if (buf.writes.size === 0) return { ok: true, value };
    try {
      for (const w of buf.writes.values()) {
        if (w.value === undefined) this.#kv.removeSync(asBuffer(w.key));
        else this.#kv.putSync(asBuffer(w.key), asBuffer(w.value), rev);
      }
      this.#engineDb.putSync(REVISION_KEY, rev);
    } catch (error) {
      // A failed put leaves the batch in an unknown state; LMDB aborts the whole batch on commit
      // failure, and we report the error to this caller.
      return { ok: false, error: metaIo('lmdb', error) };
    }
    this.#revision = rev;
    return { ok: true, value };
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
      commits: this.#transactions,
      transactions: this.#transactions,
      reruns: 0,
      ...(sizeBytes === undefined ? {} : { sizeBytes }),
    };
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#open = false;
    this.#closing = (async () => {
      await this.#kv.flushed;
      await this.#root.close();
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (!this.#open) throw metaClosed(this.engine);
  }
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function copy(b: Uint8Array): Buffer;
function copy(b: Uint8Array | undefined): Buffer | undefined;
function copy(b: Uint8Array | undefined): Buffer | undefined {
  return b === undefined ? undefined : Buffer.from(b);
}

const SMALLEST_KEY = Buffer.from([0]);

function scanLmdb(kv: Database<Buffer, Buffer>, iv: Interval): MetaEntry[] {
  const out: MetaEntry[] = [];
  if (iv.limit === 0) return out;
  if (iv.hi !== undefined && Buffer.compare(iv.lo, iv.hi) >= 0) return out;
  // Keys are never empty, so [0x00] is the smallest key; lmdb-js's implicit bounds exclude it.
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
    : kv.getRange({
        start: lo,
        ...(hi === undefined ? {} : { end: hi }),
        limit: iv.limit,
        versions: true,
      });
  for (const e of range) {
    out.push({ key: copy(e.key), value: copy(e.value), modRevision: e.version ?? 0 });
  }
  return out;
}
