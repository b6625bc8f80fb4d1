/**
 * The server side of exactly-once retries. A client retries a mutating call with the same
 * request id (after a lost connection, a timeout, a failover); the server runs the call once:
 *
 * - a retry that arrives while the first attempt is still running waits for that attempt and gets
 *   its outcome (coalescing; this part is always in the process's memory);
 * - a retry that arrives later gets the remembered outcome, result or error, for a TTL and up to a
 *   maximum number of entries (the `RetryCacheStore`: in memory here, in the HA metadata store later).
 *
 * Errors that mean "nothing happened, try again" (retryable codes, cancellation) are not
 * remembered: the next attempt runs for real, and a retry that was waiting on such an attempt
 * starts one of its own.
 */
import { FsError, StrataError, isPosixCode } from '../common/errors.js';
import type { CallContext, CallDef, CallKind, UnaryHandler } from './api.js';

/** An outcome as stored: serialisable, so a persistent store can keep it (msgpack). */
export type RetryOutcome =
  | { readonly ok: true; readonly value: unknown }
  | {
      readonly ok: false;
      readonly error: { code: string; message: string; details?: Record<string, unknown> };
    };

/** Where completed outcomes are remembered. Implementations bound their size and age. */
export interface RetryCacheStore {
  get(key: string): RetryOutcome | undefined | Promise<RetryOutcome | undefined>;
  set(key: string, outcome: RetryOutcome): void | Promise<void>;
  /** Entries held now. */
  readonly size: number;
}

/** How long an outcome is remembered by default (config `master.retry_cache_ttl`). */
export const DEFAULT_RETRY_CACHE_TTL_MS = 10 * 60 * 1000;
/** Outcomes remembered at most by default; the oldest go first. */
export const DEFAULT_RETRY_CACHE_MAX_ENTRIES = 100_000;
/** A retry whose coalesced attempts keep failing with retryable errors gives up after this many. */
const MAX_COALESCE_ROUNDS = 3;

export interface MemoryRetryCacheStoreOptions {
  ttlMs?: number;
  maxEntries?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface MemoryEntry {
  readonly expiresAt: number;
  readonly outcome: RetryOutcome;
}

/**
 * Outcomes in memory: a Map for lookups and a FIFO queue of the entries in insertion order, so
 * the oldest entry is always at the queue's head. Eviction never iterates the Map: V8 leaves a
 * hole for each deleted Map entry until the next rehash, and an iteration from the front had to
 * skip every hole left by the evictions before it (measured 30–50 µs per `set` once the cache
 * was full, which every mutating call of a busy master pays).
 */
export class MemoryRetryCacheStore implements RetryCacheStore {
  readonly #entries = new Map<string, MemoryEntry>();
  /**
   * Every entry set, oldest first, as parallel arrays (key, entry): a slot whose entry is no
   * longer the one the Map holds for its key (replaced, or deleted as expired) is skipped.
   */
  #queueKeys: (string | undefined)[] = [];
  #queueEntries: (MemoryEntry | undefined)[] = [];
  #head = 0;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(opts: MemoryRetryCacheStoreOptions = {}) {
    this.#ttlMs = opts.ttlMs ?? DEFAULT_RETRY_CACHE_TTL_MS;
    this.#maxEntries = opts.maxEntries ?? DEFAULT_RETRY_CACHE_MAX_ENTRIES;
    this.#now = opts.now ?? Date.now;
    if (!(this.#ttlMs > 0)) {
      throw new StrataError('STRATA_USAGE', `retry cache ttlMs must be positive (got ${this.#ttlMs})`);
    }
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries <= 0) {
      throw new StrataError(
        'STRATA_USAGE',
        `retry cache maxEntries must be a positive integer (got ${this.#maxEntries})`,
      );
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): RetryOutcome | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.outcome;
  }

