/**
 * A fill: one origin response body on its way into the cache, read by any number of clients at
 * once. The pump reads the origin body chunk by chunk, appends each chunk to a bounded in-memory
 * window and writes it to the cache writer. Readers follow the fill at their own pace: from the
 * window while they keep up, from the cache writer (memory or disk) when they fall behind. So a
 * fast reader is never held back by a slow one, and memory stays flat in object size.
 *
 * When nothing stores the body (not cacheable, or too large for every tier) the window is the
 * only copy: it may grow to FILL_MAX_BUFFER_BYTES for a slow reader, after which the pump waits
 * for it, and a reader that stays stuck past SLOW_READER_GRACE_MS is cut off.
 *
 * Readers leaving do not stop a fill others (or the cache) need; a fill nobody reads any more
 * goes on only while what remains is within ORPHAN_FILL_MAX_BYTES and a cache writer wants it.
 */
import type { Readable } from 'node:stream';
import { StrataError } from '../common/errors.js';
import type { StoreWriter } from './store/types.js';
import type { HeaderPairs } from './store/types.js';

/** Window kept in memory for readers keeping up with the origin. */
export const FILL_WINDOW_BYTES = 1024 * 1024;
/** Hard bound of the window (slow readers of an unstored body, a slow cache writer). */
export const FILL_MAX_BUFFER_BYTES = 16 * 1024 * 1024;
/** A reader stuck behind a full window for this long is cut off so the others go on. */
export const SLOW_READER_GRACE_MS = 30_000;
/** A fill without readers continues only if at most this much is left to fetch. */
export const ORPHAN_FILL_MAX_BYTES = 64 * 1024 * 1024;
/** Bytes read back from the cache writer per step for a reader behind the window. */
const READ_BACK_BYTES = 256 * 1024;

export class FillAbortedError extends StrataError {
  constructor(why: string) {
    super('STRATA_PROXY_FILL_ABORTED', why);
    this.name = 'FillAbortedError';
  }
}

interface Chunk {
  offset: number;
  buf: Buffer;
}

interface ReaderState {
  pos: number;
  cutOff: boolean;
}

export interface FillOptions {
  key: string;
  status: number;
  headers: HeaderPairs;
  /** From Content-Length, when the origin gave one. */
  contentLength: number | undefined;
  body: Readable;
  /** Where the body is being stored (opening may still be in progress); undefined when it is not. */
  sink: Promise<StoreWriter | undefined> | undefined;
  /** Runs after the body is complete and stored (or storing failed): unregister, metrics. */
  onSettled: (outcome: 'stored' | 'complete' | 'failed', err?: unknown) => void;
  onSinkError?: (err: unknown) => void;
}

export class Fill {
  readonly key: string;
  readonly status: number;
  readonly headers: HeaderPairs;
  readonly contentLength: number | undefined;
  readonly #body: Readable;
  #sink: StoreWriter | undefined;
  #sinkOpening: Promise<StoreWriter | undefined> | undefined;
  readonly #onSettled: FillOptions['onSettled'];
  readonly #onSinkError: ((err: unknown) => void) | undefined;
  #window: Chunk[] = [];
  #windowHead = 0;
  #windowStart = 0;
  #windowBytes = 0;
  #written = 0;
  #done = false;
  #error: Error | undefined;
  #readers = new Set<ReaderState>();
  #everRead = false;
  #progress: { promise: Promise<void>; resolve: () => void };
  #space: { promise: Promise<void>; resolve: () => void };
  #abortRequested = false;
  #invalidated = false;
  #orphanedAtBytes = 0;
  #settled = false;
  #released = false;
  readonly #settledPromise = deferred();

  constructor(opts: FillOptions) {
    this.key = opts.key;
    this.status = opts.status;
    this.headers = opts.headers;
    this.contentLength = opts.contentLength;
    this.#body = opts.body;
    this.#sinkOpening = opts.sink;
    this.#onSettled = opts.onSettled;
    this.#onSinkError = opts.onSinkError;
    this.#progress = deferred();
    this.#space = deferred();
    void this.#pump();
  }

  /** Resolves when the body is complete and stored (or the fill failed). */
  get settled(): Promise<void> {
    return this.#settledPromise.promise;
  }

  get bytesReceived(): number {
    return this.#written;
  }

  get done(): boolean {
    return this.#done;
  }

  get failed(): boolean {
    return this.#error !== undefined;
  }

  get storing(): boolean {
    return this.#sink !== undefined || this.#sinkOpening !== undefined;
  }

  get readerCount(): number {
    return this.#readers.size;
  }

