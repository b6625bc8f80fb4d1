/**
 * The write set of one transaction run, buffered in memory over an engine's reader: reads see
 * the run's own writes first, scans merge them in key order, and nothing reaches the engine until
 * the run finishes without throwing. Engines share it, so "a throw aborts everything" and
 * "reads see your writes" behave identically everywhere.
 */
import { bytesId, checkKey, checkValue, compareBytes, inInterval, normaliseScan } from './bytes.js';
import type { Interval } from './bytes.js';
import { metaLimit } from './errors.js';
import { META_MAX_TXN_WRITES } from './store.js';
import type {
  MetaCompare,
  MetaEntry,
  MetaKey,
  MetaReader,
  MetaTxn,
  MetaValue,
  ScanOptions,
} from './store.js';

/** What an engine provides for reads: unchecked, with scans already normalised. */
export interface EngineReader {
  get(key: MetaKey): MetaValue | undefined;
  getEntry(key: MetaKey): MetaEntry | undefined;
  scanInterval(iv: Interval): MetaEntry[];
}

/** The public reader of a snapshot: validates arguments, then reads through the engine. */
export class CheckedReader implements MetaReader {
  readonly #base: EngineReader;
  constructor(base: EngineReader) {
    this.#base = base;
  }
  get(key: MetaKey): MetaValue | undefined {
    checkKey(key);
    return this.#base.get(key);
  }
  getEntry(key: MetaKey): MetaEntry | undefined {
    checkKey(key);
    return this.#base.getEntry(key);
  }
  scan(opts: ScanOptions): MetaEntry[] {
    const iv = normaliseScan(opts);
    return iv.limit === 0 ? [] : this.#base.scanInterval(iv);
  }
}

export interface BufferedWrite {
  key: MetaKey;
  /** undefined = delete. */
  value: MetaValue | undefined;
}

export class TxnBuffer implements MetaTxn {
  readonly #base: EngineReader;
  readonly #pendingRevision: number;
  readonly #writes = new Map<string, BufferedWrite>();
  readonly #compares: MetaCompare[] = [];
  readonly #copyWrites: boolean;

  /**
   * @param copyWrites copy written bytes (true): for engines that keep them after the
   *   transaction settles. An engine that copies them into its own storage before it settles may
   *   pass false: the MetaTxn contract leaves them untouched by the caller until then.
   */
  constructor(base: EngineReader, pendingRevision: number, copyWrites = true) {
    this.#base = base;
    this.#pendingRevision = pendingRevision;
    this.#copyWrites = copyWrites;
  }

  get writes(): ReadonlyMap<string, BufferedWrite> {
    return this.#writes;
  }

  get compares(): readonly MetaCompare[] {
    return this.#compares;
  }

  get(key: MetaKey): MetaValue | undefined {
    checkKey(key);
    const w = this.#writes.get(bytesId(key));
    if (w !== undefined) return w.value;
    return this.#base.get(key);
  }

  getEntry(key: MetaKey): MetaEntry | undefined {
    checkKey(key);
    const w = this.#writes.get(bytesId(key));
    if (w !== undefined)
      return w.value === undefined
        ? undefined
        : { key: w.key, value: w.value, modRevision: this.#pendingRevision };
    return this.#base.getEntry(key);
  }

  scan(opts: ScanOptions): MetaEntry[] {
    const iv = normaliseScan(opts);
    if (iv.limit === 0) return [];
    const mine: BufferedWrite[] = [];
    for (const w of this.#writes.values()) if (inInterval(w.key, iv)) mine.push(w);
    if (mine.length === 0) return this.#base.scanInterval(iv);
    // Our deletes may hide base entries: ask the base for that many more.
    const base = this.#base.scanInterval({ ...iv, limit: iv.limit + mine.length });
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
          out.push({ key: m.key, value: m.value, modRevision: this.#pendingRevision });
        j++;
        if (c === 0) i++;
      }
    }
    return out;
  }

  put(key: MetaKey, value: MetaValue): void {
    checkKey(key);
    checkValue(value);
    this.#record(key, value);
  }

  delete(key: MetaKey): void {
    checkKey(key);
    this.#record(key, undefined);
  }

  compare(cond: MetaCompare): void {
    checkKey(cond.key);
    this.#compares.push(cond);
  }

  #record(key: MetaKey, value: MetaValue | undefined): void {
    const id = bytesId(key);
    if (!this.#writes.has(id) && this.#writes.size >= META_MAX_TXN_WRITES)
      throw metaLimit('keys written by one transaction', this.#writes.size + 1, META_MAX_TXN_WRITES);
    if (!this.#copyWrites) {
      this.#writes.set(id, { key, value });
      return;
    }
    // Copy: the engine keeps them past the settle, when the caller may reuse its buffers.
    this.#writes.set(id, {
      key: new Uint8Array(key),
      value: value === undefined ? undefined : new Uint8Array(value),
    });
  }
}
