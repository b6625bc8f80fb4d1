/**
 * Read-through fills: a block of a UFS-backed file that this worker does not hold is fetched
 * from the UFS once (exactly the block's byte range of the object), written to staging as it
 * arrives, streamed to every reader that joined in time, and published when complete. A UFS
 * failure part way aborts the staging write: readers get the error and no partial block exists.
 *
 * Readers join a fill in progress instead of fetching again (one upstream fetch however many
 * readers). A reader whose range starts at or after the bytes received so far follows the fill
 * live; one whose range starts before them (it arrived late, e.g. at a block a read-ahead
 * started) reads the bytes already received from the fill's staging file and then follows the
 * fill live from where it was when the reader joined, so no fill keeps the bytes it passed on
 * and no reader waits for the whole block. A late reader whose whole range was received already
 * reads the block from the store once it is published.
 */
import { open } from 'node:fs/promises';
import type { StorageType } from '../common/config/data-dir.js';
import { FsError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { UfsBlockSource } from '../protocol/ufs-types.js';
import type { FollowFillAnswer } from '../protocol/ufs-worker-calls.js';
import type { UnderFileSystem } from '../ufs/index.js';

/** Bytes a fill hands on at a time (to the store and to its readers). */
export const FILL_CHUNK_BYTES = 1024 * 1024;

/** What a fill needs from the block store (BlockStore satisfies it). */
export interface FillStore<W extends FillWriter = FillWriter> {
  has(blockId: number): boolean;
  /** `durable` false: publish without syncing (the store verifies such blocks after a crash). */
  createWriter(
    blockId: number,
    type: StorageType,
    lengthHint?: number,
    signal?: AbortSignal,
    durable?: boolean,
  ): Promise<W>;
  commitWriter(writer: W, expectedLength?: number): Promise<unknown>;
  abortWriter(writer: W): Promise<void>;
}

export interface FillWriter {
  write(chunk: Buffer, signal?: AbortSignal): Promise<void>;
  /** The file the bytes go to until the block is published. */
  readonly stagingPath: string;
  /** Resolves once the first `bytes` bytes written are in `stagingPath`. */
  whenWritten(bytes: number): Promise<void>;
  /** Bytes in `stagingPath` now (a prefix of the block). */
  readonly inFileBytes: number;
}

/** Receives a reader's bytes in order; resolves when it can take more. */
export type FillSink = (chunk: Buffer) => Promise<void> | void;

export interface FillOptions<W extends FillWriter> {
  store: FillStore<W>;
  /** The UFS of a mount (configuration fetched from the master and cached). */
  ufsFor: (mountId: number, signal?: AbortSignal) => Promise<UnderFileSystem>;
  /** Fills running at once; more wait their turn (each holds a staging file and a UFS request). */
  maxConcurrentFills: number;
  log: Logger;
  /** Called with the bytes fetched from the UFS by each completed fill. */
  onFilled?: (blockId: number, bytes: number) => void;
}

/** How a reader was served. */
export type FillOutcome =
  /** This reader's request started the fill and got its bytes live. */
  | 'ufs'
  /** Joined a fill in progress and got its bytes live. */
  | 'fill'
  /** The block is (now) in the store: read it there. */
  | 'store';

interface Subscriber {
  start: number;
  end: number;
  sink: FillSink;
  signal: AbortSignal | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

class Fill<W extends FillWriter = FillWriter> {
  readonly blockId: number;
  /** Bytes received from the UFS so far. */
  position = 0;
  /** The staging writer, once the fetch started. */
  writer: W | undefined;
  readonly subscribers = new Set<Subscriber>();
  readonly done: Promise<void>;
  readonly controller = new AbortController();
  /** Resolves when the staging writer exists (`writer` set); never rejects. */
  readonly writerReady: Promise<void>;
  #resolveWriter!: () => void;
  #resolveDone!: () => void;
  #rejectDone!: (err: unknown) => void;

  constructor(blockId: number) {
    this.blockId = blockId;
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    // Late readers attach their own handlers; nobody waiting must not be an unhandled rejection.
    this.done.catch(() => undefined);
    this.writerReady = new Promise<void>((resolve) => (this.#resolveWriter = resolve));
  }

  setWriter(writer: W): void {
    this.writer = writer;
    this.#resolveWriter();
  }

  finish(err?: unknown): void {
    this.#resolveWriter();
    for (const s of this.subscribers) {
      if (err === undefined) s.resolve();
      else s.reject(err);
    }
    this.subscribers.clear();
    if (err === undefined) this.#resolveDone();
    else this.#rejectDone(err);
  }

  /** Hands a received chunk to every live reader whose range it overlaps. */
  async deliver(chunk: Buffer, at: number): Promise<void> {
    const end = at + chunk.length;
    const writes: Promise<void>[] = [];
    for (const s of this.subscribers) {
      const from = Math.max(at, s.start);
      const to = Math.min(end, s.end);
      if (from < to) {
        writes.push(
          Promise.resolve(s.sink(chunk.subarray(from - at, to - at))).catch((err: unknown) => {
            // This reader went away: the fill goes on for the others and for the cache.
            this.subscribers.delete(s);
            s.reject(err);
          }),
        );
      }
    }
    await Promise.all(writes);
    for (const s of [...this.subscribers]) {
      if (end >= s.end) {
        this.subscribers.delete(s);
        s.resolve();
      }
    }
  }
}

export class FillCoordinator<W extends FillWriter = FillWriter> {
  readonly #o: FillOptions<W>;
  readonly #fills = new Map<number, Fill<W>>();
  #running = 0;
  readonly #queue: (() => void)[] = [];
  #stopped = false;

  constructor(opts: FillOptions<W>) {
    if (!(opts.maxConcurrentFills >= 1)) throw new Error('maxConcurrentFills must be at least 1');
    this.#o = opts;
  }

  /** Fills in progress (for metrics and tests). */
  get active(): number {
    return this.#fills.size;
  }

  isFilling(blockId: number): boolean {
    return this.#fills.has(blockId);
  }

  /**
   * Serves bytes [offset, offset + length) of a block that is not in the store (or is being
   * filled): joins or starts the fill. Resolves with how the reader was served; with 'store' the
   * caller reads the range from the store (the block was published meanwhile).
   */
  async read(
    blockId: number,
    source: UfsBlockSource,
    offset: number,
    length: number,
    sink: FillSink,
    signal?: AbortSignal,
  ): Promise<FillOutcome> {
    const existing = this.#fills.get(blockId);
    if (existing !== undefined) {
      if (offset >= existing.position) {
        await this.#follow(existing, offset, length, sink, signal);
        return 'fill';
      }
      const writer = existing.writer;
      if (writer !== undefined && offset + length > existing.position) {
        await this.#catchUp(existing, writer, offset, length, sink, signal);
        return 'fill';
      }
      await waitOrAbort(existing.done, signal);
      return 'store';
    }
    if (this.#o.store.has(blockId)) return 'store';
    const fill = this.#start(blockId, source);
    await this.#follow(fill, offset, length, sink, signal);
    return 'ufs';
  }

  /**
   * For a reader on this host that reads the staging file itself (no bytes through the worker):
   * joins or starts the block's fill and resolves once its first `waitBytes` bytes are in the
   * staging file (or the fill ended), with the file and how many bytes it holds; `stored` once
   * the block is published (the staging path is gone then: read the block file). A failed fill
   * rejects with its error, as a reader of `read` would get it. The fill goes on at the UFS's pace
   * whatever the readers do, as a load does.
   */
  async progress(
    blockId: number,
    source: UfsBlockSource,
    waitBytes: number,
    signal?: AbortSignal,
  ): Promise<FollowFillAnswer> {
    let fill = this.#fills.get(blockId);
    if (fill === undefined) {
      if (this.#o.store.has(blockId)) return { state: 'stored' };
      fill = this.#start(blockId, source);
    }
    const f = fill;
    await waitOrAbort(Promise.race([f.writerReady, f.done]), signal);
    const writer = f.writer;
    if (writer === undefined) {
      // Ended before its writer existed: failed (the rejection) or found the block stored.
      await waitOrAbort(f.done, signal);
      return { state: 'stored' };
    }
    const want = Math.min(waitBytes, source.length);
    // A fill that ends meanwhile settles the race: published (stored) or failed (its error).
    const ended = f.done.then(() => 'ended' as const);
    const written = writer.whenWritten(want).then(
      () => 'written' as const,
      // The writer aborted: the fill's own error follows from `ended`.
      () => ended,
    );
    const r = await waitOrAbort(Promise.race([written, ended]), signal);
    if (r === 'ended' || !this.#fills.has(blockId)) return { state: 'stored' };
    return { state: 'filling', path: writer.stagingPath, available: writer.inFileBytes };
  }

  /** Makes sure the block is filled (a load task). Resolves false when it was already stored. */
  async load(blockId: number, source: UfsBlockSource, signal?: AbortSignal): Promise<boolean> {
    const existing = this.#fills.get(blockId);
    if (existing !== undefined) {
      await waitOrAbort(existing.done, signal);
      return false;
    }
    if (this.#o.store.has(blockId)) return false;
    await waitOrAbort(this.#start(blockId, source).done, signal);
    return true;
  }

  /** Aborts every fill (the worker is stopping); readers get the error. */
  stop(): void {
    this.#stopped = true;
    for (const f of this.#fills.values()) f.controller.abort(new FsError('EIO', 'the worker is stopping'));
    for (const wake of this.#queue.splice(0)) wake();
  }

  /**
   * A reader that joined late: bytes [offset, position) come from the staging file, the rest live.
   * The live part is subscribed first (from the position at joining), and its first chunk waits
   * for the catch-up: the fill cannot publish (and move the staging file) while it waits, and
   * the bytes before the position are all handed to the writer already.
   */
  async #catchUp(
    fill: Fill<W>,
    writer: W,
    offset: number,
    length: number,
    sink: FillSink,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const joinedAt = fill.position;
    let release!: () => void;
    let fail!: (err: unknown) => void;
    const caughtUp = new Promise<void>((resolve, reject) => {
      release = resolve;
      fail = reject;
    });
    caughtUp.catch(() => undefined);
    const live = this.#follow(
      fill,
      joinedAt,
      offset + length - joinedAt,
      async (chunk) => {
        await caughtUp;
        await sink(chunk);
      },
      signal,
    );
    live.catch(() => undefined);
    try {
      await writer.whenWritten(joinedAt);
      await copyFromFile(writer.stagingPath, offset, joinedAt - offset, sink, signal);
      release();
    } catch (err) {
      fail(err);
      throw err;
    }
    await live;
  }

  #follow(
    fill: Fill<W>,
    offset: number,
    length: number,
    sink: FillSink,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (length === 0) return fill.done;
    return new Promise<void>((resolve, reject) => {
      const sub: Subscriber = { start: offset, end: offset + length, sink, signal, resolve, reject };
      if (signal !== undefined) {
        if (signal.aborted) {
          reject(abortError(signal));
          return;
        }
        signal.addEventListener(
          'abort',
          () => {
            if (fill.subscribers.delete(sub)) reject(abortError(signal));
          },
          { once: true },
        );
      }
      fill.subscribers.add(sub);
    });
  }

  #start(blockId: number, source: UfsBlockSource): Fill<W> {
    const fill = new Fill<W>(blockId);
    this.#fills.set(blockId, fill);
    void this.#run(fill, source).then(
      () => {
        this.#fills.delete(blockId);
        fill.finish();
      },
      (err: unknown) => {
        this.#fills.delete(blockId);
        fill.finish(err);
      },
    );
    return fill;
  }

  async #acquire(): Promise<void> {
    while (this.#running >= this.#o.maxConcurrentFills && !this.#stopped) {
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    }
    if (this.#stopped) throw new FsError('EIO', 'the worker is stopping');
    this.#running++;
  }

  #release(): void {
    this.#running--;
    this.#queue.shift()?.();
  }

  async #run(fill: Fill<W>, source: UfsBlockSource): Promise<void> {
    await this.#acquire();
    const signal = fill.controller.signal;
    let writer: W | undefined;
    /** The hand-off in progress (store write and delivery of the previous chunk). */
    let handing: Promise<void> | undefined;
    try {
      const ufs = await this.#o.ufsFor(source.mountId, signal);
      const read = await ufs.openRead(source.ufsPath, {
        offset: source.objectOffset,
        length: source.length,
        validator: {
          size: source.validator.size,
          mtimeMs: source.validator.mtimeMs,
          ...(source.validator.etag === undefined ? {} : { etag: source.validator.etag }),
        },
        signal,
      });
      if (read.length !== source.length) {
        read.body.destroy();
        throw new FsError(
          'ESTALE',
          `${ufs.describe()}${source.ufsPath}: block ${fill.blockId} covers ${source.length} bytes at ${source.objectOffset} but the object has ${read.length} there`,
        );
      }
      // Not synced: the UFS holds these bytes, so a fill torn by a power failure is found at the
      // next start (unsynced-fills.ts) and fetched again; a sync would only slow the reader.
      writer = await this.#o.store.createWriter(
        fill.blockId,
        source.storageType,
        source.length,
        signal,
        false,
      );
      fill.setWriter(writer);
      const w = writer;
      const pass = async (pieces: Buffer[], bytes: number): Promise<void> => {
        const at = fill.position;
        fill.position += bytes;
        const store = (async () => {
          for (const piece of pieces) await w.write(piece, signal);
        })();
        // Readers get the MiB as one buffer (one RPC frame); with none (a load task, or every
        // reader gone) the pieces go to the file as they are, by one writev, with no copy.
        const delivered =
          fill.subscribers.size === 0
            ? undefined
            : fill.deliver(pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, bytes), at);
        await Promise.all([store, delivered]);
      };
      // Network reads arrive in pieces of tens of KiB: handing on ~1 MiB at a time saves the
      // per-piece work of every reader's RPC frame. One hand-off runs while the next MiB arrives
      // (hand-offs stay in order, one at a time), so the UFS connection is not left idle while
      // the store and the readers take a chunk.
      const handOn = async (pieces: Buffer[], bytes: number): Promise<void> => {
        if (handing !== undefined) await handing;
        handing = pass(pieces, bytes);
        // Awaited before the next hand-off or at the end; never an unhandled rejection meanwhile.
        handing.catch(() => undefined);
      };
      let gather: Buffer[] = [];
      let gathered = 0;
      for await (const data of read.body) {
        const chunk = data as Buffer;
        gather.push(chunk);
        gathered += chunk.length;
        if (gathered >= FILL_CHUNK_BYTES) {
          const pieces = gather;
          const bytes = gathered;
          gather = [];
          gathered = 0;
          await handOn(pieces, bytes);
        }
      }
      if (gathered > 0) await handOn(gather, gathered);
      if (handing !== undefined) await handing;
      await this.#o.store.commitWriter(writer, source.length);
      writer = undefined;
      this.#o.onFilled?.(fill.blockId, source.length);
    } catch (err) {
      // A failed read may leave a hand-off writing: let it settle before the staging file goes.
      if (handing !== undefined) await handing.catch(() => undefined);
      if (writer !== undefined) await this.#o.store.abortWriter(writer).catch(() => undefined);
      this.#o.log.warn(
        { blockId: fill.blockId, mountId: source.mountId, ufsPath: source.ufsPath, err: errText(err) },
        'read-through fill failed',
      );
      throw err;
    } finally {
      this.#release();
    }
  }
}

/** Streams bytes [offset, offset + length) of a file to `sink` in FILL_CHUNK_BYTES pieces. */
async function copyFromFile(
  path: string,
  offset: number,
  length: number,
  sink: FillSink,
  signal: AbortSignal | undefined,
): Promise<void> {
  const fh = await open(path, 'r');
  try {
    for (let done = 0; done < length;) {
      signal?.throwIfAborted();
      const n = Math.min(FILL_CHUNK_BYTES, length - done);
      // A fresh buffer each time: the sink may hold the chunk after it returned.
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await fh.read(buf, 0, n, offset + done);
      if (bytesRead !== n) throw new FsError('EIO', `staging file ${path} is short at ${offset + done}`);
      await sink(buf);
      done += n;
    }
  } finally {
    await fh.close();
  }
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error('the read was cancelled');
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function waitOrAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