  /** Whether a new reader can still get the body from its first byte. */
  get joinable(): boolean {
    if (this.#error !== undefined || this.#abortRequested || this.#released) return false;
    if (this.#windowStart === 0) return true;
    return this.#sink !== undefined;
  }

  /** Length once known: announced, or counted at the end. */
  get length(): number | undefined {
    return this.contentLength ?? (this.#done && this.#error === undefined ? this.#written : undefined);
  }

  /**
   * Nobody is going to read this fill (a background refresh): it goes on only if it is being
   * stored and what remains is within the orphan bound.
   */
  detach(): void {
    if (this.#readers.size > 0) return;
    this.#everRead = true;
    this.#orphanCheck();
    if (this.#settled) this.#release();
  }

  /**
   * Keeps the whole body readable from its first byte until the returned function is called:
   * for a consumer that will read later (a slice fetched ahead of its turn).
   */
  hold(): () => void {
    const me: ReaderState = { pos: 0, cutOff: false };
    this.#readers.add(me);
    this.#everRead = true;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#readers.delete(me);
      this.#notifySpace();
      this.#orphanCheck();
      if (this.#settled && this.#readers.size === 0) this.#release();
    };
  }

  /** The entry must not be committed (an unsafe request invalidated the URL mid-fill). */
  invalidate(): void {
    this.#invalidated = true;
  }

  #notify(): void {
    const p = this.#progress;
    this.#progress = deferred();
    p.resolve();
  }

  #notifySpace(): void {
    const p = this.#space;
    this.#space = deferred();
    p.resolve();
  }

  async #pump(): Promise<void> {
    let outcome: 'stored' | 'complete' | 'failed' = 'failed';
    let failure: unknown;
    try {
      for await (const raw of this.#body) {
        const chunk = raw as Buffer;
        if (chunk.length === 0) continue;
        this.#window.push({ offset: this.#written, buf: chunk });
        this.#windowBytes += chunk.length;
        this.#written += chunk.length;
        this.#notify();
        if (this.#sinkOpening !== undefined) {
          // Opened lazily so the response headers and first bytes never wait for the disk.
          try {
            this.#sink = await this.#sinkOpening;
          } catch (err) {
            this.#onSinkError?.(err);
          }
          this.#sinkOpening = undefined;
        }
        if (this.#sink !== undefined) {
          try {
            await this.#sink.write(chunk);
          } catch (err) {
            this.#dropSink(err);
          }
        }
        this.#trim();
        await this.#waitForRoom();
        if (
          this.#readers.size === 0 &&
          this.#everRead &&
          this.#written - this.#orphanedAtBytes > ORPHAN_FILL_MAX_BYTES
        )
          this.#abandon();
        if (this.#abortRequested) throw new FillAbortedError('fill abandoned: no readers left');
      }
      if (this.#sinkOpening !== undefined) {
        this.#sink = await this.#sinkOpening.catch(() => undefined);
        this.#sinkOpening = undefined;
      }
      if (this.contentLength !== undefined && this.#written !== this.contentLength)
        throw new FillAbortedError(`origin sent ${this.#written} of ${this.contentLength} bytes`);
      this.#done = true;
      this.#notify();
      outcome = 'complete';
      if (this.#sink !== undefined && !this.#invalidated) {
        try {
          await this.#sink.commit();
          outcome = 'stored';
        } catch (err) {
          this.#onSinkError?.(err);
        }
      } else if (this.#sink !== undefined) {
        await this.#sink.abort().catch(() => undefined);
      }
    } catch (err) {
      failure = err;
      this.#error = err instanceof Error ? err : new Error(String(err));
      this.#done = true;
      this.#body.destroy();
      this.#notify();
      const sink = this.#sink ?? (await this.#sinkOpening?.catch(() => undefined));
      if (sink !== undefined) await sink.abort().catch(() => undefined);
    } finally {
      this.#settled = true;
      this.#settledPromise.resolve();
      if (outcome === 'failed' || this.#readers.size === 0) this.#release();
      this.#notifySpace();
      this.#onSettled(outcome, failure);
    }
  }

  /** Frees the window and the writer's read handle once nobody can read from this fill. */
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#window = [];
    this.#windowHead = 0;
    this.#windowBytes = 0;
    this.#sink?.dispose?.();
  }

  #dropSink(err: unknown): void {
    const sink = this.#sink;
    this.#sink = undefined;
    this.#onSinkError?.(err);
    if (sink !== undefined) void sink.abort().catch(() => undefined);
    // Readers behind the window relied on the sink: they cannot continue.
    for (const r of this.#readers) if (r.pos < this.#windowStart) r.cutOff = true;
    this.#notify();
  }

  /**
   * Drops window chunks nobody needs from memory: with a cache writer, what it already holds
   * beyond the window size (or behind every reader); without one, what every reader has passed.
   */
  #trim(): void {
    const sinkBytes = this.#sinkOpening !== undefined ? 0 : this.#sink?.bytesWritten;
    let minPos = Infinity;
    for (const r of this.#readers) if (!r.cutOff) minPos = Math.min(minPos, r.pos);
    while (this.#windowHead < this.#window.length) {
      const c = this.#window[this.#windowHead] as Chunk;
      const end = c.offset + c.buf.length;
      const passed = this.#everRead && end <= minPos;
      const drop =
        sinkBytes !== undefined
          ? end <= sinkBytes && (this.#windowBytes > FILL_WINDOW_BYTES || passed)
          : passed;
      if (!drop) break;
      this.#windowHead++;
      this.#windowBytes -= c.buf.length;
      this.#windowStart = end;
    }
    if (this.#windowHead > 64 && this.#windowHead * 2 > this.#window.length) {
      this.#window = this.#window.slice(this.#windowHead);
      this.#windowHead = 0;
    }
  }

  /**
   * Backpressure for an unstored body: wait while the window is at its bound. After the grace
   * period, readers lagging behind the fastest one are cut off; the fastest is only waited for.
   */
  async #waitForRoom(): Promise<void> {
    const started = Date.now();
    while (this.#windowBytes > FILL_MAX_BUFFER_BYTES && !this.#abortRequested) {
      if (Date.now() - started > SLOW_READER_GRACE_MS) {
        let maxPos = 0;
        for (const r of this.#readers) if (!r.cutOff) maxPos = Math.max(maxPos, r.pos);
        let cut = false;
        for (const r of this.#readers) {
          if (!r.cutOff && r.pos < maxPos) {
            r.cutOff = true;
            cut = true;
          }
        }
        if (cut) {
          this.#notify();
          this.#trim();
          continue;
        }
      }
      const timer = setTimeout(() => this.#notifySpace(), 1000);
      await this.#space.promise;
      clearTimeout(timer);
      this.#trim();
    }
  }

  /** Called when a reader leaves: a fill nobody reads goes on only within a bound. */
  #orphanCheck(): void {
    if (this.#readers.size > 0 || this.#done) return;
    this.#orphanedAtBytes = this.#written;
    const remaining = this.contentLength === undefined ? undefined : this.contentLength - this.#written;
    if (!this.storing || this.#invalidated || (remaining !== undefined && remaining > ORPHAN_FILL_MAX_BYTES))
      this.#abandon();
  }

  #abandon(): void {
    if (this.#abortRequested || this.#done) return;
    this.#abortRequested = true;
    // Wake the pump if it is waiting for room, and stop the origin body at once.
    this.#notifySpace();
    this.#body.destroy(new FillAbortedError('fill abandoned: no readers left'));
  }

  /** Index of the window chunk holding `pos` (binary search). */
  #chunkAt(pos: number): number {
    let lo = this.#windowHead;
    let hi = this.#window.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#window[mid] as Chunk).offset <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Reads [start, end) of the body as it arrives (end undefined: to the end of the body).
   * Throws if the fill fails or the reader is cut off; leaving early is always safe.
   */
  read(start: number, end?: number): AsyncIterable<Buffer> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const fill = this;
    return (async function* () {
      const me: ReaderState = { pos: start, cutOff: false };
      if (fill.#released || (!fill.joinable && start < fill.#windowStart))
        throw new FillAbortedError('fill no longer holds the start of the body');
      fill.#readers.add(me);
      fill.#everRead = true;
      try {
        for (;;) {
          if (me.cutOff) throw new FillAbortedError('reader fell too far behind the fill');
          const stop = end ?? Infinity;
          if (me.pos >= stop) return;
          if (me.pos < fill.#written) {
            const upTo = Math.min(stop, fill.#written);
            if (me.pos >= fill.#windowStart && fill.#windowHead < fill.#window.length) {
              const i = fill.#chunkAt(me.pos);
              const c = fill.#window[i] as Chunk;
              const from = me.pos - c.offset;
              const to = Math.min(c.buf.length, upTo - c.offset);
              const out = from === 0 && to === c.buf.length ? c.buf : c.buf.subarray(from, to);
              me.pos += out.length;
              yield out;
            } else if (fill.#sink !== undefined && me.pos < fill.#sink.bytesWritten) {
              const sinkEnd = Math.min(upTo, fill.#sink.bytesWritten);
              const buf = await fill.#sink.readAt(me.pos, Math.min(READ_BACK_BYTES, sinkEnd - me.pos));
              if (buf.length === 0) throw new FillAbortedError('cache writer returned no bytes');
              me.pos += buf.length;
              yield buf;
            } else if (fill.#error !== undefined) {
              throw fill.#error;
            } else {
              throw new FillAbortedError('bytes behind the fill window are no longer available');
            }
            if (fill.#windowBytes > FILL_WINDOW_BYTES) fill.#notifySpace();
            continue;
          }
          if (fill.#error !== undefined) throw fill.#error;
          if (fill.#done) return;
          await fill.#progress.promise;
        }
      } finally {
        fill.#readers.delete(me);
        fill.#notifySpace();
        fill.#orphanCheck();
        if (fill.#settled && fill.#readers.size === 0) fill.#release();
      }
    })();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