  set(key: string, outcome: RetryOutcome): void {
    const now = this.#now();
    const entry: MemoryEntry = { expiresAt: now + this.#ttlMs, outcome };
    // A key set again is now the newest: its older queue slot no longer matches and is skipped.
    this.#entries.set(key, entry);
    this.#queueKeys.push(key);
    this.#queueEntries.push(entry);
    this.#evict(now);
  }

  /** Drops entries from the front while they are expired or too many (every entry lives equally long). */
  #evict(now: number): void {
    const keys = this.#queueKeys;
    const entries = this.#queueEntries;
    let head = this.#head;
    while (head < keys.length) {
      const key = keys[head] as string;
      const entry = entries[head];
      const live = this.#entries.get(key) === entry;
      if (live && (entry as MemoryEntry).expiresAt > now && this.#entries.size <= this.#maxEntries) break;
      if (live) this.#entries.delete(key);
      keys[head] = undefined;
      entries[head] = undefined;
      head++;
    }
    // Compact once the consumed front is most of the queue: amortised O(1) per set.
    if (head >= QUEUE_COMPACT_MIN && head * 2 >= keys.length) {
      this.#queueKeys = keys.slice(head);
      this.#queueEntries = entries.slice(head);
      head = 0;
    }
    this.#head = head;
  }
}

/** The queue's consumed front is dropped once it holds at least this many slots (and half the queue). */
const QUEUE_COMPACT_MIN = 1024;

export interface RetryCacheOptions extends MemoryRetryCacheStoreOptions {
  /** Where outcomes are remembered; a MemoryRetryCacheStore with ttlMs/maxEntries when absent. */
  store?: RetryCacheStore;
}

export interface RetryCacheStats {
  /** Retries answered from a remembered outcome. */
  replayed: number;
  /** Retries that joined an attempt still running. */
  coalesced: number;
  /** Attempts actually run. */
  executed: number;
}

export class RetryCache {
  readonly #store: RetryCacheStore;
  readonly #running = new Map<string, Promise<unknown>>();
  readonly #stats: RetryCacheStats = { replayed: 0, coalesced: 0, executed: 0 };

  constructor(opts: RetryCacheOptions = {}) {
    this.#store = opts.store ?? new MemoryRetryCacheStore(opts);
  }

  /** Outcomes remembered now. */
  get size(): number {
    return this.#store.size;
  }

  /** Attempts running now. */
  get inFlight(): number {
    return this.#running.size;
  }

  get stats(): Readonly<RetryCacheStats> {
    return { ...this.#stats };
  }

  /**
   * Runs `attempt` once per key: concurrent callers with the same key share the running attempt,
   * later ones get the remembered outcome. The first caller sees the attempt's own error (with its
   * stack, for the log); later ones a StrataError rebuilt from the remembered code and message.
   */
  run<T>(key: string, attempt: () => Promise<T>): Promise<T> {
    const running = this.#running.get(key);
    // The common case (no attempt of this request running) starts at once: no extra promise.
    return running === undefined ? this.#start(key, attempt) : this.#join(key, attempt, running);
  }

  async #join<T>(key: string, attempt: () => Promise<T>, first: Promise<unknown>): Promise<T> {
    let running: Promise<unknown> | undefined = first;
    for (let round = 0; ; round++) {
      if (running === undefined) return this.#start(key, attempt);
      this.#stats.coalesced++;
      try {
        return (await running) as T;
      } catch (err) {
        if (remembered(err) || round + 1 >= MAX_COALESCE_ROUNDS) throw err;
        // The attempt we waited on had no effect: run (or join) a fresh one.
      }
      running = this.#running.get(key);
    }
  }

  /** Wraps a unary handler so each request id of this call runs once. Use for mutating calls. */
  wrap<Req, Res>(def: CallDef<CallKind, Req, Res>, handler: UnaryHandler<Req, Res>): UnaryHandler<Req, Res> {
    return (req: Req, ctx: CallContext) => this.run(`${def.code}:${ctx.requestId}`, () => handler(req, ctx));
  }

  #start<T>(key: string, attempt: () => Promise<T>): Promise<T> {
    const p = this.#execute(key, attempt);
    this.#running.set(key, p);
    const forget = (): void => {
      if (this.#running.get(key) === p) this.#running.delete(key);
    };
    p.then(forget, forget);
    return p;
  }

  async #execute<T>(key: string, attempt: () => Promise<T>): Promise<T> {
    // A store that answers synchronously (the memory one) costs no microtask turn.
    const got = this.#store.get(key);
    const stored = got instanceof Promise ? await got : got;
    if (stored !== undefined) {
      this.#stats.replayed++;
      if (stored.ok) return stored.value as T;
      throw rebuild(stored.error);
    }
    this.#stats.executed++;
    let value: T;
    try {
      value = await attempt();
    } catch (err) {
      if (remembered(err)) await this.#store.set(key, { ok: false, error: serialise(err) });
      throw err;
    }
    const set = this.#store.set(key, { ok: true, value });
    if (set instanceof Promise) await set;
    return value;
  }
}

/** Whether an error is a final outcome (remembered) rather than "nothing happened, retry". */
function remembered(err: unknown): boolean {
  if (!(err instanceof StrataError)) return true;
  return !err.retryable && err.code !== 'STRATA_CANCELLED';
}

function serialise(err: unknown): { code: string; message: string; details?: Record<string, unknown> } {
  if (err instanceof StrataError) {
    return err.details === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, details: err.details };
  }
  // The server answers anything else as an internal error; so does a replay.
  return { code: 'STRATA_INTERNAL', message: 'internal error' };
}

function rebuild(e: { code: string; message: string; details?: Record<string, unknown> }): StrataError {
  const options = e.details === undefined ? {} : { details: e.details };
  return isPosixCode(e.code)
    ? new FsError(e.code, e.message, options)
    : new StrataError(e.code, e.message, options);
}
